"""GRPO's accuracy reward, ours against TRL's, side by side in one run; and DPO / GRPO steps per
second on CPU with the tiny student.

    .venv/bin/python benchmarks/rl_steps.py [--batches 40] [--skip-training]

1. The accuracy reward on GRPO-shaped batches: 4 prompts x 16 completions, R1-style traces
   (1.5-6 KB of thinking, then a boxed answer) for MATH-500's golds in their real forms, as
   benchmarks/verify_speed.py writes them (45% the gold's form, 15% another correct form, 25% wrong,
   7% truncated, 4% no box, 4% several boxes). Plus one batch with a power tower in it.
   - ours: `rewards.Verdicts` (verify's settings, the worker pool kept open across batches, 2 workers);
   - TRL's `trl.rewards.accuracy_reward` (math-verify in the trainer's process, as open-r1 does),
     run in a child process with a 300 s limit so that a stall is measured, not suffered.
   Figures: completions per second for each, the ratio, the slowest batch, the pathological batch.
2. Training steps: `dpo.run` and `grpo.run` exactly as the rules call them, with the demo's
   settings (params.yaml), on the tiny student_base, steps per second of training.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests"))

from verify_speed import PATHOLOGICAL, make_corpus  # noqa: E402

from distillery.config import VerifyConfig, load_params  # noqa: E402
from distillery.rewards import Verdicts  # noqa: E402

EOS = 0
GROUP, PROMPTS = 16, 4


def batches(n: int, seed: int = 0) -> list[tuple[list, list[str], list[list[int]]]]:
    """(completions, golds, completion ids) per batch: PROMPTS golds x GROUP completions."""
    items, kinds = make_corpus(n * PROMPTS * GROUP // 2, seed=seed, pathological=0)
    flat = [(gold, g, k) for (gold, gens), ks in zip(items, kinds) for g, k in zip(gens, ks)]
    out = []
    for b in range(n):
        comps, golds, ids = [], [], []
        for p in range(PROMPTS):
            gold = flat[(b * PROMPTS + p) * GROUP][0]
            for j in range(GROUP):
                _, text, kind = flat[(b * PROMPTS + p) * GROUP + j]
                comps.append([{"role": "assistant", "content": text}])
                golds.append(gold)
                ids.append([7] * (len(text) // 4) + ([7] if kind == "truncated" else [EOS]))
        out.append((comps, golds, ids))
    return out


def _trl_child(queue, work) -> None:
    from trl.rewards import accuracy_reward

    times = []
    for comps, golds, _ in work:
        t = time.perf_counter()
        accuracy_reward(comps, golds)
        times.append(time.perf_counter() - t)
    queue.put(times)


def trl_times(work, limit_s: float) -> list[float] | None:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_trl_child, args=(queue, work))
    proc.start()
    proc.join(limit_s)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return None
    return queue.get()


def ours_times(work, cfg: VerifyConfig) -> list[float]:
    v = Verdicts(cfg, cfg.workers, frozenset({EOS}))
    v(*work[0])  # the workers start once per training, not per step
    times = []
    try:
        for comps, golds, ids in work:
            t = time.perf_counter()
            v(comps, golds, ids)
            times.append(time.perf_counter() - t)
    finally:
        v.close()
    return times


def reward_benchmark(n: int) -> dict:
    work = batches(n)
    cfg = load_params(REPO / "params.yaml").verify.model_copy(update={"workers": 2})
    ours = ours_times(work, cfg)
    theirs = trl_times(work, 300)
    completions = n * PROMPTS * GROUP
    hostile = batches(1, seed=9)[0]
    hostile[0][0] = [{"role": "assistant", "content": f"<think>ok</think> $\\boxed{{{PATHOLOGICAL[0]}}}$"}]
    hostile_ours = ours_times([hostile], cfg)[0]
    hostile_theirs = trl_times([hostile], 300)
    result = {
        "completions": completions,
        "ours_completions_per_s": round(completions / sum(ours), 1),
        "ours_slowest_batch_s": round(max(ours), 3),
        "trl_completions_per_s": round(completions / sum(theirs), 1) if theirs else None,
        "trl_slowest_batch_s": round(max(theirs), 3) if theirs else None,
        "ratio_ours_over_trl": round(sum(theirs) / sum(ours), 2) if theirs else None,
        "pathological_batch_ours_s": round(hostile_ours, 2),
        "pathological_batch_trl_s": round(hostile_theirs[0], 2) if hostile_theirs else "> 300",
        "item_deadline_s": cfg.item_deadline_s,
    }
    return result


def build_models(root: Path) -> Path:
    from distillery.config import GenerateConfig, ModelsConfig
    from distillery.stages import models

    out = root / "models"
    params = load_params(REPO / "params.yaml")
    cfg = ModelsConfig.model_validate({"tiny": {"teacher_epochs": 3, "judge_epochs": 1, "max_position_embeddings": 512}})
    template = GenerateConfig.model_fields["prompt_template"].default
    models.run(
        cfg,
        params.base.seed,
        template,
        models.Paths(
            corpus=REPO / params.models.tiny.corpus, judge_template=REPO / "prompts/judge.txt", models=out, metrics=root / "m.json"
        ),
    )
    return out / "student_base"


def training_steps(root: Path) -> dict:
    from test_dpo import write_pairs
    from test_sft import row, write_dataset

    from distillery.stages import dpo, grpo

    params = load_params(REPO / "params.yaml")
    student = build_models(root)
    write_pairs(root / "pairs.parquet", 64)
    write_dataset(root / "ds", [row(i) for i in range(64)])
    out = {}
    d = params.dpo.model_copy(update={"model": str(student), "max_steps": 16})
    r = dpo.run(d, 42, dpo.Paths(pairs=root / "pairs.parquet", model=root / "dpo", metrics=root / "dpo.json"))
    out["dpo"] = {"steps": r["steps"], "pairs_per_step": d.per_device_train_batch_size, "steps_per_s": r["steps_per_s"]}
    g = params.grpo.model_copy(update={"model": str(student), "max_steps": 16})
    # GRPO trains on the difficulty stage's kept problems; the dataset's default split has their columns.
    problems = root / "ds/default/train-00000-of-00001.parquet"
    r = grpo.run(g, 42, params.verify, grpo.Paths(problems=problems, model=root / "grpo", metrics=root / "g.json", steps=root / "s.json"))
    out["grpo"] = {
        "steps": r["steps"],
        "completions_per_step": g.per_device_train_batch_size,
        "max_completion_length": g.generation.max_completion_length,
        "steps_per_s": r["steps_per_s"],
        "mean_completion_length": statistics.mean(s["completion_mean_length"] for s in r["per_step"]),
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--skip-training", action="store_true")
    args = ap.parse_args()
    figures = {"accuracy_reward": reward_benchmark(args.batches)}
    print(json.dumps(figures, indent=2), flush=True)
    if not args.skip_training:
        with tempfile.TemporaryDirectory() as tmp:
            figures["training_cpu"] = training_steps(Path(tmp))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
