"""generate: n teacher generations per problem, sharded by problem key, then gathered.

A later round (generate.rounds, distillery.rounds) samples again only the problems its condition
selects from the verdicts so far, with its own n and sampling, and sample indices that continue
after the rounds before: its requests are new ones, in the same journal.

Each shard is one Snakemake job. A problem's shard is a hash of its key, so shard membership does
not change when the sample grows. Every request has a key (model, revision, rendered prompt,
sampling, sample index) that travels with its row downstream and names it in the shard's journal
(distillery.journal): finished requests are never paid for twice, whether the shard was killed,
the sample grew or another parameter changed.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from distillery.config.base import Sampling
from distillery.config.generate import GenerateConfig, first_sample_index
from distillery.errors import DistilleryError
from distillery.io import utf8_text, write_json
from distillery.keys import shard_of
from distillery.llm.task import Answer, LLMTask, TaskDirs
from distillery.metrics import add_counts, write_metrics
from distillery.prompts import render_problem_prompt
from distillery.rounds import OUTCOME_COLUMNS, by_round, round_label, selected_problems
from distillery.tables import (
    GENERATION_SHARD,
    GENERATIONS,
    GROUP_ROWS,
    JUDGED,
    PROBLEMS,
    TableWriter,
    gather_sorted,
    iter_groups,
    read_table,
    row_count,
)

log = logging.getLogger(__name__)

STAGE = "generate"

# ok: a generation with a finish reason; empty: the server returned no text; no_finish_reason: text
# but no finish reason (cut off or not, unknown); rejected: the request could not be made (empty
# prompt, prompt longer than the context). All are kept; later stages decide what they are worth.
STATUSES = ("ok", "empty", "no_finish_reason", "rejected")


def round_sampling(cfg: GenerateConfig, round_number: int) -> tuple[Sampling, int]:
    """(how the teacher samples, generations per problem) in round `round_number`."""
    if round_number == 1:
        return cfg.sampling, cfg.num_generations
    later = cfg.rounds[round_number - 2]
    return later.sampling or cfg.sampling, later.num_generations


def sampling_record(cfg: GenerateConfig, round_number: int = 1) -> dict:
    sampling, n = round_sampling(cfg, round_number)
    return {**sampling.model_dump(), "n": n} | ({"round": round_number} if round_number > 1 else {})


class GenerateTask(LLMTask[dict]):
    """A round's answers per problem from the teacher, one shard of the problems per task."""

    stage = STAGE

    def __init__(self, cfg: GenerateConfig, seed: int, shard: int = 0, dirs: TaskDirs | None = None, round_number: int = 1):
        label = f"generate shard {shard}/{cfg.num_shards}" + (f" round {round_number}" if round_number > 1 else "")
        super().__init__(cfg.llm, seed, dirs, shard=shard, num_shards=cfg.num_shards, label=label)
        self.cfg, self.round_number = cfg, round_number

    def messages(self, problem: dict) -> list[tuple[str, str]]:
        system = [("system", self.cfg.system_prompt)] if self.cfg.system_prompt else []
        return [*system, ("user", render_problem_prompt(self.cfg.prompt_template, problem["problem"]))]

    def samples(self, problem: dict) -> int:
        return round_sampling(self.cfg, self.round_number)[1]

    def first_sample_index(self, problem: dict) -> int:
        return first_sample_index(self.cfg, self.round_number)


def row_status(answer: Answer) -> str:
    if answer.error:
        return "rejected"
    if not answer.text:
        return "empty"
    if answer.finish_reason in (None, "missing"):
        return "no_finish_reason"
    return "ok"


@dataclass(frozen=True)
class ShardPaths:
    """The files of run_shard, by the names rules/generate.smk gives them."""

    problems: Path
    generations: Path
    judged_so_far: Path | None = None  # a later round: the judged table of every round before it
    run_figures: Path | None = None
    journal: Path | None = None  # None: $DISTILLERY_JOURNAL_DIR/generate
    server_logs: Path | None = None  # None: logs/generate/servers


