"""ingest: read published reasoning corpora (OpenR1-Math-220k, OpenThoughts, Bespoke-Stratos,
Dolphin-R1, LIMO, s1K) into the sample's and generate's tables, so verify, judge, dedupe and build
re-check them with this project's verifier, and mix combines them with its own generations.

Each corpus row goes through its layout's adapter (distillery.corpora): a row becomes one problem
with its traces as generations, or one rejection with a reason. A row without a gold answer (after
the reference-solution fallback the adapter documents) is rejected `no_gold`: verify can say
nothing about it, and a model's own final answer is never taken as the gold. Rows in = problems +
rejections, per corpus. The corpus is read row by row and its generations written in batches, so
memory holds the problems, not the traces.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from itertools import islice
from typing import Any

import polars as pl

from distillery.config.ingest import STAGE, Corpus, IngestConfig
from distillery.corpora import Mapped, Rejected, map_row
from distillery.errors import DistilleryError
from distillery.io import UNDECODABLE, iter_rows, utf8_text
from distillery.keys import problem_key, stable_hash
from distillery.metrics import FilterCounts, write_metrics
from distillery.provenance import source_version, stamp
from distillery.tables import INGEST_REJECTED, INGESTED_GENERATIONS, INGESTED_PROBLEMS, TableWriter, write_table

log = logging.getLogger(__name__)

BACKEND = "corpus"  # teacher_backend of an ingested generation
BATCH_ROWS = 4096  # generations written at once: a corpus is streamed, never held whole
# stamp() adds the provenance columns; the sample_*/generate_* ones are renamed from ingest_*.
PROBLEM_COLUMNS = {c: t for c, t in INGESTED_PROBLEMS.schema.items() if c not in ("sample_params", "sample_code", "source_version")}
GENERATION_COLUMNS = {c: t for c, t in INGESTED_GENERATIONS.schema.items() if c not in ("generate_params", "generate_code")}
REJECTED_COLUMNS = {c: t for c, t in INGEST_REJECTED.schema.items() if c not in ("ingest_params", "ingest_code")}


Paths = STAGE.paths_record()  # its files, by the names its declaration gives them


def generation_rows(name: str, corpus: Corpus, version: str, uuid: str, row: int, mapped: Mapped) -> list[dict[str, Any]]:
    """One generation per trace, keyed by what it is: the corpus, its version, the row and the trace."""
    sampling = json.dumps({"corpus": name, "layout": corpus.layout, "path": corpus.path, "config": corpus.config, "split": corpus.split})
    return [
        {
            "uuid": uuid,
            "sample_index": i,
            "request_key": stable_hash({"corpus": name, "version": version, "config": corpus.config, "row": row, "trace": i}),
            "generation": utf8_text(trace.text),
            "finish_reason": trace.finish_reason,
            "status": "ok" if trace.text else "empty",
            "prompt_tokens": None,  # a corpus publishes text, not its tokenizer's counts
            "completion_tokens": None,
            "error": None,
            "teacher_backend": BACKEND,
            "teacher_model": trace.model,
            "teacher_revision": corpus.revision,
            "sampling": sampling,
            "teacher_fingerprint": version,
        }
        for i, trace in enumerate(mapped.traces)
    ]


def ingest_corpus(name: str, corpus: Corpus, counts: FilterCounts, sink: Callable[[list[dict[str, Any]]], None]) -> list[dict[str, Any]]:
    """The problems of one corpus. Its generations go to `sink` in batches as the rows are read, so
    a corpus of long traces is never held whole; its rejections go to `counts`."""
    rows = iter_rows(corpus.path, corpus.split, corpus.revision, f"ingest.corpora.{name}.path", config=corpus.config)
    version = source_version(corpus.path, corpus.revision)
    problems: dict[str, dict[str, Any]] = {}
    batch: list[dict[str, Any]] = []
    for i, row in enumerate(islice(rows, corpus.max_rows)):
        counts.rows_in += 1
        if not isinstance(row, dict):
            mapped: Mapped | Rejected = Rejected("not_a_row", f"a {type(row).__name__}, not an object")
        elif UNDECODABLE in row:
            mapped = Rejected("undecodable_text", row[UNDECODABLE])
        else:
            mapped = map_row(corpus.layout, row)
        if isinstance(mapped, Rejected):
            counts.reject(mapped.reason, corpus=name, source_row=i, detail=mapped.detail, preview=str(row)[:200])
            continue
        preview = mapped.problem[:200]
        if not mapped.answer:
            detail = f"{corpus.layout} row without a gold answer or a reference solution to take one from"
            counts.reject("no_gold", corpus=name, source_row=i, detail=detail, preview=preview)
            continue
        key = problem_key(mapped.problem, name)
        if key in problems:
            detail = f"same problem as source_row {problems[key]['source_row']}"
            counts.reject("duplicate_key", corpus=name, source_row=i, detail=detail, preview=preview)
            continue
        problems[key] = {
            "uuid": key,
            "problem": mapped.problem,
            "solution": mapped.solution or "",
            "answer": mapped.answer.strip(),
            "problem_type": mapped.problem_type or "",
            "question_type": mapped.question_type or "",
            "source": mapped.source or name,
            "synthetic": False,
            "source_row": i,
            "corpus": name,
            "answer_origin": mapped.answer_origin,
            "licence": corpus.licence,
        }
        batch += generation_rows(name, corpus, version, key, i, mapped)
        if len(batch) >= BATCH_ROWS:
            sink(batch)
            batch = []
    if batch:
        sink(batch)
    counts.keep(len(problems))
    return list(problems.values())


def run(cfg: IngestConfig, seed: int, paths: Paths) -> FilterCounts:
    if not cfg.corpora:
        raise DistilleryError("ingest: ingest.corpora names no corpus; name one (its layout, path and licence) or leave ingest out")
    counts = FilterCounts()
    settings = {**cfg.model_dump(mode="json"), "seed": seed}
    problem_frames, by_corpus = [], {}
    with TableWriter(paths.generations, INGESTED_GENERATIONS) as generations:

        def sink(rows: list[dict[str, Any]]) -> None:
            frame = stamp(pl.DataFrame(rows, schema=GENERATION_COLUMNS), "ingest", settings)
            generations.write(frame.rename({"ingest_params": "generate_params", "ingest_code": "generate_code"}))

        for name, corpus in sorted(cfg.corpora.items()):
            before_in, before_kept, before_rejected, before_written = counts.rows_in, counts.kept, dict(counts.rejected), generations.rows
            problems = ingest_corpus(name, corpus, counts, sink)
            rejected = {r: n - before_rejected.get(r, 0) for r, n in counts.rejected.items() if n - before_rejected.get(r, 0)}
            version = source_version(corpus.path, corpus.revision)
            by_corpus[name] = {
                "rows_in": counts.rows_in - before_in,
                "problems": counts.kept - before_kept,
                "generations": generations.rows - before_written,
                "rejected_by_reason": dict(sorted(rejected.items())),
                "answer_origins": dict(sorted(pl.Series([p["answer_origin"] for p in problems], dtype=pl.String).value_counts().rows())),
                "licence": corpus.licence,
                "version": version,
            }
            if not by_corpus[name]["rows_in"]:
                raise DistilleryError(
                    f"ingest: corpus {name} ({corpus.path}) is empty: it has no rows; point ingest.corpora.{name}.path at "
                    "the corpus file, or remove the corpus from ingest.corpora"
                )
            if not problems and rejected.get("no_gold"):
                raise DistilleryError(
                    f"ingest: corpus {name} ({corpus.path}, layout {corpus.layout}) has no row with a gold answer "
                    f"(rejections: {rejected}): verify can re-check only what it can compare with a gold, and a model's own "
                    "answer is never one. Remove it from ingest.corpora, or ingest a release with golds (OpenThoughts-114k's "
                    "`metadata` config has ground_truth_solution; distillery.corpora lists what each layout carries)"
                )
            if not problems:
                raise DistilleryError(
                    f"ingest: no row of corpus {name} ({corpus.path}) could be read as layout {corpus.layout} "
                    f"(rejections: {rejected}); check ingest.corpora.{name}.layout against the file"
                )
            frame = stamp(pl.DataFrame(problems, schema=PROBLEM_COLUMNS), "ingest", settings, source_version=version)
            problem_frames.append(frame.rename({"ingest_params": "sample_params", "ingest_code": "sample_code"}))
            log.info("ingest: %s: %s", name, by_corpus[name])
    counts.check("ingest")
    write_table(pl.concat(problem_frames).select(INGESTED_PROBLEMS.columns), paths.problems, INGESTED_PROBLEMS)
    rejected = counts.rejected_rows(REJECTED_COLUMNS)
    write_table(stamp(rejected, "ingest", settings), paths.rejected, INGEST_REJECTED)
    write_metrics(paths.metrics, "ingest", counts=counts.as_dict(), corpora=by_corpus)
    return counts
