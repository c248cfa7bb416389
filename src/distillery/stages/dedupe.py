"""dedupe: exact dedupe on normalized problem text, then word n-gram decontamination against
benchmark files (open-r1's method: lowercase, collapse whitespace, one shared n-gram flags a row).

Every problem in comes out either kept or rejected with a reason; the contamination report names
the benchmark item and the n-gram that matched.
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from distillery.config import BenchmarkFile, DedupeConfig
from distillery.errors import DistilleryError
from distillery.io import read_parquet, read_records, write_parquet
from distillery.keys import normalize_text
from distillery.metrics import FilterCounts, write_metrics

log = logging.getLogger(__name__)

REJECTED_SCHEMA = {"uuid": pl.String, "reason": pl.String, "detail": pl.String}
CONTAMINATION_SCHEMA = {"uuid": pl.String, "benchmark": pl.String, "benchmark_item": pl.String, "ngram": pl.String}


def word_ngrams(text: str, n: int) -> set[str]:
    words = " ".join(text.lower().split()).split(" ")
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def benchmark_index(benchmarks: dict[str, BenchmarkFile], n: int) -> dict[str, tuple[str, str]]:
    """n-gram -> (benchmark name, item id), over every problem of every benchmark."""
    index: dict[str, tuple[str, str]] = {}
    for name, bench in benchmarks.items():
        for i, row in enumerate(read_records(bench.path, f"benchmark {name}")):
            text = row.get(bench.problem_field)
            if not isinstance(text, str):
                raise DistilleryError(f"benchmark {name} ({bench.path}) row {i} has no string field {bench.problem_field!r}; set problem_field")
            item = str(row.get(bench.id_field)) if bench.id_field else str(i)
            for gram in word_ngrams(text, n):
                index.setdefault(gram, (name, item))
    return index


def run(cfg: DedupeConfig, benchmarks: dict[str, BenchmarkFile], problems_path: Path, judged_path: Path, out_kept: Path, out_rejected: Path, out_contamination: Path, out_metrics: Path) -> FilterCounts:
    problems = read_parquet(problems_path, "sampled problems").select("uuid", "problem", "source")
    counts = FilterCounts(rows_in=problems.height)
    rejected: list[dict] = []
    contamination: list[dict] = []

    if cfg.exact:
        correct = (
            read_parquet(judged_path, "judged generations")
            .group_by("uuid")
            .agg((pl.col("correctness_math_verify") | pl.col("correctness_llama").fill_null(False)).sum().alias("n_correct"))
        )
        ranked = problems.join(correct, on="uuid", how="left").with_columns(
            pl.col("n_correct").fill_null(0),
            pl.col("problem").map_elements(normalize_text, return_dtype=pl.String).alias("normalized"),
        )
        order = ["uuid"] if cfg.keep == "first_by_key" else [pl.col("n_correct"), pl.col("uuid")]
        ranked = ranked.sort(order, descending=[False] if cfg.keep == "first_by_key" else [True, False])
        first = {}
        survivors = []
        for row in ranked.iter_rows(named=True):
            rep = first.setdefault(row["normalized"], row["uuid"])
            if rep != row["uuid"]:
                counts.reject("exact_duplicate")
                rejected.append({"uuid": row["uuid"], "reason": "exact_duplicate", "detail": f"duplicate of {rep}"})
            else:
                survivors.append(row["uuid"])
        problems = problems.filter(pl.col("uuid").is_in(survivors))

    if cfg.decontaminate and benchmarks:
        index = benchmark_index(benchmarks, cfg.ngram)
        clean = []
        for row in problems.iter_rows(named=True):
            hit = next(((g, index[g]) for g in sorted(word_ngrams(row["problem"], cfg.ngram)) if g in index), None)
            if hit is None:
                clean.append(row["uuid"])
                continue
            gram, (bench, item) = hit
            counts.reject("contaminated")
            rejected.append({"uuid": row["uuid"], "reason": "contaminated", "detail": f"{bench} item {item}"})
            contamination.append({"uuid": row["uuid"], "benchmark": bench, "benchmark_item": item, "ngram": gram})
        problems = problems.filter(pl.col("uuid").is_in(clean))

    counts.keep(problems.height)
    counts.check("dedupe")
    write_parquet(problems.select("uuid"), out_kept)
    write_parquet(pl.DataFrame(rejected, schema=REJECTED_SCHEMA), out_rejected)
    contam = pl.DataFrame(contamination, schema=CONTAMINATION_SCHEMA)
    write_parquet(contam, out_contamination)
    per_bench = {name: int((contam["benchmark"] == name).sum()) for name in benchmarks}
    write_metrics(out_metrics, "dedupe", counts=counts.as_dict(), contaminated_by_benchmark=per_bench, ngram=cfg.ngram)
    return counts
