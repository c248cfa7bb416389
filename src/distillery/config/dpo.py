"""The params of stage dpo (`params.yaml`'s `dpo` section)."""

from __future__ import annotations

from pydantic import Field, field_validator

from distillery.config.base import Training
from distillery.declaration import CHECKPOINTS, RUN_FIGURES, Stage, computed, logged, metrics, read, write_dir


class DPOConfig(Training):
    beta: float = Field(0.1, gt=0, description="DPO's beta: how far the policy may move from the reference model.")
    loss_type: str = Field(
        "sigmoid",
        description="TRL's DPO loss (sigmoid is the DPO paper's; ipo, hinge, ...): one of the values the installed TRL's "
        "DPOConfig lists, checked at config time.",
    )
    max_length: int = Field(32768, ge=16, description="Longest prompt + completion, in tokens; longer ones are truncated.")

    @field_validator("loss_type")
    @classmethod
    def _trl_loss(cls, value: str) -> str:
        from distillery.trl_options import check_choice

        return check_choice("dpo", "DPOConfig", "loss_type", value)


# The stage's params model (distillery.provenance finds the stage's execution-only keys through it).
MODEL = DPOConfig

STAGE = Stage(
    "dpo",
    "train the student on the preference pairs with TRL",
    paths={
        "pairs": read("data/preferences/pairs.parquet", "preferences' chosen/rejected pairs"),
        "model": write_dir("data/dpo/model"),
        "metrics": metrics("dpo"),
        "checkpoints": computed(CHECKPOINTS, optional=True),
        "run_figures": logged(RUN_FIGURES),
    },
    params=("base.seed", "dpo"),
    launcher=True,
    handles_sigterm=True,
)
