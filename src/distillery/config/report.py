"""The params of stage report (`params.yaml`'s `report` section)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from distillery.config.base import Section
from distillery.declaration import Stage, bars, computed, mixing, problems_table, read, read_all, write
from distillery.rounds import final_judged, metrics_name

# The models distillery/published.py holds scores of (tests/test_report.py checks the lists agree). Their
# names, not the scores: every stage imports this module, and only the stages that show the scores
# import published.py, so editing a score changes only their code hash (distillery.code_identity).
PUBLISHED_MODELS = ("OpenR1-Qwen-7B", "DeepSeek-R1-Distill-Qwen-7B")


class ReportConfig(Section):
    """The report stage: small plot data for `dvc plots` (plots/report/) and figures for
    `snakemake --report` (reports/)."""

    length_bins: list[int] = Field(
        [0, 1024, 2048, 4096, 8192, 16384],
        min_length=1,
        description="Completion-token edges of the generation length histogram: bins [e0, e1), [e1, e2), ... and a last open "
        "bin [e_last, inf). Fixed in params, never derived from the data, so two versions' histograms overlay bin for bin "
        "in `dvc plots diff`.",
    )
    compare_with: list[str] = Field(
        ["OpenR1-Qwen-7B"], description="Published models (distillery/published.py) whose scores are drawn beside ours."
    )

    @field_validator("length_bins")
    @classmethod
    def _increasing(cls, edges: list[int]) -> list[int]:
        if edges[0] < 0 or any(b <= a for a, b in zip(edges, edges[1:])):
            raise ValueError(f"must be non-negative and strictly increasing, got {edges}")
        return edges

    @field_validator("compare_with")
    @classmethod
    def _published(cls, names: list[str]) -> list[str]:
        unknown = sorted(set(names) - set(PUBLISHED_MODELS))
        if unknown:
            raise ValueError(f"names {unknown}, which distillery/published.py does not list (listed: {sorted(PUBLISHED_MODELS)})")
        return names


# The stage's params model (distillery.provenance finds the stage's execution-only keys through it).
MODEL = ReportConfig

REPORT_PLOTS = (
    (
        "plots/report/generation_lengths.json",
        bars(
            "generations",
            "bin",
            "Generation length (completion tokens, fixed bins) by math-verify verdict",
            "generations",
            "completion tokens",
        ),
    ),
    (
        "plots/report/pass_rate_by_source.json",
        bars("pass_rate", "source", "Pass rate by source (%); the judge only re-checks math-verify failures", "% correct", "source"),
    ),
    (
        "plots/report/verify_vs_judge.json",
        {
            "cache": False,
            "template": "distillery_counts_heatmap",
            "x": "judge",
            "y": "math_verify",
            "title": "Math-verify vs judge (generations)",
            "x_label": "judge verdict",
            "y_label": "math-verify status",
        },
    ),
    ("plots/report/eval_scores.json", bars("pass@1", "model", "Evaluation pass@1 (%) beside published scores", "pass@1 (%)", "model")),
    (
        "plots/report/scaling_curve.json",
        {
            "cache": False,
            "template": "distillery_lines",
            "x": "mean_thinking_tokens",
            "y": "pass@1",
            "title": "Test-time scaling: pass@1 (%) against mean thinking tokens (budget forcing), per benchmark",
            "x_label": "mean thinking tokens",
            "y_label": "pass@1 (%)",
        },
    ),
)
# The figures `snakemake --report` shows, one per plot: rules/report.smk files each under its category.
REPORT_FIGURES = tuple(f"reports/figures/{Path(p).stem}.svg" for p, _ in REPORT_PLOTS)
# The stages whose rows the report's counts table shows, in pipeline order (ingest and mix only when
# ingest names a corpus); models and evaluate read no rows of the data flow, report makes none.
COUNTED_STAGES = (
    "sample",
    "ingest",
    "generate",
    "mix",
    "verify",
    "judge",
    "dedupe",
    "build",
    "curate",
    "sft",
    "preferences",
    "dpo",
    "difficulty",
    "grpo",
)


def report_stage_metrics(params: Any) -> list[str]:
    """The metrics files the report's counts table reads (rules/report.smk and dvc.yaml alike)."""
    stages = [s for s in COUNTED_STAGES if mixing(params) or s not in ("ingest", "mix")]
    later = [metrics_name(s, r) for r in range(2, 2 + len(params.generate.rounds)) for s in ("generate", "verify", "judge")]
    at = stages.index("judge") + 1  # a later round's stages follow the round before
    return [f"metrics/{s}.json" for s in (*stages[:at], *later, *stages[at:])]


STAGE = Stage(
    "report",
    "plot data for dvc plots, figures and per-stage counts for snakemake --report",
    paths={
        "judged": read(final_judged, "judge's generations of every round"),
        "problems": read(problems_table, "sample's problems, or mix's when ingest names a corpus"),
        "stage_metrics": read_all(report_stage_metrics, "metrics/<stage>.json of the stages to count, in order"),
        "evaluate": read("metrics/evaluate.json", "evaluate's scores"),
        # The figures, written into figures_dir; the rule files them in `snakemake --report`.
        **{f"{Path(f).stem}_figure": write(f, dvc="reports/figures", flag=False) for f in REPORT_FIGURES},
        "plots_dir": computed("the folder of its plot data (plots/report/)"),
        "figures_dir": computed("the folder of its figures (reports/figures/)"),
        "stage_counts": write("reports/stage_counts.html", "the counts table (HTML)"),
    },
    params=("base.seed", "report", "generate.rounds"),  # rounds: which judged table and metrics
    extras=(),  # run(cfg, paths): no seed
    plots=REPORT_PLOTS,
    also_reads=("report",),  # the captions and workflow page `snakemake --report` reads
)
