"""Answer checking with Math-Verify, shared by the verify and evaluate stages.

Rules, each a deliberate choice (settings: config.VerifyConfig, documented in docs/verify.md):
- Only a `\\boxed{}` final answer counts, taken after the reasoning ends (`</think>`). A generation
  with no box, or with an unclosed `<think>`, has no answer: a truncated trace is never accepted
  because its last number happens to match.
- Several different boxes after the reasoning (`multiple_boxes: by_gold`): where the gold has
  several parts (a set, a tuple, a union, several values) the boxes are one answer, compared with
  the gold as a whole; where the gold is one value they are a hedge (`hedged`), never accepted,
  unless every box is the gold. `last` takes the last box; `all_agree` requires every box right.
- A blank box (`\\boxed{}`, `\\boxed{\\phantom{2}}`, `\\boxed{\\quad}`: a problem's blank restated) is no
  answer (`blank_boxes: skip`): it never makes a generation `hedged`.
- Forms math-verify does not read, each decided without guessing (docs/verify.md): an angle in
  degrees against radians written with pi (`degrees`), repeating decimals (`repeating_decimals`), an
  option gold with its value (`choice_with_value`), and `i` as the imaginary unit (`imaginary_unit`).
- A gold with unbalanced braces is `gold_malformed` (a broken source row, not a wrong answer); a
  gold written as `\\boxed{...}` is its box's contents.
- The gold is wrapped in `$...$` before parsing (unwrapped golds miss many true matches) and parsed
  once per problem, not once per generation.
- An exact match of the normalized strings is accepted before sympy runs: equal strings cannot be
  unequal answers, and it is the only path for text answers ("Wednesday").
- Extraction and the exact-match fast path run in the calling process; only answers that need
  sympy go to worker processes (spawned: math-verify's timeouts use signals, which need a main
  thread). Each worker's current answer has a hard deadline: past it the worker is killed and
  replaced, the answer is a `timeout`, and the problem's other answers go on. A power tower that
  ignores math-verify's own signal costs one deadline, never a stalled shard.

Generations are untrusted text: they are only ever parsed by latex2sympy and sympy's parser, which
do not evaluate Python; answers longer than `max_answer_chars` are not parsed at all, and workers
run under an address-space limit.
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import re
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from multiprocessing.connection import Connection, wait

from distillery.config.verify import Extraction, VerifyConfig

log = logging.getLogger(__name__)

STATUSES = (
    "ok",
    "mismatch",
    "hedged",
    "no_answer",
    "answer_too_long",
    "too_complex",
    "timeout",
    "gold_malformed",
    "gold_unparseable",
    "error",
)
_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_SPACING = re.compile(r"\\[,;:!]|\\ |\s+")
_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")
WORKER_MEMORY_BYTES = 4 << 30  # a worker that wants more is a pathological answer, not a real one
MAX_TASKS_PER_WORKER = 2000  # recycle workers: sympy's caches only grow
GOLDS_KEPT = 4096  # parsed golds a worker keeps (least recently used out)


@dataclass(frozen=True)
class Check:
    status: str
    correct: bool
    extracted: str | None


# --- extraction (calling process) ----------------------------------------------------------------


def answer_region(text: str | None) -> str | None:
    """The part of a generation that may hold the final answer, or None while reasoning is open."""
    if not text:
        return None
    if "</think>" in text:
        return text.rsplit("</think>", 1)[1]
    if "<think>" in text:
        return None  # reasoning never closed: truncated
    return text


# What a blank to fill in is drawn with: \\phantom{2}, \\quad, \\hspace{1cm}, \\underline{\\qquad}, \\square,
# "( )", "\\_\\_", spacing ("\\ " is a lone "\\" once the box is stripped). A box of nothing else is
# the problem's blank restated, not an answer.
_BLANK_FILLER = re.compile(
    r"\\[hv]?phantom\s*\{[^{}]*\}|\\hspace\*?\s*\{[^{}]*\}|\\underline\s*\{|\\(?:qquad|quad|square|Box|_|,|;|:|!| |$)|[\s~{}()_.]"
)
BLANK_MAX_CHARS = 64  # a longer box is never only filler


def is_blank(box: str) -> bool:
    """A box with no answer in it: empty, or only spacing and blank-drawing commands (`\\boxed{\\phantom{2}}`)."""
    return len(box) <= BLANK_MAX_CHARS and not _BLANK_FILLER.sub("", box)


def _boxes(text: str | None, skip_blank: bool = True) -> list[tuple[int, str]]:
    """(start, contents) of every complete \\boxed{...} / \\fbox{...} (braces matched), in order;
    blank boxes (is_blank) left out unless `skip_blank` is false."""
    if not text:
        return []
    found = []
    for m in _BOX.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            c = text[i]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            i += 1
        if depth == 0:
            box = text[m.end() : i - 1].strip()
            if not (skip_blank and is_blank(box)):
                found.append((m.start(), box))
    return found


def boxed_contents(text: str | None, skip_blank: bool = True) -> list[str]:
    """Contents of every complete \\boxed{...} / \\fbox{...} (braces matched), in order; blank
    boxes left out unless `skip_blank` is false."""
    return [box for _, box in _boxes(text, skip_blank)]


def last_boxed(text: str | None) -> str | None:
    boxes = boxed_contents(text)
    return boxes[-1] if boxes else None


def extract_answer(generation: str | None) -> str | None:
    return last_boxed(answer_region(generation))


# "x = " or "x_1 = " just before a box ("$x = \\boxed{1}$ or $x = \\boxed{-3}$"); not "2x = ".
_NAMED_BEFORE_BOX = re.compile(r"(?<![\w\\])([a-zA-Z](?:_\{?\w{1,3}\}?)?)\s*=\s*(?:\$|\\\(|\\\[)?\s*$")


def named_boxes(text: str | None, skip_blank: bool = True) -> list[str]:
    """Every box, with the unknown it is assigned to where the text says so: `x=1` for `x = \\boxed{1}`.
    Several boxes lose their names otherwise, and a system's `x = 3, y = 2` would read as `3, 2`."""
    out = []
    for start, box in _boxes(text, skip_blank):
        named = _NAMED_BEFORE_BOX.search(text[max(0, start - 24) : start])
        out.append(f"{named.group(1)}={box}" if named and "=" not in box else box)
    return out


