"""Write tests/data/labelled_verify.jsonl: hand-labelled answer-verification cases.

Every case is written by hand in the tables below as

    (gold, final answer, expected, note)              the answer goes in a final \\boxed{} after </think>
    (gold, answer or boxes, expected, note, shape)    a trap: the generation has a special shape

`gold` is the reference answer as NuminaMath stores it (usually unwrapped LaTeX, sometimes `$...$`).
`expected` is the verdict of a careful human grader: true when the generation's final answer is
mathematically the gold, false when it is not or when the generation has no valid final answer.
It is never adjusted to what the verifier happens to do; disagreements are listed in
tests/test_verify_labelled.py (KNOWN_WRONG).

This script only wraps each answer in a realistic DeepSeek-R1-style generation (`<think>` reasoning,
sometimes with scratch `\\boxed{}` and a corrected wrong guess, then a short summary and the boxed
answer in one of several layouts). The wrapping is seeded by the case id, so the output is
byte-identical on every run. Ids are the category prefix and the position in its table: add new
cases at the end of a table so existing ids stay stable.

    .venv/bin/python tests/data/make_labelled_verify.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).with_name("labelled_verify.jsonl")

# Shapes for traps (the 5th tuple element). Default ("final") is: reasoning, </think>, summary, one box.
FINAL = "final"
TRUNCATED_BOX = "truncated_box"  # <think> never closed; the reasoning ends in a box holding the answer
TRUNCATED_PLAIN = "truncated_plain"  # <think> never closed; the answer is the last number, no box
NO_BOX = "no_box"  # </think>, then the answer in prose without any box
NO_BOX_FINAL_ANSWER = "no_box_final_answer"  # **Final Answer** heading, bare answer, no box
THINK_ONLY = "think_only"  # the answer is boxed inside the reasoning only; nothing boxed after </think>
BOXES = "boxes"  # the answer is a list: several boxes after </think>, in order
THINK_DIFFERS = "think_differs"  # a different scratch box in the reasoning (the answer is [scratch, final])
NO_TAGS = "no_tags"  # no <think> tags at all, a complete solution ending in a box
PREFILLED = "prefilled"  # the chat template pre-filled <think>: only </think> appears in the generation
PREFILLED_TRUNCATED = "prefilled_truncated"  # pre-filled <think>, cut off mid-reasoning after a tentative box
UNCLOSED_BOX = "unclosed_box"  # the final box is never closed
CUT_AFTER_THINK = "cut_after_think"  # </think> then the summary stops before any box
FBOX = "fbox"  # \fbox{} instead of \boxed{}
SAME_LINE_BOXES = "same_line_boxes"  # the answer is a list: boxes in one final sentence, joined by "and"
NESTED = "nested"  # \boxed{\boxed{...}}
# Several boxes in the final answer (the answer is a list; "x=3" renders as "$x = \boxed{3}$").
NAMED_AND = "named_and"  # "So $x = \boxed{3}$ and $y = \boxed{-1}$."
NAMED_OR = "named_or"  # "Hence $x = \boxed{1}$ or $x = \boxed{-3}$."
COMMA_BOXES = "comma_boxes"  # "The solutions are $\boxed{(2,1)}, \boxed{(1,2)}$."
PARTS = "parts"  # a multi-question problem: "**Final Answer**\n(1) $\boxed{..}$\n(2) $\boxed{..}$"
RESTATED = "restated"  # the parts boxed, then the whole answer boxed again: the last item is the whole
HEDGE_NO_WAIT = "hedge_no_wait"  # "... so it is $\boxed{2}$; no wait, $\boxed{3}$."
HEDGE_OR = "hedge_or"  # "The answer is $\boxed{A}$ or $\boxed{C}$, depending on how the question is read."
SAME_VALUE = "same_value"  # "The answer is $\boxed{a}$, that is, $\boxed{b}$."
# A problem's blank (\boxed{\phantom{2}}, \boxed{}) restated in the answer beside the real box.
BLANK_BEFORE = "blank_before"  # "Filling in $\boxed{blank} + 8 = 12$, the missing number is $\boxed{4}$."
BLANK_AFTER = "blank_after"  # "The answer is $\boxed{4}$: it goes in the blank of $\boxed{blank} + 8 = 12$."
BLANK_ONLY = "blank_only"  # only the blank is boxed after </think>: no answer

# --- the cases -------------------------------------------------------------------------------------

INTEGERS = [
    ("42", "42", True, "identical integer"),
    ("42", "43", False, "off by one"),
    ("-7", "-7", True, "negative integer"),
    ("-7", "7", False, "sign dropped"),
    ("1000", "1,000", True, "comma thousands separator: 1,000 is one thousand"),
    ("1000", "1{,}000", True, "LaTeX {,} thousands separator"),
    ("1000", "1\\,000", True, "thin-space thousands separator"),
    ("1,000", "1000", True, "gold written with a separator, plain answer"),
    ("25", "025", True, "AIME answers are three digits: 025 is 25"),
    ("025", "25", True, "gold stored with AIME padding"),
    ("250", "025", False, "025 is 25, not 250"),
    ("2024", "2023", False, "wrong year"),
    ("12", "12.0", True, "12.0 is the integer 12"),
    ("$336$", "336", True, "gold wrapped in $...$"),
    ("$336$", "363", False, "digits transposed"),
    ("-15", "- 15", True, "space after the minus sign"),
    ("100", "10^2", True, "a power equal to the integer"),
    ("1234", "1,243", False, "separator present, digits wrong"),
    ("-3", "\u22123", True, "Unicode minus sign U+2212: still minus three"),
    ("1000", "1.000", False, "1.000 with a decimal point is one, not one thousand"),
    ("1000", "1,000.", True, "separator plus a sentence-ending period"),
    ("7", "-(-7)", True, "double negation is 7"),
]

FRACTIONS = [
    ("\\frac{1}{2}", "0.5", True, "decimal form of the fraction"),
    ("\\frac{1}{2}", "\\dfrac12", True, "\\dfrac with single-token arguments"),
    ("\\frac{1}{2}", "1/2", True, "slash fraction"),
    ("0.5", "\\frac{1}{2}", True, "decimal gold, fraction answer"),
    ("\\frac{1}{3}", "0.333", False, "0.333 is a truncated approximation of 1/3"),
    ("\\frac{1}{2}", "\\frac{2}{4}", True, "unreduced but equal"),
    ("\\frac{3}{4}", "\\frac{4}{3}", False, "reciprocal"),
    ("-\\frac{1}{2}", "\\frac{-1}{2}", True, "minus sign in the numerator"),
    ("-\\frac{1}{2}", "\\frac{1}{2}", False, "sign dropped"),
    ("\\frac{3}{4}", "0.75", True, "exact decimal"),
    ("\\frac{5}{4}", "1\\frac{1}{4}", True, "mixed number one and a quarter"),
    ("\\frac{7}{3}", "2.33", False, "rounded decimal of 7/3"),
    ("\\frac{1}{8}", "0.12", False, "rounded decimal"),
    ("\\frac{9}{16}", "\\frac{16}{9}", False, "reciprocal"),
    ("\\frac{1}{2}", "\\tfrac{1}{2}", True, "\\tfrac"),
    ("\\frac{1}{6}", "\\frac{1}{3}-\\frac{1}{6}", True, "unsimplified but equal expression"),
    ("\\frac{1}{6}", "0.1\\overline{6}", True, "repeating decimal 0.1666... is exactly 1/6"),
    ("\\frac{11}{4}", "2\\frac{3}{4}", True, "mixed number two and three quarters"),
    ("\\frac{11}{4}", "2\\frac{1}{4}", False, "mixed number 9/4"),
    ("$\\frac{3}{5}$", "\\frac{6}{10}", True, "gold in $...$, unreduced answer"),
    ("\\frac{17}{20}", "0.8", False, "0.85 rounded to one place"),
    ("\\frac{2}{7}", "0.2857", False, "four-place approximation of 2/7"),
]

EXPRESSIONS = [
    ("3\\sqrt{2}", "\\sqrt{18}", True, "sqrt(18) = 3 sqrt(2)"),
    ("2\\sqrt{3}", "\\sqrt{6}", False, "2 sqrt(3) = sqrt(12), not sqrt(6)"),
    ("x^2+2x+1", "(x+1)^2", True, "factored form of the same polynomial"),
    ("(x+1)^2", "x^{2}+2x+1", True, "expanded form of the same polynomial"),
    ("x^2-1", "x^2+1", False, "sign of the constant"),
    ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", True, "rationalised vs not"),
    ("2", "\\sqrt[3]{8}", True, "cube root of 8"),
    ("1+\\sqrt{5}", "\\sqrt{5}+1", True, "terms reordered"),
    ("\\frac{1+\\sqrt{5}}{2}", "\\frac{1-\\sqrt{5}}{2}", False, "the other root"),
    ("3\\ln 2", "\\ln 8", True, "ln 8 = 3 ln 2"),
    ("3", "\\log_2 8", True, "log base 2 of 8 is 3"),
    ("2^{x}", "x^{2}", False, "exponential vs square"),
    ("\\frac{n(n+1)}{2}", "\\frac{n^2+n}{2}", True, "expanded numerator"),
    ("\\frac{n(n+1)}{2}", "\\frac{n(n-1)}{2}", False, "off-by-one in the formula"),
    ("\\sqrt{2}+\\sqrt{3}", "\\sqrt{5}", False, "radicals do not add"),
    ("5\\sqrt{3}", "8.66", False, "two-place approximation of 5 sqrt(3)"),
    ("\\frac{x+1}{x}", "1+\\frac{1}{x}", True, "split fraction"),
    ("\\sqrt{6}", "\\sqrt{2}\\cdot\\sqrt{3}", True, "product of radicals"),
    ("\\frac{\\sqrt{3}}{3}", "\\sqrt{3}", False, "missing the division by 3"),
    ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}", True, "rationalised vs not"),
    ("x^3-x", "x(x-1)(x+1)", True, "fully factored"),
    ("x^3-x", "x(x-1)^2", False, "wrong factorisation"),
]

CONSTANTS = [
    ("2\\pi", "2 \\pi", True, "space only"),
    ("\\frac{\\pi}{3}", "\\dfrac{\\pi}{3}", True, "\\dfrac"),
    ("\\frac{\\pi}{3}", "\\pi/3", True, "slash form"),
    ("\\frac{\\pi}{3}", "\\frac{\\pi}{6}", False, "wrong denominator"),
    ("4\\pi", "4\\pi^2", False, "pi squared"),
    ("e", "e^{1}", True, "e to the first power"),
    ("\\frac{e}{2}", "e/2", True, "slash form"),
    ("\\frac{4\\pi}{3}", "\\frac{4}{3}\\pi", True, "coefficient pulled out"),
    ("\\sqrt{\\pi}", "\\pi^{1/2}", True, "power form of the root"),
    ("\\pi", "\\frac{22}{7}", False, "22/7 only approximates pi"),
    ("2\\pi", "\\pi", False, "missing factor 2"),
    ("9\\pi", "9", False, "pi dropped"),
    ("\\pi r^2", "r^2\\pi", True, "factors reordered"),
    ("e^2", "e\\cdot e", True, "product form"),
    ("e^{2}", "2e", False, "2e is not e squared"),
    ("\\pi-2", "2-\\pi", False, "sign flipped"),
    ("\\ln 2", "\\log_e 2", True, "log base e is ln"),
    ("\\pi", "3.14", False, "3.14 only approximates pi"),
]

DEGREES = [
    ("60^\\circ", "60", True, "bare number in the gold's unit (the question asked for degrees)"),
    ("60^\\circ", "\\frac{\\pi}{3}", True, "the same angle in radians"),
    ("60^\\circ", "30^\\circ", False, "wrong angle"),
    ("60^\\circ", "120", False, "supplementary angle"),
    ("\\frac{\\pi}{3}", "60^\\circ", True, "the same angle in degrees, with the degree sign"),
    ("\\frac{\\pi}{3}", "60", False, "bare 60 against a radian gold is 60 radians, not pi/3"),
    ("45", "45^\\circ", True, "gold stored without the degree sign"),
    ("90^\\circ", "\\frac{\\pi}{2}", True, "the same angle in radians"),
    ("30^\\circ", "\\frac{\\pi}{3}", False, "pi/3 is 60 degrees"),
    ("72^\\circ", "72\\text{ degrees}", True, "degrees written out"),
    ("72^\\circ", "72^\\circ \\text{ or } 108^\\circ", False, "hedged between two angles"),
    ("$120^{\\circ}$", "120\u00b0", True, "Unicode degree sign"),
    ("120^\\circ", "\\frac{2\\pi}{3}", True, "the same angle in radians"),
    ("120^\\circ", "\\frac{\\pi}{3}", False, "pi/3 is 60 degrees"),
    ("\\angle B=45^\\circ", "45", True, "gold names the angle; the answer gives its size"),
    ("30^\\circ", "150^\\circ", False, "supplementary angle"),
    ("180^\\circ", "\\pi", True, "pi radians is 180 degrees"),
    ("45^\\circ", "\\frac{\\pi}{3}", False, "pi/3 is 60 degrees"),
    # Degrees against radians (verify.degrees: convert): an angle with a degree sign is the same angle in
    # radians; a number without one is never read as degrees (policy: never guess the unit).
    ("45^\\circ", "\\frac{\\pi}{4}", True, "45 degrees in radians"),
    ("\\frac{\\pi}{4}", "45", False, "policy: no degree sign, so 45 is a number, not pi/4"),
    ("45", "\\frac{\\pi}{4}", False, "policy: a gold without a degree sign is a number, not an angle in degrees"),
    ("$30^{\\circ}$", "\\frac{\\pi}{6}", True, "gold in $...$ with ^{\\circ}"),
    ("\\frac{\\pi}{6}", "30\u00b0", True, "Unicode degree sign against radians"),
    ("\\frac{5\\pi}{6}", "150^{\\circ}", True, "150 degrees is 5pi/6"),
    ("\\frac{5\\pi}{6}", "120^{\\circ}", False, "120 degrees is 2pi/3"),
    ("135^\\circ", "\\frac{3\\pi}{4}", True, "135 degrees is 3pi/4"),
    ("135^\\circ", "\\frac{\\pi}{4}", False, "pi/4 is 45 degrees"),
    ("\\angle A=60^{\\circ}", "\\frac{\\pi}{3}", True, "gold names the angle; the answer is in radians"),
    ("22.5^\\circ", "\\frac{\\pi}{8}", True, "decimal degrees"),
    ("2\\pi", "360^\\circ", True, "a full turn"),
    ("\\pi", "180", False, "policy: no degree sign, so 180 is not pi"),
    ("\\frac{\\pi}{6}", "30 \\text{ degrees}", True, "degrees written out against radians"),
    ("\\frac{\\pi}{3}", "60^\\circ \\text{ or } 120^\\circ", False, "two angles for one"),
]

# Percent policy (applies to every case here): a gold "p\%" is answered correctly by p, by p\%, and by
# the number p/100 itself (25\% = 0.25 = 1/4 exactly; the question asked for a percent, but an answer
# giving the same quantity as a plain number is the same value, and a grader reading 0.25 as
# "0.25 percent" would be wrong about the author's meaning). p/100 with a percent sign (0.25\%) and
# any other number are wrong.
PERCENTS = [
    ("25\\%", "25", True, "percent number without the sign (the question asked for a percent)"),
    ("25\\%", "25\\%", True, "identical"),
    ("25\\%", "0.25", True, "policy: 25% is the number 0.25, the same quantity"),
    ("25\\%", "\\frac{1}{4}", True, "policy: 25% is exactly 1/4"),
    ("25\\%", "2.5", False, "off by a factor of ten"),
    ("25\\%", "0.25\\%", False, "0.25% is a hundred times smaller than 25%"),
    ("25\\%", "75\\%", False, "complement"),
    ("12.5\\%", "12.5", True, "percent number without the sign"),
    ("40", "40\\%", True, "gold stored without the sign, answer with it"),
    ("33\\frac{1}{3}\\%", "\\frac{100}{3}\\%", True, "33 1/3 percent as an improper fraction"),
    ("150\\%", "1.5", True, "policy: 150% is the number 1.5"),
    ("150\\%", "15", False, "off by a factor of ten"),
    ("$20\\%$", "20 \\%", True, "space before the sign; gold in $...$"),
    ("20\\%", "0.2\\%", False, "0.2% is not 20%"),
    ("8\\%", "8 \\text{ percent}", True, "percent written out"),
    ("8\\%", "0.8", False, "0.8 is 80%"),
    ("60\\%", "\\frac{3}{5}", True, "policy: 60% is exactly 3/5"),
    ("60\\%", "\\frac{3}{5}\\%", False, "3/5 of one percent"),
]

INTERVALS = [
    ("(2, 5]", "2 < x \\le 5", True, "inequality describing the same interval"),
    ("[2,5]", "(2,5)", False, "endpoints excluded"),
    ("[2,5]", "2 \\leq x \\leq 5", True, "inequality describing the same interval"),
    ("(3,+\\infty)", "x>3", True, "inequality describing the same ray"),
    ("x>3", "(3, \\infty)", True, "interval for the inequality gold"),
    ("x>3", "x\\geq 3", False, "endpoint included"),
    ("(-\\infty,1)\\cup(3,+\\infty)", "x<1 \\text{ or } x>3", True, "union written as two inequalities"),
    ("(-\\infty,1)\\cup(3,+\\infty)", "(-\\infty, 1) \\cup (3, \\infty)", True, "+infinity vs infinity"),
    ("(-\\infty,1)\\cup(3,+\\infty)", "(1,3)", False, "the complement"),
    ("(2,5]", "x \\in (2, 5]", True, "membership statement"),
    ("(2,5]", "[2,5)", False, "endpoints swapped"),
    ("[-1, 3)", "\\left[-1, 3\\right)", True, "\\left \\right delimiters"),
    ("[-1,3)", "-1<x<3", False, "-1 excluded"),
    ("-2 \\le x < 4", "[-2, 4)", True, "interval for the inequality gold"),
    ("-2\\le x<4", "(-2,4]", False, "endpoints swapped"),
    ("[1,+\\infty)", "x \\geq 1", True, "inequality describing the same ray"),
    ("[1,+\\infty)", "(1,+\\infty)", False, "1 excluded"),
    ("(-1,1)", "|x|<1", True, "|x| < 1 is exactly -1 < x < 1"),
    ("x<0", "(0,+\\infty)", False, "the opposite ray"),
    ("(3,+\\infty)", "x<3", False, "inequality for the opposite ray"),
    ("[2,5]", "2<x\\le 5", False, "inequality excludes 2"),
    ("(0,1)", "0\\le x\\le 1", False, "inequality includes both endpoints"),
]

SETS = [
    ("\\{1,2,3\\}", "\\{3,2,1\\}", True, "sets are unordered"),
    ("(1,2)", "(2,1)", False, "ordered pair reversed"),
    ("(1,2)", "\\left( 1, 2 \\right)", True, "\\left \\right delimiters"),
    ("2, 3", "x=3 \\text{ or } x=2", True, "both roots, as equations, in another order"),
    ("2, 3", "3, 2", True, "roots listed in another order"),
    ("2,3", "2", False, "one root missing"),
    ("2, 3", "x=2, x=3", True, "roots as equations"),
    ("\\{1,2,3\\}", "\\{1,2\\}", False, "element missing"),
    ("(3,-1)", "x=3, y=-1", True, "the solution of the system as assignments"),
    ("(3,-1)", "(-1,3)", False, "ordered pair reversed"),
    ("(1,2,3)", "(3,2,1)", False, "ordered triple reversed"),
    ("\\{-1, 1\\}", "\\pm 1", True, "plus-or-minus shorthand for both"),
    ("\\{-2, 2\\}", "2", False, "one element missing"),
    ("(0,0), (1,1)", "(1,1), (0,0)", True, "the list of solution pairs in another order"),
    ("(0,0),(1,1)", "(0,0)", False, "one solution pair missing"),
    ("\\varnothing", "\\emptyset", True, "two symbols for the empty set"),
    ("\\{2\\}", "2", True, "the only element of a one-element solution set"),
    ("x_1=2, x_2=5", "2, 5", True, "roots without their names"),
    ("(1,2),(2,1)", "(1,2)", False, "one solution pair missing"),
]

EQUATIONS = [
    ("x=3", "3", True, "value of the named unknown"),
    ("3", "x=3", True, "assignment of the gold value"),
    ("y=2x+1", "2x+1", True, "right-hand side of the line's equation"),
    ("y=2x+1", "y=2x-1", False, "wrong intercept"),
    ("y=2x+1", "y = 1 + 2x", True, "terms reordered"),
    ("y=-2x+1", "2x+y=1", True, "the same line rearranged"),
    ("x^2+y^2=4", "x^2+y^2=2", False, "radius confused with radius squared"),
    ("f(x)=x^2", "x^2", True, "the function's formula"),
    ("x=3", "x=-3", False, "sign"),
    ("k=-\\frac{1}{2}", "-\\frac12", True, "value of the named unknown"),
    ("k=-\\frac{1}{2}", "k=\\frac{1}{2}", False, "sign"),
    ("y=\\frac{1}{2}x+3", "y=0.5x+3", True, "decimal slope"),
    ("(x-1)^2+(y+2)^2=9", "(x-1)^2+(y+2)^2=3", False, "radius confused with radius squared"),
    ("a_n=2n-1", "2n-1", True, "the general term's formula"),
    ("a_n=2n-1", "a_n=2n+1", False, "wrong constant"),
    ("y=2x+1", "y=x+2", False, "slope and intercept swapped"),
    ("\\frac{x^2}{4}+\\frac{y^2}{3}=1", "\\frac{x^{2}}{4}+\\frac{y^{2}}{3}=1", True, "braced exponents"),
    ("\\frac{x^2}{4}+\\frac{y^2}{3}=1", "\\frac{x^2}{3}+\\frac{y^2}{4}=1", False, "axes swapped"),
]

# MCQ policy: the gold is the letter. An answer is right only when it names that letter (in any
# decoration, with or without the option's text). The option's text alone is not accepted: the
# grader cannot see the options, and a bare value may match a different option.
MCQ = [
    ("B", "B", True, "same letter"),
    ("B", "(B)", True, "letter in parentheses"),
    ("B", "\\text{B}", True, "letter in \\text"),
    ("B", "C", False, "other letter"),
    ("B", "12", False, "policy: option text without the letter is not accepted"),
    ("B", "\\textbf{(B)}", True, "bold letter in parentheses (AMC style)"),
    ("B", "\\mathrm{B}", True, "letter in \\mathrm"),
    ("D", "\\text{(D)}", True, "letter in parentheses in \\text"),
    ("(C)", "C", True, "gold stored in parentheses"),
    ("C", "A", False, "other letter"),
    ("\\text{E}", "E", True, "gold in \\text"),
    ("A", "AB", False, "two letters picked"),
    ("B", "B, C", False, "two options picked"),
    ("B", "\\text{(B) } 12", True, "letter with the option's text"),
    ("$\\mathrm{(D)}$", "D", True, "gold in $\\mathrm{(D)}$"),
    ("D", "\\textbf{(E)}", False, "other letter"),
    ("C", "\\text{(B) } 7", False, "other letter with its option text"),
    ("A", "\\text{None of the above}", False, "not a letter"),
]

TEXT = [
    ("\\text{Wednesday}", "\\text{Wednesday}", True, "identical"),
    ("\\text{Wednesday}", "Wednesday", True, "without \\text"),
    ("Wednesday", "\\text{Thursday}", False, "other day"),
    ("\\text{no solution}", "\\text{No solution}", True, "capitalisation"),
    ("\\text{no solution}", "x=2", False, "claims a solution"),
    ("\\text{Yes}", "\\text{yes}", True, "capitalisation"),
    ("Yes", "\\text{No}", False, "opposite"),
    ("\\text{even}", "\\text{odd}", False, "opposite parity"),
    ("\\text{even}", "\\text{Even}", True, "capitalisation"),
    ("\\text{Alice}", "\\text{Bob}", False, "other player"),
    ("\\text{Alice}", "\\text{Alice}", True, "identical"),
    ("\\text{no solution}", "\\varnothing", True, "an empty solution set is no solution"),
    ("\\text{impossible}", "\\text{possible}", False, "opposite"),
    ("\\text{Wednesday}", "\\textbf{Wednesday}", True, "bold"),
    ("\\text{No}", "\\text{No.}", True, "sentence-ending period"),
    ("\\text{No}", "\\text{Yes}", False, "opposite"),
]

_M = "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}"
_V = "\\begin{pmatrix} 2 \\\\ -1 \\end{pmatrix}"
_I = "\\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}"
MATRICES = [
    (_M, _M, True, "identical"),
    (_M, "\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}", True, "bmatrix instead of pmatrix"),
    (_M, "\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}", False, "transposed"),
    (_M, "\\begin{pmatrix}1&2\\\\3&5\\end{pmatrix}", False, "one entry wrong"),
    (
        "\\begin{pmatrix} \\frac{1}{2} & 0 \\\\ 0 & 2 \\end{pmatrix}",
        "\\begin{pmatrix} 0.5 & 0 \\\\ 0 & 2 \\end{pmatrix}",
        True,
        "decimal entry equal to the fraction",
    ),
    (_M, "-2", False, "the determinant, not the matrix"),
    (_V, "\\begin{pmatrix}2\\\\-1\\end{pmatrix}", True, "spacing only"),
    (_V, "(2,-1)", True, "the same vector written as a tuple"),
    (_V, "\\begin{pmatrix} -1 \\\\ 2 \\end{pmatrix}", False, "components swapped"),
    (_I, "\\begin{pmatrix} 1 & 0 \\\\ 0 & -1 \\end{pmatrix}", False, "one sign wrong"),
    (_I, "\\left(\\begin{array}{cc} 1 & 0 \\\\ 0 & 1 \\end{array}\\right)", True, "array in parentheses"),
    (
        "\\begin{pmatrix} 2 & -1 \\\\ -1 & 2 \\end{pmatrix}",
        "\\begin{pmatrix} 4/2 & -1 \\\\ -1 & 2 \\end{pmatrix}",
        True,
        "unsimplified entry",
    ),
    ("\\begin{pmatrix} 3 \\\\ 0 \\\\ -1 \\end{pmatrix}", "\\begin{pmatrix} 3 \\\\ 0 \\\\ 1 \\end{pmatrix}", False, "one sign wrong"),
]

COMPLEX = [
    ("3+4i", "4i+3", True, "terms reordered"),
    ("3+4i", "3-4i", False, "conjugate"),
    ("\\frac{1}{2}+\\frac{\\sqrt{3}}{2}i", "\\frac{1+i\\sqrt{3}}{2}", True, "one fraction"),
    ("i", "-i", False, "sign"),
    ("2i", "(1+i)^2", True, "(1+i)^2 = 2i"),
    ("1-i", "\\frac{2}{1+i}", True, "2/(1+i) = 1-i"),
    ("1-i", "1+i", False, "conjugate"),
    ("-1", "i^2", True, "i squared"),
    ("5", "|3+4i|", True, "modulus of 3+4i"),
    ("3+4i", "4+3i", False, "parts swapped"),
    ("-\\frac{1}{2}+\\frac{\\sqrt{3}}{2}i", "e^{2\\pi i/3}", True, "exponential form of the same number"),
    ("2-3i", "-3i+2", True, "terms reordered"),
    ("2-3i", "2+3i", False, "conjugate"),
    ("\\pm i", "i", False, "one of the two roots missing"),
    # i is the imaginary unit (verify.imaginary_unit), in NuminaMath's spellings (i, \\mathrm{i}).
    ("-1+i", "i-1", True, "terms reordered"),
    ("1+2i", "\\frac{5}{1-2i}", True, "5/(1-2i) = 1+2i"),
    ("1+2i", "\\frac{5}{1+2i}", False, "5/(1+2i) = 1-2i"),
    ("\\sqrt{5}", "|1+2i|", True, "modulus of 1+2i"),
    ("\\sqrt{5}", "|1+i|", False, "|1+i| is sqrt(2)"),
    ("2 \\mathrm{i}", "2i", True, "upright i, as Chinese sources write it"),
    ("-\\mathrm{i}", "i", False, "sign"),
    ("i", "i^{5}", True, "i^5 = i"),
    ("-i", "i^{3}", True, "i^3 = -i"),
    ("1", "i^{4}", True, "i^4 = 1"),
    ("\\frac{3}{5}-\\frac{4}{5}i", "\\frac{3-4i}{5}", True, "one fraction"),
    ("\\frac{3}{5}-\\frac{4}{5}i", "\\frac{3+4i}{5}", False, "conjugate"),
    ("1-i", "z=1-i", True, "the number named"),
    ("3+4i", "(2+i)^2", True, "(2+i)^2 = 3+4i"),
    ("-4", "(1+i)^4", True, "(1+i)^4 = -4"),
    ("4", "(1+i)^4", False, "(1+i)^4 = -4"),
]

# Repeating decimals (verify.repeating_decimals): the bar (or a dot) marks the repeating block; the
# value is exact. A truncated decimal is an approximation, not the number.
REPEATING = [
    ("\\frac{1}{3}", "0.\\overline{3}", True, "one third"),
    ("\\frac{1}{7}", "0.\\overline{142857}", True, "six-digit block"),
    ("\\frac{5}{6}", "0.8\\overline{3}", True, "a digit before the block"),
    ("\\frac{2}{3}", "0.\\overline{6}", True, "two thirds"),
    ("\\frac{2}{3}", "0.\\overline{3}", False, "one third"),
    ("\\frac{1}{3}", "0.3", False, "0.3 without the bar is 3/10"),
    ("0.\\overline{3}", "\\frac{1}{3}", True, "gold written as the repeating decimal"),
    ("\\frac{4}{33}", "0.\\overline{12}", True, "two-digit block"),
    ("\\frac{4}{33}", "0.1\\overline{2}", False, "0.1222... is 11/90"),
    ("\\frac{19}{11}", "1.\\overline{72}", True, "a whole part"),
    ("\\frac{1}{9}", "0.\\dot{1}", True, "dot notation"),
    ("\\frac{7}{12}", "0.58\\overline{3}", True, "two digits before the block"),
    ("1", "0.\\overline{9}", True, "0.999... is exactly 1"),
    ("\\frac{1}{7}", "0.\\overline{142856}", False, "one digit of the block wrong"),
    ("\\frac{3}{11}", "0.27", False, "truncated: the bar is missing"),
    ("0.\\overline{45}", "\\frac{5}{11}", True, "gold as the repeating decimal, answer as the fraction"),
    ("-\\frac{1}{6}", "-0.1\\overline{6}", True, "negative"),
]

# An option gold that gives its letter and value, as NuminaMath's amc_aime rows do ("\\textbf{(C) } 7";
# verify.choice_with_value): the letter, the value, or both are the answer; a wrong letter is wrong
# whatever the value, and a right letter with a wrong value contradicts itself (policy: wrong).
OPTION_WITH_VALUE = [
    ("\\textbf{(C) } 7", "C", True, "the letter alone"),
    ("\\textbf{(C) } 7", "7", True, "the value alone"),
    ("\\textbf{(C) } 7", "\\textbf{(C) } 7", True, "identical"),
    ("\\textbf{(C) } 7", "\\textbf{(B)}", False, "other letter"),
    ("\\textbf{(C) } 7", "8", False, "other value"),
    ("\\textbf{(C) } 7", "\\text{(B) } 7", False, "the value with the wrong letter"),
    ("\\textbf{(C) } 7", "\\text{(C) } 8", False, "policy: the right letter with a wrong value contradicts itself"),
    ("\\textbf{(B)}\\ 12", "(B)", True, "the letter in parentheses"),
    ("\\textbf{(B)}\\ 12", "12", True, "the value alone"),
    ("\\text{(D)}\\ \\frac{1}{2}", "0.5", True, "the value in another form"),
    ("\\text{(D)}\\ \\frac{1}{2}", "\\textbf{(D)}\\ \\frac{1}{2}", True, "letter and value, other decoration"),
    ("\\text{(D)}\\ \\frac{1}{2}", "\\frac{1}{3}", False, "other value"),
    ("\\mathrm{(A)}\\ 3\\sqrt{2}", "\\sqrt{18}", True, "the value in another form"),
    ("\\mathrm{(A)}\\ 3\\sqrt{2}", "\\mathrm{A}", True, "the letter in \\mathrm"),
    ("\\mathrm{(A)}\\ 3\\sqrt{2}", "E", False, "other letter"),
    ("$\\textbf{(E)}\\ 1000$", "1,000", True, "gold in $...$; the value with a separator"),
    ("B", "\\textbf{(B)}\\ 12", True, "letter gold; the letter with its option's value"),
    ("B", "\\textbf{(C)}\\ 12", False, "letter gold; another letter with a value"),
    ("\\text{(C)}", "\\text{(C)}+1", False, "an expression in the letter, not an option with its value"),
    ("\\textbf{(A)}\\ -1", "-1", True, "a negative option value"),
]

# A problem with a blank to fill in (\\boxed{\\phantom{2}}, \\boxed{}, \\boxed{\\quad}), restated in the answer
# beside the real box (verify.blank_boxes: skip). A blank box is not an answer: it never makes a
# generation hedged, and a generation with only blanks has no answer. [blank, answers...] or [answer, blank].
BLANKS = [
    ("4", ["\\phantom{2}", "4"], True, "the problem's blank, then the answer", BLANK_BEFORE),
    ("4", ["", "4"], True, "an empty box restated, then the answer", BLANK_BEFORE),
    ("4", ["4", "\\quad"], True, "the answer, then the blank it fills", BLANK_AFTER),
    ("4", ["\\ ", "4"], True, "a box holding a space", BLANK_BEFORE),
    ("4", ["\\qquad", "5"], False, "a wrong answer beside the blank", BLANK_BEFORE),
    ("\\frac{1}{2}", ["\\frac{1}{2}", "\\underline{\\quad}"], True, "an underlined blank after the answer", BLANK_AFTER),
    ("\\frac{1}{2}", ["\\phantom{0}", "\\frac{1}{3}"], False, "a wrong fraction beside the blank", BLANK_BEFORE),
    ("4", ["\\hspace{1cm}"], False, "only the blank: no answer", BLANK_ONLY),
    ("4", [""], False, "only an empty box: no answer", BLANK_ONLY),
    ("4", ["\\phantom{2}", "4", "5"], False, "a blank and two different answers: still a hedge", BLANK_BEFORE),
    ("0", ["\\quad", "0"], True, "the answer 0 is not a blank", BLANK_BEFORE),
    ("C", ["(\\quad)", "C"], True, "an option blank '( )', then the letter", BLANK_BEFORE),
    ("x=2", ["\\square", "x=2"], True, "a \\square placeholder", BLANK_BEFORE),
    ("12", ["12", "\\_\\_\\_"], True, "an underscore blank after the answer", BLANK_AFTER),
]

NUMBERS = [
    ("1.2\\times10^{6}", "1200000", True, "scientific notation expanded"),
    ("1200000", "1.2 \\times 10^6", True, "scientific notation"),
    ("\\pi", "3.14159", False, "a decimal approximation is not pi"),
    ("\\frac{1}{2}", "0.5000", True, "trailing zeros"),
    ("2^{10}", "1024", True, "evaluated power"),
    ("\\sqrt{2}", "1.414", False, "a decimal approximation is not sqrt(2)"),
    ("\\frac{1}{3}", "0.333333", False, "six-place approximation of 1/3"),
    ("2\\pi", "6.283185", False, "six-place approximation of 2 pi"),
    ("6.02\\times10^{23}", "6.02 \\cdot 10^{23}", True, "\\cdot instead of \\times"),
    ("0.001", "10^{-3}", True, "negative power of ten"),
    ("2^{100}", "1267650600228229401496703205376", True, "2^100 written out"),
    ("2^{100}", "1267650600228229401496703205377", False, "2^100 + 1: off by one in the last digit"),
    ("\\sqrt{2}", "1.41421356", False, "eight-place approximation of sqrt(2)"),
    ("1.5\\times10^{-4}", "0.00015", True, "decimal form"),
    ("1.5\\times10^{-4}", "0.0015", False, "off by a factor of ten"),
    ("10!", "3628800", True, "evaluated factorial"),
    ("\\binom{10}{3}", "120", True, "evaluated binomial coefficient"),
    ("\\binom{10}{3}", "720", False, "permutations instead of combinations"),
    ("e", "2.718", False, "a decimal approximation is not e"),
]

UNITS = [
    ("5", "5\\text{ cm}", True, "units in the answer, not in the gold"),
    ("12", "12\\,\\mathrm{m}", True, "\\mathrm unit after a thin space"),
    ("15", "\\$15", True, "dollar sign"),
    ("5", "7\\text{ cm}", False, "wrong value with a unit"),
    ("5\\text{ cm}", "5", True, "unit in the gold, not in the answer"),
    ("3\\text{ hours}", "180\\text{ minutes}", True, "the same duration in another unit"),
    ("36\\pi", "36\\pi \\text{ cm}^2", True, "unit after a pi expression"),
    ("36\\pi", "36 \\text{ cm}^2", False, "pi dropped"),
    ("20", "25\\text{ km/h}", False, "wrong value with a unit"),
    ("\\$4.50", "4.50", True, "gold with a dollar sign"),
    ("4.5", "\\$4.05", False, "wrong amount"),
    ("8", "8\\text{ apples}", True, "counted noun"),
    ("8", "\\text{8 apples}", True, "whole answer in \\text"),
    ("3\\text{ hours}", "3\\text{ minutes}", False, "same number, different unit: a different duration"),
    ("2", "2 \\mathrm{~kg}", True, "NuminaMath-style ~ spacing before the unit"),
    ("50", "5\\text{ m}", False, "wrong value with a unit"),
    ("72", "27 \\text{ cm}^2", False, "digits reversed, with a unit"),
]

TRAPS = [
    ("42", "42", False, "reasoning never closed (truncated): a box inside <think> is not a final answer", TRUNCATED_BOX),
    ("42", "42", False, "reasoning never closed; the right number is merely the last one written", TRUNCATED_PLAIN),
    ("42", "42", False, "right number in prose but no \\boxed{}: no last-number fallback", NO_BOX),
    ("42", "42", False, "**Final Answer** heading without a box", NO_BOX_FINAL_ANSWER),
    ("42", "42", False, "box only inside the reasoning, none after </think>", THINK_ONLY),
    ("42", "", False, "empty box", FINAL),
    ("42", ["41", "42"], False, "policy (hedges): two different boxes after </think> for a one-value gold", BOXES),
    ("42", ["42", "41"], False, "two boxes after </think>: the last is wrong", BOXES),
    ("3", ["x=2", "x=3", "3"], False, "policy (hedges): a wrong box beside the right ones after </think>", BOXES),
    ("42", ["24", "42"], True, "wrong scratch box in the reasoning, right final box", THINK_DIFFERS),
    ("42", ["42", "24"], False, "right scratch box in the reasoning, wrong final box", THINK_DIFFERS),
    ("42", "42", True, "no <think> tags at all: a complete solution with a final box", NO_TAGS),
    ("42", "24", False, "no <think> tags, wrong final box", NO_TAGS),
    ("42", "42", False, "the final box is never closed (truncated)", UNCLOSED_BOX),
    ("42", "42", True, "\\fbox instead of \\boxed", FBOX),
    ("42", "42", False, "cut off after </think> before any box", CUT_AFTER_THINK),
    ("42", ["42", ""], True, "policy: an empty box is not an answer (verify.blank_boxes); 42 is the one answer given", BOXES),
    ("\\frac{1}{2}", "\\frac{1}{2}", False, "reasoning never closed, right fraction in a box", TRUNCATED_BOX),
    ("2, 3", ["2", "3"], True, "two roots boxed separately in one final sentence: the answer is both", SAME_LINE_BOXES),
    ("5", ["5", "5"], True, "the same answer boxed twice", BOXES),
    ("42", "42", True, "pre-filled <think>: the generation holds only </think>, then a final box", PREFILLED),
    ("42", "42", False, "pre-filled <think>, cut off mid-reasoning after a tentative box", PREFILLED_TRUNCATED),
    ("\\frac{1}{2}", ["\\frac{1}{3}", "\\dfrac{1}{2}"], True, "wrong scratch box, right final \\dfrac", THINK_DIFFERS),
    ("42", "42", True, "nested \\boxed{\\boxed{42}}", NESTED),
]

# Multi-part answers in NuminaMath-1.5's styles: the gold has several parts and the generation boxes
# them separately. The boxes together are the answer: as a set where the gold is unordered (roots,
# solution pairs, letters), in order where it is ordered (a tuple, a point).
MULTI = [
    ("-3, 1", ["1", "-3"], True, "both roots boxed separately, in another order", SAME_LINE_BOXES),
    ("x=1 \\text{ or } x=-3", ["x=1", "x=-3"], True, "x = [1] or x = [-3]", NAMED_OR),
    ("x=1 \\text{ or } x=-3", ["x=1", "x=3"], False, "one root's sign wrong", NAMED_OR),
    ("\\{-2, 3\\}", ["3", "-2"], True, "the set's elements boxed separately", SAME_LINE_BOXES),
    ("\\{-2, 3\\}", "3", False, "one box, one root missing"),
    ("-2, 3", ["-2", "3", "4"], False, "an extra root", SAME_LINE_BOXES),
    ("x_1=2, x_2=5", ["x_1=2", "x_2=5"], True, "named roots", NAMED_AND),
    ("x_1=2, x_2=5", ["2", "5"], True, "roots without their names", SAME_LINE_BOXES),
    ("1, 2, 3", ["1", "2", "3"], True, "three solutions in three boxes", COMMA_BOXES),
    ("\\pm 2", ["2", "-2"], True, "plus-or-minus gold, both signs boxed", SAME_LINE_BOXES),
    ("\\pm 2", ["2", "2"], False, "only the positive root, boxed twice", SAME_LINE_BOXES),
    ("0, \\frac{1}{2}", ["0", "\\frac12"], True, "a fraction among the roots", SAME_LINE_BOXES),
    ("\\frac{\\pi}{6}, \\frac{5\\pi}{6}", ["\\frac{\\pi}{6}", "\\frac{5\\pi}{6}"], True, "two angles", COMMA_BOXES),
    ("\\frac{\\pi}{6}, \\frac{5\\pi}{6}", ["\\frac{\\pi}{6}", "\\frac{7\\pi}{6}"], False, "second angle wrong", COMMA_BOXES),
    ("(2,1),(1,2)", ["(2,1)", "(1,2)"], True, "solution pairs boxed separately", COMMA_BOXES),
    ("(2,1),(1,2)", ["(1,2)", "(2,1)"], True, "solution pairs in another order", COMMA_BOXES),
    ("(2,1),(1,2)", "(2,1)", False, "one box, one solution pair missing"),
    ("(2,1),(1,2)", ["(2,1)", "(2,2)"], False, "one solution pair wrong", COMMA_BOXES),
    ("(3,-1)", ["x=3", "y=-1"], True, "a system's solution: x = [3], y = [-1]", NAMED_AND),
    ("(3,-1)", ["x=-1", "y=3"], False, "unknowns swapped", NAMED_AND),
    ("(3,-1)", ["3", "-1"], True, "the pair's coordinates boxed bare, in order", SAME_LINE_BOXES),
    ("(3,-1)", ["-1", "3"], False, "the pair's coordinates in the wrong order", SAME_LINE_BOXES),
    ("(1,2)", ["x=1", "y=2"], True, "an ordered pair that also reads as an open interval", NAMED_AND),
    ("(1,2)", ["x=2", "y=1"], False, "unknowns swapped", NAMED_AND),
    ("x=2, y=3", ["x=2", "y=3"], True, "a system of two unknowns", NAMED_AND),
    ("x=2, y=3", ["x=3", "y=2"], False, "values swapped between the unknowns", NAMED_AND),
    ("x=2, y=3", ["y=3", "x=2"], True, "unknowns boxed in another order", NAMED_AND),
    ("x=1, y=2, z=3", ["x=1", "y=2", "z=3"], True, "three unknowns", NAMED_AND),
    ("x=1, y=2, z=3", ["x=1", "y=3", "z=2"], False, "two values swapped", NAMED_AND),
    ("a=2, b=-3", ["a=2", "b=-3"], True, "two parameters", NAMED_AND),
    ("a=2, b=-3", "a=2", False, "one box, one parameter missing"),
    ("(-\\infty,1)\\cup(3,+\\infty)", ["(-\\infty,1)", "(3,+\\infty)"], True, "the union's intervals boxed separately", SAME_LINE_BOXES),
    ("(-\\infty,1)\\cup(3,+\\infty)", ["(-\\infty,1)", "(4,+\\infty)"], False, "one endpoint wrong", SAME_LINE_BOXES),
    ("(-\\infty,-2]\\cup[2,+\\infty)", ["(-\\infty,-2]", "[2,+\\infty)"], True, "closed endpoints", SAME_LINE_BOXES),
    ("(-\\infty,-2]\\cup[2,+\\infty)", ["(-\\infty,-2)", "(2,+\\infty)"], False, "endpoints excluded", SAME_LINE_BOXES),
    ("[0,1]\\cup[2,3]", ["[2,3]", "[0,1]"], True, "intervals in another order", SAME_LINE_BOXES),
    ("(-\\infty,1)\\cup(3,+\\infty)", "(-\\infty,1)", False, "one box, one interval missing"),
    ("ACD", ["A", "C", "D"], True, "several correct options boxed separately", SAME_LINE_BOXES),
    ("ACD", ["A", "C"], False, "one correct option missing", SAME_LINE_BOXES),
    ("ACD", "ACD", True, "the options in one box"),
    ("ACD", "A, C, D", True, "the options in one box, with commas"),
    ("ACD", "\\text{ACD}", True, "the options in \\text"),
    ("BD", ["B", "D"], True, "two options", COMMA_BOXES),
    ("BD", ["B", "C", "D"], False, "an extra option", COMMA_BOXES),
    ("AB", "BA", True, "the options in another order"),
    ("BC", "\\text{B and C}", True, "the options joined by 'and'"),
    ("a_n=2n-1, S_n=n^2", ["a_n=2n-1", "S_n=n^2"], True, "two parts: the general term and the sum", PARTS),
    ("a_n=2n-1, S_n=n^2", ["a_n=2n+1", "S_n=n^2"], False, "first part wrong", PARTS),
    ("a_n=2n-1, S_n=n^2", ["2n-1", "n^2"], True, "two parts without their names", PARTS),
    ("3, 5", ["3", "5"], True, "two parts, two numbers", PARTS),
    ("3, 5", ["3", "6"], False, "second part wrong", PARTS),
    ("\\frac{1}{2}, 2", ["\\frac{1}{2}", "2"], True, "a fraction and an integer", PARTS),
    ("\\frac{1}{2}, 2", ["2", "\\frac{1}{2}"], False, "the two parts' answers swapped", PARTS),
    ("2, 3", ["2", "3"], True, "two values in two boxes", COMMA_BOXES),
    ("1; 2", ["1", "2"], True, "gold parts separated by a semicolon", PARTS),
    ("-3, 1", ["x=1", "x=-3", "x=1 \\text{ or } x=-3"], True, "the roots, then both restated", RESTATED),
    ("(2,1),(1,2)", ["(2,1)", "(1,2)", "(2,1),(1,2)"], True, "the pairs, then the list restated", RESTATED),
    ("\\{-1, 2\\}", ["-1", "2", "\\{-1,2\\}"], True, "the roots, then the set", RESTATED),
    ("\\{-1, 2\\}", ["-1", "2", "\\{-1,3\\}"], False, "the roots, then a wrong set", RESTATED),
    ("x=2, y=3", ["2", "3"], True, "a system's values boxed bare, in the gold's order", SAME_LINE_BOXES),
    ("(0,0),(1,1),(2,4)", ["(0,0)", "(1,1)"], False, "one of three points missing", COMMA_BOXES),
    ("(0,0),(1,1),(2,4)", ["(2,4)", "(0,0)", "(1,1)"], True, "three points in another order", COMMA_BOXES),
]

# A gold of one value against several different boxes after the reasoning: a hedge, never accepted
# (policy: the generation did not commit to one answer); the same value boxed twice is not a hedge.
HEDGES = [
    ("3", ["2", "3"], False, "so it is [2]; no wait, [3]", HEDGE_NO_WAIT),
    ("3", ["3", "2"], False, "so it is [3]; no wait, [2]", HEDGE_NO_WAIT),
    ("\\frac{1}{2}", ["\\frac{1}{2}", "\\frac{1}{3}"], False, "two candidate fractions", HEDGE_OR),
    ("\\frac{1}{2}", ["\\frac{1}{2}", "0.5"], True, "the same value as a fraction and a decimal", SAME_VALUE),
    ("3", ["x=3", "3"], True, "the same value named, then bare", SAME_VALUE),
    ("42", ["42", "042"], True, "the same integer, once padded", SAME_VALUE),
    ("C", ["A", "C"], False, "either (A) or (C)", HEDGE_OR),
    ("C", ["C", "\\text{C}"], True, "the same letter in two spellings", SAME_VALUE),
    ("7", ["6", "7", "8"], False, "three candidates", HEDGE_OR),
    ("2\\sqrt{3}", ["2\\sqrt{3}", "\\sqrt{12}"], True, "the same radical in two forms", SAME_VALUE),
    ("2\\sqrt{3}", ["2\\sqrt{3}", "3\\sqrt{2}"], False, "two candidate radicals", HEDGE_OR),
    ("12", ["12", "14"], False, "two answers for two readings of the problem", HEDGE_OR),
    ("\\frac{\\pi}{3}", ["\\frac{\\pi}{3}", "\\frac{2\\pi}{3}"], False, "two candidate angles", HEDGE_OR),
    ("y=2x+1", ["y=2x+1", "y=2x-1"], False, "two candidate lines", HEDGE_NO_WAIT),
    ("y=2x+1", ["2x+1", "y=2x+1"], True, "the same line, right side then equation", SAME_VALUE),
    ("5", ["5", "x=5"], True, "the same value, then named", SAME_VALUE),
    ("100", ["99", "100"], False, "off by one, then corrected in the final answer", HEDGE_NO_WAIT),
    ("\\text{Wednesday}", ["\\text{Tuesday}", "\\text{Wednesday}"], False, "two candidate days", HEDGE_OR),
    ("(2,5]", ["(2,5]", "[2,5]"], False, "two candidate intervals", HEDGE_OR),
    ("1", ["0", "1"], False, "two candidates", HEDGE_OR),
    ("-1", ["1", "-1"], False, "sign hedged", HEDGE_NO_WAIT),
    ("\\frac{3}{4}", ["\\frac{3}{4}", "0.75"], True, "fraction, then decimal", SAME_VALUE),
    ("6", ["5", "7"], False, "two wrong candidates", HEDGE_OR),
]

# Golds as broken source rows store them. Unbalanced braces: nothing can be compared with them, and
# no answer is accepted (policy); a gold stored inside its own \boxed{} is that box's contents.
MALFORMED_GOLDS = [
    ("\\boxed{5", "5", False, "policy: unbalanced \\boxed{ in the gold; nothing is accepted against it"),
    ("\\frac{1}{2", "\\frac{1}{2}", False, "policy: unbalanced braces in the gold"),
    ("\\boxed{5}", "5", True, "gold stored with its box"),
    ("$\\boxed{\\frac{1}{2}}$", "0.5", True, "gold stored with its box, in $...$"),
    ("\\boxed{5}", "6", False, "gold stored with its box; wrong answer"),
    ("\\frac{1}{2}}", "\\frac{1}{2}", False, "policy: an extra closing brace in the gold"),
    ("\\{1, 2\\}", "1, 2", True, "escaped set braces are balanced: not malformed"),
    ("\\boxed{3}}", "3", False, "policy: an extra closing brace after the box"),
    ("\\sqrt{2", "\\sqrt{2}", False, "policy: unbalanced braces in the gold"),
    ("\\boxed{x=1", "1", False, "policy: unbalanced \\boxed{ around an equation"),
    ("\\boxed{(1,2)}", "(1, 2)", True, "a pair stored with its box"),
]

CATEGORIES = [
    ("int", "integers", INTEGERS),
    ("frac", "fractions_decimals", FRACTIONS),
    ("expr", "radicals_expressions", EXPRESSIONS),
    ("const", "pi_constants", CONSTANTS),
    ("deg", "degrees_radians", DEGREES),
    ("pct", "percents", PERCENTS),
    ("ivl", "intervals_inequalities", INTERVALS),
    ("set", "sets_tuples", SETS),
    ("eqn", "equations_relations", EQUATIONS),
    ("mcq", "mcq_letters", MCQ),
    ("text", "text_answers", TEXT),
    ("mat", "matrices", MATRICES),
    ("cplx", "complex_numbers", COMPLEX),
    ("num", "scientific_rounding", NUMBERS),
    ("unit", "units", UNITS),
    ("trap", "traps", TRAPS),
    ("multi", "multi_part_answers", MULTI),
    ("hedge", "hedges", HEDGES),
    ("gold", "malformed_golds", MALFORMED_GOLDS),
    ("rep", "repeating_decimals", REPEATING),
    ("optv", "option_letter_with_value", OPTION_WITH_VALUE),
    ("blank", "blank_boxes", BLANKS),
]

# --- R1-style wrapping -----------------------------------------------------------------------------

OPENERS = [
    "Okay, let me work through this.",
    "Okay, so I need to solve this problem. Let me read it again carefully.",
    "Alright, let's see. The problem gives a few conditions and asks for one quantity.",
    "Hmm, let me start by understanding what is being asked here.",
    "Okay, let's tackle this step by step.",
]

STEPS = [
    "First, if I multiply {a} by {b} I get {ab}.",
    "So the sum of the first two parts is {a} + {b} = {apb}.",
    "Let me double-check: {ab} divided by {b} is {a}, good.",
    "Substituting back, the left side becomes ${a}x + {b}$ and the right side is ${apb}$.",
    "Wait, I should be careful with the sign here. The term is $-{b}$, not ${b}$.",
    "Let me verify with a small case, say $n = {c}$. That gives {c2}, which matches the pattern.",
    "Then the ratio is $\\frac{{{a}}}{{{apb}}}$, which doesn't simplify further.",
    "Squaring both sides gives $({a})^2 = {a2}$, so I have to remember to check for extraneous solutions later.",
    "Hmm, that doesn't seem right. Let me recount the cases.",
    "There are {c} cases in total, and by symmetry each contributes the same amount.",
    "So the discriminant is ${b}^2 - 4 \\cdot {c} = {disc}$.",
    "Let me consider the constraint again: everything has to be consistent with the given {c} conditions.",
]

WRONG_GUESSES = [
    "So maybe the answer is {w}? No wait, I dropped a factor somewhere. Let me redo that part.",
    "At first I thought it was $\\boxed{{{w}}}$, but that ignores one of the conditions.",
    "That would give {w}... but no, I made an arithmetic error when I combined the terms.",
    "Hmm, so tentatively $\\boxed{{{w}}}$? Wait, I should double-check the second case before committing.",
]

CLOSERS = [
    "Yes, that checks out.",
    "I think that's right. Let me just make sure I answered what was asked.",
    "So that should be the final answer.",
    "Everything is consistent now.",
]

SUMMARIES = [
    "To solve the problem, we set up the equation from the given conditions and simplify. "
    "Multiplying $ {a} \\times {b} = {ab} $ and checking the remaining cases confirms the result.",
    "We compute the quantities step by step:\n\n1. From the first condition, ${a} + {b} = {apb}$.\n"
    "2. Substituting into the second condition and simplifying gives the value below.",
    "Checking all {c} cases and using symmetry, every case leads to the same value.",
    "After simplifying the expression and verifying that no solution is extraneous, we obtain the result.",
]

FINALS = [
    "**Final Answer**\n\\boxed{{{x}}}",
    "{summary}\n\nThe answer is $\\boxed{{{x}}}$.",
    "$$\\boxed{{{x}}}$$",
    "{summary}\n\nTherefore, the final answer is \\[\\boxed{{{x}}}\\]",
    "\\boxed{{{x}}}",
    "{summary}\n\nThus, the answer is $\\boxed{{ {x} }}$.",
    "{summary}\n\n**Final Answer**\n\\[\n\\boxed{{{x}}}\n\\]",
    "{summary} So the answer is \\(\\boxed{{{x}}}\\).",
]


def numbers(rng: random.Random) -> dict:
    a, b, c = rng.randint(2, 19), rng.randint(2, 19), rng.randint(2, 6)
    return {"a": a, "b": b, "c": c, "ab": a * b, "apb": a + b, "a2": a * a, "c2": c * c, "disc": b * b - 4 * c}


def reasoning(rng: random.Random, nums: dict, wrong: str | None) -> str:
    """The inside of <think>: several sentences, sometimes a wrong guess that is corrected."""
    parts = [rng.choice(OPENERS)]
    parts += [s.format(**nums) for s in rng.sample(STEPS, rng.randint(3, 5))]
    if wrong is not None:
        parts.append(rng.choice(WRONG_GUESSES).format(w=wrong))
        parts += [s.format(**nums) for s in rng.sample(STEPS, 2)]
    parts.append(rng.choice(CLOSERS))
    # Paragraph breaks between some sentences, as R1 writes them.
    out = parts[0]
    for p in parts[1:]:
        out += ("\n\n" if rng.random() < 0.35 else " ") + p
    return out


def wrong_guess(rng: random.Random) -> str | None:
    return str(rng.randint(2, 99)) if rng.random() < 0.4 else None


def final_block(rng: random.Random, nums: dict, answer: str) -> str:
    return rng.choice(FINALS).format(x=answer, summary=rng.choice(SUMMARIES).format(**nums))


def generation(case_id: str, answer, shape: str) -> str:
    rng = random.Random(case_id)  # str seeds are hashed with sha512: stable across runs and Python builds
    nums = numbers(rng)
    think = reasoning(rng, nums, wrong_guess(rng) if shape in (FINAL, FBOX, NESTED, NO_TAGS, PREFILLED) else None)
    summary = rng.choice(SUMMARIES).format(**nums)
    if shape == FINAL:
        return f"<think>\n{think}\n</think>\n\n{final_block(rng, nums, answer)}"
    if shape == TRUNCATED_BOX:
        return f"<think>\n{think}\n\nPutting it all together, the answer should be $\\boxed{{{answer}}}$. But wait, let me re-examine the case where"
    if shape == TRUNCATED_PLAIN:
        return f"<think>\n{think}\n\nAdding the two contributions, the total comes to {answer}"
    if shape == NO_BOX:
        return f"<think>\n{think}\n</think>\n\n{summary}\n\nThe answer is {answer}."
    if shape == NO_BOX_FINAL_ANSWER:
        return f"<think>\n{think}\n</think>\n\n{summary}\n\n**Final Answer**\n{answer}"
    if shape == THINK_ONLY:
        return f"<think>\n{think} So the answer is $\\boxed{{{answer}}}$.\n</think>\n\n{summary}\n\nThis completes the solution."
    if shape == BOXES:
        first, *rest = answer
        text = f"<think>\n{think}\n</think>\n\n{summary}\n\nThis gives $\\boxed{{{first}}}$."
        for a in rest:
            text += f"\n\nWait, let me double-check the last step once more. Rechecking, the final answer is $\\boxed{{{a}}}$."
        return text
    if shape == THINK_DIFFERS:
        scratch, final = answer
        return (
            f"<think>\n{think} My first attempt gives $\\boxed{{{scratch}}}$. Let me check that against the conditions"
            f" once more before I commit.\n</think>\n\n{final_block(rng, nums, final)}"
        )
    if shape == NO_TAGS:
        return f"{summary}\n\n{think}\n\nTherefore, the answer is $\\boxed{{{answer}}}$."
    if shape == PREFILLED:
        return f"{think}\n</think>\n\n{final_block(rng, nums, answer)}"
    if shape == PREFILLED_TRUNCATED:
        boxes = answer if isinstance(answer, list) else [answer]
        scratch = " ".join(f"One candidate is $\\boxed{{{b}}}$." for b in boxes)
        return f"{think}\n\n{scratch} Hmm, so tentatively that's it, but wait, let me check the case where $n"
    if shape == UNCLOSED_BOX:
        return f"<think>\n{think}\n</think>\n\n{summary}\n\nThe answer is $\\boxed{{{answer}"
    if shape == CUT_AFTER_THINK:
        return f"<think>\n{think}\n</think>\n\n{summary}\n\nSo the answer is"
    if shape == FBOX:
        return f"<think>\n{think}\n</think>\n\n{summary}\n\nThe answer is $\\fbox{{{answer}}}$."
    if shape == SAME_LINE_BOXES:
        boxed = " and ".join(f"$\\boxed{{{a}}}$" for a in answer)
        return f"<think>\n{think}\n</think>\n\n{summary}\n\nThe solutions are {boxed}."
    if shape in (NAMED_AND, NAMED_OR, COMMA_BOXES, PARTS, RESTATED, HEDGE_NO_WAIT, HEDGE_OR, SAME_VALUE):
        return f"<think>\n{think}\n</think>\n\n{summary}\n\n{several_boxes(answer, shape)}"
    if shape in (BLANK_BEFORE, BLANK_AFTER, BLANK_ONLY):
        return f"<think>\n{think}\n</think>\n\n{summary}\n\n{blank_beside(answer, shape)}"
    if shape == NESTED:
        return f"<think>\n{think}\n</think>\n\n{summary}\n\nThe answer is $\\boxed{{\\boxed{{{answer}}}}}$."
    raise ValueError(f"unknown shape {shape!r}")


def boxed(item: str) -> str:
    """`x=3` as R1 writes an assigned unknown, `$x = \\boxed{3}$`; anything else as `$\\boxed{...}$`."""
    name, _, value = item.partition("=")
    if value and len(name) <= 4 and "\\" not in name and "(" not in name:
        return f"${name} = \\boxed{{{value}}}$"
    return f"$\\boxed{{{item}}}$"


def several_boxes(answer: list[str], shape: str) -> str:
    if shape == NAMED_AND:
        return "So " + ", ".join(boxed(a) for a in answer[:-1]) + f" and {boxed(answer[-1])}."
    if shape == NAMED_OR:
        return "Hence " + " or ".join(boxed(a) for a in answer) + "."
    if shape == COMMA_BOXES:
        return "The solutions are $" + ", ".join(f"\\boxed{{{a}}}" for a in answer) + "$."
    if shape == PARTS:
        return "**Final Answer**\n" + "\n".join(f"({n}) {boxed(a)}" for n, a in enumerate(answer, 1))
    if shape == RESTATED:
        *parts, whole = answer
        return " or ".join(boxed(a) for a in parts) + f", so the answer is $\\boxed{{{whole}}}$."
    if shape == HEDGE_NO_WAIT:
        first, *rest = answer
        return f"So it is {boxed(first)}" + "".join(f"; no wait, {boxed(a)}" for a in rest) + "."
    if shape == HEDGE_OR:
        return "The answer is " + " or ".join(boxed(a) for a in answer) + ", depending on how the question is read."
    if shape == SAME_VALUE:
        return f"The answer is {boxed(answer[0])}, that is, " + ", ".join(boxed(a) for a in answer[1:]) + "."
    raise ValueError(f"unknown shape {shape!r}")


def blank_beside(answer: list[str], shape: str) -> str:
    if shape == BLANK_BEFORE:
        blank, *rest = answer
        return f"Filling in $\\boxed{{{blank}}} + 8 = 12$, the missing number is " + " or ".join(f"$\\boxed{{{a}}}$" for a in rest) + "."
    if shape == BLANK_AFTER:
        *rest, blank = answer
        return (
            "The answer is " + " or ".join(f"$\\boxed{{{a}}}$" for a in rest) + f": it goes in the blank of $\\boxed{{{blank}}} + 8 = 12$."
        )
    (blank,) = answer
    return f"So the blank in $\\boxed{{{blank}}} + 8 = 12$ is where the answer goes."


def cases() -> list[dict]:
    out = []
    for prefix, category, table in CATEGORIES:
        for n, row in enumerate(table, 1):
            gold, answer, expected, note, *shape = row
            case_id = f"{prefix}-{n:03d}"
            out.append(
                {
                    "id": case_id,
                    "category": category,
                    "gold": gold,
                    "generation": generation(case_id, answer, shape[0] if shape else FINAL),
                    "expected": expected,
                    "note": note,
                }
            )
    return out


def main() -> None:
    rows = cases()
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate ids"
    with OUT.open("w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} cases to {OUT}")


if __name__ == "__main__":
    main()
