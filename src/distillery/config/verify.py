"""The params of stage verify (`params.yaml`'s `verify` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from distillery.config.base import Section


class LatexExtraction(Section):
    """math_verify.LatexExtractionConfig with its NormalizationConfig."""

    enabled: bool = Field(True, description="Extract LaTeX answers (LatexExtractionConfig).")
    boxed_match_priority: int = Field(
        0,
        description="Priority of \\boxed{} matches. 0: a \\boxed{} wins over every other LaTeX match; 50: after final-answer "
        "patterns (math-verify's default); -1: never matched.",
    )
    try_extract_without_anchor: bool = Field(
        False, description='false: only anchored answers ("answer is", \\boxed); true: any LaTeX in the text.'
    )
    basic_latex: bool = Field(True, description="Basic LaTeX command replacements (\\mathrm, \\displaystyle, ...).")
    units: bool = Field(True, description='Strip units: "5 \\text{ cm}" is 5.')
    malformed_operators: bool = Field(
        True, description="Repair malformed operators such as \\frac12 (OpenR1's reward: false; R1 writes \\dfrac12)."
    )
    nits: bool = Field(False, description="Small formatting fixes (spaces, dots, ...).")
    boxed: Literal["all", "last", "none"] = Field(
        "all", description="Which boxed environments have their content extracted: all, the last, or none."
    )
    equations: bool = Field(
        False,
        description='Compare the right-hand side of an equation ("x = 3" as 3). OpenR1 set true; math-verify 0.9 deprecates it: '
        "its parser does this itself.",
    )


class Extraction(Section):
    """How math-verify finds the answer in a text: which extraction configs, in which mode."""

    latex: LatexExtraction = Field(LatexExtraction(), description="LaTeX extraction (LatexExtractionConfig).")
    expr: bool = Field(False, description='ExprExtractionConfig: also extract plain expressions ("1/2") outside LaTeX.')
    expr_without_anchor: bool = Field(
        True, description='With expr: plain expressions are extracted without an anchor such as "answer:" too.'
    )
    strings: list[str] = Field([], description="StringExtractionConfig: literal answers such as multiple-choice letters. []: none.")
    extraction_mode: Literal["first_match", "any_match"] = Field(
        "first_match", description="first_match: stop after the first match; any_match: try every match until one parses."
    )
    fallback_mode: Literal["no_fallback", "first_match"] = Field(
        "first_match",
        description="no_fallback: only parsed expressions count; first_match: the first matched string counts even if it did not parse.",
    )


# math-verify's own parse() default, which OpenR1's accuracy reward used for the gold.
GOLD_EXTRACTION = Extraction(
    latex=LatexExtraction(
        boxed_match_priority=50, try_extract_without_anchor=True, units=True, malformed_operators=True, nits=True, equations=False
    ),
    expr=True,
)


# OpenR1's accuracy reward for the prediction (open-r1 src/open_r1/rewards.py).
PREDICTION_EXTRACTION = Extraction()


class VerifyConfig(Section):
    workers: int = Field(2, ge=1, description="Worker processes; bounded by the rule's threads.", json_schema_extra={"execution": True})
    timeout_s: int = Field(5, ge=1, description="math-verify's own timeouts, per parse and per verify (signal based), in seconds.")
    item_deadline_s: float = Field(
        30.0,
        gt=0,
        description="Hard outer deadline per generation, in seconds: past it the worker is killed and the generation is a "
        "`timeout`. Catches what ignores math-verify's signal (a power tower inside one C call).",
    )
    max_answer_chars: int = Field(1000, ge=1, description="A longer boxed answer, in characters, is `answer_too_long`, never parsed.")
    precheck_complexity: bool = Field(
        True,
        description="A power tower, an exponent of 5+ digits, a factorial of a power: `too_complex` at once, where sympy would "
        "only time out after `timeout_s` of CPU (verification.too_complex).",
    )
    multiple_boxes: Literal["by_gold", "last", "all_agree"] = Field(
        "by_gold",
        description="Several different \\boxed{} after the reasoning. by_gold: one answer, compared as a whole, where the "
        "gold has several parts (set, tuple, union, several values); a `hedged` generation where it has one. "
        "last: the last box is the answer. all_agree: every box must be right.",
    )
    exact_match_first: bool = Field(True, description="Equal normalized strings, or two plain integers, are decided without sympy.")
    wrap_gold: bool = Field(
        True,
        description="Wrap the gold in `$...$` before parsing; unwrapped golds miss many matches. A gold of bare words is then a "
        "product of one-letter symbols; GRPO's rewards tell such golds apart (rewards.word_gold: letters only, a word of 3+ "
        "letters or a capitalised one, not option letters) and give them None (grpo.rewards.accuracy.word_golds).",
    )
    gold: Extraction = Field(
        GOLD_EXTRACTION,
        description="How the gold answer is parsed: math-verify's parse() default, as OpenR1's accuracy reward parsed golds.",
    )
    prediction: Extraction = Field(
        PREDICTION_EXTRACTION,
        description="How the generation's answer is parsed: OpenR1's accuracy reward (open-r1 src/open_r1/rewards.py).",
    )
    float_rounding: int = Field(6, ge=0, description="Decimal places floats are rounded to before comparison.")
    numeric_precision: int = Field(15, ge=1, description="Significant digits of sympy's numeric evaluation.")
    strict: bool = Field(True, description="false: variables and function names may differ, e.g. f(x) = x vs g(x) = x.")
    allow_set_relation_comp: bool = Field(
        True, description='true: an interval gold matches the same set written as an inequality ("(2, 5]" vs "2 < x \\le 5").'
    )
    blank_boxes: Literal["skip", "count"] = Field(
        "skip",
        description="A box with nothing in it (\\boxed{}, \\boxed{\\phantom{2}}, \\boxed{\\quad}: a problem's blank restated). "
        "skip: not an answer, so it never makes a generation `hedged` or stands for its answer. count: a box like any other.",
    )
    degrees: Literal["convert", "drop_sign"] = Field(
        "convert",
        description="convert: a lone angle in degrees (60^\\circ, 60°) also equals the same angle in radians written with \\pi "
        "(\\frac{\\pi}{3}); a number without a degree sign is never taken for degrees. drop_sign: math-verify's own "
        "(60^\\circ is 60).",
    )
    repeating_decimals: bool = Field(
        True, description="Read a repeating decimal (0.1\\overline{6}, 0.\\dot{3}) as its exact fraction (1/6, 1/3), both sides."
    )
    choice_with_value: bool = Field(
        True,
        description="A gold naming an option and its value (\\textbf{(C) } 7) is answered by the letter, by the value, or by "
        "both (a wrong letter is wrong whatever the value); an answer of a letter with its value counts by its letter "
        "against a letter gold.",
    )
    imaginary_unit: bool = Field(
        True,
        description="Read i as the imaginary unit ((1+i)^2 = 2i, |3+4i| = 5) where a side has i and no other unknown; "
        "\\mathrm{i} is i. false: latex2sympy's plain symbol i.",
    )


# The stage's params model (distillery.provenance finds the stage's execution-only keys through it).
MODEL = VerifyConfig