def round_problems(cfg: GenerateConfig, round_number: int, shard: int, judged_so_far: Path | None) -> set[str] | None:
    """The problems of this shard a later round samples (None in round 1: every problem)."""
    if round_number == 1:
        return None
    if not 2 <= round_number <= 1 + len(cfg.rounds):
        raise DistilleryError(
            f"generate round {round_number} does not exist: generate.rounds names {len(cfg.rounds)} round(s) after the first "
            f"(rounds 2..{1 + len(cfg.rounds)})"
        )
    if judged_so_far is None:
        raise DistilleryError(f"generate round {round_number} needs --judged-so-far: the judged table of the rounds before it")
    # The texts are not needed, only whether there is one: a round reads the verdicts, never the traces.
    judged = read_table(judged_so_far, JUDGED, columns=["uuid", "round", *OUTCOME_COLUMNS])
    judged = judged.with_columns(pl.when(pl.col("generation").is_null()).then(None).otherwise(pl.lit("")).alias("generation"))
    in_shard = [u for u in judged["uuid"].unique().to_list() if shard_of(u, cfg.num_shards) == shard]
    mine = judged.filter(pl.col("uuid").is_in(in_shard))
    return set(selected_problems(mine, cfg.rounds[round_number - 2].when))


def run_shard(cfg: GenerateConfig, seed: int, shard: int, paths: ShardPaths, round_number: int = 1) -> pl.DataFrame:
    """One shard's generations of one round. `paths.run_figures` gets this run's reuse, requests and
    timings: a log, never a hashed output, since they differ from run to run for the same generations."""
    started = time.monotonic()
    if not 0 <= shard < cfg.num_shards:
        raise DistilleryError(f"shard {shard} does not exist: generate.num_shards is {cfg.num_shards} (shards 0..{cfg.num_shards - 1})")
    chosen = round_problems(cfg, round_number, shard, paths.judged_so_far)
    problems = read_table(paths.problems, PROBLEMS, columns=["uuid", "problem"]).to_dicts()
    mine = [p for p in problems if shard_of(p["uuid"], cfg.num_shards) == shard and (chosen is None or p["uuid"] in chosen)]
    task = GenerateTask(cfg, seed, shard, TaskDirs(journal=paths.journal, server_logs=paths.server_logs), round_number)
    log.info("%s: %d problems", task.label, len(mine))
    sampling_settings, _ = round_sampling(cfg, round_number)
    try:
        asked = task.ask(mine, sampling_settings)
    finally:
        if paths.run_figures:
            write_json(shard_figures(task, len(mine), started), paths.run_figures)
    sampling = json.dumps(sampling_record(cfg, round_number), sort_keys=True)
    fingerprint, settings_hash = task.model_fingerprint(), task.settings_hash(cfg)
    rows = [
        {
            "uuid": a.item["uuid"],
            "sample_index": a.sample_index,
            "round": round_number,
            "request_key": a.request.key,
            "generation": utf8_text(a.answer.text),
            "finish_reason": a.answer.finish_reason,
            "status": row_status(a.answer),
            "prompt_tokens": a.answer.prompt_tokens,
            "completion_tokens": a.answer.completion_tokens,
            "error": a.answer.error,
            "teacher_backend": cfg.llm.backend,
            "teacher_model": cfg.llm.model,
            "teacher_revision": cfg.llm.revision,
            "sampling": sampling,
            "teacher_fingerprint": fingerprint,
            "generate_params": settings_hash,
            "generate_code": a.answer.code,
        }
        for a in asked
    ]
    # In key order, as every per-shard table is: gathers merge them in bounded memory (tables.gather_sorted).
    df = pl.DataFrame(rows, schema=GENERATION_SHARD.schema).sort("uuid", "sample_index")
    with TableWriter(paths.generations, GENERATION_SHARD, GROUP_ROWS) as writer:
        writer.write(df)
    st = task.stats
    log.info(
        "%s: done in %.1fs (%d reused, %d generated, %d backend requests)",
        task.label,
        time.monotonic() - started,
        st.reused_from_journal,
        st.generated,
        st.backend_requests_sent,
    )
    return df


