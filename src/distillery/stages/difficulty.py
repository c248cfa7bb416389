"""difficulty: GRPO's problems by their pass rate under the model GRPO starts from.

Each candidate (a dataset problem with a usable gold) is sampled `difficulty.samples` times from
`difficulty.llm` with the prompt GRPO gives it (the problem as one user message), and each sample is
scored by GRPO's own accuracy reward (distillery.rewards.Verdicts: verify's settings, a truncated
sample never correct, an unparseable gold unusable). A problem whose pass rate lies in
[min_pass_rate, max_pass_rate] is kept; the others are counted by reason (too_easy, too_hard,
no_gold, gold_malformed, unusable_gold, no_answer, over_max_problems). A group GRPO draws from a
problem every sample solves, or none does, has equal rewards: no advantage, no gradient.

Requests are journaled like every LLM stage's (distillery.llm.task): re-running, or widening the
range, sends nothing twice.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import polars as pl

from distillery.config.difficulty import STAGE, DifficultyConfig
from distillery.config.verify import VerifyConfig
from distillery.errors import DistilleryError
from distillery.io import require
from distillery.llm.task import LLMTask, TaskDirs
from distillery.metrics import FilterCounts, write_metrics
from distillery.rewards import Verdicts
from distillery.verification import gold_problem, unbox_gold

log = logging.getLogger(__name__)

Paths = STAGE.paths_record()  # its files, by the names its declaration gives them

KEPT_SCHEMA = {"uuid": pl.String, "split": pl.String, "problem": pl.String, "answer": pl.String, "pass_rate": pl.Float64}
REJECTED_SCHEMA = {"uuid": pl.String, "split": pl.String, "reason": pl.String, "pass_rate": pl.Float64}
PASS_RATES_SCHEMA = {"uuid": pl.String, "samples": pl.Int64, "correct": pl.Int64, "pass_rate": pl.Float64}


class DifficultyTask(LLMTask[dict]):
    """`samples` answers per problem, asked as GRPO asks: the problem as the one user message."""

    stage = "difficulty"

    def __init__(self, cfg: DifficultyConfig, seed: int, dirs: TaskDirs | None = None):
        super().__init__(cfg.llm, seed, dirs)
        self.cfg = cfg

    def messages(self, item: dict) -> list[tuple[str, str]]:
        return [("user", item["problem"])]

    def samples(self, item: dict) -> int:
        return self.cfg.samples


def candidates(files: list[Path]) -> pl.DataFrame:
    """uuid, split, problem, answer of every row of the dataset splits, in order."""
    frames = [
        pl.read_parquet(require(f, "dataset split"), columns=["uuid", "problem", "answer"]).with_columns(
            pl.lit(f.parent.name, dtype=pl.String).alias("split")
        )
        for f in files
    ]
    return pl.concat([pl.DataFrame(schema={"uuid": pl.String, "problem": pl.String, "answer": pl.String, "split": pl.String}), *frames])


def in_range(rate: float, cfg: DifficultyConfig) -> str | None:
    """None when kept, else the reason: too_hard below the range, too_easy above it."""
    if rate < cfg.min_pass_rate:
        return "too_hard"
    if rate > cfg.max_pass_rate:
        return "too_easy"
    return None


def run(cfg: DifficultyConfig, seed: int, verify: VerifyConfig, word_golds: str, paths: Any) -> dict[str, Any]:
    rows = candidates(list(paths.dataset))
    counts = FilterCounts(rows_in=rows.height)
    verdicts = Verdicts(verify, verify.workers, frozenset(), word_golds)
    kept, rejected, rates = [], [], []

    def reject(r: dict, reason: str, rate: float | None = None) -> None:
        counts.reject(reason)
        rejected.append({"uuid": r["uuid"], "split": r["split"], "reason": reason, "pass_rate": rate})

    items = []
    for i, r in enumerate(rows.iter_rows(named=True)):
        gold = (r["answer"] or "").strip()
        if cfg.max_problems is not None and i >= cfg.max_problems:
            reject(r, "over_max_problems")
        elif not gold:
            reject(r, "no_gold")
        elif gold_problem(unbox_gold(gold)):
            reject(r, "gold_malformed")
        elif verdicts.unusable_before_checking(gold):
            reject(r, "unusable_gold")
        else:
            items.append(r)
    task = DifficultyTask(cfg, seed, TaskDirs(server_logs=paths.server_logs))
    asked = task.ask(items, cfg.sampling) if items else []
    # Failed requests are rows with an error, never answers: left out of the pass rate.
    answered = [a for a in asked if a.answer.error is None and a.answer.text is not None]
    try:
        found = verdicts.judge(
            [a.answer.text for a in answered],
            [a.item["answer"].strip() for a in answered],
            [a.answer.finish_reason != "stop" for a in answered],
        )
    finally:
        verdicts.close()
    per: dict[str, list[bool | None]] = {}
    for a, v in zip(answered, found):
        per.setdefault(a.item["uuid"], []).append(v)
    for r in items:
        got = per.get(r["uuid"], [])
        if not got:
            reject(r, "no_answer")
            continue
        if any(v is None for v in got):  # the verifier could not parse the gold: GRPO gives it no reward
            reject(r, "unusable_gold")
            continue
        correct = sum(bool(v) for v in got)
        rate = correct / len(got)
        rates.append({"uuid": r["uuid"], "samples": len(got), "correct": correct, "pass_rate": rate})
        reason = in_range(rate, cfg)
        if reason:
            reject(r, reason, rate)
        else:
            counts.keep()
            kept.append({**{k: r[k] for k in ("uuid", "split", "problem", "answer")}, "pass_rate": rate})
    counts.check("difficulty")
    for path, data, schema in (
        (paths.kept, kept, KEPT_SCHEMA),
        (paths.rejected, rejected, REJECTED_SCHEMA),
        (paths.pass_rates, rates, PASS_RATES_SCHEMA),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        pl.DataFrame(data, schema=schema, orient="row").write_parquet(path)
    histogram = {
        f"{c}/{cfg.samples}": sum(1 for x in rates if x["correct"] == c and x["samples"] == cfg.samples) for c in range(cfg.samples + 1)
    }
    report = {
        "counts": counts.as_dict(),
        "model": cfg.llm.model,
        "samples_per_problem": cfg.samples,
        "pass_rate_range": [cfg.min_pass_rate, cfg.max_pass_rate],
        "scored": len(rates),
        "mean_pass_rate": round(sum(x["pass_rate"] for x in rates) / len(rates), 6) if rates else None,
        "correct_of_samples": histogram,
        "requests": len(asked),
    }
    write_metrics(paths.metrics, "difficulty", **report)
    if not kept:
        raise DistilleryError(
            f"difficulty: none of the {counts.rows_in} problems has a pass rate in [{cfg.min_pass_rate}, {cfg.max_pass_rate}] "
            f"under {cfg.llm.model} ({dict(counts.rejected)}), so GRPO would have nothing to train on: widen the range "
            "(difficulty.min_pass_rate, difficulty.max_pass_rate) or raise difficulty.samples"
        )
    log.info("difficulty: %s; %d requests, %d sent", counts.as_dict(), task.stats.requests, task.stats.backend_requests_sent)
    return {**report, "sent": task.stats.backend_requests_sent}
