"""The params of stage preferences (`params.yaml`'s `preferences` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from distillery.config.base import Section
from distillery.declaration import Stage, metrics, problems_table, read, write
from distillery.rounds import final_judged


class PreferencesConfig(Section):
    selection: Literal["math_verify", "judge", "either"] = Field(
        "either", description="What makes a generation correct (as build.selection): math_verify, the judge, or either."
    )
    rejected_kinds: list[Literal["wrong", "truncated"]] = Field(
        ["wrong", "truncated"],
        min_length=1,
        description="What may be rejected: wrong (complete, not correct) and truncated (stopped by the length limit) generations.",
    )
    pairing: Literal["one_per_problem", "all_pairs", "hardest_negative"] = Field(
        "one_per_problem",
        description="one_per_problem: one seeded random correct and one seeded random rejected generation; all_pairs: every "
        "correct with every rejected one (capped by max_pairs_per_problem); hardest_negative: a seeded random correct one "
        "with the most plausible rejected one (a complete wrong answer before a truncated one, then the nearest in length).",
    )
    max_pairs_per_problem: int | None = Field(
        None, ge=1, description="all_pairs: at most this many pairs per problem, a seeded sample. null: all."
    )


# The stage's params model (distillery.provenance finds the stage's execution-only keys through it).
MODEL = PreferencesConfig

STAGE = Stage(
    "preferences",
    "chosen/rejected pairs for DPO from the judged generations",
    paths={
        "judged": read(final_judged, "judge's generations of every round"),
        "problems": read(problems_table, "sample's problems, or mix's when ingest names a corpus"),
        "kept": read("data/dedupe/kept.parquet"),
        "pairs": write("data/preferences/pairs.parquet"),
        "unpaired": write("data/preferences/unpaired.parquet"),
        "metrics": metrics("preferences"),
    },
    params=("base.seed", "preferences", "generate.rounds"),  # rounds: which judged table
)
