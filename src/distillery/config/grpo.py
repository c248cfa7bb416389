"""The params of stage grpo (`params.yaml`'s `grpo` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from distillery.config.base import Section, Training
from distillery.declaration import Stage, computed, logged, metrics, read, write_dir


class GRPOGeneration(Section):
    """How GRPO samples its completions: plain generation (CPU, tests), or TRL's vLLM integration."""

    num_generations: int = Field(16, ge=2, description="Completions per prompt (the group whose rewards are compared).")
    max_completion_length: int = Field(1024, ge=1, description="Longest completion, in tokens; longer ones are truncated (clipped).")
    max_prompt_tokens: int = Field(
        1024, ge=1, description="Problems whose prompt is longer, in the model's tokens, are left out (counted by reason)."
    )
    temperature: float = Field(0.7, ge=0, description="Sampling temperature.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling.")
    use_vllm: bool = Field(False, description="Generate with vLLM (GPU) instead of the model's own generate().")
    vllm_mode: Literal["colocate", "server"] = Field(
        "colocate",
        description="colocate: vLLM shares the training GPUs; server: a `trl vllm-serve` on vllm_server_gpus GPUs of the node, "
        "started by the stage, and training on the others.",
    )
    vllm_gpu_memory_utilization: float = Field(
        0.3, gt=0, le=1, description="GPU memory share vLLM takes (colocate: of the training GPUs; server: of its own)."
    )
    vllm_tensor_parallel_size: int = Field(1, ge=1, description="vLLM's tensor parallelism (colocate: per training process).")
    vllm_server_gpus: int = Field(1, ge=1, description="server mode: GPUs of the node given to `trl vllm-serve`.")
    vllm_server_port: int = Field(8000, ge=1, le=65535, description="server mode: the port `trl vllm-serve` listens on.")
    vllm_server_timeout_s: int = Field(600, ge=1, description="server mode: how long to wait for `trl vllm-serve` to answer.")


class AccuracyReward(Section):
    weight: float | None = Field(1.0, description="Weight in the summed reward; 0: computed and logged only; null: off.")
    word_golds: Literal["unusable", "compare"] = Field(
        "unusable",
        description='A gold of bare words ("forty two", "Yes": letters only, with a word of 3+ letters or a capitalised '
        "one; rewards.word_gold) when verify.wrap_gold is on. unusable: None for every completion, as TRL's accuracy reward "
        "gives a gold it cannot parse (the accuracy and cosine rewards); compare: compared as math-verify reads it wrapped, "
        "a product of one-letter symbols (an anagram matches).",
    )


class CosineReward(Section):
    """Yeo et al. (arXiv 2502.03373): r = min + 0.5 (max - min) (1 + cos(pi * L / max_len)), with (min, max) =
    (min_correct, max_correct) for a correct answer and (max_wrong, min_wrong) for a wrong one."""

    weight: float | None = Field(None, description="Weight in the summed reward; 0: computed and logged only; null: off.")
    min_correct: float = Field(1.0, description="A correct answer's reward at max_len (the paper: 1).")
    max_correct: float = Field(2.0, description="A correct answer's reward at length 0 (the paper: 2).")
    min_wrong: float = Field(-10.0, description="A wrong answer's reward at length 0 (the paper: -10).")
    max_wrong: float = Field(0.0, description="A wrong answer's reward at max_len (the paper: 0).")
    max_len: int = Field(14336, ge=1, description="L_max, in completion tokens; longer completions count as max_len (the paper: 14336).")
    exceed_length: float | None = Field(
        -10.0, description="The reward of a truncated completion (the paper: -10). null: scored as a wrong answer."
    )


class RepetitionReward(Section):
    weight: float | None = Field(None, description="Weight in the summed reward; 0: computed and logged only; null: off.")
    unit: Literal["words", "tokens"] = Field("words", description="n-grams of whitespace-split lowercased words (open-r1) or of tokens.")
    ngram_size: int = Field(3, ge=1, description="n (open-r1: 3 words; the paper's dense variant: 40 tokens).")
    variant: Literal["share", "per_repeat"] = Field(
        "share",
        description="share: (1 - unique/total n-grams) * penalty (open-r1); per_repeat: penalty per repeated n-gram, summed "
        "(the paper's per-token penalty, as one reward per completion).",
    )
    penalty: float = Field(
        -1.0, le=0, description="share: the penalty of a fully repeated text (open-r1: -1); per_repeat: per repeat (the paper: -0.05)."
    )


