"""report: small, precomputed plot data for `dvc plots` and figures for `snakemake --report`.

Five plots, each a JSON list of a few dozen rows at most (never one row per generation: the real
run has 1.6M generations), written to plots/report/ for DVC, and each drawn to SVG with
vl-convert (no browser, no network) for the Snakemake report:

- generation_lengths: completion tokens in the fixed bins of `report.length_bins`, split by
  math-verify verdict;
- pass_rate_by_source: per source, % of generations correct by math-verify, by the judge, by
  either, and % of problems with at least one correct generation;
- verify_vs_judge: generations per (math-verify status, judge verdict), `not_judged` included;
- eval_scores: pass@1 per benchmark and mode beside the published scores of `report.compare_with`;
- scaling_curve: pass@1 against the mean thinking tokens used, one line per benchmark, one point per
  thinking budget of evaluate's budget_forcing mode (empty without it).

It also writes the per-stage counts (rows in, kept, rejected by reason) as an HTML table.
"""

from __future__ import annotations

import html
import json
import logging
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from distillery.config.report import STAGE, ReportConfig
from distillery.io import require, write_json
from distillery.published import PUBLISHED
from distillery.tables import JUDGED, PROBLEMS, UuidCursor, UuidOrder, check_table, iter_groups, iter_table

log = logging.getLogger(__name__)

Rows = list[dict[str, Any]]
PLOTS = ("generation_lengths", "pass_rate_by_source", "verify_vs_judge", "eval_scores", "scaling_curve")
ALL_SOURCES = "all sources"
VL_VERSION = "5.21"  # the Vega-Lite major DVC's templates are written for ($schema v5)


# --- the plot data -------------------------------------------------------------------------------


def bin_label(edges: list[int], i: int) -> str:
    if i == len(edges) - 1:
        return f"≥ {edges[i]:,}"
    return f"{edges[i]:,}–{edges[i + 1] - 1:,}"


def length_counts(gens: pl.DataFrame, edges: list[int]) -> Counter:
    """Generations per (completion-token bin, math-verify verdict): they add up over batches."""
    tokens = gens.filter(pl.col("completion_tokens").is_not_null())
    # A generation's bin is the number of edges after the first that it reaches (below the first edge: bin 0).
    index = pl.sum_horizontal([(pl.col("completion_tokens") >= e).cast(pl.Int64) for e in edges[1:]]) if len(edges) > 1 else pl.lit(0)
    verdict = pl.when(pl.col("correctness_math_verify").fill_null(False)).then(pl.lit("correct")).otherwise(pl.lit("not correct"))
    which = tokens.select(index.alias("bin"), verdict.alias("math_verify"))
    return Counter({(r["bin"], r["math_verify"]): r["len"] for r in which.group_by("bin", "math_verify").len().to_dicts()})


def length_histogram(gens: pl.DataFrame, edges: list[int]) -> Rows:
    """Generations per completion-token bin and math-verify verdict; every bin is listed, empty or not."""
    return length_rows(length_counts(gens, edges), edges)


def length_rows(counts: Counter, edges: list[int]) -> Rows:
    return [
        {
            "bin": bin_label(edges, i),
            "order": i,
            "tokens_from": edges[i],
            "math_verify": v,
            "generations": counts.get((i, v), 0),
            "panel": f"math-verify: {v}",
            "panel_order": k,
        }
        for k, v in enumerate(("correct", "not correct"))
        for i in range(len(edges))
    ]


def _pct(num: int, den: int) -> float | None:
    return round(100 * num / den, 1) if den else None


PASS_COUNTS = ("generations", "math_verify", "judge", "either", "problems", "problems_correct")


def pass_counts(gens: pl.DataFrame, problems: pl.DataFrame) -> dict[str, Counter]:
    """Per source, the counts behind the pass rates (PASS_COUNTS). They add up over batches that
    hold whole problems, as `iter_groups` cuts them."""
    df = (
        gens.join(problems.select("uuid", "source"), on="uuid", how="left")
        .with_columns(
            pl.col("source").fill_null("unknown"),
            mv=pl.col("correctness_math_verify").fill_null(False),
            judge=pl.col("correctness_llama").fill_null(False),
        )
        .with_columns(either=pl.col("mv") | pl.col("judge"))
    )
    per_problem = df.group_by("source", "uuid").agg(pl.col("either").any())
    generations = df.group_by("source").agg(
        pl.len().alias("generations"), pl.col("mv").sum(), pl.col("judge").sum(), pl.col("either").sum()
    )
    solved = per_problem.group_by("source").agg(pl.len().alias("problems"), pl.col("either").sum().alias("problems_correct"))
    out: dict[str, Counter] = {}
    for r in generations.join(solved, on="source").iter_rows(named=True):
        out[r["source"]] = Counter(
            dict(zip(PASS_COUNTS, (r["generations"], r["mv"], r["judge"], r["either"], r["problems"], r["problems_correct"])))
        )
    return out