def extract_answers(generation: str | None, multiple_boxes: str = "by_gold", skip_blank: bool = True) -> list[str | tuple[str, ...]]:
    """The answers to check: one per box for all_agree; else one, which is a tuple of boxes where
    by_gold finds several different ones. Blank boxes are no answers unless `skip_blank` is false."""
    region = answer_region(generation)
    boxes = boxed_contents(region, skip_blank)
    if multiple_boxes == "all_agree":
        return boxes
    if multiple_boxes == "last" or len({normalize_answer(b) for b in boxes}) <= 1:
        return boxes[-1:]
    return [tuple(named_boxes(region, skip_blank))]


def shown(answer: str | tuple[str, ...]) -> str:
    return "; ".join(answer) if isinstance(answer, tuple) else answer


def normalize_answer(ans: str) -> str:
    s = _TEXT.sub(r"\1", ans)
    s = s.replace("\\left", "").replace("\\right", "").replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = _SPACING.sub("", s).strip("$").rstrip(".")
    return s.lower() if s.isalpha() else s


_MATH_DELIMITER = re.compile(r"(?<!\\)\$|\\boxed|\\\(|\\\[")  # an unescaped $, \boxed, \( or \[


_ESCAPED_BRACE = re.compile(r"\\[{}]")  # \{ and \} are set braces, not grouping


def braces_balanced(text: str) -> bool:
    """Every unescaped `{` closed, in order (`\\{` and `\\}` are set braces, not grouping)."""
    depth = 0
    for c in _ESCAPED_BRACE.sub("", text):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def gold_problem(gold: str) -> str | None:
    """Why a gold cannot be compared with anything, as a status, or None when it can."""
    return "gold_malformed" if not braces_balanced(gold) else None


_BOXED_GOLD = re.compile(r"\s*\$*\s*\\(?:boxed|fbox)\s*\{(.*)\}\s*\$*\s*\.?\s*", re.S)


def unbox_gold(gold: str) -> str:
    """A gold stored with its box (`\\boxed{5}`, `$\\boxed{5}$`) is the box's contents."""
    m = _BOXED_GOLD.fullmatch(gold)
    return m.group(1).strip() if m and braces_balanced(m.group(1)) else gold


def wrap_gold(gold: str) -> str:
    """`$gold$` unless the gold already delimits its math; `\\$4.50` is money, not a delimiter."""
    g = gold.strip()
    return g if _MATH_DELIMITER.search(g) else f"${g}$"


# Spellings latex2sympy does not know, rewritten to ones it does (both sides).
_SPELLINGS = (("\\varnothing", "\\emptyset"), ("°", "^{\\circ}"))
# A repeating decimal: 0.1\overline{6}, 0.\overline{142857}, 0.\dot{3} (one repeating digit).
_REPEATING = re.compile(r"(?<![\d.])(\d*)\.(\d*)\s*(?:\\overline\s*\{\s*(\d+)\s*\}|\\dot\s*\{?\s*(\d)\s*\}?)(?![\d.])")
# The imaginary unit written upright (\mathrm{i}, as Chinese sources do): math-verify drops \mathrm{...} as a unit.
_UPRIGHT_I = re.compile(r"\\(?:mathrm|text|rm)\s*\{\s*i\s*\}|\{\\rm\s+i\}")


