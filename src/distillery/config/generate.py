"""The params of stage generate (`params.yaml`'s `generate` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from distillery.config.base import LLM, ProblemPrompt, Sampling, Section

# What one generation came to, as a later round's condition counts it (distillery.rounds.outcome):
# correct (complete, and correct under the round's selection), wrong (complete, not correct),
# truncated (stopped by the length limit), failed (a failed request, or a text that stopped without
# finishing its reasoning for another reason).
Outcome = Literal["correct", "wrong", "truncated", "failed"]


class RoundCondition(Section):
    """Which problems a later round samples again, from every generation of the rounds before it
    (verified and judged): `count` and `fewer_than`, or `every`."""

    count: Outcome | None = Field(
        None, description="The outcome counted: problems with fewer than `fewer_than` generations of it so far are sampled."
    )
    fewer_than: int | None = Field(None, ge=1, description="With `count`: 1 is none so far (e.g. no correct answer: unsolved).")
    every: Outcome | None = Field(None, description="Instead: problems every generation of which so far had this outcome (e.g. truncated).")
    selection: Literal["math_verify", "judge", "either"] = Field(
        "either", description="What makes a generation correct here (as build.selection): math_verify, the judge, or either."
    )

    @model_validator(mode="after")
    def _one_condition(self) -> RoundCondition:
        counting = self.count is not None or self.fewer_than is not None
        if counting == (self.every is not None):
            raise ValueError("set either count and fewer_than (e.g. {count: correct, fewer_than: 1}) or every (e.g. {every: truncated})")
        if counting and (self.count is None or self.fewer_than is None):
            raise ValueError("count and fewer_than go together: e.g. {count: correct, fewer_than: 1} samples the unsolved problems")
        return self


class GenerationRound(Section):
    """A round after the first: more samples for the problems its condition selects."""

    when: RoundCondition = Field(description="The problems this round samples, by what verify and judge decided of the rounds before.")
    num_generations: int = Field(
        2, ge=1, description="Generations sampled per selected problem; their sample indices follow the rounds before."
    )
    sampling: Sampling | None = Field(None, description="How the teacher samples in this round. null: generate.sampling.")


class GenerateConfig(ProblemPrompt):
    llm: LLM = Field(description="The teacher: the model that writes the reasoning traces.")
    sampling: Sampling = Field(Sampling(), description="How the teacher samples.")
    system_prompt: str | None = Field(None, description="A system message before the prompt. null: none.")
    num_generations: int = Field(2, ge=1, description="Generations sampled per problem in the first round (every problem).")
    rounds: list[GenerationRound] = Field(
        [],
        description="Rounds after the first, in order: each runs after verify and judge have seen the rounds before it, and "
        "samples only the problems its `when` selects (OpenR1: 2 more for the problems with no correct answer). [] : one round.",
    )
    num_shards: int = Field(
        1,
        ge=1,
        description="Jobs the problems are split over, by a hash of their key: generate, verify and judge each run one job "
        "(one Slurm job) per shard.",
        json_schema_extra={"execution": True},
    )


# The stage's params model (distillery.provenance finds the stage's execution-only keys through it).
MODEL = GenerateConfig


def first_sample_index(cfg: GenerateConfig, round_number: int) -> int:
    """Round `round_number`'s first sample index: the rounds before it took the ones below (so a
    round's requests are distinct from theirs, and growing a round's n adds only new indices)."""
    return cfg.num_generations + sum(r.num_generations for r in cfg.rounds[: round_number - 2]) if round_number > 1 else 0


def round_config(cfg: GenerateConfig, round_number: int) -> GenerateConfig:
    """What round `round_number`'s jobs receive: the section with the rounds up to it only, so that a
    later round's settings never change an earlier round's jobs (or DVC's view of them)."""
    return cfg.model_copy(update={"rounds": cfg.rounds[: max(0, round_number - 1)]})
