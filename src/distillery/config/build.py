"""The params of stage build (`params.yaml`'s `build` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from distillery.config.base import Section


class SplitConfig(Section):
    """How the dataset's problems are split into its two configs."""

    default_sources: list[str] = Field(
        [], description="Sources whose problems go to the `default` config; every other source goes to `extended`."
    )


class RewardModel(Section):
    """The reward model of build.choice: reward_model (a sequence-classification model with one label)."""

    model: str | None = Field(
        None, description="Hub id or local directory of the reward model. null: none (choice reward_model needs one)."
    )
    revision: str | None = Field(None, description="Hub commit, branch or tag of the reward model. null: the latest.")
    batch_size: int = Field(8, ge=1, description="Conversations scored at once.", json_schema_extra={"execution": True})
    max_length: int = Field(4096, ge=16, description="Longest scored conversation, in tokens; longer ones are cut.")
    device: Literal["cpu", "auto"] = Field("cpu", description="cpu, or auto (a GPU when there is one; its floats differ from the CPU's).")


class BuildConfig(Section):
    selection: Literal["math_verify", "judge", "either"] = Field(
        "either",
        description="What makes a generation correct: math_verify, the judge, or either (OpenR1's recommended union). A problem "
        "is kept when one complete generation is correct.",
    )
    choice: Literal["random", "shortest", "first", "reward_model"] = Field(
        "random",
        description="Which correct generation becomes the assistant message: random (seeded by the seed and the problem key), "
        "the shortest, the first, or the one reward_model scores highest (OpenR1's ablation: no better than random).",
    )
    reward_model: RewardModel = Field(RewardModel(), description="The reward model of choice: reward_model.")
    splits: SplitConfig = Field(SplitConfig(), description="The dataset's default/extended configs.")

    @model_validator(mode="after")
    def _reward_model_named(self) -> BuildConfig:
        if self.choice == "reward_model" and not self.reward_model.model:
            raise ValueError("choice: reward_model needs reward_model.model (a hub id or a local sequence-classification model)")
        return self


# The stage's params model (distillery.provenance finds the stage's execution-only keys through it).
MODEL = BuildConfig
