"""Answer checking with Math-Verify, shared by the verify and evaluate stages.

Rules, each a deliberate choice:
- Only a `\\boxed{}` final answer counts, taken after the reasoning ends (`</think>`). A generation
  with no box, or with an unclosed `<think>`, has no answer: a truncated trace is never accepted
  because its last number happens to match.
- With several boxes, the last one is the answer (math-verify alone would merge them into a set).
- The gold is wrapped in `$...$` before parsing; unwrapped golds miss many true matches.
- The gold is parsed once per problem, not once per generation.
- An exact match of the normalized strings is accepted before sympy runs: equal strings cannot be
  unequal answers, and it is the only path for text answers ("Wednesday") and MCQ letters.
- Math-Verify's timeouts use signals, which only work in a process's main thread: checking runs in
  worker processes (spawned, so no inherited threads), never in threads.

Generations are untrusted text: they are only ever parsed (latex2sympy/sympy parsing, no eval).
"""

from __future__ import annotations

import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Iterable

STATUSES = ("ok", "mismatch", "no_answer", "timeout", "gold_unparseable", "error")
_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_SPACING = re.compile(r"\\[,;:!]|\\ |\s+")
_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")


@dataclass(frozen=True)
class Check:
    status: str
    correct: bool
    extracted: str | None


def answer_region(text: str | None) -> str | None:
    """The part of a generation that may hold the final answer, or None while reasoning is open."""
    if not text:
        return None
    if "</think>" in text:
        return text.rsplit("</think>", 1)[1]
    if "<think>" in text:
        return None  # reasoning never closed: truncated
    return text


def last_boxed(text: str | None) -> str | None:
    """Content of the last \\boxed{...} (braces matched), or None."""
    if not text:
        return None
    found = None
    for m in _BOX.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
            i += 1
        if depth == 0:
            found = text[m.end() : i - 1]
    return found.strip() if found is not None else None


def extract_answer(generation: str | None) -> str | None:
    return last_boxed(answer_region(generation))


def normalize_answer(ans: str) -> str:
    s = _TEXT.sub(r"\1", ans)
    s = s.replace("\\left", "").replace("\\right", "").replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = _SPACING.sub("", s).strip("$").rstrip(".")
    return s.lower() if s.isalpha() else s


def wrap_gold(gold: str) -> str:
    g = gold.strip()
    return g if ("$" in g or "\\boxed" in g or "\\(" in g) else f"${g}$"


def check_problem(gold: str, generations: list[str | None], timeout_s: int, float_rounding: int, wrap: bool = True) -> list[Check]:
    """Check every generation of one problem against its gold (parsed once). Runs in a worker."""
    from math_verify import parse, verify
    from math_verify.errors import TimeoutException

    extracted = [extract_answer(g) for g in generations]
    gold_norm = normalize_answer(gold)
    gold_parsed = None
    gold_state = "unparsed"
    results: list[Check] = []
    for ans in extracted:
        if ans is None:
            results.append(Check("no_answer", False, None))
            continue
        if normalize_answer(ans) == gold_norm:
            results.append(Check("ok", True, ans))
            continue
        if gold_state == "unparsed":
            try:
                gold_parsed = parse(wrap_gold(gold) if wrap else gold, parsing_timeout=timeout_s, raise_on_error=True)
                # parse() also returns the raw string it could not interpret: that is not a gold.
                gold_state = "ok" if any(not isinstance(g, str) for g in gold_parsed) else "unparseable"
            except Exception:  # TimeoutException included: either way there is no gold to compare
                gold_state = "unparseable"
        if gold_state != "ok":
            results.append(Check("gold_unparseable", False, ans))
            continue
        try:
            pred = parse("\\boxed{" + ans + "}", parsing_timeout=timeout_s, raise_on_error=True)
            same = bool(pred) and verify(gold_parsed, pred, float_rounding=float_rounding, timeout_seconds=timeout_s, raise_on_error=True)
            results.append(Check("ok" if same else "mismatch", bool(same), ans))
        except TimeoutException:
            results.append(Check("timeout", False, ans))
        except Exception:
            # latex2sympy/sympy could not make sense of the answer: it is not the gold.
            results.append(Check("mismatch", False, ans))
    return results


def _check_star(args: tuple) -> list[Check]:
    return check_problem(*args)


def check_many(items: Iterable[tuple[str, list[str | None]]], workers: int, timeout_s: int, float_rounding: int, wrap: bool = True) -> list[list[Check]]:
    """check_problem over many problems in worker processes; results in input order."""
    jobs = [(gold, gens, timeout_s, float_rounding, wrap) for gold, gens in items]
    if not jobs:
        return []
    ctx = get_context("spawn")
    # max_tasks_per_child recycles workers so memory grown by sympy caches is returned.
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, max_tasks_per_child=500) as pool:
        return list(pool.map(_check_star, jobs, chunksize=max(1, min(64, len(jobs) // (workers * 4) or 1))))
