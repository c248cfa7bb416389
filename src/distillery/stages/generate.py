"""generate: n teacher generations per problem, sharded by problem key, then gathered.

Each shard is one Snakemake job. A problem's shard is a hash of its key, so shard membership does
not change when the sample grows. Every request has a key (model, revision, rendered prompt,
sampling, sample index) that travels with its row downstream.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import polars as pl

from distillery.config import GenerateConfig
from distillery.io import read_parquet, write_parquet
from distillery.keys import derive_seed, request_key, shard_of
from distillery.llm import Request, make_backend
from distillery.metrics import write_metrics
from distillery.prompts import render_problem_prompt

log = logging.getLogger(__name__)

GENERATION_SCHEMA = {
    "uuid": pl.String,
    "sample_index": pl.Int64,
    "request_key": pl.String,
    "generation": pl.String,
    "finish_reason": pl.String,
    "prompt_tokens": pl.Int64,
    "completion_tokens": pl.Int64,
    "error": pl.String,
    "teacher_backend": pl.String,
    "teacher_model": pl.String,
    "teacher_revision": pl.String,
    "sampling": pl.String,
}


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


def run_shard(cfg: GenerateConfig, seed: int, problems_path: Path, shard: int, out_path: Path) -> pl.DataFrame:
    problems = read_parquet(problems_path, "sampled problems").select("uuid", "problem").to_dicts()
    mine = [p for p in problems if shard_of(p["uuid"], cfg.num_shards) == shard]
    requests = build_requests(mine, cfg, seed)
    log.info("generate shard %d/%d: %d problems, %d requests", shard, cfg.num_shards, len(mine), len(requests))
    started = time.monotonic()
    by_key = {}
    if requests:
        backend = make_backend(cfg.llm)
        try:
            for done, completion in enumerate(backend.generate([r for _, _, r in requests], cfg.sampling), 1):
                by_key[completion.key] = completion
                if done % 50 == 0 or done == len(requests):
                    log.info("generate shard %d: %d/%d requests done (%.1fs)", shard, done, len(requests), time.monotonic() - started)
        finally:
            backend.close()
    sampling = json.dumps(sampling_record(cfg), sort_keys=True)
    rows = []
    for uuid, index, req in requests:
        c = by_key.get(req.key)
        rows.append({
            "uuid": uuid,
            "sample_index": index,
            "request_key": req.key,
            "generation": c.text if c else None,
            "finish_reason": c.finish_reason if c else "error",
            "prompt_tokens": c.prompt_tokens if c else None,
            "completion_tokens": c.completion_tokens if c else None,
            "error": (c.error if c else "backend returned no completion for this request"),
            "teacher_backend": cfg.llm.backend,
            "teacher_model": cfg.llm.model,
            "teacher_revision": cfg.llm.revision,
            "sampling": sampling,
        })
    df = pl.DataFrame(rows, schema=GENERATION_SCHEMA)
    write_parquet(df, out_path)
    return df


def gather(shard_paths: list[Path], out_path: Path, out_metrics: Path) -> pl.DataFrame:
    frames = [read_parquet(p, "generation shard") for p in shard_paths]
    df = pl.concat(frames).sort("uuid", "sample_index") if frames else pl.DataFrame(schema=GENERATION_SCHEMA)
    write_parquet(df, out_path)
    finish = df.group_by("finish_reason").len().sort("finish_reason")
    write_metrics(
        out_metrics,
        "generate",
        requests=df.height,
        problems=df["uuid"].n_unique(),
        shards={Path(p).stem: f.height for p, f in zip(shard_paths, frames)},
        finish_reasons=dict(zip(finish["finish_reason"], finish["len"])),
        failed_requests=int(df["error"].is_not_null().sum()),
        empty_completions=int(((df["generation"] == "") | df["generation"].is_null()).sum()),
        prompt_tokens=int(df["prompt_tokens"].fill_null(0).sum()),
        completion_tokens=int(df["completion_tokens"].fill_null(0).sum()),
    )
    return df
