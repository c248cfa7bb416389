"""The params of stage generate (`params.yaml`'s `generate` section)."""

from __future__ import annotations

from pydantic import Field

from distillery.config.base import LLM, ProblemPrompt, Sampling


class GenerateConfig(ProblemPrompt):
    llm: LLM = Field(description="The teacher: the model that writes the reasoning traces.")
    sampling: Sampling = Field(Sampling(), description="How the teacher samples.")
    system_prompt: str | None = Field(None, description="A system message before the prompt. null: none.")
    num_generations: int = Field(2, ge=1, description="Generations sampled per problem.")
    num_shards: int = Field(
        1,
        ge=1,
        description="Jobs the problems are split over, by a hash of their key: generate, verify and judge each run one job "
        "(one Slurm job) per shard.",
        json_schema_extra={"execution": True},
    )


# The stage's params model (distillery.provenance finds the stage's execution-only keys through it).
MODEL = GenerateConfig
