"""GRPO's reward functions: each a callable in TRL's reward-function shape (keyword arguments
`completions`, `completion_ids` and the dataset's columns; one float, or None, per completion),
built from its section of `grpo.rewards`.

Correctness is the project's verifier with verify's settings (the last boxed answer after
`</think>`; a truncated completion is never correct), run in verify's worker pool with its deadline
per answer, never math-verify in the trainer's process, where a pathological completion (a power
tower, a megabyte inside a box) would stall the step. The accuracy and cosine rewards of one batch
share one round of checking.

TRL's contract for a gold that cannot be used (its accuracy_reward: the gold does not parse): every
completion of that gold gets None, whatever the completions hold, and TRL leaves None out of the
summed reward. Unusable here: no gold, an empty one, a malformed one (braces), one math-verify cannot
parse (asked of the verifier once per gold and batch, with or without a box among the completions),
and, with `wrap_gold` and `accuracy.word_golds: unusable`, a gold of bare words (`word_gold`).

Where each formula and default comes from is in docs/design.md ("GRPO rewards") and the recipe.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from distillery.config.grpo import CosineReward, GRPOConfig, OverlongReward, RepetitionReward
from distillery.config.verify import VerifyConfig
from distillery.verification import DeadlinePool, as_integer, check_many, gold_choices, gold_problem, normalize_answer, unbox_gold

UNUSABLE_GOLD = ("gold_malformed", "gold_unparseable")


def completion_text(completion: Any) -> str:
    """A completion as TRL passes it: a string, or a conversational list of one assistant message."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content") or "" for m in completion if isinstance(m, dict))


def is_truncated(ids: Sequence[int], stop_ids: frozenset[int]) -> bool:
    """TRL's own rule (its clipped_ratio): a completion that does not end on EOS or padding was cut off."""
    return not ids or ids[-1] not in stop_ids


_WORDS = re.compile(r"[A-Za-z]+(?:[\s,'-]+[A-Za-z]+)*[.!?]?")
_WORD = re.compile(r"[A-Za-z]+")

# The answer the verifier is asked about, with a gold, to learn whether that gold parses: a box of
# text that no gold equals (word golds are unusable before they are asked). Not an empty box: a
# blank box is no answer (verify.blank_boxes), and the gold is then never parsed.
GOLD_PROBE = "\\boxed{\\text{distillery gold probe}}"


def word_gold(gold: str) -> bool:
    """A gold of bare words, not mathematics ("forty two", "Yes", "Alice, Bob", "Answer is forty
    two."): letters, spaces, commas, hyphens and apostrophes only (no digit, operator, `$`, brace or
    LaTeX command), with a word of three or more letters or a capitalised word ("No"), and not
    option letters ("ACD"). Wrapped in `$...$`, math-verify reads such a gold as a product of
    one-letter symbols, so "forty two" would equal any anagram of it; TRL's unwrapped parse finds
    nothing in it. Single letters and two-letter products ("x", "ab", "a b", "x-y") stay mathematics,
    and a gold that delimits its math (`$xyz$`) or names its text (`\\text{Yes}`) is never words."""
    g = unbox_gold(gold).strip()
    if not _WORDS.fullmatch(g) or gold_choices(g) is not None:
        return False
    return any(len(w) >= 3 or (w[0].isupper() and w[1:].islower() and len(w) >= 2) for w in _WORD.findall(g))


class Verdicts:
    """Per completion: True (correct), False (wrong or truncated) or None (the gold is unusable).
    One batch is checked once, whichever reward asks first."""

    def __init__(self, verify: VerifyConfig, workers: int, stop_ids: frozenset[int], word_golds: str = "unusable"):
        self.verify, self.workers, self.stop_ids = verify, workers, stop_ids
        self.word_golds = word_golds
        self.pool: DeadlinePool | None = None
        self._last: tuple[tuple, list[bool | None]] | None = None

    def unusable_before_checking(self, gold: str | None) -> bool:
        """A gold nothing can be compared with, decided without the verifier's workers."""
        if gold is None:
            return True
        g = unbox_gold(gold)
        if not normalize_answer(g) or gold_problem(g) is not None:
            return True
        return self.verify.wrap_gold and self.word_golds == "unusable" and word_gold(gold)

    def __call__(self, completions: list, gold: list[str], completion_ids: list[Sequence[int]]) -> list[bool | None]:
        texts = [completion_text(c) for c in completions]
        key = (tuple(texts), tuple(gold), tuple(len(i) for i in completion_ids))
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        verdict = self.judge(texts, gold, [is_truncated(ids, self.stop_ids) for ids in completion_ids])
        self._last = (key, verdict)
        return verdict

    def judge(self, texts: list[str], gold: list[str | None], truncated: list[bool]) -> list[bool | None]:
        """The verdicts of completions whose truncation is known (the difficulty stage's samples,
        by their finish reason): the accuracy reward's, whoever asks."""
        by_gold: dict[str, list[int]] = {}
        for i, g in enumerate(gold):
            if not self.unusable_before_checking(g):
                by_gold.setdefault(g, []).append(i)
        golds = list(by_gold)
        # Each gold's completions that are checked, and the probe that asks whether the gold parses
        # (a plain integer always does). TRL's None holds whatever the completions hold: a group
        # with no box, or all truncated, is still None when its gold does not parse.
        items = []
        for g in golds:
            checked = [texts[i] for i in by_gold[g] if not truncated[i]]
            probe = [] if as_integer(normalize_answer(unbox_gold(g))) is not None else [GOLD_PROBE]
            items.append((g, checked + probe))
        if self.pool is None and any(gens for _, gens in items):
            self.pool = DeadlinePool(self.verify, self.workers)
        checks = check_many(items, self.verify, pool=self.pool) if any(gens for _, gens in items) else [[] for _ in items]
        verdict: list[bool | None] = [None] * len(texts)
        for g, found in zip(golds, checks):
            usable = not any(c.status in UNUSABLE_GOLD for c in found)
            answers = iter(found)
            for i in by_gold[g]:
                if not usable:
                    verdict[i] = None
                elif truncated[i]:
                    verdict[i] = False
                else:
                    verdict[i] = next(answers).correct
        return verdict

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None