class OverlongReward(Section):
    """DAPO's soft overlong punishment: 0 up to max_len - cache tokens, then linear to -1 at max_len, -1 beyond."""

    weight: float | None = Field(None, description="Weight in the summed reward; 0: computed and logged only; null: off.")
    max_len: int | None = Field(None, ge=1, description="In tokens. null: generation.max_completion_length.")
    cache: int = Field(512, ge=1, description="The soft zone's width, in tokens.")


class FormatReward(Section):
    weight: float | None = Field(None, description="Weight in the summed reward; 0: computed and logged only; null: off.")


class Rewards(Section):
    accuracy: AccuracyReward = Field(
        AccuracyReward(),
        description="1 when the answer after </think> matches the gold under verify's settings, 0 otherwise; truncated "
        "completions are never correct; an unusable gold gives no reward (None).",
    )
    cosine: CosineReward = Field(CosineReward(), description="Correctness scaled by length (Yeo et al.).")
    repetition: RepetitionReward = Field(RepetitionReward(), description="A penalty for repeated n-grams (reward hacking by repetition).")
    overlong: OverlongReward = Field(OverlongReward(), description="DAPO's soft overlong punishment.")
    format: FormatReward = Field(FormatReward(), description="1 when <think>...</think> appears exactly once, before the answer.")

    @model_validator(mode="after")
    def _one_reward_on(self) -> Rewards:
        weights = {name: getattr(self, name).weight for name in type(self).model_fields}
        if all(w is None for w in weights.values()):
            raise ValueError("every reward is off (weight: null): give at least one a weight")
        if all(not w for w in weights.values()):
            # 0 logs a reward without training on it: with every weight 0 or null the summed reward is
            # always 0.0, every advantage is 0 and GRPO learns nothing.
            on = ", ".join(f"{n}: {w}" for n, w in weights.items() if w is not None)
            raise ValueError(
                f"every reward weight is 0 or null ({on}), so the summed reward is always 0.0 and nothing is learned: "
                "give at least one reward a non-zero weight"
            )
        return self


class GRPOConfig(Training):
    generation: GRPOGeneration = Field(GRPOGeneration(), description="How completions are sampled.")
    rewards: Rewards = Field(Rewards(), description="The reward functions, each with its weight.")
    beta: float = Field(0.0, ge=0, description="KL coefficient against the reference model (0: no reference model is loaded).")
    loss_type: str = Field(
        "dapo",
        description="TRL's GRPO loss normalisation (grpo, bnpo, dr_grpo, dapo, ...): one of the values the installed TRL's "
        "GRPOConfig lists, checked at config time.",
    )
    scale_rewards: Literal["group", "batch", "none"] = Field(
        "group", description="Advantages divided by the group's (or batch's) std, or not."
    )
    num_iterations: int = Field(1, ge=1, description="Optimisation passes per generated batch (mu in the GRPO paper).")
    epsilon: float = Field(0.2, gt=0, description="PPO-style clipping of the policy ratio.")
    mask_truncated_completions: bool = Field(False, description="Leave truncated completions out of the loss (DAPO).")
    verify_workers: int = Field(
        2, ge=1, description="Worker processes that check answers for the accuracy reward.", json_schema_extra={"execution": True}
    )

    @field_validator("loss_type")
    @classmethod
    def _trl_loss(cls, value: str) -> str:
        from distillery.trl_options import check_choice

        return check_choice("grpo", "GRPOConfig", "loss_type", value)


# The stage's params model (distillery.provenance finds the stage's execution-only keys through it).
MODEL = GRPOConfig

STEPS = "plots/grpo/steps.json"

STAGE = Stage(
    "grpo",
    "train the student with verifiable rewards (TRL's GRPO)",
    paths={
        "problems": read("data/difficulty/kept.parquet", "the problems difficulty kept (difficulty.splits, in its pass-rate range)"),
        "model": write_dir("data/grpo/model"),
        "metrics": metrics("grpo"),
        "steps": computed("each logged step's rewards, lengths and shares (plots/grpo/steps.json)"),
        "checkpoints": computed("resumable checkpoints, outside the outputs (default: beside the model)", optional=True),
        "run_figures": logged("training times (a log, JSON)"),
    },
    params=("base.seed", "grpo", "verify"),  # the accuracy reward checks answers with verify's settings
    extras=("seed", "verify"),
    plots=(
        (
            STEPS,
            {
                "cache": False,
                "x": "step",
                "y": "reward",
                "title": "GRPO: mean reward per step",
                "x_label": "step",
                "y_label": "mean reward",
            },
        ),
    ),
    launcher=True,
    handles_sigterm=True,
)