def pass_rates(gens: pl.DataFrame, problems: pl.DataFrame) -> Rows:
    """Per source (and over all sources): % of generations correct by math-verify, by the judge and
    by either, and % of problems with at least one generation correct by either."""
    return pass_rows(pass_counts(gens, problems))


def pass_rows(by_source: dict[str, Counter]) -> Rows:
    everything = sum(by_source.values(), Counter())
    rows: Rows = []
    for order, (source, c) in enumerate([(ALL_SOURCES, everything), *sorted(by_source.items())]):
        n = c["generations"]
        measures = [
            ("generations: math-verify", c["math_verify"], n),
            ("generations: judge", c["judge"], n),
            ("generations: either", c["either"], n),
            ("problems: any correct", c["problems_correct"], c["problems"]),
        ]
        rows += [
            {
                "source": source,
                "order": order,
                "measure": m,
                "pass_rate": _pct(k, total),
                "correct": k,
                "of": total,
                "panel": m,
                "panel_order": j,
            }
            for j, (m, k, total) in enumerate(measures)
        ]
    return rows


def agreement_counts(gens: pl.DataFrame) -> Counter:
    """Generations per (math-verify status, judge verdict): they add up over batches."""
    df = gens.select(
        pl.col("verify_status").fill_null("unknown").alias("math_verify"),
        pl.col("judge_verdict").fill_null("not_judged").alias("judge"),
    )
    return Counter({(r["math_verify"], r["judge"]): r["len"] for r in df.group_by("math_verify", "judge").len().to_dicts()})


def agreement(gens: pl.DataFrame) -> Rows:
    """Generations per (math-verify status, judge verdict); generations the judge never saw are `not_judged`."""
    return agreement_rows(agreement_counts(gens))


def agreement_rows(counts: Counter) -> Rows:
    return [{"math_verify": m, "judge": j, "generations": n} for (m, j), n in sorted(counts.items())]


def eval_scores(evaluate: dict[str, Any], compare_with: list[str]) -> Rows:
    """pass@1 (%) per benchmark: ours per mode, then each published model's score where it has one."""
    results: dict[str, dict[str, dict[str, Any]]] = evaluate.get("results", {})
    benchmarks = sorted({b for per in results.values() for b in per})
    rows: Rows = []
    # sampled first: the published protocol; budget-forcing protocols are drawn as the scaling curve.
    modes = sorted((m for m in results if not m.startswith("budget_forcing_")), key=lambda m: (m != "sampled", m))
    for j, bench in enumerate(benchmarks):
        scores = [
            (f"ours ({mode})", results[mode][bench]["pass@1"], results[mode][bench].get("stderr"))
            for mode in modes
            if bench in results[mode]
        ]
        scores += [(f"{name} (published)", PUBLISHED[name][bench], None) for name in compare_with if bench in PUBLISHED[name]]
        rows += [
            {"benchmark": bench, "model": model, "order": i, "pass@1": score, "stderr": stderr, "panel": bench, "panel_order": j}
            for i, (model, score, stderr) in enumerate(scores)
        ]
    return rows


# --- per-stage counts ----------------------------------------------------------------------------


# What each stage's row counts: its unit. Filtering stages count rows in, kept and rejected by reason;
# the training stages count what they trained on.
COUNT_UNITS = {
    "sample": "problems",
    "ingest": "corpus rows",
    "mix": "problems",
    "generate": "generation requests",
    "verify": "generations (kept: correct by math-verify)",
    "judge": "math-verify failures judged (kept: EQUIVALENT, recovered)",
    "dedupe": "problems",
    "build": "problems",
    "curate": "dataset rows (kept: selected)",
    "sft": "dataset rows trained on",
    "preferences": "problems (kept: paired)",
    "dpo": "preference pairs trained on",
    "difficulty": "dataset problems (kept: pass rate in range)",
    "grpo": "problems in difficulty's range (kept: trained on)",
}


