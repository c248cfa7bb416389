"""The params of stage models (`params.yaml`'s `models` section)."""

from __future__ import annotations

from pydantic import Field, model_validator

from distillery.config.base import Section
from distillery.declaration import Stage, logged, metrics, named, write_dir


class TinyModelsConfig(Section):
    """Smoke-test models built locally: a BPE tokenizer and Qwen2-architecture models."""

    corpus: str = Field(
        "data/bundled/numina_sample.jsonl",
        description="NuminaMath-shaped rows (problem, solution, answer) the tokenizer, teacher and judge learn from. A fixed "
        "file, not the sample: growing the sample must not change the teacher.",
    )
    vocab_size: int = Field(1024, ge=300, description="BPE tokenizer vocabulary size, in tokens.")
    hidden_size: int = Field(
        128, ge=32, description="Hidden size; hidden_size / num_heads (the head dim) must be a multiple of 16 and at least 32."
    )
    intermediate_size: int = Field(256, ge=1, description="MLP intermediate size.")
    num_layers: int = Field(2, ge=1, description="Transformer layers.")
    num_heads: int = Field(
        4, ge=1, description="Attention heads; must divide hidden_size (vLLM's CPU attention rejects head dims below 32)."
    )
    num_kv_heads: int = Field(2, ge=1, description="Key/value heads (grouped-query attention); must divide num_heads.")
    max_position_embeddings: int = Field(2048, ge=16, description="Longest sequence the models take, in tokens.")
    teacher_epochs: int = Field(40, ge=0, description="Training epochs of the teacher over the corpus.")
    judge_epochs: int = Field(10, ge=0, description="Training epochs of the judge.")
    learning_rate: float = Field(3e-3, gt=0, description="AdamW learning rate of the teacher and judge training.")
    batch_size: int = Field(8, ge=1, description="Training batch size, in sequences.")

    @model_validator(mode="after")
    def _head_dim(self) -> TinyModelsConfig:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        head_dim = self.hidden_size // self.num_heads
        # vLLM's CPU attention rejects small head dims; later stages run these models in vLLM.
        if head_dim < 32 or head_dim % 16:
            raise ValueError(f"head_dim = hidden_size/num_heads = {head_dim}; use 32, 64, 80, 96, 112, 128, ...")
        if self.num_heads % self.num_kv_heads:
            raise ValueError("num_heads must be a multiple of num_kv_heads")
        return self


class ModelsConfig(Section):
    build_tiny: bool = Field(
        True, description="true: build the smoke-test models; false: the recipe's models come from the hub and nothing is built."
    )
    tiny: TinyModelsConfig = Field(TinyModelsConfig(), description="The smoke-test models built when build_tiny is true.")


# The stage's params model (distillery.provenance finds the stage's execution-only keys through it).
MODEL = ModelsConfig

STAGE = Stage(
    "models",
    "build the tiny smoke-test models",
    paths={
        "corpus": named("models.tiny.corpus: what the tokenizer, teacher and judge learn from"),
        "judge_template": named("judge.prompt_template: the judge learns to answer it"),
        "models": write_dir("data/models"),
        "metrics": metrics("models"),
        "run_figures": logged("training times (a log, JSON)"),
    },
    params=("base.seed", "models", "generate.prompt_template", "judge.prompt_template"),
    extras=("seed", "prompt_template"),
    wanted=lambda p: p.models.build_tiny,
)
