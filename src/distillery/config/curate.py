"""The params of stage curate (`params.yaml`'s `curate` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from distillery.config.base import Section
from distillery.declaration import Stage, bars, computed, metrics, read, write, write_dir


class S1KCuration(Section):
    """s1K's method (Muennighoff et al. 2025, s1: quality, difficulty, diversity)."""

    subset_rows: int = Field(1000, ge=1, description="Problems to select (s1K: 1,000).")
    max_pass_rate: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Difficulty: drop problems whose correct share of generations is above this (too_easy). s1 dropped problems "
        "either of two weaker models solved; the teacher's own pass rate over its n generations stands in (ours).",
    )
    domain_field: Literal["problem_type", "source", "question_type"] = Field(
        "problem_type",
        description="The column whose value is a problem's domain (s1 classified questions by Mathematics Subject "
        "Classification, 50 domains in s1K; NuminaMath's problem_type is the label at hand).",
    )
    uniform_share: float = Field(
        0.7,
        ge=0,
        le=1,
        description="Share of the rows drawn with domains picked uniformly (s1's code: while fewer than 700 of 1,000 are "
        "selected; rounded half up); the rest pick domains by the mix of mix_sources. 1: uniform throughout (s1's paper).",
    )
    mix_sources: dict[str, float] = Field(
        {"amc_aime": 1.0},
        description="The weighted phase's target mix: the domain counts of the candidates whose `source` is listed, each "
        "source's counts scaled so its total is its weight. s1: AIME 1, GPQA 0.5 (GPQA's counts scaled to half of AIME's "
        "total); NuminaMath has no GPQA rows, so amc_aime alone. {}: no weighted phase.",
    )
    drop_bold_digit: bool = Field(
        True,
        description="Drop problems with a bold token holding a digit (reason bold_digit), with s1's own regex "
        "(distillery.curation.BOLD_DIGIT_RE: the digit may be anywhere later on the same line).",
    )


class LimoCuration(Section):
    """LIMO's method (Ye et al. 2025): rarely solved problems, the best-reasoned chains."""

    subset_rows: int = Field(817, ge=1, description="Problems to select (LIMO: 817).")
    min_correct: int = Field(1, ge=0, description="Keep problems with at least this many correct generations (LIMO: 1 of k).")
    max_correct: int = Field(3, ge=0, description="... and at most this many (LIMO: 3 of k=32 samples).")
    weights: dict[Literal["self_verification", "exploration", "elaboration", "length"], float] = Field(
        {"self_verification": 1.0, "exploration": 1.0, "elaboration": 0.5, "length": 0.5},
        description="Weights of the rule-based signs of quality the chains are ranked by. LIMO v3 published shares (length 30%, "
        "verification 20%, exploration 25%, connectives 25%) but not its keyword lists or scales; on ours (hits per 1,000 words, "
        "log(1 + words)) these weights are ours (distillery.curation).",
    )

    @model_validator(mode="after")
    def _bounds(self) -> LimoCuration:
        if self.min_correct > self.max_correct:
            raise ValueError(f"min_correct {self.min_correct} is above max_correct {self.max_correct}")
        return self


class CurateConfig(Section):
    method: Literal["s1k", "limo"] = Field("s1k", description="How the subset is cut: s1k (quality, difficulty, diversity) or limo.")
    split: Literal["default", "extended"] = Field("default", description="The built dataset config the subset is cut from.")
    selection: Literal["math_verify", "judge", "either"] = Field(
        "either", description="What makes a generation correct, for the pass rates (as build.selection)."
    )
    s1k: S1KCuration = Field(S1KCuration(), description="Settings of method s1k.")
    limo: LimoCuration = Field(LimoCuration(), description="Settings of method limo.")


# The stage's params model (distillery.provenance finds the stage's execution-only keys through it).
MODEL = CurateConfig

DATASET = "data/build/dataset"
PLOTS = (
    (
        "plots/curate/domains.json",
        bars("problems", "domain", "Curate: problems per domain, before and after selection", "problems", "domain"),
    ),
    (
        "plots/curate/trace_lengths.json",
        bars("problems", "bin", "Curate: chosen trace length (words, fixed bins), before and after selection", "problems", "words"),
    ),
    (
        "plots/curate/difficulty.json",
        bars(
            "problems", "pass_rate", "Curate: pass rate of the teacher's generations, before and after selection", "problems", "pass rate"
        ),
    ),
)

STAGE = Stage(
    "curate",
    "cut a small subset from the built dataset by a recorded method (s1k, limo)",
    paths={
        "dataset": read(
            lambda p: f"{DATASET}/{p.curate.split}/train-00000-of-00001.parquet", "one config of the built dataset", dvc=DATASET
        ),
        "card": read(f"{DATASET}/README.md", "the built dataset's card: its sources and licences carry over", dvc=DATASET),
        "subset_dir": write_dir("data/curate/subset"),
        "selection": write("data/curate/selection.parquet"),
        "metrics": metrics("curate"),
        "plots_dir": computed("the folder of its plot data (plots/curate/)"),
    },
    params=("base.seed", "curate"),
    plots=PLOTS,
)