def _count_row(stage: str, rows_in: int, kept: int, by_reason: dict[str, int]) -> dict[str, Any]:
    return {"stage": stage, "unit": COUNT_UNITS.get(stage, "rows"), "rows_in": rows_in, "kept": kept, "rejected_by_reason": by_reason}


def stage_counts(metrics: dict[str, dict[str, Any]]) -> Rows:
    """One row per stage, in pipeline order: what it counts, rows in, kept (passed) and the rest by reason."""
    rows: Rows = []
    for stage, m in metrics.items():
        counts = m.get("counts") or (m.get("problems") if isinstance(m.get("problems"), dict) else None)
        if counts is not None:  # the filtering stages; preferences and grpo count their problems
            rows.append(_count_row(stage, counts["rows_in"], counts["kept"], counts["rejected_by_reason"]))
        elif stage == "generate" and "by_status" in m:
            by = dict(m["by_status"])
            rows.append(_count_row(stage, m["requests"], by.pop("ok", 0), by))
        elif stage == "verify" and "generations_by_status" in m:
            by = dict(m["generations_by_status"])
            rows.append(_count_row(stage, m["generations"], by.pop("ok", 0), by))
        elif stage == "judge" and "verdicts" in m:
            by = {k: v for k, v in m["verdicts"].items() if k != "not_judged"}
            rows.append(_count_row(stage, m["judged"], by.pop("EQUIVALENT", 0), by))
        elif stage == "sft" and "rows" in m:
            rows.append(_count_row(stage, m["rows"], m["rows"], {}))
        elif stage == "dpo" and "pairs" in m:
            rows.append(_count_row(stage, m["pairs"], m["pairs"], {}))
    return rows