def repeating_fraction(whole: str, fixed: str, repeat: str) -> Fraction:
    """The exact value of whole.fixed(repeat repeating): 0.1(6) is 1/6, 0.(142857) is 1/7."""
    return int(whole or 0) + Fraction(int(fixed or 0), 10 ** len(fixed)) + Fraction(int(repeat), 10 ** len(fixed) * (10 ** len(repeat) - 1))


def _repeating_as_fraction(m: re.Match) -> str:
    value = repeating_fraction(m.group(1), m.group(2), m.group(3) or m.group(4))
    return f"{{\\frac{{{value.numerator}}}{{{value.denominator}}}}}"


def respell(text: str, repeating_decimals: bool = False, imaginary_unit: bool = False) -> str:
    """The text in spellings latex2sympy reads; with `repeating_decimals`, a repeating decimal as its
    exact fraction; with `imaginary_unit`, an upright \\mathrm{i} as i."""
    for old, new in _SPELLINGS:
        text = text.replace(old, new)
    if repeating_decimals and ("overline" in text or "dot" in text):
        text = _REPEATING.sub(_repeating_as_fraction, text)
    if imaginary_unit and "i" in text:
        text = _UPRIGHT_I.sub("i", text)
    return text


# An angle in degrees: a number (or \frac of two) with a degree sign, optionally named ("\angle B = 45^\circ").
_DEGREE_SIGN = r"(?:\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\degree|\\text\s*\{\s*degrees?\s*\}|\\mathrm\s*\{\s*degrees?\s*\})"
_HAS_DEGREE = re.compile(_DEGREE_SIGN + r"|°|\bdegrees?\b")
_ANGLE_IN_DEGREES = re.compile(
    r"\s*\$?\s*(?:(?:\\angle\s*)?[A-Za-z]{1,3}\s*=\s*)?"
    r"([+-]?\s*(?:\d+(?:\.\d+)?|\.\d+|\\[dt]?frac\s*\{\s*\d+\s*\}\s*\{\s*\d+\s*\}))"
    r"\s*" + _DEGREE_SIGN + r"\s*\$?\s*\.?\s*"
)
_PI = re.compile(r"\\pi\b|π")


def degrees_as_radians(text: str) -> str | None:
    """A lone angle in degrees (`60^\\circ`, `\\angle B = 45^\\circ`) written in radians, or None."""
    m = _ANGLE_IN_DEGREES.fullmatch(respell(text))
    if not m:
        return None
    number = m.group(1).replace(" ", "").replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    return f"{{{number}}}\\cdot\\frac{{\\pi}}{{180}}"


def degree_pair(gold: str, answer: str) -> tuple[str, str] | None:
    """(gold, answer) with the side in degrees rewritten in radians, where one side is a lone angle in
    degrees and the other a radian measure (it has \\pi and no degree sign); else None. A number with
    no degree sign is never taken for degrees: `45` is not `\\frac{\\pi}{4}`."""
    if "circ" not in gold + answer and "°" not in gold + answer and "degree" not in gold + answer:
        return None
    gold_rad, answer_rad = degrees_as_radians(gold), degrees_as_radians(answer)
    if gold_rad and not answer_rad and _PI.search(answer) and not _HAS_DEGREE.search(answer):
        return gold_rad, answer
    if answer_rad and not gold_rad and _PI.search(gold) and not _HAS_DEGREE.search(gold):
        return gold, answer_rad
    return None


def _free_after(expr) -> set:
    """Free symbols of a parsed value, less the unknown an equation names (`z = 1 - i`)."""
    from sympy import Eq

    free = set(expr.free_symbols)
    if isinstance(expr, Eq) and expr.lhs.is_Symbol:
        free.discard(expr.lhs)
    return free


def with_imaginary_unit(gold: list, pred: list) -> tuple[list, list]:
    """Both parsed sides with the symbol `i` read as the imaginary unit, where a side has `i` and
    neither has any other unknown once it is read so (a complex constant, possibly named: z = 1 - i);
    else both unchanged. latex2sympy reads `i` as a plain symbol, so (1+i)^2 was never 2i."""
    from sympy import Basic, Eq, I

    def has_i(values: list) -> bool:
        return any(isinstance(v, Basic) and any(s.name == "i" for s in v.free_symbols) for v in values)

    if not (has_i(gold) or has_i(pred)):
        return gold, pred

    def sub(values: list) -> list:
        out = []
        for v in values:
            if isinstance(v, Eq) and v.lhs.is_Symbol:  # "i = 5" names an unknown i; only the value is read
                v = Eq(v.lhs, v.rhs.xreplace({s: I for s in v.rhs.free_symbols if s.name == "i"}), evaluate=False)
            elif isinstance(v, Basic):
                v = v.xreplace({s: I for s in v.free_symbols if s.name == "i"})
            out.append(v)
        return out

    new_gold, new_pred = sub(gold), sub(pred)
    if any(isinstance(v, Basic) and _free_after(v) for v in (*new_gold, *new_pred)):
        return gold, pred  # another unknown beside i: i may be a variable too; never guess
    return new_gold, new_pred


