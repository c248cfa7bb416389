"""Decontamination on realistic math text: recall of planted benchmark copies and false flags on
clean problems, for open-r1's rule and the dedupe stage's, side by side on the same rows.

    .venv/bin/python benchmarks/decontamination.py [--problems 400000]

Corpus (tests/support/realistic_math_text.py): --problems clean problems with MATH-500's word
frequencies and sentence lengths, a third ending with the benchmarks' own closing sentences
("Express your answer as a common fraction."), 5% more as near duplicates of them; and 400
MATH-500/AIME problems planted, 200 verbatim and 200 lightly edited (two of: case, spacing and
punctuation, LaTeX respelled, numbers formatted, one sentence reworded, a "Problem 7." prefix).

Rules, all against MATH-500, AIME 2024 and AIME 2025:
- open-r1: scripts/decontaminate.py, replicated: lowercased whitespace-split word 8-grams, a row is
  contaminated when it shares any one with a benchmark problem;
- token 8-gram, any: the rule the dedupe stage shipped before this benchmark, replicated with its
  tokens: one shared token 8-gram (or a whole benchmark problem shorter than 8 tokens) flags a row;
- stage, c: the dedupe stage with `min_item_coverage: c`, for several c (0: every candidate, a row
  sharing one retrieval gram with an item).

Each rule runs in its own process, so its wall time and peak memory (ru_maxrss) are its own. The
stage's process is limited to 2 threads (POLARS_MAX_THREADS) like a 2-core job.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import polars as pl  # noqa: E402
from dedupe_scale import BENCH_DIR, BENCHMARKS  # noqa: E402  (the same benchmarks as the dedupe benchmark)

from distillery.stages import dedupe  # noqa: E402

from support.realistic_math_text import RealisticCorpus  # noqa: E402

COVERAGES = [0.0, 0.3, 0.4, 0.5, 0.6, 0.7]
N = 8


def make_corpus(n: int, work: Path) -> None:
    corpus = RealisticCorpus.from_benchmarks(BENCH_DIR, seed=0)
    rows = corpus.clean_problems(n) + corpus.planted(verbatim=200, edited=200)
    pl.DataFrame(
        {
            "uuid": [f"p{i:07d}" for i in range(len(rows))],
            "problem": [t for t, _ in rows],
            "source": "synthetic",
            "role": [r for _, r in rows],
        }
    ).write_parquet(work / "corpus.parquet")


# --- children: one measurement each -------------------------------------------------------------


def child_openr1(work: Path) -> dict:
    """open-r1's scripts/decontaminate.py: normalize_string, word_ngrams, `any(ngram in lookup)`."""

    def normalize(text: str) -> str:
        return " ".join(text.lower().strip().split())

    def word_ngrams(text: str, n: int) -> list[str]:
        words = text.split()
        return [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]

    texts = pl.read_parquet(work / "corpus.parquet")["problem"].to_list()
    t = time.perf_counter()
    lookup: set[str] = set()
    for bench in BENCHMARKS.values():
        for line in Path(bench.path).read_text().splitlines():
            lookup.update(word_ngrams(normalize(json.loads(line)["problem"]), N))
    flagged = [i for i, text in enumerate(texts) if any(g in lookup for g in set(word_ngrams(normalize(text), N)))]
    return {"wall_s": time.perf_counter() - t, "flagged": flagged}


def child_token_any(work: Path) -> dict:
    """One shared token 8-gram, or a whole shorter benchmark problem, flags a row."""
    import numpy as np

    texts = pl.read_parquet(work / "corpus.parquet")["problem"]
    t = time.perf_counter()
    bench = dedupe.TokenTable.of(
        pl.Series([json.loads(line)["problem"] for b in BENCHMARKS.values() for line in Path(b.path).read_text().splitlines()])
    )
    lengths = sorted({N} | {int(k) for k in bench.lengths if 0 < k < N})
    wanted = {}
    for m, starts, g in bench.grams_by_length(lengths):
        rows = bench.row_of(starts)
        wanted[m] = np.unique(g if m == N else g[bench.lengths[rows] == m])
    table = dedupe.TokenTable.of(texts, keep_tokens=False)
    flagged: set[int] = set()
    for m, starts, g in table.grams_by_length(list(wanted)):
        flagged |= set(table.row_of(starts[np.isin(g, wanted[m])]).tolist())
    return {"wall_s": time.perf_counter() - t, "flagged": sorted(flagged)}


