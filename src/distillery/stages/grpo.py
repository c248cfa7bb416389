"""grpo: train the student with TRL's GRPOTrainer on the dataset's problems that have a gold answer,
with verifiable rewards (distillery.rewards: accuracy through the project's verifier, the cosine
length reward, the repetition penalty, DAPO's soft overlong punishment, the think format), each
weighted by its config entry.

Per logged step, `metrics/grpo.json` and the DVC plot record each reward's mean, the completion
lengths and the share clipped at the limit, and the share of correct completions: what users watch
for reward hacking and length collapse (with beta 0 a loss near 0 is normal, so it is not the
headline). Generation is the model's own generate() on CPU, or TRL's vLLM integration on GPUs:
colocated, or a `trl vllm-serve` on GPUs of the node that the stage starts and stops.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from distillery.config.grpo import STAGE, GRPOConfig, GRPOGeneration
from distillery.config.verify import VerifyConfig
from distillery.errors import DistilleryError
from distillery.io import file_md5, require, write_json
from distillery.llm.loading import load_tokenizer
from distillery.metrics import FilterCounts, write_metrics
from distillery.training import common_args, finish, load_model, logged, resume_point, run_key, sweep_other_runs, trl_config

log = logging.getLogger(__name__)

# What a logged step records, from TRL's log (its names) to ours.
STEP_FIELDS = {
    "reward": "reward",
    "reward_std": "reward_std",
    "completions/mean_length": "completion_mean_length",
    "completions/max_length": "completion_max_length",
    "completions/clipped_ratio": "clipped_share",
    # The share of groups whose rewards are all equal: no advantage, so no gradient from them.
    "frac_reward_zero_std": "zero_std_share",
    "loss": "loss",
    "kl": "kl",
}


def trl_args(cfg: GRPOConfig, seed: int, output_dir: Path, weights: list[float]) -> Any:
    from trl import GRPOConfig as TRLConfig

    g = cfg.generation
    wanted = {
        **common_args(cfg, seed, output_dir),
        "num_generations": g.num_generations,
        "max_completion_length": g.max_completion_length,
        "temperature": g.temperature,
        "top_p": g.top_p,
        "use_vllm": g.use_vllm,
        "vllm_mode": g.vllm_mode,
        "vllm_gpu_memory_utilization": g.vllm_gpu_memory_utilization,
        "vllm_tensor_parallel_size": g.vllm_tensor_parallel_size,
        "vllm_server_base_url": f"http://127.0.0.1:{g.vllm_server_port}" if g.use_vllm and g.vllm_mode == "server" else None,
        "vllm_server_timeout": float(g.vllm_server_timeout_s),
        "beta": cfg.beta,
        "loss_type": cfg.loss_type,
        "scale_rewards": cfg.scale_rewards,
        "num_iterations": cfg.num_iterations,
        "epsilon": cfg.epsilon,
        "mask_truncated_completions": cfg.mask_truncated_completions,
        "reward_weights": weights,
        "log_completions": False,
    }
    return trl_config(TRLConfig, wanted, "grpo", cfg.bf16)


# --- vLLM server mode --------------------------------------------------------------------------


def vllm_server_plan(g: GRPOGeneration, model: str, revision: str | None, visible: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(`trl vllm-serve` argv, the GPUs it gets, the GPUs left to training) on this node's `visible` GPUs."""
    if len(visible) <= g.vllm_server_gpus:
        raise DistilleryError(
            f"grpo.generation.vllm_mode: server gives {g.vllm_server_gpus} GPU(s) to `trl vllm-serve` but the job sees "
            f"{len(visible)} ({','.join(visible) or 'none'}): ask Slurm for more GPUs (profiles/slurm, rule grpo) "
            "or use vllm_mode: colocate"
        )
    server, training = visible[: g.vllm_server_gpus], visible[g.vllm_server_gpus :]
    argv = ["trl", "vllm-serve", "--model", model, "--port", str(g.vllm_server_port), "--host", "127.0.0.1"]
    argv += ["--tensor_parallel_size", str(g.vllm_server_gpus), "--gpu_memory_utilization", str(g.vllm_gpu_memory_utilization)]
    if revision:
        argv += ["--revision", revision]
    return argv, server, training