# An option letter with its value: "\textbf{(C) } 7", "(C)~7", "\text{(B) } 12" (after unwrapping \text{}).
# The value is set apart by spacing and does not start with an operator: "(C)+1" and "(C) - 1" are
# expressions in a letter, not an option; "(A) -1" is option A, minus one.
_CHOICE_AND_VALUE = re.compile(
    r"\s*\$?\s*\(\s*([A-F])\s*\)\s*(?:(?:\\[,;:! ]|\\q?quad|~|:|\s)+(?![+*/^=<>!]|-\s|\\(?:cdot|times|div)\b)(.+?))?\s*\$?\s*\.?\s*", re.S
)


@dataclass(frozen=True)
class Choice:
    letter: str
    value: str | None  # None: the letter alone


def choice_with_value(text: str) -> Choice | None:
    """The option letter and its value an answer or gold gives (`\\textbf{(C) } 7`: C and 7), or None
    where it is not written that way. A bare letter ("C", "(C)") has value None."""
    if "(" not in text:
        letters = choice_letters(text)
        return Choice(next(iter(letters)), None) if letters and len(letters) == 1 else None
    m = _CHOICE_AND_VALUE.fullmatch(_CHOICE_WRAP.sub(r"\1", text))
    if not m:
        return None
    value = (m.group(2) or "").strip()
    if value and (choice_letters(value) or not braces_balanced(value)):
        return None  # "(A)(B)": two letters; a stray brace: not a value
    return Choice(m.group(1), value or None)


# --- sympy comparison (worker processes) ----------------------------------------------------------


def extraction_configs(e: Extraction) -> list:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, StringExtractionConfig
    from math_verify.parser import NormalizationConfig

    out: list = []
    if e.latex.enabled:
        lx = e.latex
        norm = NormalizationConfig(
            basic_latex=lx.basic_latex,
            units=lx.units,
            malformed_operators=lx.malformed_operators,
            nits=lx.nits,
            boxed=lx.boxed,
            equations=lx.equations,
        )
        out.append(
            LatexExtractionConfig(
                boxed_match_priority=lx.boxed_match_priority,
                try_extract_without_anchor=lx.try_extract_without_anchor,
                normalization_config=norm,
            )
        )
    if e.expr:
        out.append(ExprExtractionConfig(try_extract_without_anchor=e.expr_without_anchor))
    if e.strings:
        out.append(StringExtractionConfig(strings=tuple(e.strings)))
    return out


