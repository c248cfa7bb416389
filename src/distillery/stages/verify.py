"""verify: check every generation's boxed final answer against the gold with Math-Verify.

Adds per generation: extracted_answer, is_reasoning_complete, correctness_math_verify and
verify_status (one of verification.STATUSES: ok, mismatch, hedged, no_answer, ..., gold_malformed).

One job per generation shard (`run_shard`, the problems whose key hashes to it, as generate's
shards), streaming its rows a batch at a time, so a job's memory does not grow with the shard;
`gather` merges the shards in key order and counts. `run` is both in one process.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from distillery.config import VerifyConfig
from distillery.io import write_json
from distillery.keys import shard_of
from distillery.metrics import write_metrics
from distillery.provenance import library_version, stamp
from distillery.tables import (
    GENERATIONS,
    PROBLEMS,
    VERIFIED,
    TableWriter,
    check_table,
    gather_sorted,
    iter_groups,
    iter_table,
    read_table,
    write_table,
)
from distillery.verification import STATUSES, DeadlinePool, check_many, gold_problem

log = logging.getLogger(__name__)


def is_reasoning_complete(generation: str | None, finish_reason: str | None) -> bool:
    """The teacher stopped on its own and closed any reasoning block it opened."""
    if not generation or finish_reason != "stop":
        return False
    return "<think>" not in generation or "</think>" in generation


@dataclass(frozen=True)
class ShardPaths:
    """One verify job's files, by the names rules/verify.smk gives them."""

    generations: Path  # generate's shard, or the whole mixed table (only this shard's problems are read)
    problems: Path
    verified: Path
    figures: Path  # the shard's counts that are not in its table (workers killed), for gather


@dataclass(frozen=True)
class GatherPaths:
    """verify_gather's files."""

    shards: list[Path]
    figures: list[Path]
    problems: Path
    verified: Path
    metrics: Path


@dataclass(frozen=True)
class Paths:
    """verify in one process (one shard and its gather): the files, as rules/verify.smk names them."""

    generations: Path
    problems: Path
    verified: Path
    metrics: Path


# What the counts need of every row: short columns only, never the texts.
COUNTED = ["uuid", "verify_status", "correctness_math_verify", "is_reasoning_complete"]


def shard_batches(path: Path, shard: int, num_shards: int) -> Iterator[pl.DataFrame]:
    """This shard's generations, a batch at a time, every problem's rows together."""
    for batch in iter_groups(iter_table(path, GENERATIONS), "uuid", str(path)):
        if num_shards > 1:
            mine = [u for u in batch["uuid"].unique().to_list() if shard_of(u, num_shards) == shard]
            batch = batch.filter(pl.col("uuid").is_in(mine))
        if batch.height:
            yield batch


def verify_batch(batch: pl.DataFrame, golds: pl.DataFrame, cfg: VerifyConfig, pool: DeadlinePool) -> pl.DataFrame:
    df = batch.join(golds, on="uuid", how="left", maintain_order="left").sort("uuid", "sample_index")
    grouped = df.group_by("uuid", maintain_order=True).agg(pl.col("answer").first(), pl.col("generation"))
    checks = check_many(((row["answer"] or "", row["generation"]) for row in grouped.iter_rows(named=True)), cfg, pool=pool)
    flat = [c for per_problem in checks for c in per_problem]
    complete = [is_reasoning_complete(g, f) for g, f in zip(df["generation"], df["finish_reason"])]
    out = df.drop("answer").with_columns(
        pl.Series("extracted_answer", [c.extracted for c in flat], dtype=pl.String),
        pl.Series("is_reasoning_complete", complete, dtype=pl.Boolean),
        pl.Series("correctness_math_verify", [c.correct for c in flat], dtype=pl.Boolean),
        pl.Series("verify_status", [c.status for c in flat], dtype=pl.String),
    )
    return stamp(out, "verify", cfg.model_dump(mode="json"), verifier=library_version("math-verify"))