def visible_gpus() -> list[str]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env:
        return [d for d in env.split(",") if d]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


@contextmanager
def vllm_server(cfg: GRPOConfig, log_path: Path) -> Iterator[None]:
    """server mode: start `trl vllm-serve` on the first GPUs, train on the others, stop it at the end."""
    from distillery.llm.serving import _http_ok

    g = cfg.generation
    argv, server, training = vllm_server_plan(g, cfg.model, cfg.revision, visible_gpus())
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            argv, env={**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(server)}, stdout=out, stderr=out, start_new_session=True
        )
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(training)  # before this process touches CUDA
    try:
        deadline = time.monotonic() + g.vllm_server_timeout_s
        while not _http_ok(f"http://127.0.0.1:{g.vllm_server_port}/health/"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise DistilleryError(f"`trl vllm-serve` did not come up on port {g.vllm_server_port} (see {log_path})")
            time.sleep(2)
        yield
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)


# --- the stage ---------------------------------------------------------------------------------


def training_problems(problems: Path, tokenizer: Any, max_prompt_tokens: int) -> tuple[pl.DataFrame, FilterCounts]:
    """The problems (difficulty's kept ones) with a usable gold and a prompt that fits: `prompt`
    (one user message) and `gold`. difficulty has left out those without a usable gold already;
    the check stays, so a table from elsewhere is counted honestly too."""
    from distillery.verification import gold_problem, unbox_gold

    rows = pl.read_parquet(require(problems, "GRPO's problems"), columns=["uuid", "problem", "answer"])
    counts = FilterCounts(rows_in=rows.height)
    kept = []
    for r in rows.iter_rows(named=True):
        gold = (r["answer"] or "").strip()
        if not gold:
            counts.reject("no_gold", uuid=r["uuid"])
            continue
        if gold_problem(unbox_gold(gold)):
            counts.reject("gold_malformed", uuid=r["uuid"])
            continue
        prompt = [{"role": "user", "content": r["problem"]}]
        n = len(tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"])
        if n > max_prompt_tokens:
            counts.reject("prompt_too_long", uuid=r["uuid"])
            continue
        kept.append({"uuid": r["uuid"], "prompt": prompt, "gold": gold})
        counts.keep()
    counts.check("grpo")
    return pl.DataFrame(
        kept, schema={"uuid": pl.String, "prompt": pl.List(pl.Struct({"role": pl.String, "content": pl.String})), "gold": pl.String}
    ), counts


def step_records(log_history: list[dict[str, Any]], reward_names: list[str]) -> list[dict[str, Any]]:
    steps = []
    for h in log_history:
        if "reward" not in h:
            continue
        rec: dict[str, Any] = {"step": h["step"]}
        for name in reward_names:
            rec[f"{name}_mean"] = _round(h.get(f"rewards/{name}/mean"))
        for theirs, ours in STEP_FIELDS.items():
            rec[ours] = _round(h.get(theirs))
        rec["correct_share"] = rec.get("accuracy_mean")
        steps.append(rec)
    return steps


def _mean(xs: Any) -> float | None:
    got = [x for x in xs if x is not None]
    return round(sum(got) / len(got), 6) if got else None


def _round(x: Any) -> Any:
    return round(float(x), 6) if isinstance(x, (int, float)) else None


Paths = STAGE.paths_record()  # its files, by the names its declaration gives them


def run(cfg: GRPOConfig, seed: int, verify: VerifyConfig, paths: Any) -> dict[str, Any]:
    import datasets
    from trl import GRPOTrainer

    from distillery.rewards import build_rewards

    tokenizer = load_tokenizer(cfg.model, cfg.revision)
    problems, counts = training_problems(paths.problems, tokenizer, cfg.generation.max_prompt_tokens)
    if problems.height == 0:
        raise DistilleryError(
            f"grpo: none of the {counts.rows_in} problems of {paths.problems} has a usable gold answer and a prompt "
            f"within grpo.generation.max_prompt_tokens ({dict(counts.rejected)}): nothing to train on"
        )
    data_md5 = {paths.problems.name: file_md5(paths.problems)}
    checkpoint_root = paths.checkpoints or paths.model.parent / "checkpoints"
    run_dir = checkpoint_root / run_key(cfg, seed, data_md5, verify=verify.model_dump(mode="json", exclude={"workers"}))
    sweep_other_runs(checkpoint_root, keep=run_dir)

    stop_ids = frozenset(i for i in (tokenizer.eos_token_id, tokenizer.pad_token_id) if i is not None)
    funcs, weights, verdicts = build_rewards(cfg, verify, stop_ids)
    args = trl_args(cfg, seed, run_dir, weights)
    train = datasets.Dataset.from_list(problems.select("prompt", "gold").to_dicts())
    model = load_model(cfg)
    server = (
        vllm_server(cfg, paths.model.parent / "vllm-serve.log")
        if cfg.generation.use_vllm and cfg.generation.vllm_mode == "server"
        else None
    )
    try:
        if server is not None:
            server.__enter__()
        try:
            trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=train, processing_class=tokenizer)
        except (ValueError, RuntimeError) as exc:
            raise DistilleryError(f"GRPOTrainer rejected the setup for model {cfg.model}: {exc}") from None
        resume = resume_point(run_dir)
        result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    finally:
        verdicts.close()
        if server is not None:
            server.__exit__(None, None, None)
    paths.model.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(paths.model))
    if not trainer.is_world_process_zero():
        return {}
    tokenizer.save_pretrained(str(paths.model))
    names = [f.__name__ for f in funcs]
    steps = step_records(trainer.state.log_history, names)
    report = {
        "problems": counts.as_dict(),
        "steps": trainer.state.global_step,
        "rewards": dict(zip(names, weights)),
        "num_generations": cfg.generation.num_generations,
        "max_completion_length": cfg.generation.max_completion_length,
        "first_step": steps[0] if steps else None,
        "last_step": steps[-1] if steps else None,
        "per_step": steps,
        "mean_zero_std_share": _mean(s["zero_std_share"] for s in steps),
        "world_size": trainer.args.world_size,
        "dataset_md5": data_md5,
    }
    write_json(steps, paths.steps)
    (paths.model / "README.md").write_text(model_card(cfg, seed, report))
    write_metrics(paths.metrics, "grpo", **report)
    figures = {
        "runtime_s": round(result.metrics.get("train_runtime", 0.0), 1),
        "steps_per_s": round(trainer.state.global_step / max(result.metrics.get("train_runtime", 0.0), 1e-9), 4),
        "resumed_from_step": int(resume.name.split("-")[-1]) if resume else None,
        "losses": logged(trainer, "loss"),
    }
    if paths.run_figures:
        write_json({"stage": "grpo", **figures}, paths.run_figures)
    finish(run_dir, checkpoint_root)
    return {**report, **figures}


