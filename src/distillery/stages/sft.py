"""sft: fine-tune the student on the dataset's `messages` with TRL's SFTTrainer.

rope_theta and max_position_embeddings are applied to the model config by code (OpenR1's users had
to hand-edit config.json for the 32k context). Options are mapped onto the installed TRL's
SFTConfig, checkpoints and resume as every training stage has them (distillery.training).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from distillery.config.sft import STAGE, SFTConfig
from distillery.errors import DistilleryError
from distillery.io import file_md5, require, write_json
from distillery.llm.loading import load_tokenizer
from distillery.metrics import write_metrics
from distillery.published import PUBLISHED
from distillery.training import (
    common_args,
    finish,
    last_checkpoint,
    load_model,
    logged,
    resume_point,
    run_key,
    sweep_other_runs,
    trl_config,
)

__all__ = ["last_checkpoint", "run", "run_key", "trl_args"]


def trl_args(cfg: SFTConfig, seed: int, output_dir: Path) -> Any:
    from trl import SFTConfig as TRLConfig

    wanted = {
        **common_args(cfg, seed, output_dir),
        "max_length": cfg.max_length,
        "packing": cfg.packing,
        "assistant_only_loss": cfg.assistant_only_loss,
    }
    return trl_config(TRLConfig, wanted, "sft", cfg.bf16)


def model_config(cfg: SFTConfig) -> Any:
    from transformers import AutoConfig

    conf = AutoConfig.from_pretrained(cfg.model, revision=cfg.revision)
    if cfg.rope_theta is not None:
        rope = dict(getattr(conf, "rope_parameters", None) or {"rope_type": "default"})
        rope["rope_theta"] = cfg.rope_theta
        conf.rope_parameters = rope
    if cfg.max_position_embeddings is not None:
        conf.max_position_embeddings = cfg.max_position_embeddings
    return conf


Paths = STAGE.paths_record()  # its files, by the names its declaration gives them


def run(cfg: SFTConfig, seed: int, paths: Paths) -> dict[str, Any]:
    """`paths.run_figures` (a log) gets what differs between runs that train the same model: the wall
    time and the step a killed run resumed from."""
    import datasets
    import pyarrow.parquet as pq
    from trl import SFTTrainer

    files = [require(paths.dataset_dir / s / "train-00000-of-00001.parquet", "dataset split") for s in cfg.splits]
    if sum(pq.ParquetFile(f).metadata.num_rows for f in files) == 0:
        raise DistilleryError(
            f"the dataset splits {cfg.splits} in {paths.dataset_dir} have no rows: nothing to train on "
            "(see data/build/rejected.parquet for why problems were dropped)"
        )
    data_md5 = {s: file_md5(f) for s, f in zip(cfg.splits, files)}
    checkpoint_root = paths.checkpoints or paths.model.parent / "checkpoints"
    run_dir = checkpoint_root / run_key(cfg, seed, data_md5)
    sweep_other_runs(checkpoint_root, keep=run_dir)
    train = datasets.load_dataset("parquet", data_files=[str(f) for f in files], split="train").select_columns(["messages"])
    args = trl_args(cfg, seed, run_dir)
    tokenizer = load_tokenizer(cfg.model, cfg.revision)
    model = load_model(cfg, config=model_config(cfg))
    try:
        trainer = SFTTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer)
    except (ValueError, RuntimeError) as exc:
        raise DistilleryError(f"SFTTrainer rejected the setup for model {cfg.model}: {exc}") from None
    resume = resume_point(run_dir)
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    paths.model.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(paths.model))  # under DeepSpeed ZeRO-3 this gathers the shards
    if not trainer.is_world_process_zero():
        return {}
    tokenizer.save_pretrained(str(paths.model))  # with its chat template
    losses = logged(trainer, "loss")
    report = {
        "rows": len(train),
        "steps": trainer.state.global_step,
        "epochs": cfg.num_train_epochs,
        "train_loss": round(float(result.training_loss), 4) if not math.isnan(result.training_loss) else None,
        "first_logged_loss": losses[0] if losses else None,
        "last_logged_loss": losses[-1] if losses else None,
        "rope_theta": cfg.rope_theta,
        "max_position_embeddings": cfg.max_position_embeddings,
        "liger_kernel": bool(args.use_liger_kernel),
        "world_size": trainer.args.world_size,
        "dataset_md5": data_md5,
    }
    (paths.model / "README.md").write_text(model_card(cfg, seed, report))
    write_metrics(paths.metrics, "sft", **report)
    figures = {
        "runtime_s": round(result.metrics.get("train_runtime", 0.0), 1),
        "resumed_from_step": int(resume.name.split("-")[-1]) if resume else None,
    }
    if paths.run_figures:
        write_json({"stage": "sft", **figures}, paths.run_figures)
    finish(run_dir, checkpoint_root)
    return {**report, **figures}


def model_card(cfg: SFTConfig, seed: int, report: dict[str, Any]) -> str:
    published = "\n".join(f"| {name} | {s['math500']} | {s['aime2024']} | {s['aime2025']} |" for name, s in PUBLISHED.items())
    return f"""---
base_model: {cfg.model}
library_name: transformers
tags: [distillery, sft, math, reasoning]
---
# Student fine-tuned by distillery

`{cfg.model}`{f" at revision `{cfg.revision}`" if cfg.revision else ""} fine-tuned with TRL's SFTTrainer on the
`messages` of the distillery dataset splits {cfg.splits} ({report["rows"]} rows) for {report["steps"]} optimizer steps.
The chat template the model was trained with is saved with its tokenizer.

## Training data

The dataset splits, by md5 (the hash DVC records in dvc.lock for data/build/dataset):

```json
{json.dumps(report["dataset_md5"], indent=2, sort_keys=True)}
```

## Training

Loss {report["first_logged_loss"]} (first logged) to {report["last_logged_loss"]} (last logged); mean {report["train_loss"]}.

```json
{json.dumps({"seed": seed, **cfg.model_dump(mode="json")}, indent=2, sort_keys=True)}
```

## Evaluation

This model's scores, with the protocol that produced them, are in `data/evaluate/results.md` and
`metrics/evaluate.json`; `data/evaluate/model_card.md` is this card with them in this section.
Published scores of comparable models (pass@1, %; MATH-500 4 samples,
AIME 64 samples at temperature 0.6, top_p 0.95, 32768 new tokens):

| model | MATH-500 | AIME 2024 | AIME 2025 |
| --- | --- | --- | --- |
{published}
"""
