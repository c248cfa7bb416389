"""The params of stage difficulty (`params.yaml`'s `difficulty` section), and its declaration."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from distillery.config.base import LLM, Sampling, Section, _named_splits
from distillery.declaration import Io, Stage, computed, metrics, write

DATASET = "data/build/dataset"


class DifficultyConfig(Section):
    """Which problems GRPO trains on: each is sampled `samples` times from the model GRPO starts
    from, scored with GRPO's accuracy reward, and kept when its pass rate lies in the range. A
    problem every sample solves, or none does, gives a group of equal rewards: no advantage, nothing
    learned (open-r1 filters by pass rate for this reason)."""

    llm: LLM = Field(
        description="The model sampled: the one GRPO starts from (grpo.model), through the same backends as generate and evaluate."
    )
    splits: list[Literal["default", "extended"]] = Field(
        ["default"], description="The dataset configs whose problems are candidates (GRPO trains on those kept)."
    )
    sampling: Sampling = Field(
        Sampling(temperature=0.7, top_p=1.0, max_new_tokens=1024),
        description="How the samples are drawn; as GRPO's generation (grpo.generation) for a pass rate of the groups GRPO will see.",
    )
    samples: int = Field(16, ge=1, description="Samples per problem, k (open-r1's pass-rate script: GRPO's num_generations, 16).")
    min_pass_rate: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Problems solved by fewer samples than this share are too hard, and left out. Published: open-r1's "
        "scripts/pass_rate_filtering/compute_pass_rate.py (pass_rate_min 0.1; it keeps min < rate < max, strictly; ours "
        "keeps the bounds).",
    )
    max_pass_rate: float = Field(
        0.9,
        ge=0,
        le=1,
        description="Problems solved by more samples than this share are too easy, and left out. Published: open-r1's "
        "compute_pass_rate.py (pass_rate_max 0.9).",
    )
    max_problems: int | None = Field(
        None, ge=1, description="Score only the first this many candidates (in dataset order); the rest are left out, counted. null: all."
    )

    @field_validator("splits")
    @classmethod
    def _some_split(cls, splits: list[str]) -> list[str]:
        return _named_splits(splits)

    @model_validator(mode="after")
    def _a_range(self) -> DifficultyConfig:
        if self.min_pass_rate > self.max_pass_rate:
            raise ValueError(
                f"min_pass_rate {self.min_pass_rate} is above max_pass_rate {self.max_pass_rate}, so no problem could be kept: "
                "give a range with min_pass_rate <= max_pass_rate"
            )
        return self


# The stage's params model (distillery.provenance finds the stage's execution-only keys through it).
MODEL = DifficultyConfig


def dataset_splits(params) -> list[str]:
    return [f"{DATASET}/{s}/train-00000-of-00001.parquet" for s in params.difficulty.splits]


STAGE = Stage(
    "difficulty",
    "keep the problems whose pass rate under the model GRPO starts from lies in a range",
    paths={
        "dataset": Io("input", dataset_splits, kind="files", help="the built dataset's splits named by difficulty.splits", dvc=DATASET),
        "kept": write("data/difficulty/kept.parquet", "the problems in range: GRPO's training problems"),
        "rejected": write("data/difficulty/rejected.parquet", "the problems left out, with the reason"),
        "pass_rates": write("data/difficulty/pass_rates.parquet", "each scored problem's samples, correct ones and pass rate"),
        "metrics": metrics("difficulty"),
        "server_logs": computed("where a server the job starts logs (logs/difficulty/servers)", optional=True),
    },
    # The accuracy reward's verdicts: verify's settings and how GRPO scores a gold of bare words.
    params=("base.seed", "difficulty", "verify", "grpo.rewards.accuracy.word_golds"),
    extras=("seed", "verify", "word_golds"),
    models=lambda p: {"model": ("difficulty.llm.model", p.difficulty.llm.model)},
)