def child_stage(work: Path) -> dict:
    problems = pl.read_parquet(work / "corpus.parquet").select("uuid", "problem", "source")
    t = time.perf_counter()
    index = dedupe.BenchmarkIndex.build(BENCHMARKS, N)
    found = dedupe.contamination(problems, index, min_matching=1, min_coverage=0.0)
    wall = time.perf_counter() - t
    rows = {u: i for i, u in enumerate(problems["uuid"].to_list())}
    # Every rule with a larger min_coverage flags a subset of these: one run gives them all.
    return {
        "wall_s": wall,
        "flagged": [[rows[u], c] for u, c in zip(found["uuid"].to_list(), found["item_coverage"].to_list())],
    }


def _run_child(mode: str, work: Path, env: dict | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--work", str(work)], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    if out.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def score(roles: list[str], flagged: set[int]) -> dict:
    kinds = {"verbatim": [], "edited": [], "clean": []}
    for i, role in enumerate(roles):
        kinds["clean" if role in ("clean", "duplicate") else role.split(":", 1)[0]].append(i)
    missed_edits: dict[str, int] = {}
    for i in kinds["edited"]:
        if i not in flagged:
            for kind in roles[i].split(":")[1].split("+"):
                missed_edits[kind] = missed_edits.get(kind, 0) + 1
    false = sum(i in flagged for i in kinds["clean"])
    return {
        "verbatim_recall": round(sum(i in flagged for i in kinds["verbatim"]) / len(kinds["verbatim"]), 4),
        "edited_recall": round(sum(i in flagged for i in kinds["edited"]) / len(kinds["edited"]), 4),
        "false_flags": false,
        "false_flag_rate_pct": round(100 * false / len(kinds["clean"]), 4),
        "missed_edits_by_kind": missed_edits,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=400_000)
    ap.add_argument("--child")
    ap.add_argument("--work", type=Path)
    args = ap.parse_args()
    if args.child:
        if args.child == "corpus":
            make_corpus(args.problems, args.work)
            print(json.dumps({}))
            return
        result = {"openr1": child_openr1, "token_any": child_token_any, "stage": child_stage}[args.child](args.work)
        result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        # In another process: Linux carries a process's peak RSS across fork and exec.
        subprocess.run([sys.executable, __file__, "--child", "corpus", "--problems", str(args.problems), "--work", str(work)], check=True)
        corpus_s = time.perf_counter() - t
        roles = pl.read_parquet(work / "corpus.parquet")["role"].to_list()
        openr1 = _run_child("openr1", work)
        two_cores = {"POLARS_MAX_THREADS": "2", "OMP_NUM_THREADS": "2"}
        token_any = _run_child("token_any", work, two_cores)
        stage = _run_child("stage", work, two_cores)
        rules = {}
        for name, run in (("open-r1 word 8-gram, any", openr1), ("token 8-gram, any (shipped before)", token_any)):
            rules[name] = {**score(roles, set(run["flagged"])), "wall_s": round(run["wall_s"], 1), "peak_rss_mb": run["peak_rss_mb"]}
        for c in COVERAGES:
            flagged = {i for i, cov in stage["flagged"] if cov >= c}
            rules[f"stage, min_item_coverage {c}"] = {
                **score(roles, flagged),
                "wall_s": round(stage["wall_s"], 1),
                "peak_rss_mb": stage["peak_rss_mb"],
            }
        report = {"problems": args.problems, "rows": len(roles), "corpus_s": round(corpus_s, 1), "rules": rules}
    print(f"{args.problems:,} clean problems (+5% near duplicates) and 200 verbatim + 200 edited benchmark copies")
    print(f"{'rule':44} {'verbatim':>9} {'edited':>8} {'false flags':>12} {'(%)':>8} {'wall s':>7} {'RSS MB':>7}")
    for name, r in rules.items():
        print(
            f"{name:44} {r['verbatim_recall']:>9.2%} {r['edited_recall']:>8.2%} {r['false_flags']:>12,} "
            f"{r['false_flag_rate_pct']:>8.4f} {r['wall_s']:>7} {r['peak_rss_mb']:>7}"
        )
        if r["missed_edits_by_kind"]:
            print(f"{'':44} missed edits by kind: {r['missed_edits_by_kind']}")
    out = REPO / "benchmarks" / "results" / "decontamination.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
