"""judge: an LLM re-checks generations that Math-Verify rejected.

Default policy (OpenR1's): complete generations of problems with a non-empty gold and no
math-verify-correct complete generation. The judge sees the problem, the reference answer and the
end of the generation (after the reasoning, at most `candidate_tail_chars`), never the whole trace.
Verdicts are parsed strictly; AMBIGUOUS and unparseable replies are kept as such and never count
as correct. correctness_llama is null where the judge did not run or its reply was unparseable.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import polars as pl

from distillery.config import JudgeConfig
from distillery.io import read_parquet, write_parquet
from distillery.keys import derive_seed, request_key
from distillery.llm import Request, make_backend
from distillery.metrics import write_metrics
from distillery.prompts import load_judge_template, render_judge_prompt
from distillery.verification import answer_region

log = logging.getLogger(__name__)

VERDICTS = ("EQUIVALENT", "DIFFERENT", "AMBIGUOUS")
_VERDICT = re.compile(r"verdict\s*[:：]?\s*[*_`\s]*\b(equivalent|different|ambiguous)\b", re.IGNORECASE)


def parse_verdict(reply: str | None) -> str:
    """EQUIVALENT, DIFFERENT or AMBIGUOUS when the reply states exactly one; otherwise `unparseable`."""
    if not reply:
        return "unparseable"
    found = {m.group(1).upper() for m in _VERDICT.finditer(reply)}
    return found.pop() if len(found) == 1 else "unparseable"


def candidate_text(generation: str, tail_chars: int) -> str:
    region = answer_region(generation) or generation
    region = region.strip()
    return region[-tail_chars:]


def select_for_judging(df: pl.DataFrame, policy: str) -> pl.Series:
    has_gold = pl.col("answer").fill_null("").str.strip_chars() != ""
    failed = pl.col("is_reasoning_complete") & ~pl.col("correctness_math_verify")
    if policy == "all_failures":
        return df.select(failed & has_gold).to_series()
    solved = (pl.col("is_reasoning_complete") & pl.col("correctness_math_verify")).any().over("uuid")
    return df.select(failed & has_gold & ~solved).to_series()


def run(cfg: JudgeConfig, seed: int, verified_path: Path, problems_path: Path, out_path: Path, out_metrics: Path) -> pl.DataFrame:
    template = load_judge_template(cfg.prompt_template)
    verified = read_parquet(verified_path, "verified generations")
    problems = read_parquet(problems_path, "sampled problems").select("uuid", "problem", "answer", "source")
    df = verified.join(problems, on="uuid", how="left").sort("uuid", "sample_index")
    chosen = select_for_judging(df, cfg.policy)
    sampling = cfg.sampling.model_dump()
    requests: dict[int, Request] = {}
    for i, row in enumerate(df.iter_rows(named=True)):
        if not chosen[i]:
            continue
        prompt = render_judge_prompt(template, row["problem"], row["answer"], candidate_text(row["generation"], cfg.candidate_tail_chars))
        chat = [{"role": "user", "content": prompt}]
        key = request_key(cfg.llm.model, cfg.llm.revision, chat, sampling, 0)
        requests[i] = Request(key=key, messages=(("user", prompt),), seed=derive_seed(seed, key))
    replies = {}
    if requests:
        backend = make_backend(cfg.llm)
        try:
            replies = {c.key: c for c in backend.generate(list(requests.values()), cfg.sampling)}
        finally:
            backend.close()
    verdicts, correct, texts, keys = [], [], [], []
    for i in range(df.height):
        req = requests.get(i)
        if req is None:
            verdicts.append("not_judged"); correct.append(None); texts.append(None); keys.append(None)
            continue
        c = replies.get(req.key)
        verdict = "error" if c is None or c.error else parse_verdict(c.text)
        verdicts.append(verdict)
        correct.append(None if verdict in ("unparseable", "error") else verdict == "EQUIVALENT")
        texts.append(c.text if c else None)
        keys.append(req.key)
    out = df.drop("problem", "answer", "source").with_columns(
        pl.Series("judge_verdict", verdicts, dtype=pl.String),
        pl.Series("correctness_llama", correct, dtype=pl.Boolean),
        pl.Series("judge_reply", texts, dtype=pl.String),
        pl.Series("judge_request_key", keys, dtype=pl.String),
        pl.lit(cfg.llm.model if requests else None, dtype=pl.String).alias("judge_model"),
        pl.lit(cfg.llm.revision, dtype=pl.String).alias("judge_revision"),
    )
    write_parquet(out, out_path)
    write_metrics(out_metrics, "judge", **judge_report(out, df["source"]))
    return out


def judge_report(out: pl.DataFrame, sources: pl.Series) -> dict:
    verdicts = out.group_by("judge_verdict").len()
    judged = out.with_columns(sources.alias("source")).filter(pl.col("judge_verdict") != "not_judged")
    recovered = judged.filter(pl.col("correctness_llama").fill_null(False))
    per_source = {}
    for src in sorted(judged["source"].unique().to_list()):
        s = judged.filter(pl.col("source") == src)
        per_source[src] = {
            "judged": s.height,
            "equivalent": int((s["judge_verdict"] == "EQUIVALENT").sum()),
            "different": int((s["judge_verdict"] == "DIFFERENT").sum()),
        }
    return {
        "generations": out.height,
        "judged": judged.height,
        "verdicts": dict(zip(verdicts["judge_verdict"], verdicts["len"])),
        "recovered_generations": recovered.height,
        "recovered_problems": recovered["uuid"].n_unique(),
        "by_source": per_source,
    }
