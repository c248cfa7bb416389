"""Rounds of generation: where each round's files live, and which problems a later round samples.

Round 1 is generate's `num_generations` for every problem; each entry of `generate.rounds` is a
later round, run after verify and judge have seen the rounds before it (rules/generate.smk). Round
r's gathered tables hold every round up to r (the rows of the rounds before, then its own, merged in
key order), so the last round's judged table is what dedupe and every later stage read. Round 1's
files keep the paths they have always had; round r's are under `round-<r>/` beside them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import polars as pl

from distillery.config.generate import GenerateConfig, RoundCondition

# The columns `outcome` reads, as the judged table names them.
OUTCOME_COLUMNS = ["error", "generation", "finish_reason", "is_reasoning_complete", "correctness_math_verify", "correctness_llama"]


def number_of_rounds(cfg: GenerateConfig) -> int:
    return 1 + len(cfg.rounds)


def later_rounds(params: Any) -> list[int]:
    """The numbers of the rounds after the first (2, 3, ...)."""
    return list(range(2, number_of_rounds(params.generate) + 1))


def stage_dir(stage: str, round_number: int) -> str:
    """data/<stage> for round 1, data/<stage>/round-<r> for a later one."""
    return f"data/{stage}" if round_number == 1 else f"data/{stage}/round-{round_number}"


def metrics_name(stage: str, round_number: int) -> str:
    """The name of a round's metrics file (metrics/<name>.json) and of its DVC stage."""
    return stage if round_number == 1 else f"{stage}_round_{round_number}"


def judged_path(round_number: int) -> str:
    """Round r's judged table: the generations of rounds 1..r with every verdict."""
    return f"{stage_dir('judge', round_number)}/judged.parquet"


def final_judged(params: Any) -> str:
    """The judged table of every round: what dedupe, build, preferences and report read."""
    return judged_path(number_of_rounds(params.generate))


def outcome(row: dict, selection: str) -> str:
    """correct, wrong, truncated or failed (config.generate.Outcome): as preferences labels its sides."""
    from distillery.stages.build import is_correct  # build imports the config; a module-level import would cycle

    if row["error"] is not None or row["generation"] is None:
        return "failed"
    if row["finish_reason"] == "length":
        return "truncated"
    complete = bool(row["is_reasoning_complete"]) and row["finish_reason"] == "stop"
    if is_correct(row["correctness_math_verify"], row["correctness_llama"], complete, selection):
        return "correct"
    return "wrong" if complete else "failed"


def matches(outcomes: Iterable[str], when: RoundCondition) -> bool:
    """Whether a problem whose generations so far came to `outcomes` is sampled by a round with `when`."""
    seen = list(outcomes)
    if when.every is not None:
        return bool(seen) and all(o == when.every for o in seen)
    return sum(o == when.count for o in seen) < when.fewer_than


def selected_problems(judged: pl.DataFrame, when: RoundCondition) -> list[str]:
    """The problems (uuid, sorted) a round with `when` samples: those with generations of the
    project's own rounds (`round` set: a corpus's rows are never sampled again) matching it."""
    own = judged.filter(pl.col("round").is_not_null())
    by_problem: dict[str, list[str]] = {}
    for row in own.select("uuid", *OUTCOME_COLUMNS).iter_rows(named=True):
        by_problem.setdefault(row["uuid"], []).append(outcome(row, when.selection))
    return sorted(u for u, seen in by_problem.items() if matches(seen, when))


def round_label(round_number: int | None) -> str:
    """A round's key in the metrics: its number, or `corpus` for a published corpus's rows."""
    return "corpus" if round_number is None else str(round_number)


def by_round(counts: dict[str, int]) -> dict[str, int]:
    """Counts keyed by round_label, in round order (a corpus's last)."""
    return dict(sorted(counts.items(), key=lambda kv: (kv[0] == "corpus", int(kv[0]) if kv[0] != "corpus" else 0)))


def count_by_round(df: pl.DataFrame, column: str = "round") -> dict[str, int]:
    """Rows of `df` per round (add_counts sums them over batches; by_round orders the total)."""
    return {round_label(r): n for r, n in df.group_by(column).len().iter_rows()}


def first_solved_round(df: pl.DataFrame, selection: str = "either") -> dict[str, int]:
    """Problems of `df` (whole problems) by the first round with a correct generation: a later round's
    count is the problems it recovered. Unsolved problems are not counted."""
    own = df.filter(pl.col("round").is_not_null())
    first: dict[str, int] = {}
    for row in own.select("uuid", "round", *OUTCOME_COLUMNS).iter_rows(named=True):
        if outcome(row, selection) == "correct":
            first[row["uuid"]] = min(first.get(row["uuid"], row["round"]), row["round"])
    out: dict[str, int] = {}
    for r in first.values():
        out[str(r)] = out.get(str(r), 0) + 1
    return out
