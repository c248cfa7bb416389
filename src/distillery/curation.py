"""curation: cut a small training subset from a built dataset (OpenR1-Math-220k schema), s1K-style or
LIMO-style, with every input row's fate explained by one reason.

Pure selection logic (polars + stdlib): no models, no files. `select` returns one row per input row:

    uuid, selected, reason, domain, trace_words, pass_rate, correct, generations, score, draw_order, phase

where `reason` is "selected" or the first filter the row failed, in this order (REASONS):

    missing_field > image_reference > odd_format    quality (both methods)
    > bold_digit                                    quality (s1k, drop_bold_digit)
    > too_easy | unsolved                           difficulty
    > not_drawn (s1k) | not_selected (limo)         the final cut

so rows in = selected + the sum of every other reason, and `stage_sizes` reads the funnel off it.

s1K (Muennighoff et al. 2025, "s1: Simple test-time scaling", arXiv 2501.19393, section 2.2 and
Algorithm 1 in the appendix): quality filters (API errors; string patterns of formatting issues such
as ASCII-art diagrams, non-existent image references, inconsistent question numbering), then
difficulty (drop questions that either Qwen2.5-7B-Instruct or Qwen2.5-32B-Instruct solved, graded by
Claude 3.5 Sonnet), then diversity: pick a domain, sample a question in it with weight 2^-rank where
rank orders the domain's questions by thinking length (longest first), remove it, drop exhausted
domains, repeat until 1,000. The paper's Algorithm 1 picks every domain uniformly; s1's code
(data/filter.ipynb, "Powerlaw length sampling") does so only while fewer than 700 rows are selected,
then picks domains by the benchmark domain mix: the domain counts of the pool's AIME and GPQA
questions, GPQA's scaled to half of AIME's total. Here: `uniform_share` (0.7: 700 of 1,000) of
`size` is drawn with uniform domains, the rest by the domain counts of the candidates from
`mix_sources` (source column -> weight of that source's total; s1: AIME 1, GPQA 0.5; a math corpus
has no GPQA, so the default is NuminaMath's amc_aime alone). Each drawn row records its `phase`
(uniform or weighted). Where no domain of the mix has candidates left (s1's code would fail), the
draw goes on uniformly and the row says `uniform`. s1's code also drops problems with a bold
token holding a digit (its regex BOLD_DIGIT_RE, kept exactly: the digit may be anywhere later on
the line); here reason `bold_digit` (s1k's `drop_bold_digit`). What differs here:
  - difficulty: the teacher's own pass rate over the row's n generations stands in for the two weak
    models (too_easy when pass_rate > max_pass_rate). A column of weak-model verdicts could replace
    it later; nothing here depends on where the verdicts come from.
  - domains: a column of the dataset (default problem_type, a handful of values in OpenR1) instead
    of s1's Claude-assigned Mathematics Subject Classification (50 domains in s1K).
  - length: whitespace-separated words of the thinking, a tokenizer-free proxy for s1's Qwen2.5
    token counts (ranks, which are all the draw uses, barely move between the two).
  - s1K's first 384 rows (all correct AIME/GPQA traces, and MATH ones thinking > 5,600 tokens) were
    added by hand before the draw (and count towards its 700); there is no such step here: every row
    goes through the draw.
  - the mix: s1 rounded GPQA's scaled counts down to integers; here the weights stay exact.
  - "inconsistent question numbering" (s1's code: "p1." to "p999." anywhere) has no check here.

LIMO (Ye et al. 2025, "LIMO: Less is More for Reasoning", arXiv 2502.03387, section 3.1): keep problems
that DeepSeek-R1-Distill-Qwen-32B solved in only 1-3 of 32 attempts (after a coarse filter dropping
what Qwen2.5-Math-7B-Instruct solved within 4), then score each candidate chain with rules (v3 of the
paper: elaborated reasoning = length 30%, self-verification words such as "check"/"verify" 20%,
exploratory words such as "perhaps"/"might" 25%, adaptive granularity = connectives such as
"therefore"/"since" 25%, keyword frequencies normalized by length), keep each problem's best chain and
the top 800 problems (817 in the v1 release). What differs here:
  - difficulty: min_correct..max_correct of the row's own n teacher generations (config; 1-3 of k is
    the paper's, with k = 32 from a separate solver model).
  - one chain per problem, the one build chose (messages[-1]); LIMO scored several per problem.
  - weights: v3 of the paper publishes the four shares (30/20/25/25, kept as LIMO_PAPER_WEIGHTS) but
    neither its full keyword lists nor how it put the four terms on one scale; v1 gave no weights.
    The lists below (*_PATTERNS), the terms' scales (keyword hits per 1,000 words; length: log of
    1 + words) and the default weights (DEFAULT_LIMO_WEIGHTS) are this module's. The paper's shares
    are not the default because on these scales they would not mean what the paper meant: the
    length term (about 8 for a 4,000-word trace) would weigh little beside rates of tens per 1,000.

Correctness follows build.is_correct (a generation counts when complete and, by `selection`,
math_verify, the judge, or either). Everything is deterministic: rows are sorted by uuid first, the
draw uses random.Random(seed) only, ties break by uuid, so shuffled input gives identical output.
"""

