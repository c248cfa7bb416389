"""curate: cut a small subset (s1K's 1,000, LIMO's 817) from the built dataset by a named method,
with every row's choice recorded: selected, or the first filter it failed (distillery.curation).

Writes the subset in the dataset's own schema (data/curate/subset/, with a card that names the
method, its settings, the sizes after each filter and the source dataset's licences), the choice of
every row (data/curate/selection.parquet) and the selection report's plot data (plots/curate/):
domains, trace lengths and pass rates, before the filters, after them, and selected.
Rows in = selected + not selected, by reason. Seeded and deterministic.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from distillery import curation
from distillery.config.curate import STAGE, CurateConfig
from distillery.errors import DistilleryError
from distillery.io import require, write_json
from distillery.metrics import FilterCounts, write_metrics
from distillery.provenance import stamp
from distillery.stages.build import DATASET_SCHEMA
from distillery.tables import CURATE_SELECTION, write_table

log = logging.getLogger(__name__)

SELECTION_COLUMNS = {c: t for c, t in CURATE_SELECTION.schema.items() if c not in ("curate_params", "curate_code")}
PANELS = ("all rows", "after quality and difficulty", "selected")


Paths = STAGE.paths_record()  # its files, by the names its declaration gives them


def read_dataset(path: Path) -> pl.DataFrame:
    path = require(path, "built dataset")
    found = pq.read_schema(path)
    missing = [f.name for f in DATASET_SCHEMA if f.name not in found.names]
    if missing:
        raise DistilleryError(
            f"{path} has no column(s) {missing}: curate cuts from a dataset in the OpenR1-Math-220k schema, as the build stage "
            "writes it (data/build/dataset/<config>/train-00000-of-00001.parquet); re-run `dvc repro build`"
        )
    return pl.read_parquet(path, columns=DATASET_SCHEMA.names)


def method_settings(cfg: CurateConfig) -> curation.S1KSettings | curation.LimoSettings:
    if cfg.method == "s1k":
        s = cfg.s1k
        return curation.S1KSettings(
            size=s.subset_rows,
            max_pass_rate=s.max_pass_rate,
            domain_field=s.domain_field,
            selection=cfg.selection,
            uniform_share=s.uniform_share,
            mix_sources=dict(s.mix_sources),
            drop_bold_digit=s.drop_bold_digit,
        )
    s = cfg.limo
    return curation.LimoSettings(
        size=s.subset_rows, min_correct=s.min_correct, max_correct=s.max_correct, selection=cfg.selection, weights=dict(s.weights)
    )


FINAL_CUT = ("selected", "not_drawn", "not_selected")  # reasons of the rows that passed every filter


def plot_rows(selection: pl.DataFrame, column: str, key: str) -> list[dict[str, Any]]:
    """Counts of `column` (a domain, or curation.distribution's fixed bins) in each panel (all rows,
    after the filters, selected), for the distillery_bars template: one panel each, the same bars in
    the same order in every panel."""
    frames = (selection, selection.filter(pl.col("reason").is_in(FINAL_CUT)), selection.filter(pl.col("selected")))
    label = "domain" if column == "domain" else "bin"
    order = curation.distribution(selection, column, selected_only=False)[label].to_list()
    rows = []
    for p, (name, frame) in enumerate(zip(PANELS, frames)):
        found = dict(curation.distribution(frame, column, selected_only=False).select(label, "count").rows())
        rows += [{key: v, "problems": found.get(v, 0), "panel": name, "panel_order": p, "order": i} for i, v in enumerate(order)]
    return rows


def subset_card(cfg: CurateConfig, sizes: dict[str, Any], source_card: str, n: int) -> str:
    settings = json.dumps(cfg.model_dump(mode="json"), indent=2, sort_keys=True)
    licences = (
        source_card.split("## Sources and licences", 1)[1].split("\n## ", 1)[0].strip() if "## Sources and licences" in source_card else ""
    )
    method = {
        "s1k": "s1K's (Muennighoff et al. 2025): quality filters (with s1's bold-digit filter), difficulty (the teacher's pass "
        "rate stands in for two weaker models), then domains drawn uniformly for the first `uniform_share` of the rows and "
        "by the domain mix of `mix_sources` after (s1's code: 700 of 1,000, then the AIME and GPQA mix) and, within a "
        "domain, a problem drawn with probability proportional to 2^-(rank of its trace length), longest first",
        "limo": "LIMO's (Ye et al. 2025): problems solved by few of the teacher's generations, then the chains ranked by "
        "rule-based signs of quality (self-verification, exploration, elaboration, length; LIMO published the shares but "
        "not its keyword lists or scales, so the weights and scales are ours)",
    }[cfg.method]
    return f"""# Curated subset: {n} problems ({cfg.method})

