"""`distillery ablate report FILE`: how the student changed between arms, item by item, how sure we
are, and what each arm cost.

Per arm: its experiment's commit and overrides; the dataset (rows, rows per source, mean generation
length, and `distillery diff` against the base arm); the student's pass@1 per benchmark with a 95%
interval; against the base arm the paired difference over the same items, the items that flip, and
the arm's cost (stages run and restored, seconds, requests sent: distillery.ablation's run logs).

Why paired: both arms answer the same benchmark items, and items differ in difficulty far more than
arms do. The difference is taken item by item and resampled by item (a paired bootstrap: 10,000
resamples of the items, with replacement, the same items for both arms), so what the items share
cancels and the interval is that of the difference itself; two unpaired intervals that overlap can
hide a real difference. An item's outcome is its mean correctness over the mode's samples (pass@1
of one item), so the bootstrap needs no binary outcome. For the items' solved/unsolved flips
(solved: at least half its samples correct) McNemar's exact test is given beside it: it looks at
the flips alone and is the usual test for two classifiers on one test set. A difference whose
interval holds 0 is reported as within noise.

Writes reports/ablations/<name>.md, .json, .svg (pass@1 per arm with its interval, per benchmark:
Vega-Lite, as the report stage's figures) and <name>.scores.json, its rows, for `dvc plots show`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from distillery import diff as dataset_diff
from distillery.ablation import Ablation, experiments, head, load_ablation, read_run_log
from distillery.errors import DistilleryError
from distillery.stages.report import render_svg

RESAMPLES = 10_000
LEVEL = 0.95
SAMPLES = "data/evaluate/samples.parquet"
DATASET = "data/build/dataset"
OUT = Path("reports/ablations")


# --- statistics -------------------------------------------------------------------------------------


def bootstrap_interval(values: np.ndarray, seed: int, resamples: int = RESAMPLES, level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of the mean of `values` over resamples of its items."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return (float(low), float(high))


def mcnemar_exact(gained: int, lost: int) -> float:
    """Two-sided exact McNemar p-value: under no difference each flip goes either way with p 1/2."""
    n = gained + lost
    if n == 0:
        return 1.0
    k = min(gained, lost)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


@dataclass(frozen=True)
class Paired:
    items: int
    base: float
    arm: float
    difference: float
    low: float
    high: float
    gained: list[str]  # solved by the arm, not by the base
    lost: list[str]
    mcnemar_p: float

    @property
    def within_noise(self) -> bool:
        return self.low <= 0 <= self.high

    def as_json(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "base": round(self.base, 4),
            "arm": round(self.arm, 4),
            "difference": round(self.difference, 4),
            "interval": [round(self.low, 4), round(self.high, 4)],
            "within_noise": self.within_noise,
            "gained": self.gained,
            "lost": self.lost,
            "mcnemar_p": round(self.mcnemar_p, 4),
        }


def paired(base: dict[str, float], arm: dict[str, float], seed: int, resamples: int = RESAMPLES) -> Paired:
    """The arm against the base over the same items (item -> mean correctness)."""
    if set(base) != set(arm):
        only = sorted(set(base) ^ set(arm))
        raise DistilleryError(
            f"the arms were evaluated on different items ({len(only)} in one only, e.g. {only[:3]}): compare arms that share "
            "the evaluate settings and benchmark files"
        )
    items = sorted(base)
    a = np.array([base[i] for i in items])
    b = np.array([arm[i] for i in items])
    low, high = bootstrap_interval(b - a, seed, resamples)
    gained = [i for i in items if arm[i] >= 0.5 > base[i]]
    lost = [i for i in items if base[i] >= 0.5 > arm[i]]
    return Paired(
        len(items), float(a.mean()), float(b.mean()), float((b - a).mean()), low, high, gained, lost, mcnemar_exact(len(gained), len(lost))
    )


def item_outcomes(samples: pl.DataFrame, mode: str) -> dict[str, dict[str, float]]:
    """benchmark -> item -> mean correctness over the mode's samples."""
    modes = sorted(samples["mode"].unique().to_list())
    if mode not in modes:
        raise DistilleryError(f"evaluate mode {mode!r} is not in the arms' samples (they have {', '.join(modes)}); pass --mode")
    per_item = (
        samples.filter(pl.col("mode") == mode)
        .group_by("benchmark", "item")
        .agg(pl.col("correct").cast(pl.Float64).mean().alias("outcome"))
        .sort("benchmark", "item")
    )
    out: dict[str, dict[str, float]] = {}
    for bench, item, outcome in per_item.iter_rows():
        out.setdefault(bench, {})[item] = outcome
    return out


# --- the report -------------------------------------------------------------------------------------


def mean_trace_chars(dataset: pl.DataFrame) -> float | None:
    """The mean length of the trace each row trains on (its assistant message: the chosen generation)."""
    lengths = (
        dataset.select(pl.col("messages").list.eval(pl.element().filter(pl.element().struct.field("role") == "assistant")))
        .explode("messages")
        .select(pl.col("messages").struct.field("content").str.len_chars())
        .to_series()
        .drop_nulls()
    )
    return round(float(lengths.mean()), 1) if lengths.len() else None


