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
from distillery.llm.task import LLMTask, TaskDirs
from distillery.metrics import write_metrics
from distillery.prompts import load_judge_template, render_judge_prompt
from distillery.tables import JUDGED, PROBLEMS, VERIFIED, read_table, write_table
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


# The judge re-checks equivalence only: a hedge is the answer's form, a malformed gold no reference.
NOT_FOR_THE_JUDGE = ("hedged", "gold_malformed")


def select_for_judging(df: pl.DataFrame, policy: str) -> pl.Series:
    has_gold = pl.col("answer").fill_null("").str.strip_chars() != ""
    failed = pl.col("is_reasoning_complete") & ~pl.col("correctness_math_verify") & ~pl.col("verify_status").is_in(NOT_FOR_THE_JUDGE)
    if policy == "all_failures":
        return df.select(failed & has_gold).to_series()
    solved = (pl.col("is_reasoning_complete") & pl.col("correctness_math_verify")).any().over("uuid")
    return df.select(failed & has_gold & ~solved).to_series()


class JudgeTask(LLMTask[dict]):
    """The judge's question about one verified generation: the problem, the reference answer and the
    end of the generation."""

    stage = "judge"

    def __init__(self, cfg: JudgeConfig, seed: int, dirs: TaskDirs | None = None):
        super().__init__(cfg.llm, seed, dirs)
        self.cfg, self.template = cfg, load_judge_template(cfg.prompt_template)

    def messages(self, row: dict) -> list[tuple[str, str]]:
        candidate = candidate_text(row["generation"], self.cfg.candidate_tail_chars)
        return [("user", render_judge_prompt(self.template, row["problem"], row["answer"], candidate))]


@dataclass(frozen=True)
class Paths:
    """The judge stage's files, by the names rules/judge.smk gives them."""

    verified: Path
    problems: Path
    judged: Path
    metrics: Path
    disagreements: Path | None = None
    journal: Path | None = None  # None: $DISTILLERY_JOURNAL_DIR/judge
    server_logs: Path | None = None  # None: logs/judge/servers


def run(cfg: JudgeConfig, seed: int, paths: Paths) -> pl.DataFrame:
    task = JudgeTask(cfg, seed, TaskDirs(journal=paths.journal, server_logs=paths.server_logs))
    verified = read_table(paths.verified, VERIFIED)
    problems = read_table(paths.problems, PROBLEMS, columns=["uuid", "problem", "answer", "source"])
    df = verified.join(problems, on="uuid", how="left").sort("uuid", "sample_index")
    chosen = df.with_row_index("row").filter(select_for_judging(df, cfg.policy))
    # Journaled like generation: a re-run, or a run after a change that leaves prompts alone, asks nothing twice.
    asked = {a.item["row"]: a for a in task.ask(chosen.to_dicts(), cfg.sampling)}
    verdicts = ["not_judged"] * df.height
    for i, a in asked.items():
        verdicts[i] = "error" if a.answer.error else parse_verdict(a.answer.text)

    def per_row(value) -> list:
        return [value(asked[i]) if i in asked else None for i in range(df.height)]

    out = df.drop("problem", "answer", "source").with_columns(
        pl.Series("judge_verdict", verdicts, dtype=pl.String),
        pl.Series(
            "correctness_llama",
            [None if v in ("unparseable", "error", "not_judged") else v == "EQUIVALENT" for v in verdicts],
            dtype=pl.Boolean,
        ),
        pl.Series("judge_reply", per_row(lambda a: a.answer.text), dtype=pl.String),
        pl.Series("judge_request_key", per_row(lambda a: a.request.key), dtype=pl.String),
        pl.lit(cfg.llm.model if asked else None, dtype=pl.String).alias("judge_model"),
        pl.lit(cfg.llm.revision, dtype=pl.String).alias("judge_revision"),
        # Provenance: the judge's contents (local directory), the settings that decide which rows
        # are judged and how, and the code that asked (judged rows only, from the journal).
        pl.lit(task.model_fingerprint() if asked else None, dtype=pl.String).alias("judge_fingerprint"),
        pl.lit(task.settings_hash(cfg), dtype=pl.String).alias("judge_params"),
        pl.Series("judge_code", per_row(lambda a: a.answer.code), dtype=pl.String),
    )
    write_table(out, paths.judged, JUDGED)
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