from __future__ import annotations

import math
import random
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from distillery.stages.build import is_correct  # the one rule of what counts as correct (preferences uses it too)

METHODS = ("limo", "s1k")
SELECTIONS = ("math_verify", "judge", "either")
QUALITY_REASONS = ("missing_field", "image_reference", "odd_format", "bold_digit")
DIFFICULTY_REASONS = ("too_easy", "unsolved")
REASONS = ("selected", *QUALITY_REASONS, *DIFFICULTY_REASONS, "not_drawn", "not_selected")
PHASES = ("uniform", "weighted")  # how an s1k row's domain was picked

# --- quality ---------------------------------------------------------------------------------------

# A problem that points at a picture the text model never sees (s1: "non-existent image references").
# Matched case-insensitively anywhere in the problem. Phrases, not bare words: "figure" alone would
# catch "figure out", "image" alone "the image of f".
IMAGE_PATTERNS: tuple[str, ...] = (
    r"\[asy\]",  # Asymptote figure code (AoPS, AIME). s1 kept these (it fed AIME figures as Asymptote); drop this entry to keep them
    r"!\[",  # markdown image, as NuminaMath's olympiads/cn_k12 rows carry: ![](https://cdn.mathpix.com/cropped/...jpg)
    r"<img\b",  # HTML image
    r"\.(?:png|jpe?g|gif|svg|bmp)\b",  # a linked image file
    r"\bfigure below\b",
    r"\bshown in the (?:figure|picture|diagram|image|drawing)\b",
    r"\b(?:in|see|from) the (?:figure|picture|drawing)\b",
    r"\bfig(?:ure|\.)\s*\d",  # "Fig. 3", "Figure 2"
    r"\bdiagram\b",  # also "Venn diagram" problems that would be solvable: the price of a short list
    r"\bpictured\b",
)
IMAGE_RE = re.compile("|".join(IMAGE_PATTERNS), re.IGNORECASE)

# s1's drop_weird_string_patterns (data/filter.ipynb), exactly: "**" and a run without spaces or "]"
# closed by "**", where a digit follows the opening "**" anywhere on the same line (the lookahead
# is not bounded by the token): "**3**" and "**Problem**: find 3x" match, "**Problem 3**" does not.
BOLD_DIGIT_RE = re.compile(r"\*\*(?=.*\d)[^\s\]]*\*\*")

MIN_PROBLEM_CHARS = 20  # shorter (after stripping) is a fragment, not a problem
MAX_NON_ASCII_FRACTION = 0.5  # of non-space characters, in the problem or the thinking: garbage or another language
ASCII_ART_LINES = 3  # this many consecutive lines drawn only with ASCII_ART_CHARS (s1: "ASCII art diagrams")
ASCII_ART_MIN_CHARS = 3  # non-space characters a line needs to count as drawing ("|   |   |" has 3)
ASCII_ART_CHARS = frozenset("|/\\_-+=*#~.:<>^ ")
BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")  # the final answers verification accepts
_ASCII_RUN = re.compile(r"[\x00-\x7f]+")
_SPACE_RUN = re.compile(r"\s+")

