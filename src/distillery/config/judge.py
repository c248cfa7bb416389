"""The params of stage judge (`params.yaml`'s `judge` section)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from distillery.config.base import LLM, Sampling, Section


class JudgeConfig(Section):
    llm: LLM = Field(description="The judge: the model that decides whether an answer matches the gold.")
    sampling: Sampling = Field(Sampling(temperature=0.0, top_p=1.0, max_new_tokens=256), description="How the judge samples.")
    prompt_template: str = Field(
        "prompts/judge.txt", description="A file holding the judge prompt, with {problem}, {reference_answer} and {candidate_answer}."
    )
    policy: Literal["unsolved_problems", "all_failures"] = Field(
        "unsolved_problems",
        description="Which generations are judged. unsolved_problems (OpenR1): complete generations of problems that have no "
        "math-verify-correct complete generation and a non-empty gold; all_failures: every complete generation with a non-empty gold "
        "that math-verify did not pass.",
    )
    candidate_tail_chars: int = Field(
        600, ge=50, description="Characters from the end of the answer the judge sees, not thousands of tokens of thinking."
    )

    @field_validator("prompt_template")
    @classmethod
    def _template_placeholders(cls, path: str) -> str:
        # Checked here when the file is at hand (Snakemake's parse, check-params); the stage checks it again.
        if Path(path).is_file():
            from distillery.prompts import load_judge_template

            load_judge_template(path)
        return path


# The stage's params model (distillery.provenance finds the stage's execution-only keys through it).
MODEL = JudgeConfig
