"""The params of stage evaluate (`params.yaml`'s `evaluate` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from distillery.config.base import LLM, ProblemPrompt, Sampling, Section, unknown_placeholders
from distillery.declaration import Stage, cli_option, computed, metrics, write


class EvalBenchmark(Section):
    """How one benchmark is evaluated."""

    n: int = Field(1, ge=1, description="Samples per problem in mode sampled; pass@1 is averaged over them.")
    limit: int | None = Field(None, ge=1, description="Evaluate only the first `limit` problems, for smoke tests. null: all.")


# OpenR1's GPQA prompt (from simple-evals, as lighteval uses it).
MULTIPLE_CHOICE_TEMPLATE = (
    "Answer the following multiple choice question. The last line of your response should be of the following "
    "format: 'Answer: $LETTER' (without quotes) where LETTER is one of {letters}. Think step by step before "
    "answering.\n\n{problem}\n\n{choices}"
)


class BudgetForcing(Section):
    """s1's budget forcing (arXiv 2501.19393): the thinking held to each budget in turn, each budget a
    protocol of its own. Greedy, as s1 evaluates. The defaults are s1's evaluation code
    (simplescaling/s1, eval/lm-evaluation-harness/lm_eval/models/vllm_causallms.py, and eval/commands.sh
    for the fixed-budget runs); where ours differs it is a named option (docs/design.md)."""

    budgets: list[int] = Field(
        [500, 1000, 2000, 4000, 8000, 16000], min_length=1, description="Thinking budgets, in the model's tokens (s1: 500 to 16k)."
    )
    num_ignore: int = Field(
        0,
        ge=0,
        description="How many times an early end of thinking is replaced by ignore_string, at every budget without its own "
        "count in num_ignore_by_budget. s1's fixed-budget runs: 0 (eval/commands.sh gives them no thinking_n_ignore); s1 ran "
        "1, 2, 4 and 6 on its `auto` budget.",
    )
    num_ignore_by_budget: list[int] | None = Field(
        None,
        description="One num_ignore per budget, in budgets' order (e.g. [0, 0, 2] for three budgets). null: num_ignore at every budget.",
    )
    ignore_string: str = Field("Wait", description='Appended instead of the delimiter to keep the model thinking (s1: "Wait").')
    min_thinking_tokens: int = Field(
        0,
        ge=0,
        description="s1's min_tokens_thinking: thinking that ends before this many tokens gets ignore_string instead of the "
        "delimiter (not counted in num_ignore) until it reaches them or its budget. 0: no minimum (s1's default).",
    )
    thinking_prefix: str = Field(
        "<think>\n", description="Appended to the rendered prompt so the model starts thinking; empty when the chat template adds it."
    )
    end_of_thinking: str = Field(
        "</think>", min_length=1, description="The model's end-of-thinking delimiter (R1-style: </think>; s1: <|im_start|>answer)."
    )
    answer_prefix: str = Field(
        "\nFinal Answer:", description="Appended after the delimiter when answer_prefix_when says so, so the model answers."
    )
    answer_prefix_when: Literal["length", "budget"] = Field(
        "length",
        description="length: only when the last thinking round stopped at its token limit (s1); budget: whenever the thinking "
        "reached its budget, a round that stopped on the delimiter with the budget used up included.",
    )
    answer_fallback: Literal["answer_line", "none"] = Field(
        "answer_line",
        description="What is scored when the answer has no \\boxed{}. answer_line: the last `Answer:` line's text (s1's scorer; "
        "the answer prefix's own line included); none: nothing (a box only).",
    )
    answer_max_tokens: int = Field(1024, ge=1, description="The answer's own token limit.")

    @field_validator("budgets")
    @classmethod
    def _positive(cls, budgets: list[int]) -> list[int]:
        if any(b < 1 for b in budgets) or len(set(budgets)) != len(budgets):
            raise ValueError(f"budgets must be distinct positive token counts, not {budgets}")
        return budgets

    @model_validator(mode="after")
    def _ignores_per_budget(self) -> BudgetForcing:
        per = self.num_ignore_by_budget
        if per is not None and (len(per) != len(self.budgets) or any(n < 0 for n in per)):
            raise ValueError(
                f"num_ignore_by_budget must give one count of 0 or more per budget ({len(self.budgets)} budgets: "
                f"{self.budgets}), not {per}; or be null for num_ignore at every budget"
            )
        return self

    def ignores_at(self, budget: int) -> int:
        """How many early ends of thinking are replaced by ignore_string at this budget."""
        per = self.num_ignore_by_budget
        return self.num_ignore if per is None else per[self.budgets.index(budget)]


class EvaluateConfig(ProblemPrompt):
    llm: LLM = Field(description="The model evaluated: the student.")
    sampling: Sampling = Field(
        Sampling(max_new_tokens=32768), description="How the model samples in mode sampled; greedy uses its max_new_tokens."
    )
    modes: list[Literal["sampled", "greedy", "budget_forcing"]] = Field(
        ["sampled"],
        min_length=1,
        description="sampled: `sampling` with each benchmark's n samples (pass@1 averaged over them, as published); greedy: "
        "temperature 0, one sample; budget_forcing: greedy, with the thinking held to each of budget_forcing.budgets (one "
        "protocol per budget). Each is reported on its own, never mixed.",
    )
    budget_forcing: BudgetForcing = Field(BudgetForcing(), description="The budget_forcing mode's settings.")
    multiple_choice_template: str = Field(
        MULTIPLE_CHOICE_TEMPLATE,
        description="The prompt of multiple_choice benchmarks, with {letters}, {problem} and {choices}: OpenR1's GPQA prompt "
        "(from simple-evals, as lighteval uses it).",
    )
    benchmarks: dict[str, EvalBenchmark] = Field({}, description="The benchmarks evaluated: names from base.benchmarks.")
    workers: int = Field(2, ge=1, description="Worker processes that check the answers.", json_schema_extra={"execution": True})
    timeout_s: int = Field(5, ge=1, description="math-verify's timeouts when checking an answer, per parse and per verify, in seconds.")

    @field_validator("multiple_choice_template")
    @classmethod
    def _choice_placeholders(cls, template: str) -> str:
        return unknown_placeholders(template, ("letters", "problem", "choices"))


# The stage's params model (distillery.provenance finds the stage's execution-only keys through it).
MODEL = EvaluateConfig

STAGE = Stage(
    "evaluate",
    "score the student on benchmarks",
    paths={  # the model and the benchmark files are params.yaml's (distillery.workflow.named_inputs)
        "samples": write("data/evaluate/samples.parquet"),
        "results": write("data/evaluate/results.md", "the results table (markdown)", optional=True),
        "model_card": write("data/evaluate/model_card.md", "the model's card with these results", optional=True),
        "metrics": metrics("evaluate"),
        "journal": cli_option("the stage's request journal (default $DISTILLERY_JOURNAL_DIR/<stage>)"),
        "server_logs": computed("where a server the job starts logs (default logs/<stage>/servers)", optional=True),
    },
    params=("base.seed", "base.benchmarks", "evaluate"),
    extras=("seed", "benchmark_files"),
    handles_sigterm=True,
)