def arm_cost(log: dict[str, Any] | None) -> dict[str, Any] | None:
    """An arm's cost over all its attempts on this commit (a killed one included)."""
    if not log:
        return None
    attempts = log["attempts"]
    stage_seconds: dict[str, float] = {}
    sent: dict[str, int] = {}
    for a in attempts:
        for s, v in a["stage_seconds"].items():
            stage_seconds[s] = round(stage_seconds.get(s, 0) + v, 1)
        for s, v in a["requests_sent"].items():
            sent[s] = sent.get(s, 0) + v
    last = attempts[-1]
    return {
        "attempts": len(attempts),
        "wall_s": round(sum(a["wall_s"] for a in attempts), 1),
        "ran": last["ran"],
        "restored": last["restored"],
        "unchanged": last["unchanged"],
        "stage_seconds": stage_seconds,
        "requests_sent": sent,
    }


def build_report(ablation: Ablation, repo: Path, mode: str = "greedy", seed: int | None = None) -> dict[str, Any]:
    baseline = head(repo)
    exps = experiments(repo, baseline)
    missing = [a.name for a in ablation.arms if ablation.experiment(a) not in exps]
    if missing:
        raise DistilleryError(
            f"arm(s) {', '.join(missing)} of {ablation.path} have not run on this commit ({baseline[:7]}): run "
            f"`distillery ablate {ablation.path}` first"
        )
    seed = ablation.base.params["base"]["seed"] if seed is None else seed
    base_sha = exps[ablation.experiment(ablation.base)]
    outcomes: dict[str, dict[str, dict[str, float]]] = {}
    arms: list[dict[str, Any]] = []
    for arm in ablation.arms:
        sha = exps[ablation.experiment(arm)]
        samples = pl.concat([pl.read_parquet(f) for f in dataset_diff.version_files(repo, sha, SAMPLES).values()])
        outcomes[arm.name] = item_outcomes(samples, mode)
        d = dataset_diff.diff(repo, base_sha, sha)
        dataset = pl.concat([pl.read_parquet(f, columns=["messages"]) for f in dataset_diff.version_files(repo, sha, DATASET).values()])
        agg = {k: v["b"] for k, v in d.aggregates.items()}
        scores = {}
        for bench, items in outcomes[arm.name].items():
            values = np.array(list(items.values()))
            low, high = bootstrap_interval(values, seed)
            scores[bench] = {"pass@1": round(float(values.mean()), 4), "interval": [round(low, 4), round(high, 4)], "items": len(items)}
        entry: dict[str, Any] = {
            "arm": arm.name,
            "experiment": ablation.experiment(arm),
            "commit": sha,
            "overrides": arm.overrides,
            "dataset": {
                "rows": d.rows_b,
                "rows_by_source": agg.get("rows_by_source"),
                "mean_trace_chars": mean_trace_chars(dataset),
            },
            "scores": scores,
            "cost": arm_cost(read_run_log(repo, ablation, arm)),
        }
        if arm is not ablation.base:
            entry["dataset"]["against_base"] = {k: v for k, v in d.as_json(examples=0)["rows"].items()}
            entry["paired"] = {
                bench: paired(outcomes[ablation.base.name][bench], outcomes[arm.name][bench], seed).as_json()
                for bench in outcomes[arm.name]
            }
        arms.append(entry)
    return {
        "ablation": ablation.name,
        "file": ablation.path.as_posix(),
        "description": ablation.description,
        "baseline": baseline,
        "base": ablation.base.name,
        "mode": mode,
        "method": (
            f"paired bootstrap over items ({RESAMPLES:,} resamples, seed {seed}), {LEVEL:.0%} percentile intervals; "
            "McNemar's exact test on solved/unsolved flips"
        ),
        "arms": arms,
    }


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _cost_line(cost: dict[str, Any] | None) -> str:
    if not cost:
        return "not recorded (run outside `distillery ablate`)"
    sent = sum(cost["requests_sent"].values())
    by_stage = ", ".join(f"{s} {n}" for s, n in sorted(cost["requests_sent"].items()))
    return (
        f"{cost['wall_s']:.0f} s wall ({cost['attempts']} attempt(s)); ran {len(cost['ran'])} stage(s) "
        f"({', '.join(cost['ran']) or 'none'}), restored {len(cost['restored'])} from the run cache "
        f"({', '.join(cost['restored']) or 'none'}), {len(cost['unchanged'])} unchanged; "
        f"requests sent {sent}{f' ({by_stage})' if by_stage else ''}; training seconds: "
        + (", ".join(f"{s} {cost['stage_seconds'][s]:.0f}" for s in ("sft", "dpo", "grpo") if s in cost["stage_seconds"]) or "none")
    )


