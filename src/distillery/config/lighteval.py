"""The params of stage lighteval (`params.yaml`'s `lighteval` section)."""

from __future__ import annotations

from pydantic import Field

from distillery.config.base import Sampling, Section
from distillery.declaration import Stage, computed, read, write


class LightevalConfig(Section):
    """lighteval's own numbers for the student (opt-in: `snakemake data/lighteval/results.json`),
    run in its own environment: lighteval pins a latex2sympy2_extended that math-verify 0.9 cannot use."""

    model: str = Field("data/sft/model", description="Hub id or local directory of the model evaluated.")
    tasks: list[str] = Field(
        ["lighteval|math_500|0", "lighteval|aime24|0", "lighteval|aime25|0", "lighteval|gpqa:diamond|0"],
        description="lighteval task specs (suite|task|few-shot).",
    )
    sampling: Sampling = Field(Sampling(max_new_tokens=32768), description="How the model samples.")
    dtype: str = Field("bfloat16", description="Weight dtype passed to vLLM.")
    max_model_length: int = Field(32768, ge=16, description="vLLM's context length, in tokens.")
    gpu_memory_utilization: float = Field(0.8, gt=0, le=1, description="Fraction of each GPU's memory vLLM may take (0 to 1).")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs the model is split over (tensor parallelism).")
    max_samples: int | None = Field(None, ge=1, description="Items per task, for smoke runs. null: all.")


# The stage's params model (distillery.provenance finds the stage's execution-only keys through it).
MODEL = LightevalConfig

STAGE = Stage(
    "lighteval",
    "score the student with lighteval (its own environment)",
    paths={
        "model": read("data/sft/model", flag=False),  # lighteval.model names it to lighteval
        "work_dir": computed("lighteval's own output folder (its raw results)"),
        "results": write("data/lighteval/results.json"),
        "metrics": write("metrics/lighteval.json"),  # no headline: not a DVC stage
    },
    extras=(),
    versioned=False,  # opt-in, in its own environment: not part of `all` nor of dvc.yaml
)
