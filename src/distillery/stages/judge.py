"""judge: an LLM re-checks generations that Math-Verify rejected.

Default policy (OpenR1's): complete generations of problems with a non-empty gold and no
math-verify-correct complete generation. The judge sees the problem, the reference answer and the
end of the generation (after the reasoning, at most `candidate_tail_chars`), never the whole trace.
Verdicts are parsed strictly; AMBIGUOUS and unparseable replies are kept as such and never count
as correct. correctness_llama is null where the judge did not run or its reply was unparseable.

One job per verify shard (`run_shard`): a shard's judge starts when its generations are verified.
It holds the shard's short columns and the questions it asks, never the traces, which it streams;
`gather` merges the shards in key order, counts and writes the disagreements report.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import polars as pl

from distillery.config.judge import JudgeConfig
from distillery.llm.task import LLMTask, TaskDirs
from distillery.metrics import add_counts, write_metrics
from distillery.prompts import load_judge_template, render_judge_prompt
from distillery.rounds import by_round, count_by_round, first_solved_round
from distillery.tables import (
    GROUP_ROWS,
    JUDGED,
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
    end of the generation (`candidate`, cut by `candidate_text`)."""

    stage = "judge"

    def __init__(self, cfg: JudgeConfig, seed: int, dirs: TaskDirs | None = None, *, shard: int = 0, num_shards: int = 1):
        label = f"judge shard {shard}/{num_shards}" if num_shards > 1 else ""
        super().__init__(cfg.llm, seed, dirs, shard=shard, num_shards=num_shards, label=label)
        self.cfg, self.template = cfg, load_judge_template(cfg.prompt_template)

    def messages(self, row: dict) -> list[tuple[str, str]]:
        candidate = row["candidate"] if "candidate" in row else candidate_text(row["generation"], self.cfg.candidate_tail_chars)
        return [("user", render_judge_prompt(self.template, row["problem"], row["answer"], candidate))]


@dataclass(frozen=True)
class ShardPaths:
    """One judge job's files, by the names rules/judge.smk gives them."""

    verified: Path  # verify's shard
    problems: Path
    judged: Path
    journal: Path | None = None  # None: $DISTILLERY_JOURNAL_DIR/judge
    server_logs: Path | None = None  # None: logs/judge/servers


@dataclass(frozen=True)
class GatherPaths:
    """judge_gather's files."""

    shards: list[Path]
    problems: Path
    judged: Path
    metrics: Path
    disagreements: Path | None = None
    so_far: Path | None = None  # a later round: the judged table of the rounds before it, merged in


@dataclass(frozen=True)
class Paths:
    """judge in one process (one shard and its gather)."""

    verified: Path
    problems: Path
    judged: Path
    metrics: Path
    disagreements: Path | None = None
    journal: Path | None = None
    server_logs: Path | None = None


# What select_for_judging and the counts need of every row: short columns only.
SELECTED_BY = ["uuid", "sample_index", "is_reasoning_complete", "correctness_math_verify", "verify_status"]
COUNTED = ["uuid", "round", "verify_status", "judge_verdict", "correctness_llama"]