# --- LIMO chain score ------------------------------------------------------------------------------

# Lower-case regexes, matched at word boundaries in the lower-cased trace; `\w*` lets a stem take any
# ending. Longer alternatives are tried first, so "let me double-check" counts once, not also as "check".
SELF_VERIFICATION_PATTERNS: tuple[str, ...] = (
    r"verif\w*",  # verify, verified, verification (LIMO's example)
    r"check\w*",  # check, checking, double-check (LIMO's example)
    r"let me double[- ]check",
    r"substitut\w*",  # substituting back
    r"plug\w* (?:it |this |that |these |them )?back",
    r"confirm\w*",
    r"sanity",
)
EXPLORATION_PATTERNS: tuple[str, ...] = (
    r"alternatively",
    r"another (?:approach|way|method)",
    r"perhaps",  # LIMO's example
    r"maybe",
    r"might",  # LIMO's example
    r"what if",
    r"let me try",
    r"suppose",
)
ELABORATION_PATTERNS: tuple[str, ...] = (  # LIMO's "adaptive granularity": self-correction and step structure
    r"wait",
    r"hmm+",
    r"steps?",
    r"first(?:ly)?",
    r"then",
    r"next",
    r"therefore",  # LIMO's example
    r"since",  # LIMO's example
    r"thus",
    r"hence",
    r"because",
)


def _category(patterns: Sequence[str]) -> re.Pattern[str]:
    # Lower-case patterns matched against lower-cased text: twice as fast as re.IGNORECASE.
    return re.compile(r"\b(?:" + "|".join(sorted(patterns, key=len, reverse=True)) + r")\b")


LIMO_TERMS: dict[str, re.Pattern[str] | None] = {
    "self_verification": _category(SELF_VERIFICATION_PATTERNS),
    "exploration": _category(EXPLORATION_PATTERNS),
    "elaboration": _category(ELABORATION_PATTERNS),
    "length": None,  # log(1 + words)
}
DEFAULT_LIMO_WEIGHTS: Mapping[str, float] = {"self_verification": 1.0, "exploration": 1.0, "elaboration": 0.5, "length": 0.5}
# LIMO v3's published shares (elaborated reasoning = length, self-verification, exploratory approach,
# adaptive granularity), for reference only: the paper does not say how it scaled the terms.
LIMO_PAPER_WEIGHTS: Mapping[str, float] = {"length": 0.30, "self_verification": 0.20, "exploration": 0.25, "elaboration": 0.25}

# --- plots -----------------------------------------------------------------------------------------

TRACE_WORD_EDGES = (0, 500, 1000, 2000, 4000, 8000, 16000)  # the last bin is open
PASS_RATE_EDGES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # the last bin is [0.9, 1.0]

REQUIRED_COLUMNS = ("problem", "uuid", "generations", "is_reasoning_complete", "correctness_math_verify", "correctness_llama", "messages")
OUTPUT_SCHEMA = {
    "uuid": pl.String,
    "selected": pl.Boolean,
    "reason": pl.String,
    "domain": pl.String,
    "trace_words": pl.Int64,
    "pass_rate": pl.Float64,
    "correct": pl.Int64,
    "generations": pl.Int64,
    "score": pl.Float64,
    "draw_order": pl.Int64,
    "phase": pl.String,
}


@dataclass(frozen=True)
class S1KSettings:
    """s1K: 1,000 rows (s1's size); too_easy above max_pass_rate (this module's stand-in for s1's
    two weak models); domains from domain_field (s1: MSC classes by Claude); uniform domains for the
    first uniform_share of the rows (s1: 700 of 1,000), then the domain mix of the candidates from
    mix_sources (source -> weight; s1: AIME 1, GPQA 0.5); bold_digit dropped (s1)."""

    size: int = 1000
    max_pass_rate: float = 0.5
    domain_field: str = "problem_type"
    selection: str = "either"
    uniform_share: float = 0.7
    mix_sources: dict[str, float] = field(default_factory=lambda: {"amc_aime": 1.0})
    drop_bold_digit: bool = True


