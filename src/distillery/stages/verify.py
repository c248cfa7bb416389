"""verify: check every generation's boxed final answer against the gold with Math-Verify.

Adds per generation: extracted_answer, is_reasoning_complete, correctness_math_verify and
verify_status (one of verification.STATUSES: ok, mismatch, hedged, no_answer, ..., gold_malformed).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from distillery.config import VerifyConfig
from distillery.metrics import write_metrics
from distillery.provenance import library_version, stamp
from distillery.tables import GENERATIONS, PROBLEMS, VERIFIED, read_table, write_table
from distillery.verification import STATUSES, PoolStats, check_many, gold_problem

log = logging.getLogger(__name__)


def is_reasoning_complete(generation: str | None, finish_reason: str | None) -> bool:
    """The teacher stopped on its own and closed any reasoning block it opened."""
    if not generation or finish_reason != "stop":
        return False
    return "<think>" not in generation or "</think>" in generation


@dataclass(frozen=True)
class Paths:
    """The verify stage's files, by the names rules/verify.smk gives them."""

    generations: Path
    problems: Path
    verified: Path
    metrics: Path


def run(cfg: VerifyConfig, paths: Paths) -> pl.DataFrame:
    gens = read_table(paths.generations, GENERATIONS)
    golds = read_table(paths.problems, PROBLEMS, columns=["uuid", "answer"])
    df = gens.join(golds, on="uuid", how="left").sort("uuid", "sample_index")
    grouped = df.group_by("uuid", maintain_order=True).agg(pl.col("answer").first(), pl.col("generation"))
    pool = PoolStats()
    started = time.monotonic()
    checks = check_many(((row["answer"] or "", row["generation"]) for row in grouped.iter_rows(named=True)), cfg, stats=pool)
    elapsed = time.monotonic() - started
    flat = [c for per_problem in checks for c in per_problem]
    complete = [is_reasoning_complete(g, f) for g, f in zip(df["generation"], df["finish_reason"])]
    out = df.drop("answer").with_columns(
        pl.Series("extracted_answer", [c.extracted for c in flat], dtype=pl.String),
        pl.Series("is_reasoning_complete", complete, dtype=pl.Boolean),
        pl.Series("correctness_math_verify", [c.correct for c in flat], dtype=pl.Boolean),
        pl.Series("verify_status", [c.status for c in flat], dtype=pl.String),
    )
    out = stamp(out, "verify", cfg.model_dump(mode="json"), verifier=library_version("math-verify"))
    out = write_table(out, paths.verified, VERIFIED)
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
    malformed = [row["uuid"] for row in grouped.iter_rows(named=True) if gold_problem(row["answer"] or "")]
    if malformed:
        log.warning(
            "verify: %d problems have a gold with unbalanced braces (e.g. %s); none of their generations can be "
            "accepted (gold_malformed). Fix the answer in the source data or drop those problems.",
            len(malformed),
            ", ".join(malformed[:5]),
        )
    write_metrics(
        paths.metrics,
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
        workers_killed_at_deadline=pool.killed,
    )
    log.info(
        "verify: %d generations in %.1fs with %d workers; slowest answer %.2fs; %d workers killed at the %.0fs deadline",
        out.height,
        elapsed,
        cfg.workers,
        pool.slowest_item_s,
        pool.killed,
        cfg.item_deadline_s,
    )
    log.info("verify: %s", counts)
    return out
