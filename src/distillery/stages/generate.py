"""generate: n teacher generations per problem, sharded by problem key, then gathered.

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

from distillery.config import GenerateConfig
from distillery.errors import DistilleryError
from distillery.io import read_parquet, write_json, write_parquet
from distillery.journal import journal_dir
from distillery.keys import derive_seed, model_fingerprint, request_key, shard_of
from distillery.llm import Request
from distillery.llm.journaled import run_journaled
from distillery.metrics import write_metrics
from distillery.prompts import render_problem_prompt
from distillery.provenance import params_hash

log = logging.getLogger(__name__)

STAGE = "generate"

GENERATION_SCHEMA = {
    "uuid": pl.String,
    "sample_index": pl.Int64,
    "request_key": pl.String,
    "generation": pl.String,
    "finish_reason": pl.String,
    "status": pl.String,
    "prompt_tokens": pl.Int64,
    "completion_tokens": pl.Int64,
    "error": pl.String,
    "teacher_backend": pl.String,
    "teacher_model": pl.String,
    "teacher_revision": pl.String,
    "sampling": pl.String,
    # Provenance (distillery.provenance): the teacher's contents when it is a local directory, the
    # generate settings that shape a generation, and the code that answered the request.
    "teacher_fingerprint": pl.String,
    "generate_params": pl.String,
    "generate_code": pl.String,
}

# ok: a generation with a finish reason; empty: the server returned no text; no_finish_reason: text
# but no finish reason (cut off or not, unknown); rejected: the request could not be made (empty
# prompt, prompt longer than the context). All are kept; later stages decide what they are worth.
STATUSES = ("ok", "empty", "no_finish_reason", "rejected")


def sampling_record(cfg: GenerateConfig) -> dict:
    return {**cfg.sampling.model_dump(), "n": cfg.num_generations}


def build_requests(problems: list[dict], cfg: GenerateConfig, seed: int) -> list[tuple[str, int, Request]]:
    sampling = cfg.sampling.model_dump()
    out = []
    for p in problems:
        messages = []
        if cfg.system_prompt:
            messages.append(("system", cfg.system_prompt))
        messages.append(("user", render_problem_prompt(cfg.prompt_template, p["problem"])))
        chat = [{"role": r, "content": c} for r, c in messages]
        for i in range(cfg.num_generations):
            key = request_key(cfg.llm.model, cfg.llm.revision, chat, sampling, i)
            out.append((p["uuid"], i, Request(key=key, messages=tuple(messages), seed=derive_seed(seed, key))))
    return out


def utf8_text(text: str | None) -> str | None:
    """Text as parquet can hold it: a server's JSON may carry lone surrogates ("\\ud800"), which
    are not UTF-8; each becomes U+FFFD. The journal keeps the text exactly as it came."""
    if not text:
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def row_status(rec: dict) -> str:
    if rec.get("error"):
        return "rejected"
    if not rec.get("text"):
        return "empty"
    if rec.get("finish_reason") in (None, "missing"):
        return "no_finish_reason"
    return "ok"


@dataclass(frozen=True)
class ShardPaths:
    """The files of run_shard, by the names rules/generate.smk gives them."""

    problems: Path
    generations: Path
    run_figures: Path | None = None


def run_shard(
    cfg: GenerateConfig, seed: int, shard: int, paths: ShardPaths, journal: Path | None = None, server_logs: Path | None = None
) -> pl.DataFrame:
    """One shard's generations. `paths.run_figures` gets this run's reuse, requests and timings: a log,
    never a hashed output, since they differ from run to run for the same generations."""
    started = time.monotonic()
    if not 0 <= shard < cfg.num_shards:
        raise DistilleryError(f"shard {shard} does not exist: generate.num_shards is {cfg.num_shards} (shards 0..{cfg.num_shards - 1})")
    problems = read_parquet(paths.problems, "sampled problems").select("uuid", "problem").to_dicts()
    mine = [p for p in problems if shard_of(p["uuid"], cfg.num_shards) == shard]
    requests = build_requests(mine, cfg, seed)
    label = f"generate shard {shard}/{cfg.num_shards}"
    log.info("%s: %d problems", label, len(mine))
    result = run_journaled(
        cfg.llm,
        cfg.sampling,
        [r for _, _, r in requests],
        journal or journal_dir(STAGE),
        shard,
        cfg.num_shards,
        label,
        server_logs or Path("logs/generate/servers") / f"shard-{shard}",
        STAGE,
    )
    st = result.stats
    stats = {
        "shard": shard,
        "num_shards": cfg.num_shards,
        "problems": len(mine),
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
    if paths.run_figures:
        write_json(stats, paths.run_figures)
    missing = [r.key for _, _, r in requests if r.key not in result.done and r.key not in result.failed]
    if missing:
        raise DistilleryError(f"{label}: the backend returned no completion for {len(missing)} request(s); this is a bug, please report it")
    if result.failed:
        example = next(iter(result.failed.values()))["error"]
        raise DistilleryError(
            f"{label}: {len(result.failed)} of {len(requests)} requests failed after {cfg.llm.openai.max_retries} retries "
            f"(e.g. {example}). They are recorded in {result.journal_path}; every finished request is kept there, so "
            "re-running the shard retries only these."
        )
    sampling = json.dumps(sampling_record(cfg), sort_keys=True)
    fingerprint = model_fingerprint(cfg.llm.model)
    settings_hash = params_hash(STAGE, {**cfg.model_dump(mode="json"), "seed": seed})
    rows = []
    for uuid, index, req in requests:
        rec = result.done[req.key]
        rows.append(
            {
                "uuid": uuid,
                "sample_index": index,
                "request_key": req.key,
                "generation": utf8_text(rec.get("text")),
                "finish_reason": rec.get("finish_reason"),
                "status": row_status(rec),
                "prompt_tokens": rec.get("prompt_tokens"),
                "completion_tokens": rec.get("completion_tokens"),
                "error": rec.get("error"),
                "teacher_backend": cfg.llm.backend,
                "teacher_model": cfg.llm.model,
                "teacher_revision": cfg.llm.revision,
                "sampling": sampling,
                "teacher_fingerprint": fingerprint,
                "generate_params": settings_hash,
                "generate_code": rec.get("code"),  # None: answered before the journal recorded it
            }
        )
    df = pl.DataFrame(rows, schema=GENERATION_SCHEMA)
    write_parquet(df, paths.generations)
    log.info(
        "%s: done in %.1fs (%d reused, %d generated, %d backend requests)",
        label,
        stats["wall_s"],
        st.reused_from_journal,
        st.generated,
        st.backend_requests_sent,
    )
    return df


@dataclass(frozen=True)
class GatherPaths:
    """The files of gather, by the names rules/generate.smk gives them."""

    shards: list[Path]
    generations: Path
    metrics: Path
    throughput: Path | None = None
    shard_figures: list[Path] | None = None


def gather(paths: GatherPaths) -> pl.DataFrame:
    """All shards in one file. `paths.metrics` describes the generations only (the same generations give
    the same bytes, whatever was reused); `paths.throughput` (a log) sums this run's figures of the shards
    that ran: reuse, requests sent, tokens per second."""
    frames = [read_parquet(p, "generation shard") for p in paths.shards]
    df = pl.concat(frames).sort("uuid", "sample_index") if frames else pl.DataFrame(schema=GENERATION_SCHEMA)
    write_parquet(df, paths.generations)
    finish = df.group_by("finish_reason").len().sort("finish_reason")
    status = df.group_by("status").len()
    write_metrics(
        paths.metrics,
        STAGE,
        requests=df.height,
        problems=df["uuid"].n_unique(),
        by_status={s: 0 for s in STATUSES} | dict(zip(status["status"], status["len"])),
        finish_reasons=dict(zip(finish["finish_reason"].fill_null("none"), finish["len"])),
        rejected_requests=int(df["error"].is_not_null().sum()),
        empty_completions=int(((df["generation"] == "") | df["generation"].is_null()).sum()),
        prompt_tokens=int(df["prompt_tokens"].fill_null(0).sum()),
        completion_tokens=int(df["completion_tokens"].fill_null(0).sum()),
        shards={Path(p).stem: f.height for p, f in zip(paths.shards, frames)},
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
    return df
