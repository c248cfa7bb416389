"""mix: the ingested corpora and the project's own problems and generations, in one pair of tables
that verify, judge, dedupe and build read as they read sample's and generate's.

A source's cap is a seeded draw nested like sample.n: problems are ranked by a hash of the seed, the
source and their key, and the first `cap` are kept, so raising a cap keeps what a smaller one kept
(and the verdicts already paid for). Duplicates across sources are not removed here: dedupe sees
every problem of the mix, so a problem two corpora share is one problem in the dataset, and the
benchmark decontamination covers the corpora as it covers the own problems.
Problems in = problems kept + problems left out (over_cap), per source.
"""

from __future__ import annotations

import logging

import polars as pl

from distillery.config.base import RESERVED_SOURCE
from distillery.config.mix import STAGE, MixConfig
from distillery.errors import DistilleryError
from distillery.keys import derive_seed
from distillery.metrics import FilterCounts, write_metrics
from distillery.provenance import stamp
from distillery.tables import (
    GENERATIONS,
    INGESTED_GENERATIONS,
    INGESTED_PROBLEMS,
    MIX_LEFT_OUT,
    MIXED_GENERATIONS,
    MIXED_PROBLEMS,
    PROBLEMS,
    read_table,
    write_table,
)

log = logging.getLogger(__name__)

LEFT_OUT_COLUMNS = {c: t for c, t in MIX_LEFT_OUT.schema.items() if c not in ("mix_params", "mix_code")}


Paths = STAGE.paths_record()  # its files, by the names its declaration gives them


def own_tables(paths: Paths) -> tuple[pl.DataFrame, pl.DataFrame]:
    if paths.own_problems is None or paths.own_generations is None:
        raise DistilleryError("mix: mix.own is true but no --own-problems/--own-generations were given (rules/mix.smk passes them)")
    problems = read_table(paths.own_problems, PROBLEMS).with_columns(
        pl.lit(RESERVED_SOURCE).alias("corpus"), pl.lit("gold").alias("answer_origin"), pl.lit(None, dtype=pl.String).alias("licence")
    )
    return problems, read_table(paths.own_generations, GENERATIONS)


def capped(problems: pl.DataFrame, caps: dict[str, int], seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(kept, left out) of `problems` under the per-corpus caps: the first `cap` of each corpus in
    the order of a seeded hash of (corpus, uuid)."""
    ranked = problems.with_columns(
        pl.struct("corpus", "uuid")
        .map_elements(lambda r: derive_seed(seed, f"mix:{r['corpus']}:{r['uuid']}"), return_dtype=pl.UInt64)
        .alias("_rank")
    ).sort("corpus", "_rank", "uuid")
    ranked = ranked.with_columns(pl.int_range(pl.len()).over("corpus").alias("_position"))
    cap = pl.col("corpus").replace_strict(caps, default=None, return_dtype=pl.Int64)
    over = cap.is_not_null() & (pl.col("_position") >= cap)
    return ranked.filter(~over).drop("_rank", "_position"), ranked.filter(over).with_columns(cap.alias("_cap"))


def run(cfg: MixConfig, seed: int, paths: Paths) -> FilterCounts:
    frames = [(read_table(paths.ingested_problems, INGESTED_PROBLEMS), read_table(paths.ingested_generations, INGESTED_GENERATIONS))]
    if cfg.own:
        frames.insert(0, own_tables(paths))
    problems = pl.concat([p.select(MIXED_PROBLEMS.columns) for p, _ in frames])
    generations = pl.concat([g.select(MIXED_GENERATIONS.columns) for _, g in frames])
    clash = problems.filter(pl.col("uuid").is_duplicated())
    if clash.height:
        raise DistilleryError(f"bug: problem keys {clash['uuid'].unique().to_list()[:5]} occur in two sources; keys are made per source")
    counts = FilterCounts(rows_in=problems.height)
    kept, over = capped(problems, cfg.caps, seed)
    counts.reject_all(
        "over_cap",
        over.select(
            "uuid",
            "corpus",
            pl.format("position {} past mix.caps.{} = {}", pl.col("_position") + 1, pl.col("corpus"), pl.col("_cap")).alias("detail"),
        ),
    )
    counts.keep(kept.height)
    counts.check("mix")
    settings = {**cfg.model_dump(mode="json"), "seed": seed}
    kept = kept.sort("corpus", "source_row", "uuid")
    write_table(kept, paths.mixed_problems, MIXED_PROBLEMS)
    mixed_generations = generations.join(kept.select("uuid"), on="uuid", how="semi").sort("uuid", "sample_index")
    write_table(mixed_generations, paths.mixed_generations, MIXED_GENERATIONS)
    write_table(stamp(counts.rejected_rows(LEFT_OUT_COLUMNS), "mix", settings), paths.left_out, MIX_LEFT_OUT)

    def per_corpus(df: pl.DataFrame) -> dict[str, int]:
        return dict(sorted(df.group_by("corpus").len().rows())) if df.height else {}

    write_metrics(
        paths.metrics,
        "mix",
        counts=counts.as_dict(),
        problems_in_by_source=per_corpus(problems),
        problems_kept_by_source=per_corpus(kept),
        generations_by_source=per_corpus(mixed_generations.join(kept.select("uuid", "corpus"), on="uuid")),
        licences={c: lic for c, lic in sorted(kept.select("corpus", "licence").unique().rows()) if lic},
    )
    log.info("mix: %s", counts.as_dict())
    return counts