def model_card(cfg: GRPOConfig, seed: int, report: dict[str, Any]) -> str:
    first, last = report["first_step"] or {}, report["last_step"] or {}
    return f"""---
base_model: {cfg.model}
library_name: transformers
tags: [distillery, grpo, math, reasoning]
---
# Student trained by distillery with GRPO

`{cfg.model}`{f" at revision `{cfg.revision}`" if cfg.revision else ""} trained with TRL's GRPOTrainer for {report["steps"]} optimizer
steps on {report["problems"]["kept"]} problems with a gold answer, those the difficulty stage kept by pass rate,
{cfg.generation.num_generations} completions per problem, rewards (weights) {json.dumps(report["rewards"])}.

Mean reward {first.get("reward")} (first logged step) to {last.get("reward")} (last); correct share
{first.get("correct_share")} to {last.get("correct_share")}; mean completion length {first.get("completion_mean_length")}
to {last.get("completion_mean_length")} tokens. Share of groups with equal rewards (no advantage, no gradient), mean
over steps: {report["mean_zero_std_share"]}. Every step is in metrics/grpo.json.

## Training data

The problems, by md5:

```json
{json.dumps(report["dataset_md5"], indent=2, sort_keys=True)}
```

## Settings

```json
{json.dumps({"seed": seed, **cfg.model_dump(mode="json")}, indent=2, sort_keys=True)}
```
"""
