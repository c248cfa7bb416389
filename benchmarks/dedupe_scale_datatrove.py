"""datatrove's MinHash dedupe on benchmarks/dedupe_scale.py's rows: its comparison child, run with a
Python that has datatrove (`pip install '.[benchmarks]'`, or a venv of its own):

    PYTHON -m ... benchmarks/dedupe_scale_datatrove.py PROBLEMS.parquet WORK_DIR {default,ours} WORKERS

Its four steps as its documentation runs them (signatures, buckets, clusters, filter), each with a
LocalPipelineExecutor, buckets in `WORKERS` processes. `default`: datatrove's MinhashConfig (word
5-grams, 14 buckets of 8 hashes); `ours`: the stage's shingles and banding (word 2-grams, 32 bands of
4). datatrove merges every bucket match (no Jaccard check). Prints one JSON line: wall and CPU
seconds (this process and its workers), peak RSS of the largest process, and the removed uuids'
file (one uuid a line). Only the standard library and datatrove: the venv needs nothing else.
"""

from __future__ import annotations

import gzip
import json
import resource
import sys
import time
from pathlib import Path


def main() -> None:
    problems, work, config, workers = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import JsonlWriter

    cfg = MinhashConfig() if config == "default" else MinhashConfig(n_grams=2, num_buckets=32, hashes_per_bucket=4)

    def reader():
        return ParquetReader(str(problems.parent), glob_pattern=problems.name, text_key="problem", id_key="uuid")

    t, cpu0 = time.perf_counter(), _cpu()
    steps = [
        ([reader(), MinhashDedupSignature(output_folder=str(work / "signatures"), config=cfg)], 1, 1),
        (
            [MinhashDedupBuckets(input_folder=str(work / "signatures"), output_folder=str(work / "buckets"), config=cfg)],
            cfg.num_buckets,
            workers,
        ),
        ([MinhashDedupCluster(input_folder=str(work / "buckets"), output_folder=str(work / "remove_ids"), config=cfg)], 1, 1),
        (
            [
                reader(),
                MinhashDedupFilter(input_folder=str(work / "remove_ids"), exclusion_writer=JsonlWriter(str(work / "removed"))),
            ],
            1,
            1,
        ),
    ]
    for k, (pipeline, tasks, n_workers) in enumerate(steps):
        LocalPipelineExecutor(pipeline, tasks=tasks, workers=n_workers, logging_dir=str(work / f"logs-{k}")).run()
    wall = time.perf_counter() - t
    removed = work / "removed.txt"
    with removed.open("w") as out:
        for path in sorted((work / "removed").glob("*.jsonl.gz")):
            with gzip.open(path, "rt") as f:
                for line in f:
                    out.write(json.loads(line)["id"] + "\n")
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps(
            {
                "wall_s": wall,
                "cpu_s": _cpu() - cpu0,
                "peak_rss_mb": max(self_peak, children_peak) / 1024,
                "config": str(cfg),
                "removed": str(removed),
            }
        )
    )


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    main()
