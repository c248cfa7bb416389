"""The params of stage mix (`params.yaml`'s `mix` section)."""

from __future__ import annotations

from pydantic import Field, field_validator

from distillery.config.base import Section
from distillery.declaration import (
    MIXED_GENERATIONS,
    MIXED_PROBLEMS,
    OWN_GENERATIONS,
    OWN_PROBLEMS,
    Stage,
    metrics,
    mixing,
    read,
    read_if,
    write,
)


class MixConfig(Section):
    """How the ingested corpora and the project's own generations are combined before verify (only
    when ingest.corpora names one)."""

    own: bool = Field(True, description="Include the project's own problems and generations (sample, generate). false: only the corpora.")
    caps: dict[str, int] = Field(
        {},
        description="At most this many problems from a source (`own` or an ingest.corpora name): a seeded draw, nested like "
        "sample.n (a larger cap keeps the smaller cap's problems). A source not named: all its problems.",
    )

    @field_validator("caps")
    @classmethod
    def _positive(cls, caps: dict[str, int]) -> dict[str, int]:
        bad = {k: v for k, v in caps.items() if v < 1}
        if bad:
            raise ValueError(f"caps must be at least 1 (got {bad}); leave a source out to keep all of it, or set own: false")
        return caps


# The stage's params model (distillery.provenance finds the stage's execution-only keys through it).
MODEL = MixConfig

STAGE = Stage(
    "mix",
    "combine the ingested corpora with the own problems and generations, with per-source caps",
    paths={
        "ingested_problems": read("data/ingest/problems.parquet"),
        "ingested_generations": read("data/ingest/generations.parquet"),
        # sample's and generate's tables, read only when mix.own is true
        "own_problems": read_if(lambda p: OWN_PROBLEMS if p.mix.own else None, "sample's problems (mix.own)"),
        "own_generations": read_if(lambda p: OWN_GENERATIONS if p.mix.own else None, "generate's generations (mix.own)"),
        "mixed_problems": write(MIXED_PROBLEMS),
        "mixed_generations": write(MIXED_GENERATIONS),
        "left_out": write("data/mix/left_out.parquet"),
        "metrics": metrics("mix"),
    },
    params=("base.seed", "mix"),
    wanted=mixing,  # only when ingest.corpora names a corpus
)
