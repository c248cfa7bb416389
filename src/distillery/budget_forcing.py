"""Budget forcing (s1, arXiv 2501.19393): thinking held to a token budget.

The model thinks by continuing its own prompt (the chat template's generation prompt, then
`thinking_prefix`), a round at a time, each round stopping at the end-of-thinking delimiter or at
the budget left. A round that ends its thinking early gets the ignore string ("Wait") appended
instead of the delimiter, `num_ignore` times at most; a round that reaches the budget ends the
thinking. Then the delimiter is appended (with the answer prefix, "Final Answer:", when the budget
cut the thinking off) and the answer is generated with its own limit.

Everything is counted in token ids of the model's tokenizer, which are also what is sent (every
backend continues the ids as they are): the thinking is the ids of each round's text, cut to the
budget left, plus the ignore strings' ids, so it never exceeds its budget in the tokenizer's count,
whatever a server reports. Each round is one request, journaled like any other, so a re-run sends
nothing and a killed run resumes at the round it was in. `ask` is how a round is sent; the evaluate
stage's task journals it, a test can answer from a fixed table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from distillery.config import BudgetForcing
from distillery.errors import DistilleryError


@dataclass(frozen=True)
class Round:
    """One request: continue `prompt_ids`, at most `max_tokens`, stopping at `stop`."""

    prompt_ids: tuple[int, ...]
    max_tokens: int
    stop: tuple[str, ...]
    min_tokens: int


@dataclass(frozen=True)
class Reply:
    text: str | None
    finish_reason: str | None
    key: str | None = None
    code: str | None = None
    error: str | None = None


Ask = Callable[[Sequence[Round]], list[Reply]]


@dataclass
class Trace:
    """One budget-forced generation."""

    prompt_ids: list[int]
    budget: int
    thinking: list[int] = field(default_factory=list)
    ignores: int = 0
    rounds: int = 0
    capped: bool = False  # the budget ended the thinking
    thinking_done: bool = False
    failed: str | None = None
    answer: Reply | None = None
    tail: str = ""  # what was appended after the thinking: the delimiter and any answer prefix

    def text(self, tokenizer: Any, cfg: BudgetForcing) -> str | None:
        """The whole generation as the model saw it, from the thinking prefix on."""
        if self.answer is None or self.answer.text is None:
            return None
        return cfg.thinking_prefix + tokenizer.decode(self.thinking) + self.tail + self.answer.text

    def scored_text(self, cfg: BudgetForcing) -> str | None:
        """What is scored: the answer after the thinking, read as the verify stage reads an answer
        (after </think>, whatever this model's delimiter is)."""
        if self.answer is None or self.answer.text is None:
            return None
        return "<think></think>" + (cfg.answer_prefix if self.capped else "") + self.answer.text


def ids_of(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def force(prompts: Sequence[list[int]], budget: int, cfg: BudgetForcing, tokenizer: Any, ask: Ask) -> list[Trace]:
    """Budget-forced generations for prompts already rendered to ids (the thinking prefix included)."""
    traces = [Trace(list(p), budget) for p in prompts]
    ignore_ids = ids_of(tokenizer, cfg.ignore_string) if cfg.ignore_string else []
    while True:
        active = [t for t in traces if not t.thinking_done]
        if not active:
            break
        replies = ask([Round(tuple(t.prompt_ids + t.thinking), t.budget - len(t.thinking), (cfg.end_of_thinking,), 1) for t in active])
        if all(r.text is None for r in replies):
            # Nothing could be continued (a chat-only server, a model that does not load): one clear
            # error, not an evaluation of empty answers.
            raise DistilleryError(f"budget forcing: every request of a round failed, e.g. {replies[0].error or replies[0].finish_reason}")
        for t, reply in zip(active, replies):
            t.rounds += 1
            if reply.text is None:
                t.failed, t.thinking_done = reply.finish_reason or "error", True
                continue
            left = t.budget - len(t.thinking)
            t.thinking += ids_of(tokenizer, reply.text)[:left]
            if reply.finish_reason == "length" or len(t.thinking) >= t.budget:
                t.capped = t.thinking_done = True
            elif t.ignores < cfg.num_ignore and ignore_ids and len(t.thinking) + len(ignore_ids) <= t.budget:
                t.thinking += ignore_ids  # ended early: keep thinking
                t.ignores += 1
            else:
                t.thinking_done = True
    answering = [t for t in traces if t.failed is None]
    for t in answering:
        t.tail = cfg.end_of_thinking + (cfg.answer_prefix if t.capped else "")
    replies = ask([Round(tuple(t.prompt_ids + t.thinking + ids_of(tokenizer, t.tail)), cfg.answer_max_tokens, (), 0) for t in answering])
    for t, reply in zip(answering, replies):
        t.rounds += 1
        t.answer = reply
    return traces
