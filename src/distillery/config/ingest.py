"""The params of stage ingest (`params.yaml`'s `ingest` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from distillery.config.base import RESERVED_SOURCE, Section, _data_source
from distillery.declaration import Stage, metrics, mixing, write

# The published corpora distillery.corpora maps (one adapter each); tests/test_corpora.py checks the lists agree.
CorpusLayout = Literal["openr1_math", "openthoughts", "bespoke_stratos", "dolphin_r1", "limo", "s1k", "s1k_1_1"]


class Corpus(Section):
    """A published reasoning corpus read into the generation schema, so verify, judge, dedupe and build
    re-check it with this project's own verifier."""

    layout: CorpusLayout = Field(
        description="Its published layout: openr1_math (open-r1/OpenR1-Math-220k), openthoughts (open-thoughts/OpenThoughts-114k), "
        "bespoke_stratos (bespokelabs/Bespoke-Stratos-17k), dolphin_r1 (cognitivecomputations/dolphin-r1), limo (GAIR/LIMO), "
        "s1k (simplescaling/s1K), s1k_1_1 (simplescaling/s1K-1.1)."
    )
    path: str = Field(description="A local .jsonl/.json/.parquet file in that layout, or the hub dataset id.")
    config: str | None = Field(
        None, description="Hub dataset config (OpenR1-Math-220k: default, extended, all; dolphin-r1: reasoning-deepseek). null: none."
    )
    split: str = Field("train", description="Dataset split to read; hub ids only.")
    revision: str | None = Field(None, description="Hub commit, branch or tag to read; pin a commit sha for a reproducible read.")
    licence: str = Field(description="The corpus's licence (e.g. apache-2.0, mit): recorded in the card of any dataset built from it.")
    max_rows: int | None = Field(None, ge=1, description="Read only the first max_rows rows (a trial run). null: all.")

    @field_validator("path")
    @classmethod
    def _path_format(cls, v: str) -> str:
        return _data_source(v)


class IngestConfig(Section):
    corpora: dict[str, Corpus] = Field(
        {},
        description="Corpora to ingest, by a short name (the `corpus` of their rows; lowercase letters, digits, _ and -). "
        "Empty: no ingest and no mix; verify reads the project's own generations.",
    )

    @field_validator("corpora")
    @classmethod
    def _names(cls, corpora: dict[str, Corpus]) -> dict[str, Corpus]:
        import re

        for name in corpora:
            if name == RESERVED_SOURCE or not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
                raise ValueError(
                    f"corpus name {name!r}: use lowercase letters, digits, _ and - (and not {RESERVED_SOURCE!r}, mix's name for "
                    "the project's own generations)"
                )
        return corpora


# The stage's params model (distillery.provenance finds the stage's execution-only keys through it).
MODEL = IngestConfig

# Its local corpus files are inputs the files params.yaml names give it (distillery.workflow.named_inputs).
STAGE = Stage(
    "ingest",
    "read published reasoning corpora into the problems and generations tables",
    paths={
        "problems": write("data/ingest/problems.parquet"),
        "generations": write("data/ingest/generations.parquet"),
        "rejected": write("data/ingest/rejected.parquet"),
        "metrics": metrics("ingest"),
    },
    params=("base.seed", "ingest"),
    wanted=mixing,  # only when ingest.corpora names a corpus
)
