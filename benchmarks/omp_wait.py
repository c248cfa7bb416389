"""How OpenMP's wait policy changes the demo's CPU training time, side by side in one run.

    .venv/bin/python benchmarks/omp_wait.py [--steps 20] [--rounds 2]

The work: the models stage's own teacher training (`stages.models.train_completions`, the demo's
tiny-model settings, params.yaml's `models.tiny`) for `--steps` steps on the bundled corpus, in a
fresh process each time, torch with as many threads as the machine has cores. Four settings of
OpenMP's waiting (SETTINGS below), each run:
- alone on the machine, and
- beside one busy process (a Python loop on one core: a second Snakemake job, a test's server).
Rounds alternate the settings so that drift in the machine's load falls on all. Prints the median
seconds per setting and condition, its ratio to libgomp's default (unset), and whether each setting
trained the same weights (the final loss, to 6 digits: waiting must change no result).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

TRAIN = """
import json, sys, time
from pathlib import Path
import yaml
from distillery.config import ModelsConfig
from distillery.stages import models
repo, steps = Path(sys.argv[1]), int(sys.argv[2])
raw = yaml.safe_load((repo / "params.yaml").read_text())["models"]
tiny = ModelsConfig.model_validate(raw).tiny
rows = models.corpus_rows(repo / tiny.corpus)
tokenizer = models.build_tokenizer([r["problem"] + " " + r["solution"] for r in rows], tiny.vocab_size, tiny.max_position_embeddings)
model = models.new_model(tokenizer, tiny, 42)
pairs = [(r["problem"], models.teacher_target(r["solution"], r["answer"])) for r in rows]
epochs = -(-steps * tiny.batch_size // len(pairs))  # whole epochs, at least `steps` steps
started = time.perf_counter()
stats = models.train_completions(model, tokenizer, pairs, tiny, epochs, 42)
print(json.dumps({"seconds": time.perf_counter() - started, "steps": stats["steps"], "loss": stats["final_loss"]}))
"""


# libgomp (torch's OpenMP on Linux): unset, a thread spins 300,000 turns before it sleeps; ACTIVE
# spins on; PASSIVE sleeps at once; a small GOMP_SPINCOUNT spins briefly, then sleeps.
SETTINGS = {
    "unset": {},
    "ACTIVE": {"OMP_WAIT_POLICY": "ACTIVE"},
    "PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "GOMP_SPINCOUNT=10000": {"GOMP_SPINCOUNT": "10000"},
}


def train_once(setting: str, steps: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env |= SETTINGS[setting] | {"ATEN_CPU_CAPABILITY": "avx2", "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run([sys.executable, "-c", TRAIN, str(REPO), str(steps)], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    results: dict[tuple[str, str], list[dict]] = {}
    for condition in ("alone", "beside one busy process"):
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if condition != "alone" else None
        try:
            time.sleep(1)
            for _ in range(args.rounds):
                for setting in SETTINGS:
                    results.setdefault((condition, setting), []).append(train_once(setting, args.steps))
        finally:
            if busy:
                busy.kill()
                busy.wait()
    lines = [
        f"{os.cpu_count()} cores, {args.steps} training steps of the demo's tiny teacher, {args.rounds} rounds",
        "| condition | setting | seconds (median) | / unset's | same loss as unset |",
        "| --- | --- | --- | --- | --- |",
    ]
    for condition in ("alone", "beside one busy process"):
        base = results[(condition, "unset")]
        base_s = statistics.median(r["seconds"] for r in base)
        for setting in SETTINGS:
            runs = results[(condition, setting)]
            sec = statistics.median(r["seconds"] for r in runs)
            same = {round(r["loss"], 6) for r in runs} == {round(r["loss"], 6) for r in base}
            lines.append(f"| {condition} | {setting} | {sec:.2f} | {sec / base_s:.2f} | {same} |")
    print("\n".join(lines))
    out = REPO / "benchmarks/results/omp_wait.txt"
    out.write_text("\n".join(lines) + "\n")
    print(f"written: {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
