"""`distillery diff` on two 1,000,000-row versions of a dataset with 1% of rows changed.

    .venv/bin/python benchmarks/diff_scale.py [--rows 1000000] [--chars 1000]

A real git + DVC repo in a temp dir: version A of `data/ds/{default,extended}/train.parquet`
(OpenR1-Math-220k-shaped rows, two generations of --chars characters each), `dvc add`, commit;
version B with 1% of the rows changed (half with a flipped judge verdict, half with a replaced
generation), 0.1% removed and 0.1% added, `dvc add`, commit. Then `distillery diff HEAD~1 HEAD`
runs as its own process: its wall time and peak memory (ru_maxrss of the child) are printed, with
the size of the two versions for scale, and the reported counts are checked against the planted ones.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
BIN = REPO / ".venv" / "bin"


def version_a(rows: int, chars: int) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    filler = ("Let me think about this step by step. " * (chars // 38 + 1))[: chars - 9]
    i = pl.col("i")
    return pl.DataFrame({"i": np.arange(rows)}).select(
        uuid=pl.lit("u") + i.cast(pl.String).str.zfill(8),
        source=pl.Series(rng.choice(["olympiads", "cn_k12", "amc_aime", "aops_forum"], rows)),
        split=pl.Series(rng.choice(["default", "extended"], rows)),
        generations=pl.concat_list(
            [pl.lit(filler) + i.cast(pl.String).str.zfill(9), pl.lit(filler) + (i + 7).cast(pl.String).str.zfill(9)]
        ),
        correctness_math_verify=pl.Series([list(r) for r in (rng.random((rows, 2)) < 0.6)], dtype=pl.List(pl.Boolean)),
        correctness_llama=pl.Series([list(r) for r in (rng.random((rows, 2)) < 0.5)], dtype=pl.List(pl.Boolean)),
        correctness_count=pl.Series(rng.integers(1, 3, rows)),
    )


def version_b(a: pl.DataFrame) -> tuple[pl.DataFrame, dict]:
    rows = a.height
    rng = np.random.default_rng(1)
    pick = rng.permutation(rows)
    flipped, replaced = pick[: rows // 200], pick[rows // 200 : rows // 100]
    removed = pick[rows // 100 : rows // 100 + rows // 1000]
    b = (
        a.with_row_index("_i")
        .with_columns(
            pl.when(pl.col("_i").is_in(flipped))
            .then(pl.col("correctness_llama").list.eval(~pl.element()))
            .otherwise(pl.col("correctness_llama"))
            .alias("correctness_llama"),
            pl.when(pl.col("_i").is_in(replaced))
            .then(pl.concat_list([pl.col("generations").list.first(), pl.lit("replaced")]))
            .otherwise(pl.col("generations"))
            .alias("generations"),
        )
        .filter(~pl.col("_i").is_in(removed))
        .drop("_i")
    )
    added = a.head(rows // 1000).with_columns(pl.col("uuid").str.replace("^u", "n"))
    return pl.concat([b, added]), {"changed": len(flipped) + len(replaced), "removed": len(removed), "added": added.height}


def write(df: pl.DataFrame, root: Path) -> int:
    size = 0
    for split in ("default", "extended"):
        path = root / split / "train-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        df.filter(pl.col("split") == split).drop("split").write_parquet(path)
        size += path.stat().st_size
    return size


def sh(args: list[str], cwd: Path) -> None:
    r = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{r.stderr[-2000:]}")


def build_repo(repo: Path, rows: int, chars: int) -> dict:
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@b"]
    sh(["git", "init", "-q"], repo)
    sh([str(BIN / "dvc"), "init", "-q"], repo)
    (repo / "params.yaml").write_text("build: {choice: random}\n")
    t = time.perf_counter()
    a = version_a(rows, chars)
    b, planted = version_b(a)
    in_memory_mb = (a.estimated_size() + b.estimated_size()) / 2**20
    size_a = write(a, repo / "data" / "ds")
    del a
    sh([str(BIN / "dvc"), "add", "-q", "data/ds"], repo)
    sh(git + ["add", "-A"], repo)
    sh(git + ["commit", "-qm", "A"], repo)
    size_b = write(b, repo / "data" / "ds")
    del b
    (repo / "params.yaml").write_text("build: {choice: shortest}\n")
    sh([str(BIN / "dvc"), "add", "-q", "data/ds"], repo)
    sh(git + ["add", "-A"], repo)
    sh(git + ["commit", "-qm", "B"], repo)
    return {
        "planted": planted,
        "in_memory_mb": in_memory_mb,
        "parquet_mb": [size_a / 2**20, size_b / 2**20],
        "setup_s": time.perf_counter() - t,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--chars", type=int, default=1000)
    ap.add_argument("--keep", type=Path, help="build the repo here and keep it (to profile)")
    ap.add_argument("--setup", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.setup:
        print(json.dumps(build_repo(args.setup, args.rows, args.chars)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        repo = args.keep or Path(tmp)
        repo.mkdir(parents=True, exist_ok=True)
        # The versions are built in another process: Linux carries a process's peak RSS across
        # fork and exec, so the diff's own peak must come from a parent that never held them.
        out = subprocess.run(
            [sys.executable, __file__, "--rows", str(args.rows), "--chars", str(args.chars), "--setup", str(repo)],
            capture_output=True,
            text=True,
        )
        if out.returncode:
            raise SystemExit(out.stderr[-3000:])
        setup = json.loads(out.stdout.strip().splitlines()[-1])
        planted, in_memory_mb = setup["planted"], setup["in_memory_mb"]
        print(
            f"setup: {args.rows:,} rows per version in {setup['setup_s']:.0f} s; parquet {setup['parquet_mb'][0]:.0f} + "
            f"{setup['parquet_mb'][1]:.0f} MB, {in_memory_mb:,.0f} MB as two in-memory frames"
        )

        # The CLI in a process of its own, which reports its own peak memory on the way out.
        probe = (
            "import resource, sys; from distillery.cli import main; code = main(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(code)"
        )
        t = time.perf_counter()
        r = subprocess.run(
            [sys.executable, "-c", probe, "diff", "HEAD~1", "HEAD", "--path", "data/ds", "--format", "json"],
            cwd=repo,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t
        if r.returncode:
            raise SystemExit(r.stderr[-3000:])
        peak = int(r.stderr.strip().splitlines()[-1]) / 1024
        got = json.loads(r.stdout)
    ok = all(got["rows"][k] == planted[k] for k in planted) and got["params"] == {"build.choice": {"a": "random", "b": "shortest"}}
    report = {
        "rows": args.rows,
        "chars_per_generation": args.chars,
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(peak),
        "in_memory_mb_of_both_versions": round(in_memory_mb),
        "planted": planted,
        "reported": got["rows"],
        "counts_match": ok,
    }
    print(json.dumps(report, indent=2))
    print(
        f"\ndistillery diff, {args.rows:,} rows x 2 versions, 1% changed: {wall:.1f} s wall, peak {peak:,.0f} MB "
        f"({peak / in_memory_mb:.2f} of the two versions' in-memory size); counts {'match' if ok else 'DO NOT match'} the planted ones"
    )
    (REPO / "benchmarks" / "results" / "diff_scale.json").write_text(json.dumps(report, indent=2) + "\n")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
