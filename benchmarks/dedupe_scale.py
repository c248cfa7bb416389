"""The dedupe stage at the recipe's scale, and its near-duplicate step with rensa against datasketch,
side by side in one run.

    .venv/bin/pip install -c constraints/pipeline.txt '.[benchmarks]'   # datasketch, for the comparison
    .venv/bin/python benchmarks/dedupe_scale.py [--problems 400000]

Corpus (tests/support/synthetic_problems.py): --problems synthetic problems of 30-90 words with
shared boilerplate; 5% exact duplicates (case, whitespace, LaTeX spacing respelled), 5% near
duplicates (one or two numbers reworded), and 200 MATH-500/AIME problems planted, half verbatim,
half lightly edited (case, spacing, punctuation).

Each measurement runs in its own process, so its wall time and peak memory (ru_maxrss) are its own:

- stage: `dedupe.run` exactly as the pipeline calls it (decontamination + exact + near-dup), with
  the time of each step, and recall of every planted case;
- rensa / datasketch: the near-duplicate step alone on the exact-deduped rows, from the same shingle
  hashes, with the same permutations, bands and threshold: MinHash signatures, LSH candidates, pairs
  confirmed by estimated Jaccard.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from distillery.config import BenchmarkFile, DedupeConfig  # noqa: E402
from distillery.stages import dedupe  # noqa: E402

from support.synthetic_problems import synthetic_problems  # noqa: E402

BENCH_DIR = REPO.parent / "shared" / "benchmarks"
BENCHMARKS = {
    "math500": BenchmarkFile(path=str(BENCH_DIR / "math500.jsonl"), id_field="unique_id"),
    "aime2024": BenchmarkFile(path=str(BENCH_DIR / "aime2024.jsonl"), id_field="id"),
    "aime2025": BenchmarkFile(path=str(BENCH_DIR / "aime2025.jsonl"), id_field="id"),
}
SEED = 0


def light_edit(rng: random.Random, text: str) -> str:
    return rng.choice([str.upper, str.lower])(text).replace(", ", " ,  ").replace(". ", "; ") + " ."


def make_corpus(n: int, work: Path) -> tuple[Path, Path, Path]:
    rng = random.Random(SEED)
    items = []
    for name, bench in BENCHMARKS.items():
        items += [(name, str(r[bench.id_field]), r["problem"]) for r in map(json.loads, Path(bench.path).read_text().splitlines())]
    planted = [(b, i, t if k % 2 == 0 else light_edit(rng, t)) for k, (b, i, t) in enumerate(rng.sample(items, 200))]
    rows, roles = synthetic_problems(n, seed=SEED, exact_rate=0.05, near_rate=0.05, planted=planted)
    problems = pl.DataFrame(rows)
    paths = work / "problems.parquet", work / "judged.parquet", work / "roles.parquet"
    problems.write_parquet(paths[0])
    pl.DataFrame(schema={"uuid": pl.String, "correctness_math_verify": pl.Boolean, "correctness_llama": pl.Boolean}).write_parquet(paths[1])
    pl.DataFrame({"uuid": list(roles), "role": list(roles.values())}).write_parquet(paths[2])
    return paths


# --- children: one measurement each -----------------------------------------------------------------


def child_stage(work: Path) -> dict:
    cfg = DedupeConfig.model_validate({"benchmarks": list(BENCHMARKS)})
    steps: dict[str, float] = {}
    timed = {}
    for name in ("contamination", "exact_duplicates", "near_duplicate_pairs"):
        original = getattr(dedupe, name)

        def wrapper(*a, _f=original, _n=name, **k):
            t = time.perf_counter()
            out = _f(*a, **k)
            steps[_n] = steps.get(_n, 0) + time.perf_counter() - t
            return out

        timed[name] = wrapper
    for name, f in timed.items():
        setattr(dedupe, name, f)
    t = time.perf_counter()
    dedupe.run(
        cfg,
        BENCHMARKS,
        dedupe.Paths(
            problems=work / "problems.parquet",
            judged=work / "judged.parquet",
            kept=work / "kept.parquet",
            rejected=work / "rejected.parquet",
            contamination=work / "contamination.parquet",
            metrics=work / "metrics.json",
            near_duplicates=work / "near.parquet",
        ),
        seed=SEED,
    )
    return {"wall_s": time.perf_counter() - t, "steps_s": steps}


def exact_deduped(work: Path) -> pl.DataFrame:
    problems = pl.read_parquet(work / "problems.parquet").sort("uuid")
    return problems.join(dedupe.exact_duplicates(problems).select("uuid"), on="uuid", how="anti", maintain_order="left")


def child_rensa(work: Path) -> dict:
    texts = exact_deduped(work)["problem"]
    cfg = DedupeConfig().near
    t = time.perf_counter()
    pairs = dedupe.near_duplicate_pairs(texts, cfg, SEED)
    return {"wall_s": time.perf_counter() - t, "rows": texts.len(), "pairs": pairs.height}


def child_datasketch(work: Path) -> dict:
    from datasketch import MinHash, MinHashLSH

    texts = exact_deduped(work)["problem"]
    cfg = DedupeConfig().near
    t = time.perf_counter()
    table = dedupe.TokenTable.of(texts, keep_tokens=False)
    flat, offsets = dedupe.shingle_hashes(table, cfg.shingle_size)
    flat32 = (flat & np.uint64(0xFFFFFFFF)).tolist()  # datasketch hashes to 32 bits; pass them pre-hashed
    offs = offsets.astype(np.int64).tolist()
    docs = [flat32[offs[i] : offs[i + 1]] for i in range(len(offs) - 1)]
    rows = [i for i, d in enumerate(docs) if d]
    sigs = MinHash.bulk([docs[i] for i in rows], num_perm=cfg.num_perm, seed=SEED, hashfunc=lambda x: x)
    lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm, params=(cfg.bands, cfg.num_perm // cfg.bands))
    with lsh.insertion_session() as session:
        for i, m in zip(rows, sigs):
            session.insert(i, m, check_duplication=False)
    by_row = dict(zip(rows, sigs))
    pairs = 0
    for i, m in zip(rows, sigs):
        for j in lsh.query(m):
            if j > i and m.jaccard(by_row[j]) >= cfg.threshold:
                pairs += 1
    return {"wall_s": time.perf_counter() - t, "rows": len(rows), "pairs": pairs}


def _run_child(mode: str, work: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--work", str(work)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def recall(work: Path) -> dict:
    roles = dict(pl.read_parquet(work / "roles.parquet").iter_rows())
    kept = set(pl.read_parquet(work / "kept.parquet")["uuid"].to_list())
    rejected = dict(pl.read_parquet(work / "rejected.parquet").select("uuid", "reason").iter_rows())
    groups: dict[str, dict[str, set[str]]] = {}
    for uuid, role in roles.items():
        if role.startswith(("exact_of:", "near_of:")):
            kind, original = role.split(":", 1)
            groups.setdefault(original, {}).setdefault(kind, set()).add(uuid)
    exact_groups = [({o} | g["exact_of"]) for o, g in groups.items() if "exact_of" in g and "near_of" not in g]
    near_groups = [({o} | g["near_of"] | g.get("exact_of", set())) for o, g in groups.items() if "near_of" in g]
    planted = [u for u, r in roles.items() if r.startswith("planted:")]
    uniques = [u for u, r in roles.items() if r == "unique" and u not in groups]
    return {
        "exact_groups_left_with_one": sum(len(g & kept) == 1 for g in exact_groups) / max(1, len(exact_groups)),
        "near_groups_left_with_one": sum(len(g & kept) == 1 for g in near_groups) / max(1, len(near_groups)),
        "planted_flagged": sum(rejected.get(u) == "contaminated" for u in planted) / len(planted),
        "unrelated_rows_removed": sum(u not in kept for u in uniques),
        "unrelated_rows": len(uniques),
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
        result = {"stage": child_stage, "rensa": child_rensa, "datasketch": child_datasketch}[args.child](args.work)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        # In another process: Linux carries a process's peak RSS across fork and exec, so the
        # measured children must come from a parent that never held the corpus.
        out = subprocess.run(
            [sys.executable, __file__, "--child", "corpus", "--problems", str(args.problems), "--work", str(work)],
            capture_output=True,
            text=True,
        )
        if out.returncode:
            raise SystemExit(out.stderr[-3000:])
        print(f"corpus: {args.problems:,} problems written in {time.perf_counter() - t:.1f} s")
        stage = _run_child("stage", work)
        rec = recall(work)
        rensa = _run_child("rensa", work)
        ds = _run_child("datasketch", work)
    report = {
        "problems": args.problems,
        "stage": stage,
        "recall": rec,
        "near_dup_rensa": rensa,
        "near_dup_datasketch": ds,
        "datasketch_over_rensa_wall": ds["wall_s"] / rensa["wall_s"],
    }
    print(json.dumps(report, indent=2))
    s = stage["steps_s"]
    print(
        f"\nstage, {args.problems:,} problems on {len(__import__('os').sched_getaffinity(0))} cores: "
        f"{stage['wall_s']:.1f} s wall (decontamination {s.get('contamination', 0):.1f} s, exact {s.get('exact_duplicates', 0):.1f} s, "
        f"near-dup {s.get('near_duplicate_pairs', 0):.1f} s), peak {stage['peak_rss_mb']:.0f} MB"
    )
    print(
        f"recall: exact {rec['exact_groups_left_with_one']:.4f}, near {rec['near_groups_left_with_one']:.4f}, planted benchmark "
        f"{rec['planted_flagged']:.4f}; unrelated rows removed {rec['unrelated_rows_removed']} of {rec['unrelated_rows']:,}"
    )
    print(
        f"near-dup step: rensa {rensa['wall_s']:.1f} s / {rensa['peak_rss_mb']:.0f} MB, {rensa['pairs']} pairs; "
        f"datasketch {ds['wall_s']:.1f} s / {ds['peak_rss_mb']:.0f} MB, {ds['pairs']} pairs; "
        f"datasketch/rensa wall = {report['datasketch_over_rensa_wall']:.1f}x"
    )
    out = REPO / "benchmarks" / "results" / "dedupe_scale.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