def render_markdown(report: dict[str, Any]) -> str:
    lines = [f"# Ablation `{report['ablation']}` ({report['file']})", ""]
    if report["description"]:
        lines += [report["description"], ""]
    lines += [
        f"Experiments of commit `{report['baseline'][:7]}`; base arm `{report['base']}`; evaluate mode `{report['mode']}`; "
        f"{report['method']}. pass@1 in %.",
        "",
        "| arm | overrides | commit | rows | mean trace chars | "
        + " | ".join(f"{b} pass@1 [95%]" for b in report["arms"][0]["scores"])
        + " |",
        "|---|---|---|---|---|" + "---|" * len(report["arms"][0]["scores"]),
    ]
    for a in report["arms"]:
        overrides = ", ".join(f"`{k}: {json.dumps(v)}`" for k, v in a["overrides"].items()) or "(params.yaml)"
        scores = " | ".join(f"{_pct(s['pass@1'])} [{_pct(s['interval'][0])}, {_pct(s['interval'][1])}]" for s in a["scores"].values())
        lines.append(
            f"| {a['arm']} | {overrides} | `{a['commit'][:7]}` | {a['dataset']['rows']} | {a['dataset']['mean_trace_chars']} | {scores} |"
        )
    lines += ["", f"## Against the base arm `{report['base']}`", ""]
    lines += [
        "| arm | benchmark | items | difference (pp) [95%] | verdict | gained | lost | McNemar p |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for a in report["arms"][1:]:
        for bench, p in a["paired"].items():
            verdict = "within noise" if p["within_noise"] else ("better" if p["difference"] > 0 else "worse")
            lines.append(
                f"| {a['arm']} | {bench} | {p['items']} | {100 * p['difference']:+.1f} [{100 * p['interval'][0]:+.1f}, "
                f"{100 * p['interval'][1]:+.1f}] | {verdict} | {len(p['gained'])} | {len(p['lost'])} | {p['mcnemar_p']:.3f} |"
            )
    flips = [(a["arm"], b, p) for a in report["arms"][1:] for b, p in a["paired"].items() if p["gained"] or p["lost"]]
    lines += ["", "Items that flip: " + ("none." if not flips else "")]
    for arm, bench, p in flips:
        lines.append(f"- {arm}, {bench}: gained {', '.join(p['gained']) or '-'}; lost {', '.join(p['lost']) or '-'}")
    lines += ["", "## Datasets and cost", ""]
    for a in report["arms"]:
        against = a["dataset"].get("against_base")
        diff_line = (
            f"; against the base: {against['added']} added, {against['removed']} removed, {against['changed']} changed, "
            f"{against['unchanged']} unchanged"
            if against
            else ""
        )
        lines.append(f"- **{a['arm']}**: rows by source {json.dumps(a['dataset']['rows_by_source'])}{diff_line}.")
        lines.append(f"  Cost: {_cost_line(a['cost'])}.")
    return "\n".join(lines) + "\n"


def plot_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "arm": a["arm"],
            "benchmark": b,
            "pass@1": round(100 * s["pass@1"], 2),
            "low": round(100 * s["interval"][0], 2),
            "high": round(100 * s["interval"][1], 2),
        }
        for a in report["arms"]
        for b, s in a["scores"].items()
    ]


def figure_spec(report: dict[str, Any]) -> dict[str, Any]:
    """Vega-Lite, as the report stage's figures: pass@1 per arm with its interval, a panel per benchmark."""
    point = {"mark": {"type": "point", "filled": True, "size": 60}, "encoding": {"y": {"field": "pass@1", "type": "quantitative"}}}
    rule = {"mark": "rule", "encoding": {"y": {"field": "low", "type": "quantitative"}, "y2": {"field": "high"}}}
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": {"text": f"Ablation {report['ablation']}: pass@1 (%) per arm, {report['mode']}, 95% interval", "anchor": "start"},
        "data": {"values": plot_rows(report)},
        "facet": {"column": {"field": "benchmark", "type": "nominal", "title": None}},
        "spec": {
            "width": 160,
            "height": 180,
            "encoding": {
                "x": {"field": "arm", "type": "nominal", "sort": [a["arm"] for a in report["arms"]], "title": None},
                "y": {"type": "quantitative", "scale": {"domain": [0, 100]}, "title": "pass@1 (%)"},
            },
            "layer": [rule, point],
        },
        "config": {"font": "sans-serif"},
    }


def write(path: str | Path, repo: Path = Path("."), mode: str = "greedy", out: Path = OUT) -> dict[str, Path]:
    repo = Path(repo)
    ablation = load_ablation(path, repo / "params.yaml")
    report = build_report(ablation, repo, mode)
    out = repo / out if not out.is_absolute() else out
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "markdown": out / f"{ablation.name}.md",
        "json": out / f"{ablation.name}.json",
        "figure": out / f"{ablation.name}.svg",
        "plot": out / f"{ablation.name}.scores.json",
    }
    files["markdown"].write_text(render_markdown(report))
    files["json"].write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    files["plot"].write_text(json.dumps(plot_rows(report), indent=2) + "\n")
    files["figure"].write_text(render_svg(figure_spec(report)))
    return files