def shard_figures(task: GenerateTask, problems: int, started: float) -> dict:
    st = task.stats
    return {
        "shard": task.shard,
        "num_shards": task.num_shards,
        "problems": problems,
        "requests": st.requests,
        "reused_from_journal": st.reused_from_journal,
        "generated": st.generated,
        "failed_after_retries": st.failed_after_retries,
        "backend_requests_sent": st.backend_requests_sent,
        "generated_tokens": st.generated_tokens,
        "generate_s": st.generate_s,
        "generated_tokens_per_s": st.tokens_per_s,
        "wall_s": round(time.monotonic() - started, 3),
        "journal_unreadable_lines": st.journal_unreadable_lines,
    }


@dataclass(frozen=True)
class GatherPaths:
    """The files of gather, by the names rules/generate.smk gives them."""

    shards: list[Path]
    generations: Path
    metrics: Path
    so_far: Path | None = None  # a later round: the gathered generations of the rounds before it, merged in
    throughput: Path | None = None
    shard_figures: list[Path] | None = None


def gather(paths: GatherPaths) -> None:
    """All shards in one file (in a later round, with the generations of the rounds before).
    `paths.metrics` describes the generations only (the same generations give the same bytes,
    whatever was reused); `paths.throughput` (a log) sums this run's figures of the shards
    that ran: reuse, requests sent, tokens per second."""
    # Merged in key order a batch at a time (each holding whole problems), counted as it goes.
    counts: dict = {
        "requests": 0,
        "problems": 0,
        "rejected_requests": 0,
        "empty_completions": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
    }
    merged = [*([paths.so_far] if paths.so_far else []), *paths.shards]
    for batch in iter_groups(gather_sorted(merged, GENERATIONS, paths.generations), "uuid", "the merged generate shards"):
        finish = batch.group_by("finish_reason").len()
        status = batch.group_by("status").len()
        rounds = batch.group_by("round").agg(pl.len().alias("requests"), pl.col("uuid").n_unique().alias("problems"))
        part = {
            "requests": batch.height,
            "problems": batch["uuid"].n_unique(),
            "requests_by_round": {round_label(r): n for r, n in zip(rounds["round"], rounds["requests"])},
            "problems_by_round": {round_label(r): n for r, n in zip(rounds["round"], rounds["problems"])},
            "by_status": dict(zip(status["status"], status["len"])),
            "finish_reasons": dict(zip(finish["finish_reason"].fill_null("none"), finish["len"])),
            "rejected_requests": int(batch["error"].is_not_null().sum()),
            "empty_completions": int((batch["generation"].is_null() | (batch["generation"] == "")).sum()),
            "prompt_tokens": int(batch["prompt_tokens"].fill_null(0).sum()),
            "completion_tokens": int(batch["completion_tokens"].fill_null(0).sum()),
        }
        counts = add_counts(counts, part)
    by_status, finish_reasons = counts.pop("by_status", {}), counts.pop("finish_reasons", {})
    rounds = {k: by_round(counts.pop(k, {})) for k in ("requests_by_round", "problems_by_round")}
    write_metrics(
        paths.metrics,
        STAGE,
        **counts,
        **rounds,
        by_status={s: 0 for s in STATUSES} | by_status,
        finish_reasons=finish_reasons,
        shards={Path(p).stem: row_count(p) for p in paths.shards},  # this round's
    )
    if paths.throughput:
        # A shard that DVC or Snakemake did not re-run has no fresh figures: it sent nothing this run.
        shard_stats = {Path(f).name.split(".")[0]: json.loads(Path(f).read_text()) for f in paths.shard_figures or [] if Path(f).is_file()}

        def total(k: str):
            return sum(s.get(k, 0) for s in shard_stats.values())

        gen_s = total("generate_s")
        write_json(
            {
                "stage": STAGE,
                "reused_from_journal": total("reused_from_journal"),
                "generated": total("generated"),
                "backend_requests_sent": total("backend_requests_sent"),
                "generated_tokens": total("generated_tokens"),
                "generated_tokens_per_shard_s": round(total("generated_tokens") / gen_s, 1) if gen_s else 0.0,
                "shards": shard_stats,
            },
            paths.throughput,
        )