def run_shard(cfg: VerifyConfig, shard: int, num_shards: int, paths: ShardPaths) -> dict:
    """Shard `shard` of `num_shards`: its verified rows in key order, and its figures."""
    golds = read_table(paths.problems, PROBLEMS, columns=["uuid", "answer"])
    pool = DeadlinePool(cfg, cfg.workers)
    started, rows = time.monotonic(), 0
    try:
        with TableWriter(paths.verified, VERIFIED) as writer:
            for batch in shard_batches(paths.generations, shard, num_shards):
                writer.write(verify_batch(batch, golds, cfg, pool))
                rows += batch.height
    finally:
        pool.close()
    figures = {"shard": shard, "num_shards": num_shards, "generations": rows, "workers_killed_at_deadline": pool.stats.killed}
    write_json(figures, paths.figures)
    log.info(
        "verify shard %d/%d: %d generations in %.1fs with %d workers; slowest answer %.2fs; %d workers killed at the %.0fs deadline",
        shard,
        num_shards,
        rows,
        time.monotonic() - started,
        cfg.workers,
        pool.stats.slowest_item_s,
        pool.stats.killed,
        cfg.item_deadline_s,
    )
    return figures


def gather(paths: GatherPaths) -> None:
    counted = [b.select(COUNTED) for b in gather_sorted(paths.shards, VERIFIED, paths.verified)]
    figures = [json.loads(Path(f).read_text()) for f in paths.figures]
    write_report(counted, figures, paths.problems, paths.metrics)


def run(cfg: VerifyConfig, paths: Paths) -> pl.DataFrame:
    """Every generation in one process (a table that fits in memory: tests, a small corpus); returned."""
    check_table(paths.generations, GENERATIONS)
    check_table(paths.problems, PROBLEMS, columns=["uuid", "answer"])
    paths.verified.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=paths.verified.parent) as tmp:
        generations, figures = paths.generations, Path(tmp) / "figures.json"
        keys = read_table(generations, GENERATIONS, columns=["uuid", "sample_index"])
        if not keys.equals(keys.sort("uuid", "sample_index")):  # shards are in key order; any other table is put in it
            generations = Path(tmp) / "generations.parquet"
            write_table(read_table(paths.generations, GENERATIONS).sort("uuid", "sample_index"), generations, GENERATIONS)
        run_shard(cfg, 0, 1, ShardPaths(generations=generations, problems=paths.problems, verified=paths.verified, figures=figures))
        write_report(
            [read_table(paths.verified, VERIFIED, columns=COUNTED)], [json.loads(figures.read_text())], paths.problems, paths.metrics
        )
    return read_table(paths.verified, VERIFIED)


def write_report(counted: list[pl.DataFrame], figures: list[dict], problems_path: Path, metrics: Path) -> None:
    """metrics/verify.json from the short columns of every verified row and the shards' figures."""
    out = pl.concat(counted) if counted else pl.DataFrame(schema={c: VERIFIED.schema[c] for c in COUNTED})
    status = out.group_by("verify_status").len()
    counts = {s: 0 for s in STATUSES} | dict(zip(status["verify_status"], status["len"]))
    solved = out.filter(pl.col("correctness_math_verify") & pl.col("is_reasoning_complete"))["uuid"].n_unique()
    # A problem's status is its best generation's, in the order of STATUSES (ok first).
    rank = {s: i for i, s in enumerate(STATUSES)}
    best = out.group_by("uuid").agg(pl.col("verify_status").replace_strict(rank, return_dtype=pl.Int64).min().alias("r"))
    problem_counts = {s: 0 for s in STATUSES} | {
        STATUSES[r]: n for r, n in zip(*best.group_by("r").len().to_dict(as_series=False).values())
    }
    problems = out["uuid"].n_unique()
    golds = read_table(problems_path, PROBLEMS, columns=["uuid", "answer"]).join(best.select("uuid"), on="uuid", how="semi")
    malformed = sorted(u for u, a in golds.iter_rows() if gold_problem(a or ""))
    if malformed:
        log.warning(
            "verify: %d problems have a gold with unbalanced braces (e.g. %s); none of their generations can be "
            "accepted (gold_malformed). Fix the answer in the source data or drop those problems.",
            len(malformed),
            ", ".join(malformed[:5]),
        )
    write_metrics(
        metrics,
        "verify",
        generations=out.height,
        generations_by_status=counts,
        problems_by_best_status=problem_counts,
        generations_correct=int(out["correctness_math_verify"].sum()),
        generations_complete=int(out["is_reasoning_complete"].sum()),
        problems=problems,
        problems_with_correct_generation=solved,
        problem_pass_rate=round(solved / problems, 4) if problems else 0.0,
        problems_with_malformed_gold=len(malformed),
        workers_killed_at_deadline=sum(f["workers_killed_at_deadline"] for f in figures),
        shards={f"shard-{f['shard']}": f["generations"] for f in figures},
    )
    log.info("verify: %s", counts)
