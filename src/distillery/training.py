"""What the training stages (sft, dpo, grpo) share: their settings mapped onto the installed TRL's
config classes (a renamed option fails at config time, with a message, not mid-run), resumable
checkpoints outside the declared outputs, and the run key that decides which checkpoints a run may
resume from.

Checkpoints go every `save_steps` to `<checkpoints>/<run key>/` (Snakemake and DVC delete a stage's
declared outputs before a re-run). The run key hashes the settings, the seed and the data's bytes,
so a re-run of the same training resumes from its last complete checkpoint and a changed one starts
fresh; the checkpoints go once the model is saved.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import shutil
from pathlib import Path
from typing import Any

from distillery.config.base import Training
from distillery.errors import ConfigError
from distillery.keys import stable_hash

log = logging.getLogger(__name__)


def liger_available() -> bool:
    import torch

    ok = importlib.util.find_spec("liger_kernel") is not None and torch.cuda.is_available()
    if not ok:
        log.warning("use_liger_kernel: liger-kernel or CUDA is not available here; training without it")
    return ok


def common_args(cfg: Training, seed: int, output_dir: Path) -> dict[str, Any]:
    """The Training settings under transformers' names (TrainingArguments, which every TRL config extends)."""
    import torch

    args = {
        "output_dir": str(output_dir),
        "learning_rate": cfg.learning_rate,
        "num_train_epochs": cfg.num_train_epochs,
        "max_steps": cfg.max_steps if cfg.max_steps is not None else -1,
        # transformers 5 dropped warmup_ratio: a float below 1 in warmup_steps is the ratio.
        "warmup_steps": cfg.warmup_ratio,
        "lr_scheduler_type": cfg.lr_scheduler_type,
        "weight_decay": cfg.weight_decay,
        "optim": cfg.optim,
        "per_device_train_batch_size": cfg.per_device_train_batch_size,
        "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
        "bf16": cfg.bf16,
        # "when available": Liger's kernels need CUDA (Triton) and the liger-kernel package.
        "use_liger_kernel": cfg.use_liger_kernel and liger_available(),
        "gradient_checkpointing": cfg.gradient_checkpointing,
        "gradient_checkpointing_kwargs": {"use_reentrant": cfg.gradient_checkpointing_use_reentrant},
        "logging_steps": cfg.logging_steps,
        "seed": seed,
        "data_seed": seed,
        "save_strategy": "steps",
        "save_steps": cfg.save_steps,
        "save_total_limit": cfg.save_total_limit,
        "report_to": "none",
        "dataloader_num_workers": 0,
        "use_cpu": not torch.cuda.is_available(),
    }
    return args


def load_model(cfg: Training, config: Any = None) -> Any:
    """The model to train, in train mode (on CPU here; the Trainer places it)."""
    from distillery.llm.loading import load_causal_lm

    dtype = "bfloat16" if cfg.bf16 else "float32"
    model = load_causal_lm(cfg.model, cfg.revision, dtype=dtype, device="cpu", config=config, attn_implementation=cfg.attn_implementation)
    model.train()
    return model


def trl_config(config_class: type, wanted: dict[str, Any], stage: str, bf16: bool) -> Any:
    """`config_class(**wanted)`, with each name checked against the installed TRL first."""
    import torch

    known = {f.name for f in dataclasses.fields(config_class)}
    if "activation_checkpointing" in known and "gradient_checkpointing" in wanted:  # transformers 5 renamed it
        wanted["activation_checkpointing"] = wanted.pop("gradient_checkpointing")
        if "activation_checkpointing_kwargs" in known:
            wanted["activation_checkpointing_kwargs"] = wanted.pop("gradient_checkpointing_kwargs")
    unknown = sorted(set(wanted) - known)
    if unknown:
        import trl

        raise ConfigError(
            f"the installed TRL {trl.__version__} has no {config_class.__name__} option(s) {unknown}; "
            f"pin the TRL version in constraints/ or update distillery/stages/{stage}.py's mapping"
        )
    if bf16 and not (torch.cuda.is_available() and torch.cuda.is_bf16_supported()):
        raise ConfigError(f"{stage}.bf16 = true needs a GPU with bf16; set {stage}.bf16: false for CPU runs")
    try:
        return config_class(**wanted)
    except ValueError as exc:
        raise ConfigError(f"{stage} settings rejected by TRL's {config_class.__name__}: {exc}") from None


def run_key(cfg: Training, seed: int, data_md5: dict[str, str], **more: Any) -> str:
    """What makes two trainings the same one (how it is launched and logged does not)."""
    settings = cfg.model_dump(mode="json", exclude={"launch", "logging_steps"})
    return stable_hash({"settings": settings, "seed": seed, "data": data_md5, **more})[:16]


def sweep_other_runs(checkpoint_root: Path, keep: Path) -> None:
    """Checkpoints of other trainings (a killed run with other settings or data) can never be
    resumed by this one: remove them, so a killed run leaves nothing behind once training succeeds."""
    if checkpoint_root.is_dir():
        for other in checkpoint_root.iterdir():
            if other != keep and other.is_dir():
                shutil.rmtree(other, ignore_errors=True)


def last_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint: trainer_state.json is written after the weights and optimizer."""
    found = sorted(
        (p for p in run_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()), key=lambda p: int(p.name.split("-")[-1]), reverse=True
    )
    return next((p for p in found if (p / "trainer_state.json").is_file()), None)


def resume_point(run_dir: Path) -> Path | None:
    resume = last_checkpoint(run_dir)
    if resume is not None:
        log.info("resuming from %s", resume)
    return resume


def finish(run_dir: Path, checkpoint_root: Path) -> None:
    """The model is saved: its checkpoints go."""
    shutil.rmtree(run_dir, ignore_errors=True)
    if checkpoint_root.is_dir() and not any(checkpoint_root.iterdir()):
        checkpoint_root.rmdir()


def logged(trainer: Any, name: str) -> list[float]:
    return [h[name] for h in trainer.state.log_history if name in h]