Cut from the `{cfg.split}` config of the built dataset by {method}. Every row's choice, with the
first filter a row failed, is in `data/curate/selection.parquet`; the same rows and columns as the
dataset (OpenR1-Math-220k schema), in the order they were drawn.

## Sizes after each filter

```json
{json.dumps(sizes, indent=2, sort_keys=True)}
```

## Sources and licences (of the dataset it was cut from)

{licences or "See the source dataset's card."}

## Settings

```json
{settings}
```
"""


def run(cfg: CurateConfig, seed: int, paths: Paths) -> FilterCounts:
    dataset = read_dataset(paths.dataset)
    if not dataset.height:
        raise DistilleryError(f"curate: {paths.dataset} has no rows: nothing to select from (check build's metrics, metrics/build.json)")
    selection = curation.select(dataset, cfg.method, method_settings(cfg), seed)
    counts = FilterCounts(rows_in=dataset.height)
    counts.keep(int(selection["selected"].sum()))
    for reason, n in selection.filter(~pl.col("selected")).group_by("reason").len().sort("reason").rows():
        counts.rejected[reason] += n
    counts.check("curate")
    settings = {**cfg.model_dump(mode="json"), "seed": seed}
    selection = selection.select(list(SELECTION_COLUMNS)).sort("uuid")
    write_table(stamp(selection, "curate", settings), paths.selection, CURATE_SELECTION)

    chosen = selection.filter(pl.col("selected")).select("uuid", "draw_order")
    subset = dataset.join(chosen, on="uuid").sort("draw_order").drop("draw_order")
    paths.subset_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(subset.to_arrow().cast(DATASET_SCHEMA), paths.subset_dir / "train-00000-of-00001.parquet")
    sizes = curation.stage_sizes(selection)
    source_card = paths.card.read_text() if paths.card.is_file() else ""
    (paths.subset_dir / "README.md").write_text(subset_card(cfg, sizes, source_card, subset.height))

    write_json(plot_rows(selection, "domain", "domain"), paths.plots_dir / "domains.json")
    write_json(plot_rows(selection, "trace_words", "bin"), paths.plots_dir / "trace_lengths.json")
    write_json(plot_rows(selection, "pass_rate", "pass_rate"), paths.plots_dir / "difficulty.json")

    def by(frame: pl.DataFrame, column: str) -> dict[str, int]:
        label = "domain" if column == "domain" else "bin"
        counts = curation.distribution(frame, column, selected_only=False).select(label, "count").rows()
        return dict(sorted(counts)) if column == "domain" else {k: n for k, n in counts if n}

    picked = selection.filter(pl.col("selected"))
    write_metrics(
        paths.metrics,
        "curate",
        method=cfg.method,
        counts=counts.as_dict(),
        sizes=sizes,
        domains_before=by(selection, "domain"),
        domains_selected=by(picked, "domain"),
        trace_words_median_before=selection["trace_words"].median(),
        trace_words_median_selected=picked["trace_words"].median() if picked.height else None,
        pass_rate_before=by(selection, "pass_rate"),
        pass_rate_selected=by(picked, "pass_rate"),
        draw_phases={p: int(n) for p, n in sorted(picked.drop_nulls("phase").group_by("phase").len().rows())},
    )
    asked = method_settings(cfg).size  # the subset size the settings of curate.method ask for
    if subset.height < asked:
        # Never silent: the console shows this warning (the Snakefile's onsuccess prints stage warnings).
        log.warning(
            "curate: curate.%s asks for %d problems but the dataset's %s config has %d rows%s, so %d are selected "
            "(metrics/curate.json: counts.rejected_by_reason)",
            cfg.method,
            asked,
            cfg.split,
            dataset.height,
            "" if subset.height == dataset.height else f" ({subset.height} pass its filters)",
            subset.height,
        )
    log.info("curate: %s", counts.as_dict())
    return counts
