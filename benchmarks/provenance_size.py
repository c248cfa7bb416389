"""What per-row provenance costs on disk, at the recipe's shape.

Builds N problems x 4 generations shaped like the judged generations (R1-like traces of
`--chars` characters of distinct word soup, verdicts, request keys), then writes, side by side:

  judged generations   without vs with the provenance columns the stages add
                       (teacher_fingerprint, generate_params, generate_code, verifier,
                       verify_params, verify_code, judge_fingerprint, judge_params, judge_code)
  the dataset          the OpenR1-schema rows vs the provenance sidecar (data/build/provenance.parquet),
                       made by the build stage's own `row_provenance`

with the same writer the stages use (zstd parquet). Real traces average far more than the default
4,000 characters, so the ratios printed are upper bounds.

    python benchmarks/provenance_size.py [--problems 100000] [--chars 4000]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import tempfile
from pathlib import Path

import polars as pl

from distillery.io import write_parquet
from distillery.provenance import stamp
from distillery.stages.build import row_provenance


def texts(count: int, chars: int, seed: int = 0, chunk: int = 5000) -> list[str]:
    """`count` distinct texts: consecutive slices of a soup of 2,000 pseudo-words drawn at random
    (about 1.8 bits per character, which zstd compresses about as well as English prose), made a
    chunk at a time so the soup never holds more than `chunk` texts' worth of word objects."""
    import numpy as np

    gen = np.random.default_rng(seed)
    vocab = ["".join(chr(97 + c) for c in gen.integers(0, 26, gen.integers(2, 9))) for _ in range(2000)]
    out: list[str] = []
    while len(out) < count:
        n = min(chunk, count - len(out))
        soup = " ".join(vocab[i] for i in gen.integers(0, len(vocab), n * chars // 5 + 1000).tolist())
        out += [soup[i * chars : (i + 1) * chars] for i in range(n)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", type=int, default=100_000)
    ap.add_argument("--chars", type=int, default=4000, help="characters per generation")
    ap.add_argument("--generations", type=int, default=4)
    args = ap.parse_args()
    rng = random.Random(0)
    uuids = [hashlib.md5(str(i).encode()).hexdigest() for i in range(args.problems)]
    n = args.problems * args.generations
    gen_texts = texts(n, args.chars)
    key = [hashlib.sha256(f"{i}".encode()).hexdigest() for i in range(n)]
    judged_at = [rng.random() < 0.3 for _ in range(n)]
    base = pl.DataFrame(
        {
            "uuid": [u for u in uuids for _ in range(args.generations)],
            "sample_index": [i for _ in uuids for i in range(args.generations)],
            "request_key": key,
            "generation": [t + f" \\boxed{{{i % 97}}}" for i, t in enumerate(gen_texts)],
            "finish_reason": ["stop"] * n,
            "status": ["ok"] * n,
            "prompt_tokens": [rng.randint(50, 400) for _ in range(n)],
            "completion_tokens": [args.chars // 4] * n,
            "error": pl.Series([None] * n, dtype=pl.String),
            "teacher_backend": ["openai"] * n,
            "teacher_model": ["deepseek-ai/DeepSeek-R1"] * n,
            "teacher_revision": ["main"] * n,
            "sampling": ['{"max_new_tokens": 16384, "n": 4, "temperature": 0.6, "top_p": 0.95}'] * n,
            "extracted_answer": [str(i % 97) for i in range(n)],
            "is_reasoning_complete": [True] * n,
            "correctness_math_verify": [rng.random() < 0.6 for _ in range(n)],
            "verify_status": ["ok"] * n,
            "judge_verdict": ["DIFFERENT" if j else "not_judged" for j in judged_at],
            "correctness_llama": pl.Series([False if j else None for j in judged_at], dtype=pl.Boolean),
            "judge_reply": pl.Series(["Verdict: DIFFERENT" if j else None for j in judged_at], dtype=pl.String),
            "judge_request_key": pl.Series(
                [hashlib.sha256(f"j{i}".encode()).hexdigest() if j else None for i, j in enumerate(judged_at)], dtype=pl.String
            ),
            "judge_model": ["meta-llama/Llama-3.3-70B-Instruct"] * n,
            "judge_revision": ["main"] * n,
        }
    )
    code = "distillery 0.1.0 git 0123456789ab"
    with_prov = stamp(base, "verify", {"x": 1}, verifier="math-verify 0.8.0").with_columns(
        pl.lit(None, dtype=pl.String).alias("teacher_fingerprint"),
        pl.lit("a" * 16).alias("generate_params"),
        pl.lit(code).alias("generate_code"),
        pl.lit(None, dtype=pl.String).alias("judge_fingerprint"),
        pl.lit("b" * 16).alias("judge_params"),
        pl.Series("judge_code", [code if j else None for j in judged_at], dtype=pl.String),
    )
    problems = pl.DataFrame({"uuid": uuids, "source_row": list(range(args.problems))})
    problems = stamp(problems, "sample", {"n": 1}, source_version="md5 " + "c" * 32)
    kept = stamp(problems.select("uuid"), "dedupe", {"ngram": 8})
    grouped = base.group_by("uuid", maintain_order=True).agg(
        pl.col("generation").alias("generations"),
        pl.col("correctness_math_verify"),
        pl.col("correctness_llama"),
        pl.col("is_reasoning_complete"),
        pl.col("finish_reason").alias("finish_reasons"),
    )
    dataset = grouped.with_columns(
        pl.lit("problem text " * 20).alias("problem"),
        pl.lit("solution " * 100).alias("solution"),
        pl.lit("42").alias("answer"),
        pl.lit("Algebra").alias("problem_type"),
        pl.lit("math-word-problem").alias("question_type"),
        pl.lit("olympiads").alias("source"),
        pl.lit(2).alias("correctness_count"),
        pl.struct(pl.lit("user").alias("role"), pl.col("generations").list.first().alias("content")).alias("messages"),
    )
    index = pl.DataFrame({"split": ["default"] * args.problems, "uuid": uuids})
    sidecar = stamp(row_provenance(index, problems, with_prov, kept, dict(zip(uuids, [0] * args.problems))), "build", {"s": 1})

    with tempfile.TemporaryDirectory() as tmp:
        sizes = {}
        for name, df in (("judged", base), ("judged+provenance", with_prov), ("dataset", dataset), ("provenance sidecar", sidecar)):
            path = Path(tmp) / f"{name}.parquet"
            write_parquet(df, path)
            sizes[name] = path.stat().st_size
    print(f"{args.problems:,} problems x {args.generations} generations of {args.chars:,} chars (zstd parquet)\n")
    print(f"{'file':<22} {'MB':>10}")
    for k, v in sizes.items():
        print(f"{k:<22} {v / 1e6:>10.1f}")
    added = sizes["judged+provenance"] - sizes["judged"]
    print(
        f"\nprovenance columns in the judged generations: +{added / 1e6:.2f} MB = {added / sizes['judged']:.4f}x the file "
        f"({added / n:.2f} bytes per generation)"
    )
    print(
        f"provenance sidecar / dataset: {sizes['provenance sidecar'] / sizes['dataset']:.4f}x "
        f"({sizes['provenance sidecar'] / args.problems:.1f} bytes per dataset row)"
    )


if __name__ == "__main__":
    main()
