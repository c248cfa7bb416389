"""Budget forcing (s1, arXiv 2501.19393): thinking held to a token budget.

The model thinks by continuing its own prompt (the chat template's generation prompt, then
`thinking_prefix`), a round at a time, each round stopping at the end-of-thinking delimiter or at
the budget left. A round that ends its thinking early gets the ignore string ("Wait") appended
instead of the delimiter: always while the thinking is shorter than `min_thinking_tokens`, and then
up to the budget's ignore count (s1's fixed-budget runs: none). A round that reaches the budget ends
the thinking. Then the delimiter is appended, with the answer prefix ("Final Answer:") when the last
round stopped at its token limit (s1's rule; `answer_prefix_when: budget` for whenever the budget
was reached), and the answer is generated with its own limit.

No round is ever asked for zero tokens: a thinking that has used its budget is over, and the ignore
string is appended only where at least one token of budget is left after it (otherwise the thinking
ends as the model ended it), so every round asks for 1 to `budget` tokens.

Everything is counted in token ids of the model's tokenizer, which are also what is sent (every
backend continues the ids as they are): the thinking is the ids of each round's text, cut to the
budget left, plus the ignore strings' ids, so it never exceeds its budget in the tokenizer's count,
whatever a server reports. Each round is one request, journaled like any other, so a re-run sends
nothing and a killed run resumes at the round it was in. `ask` is how a round is sent; the evaluate
stage's task journals it, a test can answer from a fixed table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from distillery.config.evaluate import BudgetForcing
from distillery.errors import DistilleryError
from distillery.verification import boxed_contents, braces_balanced


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
    ignores: int = 0  # ignore strings appended, those for the minimum included
    ignores_for_minimum: int = 0  # of them, appended because the thinking was under min_thinking_tokens
    rounds: int = 0
    capped: bool = False  # the thinking reached its budget
    stopped_at_limit: bool = False  # the last thinking round stopped at its token limit (finish_reason "length")
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
        """What is scored: the answer after the thinking (the answer prefix included when it was
        appended), read as the verify stage reads an answer (after </think>, whatever this model's
        delimiter is). Without a box, `answer_fallback: answer_line` boxes the last `Answer:` line."""
        if self.answer is None or self.answer.text is None:
            return None
        answer = self.tail[len(cfg.end_of_thinking) :] + self.answer.text
        if cfg.answer_fallback == "answer_line" and not boxed_contents(answer):
            line = last_answer_line(answer)
            if line is not None:
                answer += "\n\\boxed{" + line + "}"
        return "<think></think>" + answer


_ANSWER_LABEL = re.compile(r"(?i)answer\s*:")


def last_answer_line(text: str) -> str | None:
    """The text of the last `Answer:` line (case-insensitive, "Final Answer:" included), or the
    first non-empty line after it when the label ends its line; None when there is none, or when
    it could not stand inside a box (unbalanced braces)."""
    labels = list(_ANSWER_LABEL.finditer(text))
    if not labels:
        return None
    rest = text[labels[-1].end() :]
    line = next((ln for ln in rest.split("\n") if ln.strip(" \t*")), "")
    line = line.strip().strip("*").strip().rstrip(".").rstrip()
    for left, right in (("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if line.startswith(left) and line.endswith(right) and len(line) >= len(left) + len(right):
            line = line[len(left) : len(line) - len(right)].strip()
    line = line.rstrip(".").strip()
    return line if line and braces_balanced(line) else None


def ids_of(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def force(prompts: Sequence[list[int]], budget: int, cfg: BudgetForcing, tokenizer: Any, ask: Ask) -> list[Trace]:
    """Budget-forced generations for prompts already rendered to ids (the thinking prefix included)."""
    traces = [Trace(list(p), budget) for p in prompts]
    ignore_ids = ids_of(tokenizer, cfg.ignore_string) if cfg.ignore_string else []
    allowed = cfg.ignores_at(budget)
    # s1 asks every thinking round for at least one token when it may append the ignore string, so
    # the model cannot close its thinking straight after "Wait"; without ignores it sets no minimum.
    min_tokens = 1 if ignore_ids and (allowed or cfg.min_thinking_tokens) else 0
    while True:
        active = [t for t in traces if not t.thinking_done]
        if not active:
            break
        # Every active trace has budget left (see below), so no round asks for zero tokens.
        replies = ask(
            [Round(tuple(t.prompt_ids + t.thinking), t.budget - len(t.thinking), (cfg.end_of_thinking,), min_tokens) for t in active]
        )
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
            t.stopped_at_limit = reply.finish_reason == "length"
            t.capped = t.stopped_at_limit or len(t.thinking) >= t.budget
            # The thinking ended early. The ignore string goes in only where a token of budget is
            # left after it: with none left the next round would ask for zero tokens.
            fits = bool(ignore_ids) and len(t.thinking) + len(ignore_ids) < t.budget
            if t.capped or not fits:
                t.thinking_done = True
            elif len(t.thinking) < cfg.min_thinking_tokens:
                t.thinking += ignore_ids
                t.ignores += 1
                t.ignores_for_minimum += 1
            elif t.ignores - t.ignores_for_minimum < allowed:
                t.thinking += ignore_ids
                t.ignores += 1
            else:
                t.thinking_done = True
    answering = [t for t in traces if t.failed is None]
    for t in answering:
        prefixed = t.stopped_at_limit if cfg.answer_prefix_when == "length" else t.capped
        t.tail = cfg.end_of_thinking + (cfg.answer_prefix if prefixed else "")
    replies = ask([Round(tuple(t.prompt_ids + t.thinking + ids_of(tokenizer, t.tail)), cfg.answer_max_tokens, (), 0) for t in answering])
    for t, reply in zip(answering, replies):
        t.rounds += 1
        t.answer = reply
    return traces
