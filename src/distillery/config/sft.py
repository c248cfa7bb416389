"""The params of stage sft (`params.yaml`'s `sft` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from distillery.config.base import Training, _named_splits
from distillery.declaration import CHECKPOINTS, RUN_FIGURES, Stage, computed, logged, metrics, read, write_dir


class SFTConfig(Training):
    splits: list[Literal["default", "extended"]] = Field(["default"], description="The dataset configs trained on.")
    max_length: int = Field(32768, ge=16, description="Longest training sequence, in tokens; longer ones are truncated.")
    packing: bool = Field(False, description="Pack several examples into one sequence of max_length.")
    assistant_only_loss: bool = Field(True, description="Loss on the assistant's tokens only, not on the prompt.")
    rope_theta: float | None = Field(
        None, description="RoPE base set on the model config by code (OpenR1 users hand-edited config.json for this). null: unchanged."
    )
    max_position_embeddings: int | None = Field(
        None, description="Context length set on the model config by code, in tokens. null: unchanged."
    )

    @field_validator("splits")
    @classmethod
    def _some_split(cls, splits: list[str]) -> list[str]:
        return _named_splits(splits)


# The stage's params model (distillery.provenance finds the stage's execution-only keys through it).
MODEL = SFTConfig

DATASET = "data/build/dataset"

STAGE = Stage(
    "sft",
    "fine-tune the student with TRL",
    paths={
        "default": read(f"{DATASET}/default/train-00000-of-00001.parquet", dvc=DATASET, flag=False),
        "extended": read(f"{DATASET}/extended/train-00000-of-00001.parquet", dvc=DATASET, flag=False),
        "dataset_dir": computed("the built dataset's folder (sft.splits names its configs)"),
        "model": write_dir("data/sft/model"),
        "metrics": metrics("sft"),
        "checkpoints": computed(CHECKPOINTS, optional=True),
        "run_figures": logged(RUN_FIGURES),
    },
    params=("base.seed", "sft"),
    launcher=True,
    handles_sigterm=True,
)
