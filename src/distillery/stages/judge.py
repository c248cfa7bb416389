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
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from distillery.config import JudgeConfig
from distillery.errors import DistilleryError
from distillery.io import read_parquet, write_parquet
from distillery.journal import journal_dir
from distillery.keys import derive_seed, model_fingerprint, request_key
from distillery.llm import Request
from distillery.llm.journaled import run_journaled
from distillery.metrics import write_metrics
from distillery.prompts import load_judge_template, render_judge_prompt
from distillery.provenance import params_hash
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


@dataclass(frozen=True)
class Paths:
    """The judge stage's files, by the names rules/judge.smk gives them."""

    verified: Path
    problems: Path
    judged: Path
    metrics: Path
    disagreements: Path | None = None


def run(cfg: JudgeConfig, seed: int, paths: Paths, journal: Path | None = None, server_logs: Path | None = None) -> pl.DataFrame:
    template = load_judge_template(cfg.prompt_template)
    verified = read_parquet(paths.verified, "verified generations")
    problems = read_parquet(paths.problems, "sampled problems").select("uuid", "problem", "answer", "source")
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
    # Journaled like generation: a re-run, or a run after a change that leaves prompts alone, asks nothing twice.
    unique = list({r.key: r for r in requests.values()}.values())
    result = run_journaled(
        cfg.llm, cfg.sampling, unique, journal or journal_dir("judge"), 0, 1, "judge", server_logs or Path("logs/judge/servers"), "judge"
    )
    if result.failed:
        example = next(iter(result.failed.values()))["error"]
        raise DistilleryError(
            f"judge: {len(result.failed)} of {len(unique)} requests failed after {cfg.llm.openai.max_retries} retries "
            f"(e.g. {example}); finished ones are kept in {result.journal_path}, so re-running retries only these"
        )
    verdicts, correct, texts, keys, codes = [], [], [], [], []
    for i in range(df.height):
        req = requests.get(i)
        if req is None:
            verdicts.append("not_judged")
            correct.append(None)
            texts.append(None)
            keys.append(None)
            codes.append(None)
            continue
        rec = result.done[req.key]
        verdict = "error" if rec.get("error") else parse_verdict(rec.get("text"))
        verdicts.append(verdict)
        correct.append(None if verdict in ("unparseable", "error") else verdict == "EQUIVALENT")
        texts.append(rec.get("text"))
        keys.append(req.key)
        codes.append(rec.get("code"))  # the code that asked, from the journal
    out = df.drop("problem", "answer", "source").with_columns(
        pl.Series("judge_verdict", verdicts, dtype=pl.String),
        pl.Series("correctness_llama", correct, dtype=pl.Boolean),
        pl.Series("judge_reply", texts, dtype=pl.String),
        pl.Series("judge_request_key", keys, dtype=pl.String),
        pl.lit(cfg.llm.model if requests else None, dtype=pl.String).alias("judge_model"),
        pl.lit(cfg.llm.revision, dtype=pl.String).alias("judge_revision"),
        # Provenance: the judge's contents (local directory), the settings that decide which rows
        # are judged and how, and the code that asked (judged rows only).
        pl.lit(model_fingerprint(cfg.llm.model) if requests else None, dtype=pl.String).alias("judge_fingerprint"),
        pl.lit(params_hash("judge", {**cfg.model_dump(mode="json"), "seed": seed}), dtype=pl.String).alias("judge_params"),
        pl.Series("judge_code", codes, dtype=pl.String),
    )
    write_parquet(out, paths.judged)
    write_metrics(paths.metrics, "judge", **judge_report(out, df["source"]))
    if paths.disagreements:
        write_disagreements(out.with_columns(df["problem"], df["answer"], df["source"]), cfg, paths.disagreements)
    return out


def judge_report(out: pl.DataFrame, sources: pl.Series) -> dict:
    """Verify and judge side by side: generations by verify status, and per source how often the
    judge agreed with math-verify's rejection (DIFFERENT) or overturned it (EQUIVALENT)."""
    verdicts = out.group_by("judge_verdict").len()
    statuses = out.group_by("verify_status").len() if "verify_status" in out.columns else None
    judged = out.with_columns(sources.alias("source")).filter(pl.col("judge_verdict") != "not_judged")
    recovered = judged.filter(pl.col("correctness_llama").fill_null(False))
    per_source = {}
    for src in sorted(judged["source"].fill_null("unknown").unique().to_list()):
        s = judged.filter(pl.col("source").fill_null("unknown") == src)
        per_source[src] = {
            "judged": s.height,
            "agree_with_math_verify": int((s["judge_verdict"] == "DIFFERENT").sum()),
            "overturn_math_verify": int((s["judge_verdict"] == "EQUIVALENT").sum()),
            "ambiguous": int((s["judge_verdict"] == "AMBIGUOUS").sum()),
            "unparseable_or_error": int(s["judge_verdict"].is_in(["unparseable", "error"]).sum()),
        }
    return {
        "generations": out.height,
        "generations_by_verify_status": dict(zip(statuses["verify_status"], statuses["len"])) if statuses is not None else {},
        "judged": judged.height,
        "verdicts": {v: 0 for v in (*VERDICTS, "unparseable", "error")} | dict(zip(verdicts["judge_verdict"], verdicts["len"])),
        "recovered_generations": recovered.height,
        "recovered_problems": recovered["uuid"].n_unique(),
        "by_source": per_source,
    }


def write_disagreements(df: pl.DataFrame, cfg: JudgeConfig, path: Path) -> None:
    """Every generation where the judge did not simply confirm math-verify's rejection, for a person
    to read: the problem, the gold, the extracted answer, what the judge saw and what it said."""
    rows = df.filter(pl.col("judge_verdict").is_in(["EQUIVALENT", "AMBIGUOUS", "unparseable", "error"])).sort(
        "source", "uuid", "sample_index"
    )
    lines = [
        f"# Judge disagreements with math-verify ({rows.height})",
        "",
        "Generations math-verify rejected that the judge called EQUIVALENT (overturned), AMBIGUOUS, or answered "
        "unparseably. Sorted by source.",
        "",
    ]
    for r in rows.iter_rows(named=True):
        lines += [
            f"## {r['judge_verdict']}: {r['source']} / {r['uuid']} / sample {r['sample_index']}",
            "",
            f"- gold: `{r['answer']}`",
            f"- extracted answer: `{r['extracted_answer']}` (verify status: {r['verify_status']})",
            "",
            "Problem:",
            "",
            "> " + (r["problem"] or "").replace("\n", "\n> "),
            "",
            "Candidate (what the judge saw):",
            "",
            "```",
            candidate_text(r["generation"] or "", cfg.candidate_tail_chars),
            "```",
            "",
            "Judge reply:",
            "",
            "```",
            (r["judge_reply"] or "").strip(),
            "```",
            "",
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