def run_shard(cfg: JudgeConfig, seed: int, shard: int, num_shards: int, paths: ShardPaths) -> None:
    """The judge's verdicts on one verify shard: its rows in the same order, with the judge's columns."""
    task = JudgeTask(cfg, seed, TaskDirs(journal=paths.journal, server_logs=paths.server_logs), shard=shard, num_shards=num_shards)
    short = read_table(paths.verified, VERIFIED, columns=SELECTED_BY)
    problems = read_rows_of(paths.problems, PROBLEMS, ["uuid", "problem", "answer"], short["uuid"].unique())
    short = short.join(problems.select("uuid", "answer"), on="uuid", how="left", maintain_order="left")
    chosen = set(short.with_row_index("row").filter(select_for_judging(short, cfg.policy))["row"].to_list())
    del short
    # The questions: the problem, the gold and the end of each chosen generation, read a batch at a time.
    questions, start = [], 0
    for batch in iter_table(paths.verified, VERIFIED, columns=["uuid", "generation"]):
        rows = [r for r in range(start, start + batch.height) if r in chosen]
        for r in rows:
            questions.append(
                {
                    "row": r,
                    "uuid": batch["uuid"][r - start],
                    "candidate": candidate_text(batch["generation"][r - start] or "", cfg.candidate_tail_chars),
                }
            )
        start += batch.height
    texts = problems.filter(pl.col("uuid").is_in([q["uuid"] for q in questions])).rows_by_key("uuid", named=True, unique=True)
    for q in questions:
        q.update(problem=texts[q["uuid"]]["problem"], answer=texts[q["uuid"]]["answer"])
    del problems, texts
    # Journaled like generation: a re-run, or a run after a change that leaves prompts alone, asks nothing twice.
    asked = {a.item["row"]: a for a in task.ask(questions, cfg.sampling)}
    del questions
    constant = {
        "judge_model": cfg.llm.model if asked else None,
        "judge_revision": cfg.llm.revision,
        # Provenance: the judge's contents (local directory), the settings that decide which rows
        # are judged and how, and the code that asked (judged rows only, from the journal).
        "judge_fingerprint": task.model_fingerprint() if asked else None,
        "judge_params": task.settings_hash(cfg),
    }
    start = 0
    with TableWriter(paths.judged, JUDGED, GROUP_ROWS) as writer:
        for batch in iter_table(paths.verified, VERIFIED):
            mine = [asked.get(r) for r in range(start, start + batch.height)]
            start += batch.height
            verdicts = ["not_judged" if a is None else "error" if a.answer.error else parse_verdict(a.answer.text) for a in mine]
            writer.write(
                batch.with_columns(
                    pl.Series("judge_verdict", verdicts, dtype=pl.String),
                    pl.Series(
                        "correctness_llama",
                        [None if v in ("unparseable", "error", "not_judged") else v == "EQUIVALENT" for v in verdicts],
                        dtype=pl.Boolean,
                    ),
                    pl.Series("judge_reply", [a and a.answer.text for a in mine], dtype=pl.String),
                    pl.Series("judge_request_key", [a and a.request.key for a in mine], dtype=pl.String),
                    pl.lit(constant["judge_model"], dtype=pl.String).alias("judge_model"),
                    pl.lit(constant["judge_revision"], dtype=pl.String).alias("judge_revision"),
                    pl.lit(constant["judge_fingerprint"], dtype=pl.String).alias("judge_fingerprint"),
                    pl.lit(constant["judge_params"], dtype=pl.String).alias("judge_params"),
                    pl.Series("judge_code", [a and a.answer.code for a in mine], dtype=pl.String),
                )
            )
    log.info("%s: %d of %d generations judged", task.label, len(asked), start)


def gather(cfg: JudgeConfig, paths: GatherPaths) -> None:
    """The shards merged in key order; metrics and the disagreements report, a batch at a time."""
    shards = [*([paths.so_far] if paths.so_far else []), *paths.shards]
    merged = iter_groups(gather_sorted(shards, JUDGED, paths.judged), "uuid", "the merged judge shards")
    report(merged, cfg, paths.problems, paths.metrics, paths.disagreements)


def run(cfg: JudgeConfig, seed: int, paths: Paths) -> pl.DataFrame:
    """One shard holding everything, then its report: the judged table, returned."""
    check_table(paths.verified, VERIFIED)
    paths.judged.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=paths.judged.parent) as tmp:
        verified = sorted_copy(paths.verified, VERIFIED, tmp)
        run_shard(cfg, seed, 0, 1, ShardPaths(verified, paths.problems, paths.judged, paths.journal, paths.server_logs))
    report(
        iter_groups(iter_table(paths.judged, JUDGED), "uuid", str(paths.judged)), cfg, paths.problems, paths.metrics, paths.disagreements
    )
    return read_table(paths.judged, JUDGED)


def report(batches: Iterable[pl.DataFrame], cfg: JudgeConfig, problems: Path, metrics: Path, disagreements: Path | None) -> None:
    """metrics/judge.json and the disagreements report from judged batches that hold whole problems."""
    sources = read_table(problems, PROBLEMS, columns=["uuid", "source"])
    counts: dict = {}
    with Disagreements(disagreements, cfg, problems) as readable:
        for batch in batches:
            batch = batch.join(sources, on="uuid", how="left", maintain_order="left")
            counts = add_counts(counts, judge_report(batch.select(*COUNTED, "source")))
            counts = add_counts(counts, {"problems_first_solved_in_round": first_solved_round(batch)})
            readable.add(batch)
    counts = judge_report(pl.DataFrame(schema={**JUDGED.schema, "source": pl.String}).select(*COUNTED, "source")) | counts
    for key in ("generations_by_round", "judged_by_round", "problems_first_solved_in_round"):
        counts[key] = by_round(counts.get(key, {}))
    write_metrics(metrics, "judge", **counts)