def _named(name: str, fn: Callable[..., list[float | None]]) -> Callable[..., list[float | None]]:
    fn.__name__ = name  # TRL logs rewards/<name>/mean
    return fn


def accuracy_reward(verdicts: Verdicts) -> Callable[..., list[float | None]]:
    def reward(completions: list, gold: list[str], completion_ids: list, log_metric: Any = None, **_: Any) -> list[float | None]:
        found = verdicts(completions, gold, completion_ids)
        if log_metric is not None:
            log_metric("accuracy/unusable_gold", sum(v is None for v in found) / max(1, len(found)))
        return [None if v is None else float(v) for v in found]

    return _named("accuracy", reward)


def cosine_value(correct: bool, length: int, cfg: CosineReward) -> float:
    """Yeo et al.: min + 0.5 (max - min) (1 + cos(pi * L / L_max)), progress clamped at 1."""
    progress = min(length / cfg.max_len, 1.0)
    lo, hi = (cfg.min_correct, cfg.max_correct) if correct else (cfg.max_wrong, cfg.min_wrong)
    return lo + 0.5 * (hi - lo) * (1.0 + math.cos(progress * math.pi))


def cosine_reward(verdicts: Verdicts, cfg: CosineReward) -> Callable[..., list[float | None]]:
    def reward(completions: list, gold: list[str], completion_ids: list, **_: Any) -> list[float | None]:
        out: list[float | None] = []
        for v, ids in zip(verdicts(completions, gold, completion_ids), completion_ids):
            if v is None:
                out.append(None)
            elif cfg.exceed_length is not None and is_truncated(ids, verdicts.stop_ids):
                out.append(cfg.exceed_length)
            else:
                out.append(cosine_value(v, len(ids), cfg))
        return out

    return _named("cosine", reward)


def repetition_value(units: Sequence[Any], cfg: RepetitionReward) -> float:
    n = cfg.ngram_size
    if len(units) < n:
        return 0.0
    ngrams = [tuple(units[i : i + n]) for i in range(len(units) - n + 1)]
    repeats = len(ngrams) - len(set(ngrams))
    if cfg.variant == "per_repeat":
        return repeats * cfg.penalty if repeats else 0.0
    return (repeats / len(ngrams)) * cfg.penalty if repeats else 0.0


def repetition_reward(cfg: RepetitionReward) -> Callable[..., list[float]]:
    def reward(completions: list, completion_ids: list, **_: Any) -> list[float]:
        if cfg.unit == "tokens":
            return [repetition_value(list(ids), cfg) for ids in completion_ids]
        return [repetition_value(completion_text(c).lower().split(), cfg) for c in completions]

    return _named("repetition", reward)


def overlong_value(length: int, max_len: int, cache: int) -> float:
    """DAPO's soft overlong punishment."""
    if length <= max_len - cache:
        return 0.0
    if length <= max_len:
        return (max_len - cache - length) / cache
    return -1.0


def overlong_reward(cfg: OverlongReward, max_completion_length: int) -> Callable[..., list[float]]:
    max_len = cfg.max_len or max_completion_length

    def reward(completion_ids: list, **_: Any) -> list[float]:
        return [overlong_value(len(ids), max_len, cfg.cache) for ids in completion_ids]

    return _named("overlong", reward)


def format_value(text: str) -> float:
    """1 when the completion opens with <think>, closes it once, and says something after it."""
    t = text.lstrip()
    if not t.startswith("<think>") or t.count("<think>") != 1 or t.count("</think>") != 1:
        return 0.0
    return 1.0 if t.split("</think>", 1)[1].strip() else 0.0


def format_reward() -> Callable[..., list[float]]:
    def reward(completions: list, **_: Any) -> list[float]:
        return [format_value(completion_text(c)) for c in completions]

    return _named("format", reward)


def build_rewards(cfg: GRPOConfig, verify: VerifyConfig, stop_ids: frozenset[int]) -> tuple[list[Callable], list[float], Verdicts]:
    """The reward functions that are on (weight not null), their weights, and the shared verdicts
    (close() it when training ends: it holds the verifier's worker processes)."""
    r = cfg.rewards
    verdicts = Verdicts(verify, cfg.verify_workers, stop_ids, r.accuracy.word_golds)
    made = {
        "accuracy": lambda: accuracy_reward(verdicts),
        "cosine": lambda: cosine_reward(verdicts, r.cosine),
        "repetition": lambda: repetition_reward(r.repetition),
        "overlong": lambda: overlong_reward(r.overlong, cfg.generation.max_completion_length),
        "format": format_reward,
    }
    funcs, weights = [], []
    for name, make in made.items():
        weight = getattr(r, name).weight
        if weight is not None:
            funcs.append(make())
            weights.append(float(weight))
    return funcs, weights, verdicts
