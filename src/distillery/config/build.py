"""The params of stage build (`params.yaml`'s `build` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from distillery.config.base import Section
from distillery.declaration import Stage, computed, metrics, problems_table, read, read_all, write
from distillery.rounds import final_judged, metrics_name


class SplitConfig(Section):
    """How the dataset's problems are split into its two configs."""

    default_sources: list[str] = Field(
        [], description="Sources whose problems go to the `default` config; every other source goes to `extended`."
    )


class RewardModel(Section):
    """The reward model of build.choice: reward_model (a sequence-classification model with one label)."""

    model: str | None = Field(
        None, description="Hub id or local directory of the reward model. null: none (choice reward_model needs one)."
    )
    revision: str | None = Field(None, description="Hub commit, branch or tag of the reward model. null: the latest.")
    batch_size: int = Field(8, ge=1, description="Conversations scored at once.", json_schema_extra={"execution": True})
    max_length: int = Field(4096, ge=16, description="Longest scored conversation, in tokens; longer ones are cut.")
    device: Literal["cpu", "auto"] = Field("cpu", description="cpu, or auto (a GPU when there is one; its floats differ from the CPU's).")


class BuildConfig(Section):
    selection: Literal["math_verify", "judge", "either"] = Field(
        "either",
        description="What makes a generation correct: math_verify, the judge, or either (OpenR1's recommended union). A problem "
        "is kept when one complete generation is correct.",
    )
    choice: Literal["random", "shortest", "first", "reward_model"] = Field(
        "random",
        description="Which correct generation becomes the assistant message: random (seeded by the seed and the problem key), "
        "the shortest, the first, or the one reward_model scores highest (OpenR1's ablation: no better than random).",
    )
    reward_model: RewardModel = Field(RewardModel(), description="The reward model of choice: reward_model.")
    splits: SplitConfig = Field(SplitConfig(), description="The dataset's default/extended configs.")

    @model_validator(mode="after")
    def _reward_model_named(self) -> BuildConfig:
        if self.choice == "reward_model" and not self.reward_model.model:
            raise ValueError("choice: reward_model needs reward_model.model (a hub id or a local sequence-classification model)")
        return self


# The stage's params model (distillery.provenance finds the stage's execution-only keys through it).
MODEL = BuildConfig

# What the dataset card records of the teacher, judge, verifier and corpora (distillery.workflow's
# card_settings), and so the params DVC tracks for build.
CARD_LLM_FIELDS = ("backend", "model", "revision")  # who answered: not how or where it ran
CARD_CORPUS_FIELDS = ("layout", "path", "config", "split", "revision", "licence")
VERIFY_EXECUTION_FIELDS = frozenset({"workers"})


def build_params(params) -> tuple[str, ...]:
    """Exactly the keys build reads: its section and what `card_settings` records (not the
    teacher's batch size or endpoints, which would re-run build for nothing)."""
    corpora = [f"ingest.corpora.{name}.{field}" for name in sorted(params.ingest.corpora) for field in CARD_CORPUS_FIELDS]
    return (
        "base.seed",
        "build",
        *(f"generate.llm.{f}" for f in CARD_LLM_FIELDS),
        "generate.sampling",
        "generate.num_generations",
        "generate.rounds",  # the card's, and which judged table
        "generate.prompt_template",
        *(f"judge.llm.{f}" for f in CARD_LLM_FIELDS),
        "judge.policy",
        *(f"verify.{f}" for f in type(params.verify).model_fields if f not in VERIFY_EXECUTION_FIELDS),
        *((*corpora, "mix") if corpora else ()),
    )


DATASET = "data/build/dataset"  # DVC tracks it as one out; the rule names its card and configs' files


def stage_metrics(params) -> list[str]:
    """The metrics the card's counts come from: every round's generate, verify and judge."""
    rounds = range(1, 2 + len(params.generate.rounds))
    made = [f"metrics/{metrics_name(s, r)}.json" for r in rounds for s in ("generate", "verify", "judge")]
    return ["metrics/sample.json", *made, "metrics/dedupe.json"]


STAGE = Stage(
    "build",
    "assemble the dataset and its card",
    paths={
        "judged": read(final_judged, "judge's generations of every round"),
        "problems": read(problems_table, "sample's problems, or mix's when ingest names a corpus"),
        "kept": read("data/dedupe/kept.parquet", "dedupe's kept problems"),
        "stage_metrics": read_all(stage_metrics, "metrics/<stage>.json of the stages before it: the card's counts", optional=True),
        "card": write(f"{DATASET}/README.md", dvc=DATASET, flag=False),
        "default": write(f"{DATASET}/default/train-00000-of-00001.parquet", dvc=DATASET, flag=False),
        "extended": write(f"{DATASET}/extended/train-00000-of-00001.parquet", dvc=DATASET, flag=False),
        "dataset_dir": computed("the dataset's folder: its card and one folder per config"),
        "rejected": write("data/build/rejected.parquet"),
        "provenance": write("data/build/provenance.parquet", "per-row provenance of the dataset (parquet)", optional=True),
        "metrics": metrics("build"),
    },
    params=build_params,
    extras=("seed", "card_settings"),
    entry="main",  # the card's context (counts, settings, the inputs' revision) from the files, then run()
)