@dataclass(frozen=True)
class LimoSettings:
    """LIMO: 817 rows (the v1 release; v3 of the paper: 800); min_correct..max_correct correct of the
    row's generations (the paper: 1-3 of 32); weights of limo_scores' terms (this module's)."""

    size: int = 817
    min_correct: int = 1
    max_correct: int = 3
    selection: str = "either"
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_LIMO_WEIGHTS))
    domain_field: str = "problem_type"  # reported only: LIMO does not balance domains


# --- pieces ----------------------------------------------------------------------------------------


def assistant_text(messages: Sequence[Mapping] | None) -> str | None:
    """The chosen trace: the last assistant message's content, or None when there is none or it is blank."""
    for m in reversed(messages or []):
        if m and m.get("role") == "assistant":
            content = m.get("content")
            return content if content and content.strip() else None
    return None


def thinking(text: str | None) -> str:
    """The reasoning: what lies between <think> and </think>; before </think> when the chat template
    supplied the opening tag; after an unclosed <think>; the whole text when there are no tags."""
    if not text:
        return ""
    if "</think>" in text:
        head = text.split("</think>", 1)[0]
        return head.split("<think>", 1)[1] if "<think>" in head else head
    if "<think>" in text:
        return text.split("<think>", 1)[1]
    return text


def answer_part(text: str | None) -> str:
    """Where the final answer must be: after the last </think>; nothing after an unclosed <think>; the
    whole text when there are no tags (verification.answer_region's rule)."""
    if not text:
        return ""
    if "</think>" in text:
        return text.rsplit("</think>", 1)[1]
    return "" if "<think>" in text else text


def think_tags_balanced(text: str) -> bool:
    """At most one <think> and one </think>, the opening one first; an unclosed <think> is not balanced.
    A lone </think> is fine: R1's chat template puts the opening tag in the prompt."""
    opened, closed = text.count("<think>"), text.count("</think>")
    if opened > 1 or closed > 1 or (opened and not closed):
        return False
    return not (opened and closed) or text.index("<think>") < text.index("</think>")


def word_count(text: str | None) -> int:
    """Whitespace-separated words: a tokenizer-free proxy for s1's Qwen2.5 token counts."""
    return len(text.split()) if text else 0


def _non_ascii_fraction(text: str) -> float:
    if text.isascii():
        return 0.0
    visible = len(_SPACE_RUN.sub("", text))
    return len(_ASCII_RUN.sub("", text)) / visible if visible else 0.0


def _has_ascii_art(text: str) -> bool:
    run = 0
    for line in text.splitlines():
        drawn = line.strip()
        if len(drawn.replace(" ", "")) >= ASCII_ART_MIN_CHARS and set(drawn) <= ASCII_ART_CHARS:
            run += 1
            if run >= ASCII_ART_LINES:
                return True
        else:
            run = 0
    return False


def quality_reason(problem: str | None, messages: Sequence[Mapping] | None, bold_digit: bool = False) -> str | None:
    """The first quality filter a row fails, or None. Precedence: missing_field (nothing to judge),
    then image_reference (the problem is unanswerable as text), then odd_format, whose checks run in
    this order: problem under MIN_PROBLEM_CHARS, non-ASCII-dominated problem, ASCII-art problem,
    unbalanced think tags, non-ASCII-dominated thinking, no \\boxed{} in the answer part; then, with
    `bold_digit`, s1's bold token with a digit in the problem (BOLD_DIGIT_RE)."""
    trace = assistant_text(messages)
    if problem is None or not problem.strip() or trace is None:
        return "missing_field"
    if IMAGE_RE.search(problem):
        return "image_reference"
    if (
        len(problem.strip()) < MIN_PROBLEM_CHARS
        or _non_ascii_fraction(problem) > MAX_NON_ASCII_FRACTION
        or _has_ascii_art(problem)
        or not think_tags_balanced(trace)
        or _non_ascii_fraction(thinking(trace)) > MAX_NON_ASCII_FRACTION
        or not BOX_RE.search(answer_part(trace))
    ):
        return "odd_format"
    if bold_digit and BOLD_DIGIT_RE.search(problem):
        return "bold_digit"
    return None


