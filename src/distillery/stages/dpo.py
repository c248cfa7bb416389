"""dpo: train the student on the preference pairs with TRL's DPOTrainer (the reference model is a
frozen copy of the starting model), with the checkpoints, resume and launch every training stage has
(distillery.training)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from distillery.config.dpo import STAGE, DPOConfig
from distillery.errors import DistilleryError
from distillery.io import file_md5, write_json
from distillery.llm.loading import load_tokenizer
from distillery.metrics import write_metrics
from distillery.tables import PREFERENCE_PAIRS, read_table
from distillery.training import common_args, finish, load_model, logged, resume_point, run_key, sweep_other_runs, trl_config


def trl_args(cfg: DPOConfig, seed: int, output_dir: Path) -> Any:
    from trl import DPOConfig as TRLConfig

    wanted = {**common_args(cfg, seed, output_dir), "beta": cfg.beta, "loss_type": [cfg.loss_type], "max_length": cfg.max_length}
    return trl_config(TRLConfig, wanted, "dpo", cfg.bf16)


Paths = STAGE.paths_record()  # its files, by the names its declaration gives them


def run(cfg: DPOConfig, seed: int, paths: Paths) -> dict[str, Any]:
    import datasets
    from trl import DPOTrainer

    pairs = read_table(paths.pairs, PREFERENCE_PAIRS, ["prompt", "chosen", "rejected"])
    if pairs.height == 0:
        raise DistilleryError(
            f"{paths.pairs} has no preference pairs: nothing to train on (data/preferences/unpaired.parquet says why each problem "
            "has none; preferences.rejected_kinds and build-side settings decide how many there are)"
        )
    data_md5 = {"pairs": file_md5(paths.pairs)}
    checkpoint_root = paths.checkpoints or paths.model.parent / "checkpoints"
    run_dir = checkpoint_root / run_key(cfg, seed, data_md5)
    sweep_other_runs(checkpoint_root, keep=run_dir)
    train = datasets.Dataset.from_list(pairs.to_dicts())
    args = trl_args(cfg, seed, run_dir)
    tokenizer = load_tokenizer(cfg.model, cfg.revision)
    model = load_model(cfg)
    try:
        trainer = DPOTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer)
    except (ValueError, RuntimeError) as exc:
        raise DistilleryError(f"DPOTrainer rejected the setup for model {cfg.model}: {exc}") from None
    resume = resume_point(run_dir)
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    paths.model.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(paths.model))
    if not trainer.is_world_process_zero():
        return {}
    tokenizer.save_pretrained(str(paths.model))
    losses, margins, accuracies = logged(trainer, "loss"), logged(trainer, "rewards/margins"), logged(trainer, "rewards/accuracies")
    report = {
        "pairs": pairs.height,
        "steps": trainer.state.global_step,
        "train_loss": round(float(result.training_loss), 4) if not math.isnan(result.training_loss) else None,
        "first_logged_loss": losses[0] if losses else None,
        "last_logged_loss": losses[-1] if losses else None,
        "last_reward_margin": margins[-1] if margins else None,
        "last_reward_accuracy": accuracies[-1] if accuracies else None,
        "beta": cfg.beta,
        "loss_type": cfg.loss_type,
        "world_size": trainer.args.world_size,
        "data_md5": data_md5,
    }
    (paths.model / "README.md").write_text(model_card(cfg, seed, report))
    write_metrics(paths.metrics, "dpo", **report)
    figures = {
        "runtime_s": round(result.metrics.get("train_runtime", 0.0), 1),
        "steps_per_s": round(trainer.state.global_step / max(result.metrics.get("train_runtime", 0.0), 1e-9), 4),
        "resumed_from_step": int(resume.name.split("-")[-1]) if resume else None,
    }
    if paths.run_figures:
        write_json({"stage": "dpo", **figures}, paths.run_figures)
    finish(run_dir, checkpoint_root)
    return {**report, **figures}


def model_card(cfg: DPOConfig, seed: int, report: dict[str, Any]) -> str:
    return f"""---
base_model: {cfg.model}
library_name: transformers
tags: [distillery, dpo, math, reasoning]
---
# Student trained by distillery with DPO

`{cfg.model}`{f" at revision `{cfg.revision}`" if cfg.revision else ""} trained with TRL's DPOTrainer (beta {cfg.beta}, loss
{cfg.loss_type}) on {report["pairs"]} preference pairs of the distillery run for {report["steps"]} optimizer steps: chosen = a
correct, complete generation of the teacher; rejected = a wrong or truncated one of the same problem.

Loss {report["first_logged_loss"]} (first logged) to {report["last_logged_loss"]} (last logged); last reward margin
{report["last_reward_margin"]}, last reward accuracy {report["last_reward_accuracy"]}.

## Training data

The pairs (data/preferences/pairs.parquet), by md5: `{report["data_md5"]["pairs"]}`

## Settings

```json
{json.dumps({"seed": seed, **cfg.model_dump(mode="json")}, indent=2, sort_keys=True)}
```
"""