class Comparer:
    """math-verify with one VerifyConfig. Each gold is parsed once per worker: golds repeat across
    problems ("\\frac{1}{2}", "2\\sqrt{2}"), and a cold LaTeX parse costs ~8 ms, more than the answer's."""

    def __init__(self, cfg: VerifyConfig):
        from math_verify import parse, verify

        self.cfg, self._parse, self._verify = cfg, parse, verify
        self.gold_cfg = extraction_configs(cfg.gold)
        self.pred_cfg = extraction_configs(cfg.prediction)
        self._golds: OrderedDict[str, list | None] = OrderedDict()

    def parse_gold(self, gold: str) -> list | None:
        """The parsed gold, or None when math-verify can only return it as raw text."""
        if gold in self._golds:
            self._golds.move_to_end(gold)
            return self._golds[gold]
        parsed_gold = None
        e = self.cfg.gold
        try:
            text = self.respell(unbox_gold(gold))
            parsed = self._parse(
                wrap_gold(text) if self.cfg.wrap_gold else text,
                extraction_config=self.gold_cfg,
                extraction_mode=e.extraction_mode,
                fallback_mode=e.fallback_mode,
                parsing_timeout=self.cfg.timeout_s,
                raise_on_error=True,
            )
            if any(not isinstance(g, str) for g in parsed):
                parsed_gold = parsed
        except Exception:  # a timeout included: either way there is no gold to compare with
            pass
        self._golds[gold] = parsed_gold
        if len(self._golds) > GOLDS_KEPT:
            self._golds.popitem(last=False)
        return parsed_gold

    def respell(self, text: str) -> str:
        return respell(text, self.cfg.repeating_decimals, self.cfg.imaginary_unit)

    def value_gold(self, gold: str) -> str:
        """The gold compared by value: an option gold's value (`\\textbf{(C) } 7`: 7) under choice_with_value."""
        if self.cfg.choice_with_value:
            choice = choice_with_value(unbox_gold(gold))
            if choice is not None and choice.value is not None:
                return choice.value
        return gold

    def compare(self, gold: str, answer: str) -> str:
        """One answer against the gold: by option letter where either names one (choice_with_value),
        else by value, an angle in degrees also against the same angle in radians (degrees)."""
        c = self.cfg
        if c.choice_with_value:
            gold_choice = choice_with_value(unbox_gold(gold))
            if gold_choice is not None:
                answer_choice = choice_with_value(answer)
                if answer_choice is not None:
                    if answer_choice.letter != gold_choice.letter:
                        return "mismatch"
                    if answer_choice.value is None or gold_choice.value is None:
                        return "ok"  # the right letter; a value beside a letter-only gold cannot be checked
                    answer = answer_choice.value
                if gold_choice.value is None:
                    return "mismatch"  # a letter gold is answered by its letter only
                gold = gold_choice.value
        status = self.compare_values(gold, answer)
        if status == "mismatch" and c.degrees == "convert":
            pair = degree_pair(unbox_gold(gold), answer)
            if pair is not None:
                status = self.compare_values(*pair)
        return status

    def compare_values(self, gold: str, answer: str) -> str:
        from math_verify.errors import TimeoutException

        gold_parsed = self.parse_gold(gold)
        if gold_parsed is None:
            return "gold_unparseable"
        c, e = self.cfg, self.cfg.prediction
        try:
            # A sentence's full stop inside the box ("1,000.") is not part of the number.
            pred = self._parse(
                "\\boxed{" + self.respell(answer).rstrip().rstrip(".") + "}",
                extraction_config=self.pred_cfg,
                extraction_mode=e.extraction_mode,
                fallback_mode=e.fallback_mode,
                parsing_timeout=c.timeout_s,
                raise_on_error=True,
            )
            if pred and c.imaginary_unit:
                gold_parsed, pred = with_imaginary_unit(gold_parsed, pred)
            same = bool(pred) and self._verify(
                gold_parsed,
                pred,
                float_rounding=c.float_rounding,
                numeric_precision=c.numeric_precision,
                strict=c.strict,
                allow_set_relation_comp=c.allow_set_relation_comp,
                timeout_seconds=c.timeout_s,
                raise_on_error=True,
            )
        except TimeoutException:
            return "timeout"
        except Exception:
            return "mismatch"  # latex2sympy/sympy could not make sense of the answer: it is not the gold
        return "ok" if same else "mismatch"

    def joiner(self, gold: str) -> str | None:
        """How several boxes join into one answer for this gold: None where the gold is one value."""
        from sympy import FiniteSet, Interval, Tuple, Union

        parsed = self.parse_gold(self.value_gold(gold))
        value = parsed[0] if parsed else None
        if isinstance(value, Union):
            return " \\cup "
        if isinstance(value, (FiniteSet, Tuple)) and len(value) > 1:
            return ", "
        if isinstance(value, Interval) and value.left_open and value.right_open and value.measure.is_finite:
            return ", "  # "(1, 2)" is an ordered pair as often as an open interval
        return None

    def compare_boxes(self, gold: str, boxes: tuple[str, ...]) -> str:
        """Several different boxes. A gold of several parts: the boxes joined are the answer (or a
        final box that states the whole of it). A gold of one value: a hedge unless all are the gold."""
        if self.parse_gold(self.value_gold(gold)) is None:
            return "gold_unparseable"
        joiner = self.joiner(gold)
        if joiner is None:
            exact = normalize_answer(unbox_gold(gold)) if self.cfg.exact_match_first else None
            statuses = ["ok" if normalize_answer(box) == exact else self.compare(gold, box) for box in boxes]
            if all(s == "ok" for s in statuses):
                return "ok"
            return "hedged" if "ok" in statuses else statuses[-1]
        whole = self.compare(gold, joiner.join(boxes))
        return "ok" if whole == "ok" or self.compare(gold, boxes[-1]) == "ok" else whole

    def compare_answer(self, gold: str, answer: str | tuple[str, ...]) -> str:
        return self.compare_boxes(gold, answer) if isinstance(answer, tuple) else self.compare(gold, answer)