def quality_reasons(df: pl.DataFrame, bold_digit: bool = False) -> pl.Series:
    """quality_reason for each row of a frame with `problem` and `messages`, in row order (null: clean)."""
    reasons = [quality_reason(p, m, bold_digit) for p, m in zip(df["problem"].to_list(), df["messages"].to_list())]
    return pl.Series("quality_reason", reasons, dtype=pl.String)


def correct_count(
    math_verify: Sequence[bool | None] | None,
    llama: Sequence[bool | None] | None,
    complete: Sequence[bool | None] | None,
    n: int,
    selection: str,
) -> int:
    """How many of a row's n generations are correct under selection (a missing list counts as all null)."""
    mv = list(math_verify) if math_verify is not None else [None] * n
    ll = list(llama) if llama is not None else [None] * n
    done = list(complete) if complete is not None else [False] * n
    return sum(
        is_correct(mv[i] if i < len(mv) else None, ll[i] if i < len(ll) else None, i < len(done) and done[i], selection) for i in range(n)
    )


def _check_selection(selection: str) -> None:
    if selection not in SELECTIONS:
        raise ValueError(f"unknown selection {selection!r}; selections: {', '.join(SELECTIONS)}")


def pass_rates(df: pl.DataFrame, selection: str = "either") -> pl.DataFrame:
    """correct, generations and pass_rate (correct / generations; null with no generations) per row."""
    _check_selection(selection)
    correct, total, rate = [], [], []
    for gens, mv, ll, done in zip(
        df["generations"].to_list(),
        df["correctness_math_verify"].to_list(),
        df["correctness_llama"].to_list(),
        df["is_reasoning_complete"].to_list(),
    ):
        n = len(gens) if gens is not None else 0
        c = correct_count(mv, ll, done, n, selection)
        correct.append(c)
        total.append(n)
        rate.append(c / n if n else None)
    return pl.DataFrame(
        {"correct": correct, "generations": total, "pass_rate": rate},
        schema={"correct": pl.Int64, "generations": pl.Int64, "pass_rate": pl.Float64},
    )


def domains(df: pl.DataFrame, domain_field: str = "problem_type") -> pl.Series:
    """The domain of each row: the value of domain_field as text; null or blank is "unknown"."""
    if domain_field not in df.columns:
        raise ValueError(f"domain_field {domain_field!r} is not a column; columns: {', '.join(df.columns)}")
    values = df[domain_field].cast(pl.String).to_list()
    return pl.Series("domain", [v if v is not None and v.strip() else "unknown" for v in values], dtype=pl.String)


def _geometric_index(rng: random.Random, m: int) -> int:
    """An index in [0, m) drawn with probability proportional to 2^-index."""
    u = rng.random() * 2.0 * (1.0 - 0.5**m)  # sum of 2^-r for r < m
    for r in range(m):
        w = 0.5**r
        if u < w:
            return r
        u -= w
    return m - 1  # rounding at the far tail


def target_mix(domains: Sequence[str], sources: Sequence[str | None], mix_sources: Mapping[str, float]) -> dict[str, float]:
    """s1's benchmark domain mix: per source in mix_sources, its candidates' domain counts scaled so
    the source's total is its weight (s1: AIME 1, GPQA 0.5), summed over sources and normalized to 1.
    Empty where no candidate comes from those sources."""
    per_source: dict[str, Counter] = {s: Counter() for s in mix_sources}
    for domain, source in zip(domains, sources):
        if source in per_source:
            per_source[source][domain] += 1
    mix: dict[str, float] = {}
    for source, counts in per_source.items():
        total, weight = sum(counts.values()), float(mix_sources[source])
        for domain, n in counts.items():
            if weight > 0:
                mix[domain] = mix.get(domain, 0.0) + weight * n / total
    norm = sum(mix.values())
    return {d: w / norm for d, w in sorted(mix.items())} if norm > 0 else {}