def stage_counts_html(rows: Rows) -> str:
    def reasons(by: dict[str, int]) -> str:
        shown = [f"{html.escape(k)}: {v:,}" for k, v in sorted(by.items(), key=lambda kv: (-kv[1], kv[0])) if v]
        return "<br>".join(shown) or "&ndash;"

    body = "\n".join(
        f"<tr><td>{html.escape(r['stage'])}</td><td>{html.escape(r['unit'])}</td><td class=n>{r['rows_in']:,}</td>"
        f"<td class=n>{r['kept']:,}</td><td class=n>{r['rows_in'] - r['kept']:,}</td><td>{reasons(r['rejected_by_reason'])}</td></tr>"
        for r in rows
    )
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Rows per stage</title>
<style>
body {{ font-family: sans-serif; font-size: 14px; margin: 1em; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; vertical-align: top; text-align: left; }}
th {{ background: #f0f0f0; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
</style></head><body>
<table>
<thead><tr><th>stage</th><th>counts</th><th>rows in</th><th>kept / passed</th><th>not kept</th><th>not kept, by reason</th></tr></thead>
<tbody>
{body}
</tbody>
</table>
</body></html>
"""


# --- figures (Vega-Lite, drawn to SVG by vl-convert) --------------------------------------------

COLORS = {"correct": "#4c78a8", "not correct": "#e45756"}


def scaling_curve(evaluate: dict[str, Any]) -> Rows:
    """pass@1 (%) against the mean thinking tokens actually used, per benchmark and thinking budget
    (evaluate's budget_forcing mode; empty without it)."""
    return [
        {"benchmark": p["benchmark"], "budget": p["budget"], "mean_thinking_tokens": p["mean_thinking_tokens"], "pass@1": p["pass@1"]}
        for p in evaluate.get("scaling_curve", [])
    ]


def figure_specs(data: dict[str, Rows]) -> dict[str, dict[str, Any]]:
    """One Vega-Lite spec per plot: the same titles and axes as dvc.yaml's plot definitions."""
    return {
        "generation_lengths": {
            "title": {"text": "Generation length", "subtitle": "generations per completion-token bin, by math-verify verdict"},
            "data": {"values": data["generation_lengths"]},
            "mark": {"type": "bar", "tooltip": True},
            "width": 300,
            "encoding": {
                "y": {"field": "bin", "type": "nominal", "sort": {"field": "order"}, "title": "completion tokens"},
                "x": {"field": "generations", "type": "quantitative", "title": "generations"},
                "column": {"field": "panel", "type": "nominal", "title": None, "sort": {"field": "panel_order"}},
                "color": {
                    "field": "math_verify",
                    "type": "nominal",
                    "legend": None,
                    "scale": {"domain": list(COLORS), "range": list(COLORS.values())},
                },
            },
        },
        "pass_rate_by_source": {
            "title": {"text": "Pass rate by source", "subtitle": "% correct; the judge only re-checks math-verify failures"},
            "data": {"values": data["pass_rate_by_source"]},
            "width": 170,
            "encoding": {
                "y": {"field": "source", "type": "nominal", "sort": {"field": "order"}, "title": "source"},
                "x": {"field": "pass_rate", "type": "quantitative", "title": "% correct", "scale": {"domain": [0, 100]}},
            },
            "layer": [
                {"mark": {"type": "bar", "tooltip": True}, "encoding": {"color": {"value": "#4c78a8"}}},
                {
                    "mark": {"type": "text", "align": "left", "dx": 3, "fontSize": 10},
                    "encoding": {"text": {"field": "pass_rate", "type": "quantitative", "format": ".1f"}},
                },
            ],
        },
        "verify_vs_judge": {
            "title": {"text": "Math-verify vs judge", "subtitle": "generations per (math-verify status, judge verdict)"},
            "data": {"values": data["verify_vs_judge"]},
            "width": 320,
            "encoding": {
                "x": {"field": "judge", "type": "nominal", "title": "judge verdict", "axis": {"labelAngle": 0}},
                "y": {"field": "math_verify", "type": "nominal", "title": "math-verify status"},
            },
            "layer": [
                {
                    "mark": {"type": "rect", "tooltip": True},
                    "encoding": {
                        "color": {"field": "generations", "type": "quantitative", "title": "generations", "scale": {"scheme": "blues"}}
                    },
                },
                {"mark": {"type": "text", "fontSize": 12}, "encoding": {"text": {"field": "generations", "type": "quantitative"}}},
            ],
        },
        "scaling_curve": {
            "title": {
                "text": "Test-time scaling (budget forcing)",
                "subtitle": "pass@1 (%) against the mean thinking tokens used, one point per budget",
            },
            "data": {"values": data["scaling_curve"]},
            "width": 320,
            "mark": {"type": "line", "point": True, "tooltip": True},
            "encoding": {
                "x": {"field": "mean_thinking_tokens", "type": "quantitative", "title": "mean thinking tokens"},
                "y": {"field": "pass@1", "type": "quantitative", "title": "pass@1 (%)"},
                "color": {"field": "benchmark", "type": "nominal"},
                "order": {"field": "mean_thinking_tokens", "type": "quantitative"},
            },
        },
        "eval_scores": {
            "title": {"text": "Evaluation", "subtitle": "pass@1 (%) of the student beside published scores"},
            "data": {"values": data["eval_scores"]},
            "width": 200,
            "encoding": {
                "y": {"field": "model", "type": "nominal", "sort": {"field": "order"}, "title": None},
                "x": {"field": "pass@1", "type": "quantitative", "title": "pass@1 (%)", "scale": {"domain": [0, 100]}},
            },
            "layer": [
                {
                    "mark": {"type": "bar", "tooltip": True},
                    "encoding": {"color": {"field": "model", "type": "nominal", "legend": None, "sort": {"field": "order"}}},
                },
                {
                    "mark": {"type": "text", "align": "left", "dx": 3, "fontSize": 10},
                    "encoding": {"text": {"field": "pass@1", "type": "quantitative", "format": ".1f"}},
                },
            ],
        },
    }


def _facet(spec: dict[str, Any]) -> dict[str, Any]:
    """A layered chart split into columns by `panel` (Vega-Lite needs the top-level facet form for layers)."""
    inner = {k: v for k, v in spec.items() if k not in ("title", "data", "facet")}
    facet = {"field": "panel", "type": "nominal", "title": None, "sort": {"field": "panel_order"}}
    return {"title": spec["title"], "data": spec["data"], "facet": {"column": facet}, "spec": inner}


def finished_specs(data: dict[str, Rows]) -> dict[str, dict[str, Any]]:
    specs = figure_specs(data)
    specs["pass_rate_by_source"] = _facet(specs["pass_rate_by_source"])
    specs["eval_scores"] = _facet(specs["eval_scores"])
    for spec in specs.values():
        spec["$schema"] = "https://vega.github.io/schema/vega-lite/v5.json"
        spec["config"] = {
            "font": "sans-serif",
            "title": {"anchor": "start", "fontSize": 15, "subtitleFontSize": 12},
            "axis": {"labelLimit": 260},
        }
    return specs


def render_svg(spec: dict[str, Any]) -> str:
    import vl_convert

    return vl_convert.vegalite_to_svg(spec, vl_version=VL_VERSION)


def plots_template() -> str:
    """An HTML page template for `dvc plots show/diff --html-template` with Vega, Vega-Lite and
    Vega-Embed inlined (DVC's default page loads them from a CDN, which an air-gapped cluster cannot reach)."""
    import vl_convert

    bundle = vl_convert.javascript_bundle(vl_version=VL_VERSION).replace("</script", "<\\/script")
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n{refresh_tag}\n<title>distillery: DVC plots</title>\n'
        f"<script>\n{bundle}\n</script>\n"
        "<style>body { font-family: sans-serif; } table { border-spacing: 15px; }</style>\n"
        "</head>\n<body>\n{plot_divs}\n</body>\n</html>\n"
    )


# --- the stage ------------------------------------------------------------------------------------


def read_metrics(paths: list[Path]) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(require(p, "metrics file").read_text()) for p in paths}


Paths = STAGE.paths_record()  # its files, by the names its declaration gives them


# Problems read at a time, and uuids per block of their merged uuid order (a uuid and a number each).
PROBLEM_BATCH_ROWS = 8192


class SourcesInUuidOrder:
    """The problems' sources for uuids that come in uuid order (the judged table's), without the
    problems' uuids in memory: each problem's source is held as a number (a corpus has a handful of
    sources), its uuid goes to an external sort (`tables.UuidOrder`), and `of` walks the merged
    order beside the judged batches (a merge join)."""

    def __init__(self, problems: Path, spool: Path):
        self.order = UuidOrder(spool, PROBLEM_BATCH_ROWS)
        number: dict[str | None, int] = {}
        codes = [np.zeros(0, np.uint32)]
        for batch in iter_table(problems, PROBLEMS, ["uuid", "source"], PROBLEM_BATCH_ROWS):
            self.order.add(batch["uuid"])
            codes.append(np.fromiter((number.setdefault(s, len(number)) for s in batch["source"].to_list()), np.uint32, batch.height))
        self.codes = np.concatenate(codes)
        self.names = pl.Series("source", list(number), dtype=pl.String)
        self._blocks = self.order.merge()
        in_order = (
            block.select("uuid").with_columns(self.names.gather(self.codes[block["sample_index"].to_numpy()])) for block in self._blocks
        )
        self._sources = UuidCursor(in_order, {"uuid": pl.String, "source": pl.String})

    def of(self, last: str) -> pl.DataFrame:
        """(uuid, source) of the problems after the last call's, up to uuid `last`."""
        return self._sources.upto(last)

    def close(self) -> None:
        self._blocks.close()


def run(cfg: ReportConfig, paths: Paths) -> None:
    columns = ["uuid", "completion_tokens", "correctness_math_verify", "correctness_llama", "verify_status", "judge_verdict"]
    check_table(paths.judged, JUDGED, columns)
    paths.plots_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".report-spool-", dir=paths.plots_dir.parent) as spool:
        sources = SourcesInUuidOrder(paths.problems, Path(spool))
        # The judged table a batch of whole problems at a time (it is in uuid order), counted as it goes.
        lengths, by_source, agree = Counter(), {}, Counter()
        try:
            for batch in iter_groups(iter_table(paths.judged, JUDGED, columns), "uuid", f"{JUDGED.name} {paths.judged}"):
                lengths.update(length_counts(batch, cfg.length_bins))
                agree.update(agreement_counts(batch))
                for source, c in pass_counts(batch, sources.of(batch["uuid"][-1])).items():
                    by_source.setdefault(source, Counter()).update(c)
        finally:
            sources.close()
    evaluate = json.loads(require(paths.evaluate, "evaluate metrics").read_text())
    data = {
        "generation_lengths": length_rows(lengths, cfg.length_bins),
        "pass_rate_by_source": pass_rows(by_source),
        "verify_vs_judge": agreement_rows(agree),
        "eval_scores": eval_scores(evaluate, cfg.compare_with),
        "scaling_curve": scaling_curve(evaluate),
    }
    paths.figures_dir.mkdir(parents=True, exist_ok=True)
    for name, spec in finished_specs(data).items():
        write_json(data[name], paths.plots_dir / f"{name}.json")
        (paths.figures_dir / f"{name}.svg").write_text(render_svg(spec))
    paths.stage_counts.parent.mkdir(parents=True, exist_ok=True)
    paths.stage_counts.write_text(stage_counts_html(stage_counts(read_metrics(paths.stage_metrics))))
    log.info("report: %d plots in %s, figures in %s, stage counts in %s", len(data), paths.plots_dir, paths.figures_dir, paths.stage_counts)
