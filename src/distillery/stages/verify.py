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

from distillery.config.verify import VerifyConfig
from distillery.io import write_json
from distillery.keys import shard_of
from distillery.metrics import add_counts, write_metrics
from distillery.provenance import library_version, stamp
from distillery.rounds import by_round, count_by_round
from distillery.tables import (
    GENERATIONS,
    GROUP_ROWS,
    PROBLEMS,
    VERIFIED,
    TableWriter,
    check_table,
    gather_sorted,
    iter_groups,
    iter_table,
    read_rows_of,
    read_table,
    sorted_copy,
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
    so_far: Path | None = None  # a later round: the verified table of the rounds before it, merged in


@dataclass(frozen=True)
class Paths:
    """verify in one process (one shard and its gather): the files, as rules/verify.smk names them."""

    generations: Path
    problems: Path
    verified: Path
    metrics: Path


# What the counts need of every row: short columns only, never the texts.
COUNTED = ["uuid", "round", "verify_status", "correctness_math_verify", "is_reasoning_complete"]


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
    keys = read_table(paths.problems, PROBLEMS, columns=["uuid"])["uuid"].to_list()
    mine = [u for u in keys if shard_of(u, num_shards) == shard] if num_shards > 1 else keys
    golds = read_rows_of(paths.problems, PROBLEMS, ["uuid", "answer"], mine)
    del keys, mine
    malformed = sorted(u for u, a in golds.iter_rows() if gold_problem(a or ""))
    pool = DeadlinePool(cfg, cfg.workers)
    started, rows, seen = time.monotonic(), 0, set()
    try:
        with TableWriter(paths.verified, VERIFIED, GROUP_ROWS) as writer:
            for batch in shard_batches(paths.generations, shard, num_shards):
                writer.write(verify_batch(batch, golds, cfg, pool))
                rows += batch.height
                if malformed:
                    seen.update(set(malformed) & set(batch["uuid"].unique().to_list()))
    finally:
        pool.close()
    malformed = [u for u in malformed if u in seen]  # a gold counts where the problem has generations
    if malformed:
        log.warning(
            "verify: %d problems have a gold with unbalanced braces (e.g. %s); none of their generations can be "
            "accepted (gold_malformed). Fix the answer in the source data or drop those problems.",
            len(malformed),
            ", ".join(malformed[:5]),
        )
    figures = {
        "shard": shard,
        "num_shards": num_shards,
        "generations": rows,
        "workers_killed_at_deadline": pool.stats.killed,
        "problems_with_malformed_gold": len(malformed),
    }
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
    counts: dict = {}
    merged = [*([paths.so_far] if paths.so_far else []), *paths.shards]
    for batch in iter_groups(gather_sorted(merged, VERIFIED, paths.verified), "uuid", "the merged verify shards"):
        counts = add_counts(counts, batch_counts(batch))
    write_report(counts, [json.loads(Path(f).read_text()) for f in paths.figures], paths.metrics)


def run(cfg: VerifyConfig, paths: Paths) -> pl.DataFrame:
    """Every generation in one process (a table that fits in memory: tests, a small corpus); returned."""
    check_table(paths.generations, GENERATIONS)
    check_table(paths.problems, PROBLEMS, columns=["uuid", "answer"])
    paths.verified.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=paths.verified.parent) as tmp:
        generations, figures = sorted_copy(paths.generations, GENERATIONS, tmp), Path(tmp) / "figures.json"
        run_shard(cfg, 0, 1, ShardPaths(generations=generations, problems=paths.problems, verified=paths.verified, figures=figures))
        counts = batch_counts(read_table(paths.verified, VERIFIED, columns=COUNTED))
        write_report(counts, [json.loads(figures.read_text())], paths.metrics)
    return read_table(paths.verified, VERIFIED)


def batch_counts(df: pl.DataFrame) -> dict:
    """The counts of rows holding whole problems (they add up over such batches: metrics.add_counts)."""
    status = df.group_by("verify_status").len()
    # A problem's status is its best generation's, in the order of STATUSES (ok first).
    rank = {s: i for i, s in enumerate(STATUSES)}
    best = df.group_by("uuid").agg(pl.col("verify_status").replace_strict(rank, return_dtype=pl.Int64).min().alias("r"))
    solved = pl.col("correctness_math_verify") & pl.col("is_reasoning_complete")
    return {
        "generations": df.height,
        "generations_by_round": count_by_round(df),
        "correct_by_round": count_by_round(df.filter(solved)),
        "generations_by_status": dict(zip(status["verify_status"], status["len"])),
        "problems_by_best_status": {STATUSES[r]: n for r, n in best.group_by("r").len().iter_rows()},
        "generations_correct": int(df["correctness_math_verify"].sum()),
        "generations_complete": int(df["is_reasoning_complete"].sum()),
        "problems": df["uuid"].n_unique(),
        "problems_with_correct_generation": df.filter(solved)["uuid"].n_unique(),
    }


def write_report(counts: dict, figures: list[dict], metrics: Path) -> None:
    """metrics/verify.json from the counts of every verified row and the shards' figures."""
    zeros = {s: 0 for s in STATUSES}
    counts = add_counts({"generations": 0, "problems": 0, "problems_with_correct_generation": 0}, counts)
    problems, solved = counts["problems"], counts["problems_with_correct_generation"]
    write_metrics(
        metrics,
        "verify",
        generations=counts["generations"],
        generations_by_round=by_round(counts.get("generations_by_round", {})),
        correct_by_round=by_round(counts.get("correct_by_round", {})),
        generations_by_status=zeros | counts.get("generations_by_status", {}),
        problems_by_best_status=zeros | counts.get("problems_by_best_status", {}),
        generations_correct=counts.get("generations_correct", 0),
        generations_complete=counts.get("generations_complete", 0),
        problems=problems,
        problems_with_correct_generation=solved,
        problem_pass_rate=round(solved / problems, 4) if problems else 0.0,
        problems_with_malformed_gold=sum(f["problems_with_malformed_gold"] for f in figures),
        workers_killed_at_deadline=sum(f["workers_killed_at_deadline"] for f in figures),
        shards={f"shard-{f['shard']}": f["generations"] for f in figures},
    )
    log.info("verify: %s", zeros | counts.get("generations_by_status", {}))
