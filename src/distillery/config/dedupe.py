"""The params of stage dedupe (`params.yaml`'s `dedupe` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from distillery.config.base import Section
from distillery.declaration import Stage, metrics, problems_table, read, write
from distillery.rounds import final_judged


class NearDedupeConfig(Section):
    """MinHash LSH near-duplicate dedupe over token shingles (rensa)."""

    enabled: bool = Field(True, description="Drop near duplicates.")
    shingle_size: int = Field(
        2,
        ge=1,
        description="Tokens per shingle. On realistic math text (benchmarks/dedupe_scale.py) 2 beats 1 (false pairs) and 3 "
        "(paraphrases and changed numbers missed).",
    )
    num_perm: int = Field(128, ge=8, description="MinHash permutations; bands must divide it.")
    bands: int = Field(32, ge=1, description="LSH bands; rows per band = num_perm / bands.")
    threshold: float = Field(
        0.6,
        gt=0,
        le=1,
        description="Estimated Jaccard similarity of the non-boilerplate shingles that makes a near duplicate (docs/design.md, "
        "dedupe: 0.7 missed 45% of one-sentence paraphrases).",
    )
    min_shingles: int = Field(
        5,
        ge=1,
        description="A text with fewer non-boilerplate shingles is left to exact dedupe: two such short texts share most of "
        "them by chance.",
    )
    boilerplate_share: float = Field(
        0.005,
        gt=0,
        le=1,
        description="A shingle found more often than this share of the rows (and than 50 rows) is boilerplate ('express your "
        "answer as a common fraction') and does not count; 1 counts every shingle.",
    )
    keep_different_answers: bool = Field(
        True,
        description="Never merge two near duplicates whose gold answers (the problems' `answer`, compared as normalized "
        "strings) are both given and differ: templated problems that differ only in their numbers are different problems. "
        "false: the texts alone decide. Exact dedupe and decontamination do not look at answers.",
    )

    @model_validator(mode="after")
    def _bands_divide_perms(self) -> NearDedupeConfig:
        if self.num_perm % self.bands:
            raise ValueError(f"dedupe.near.bands ({self.bands}) must divide dedupe.near.num_perm ({self.num_perm})")
        return self


class DedupeConfig(Section):
    exact: bool = Field(True, description="Drop problems whose normalized text an earlier-ranked problem has.")
    keep: Literal["first_by_key", "most_correct"] = Field(
        "first_by_key",
        description="Which duplicate is kept. first_by_key: the lowest uuid; most_correct: the one with the most correct generations.",
    )
    near: NearDedupeConfig = Field(NearDedupeConfig(), description="Near-duplicate dedupe (MinHash LSH).")
    decontaminate: bool = Field(True, description="Drop problems that share n-grams with the benchmarks.")
    ngram: int = Field(8, ge=1, description="Decontamination n-gram length, in tokens (lowercased runs of letters and digits).")
    min_matching_ngrams: int = Field(
        1,
        ge=1,
        description="Of one benchmark item's n-grams, how many a problem must hold to be flagged (all, when the item has fewer). "
        "OpenR1: one.",
    )
    min_item_coverage: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="Of one benchmark item's token bigrams, each weighted by how rare it is among the benchmark items, the "
        "share a problem that shares a retrieval n-gram with the item must hold to be flagged. A closing such as 'express "
        "your answer as a common fraction' is a small share; a copy, even lightly edited, most of it (benchmarks/"
        "decontamination.py). 0: every problem that shares a retrieval n-gram.",
    )
    benchmarks: list[str] = Field([], description="Benchmarks to decontaminate against: names from base.benchmarks.")


# The stage's params model (distillery.provenance finds the stage's execution-only keys through it).
MODEL = DedupeConfig

# Its local benchmark files are inputs the files params.yaml names give it (distillery.workflow.named_inputs).
STAGE = Stage(
    "dedupe",
    "decontamination, exact and near-duplicate dedupe",
    paths={
        "problems": read(problems_table, "sample's problems, or mix's when ingest names a corpus"),
        "judged": read(final_judged, "judge's generations of every round"),
        "kept": write("data/dedupe/kept.parquet"),
        "rejected": write("data/dedupe/rejected.parquet"),
        "contamination": write("data/dedupe/contamination.parquet"),
        "near_duplicates": write("data/dedupe/near_duplicates.parquet"),
        "metrics": metrics("dedupe"),
    },
    params=("base.seed", "base.benchmarks", "dedupe", "generate.rounds"),  # rounds: which judged table
    extras=("seed", "benchmark_files"),
    entry="main",  # run() takes the benchmarks before the paths and the seed after (its tests' call)
)