def uniform_rows(size: int, uniform_share: float) -> int:
    """Rows drawn with uniform domains: uniform_share of size, rounded half up (s1: 700 of 1,000)."""
    return int(math.floor(uniform_share * size + 0.5))


def s1k_draw(candidates: pl.DataFrame | Iterable[tuple[str, str, int]], size: int, seed: int) -> list[tuple[str, int]]:
    """s1k_draw_phases with uniform domains throughout (the paper's Algorithm 1): (uuid, draw_order)."""
    return [(uuid, order) for uuid, order, _ in s1k_draw_phases(candidates, size, seed)]


def s1k_draw_phases(
    candidates: pl.DataFrame | Iterable[tuple[str, str, int]],
    size: int,
    seed: int,
    uniform_until: int | None = None,
    mix: Mapping[str, float] | None = None,
) -> list[tuple[str, int, str]]:
    """s1's draw: until `size` are drawn or none are left, pick a domain among those with candidates
    left, uniformly while fewer than `uniform_until` are drawn (None: always), then with probability
    proportional to its weight in `mix` (s1: the benchmark domain mix; uniformly again where no
    domain of the mix is left); then one of its candidates with probability proportional to 2^-rank
    (rank 0: the longest trace; equal lengths rank by uuid), and remove it.

    candidates: (uuid, domain, trace_words) tuples, or a frame with those columns. Returns
    (uuid, draw_order, phase) with draw_order from 1 and phase uniform or weighted. Uses
    random.Random(seed) only, on inputs sorted first, so the result does not depend on the
    candidates' order."""
    if size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    rows = candidates.select("uuid", "domain", "trace_words").rows() if isinstance(candidates, pl.DataFrame) else list(candidates)
    uuids = [r[0] for r in rows]
    if len(set(uuids)) != len(uuids):
        raise ValueError("s1k_draw: candidate uuids must be unique")
    pools: dict[str, list[str]] = {}
    for uuid, domain, _words in sorted(rows, key=lambda r: (-r[2], r[0])):
        pools.setdefault(domain, []).append(uuid)
    names = sorted(pools)
    weights = {d: w for d, w in (mix or {}).items() if w > 0}
    uniform_until = size if uniform_until is None else uniform_until
    rng = random.Random(seed)
    drawn: list[tuple[str, int, str]] = []
    while len(drawn) < size and names:
        weighted = [d for d in names if d in weights] if len(drawn) >= uniform_until else []
        if weighted:
            phase, u = "weighted", rng.random() * sum(weights[d] for d in weighted)
            domain = weighted[-1]  # rounding at the far end
            for d in weighted:
                if u < weights[d]:
                    domain = d
                    break
                u -= weights[d]
            k = names.index(domain)
        else:
            phase, k = "uniform", rng.randrange(len(names))
        pool = pools[names[k]]
        drawn.append((pool.pop(_geometric_index(rng, len(pool))), len(drawn) + 1, phase))
        if not pool:
            names.pop(k)
    return drawn


def limo_terms(text: str) -> dict[str, float]:
    """The raw terms of limo_scores for one trace: keyword rates per 1,000 words, and log(1 + words)."""
    words, lowered = word_count(text), text.lower()
    terms = {}
    for name, pattern in LIMO_TERMS.items():
        if pattern is None:
            terms[name] = math.log1p(words)
        else:
            terms[name] = 1000.0 * len(pattern.findall(lowered)) / words if words else 0.0
    return terms


def limo_scores(texts: Sequence[str], weights: Mapping[str, float]) -> list[float]:
    """LIMO-style rule score of each trace: sum of weight x term over self_verification, exploration and
    elaboration (keyword hits per 1,000 words) and length (log(1 + words)). A weight left out is 0."""
    unknown = set(weights) - set(LIMO_TERMS)
    if unknown:
        raise ValueError(f"unknown LIMO weights {sorted(unknown)}; terms: {', '.join(LIMO_TERMS)}")
    out = []
    for text in texts:
        terms = limo_terms(text or "")
        out.append(sum(float(weights.get(name, 0.0)) * terms[name] for name in LIMO_TERMS))
    return out


