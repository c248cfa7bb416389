"""The params of stage sample (`params.yaml`'s `sample` section)."""

from __future__ import annotations

from pydantic import Field, field_validator

from distillery.config.base import Section, _data_source
from distillery.declaration import OWN_PROBLEMS, Stage, metrics, write


class ColumnFilter(Section):
    """Values of the source's columns; an empty list places no restriction."""

    question_type: list[str] = Field([], description="Values of the `question_type` column (e.g. proof, math-word-problem).")
    problem_type: list[str] = Field([], description="Values of the `problem_type` column (e.g. Algebra, Geometry).")
    source: list[str] = Field([], description="Values of the `source` column (e.g. olympiads, amc_aime).")


class SampleConfig(Section):
    source: str = Field(description="The problems: a local .jsonl/.json/.parquet file, or a hub dataset id.")
    split: str = Field("train", description="Dataset split to read; hub ids only.")
    revision: str | None = Field(None, description="Hub commit, branch or tag to read; pin a commit sha for a reproducible sample.")
    n: int | None = Field(
        None, ge=1, description="Problems to keep: the first n in an order derived from the seed. null: every row that passes the filters."
    )
    require_answer: bool = Field(True, description="Drop rows without a non-empty `answer`.")
    drop_synthetic: bool = Field(True, description="Drop rows whose `synthetic` column is true.")
    valid_only: bool = Field(True, description='Keep only rows whose problem_is_valid / solution_is_valid is "Yes", where present.')
    max_problem_chars: int = Field(20000, ge=1, description="Drop problems longer than this, in characters.")
    include: ColumnFilter = Field(ColumnFilter(), description="Keep only rows whose column value is listed; an empty list: no restriction.")
    exclude: ColumnFilter = Field(ColumnFilter(), description="Drop rows whose column value is listed.")

    @field_validator("source")
    @classmethod
    def _source_format(cls, v: str) -> str:
        return _data_source(v)


# The stage's params model (distillery.provenance finds the stage's execution-only keys through it).
MODEL = SampleConfig

# Its source, when a local file, is an input the files params.yaml names give it (distillery.workflow.named_inputs).
STAGE = Stage(
    "sample",
    "filter, key and sample the problems",
    paths={
        "problems": write(OWN_PROBLEMS),
        "rejected": write("data/sample/rejected.parquet"),
        "metrics": metrics("sample"),
    },
    params=("base.seed", "sample"),
)