def judge_report(out: pl.DataFrame) -> dict:
    """Verify and judge side by side: generations by verify status, and per source how often the
    judge agreed with math-verify's rejection (DIFFERENT) or overturned it (EQUIVALENT). Counts only,
    so that the reports of batches holding whole problems add up (metrics.add_counts)."""
    verdicts = out.group_by("judge_verdict").len()
    statuses = out.group_by("verify_status").len()
    judged = out.filter(pl.col("judge_verdict") != "not_judged")
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
        "generations_by_round": count_by_round(out),
        "judged_by_round": count_by_round(judged),
        "generations_by_verify_status": dict(zip(statuses["verify_status"], statuses["len"])),
        "judged": judged.height,
        "judged_problems": judged["uuid"].n_unique(),
        "verdicts": {v: 0 for v in (*VERDICTS, "unparseable", "error")} | dict(zip(verdicts["judge_verdict"], verdicts["len"])),
        "recovered_generations": recovered.height,
        "recovered_problems": recovered["uuid"].n_unique(),
        "by_source": per_source,
    }


DISAGREEING = ["EQUIVALENT", "AMBIGUOUS", "unparseable", "error"]


class Disagreements:
    """Every generation where the judge did not simply confirm math-verify's rejection, for a person
    to read: the problem, the gold, the extracted answer, what the judge saw and what it said. Sorted
    by source, then key. Batches come in key order, so each source's rows (without the problem text)
    go to its own spool file; the report is the spools in source order, their problems read a chunk
    at a time: bounded memory, however many rows disagree."""

    CHUNK = 2000

    def __init__(self, path: Path | None, cfg: JudgeConfig, problems: Path):
        self.path, self.cfg, self.problems, self.rows = path, cfg, problems, 0
        self._spools: dict[str | None, IO[str]] = {}

    def __enter__(self) -> Disagreements:
        return self

    def add(self, batch: pl.DataFrame) -> None:
        """Spool the disagreeing rows of `batch` (judged rows with their `source`)."""
        if self.path is None:
            return
        for r in batch.filter(pl.col("judge_verdict").is_in(DISAGREEING)).iter_rows(named=True):
            spool = self._spools.get(r["source"])
            if spool is None:
                spool = self._spools[r["source"]] = tempfile.TemporaryFile("w+", encoding="utf-8")
            keep = {k: r[k] for k in ("source", "uuid", "sample_index", "judge_verdict", "extracted_answer", "verify_status")}
            candidate = candidate_text(r["generation"] or "", self.cfg.candidate_tail_chars)
            spool.write(json.dumps({**keep, "candidate": candidate, "reply": r["judge_reply"]}) + "\n")
            self.rows += 1

    @staticmethod
    def section(r: dict) -> str:
        return "\n".join(
            [
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
                r["candidate"],
                "```",
                "",
                "Judge reply:",
                "",
                "```",
                (r["reply"] or "").strip(),
                "```",
                "",
            ]
        )

    def __exit__(self, exc_type, *_) -> None:
        try:
            if exc_type is None and self.path is not None:
                self.write()
        finally:
            for spool in self._spools.values():
                spool.close()

    def write(self) -> None:
        header = [
            f"# Judge disagreements with math-verify ({self.rows})",
            "",
            "Generations math-verify rejected that the judge called EQUIVALENT (overturned), AMBIGUOUS, or answered "
            "unparseably. Sorted by source.",
            "",
        ]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as out:
            out.write("\n".join(header) + "\n")
            for source in sorted(self._spools, key=lambda s: (s is not None, s or "")):  # no source first, as polars sorts
                spool = self._spools[source]
                spool.seek(0)
                while chunk := [json.loads(line) for line in itertools.islice(spool, self.CHUNK)]:
                    texts = read_rows_of(self.problems, PROBLEMS, ["uuid", "problem", "answer"], {r["uuid"] for r in chunk})
                    by_uuid = texts.rows_by_key("uuid", named=True, unique=True)
                    for r in chunk:
                        out.write(self.section({**r, **by_uuid.get(r["uuid"], {"problem": None, "answer": None})}) + "\n")
        tmp.replace(self.path)