def _worker(conn: Connection, cfg: VerifyConfig) -> None:
    """Receives (task id, gold, answers); sends (task id, index, status) per answer, then (task id, None, None)."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, WORKER_MEMORY_BYTES))
    except (ImportError, ValueError, OSError):
        pass
    comparer = Comparer(cfg)
    comparer.compare("1", "\\frac{1}{2}")  # loads the LaTeX parser now, not inside the first answer's deadline
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        task_id, gold, answers = msg
        for i, ans in enumerate(answers):
            try:
                status = comparer.compare_answer(gold, ans)
            except MemoryError:
                status = "error"
            conn.send((task_id, i, status))
        conn.send((task_id, None, None))


# --- the pool with a hard deadline per answer ----------------------------------------------------


@dataclass
class _Task:
    id: int
    problem: int  # index into the caller's items
    gold: str
    answers: list[tuple[int, str | tuple[str, ...]]]  # (slot in the problem's results, answer or several boxes)


@dataclass
class _Worker:
    proc: mp.process.BaseProcess
    conn: Connection
    task: _Task | None = None
    position: int = 0  # index in task.answers of the answer being compared
    since: float = 0.0  # when that answer started
    tasks_done: int = 0


@dataclass
class PoolStats:
    tasks: int = 0
    killed: int = 0  # workers killed at the deadline
    workers_started: int = 0
    slowest_item_s: float = 0.0
    per_worker_busy_s: list[float] = field(default_factory=list)


class DeadlinePool:
    """Workers that compare answers to golds; an answer past `item_deadline_s` kills its worker."""

    def __init__(self, cfg: VerifyConfig, workers: int):
        self.cfg, self.size = cfg, max(1, workers)
        self.ctx = mp.get_context("spawn")
        self.workers: list[_Worker] = []
        self.stats = PoolStats()
        self.deaths_at_start = 0

    def _start(self) -> _Worker:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(child, self.cfg), daemon=True, name="verify-worker")
        proc.start()
        child.close()
        self.stats.workers_started += 1
        return _Worker(proc, parent)

    @staticmethod
    def _kill(w: _Worker) -> None:
        w.proc.kill()
        w.proc.join(5)
        w.conn.close()

    def run(self, tasks: list[_Task], keep_open: bool = False) -> dict[tuple[int, int], str]:
        """Status per (problem, slot) for every answer of every task. `keep_open`: the workers stay
        up for the next call (a trainer's reward calls them every step); `close()` stops them."""
        results: dict[tuple[int, int], str] = {}
        finished = False
        queue = deque(tasks)
        self.stats.tasks += len(tasks)
        deadline_s = self.cfg.item_deadline_s
        try:
            while queue or any(w.task for w in self.workers):
                # Give idle workers work, starting workers up to the pool size as needed.
                while queue and (len(self.workers) < self.size or any(w.task is None for w in self.workers)):
                    w = next((w for w in self.workers if w.task is None), None) or self._add()
                    self._assign(w, queue.popleft())
                busy = [w for w in self.workers if w.task]
                now = time.monotonic()
                timeout = max(0.0, min(w.since + deadline_s for w in busy) - now) if busy else None
                ready = wait([w.conn for w in busy], timeout=timeout)
                for w in busy:
                    if w.conn in ready:
                        self._receive(w, results, queue)
                now = time.monotonic()
                for w in list(self.workers):
                    if w.task and now - w.since > deadline_s:
                        self._expire(w, results, queue)
            finished = True
        finally:
            if not (keep_open and finished):
                self.close()
        return results

    def _add(self) -> _Worker:
        w = self._start()
        self.workers.append(w)
        return w

    def _assign(self, w: _Worker, task: _Task) -> None:
        w.task, w.position, w.since = task, 0, time.monotonic()
        w.conn.send((task.id, task.gold, [a for _, a in task.answers]))

    def _receive(self, w: _Worker, results: dict, queue: deque) -> None:
        try:
            task_id, i, status = w.conn.recv()
        except (EOFError, OSError):  # the worker died (e.g. the memory limit): its answer errs, the rest go on
            if w.tasks_done == 0 and w.position == 0:
                self.deaths_at_start += 1
                if self.deaths_at_start >= 3:
                    raise RuntimeError(
                        f"verify workers die before checking anything (exit code {w.proc.exitcode}); see the log above"
                    ) from None
            self._replace(w, results, queue, "error")
            return
        now = time.monotonic()
        self.stats.slowest_item_s = max(self.stats.slowest_item_s, now - w.since)
        task = w.task
        if i is None:
            w.task = None
            w.tasks_done += 1
            if w.tasks_done >= MAX_TASKS_PER_WORKER:
                self._retire(w)
            return
        results[(task.problem, task.answers[i][0])] = status
        w.position, w.since = i + 1, now

    def _expire(self, w: _Worker, results: dict, queue: deque) -> None:
        self.stats.killed += 1
        task = w.task
        log.warning(
            "verify: an answer passed the %.0fs deadline; its worker was killed (answer starts %r)",
            self.cfg.item_deadline_s,
            shown(task.answers[w.position][1])[:80],
        )
        self._replace(w, results, queue, "timeout")

    def _replace(self, w: _Worker, results: dict, queue: deque, status: str) -> None:
        task, pos = w.task, w.position
        self._kill(w)
        self.workers.remove(w)
        self.stats.slowest_item_s = max(self.stats.slowest_item_s, time.monotonic() - w.since)
        if task is not None and pos < len(task.answers):
            results[(task.problem, task.answers[pos][0])] = status
            rest = task.answers[pos + 1 :]
            if rest:  # the problem's other answers go on, in a fresh worker
                queue.appendleft(_Task(task.id, task.problem, task.gold, rest))

    def _retire(self, w: _Worker) -> None:
        try:
            w.conn.send(None)
        except OSError:
            pass
        w.proc.join(5)
        if w.proc.is_alive():
            w.proc.kill()
        w.conn.close()
        self.workers.remove(w)

    def close(self) -> None:
        for w in list(self.workers):
            if w.task is None:
                self._retire(w)
            else:
                self._kill(w)
                self.workers.remove(w)


# --- the public entry points ---------------------------------------------------------------------


_INTEGER = re.compile(r"[+-]?\d{1,100}(?:\.0{1,20})?")  # "12.0" is the integer 12, as sympy decides too


def as_integer(norm: str) -> int | None:
    return int(norm.split(".", 1)[0]) if _INTEGER.fullmatch(norm) else None


# Answers sympy would spend its whole timeout (or, in one C call, longer) evaluating: an exponent of
# 5+ digits, a power tower three high, a^{b^c} whose outer exponent b^c passes 10^5, a factorial of
# a 5+ digit number or of a power with a 2+ digit exponent. No competition answer is written that
# way; each would be a `timeout` after `timeout_s` of CPU.
_TOO_COMPLEX = re.compile(
    r"\^\s*\{?\s*[+-]?\d{5,}"
    r"|\^\s*\{[^{}]*\^\s*\{[^{}]*\^"
    r"|(?:\d{5,}|\^\s*\{?\s*\d{2,}\s*\}?\s*\))\s*!"
)
_TOWER = re.compile(r"\^\s*\{\s*(\d+)\s*\^\s*\{?\s*(\d+)")


def too_complex(answer: str) -> bool:
    if _TOO_COMPLEX.search(answer):
        return True
    return any(int(c) * math.log10(max(int(b), 1)) > 5 for b, c in _TOWER.findall(answer))


_CHOICE_WRAP = re.compile(r"\\(?:text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}")
_CHOICE_NOISE = re.compile(r"\\[,;: ]|\band\b|[\s,;()$]")
_CHOICES = re.compile(r"[A-F]{1,6}")


def _letters_written(answer: str) -> str:
    return _CHOICE_NOISE.sub("", _CHOICE_WRAP.sub(r"\1", answer))


def choice_letters(answer: str) -> frozenset[str] | None:
    """The option letters an answer names ("B", "(B)", "\\textbf{(A)}", "A, C", "ACD"), or None."""
    letters = _letters_written(answer)
    if not _CHOICES.fullmatch(letters) or len(set(letters)) != len(letters):
        return None
    return frozenset(letters)


def gold_choices(gold: str) -> frozenset[str] | None:
    """A multiple-choice gold's letters; several only when written in order ("ACD"), as answer keys are."""
    letters = choice_letters(gold)
    return letters if letters and "".join(sorted(letters)) == _letters_written(gold) else None


def known_status(
    answer: str | tuple[str, ...],
    gold_norm: str,
    gold_int: int | None,
    choices,
    cfg: VerifyConfig,
    gold_has_value: bool = False,
) -> str | None:
    """A status decided without sympy, or None.

    An answer too long to parse; equal normalized strings (ok); plain integers compared as integers
    ("025" is 25), exactly what sympy would decide; option letters compared as sets of letters (an
    option letter with its value, under choice_with_value, by its letter where the gold gives no
    value or the letter is wrong); an answer too complex to evaluate (a power tower), which sympy
    would only time out on."""
    boxes = answer if isinstance(answer, tuple) else (answer,)
    if any(len(b) > cfg.max_answer_chars for b in boxes):
        return "answer_too_long"
    norms = [normalize_answer(b) for b in boxes]
    several = isinstance(answer, tuple)
    if cfg.exact_match_first and not several and norms[0] == gold_norm:
        return "ok"
    values = [as_integer(n) for n in norms]
    if gold_int is not None and None not in values:
        right = [v == gold_int for v in values]
        return "ok" if all(right) else "hedged" if any(right) else "mismatch"
    if cfg.exact_match_first and choices is not None:
        named = [choice_letters(b) for b in boxes]
        if all(named):
            union = frozenset().union(*named)
            if union == choices:
                return "ok"
            return "hedged" if several and len(choices) == 1 and choices <= union else "mismatch"
        if cfg.choice_with_value and not several:
            answer_choice = choice_with_value(boxes[0])
            if answer_choice is not None and answer_choice.value is not None:
                if frozenset(answer_choice.letter) != choices:
                    return "mismatch"
                if not gold_has_value:
                    return "ok"
    if cfg.precheck_complexity and any(too_complex(b) for b in boxes):
        return "too_complex"
    return None


def plan_checks(
    gold: str, generations: list[str | None], cfg: VerifyConfig
) -> tuple[list[list[str | tuple[str, ...]]], list[list[str | None]]]:
    """Per generation: its answers (a tuple of boxes is one answer), and per answer a status
    already known without sympy (or None)."""
    answers_of, known_of = [], []
    gold = unbox_gold(gold)
    choices = gold_choices(gold)
    # An option gold with its value ("\\textbf{(C) } 7"): its letter decides letters, its value the rest.
    gold_choice = choice_with_value(gold) if cfg.choice_with_value and choices is None and "(" in gold else None
    value_gold = gold
    if gold_choice is not None and gold_choice.value is not None:
        choices, value_gold = frozenset(gold_choice.letter), gold_choice.value
    gold_norm = normalize_answer(value_gold)
    gold_int = as_integer(gold_norm) if cfg.exact_match_first else None
    broken = gold_problem(gold)  # the same for every answer: nothing is compared with a broken gold
    has_value = value_gold is not gold
    for g in generations:
        answers = extract_answers(g, cfg.multiple_boxes, cfg.blank_boxes == "skip")
        answers_of.append(answers)
        known_of.append([broken or known_status(a, gold_norm, gold_int, choices, cfg, has_value) for a in answers])
    return answers_of, known_of


def combine(answers: list[str | tuple[str, ...]], statuses: list[str]) -> Check:
    """One generation's Check from the statuses of its answers (one, unless all_agree)."""
    if not answers:
        return Check("no_answer", False, None)
    bad = [s for s in statuses if s != "ok"]
    return Check(bad[0] if bad else "ok", not bad, shown(answers[-1]))


def check_many(
    items: Iterable[tuple[str, list[str | None]]],
    cfg: VerifyConfig,
    workers: int | None = None,
    stats: PoolStats | None = None,
    pool: DeadlinePool | None = None,
) -> list[list[Check]]:
    """Check every generation of every (gold, generations) item; results in input order. With
    `pool`, its workers do the checking and stay up afterwards."""
    items = list(items)
    plans = [plan_checks(gold, gens, cfg) for gold, gens in items]
    tasks: list[_Task] = []
    for p, ((gold, _), (answers_of, known_of)) in enumerate(zip(items, plans)):
        todo = [
            ((g, j), a)
            for g, (answers, known) in enumerate(zip(answers_of, known_of))
            for j, (a, k) in enumerate(zip(answers, known))
            if k is None
        ]
        if todo:
            # A problem's generations often agree on an answer: each distinct one is compared once.
            distinct: dict[str | tuple[str, ...], int] = {}
            slots = {slot: distinct.setdefault(a, len(distinct)) for slot, a in todo}
            tasks.append(_Task(len(tasks), p, gold, [(n, a) for a, n in distinct.items()]))
            plans[p] = (answers_of, known_of, slots)
        else:
            plans[p] = (answers_of, known_of, {})
    results: dict[tuple[int, int], str] = {}
    if tasks and pool is not None:
        results = pool.run(tasks, keep_open=True)
    elif tasks:
        pool = DeadlinePool(cfg, min(workers or cfg.workers, len(tasks)))
        results = pool.run(tasks)
        if stats is not None:
            stats.__dict__.update(pool.stats.__dict__)
    out: list[list[Check]] = []
    for p, (answers_of, known_of, slots) in enumerate(plans):
        checks = []
        for g, (answers, known) in enumerate(zip(answers_of, known_of)):
            statuses = [k if k is not None else results[(p, slots[(g, j)])] for j, k in enumerate(known)]
            checks.append(combine(answers, statuses))
        out.append(checks)
    return out


def check_problem(
    gold: str,
    generations: list[str | None],
    timeout_s: int = 5,
    float_rounding: int = 6,
    wrap: bool = True,
    cfg: VerifyConfig | None = None,
) -> list[Check]:
    """Every generation of one problem, in this process (no deadline: for tests and small jobs)."""
    cfg = cfg or VerifyConfig(timeout_s=timeout_s, float_rounding=float_rounding, wrap_gold=wrap)
    answers_of, known_of = plan_checks(gold, generations, cfg)
    comparer = None
    out = []
    for answers, known in zip(answers_of, known_of):
        statuses = []
        for a, k in zip(answers, known):
            if k is None:
                comparer = comparer or Comparer(cfg)
                k = comparer.compare_answer(gold, a)
            statuses.append(k)
        out.append(combine(answers, statuses))
    return out
