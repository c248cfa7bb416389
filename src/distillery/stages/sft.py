"""sft: fine-tune the student on the dataset's `messages` with TRL's SFTTrainer.

rope_theta and max_position_embeddings are applied to the model config by code (OpenR1's users had
to hand-edit config.json for the 32k context). Options are mapped onto the installed TRL's
SFTConfig here, so a renamed option fails at config time with a message, not mid-run.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any

from distillery.config import SFTConfig
from distillery.errors import ConfigError, DistilleryError
from distillery.io import require
from distillery.llm.loading import load_tokenizer
from distillery.metrics import write_metrics

log = logging.getLogger(__name__)


def trl_args(cfg: SFTConfig, seed: int, output_dir: Path) -> Any:
    import torch
    from trl import SFTConfig as TRLConfig

    wanted = {
        "output_dir": str(output_dir),
        "learning_rate": cfg.learning_rate,
        "num_train_epochs": cfg.num_train_epochs,
        "max_length": cfg.max_length,
        # transformers 5 dropped warmup_ratio: a float below 1 in warmup_steps is the ratio.
        "warmup_steps": cfg.warmup_ratio,
        "lr_scheduler_type": cfg.lr_scheduler_type,
        "weight_decay": cfg.weight_decay,
        "per_device_train_batch_size": cfg.per_device_train_batch_size,
        "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
        "bf16": cfg.bf16,
        "packing": cfg.packing,
        "assistant_only_loss": cfg.assistant_only_loss,
        "use_liger_kernel": cfg.use_liger_kernel,
        "gradient_checkpointing": cfg.gradient_checkpointing,
        "logging_steps": cfg.logging_steps,
        "seed": seed,
        "data_seed": seed,
        "save_strategy": "no",
        "report_to": "none",
        "dataloader_num_workers": 0,
        "use_cpu": not torch.cuda.is_available(),
    }
    known = {f.name for f in dataclasses.fields(TRLConfig)}
    if "activation_checkpointing" in known:  # transformers 5 renamed gradient_checkpointing
        wanted["activation_checkpointing"] = wanted.pop("gradient_checkpointing")
    unknown = sorted(set(wanted) - known)
    if unknown:
        import trl

        raise ConfigError(f"the installed TRL {trl.__version__} has no SFTConfig option(s) {unknown}; "
                          "pin the TRL version in constraints/ or update distillery/stages/sft.py's mapping")
    if cfg.bf16 and not (torch.cuda.is_available() and torch.cuda.is_bf16_supported()):
        raise ConfigError("sft.bf16 = true needs a GPU with bf16; set sft.bf16: false for CPU runs")
    try:
        return TRLConfig(**wanted)
    except ValueError as exc:
        raise ConfigError(f"sft settings rejected by TRL's SFTConfig: {exc}") from None


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


def run(cfg: SFTConfig, seed: int, dataset_dir: Path, out_model: Path, out_metrics: Path) -> dict[str, Any]:
    import datasets
    from trl import SFTTrainer

    from distillery.llm.loading import load_causal_lm

    import pyarrow.parquet as pq

    files = [str(require(dataset_dir / s / "train-00000-of-00001.parquet", "dataset split")) for s in cfg.splits]
    if sum(pq.ParquetFile(f).metadata.num_rows for f in files) == 0:
        raise DistilleryError(f"the dataset splits {cfg.splits} in {dataset_dir} have no rows: nothing to train on "
                              "(see data/build/rejected.parquet for why problems were dropped)")
    train = datasets.load_dataset("parquet", data_files=files, split="train").select_columns(["messages"])
    args = trl_args(cfg, seed, out_model.parent / "checkpoints")
    tokenizer = load_tokenizer(cfg.model, cfg.revision)
    model = load_causal_lm(cfg.model, cfg.revision, dtype="bfloat16" if cfg.bf16 else "float32", device="cpu", config=model_config(cfg))
    model.train()
    try:
        trainer = SFTTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer)
    except (ValueError, RuntimeError) as exc:
        raise DistilleryError(f"SFTTrainer rejected the setup for model {cfg.model}: {exc}") from None
    result = trainer.train()
    out_model.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(out_model))
    tokenizer.save_pretrained(str(out_model))
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    report = {
        "rows": len(train),
        "steps": trainer.state.global_step,
        "epochs": cfg.num_train_epochs,
        "train_loss": round(float(result.training_loss), 4) if not math.isnan(result.training_loss) else None,
        "first_logged_loss": losses[0] if losses else None,
        "last_logged_loss": losses[-1] if losses else None,
        "runtime_s": round(result.metrics.get("train_runtime", 0.0), 1),
        "rope_theta": cfg.rope_theta,
        "max_position_embeddings": cfg.max_position_embeddings,
    }
    write_metrics(out_metrics, "sft", **report)
    return report
