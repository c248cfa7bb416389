"""sample: read NuminaMath-1.5-shaped rows, reject malformed or filtered rows with reasons, key each
problem, and draw a seeded sample of N.

The sample is nested: rows are ranked by a seeded hash of their key and the first N are taken, so
growing N from 10k to 20k keeps the first 10k (and the generations already paid for).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import polars as pl

from distillery.config.sample import STAGE, SampleConfig
from distillery.errors import DistilleryError
from distillery.io import UNDECODABLE, load_rows
from distillery.keys import derive_seed, problem_key
from distillery.metrics import FilterCounts, write_metrics
from distillery.provenance import source_version, stamp
from distillery.tables import PROBLEMS, SAMPLE_REJECTED, write_table

log = logging.getLogger(__name__)

STRING_COLUMNS = ("problem", "solution", "answer", "problem_type", "question_type", "source")
# The tables' own columns; stamp() adds the provenance ones (distillery.tables declares them all).
SAMPLED_COLUMNS = {c: t for c, t in PROBLEMS.schema.items() if c not in ("sample_params", "sample_code", "source_version")}
REJECTED_COLUMNS = {c: t for c, t in SAMPLE_REJECTED.schema.items() if c not in ("sample_params", "sample_code", "source_version")}

# C0 control characters other than tab, newline and carriage return (NUL included), and DEL: no
# problem text has them; they come from broken exports and break tokenizers and parquet readers.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _check_row(row: dict[str, Any], cfg: SampleConfig) -> tuple[str, str] | None:
    """(reason, detail) when the row is rejected, None when it is kept."""
    if row.get(UNDECODABLE):
        return ("undecodable_bytes", f"{row[UNDECODABLE]}; re-export the source as UTF-8")
    problem = row.get("problem")
    if not isinstance(problem, str):
        return ("problem_not_string", f"problem is {type(problem).__name__}")
    if not problem.strip():
        return ("empty_problem", "")
    if len(problem) > cfg.max_problem_chars:
        return ("problem_too_long", f"{len(problem)} chars > sample.max_problem_chars={cfg.max_problem_chars}")
    for col in STRING_COLUMNS[1:]:
        value = row.get(col)
        if value is not None and not isinstance(value, str):
            return (f"{col}_not_string", f"{col} is {type(value).__name__}: {str(value)[:60]!r}")
    for col in STRING_COLUMNS:
        found = CONTROL.search(row.get(col) or "")
        if found:
            return ("control_characters", f"{col} holds U+{ord(found.group()):04X} at offset {found.start()}")
    if cfg.require_answer:
        answer = row.get("answer")
        if answer is None:
            return ("missing_answer", "no answer" if "answer" in row else "no answer column")
        if not answer.strip():
            return ("empty_answer", repr(answer))
    synthetic = row.get("synthetic")
    if synthetic is not None and not isinstance(synthetic, bool):
        return ("synthetic_not_bool", f"synthetic is {type(synthetic).__name__}")
    if cfg.drop_synthetic and synthetic:
        return ("synthetic", "")
    if cfg.valid_only:
        for col in ("problem_is_valid", "solution_is_valid"):
            if col in row and row[col] is not None and row[col] != "Yes":
                return ("marked_invalid", f"{col}={row[col]!r}")
    for col in ("question_type", "problem_type", "source"):
        value = row.get(col) or ""
        include = getattr(cfg.include, col)
        if include and value not in include:
            return (f"{col}_not_included", value)
        if value in getattr(cfg.exclude, col):
            return (f"{col}_excluded", value)
    return None


Paths = STAGE.paths_record()  # its files, by the names its declaration gives them


def run(cfg: SampleConfig, seed: int, paths: Paths) -> FilterCounts:
    rows = load_rows(cfg.source, cfg.split, cfg.revision, "sample.source")
    counts = FilterCounts(rows_in=len(rows))
    kept: dict[str, dict[str, Any]] = {}

    def reject(i: int, row: Any, reason: str, detail: str) -> None:
        preview = row.get("problem") if isinstance(row, dict) else row
        counts.reject(reason, source_row=i, detail=detail, preview=str(preview)[:200])

    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            reject(i, row, "row_not_object", type(row).__name__)
            continue
        verdict = _check_row(row, cfg)
        if verdict:
            reject(i, row, *verdict)
            continue
        source = row.get("source") or "unknown"
        key = problem_key(row["problem"], source)
        if key in kept:
            # Same normalized text and source: by definition the same problem (first row wins).
            reject(i, row, "duplicate_key", f"same problem as source_row {kept[key]['source_row']}")
            continue
        kept[key] = {
            "uuid": key,
            "problem": row["problem"],
            "solution": row.get("solution") or "",
            "answer": (row.get("answer") or "").strip(),
            "problem_type": row.get("problem_type") or "",
            "question_type": row.get("question_type") or "",
            "source": source,
            "synthetic": bool(row.get("synthetic") or False),
            "source_row": i,
        }

    ranked = sorted(kept.values(), key=lambda r: derive_seed(seed, r["uuid"]))
    chosen = ranked if cfg.n is None else ranked[: cfg.n]
    counts.keep(len(chosen))
    # Rows that passed every filter but fall past sample.n: written too, so the rejected table holds
    # every row that is not a problem; the first of them are what a larger n adds next.
    for rank, r in enumerate(ranked[len(chosen) :], start=len(chosen) + 1):
        detail = f"ranked {rank} of {len(ranked)} eligible problems; sample.n = {cfg.n}"
        counts.reject("not_sampled", source_row=r["source_row"], detail=detail, preview=r["problem"][:200])
    counts.check("sample")
    if not rows:
        raise DistilleryError(f"sample: {cfg.source} is empty: it has no rows; point sample.source at a file of problems")
    if cfg.n is not None and len(ranked) < cfg.n:
        # Not an error (a filter may be meant to cut deep), but never silent: the console shows it.
        log.warning(
            "sample: sample.n = %d but only %d of the %d rows in %s pass the filters, so %d problems are kept "
            "(metrics/sample.json: eligible); lower sample.n or loosen the filters to silence this",
            cfg.n,
            len(ranked),
            len(rows),
            cfg.source,
            len(ranked),
        )
    if not chosen:
        raise DistilleryError(
            f"sample: no problem of {len(rows)} rows in {cfg.source} passed the filters "
            f"(rejections: {dict(counts.rejected)}); loosen sample.include/exclude or fix the input"
        )
    problems = pl.DataFrame(sorted(chosen, key=lambda r: r["source_row"]), schema=SAMPLED_COLUMNS)
    # Provenance: the version of the source that `source_row` points into, and what sampled it.
    settings = {**cfg.model_dump(mode="json"), "seed": seed}
    version = source_version(cfg.source, cfg.revision)
    write_table(stamp(problems, "sample", settings, source_version=version), paths.problems, PROBLEMS)
    rejected = counts.rejected_rows(REJECTED_COLUMNS).sort("source_row", maintain_order=True)
    write_table(stamp(rejected, "sample", settings, source_version=version), paths.rejected, SAMPLE_REJECTED)
    by_source = problems.group_by("source").len().sort("source")
    write_metrics(
        paths.metrics,
        "sample",
        counts=counts.as_dict(),
        # What sample.n asked for and how many problems passed the filters: n_requested > eligible
        # means the sample is smaller than asked (and the run said so).
        n_requested=cfg.n,
        eligible=len(ranked),
        problems_by_source=dict(zip(by_source["source"], by_source["len"])),
    )
    log.info("sample: %s", counts.as_dict())
    return counts
