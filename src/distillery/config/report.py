"""The params of stage report (`params.yaml`'s `report` section)."""

from __future__ import annotations

from pydantic import Field, field_validator

from distillery.config.base import Section

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