# --- the stage's entry point -----------------------------------------------------------------------


def _check_input(df: pl.DataFrame, domain_field: str, mix: bool = False) -> None:
    missing = [c for c in (*REQUIRED_COLUMNS, domain_field, *(("source",) if mix else ())) if c not in df.columns]
    if missing:
        raise ValueError(f"the dataset lacks columns {missing}")
    if df["uuid"].null_count():
        raise ValueError("every row needs a uuid")
    if df["uuid"].n_unique() != df.height:
        raise ValueError("uuids must be unique: each row's selection is keyed by its uuid")


def select(df: pl.DataFrame, method: str, settings: S1KSettings | LimoSettings, seed: int) -> pl.DataFrame:
    """One row per input row (sorted by uuid) saying whether it is in the subset and, if not, the first
    filter it failed. See the module docstring for the methods and the reasons' order."""
    if method not in METHODS:
        raise ValueError(f"unknown curation method {method!r}; methods: {', '.join(METHODS)}")
    expected = S1KSettings if method == "s1k" else LimoSettings
    if not isinstance(settings, expected):
        raise TypeError(f"method {method!r} takes {expected.__name__}, got {type(settings).__name__}")
    _check_selection(settings.selection)
    if settings.size < 0:
        raise ValueError(f"size must be >= 0, got {settings.size}")
    s1k = isinstance(settings, S1KSettings)
    if s1k and not 0.0 <= settings.uniform_share <= 1.0:
        raise ValueError(f"uniform_share must be in [0, 1], got {settings.uniform_share}")
    _check_input(df, settings.domain_field, mix=s1k and bool(settings.mix_sources))

    df = df.sort("uuid")
    uuids = df["uuid"].to_list()
    quality = quality_reasons(df, bold_digit=s1k and settings.drop_bold_digit).to_list()
    difficulty = pass_rates(df, settings.selection)
    traces = [thinking(assistant_text(m)) for m in df["messages"].to_list()]
    out = pl.DataFrame(
        {
            "uuid": uuids,
            "domain": domains(df, settings.domain_field),
            "trace_words": [word_count(t) for t in traces],
            "correct": difficulty["correct"],
            "generations": difficulty["generations"],
            "pass_rate": difficulty["pass_rate"],
        }
    )
    correct = difficulty["correct"].to_list()
    rates = difficulty["pass_rate"].to_list()
    reasons: list[str | None] = list(quality)
    scores: list[float | None] = [None] * df.height
    order: list[int | None] = [None] * df.height
    phases: list[str | None] = [None] * df.height

    if isinstance(settings, S1KSettings):
        if not 0.0 <= settings.max_pass_rate <= 1.0:
            raise ValueError(f"max_pass_rate must be in [0, 1], got {settings.max_pass_rate}")
        for i, rate in enumerate(rates):
            if reasons[i] is None and rate is not None and rate > settings.max_pass_rate:
                reasons[i] = "too_easy"
        pending = [i for i, r in enumerate(reasons) if r is None]
        words, domain = out["trace_words"].to_list(), out["domain"].to_list()
        sources = df["source"].to_list() if settings.mix_sources else [None] * df.height
        mix = target_mix([domain[i] for i in pending], [sources[i] for i in pending], settings.mix_sources)
        drawn = {
            uuid: (o, phase)
            for uuid, o, phase in s1k_draw_phases(
                [(uuids[i], domain[i], words[i]) for i in pending],
                settings.size,
                seed,
                uniform_until=uniform_rows(settings.size, settings.uniform_share),
                mix=mix,
            )
        }
        for i in pending:
            order[i], phases[i] = drawn.get(uuids[i], (None, None))
            reasons[i] = "selected" if order[i] is not None else "not_drawn"
    else:
        if not 0 <= settings.min_correct <= settings.max_correct:
            raise ValueError(f"need 0 <= min_correct <= max_correct, got {settings.min_correct}..{settings.max_correct}")
        for i, c in enumerate(correct):
            if reasons[i] is None:
                if c < settings.min_correct:
                    reasons[i] = "unsolved"
                elif c > settings.max_correct:
                    reasons[i] = "too_easy"
        pending = [i for i, r in enumerate(reasons) if r is None]
        for i, s in zip(pending, limo_scores([traces[i] for i in pending], settings.weights)):
            scores[i] = s
        ranked = sorted(pending, key=lambda i: (-scores[i], uuids[i]))
        for rank, i in enumerate(ranked):
            if rank < settings.size:
                order[i] = rank + 1
                reasons[i] = "selected"
            else:
                reasons[i] = "not_selected"

    out = out.with_columns(
        pl.Series("reason", reasons, dtype=pl.String),
        pl.Series("score", scores, dtype=pl.Float64),
        pl.Series("draw_order", order, dtype=pl.Int64),
        pl.Series("phase", phases, dtype=pl.String),
    ).with_columns(selected=pl.col("reason") == "selected")
    return out.select(list(OUTPUT_SCHEMA)).cast(OUTPUT_SCHEMA)


