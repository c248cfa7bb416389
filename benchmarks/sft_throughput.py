"""SFT throughput of the sft stage, without and with packing, side by side in one run (CPU).

    .venv/bin/python benchmarks/sft_throughput.py [--rows 256] [--max-length 1024]

The student is the models stage's tiny student_base (2 layers, hidden 128). Rows are R1-shaped
conversations whose assistant turns run from 40 to 900 tokens (a long tail, as reasoning traces
have), so without packing most of each padded batch is padding. Each configuration runs in its own
process through `sft.run` exactly as the pipeline calls it. Figures: trained tokens (the real,
non-padding tokens of the conversations) per second of training, optimizer steps, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FILLER = [
    "Let me check this step.",
    "So the sum is",
    "Wait, that is not right.",
    "Multiply both sides by",
    "Hence",
    "We substitute x =",
    "Therefore the remainder is",
    "Consider the case n =",
    "By symmetry,",
    "Now compute",
]


def make_dataset(root: Path, rows: int, seed: int = 0) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from distillery.stages.build import DATASET_SCHEMA, split_file

    rng = random.Random(seed)
    items = []
    for i in range(rows):
        words = int(min(900, rng.paretovariate(1.2) * 40))  # long-tailed reasoning lengths
        think = " ".join(rng.choice(FILLER) + f" {rng.randint(1, 999)}" for _ in range(max(1, words // 6)))
        answer = str(rng.randint(1, 999))
        items.append(
            {
                "problem": f"Problem {i}: compute the value.",
                "solution": "",
                "answer": answer,
                "problem_type": "",
                "question_type": "",
                "source": "s",
                "uuid": f"u{i}",
                "is_reasoning_complete": [True],
                "generations": [think],
                "correctness_math_verify": [True],
                "correctness_llama": None,
                "finish_reasons": ["stop"],
                "correctness_count": 1,
                "messages": [
                    {"content": f"Problem {i}: compute the value.", "role": "user"},
                    {"content": f"<think>\n{think}\n</think>\nThe answer is $\\boxed{{{answer}}}$.", "role": "assistant"},
                ],
            }
        )
    for split, part in (("default", items), ("extended", [])):
        path = split_file(root, split)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(part, schema=DATASET_SCHEMA), path)


def build_student(out: Path) -> Path:
    from distillery.config import GenerateConfig, ModelsConfig, SampleConfig
    from distillery.stages import models, sample

    sample.run(
        SampleConfig.model_validate({"source": str(REPO / "data/bundled/numina_sample.jsonl")}),
        42,
        sample.Paths(problems=out / "problems.parquet", rejected=out / "rejected.parquet", metrics=out / "sample.json"),
    )
    cfg = ModelsConfig.model_validate({"tiny": {"teacher_epochs": 1, "judge_epochs": 1, "max_position_embeddings": 2048}})
    models.run(
        cfg,
        42,
        GenerateConfig.model_fields["prompt_template"].default,
        models.Paths(
            corpus=out / "problems.parquet", judge_template=REPO / "prompts/judge.txt", models=out / "models", metrics=out / "models.json"
        ),
    )
    return out / "models" / "student_base"


def trained_tokens(student: Path, dataset: Path, max_length: int) -> int:
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(student)
    rows = pq.read_table(dataset / "default" / "train-00000-of-00001.parquet", columns=["messages"]).to_pylist()
    texts = [tok.apply_chat_template(r["messages"], tokenize=False) for r in rows]
    return sum(min(max_length, len(ids)) for ids in tok(texts, add_special_tokens=False)["input_ids"])


def child(student: str, dataset: str, work: str, packing: bool, max_length: int) -> dict:
    from distillery.config import SFTConfig
    from distillery.stages import sft

    cfg = SFTConfig.model_validate(
        {
            "model": student,
            "learning_rate": 1e-3,
            "num_train_epochs": 1,
            "max_length": max_length,
            "per_device_train_batch_size": 8,
            "gradient_accumulation_steps": 1,
            "packing": packing,
            "logging_steps": 1000,
            "save_steps": 100000,
        }
    )
    out = Path(work) / ("packed" if packing else "padded")
    t = time.perf_counter()
    report = sft.run(
        cfg, 42, sft.Paths(dataset_dir=Path(dataset), model=out / "model", metrics=out / "metrics.json", checkpoints=out / "ckpt")
    )
    return {"wall_s": time.perf_counter() - t, "train_runtime_s": report["runtime_s"], "steps": report["steps"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--max-length", type=int, default=1024)
    ap.add_argument("--child", nargs=4)
    args = ap.parse_args()
    if args.child:
        student, dataset, work, packing = args.child
        print(json.dumps(child(student, dataset, work, packing == "1", args.max_length)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        student = build_student(work)
        make_dataset(work / "ds", args.rows)
        tokens = trained_tokens(student, work / "ds", args.max_length)
        runs = {}
        for packing in (False, True):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--max-length",
                    str(args.max_length),
                    "--child",
                    str(student),
                    str(work / "ds"),
                    str(work),
                    "1" if packing else "0",
                ],
                capture_output=True,
                text=True,
            )
            if out.returncode:
                raise SystemExit(out.stderr[-3000:])
            runs["packed" if packing else "padded"] = json.loads(out.stdout.strip().splitlines()[-1])
    for r in runs.values():
        r["trained_tokens_per_s"] = tokens / r["train_runtime_s"]
    report = {
        "rows": args.rows,
        "max_length": args.max_length,
        "trained_tokens": tokens,
        **runs,
        "packed_over_padded": runs["packed"]["trained_tokens_per_s"] / runs["padded"]["trained_tokens_per_s"],
    }
    print(json.dumps(report, indent=2))
    print(
        f"\n{args.rows} rows, {tokens:,} tokens, max_length {args.max_length}, batch 8, CPU: "
        f"padded {runs['padded']['trained_tokens_per_s']:,.0f} tok/s ({runs['padded']['steps']} steps), "
        f"packed {runs['packed']['trained_tokens_per_s']:,.0f} tok/s ({runs['packed']['steps']} steps): "
        f"packing = {report['packed_over_padded']:.2f}x"
    )
    out = REPO / "benchmarks" / "results" / "sft_throughput.json"
    out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