# --- summaries -------------------------------------------------------------------------------------


def stage_sizes(selection: pl.DataFrame) -> dict:
    """Rows left after each filter, in order, and rows by reason (every reason listed, zeros too).
    rows == sum(by_reason.values()) always."""
    counts = dict(selection.group_by("reason").len().iter_rows())
    unknown = set(counts) - set(REASONS)
    if unknown:
        raise ValueError(f"unknown reasons {sorted(unknown)}; reasons: {', '.join(REASONS)}")
    by_reason = {r: int(counts.get(r, 0)) for r in REASONS}
    rows = selection.height
    after_quality = rows - sum(by_reason[r] for r in QUALITY_REASONS)
    after_difficulty = after_quality - sum(by_reason[r] for r in DIFFICULTY_REASONS)
    return {
        "rows": rows,
        "after_quality": after_quality,
        "after_difficulty": after_difficulty,
        "selected": by_reason["selected"],
        "by_reason": by_reason,
    }


def _bin_labels(edges: Sequence[float], fmt, top: float | None) -> list[tuple[str, float, float | None]]:
    bins = []
    for k, lower in enumerate(edges):
        upper = edges[k + 1] if k + 1 < len(edges) else top
        label = f"{fmt(lower)}-{fmt(upper)}" if upper is not None else f"{fmt(lower)}+"
        bins.append((label, lower, upper))
    return bins


def distribution(selection: pl.DataFrame, column: str = "domain", selected_only: bool = True) -> pl.DataFrame:
    """Counts for a plot. domain / reason: one row per value, most frequent first (ties by value).
    trace_words: fixed bins TRACE_WORD_EDGES (the last one open); pass_rate: tenths, [0.9, 1.0] last.
    Binned columns list every bin, empty ones too, so plots of different runs line up; nulls are left out."""
    rows = selection.filter(pl.col("selected")) if selected_only else selection
    if column in ("domain", "reason"):
        return (
            rows.group_by(column)
            .len(name="count")
            .with_columns(pl.col("count").cast(pl.Int64))
            .sort(["count", column], descending=[True, False])
        )
    if column == "trace_words":
        edges, bins = TRACE_WORD_EDGES, _bin_labels(TRACE_WORD_EDGES, lambda v: str(int(v)), None)
    elif column == "pass_rate":
        edges, bins = PASS_RATE_EDGES, _bin_labels(PASS_RATE_EDGES, lambda v: f"{v:.1f}", 1.0)
    else:
        raise ValueError(f"no distribution for {column!r}; columns: domain, reason, trace_words, pass_rate")
    counts = [0] * len(edges)
    for v in rows[column].drop_nulls().to_list():
        counts[max(0, min(bisect_right(edges, v) - 1, len(edges) - 1))] += 1
    return pl.DataFrame(
        {"bin": [b[0] for b in bins], "lower": [float(b[1]) for b in bins], "upper": [b[2] for b in bins], "count": counts},
        schema={"bin": pl.String, "lower": pl.Float64, "upper": pl.Float64, "count": pl.Int64},
    )
