"""Tests for distillery.verification (answer extraction and Math-Verify checks) and
distillery.stages.verify.is_reasoning_complete."""

from __future__ import annotations

from pathlib import Path

import pytest

from distillery.config import VerifyConfig
from distillery.stages.verify import is_reasoning_complete
from distillery.verification import Check, PoolStats, answer_region, check_many, check_problem, extract_answer, last_boxed

TIMEOUT = 5
ROUND = 6


def check_one(gold: str, generation: str | None) -> Check:
    (result,) = check_problem(gold, [generation], TIMEOUT, ROUND)
    return result


def boxed(ans: str) -> str:
    return f"<think>Let me work this out carefully.</think>\nTherefore the answer is $\\boxed{{{ans}}}$."


# --- extraction ----------------------------------------------------------------------------------


def test_last_boxed_nested_braces():
    assert last_boxed(r"so $\boxed{\frac{1}{2}}$.") == r"\frac{1}{2}"
    assert last_boxed(r"\boxed{\sqrt{\frac{a}{b^{2}}}} done") == r"\sqrt{\frac{a}{b^{2}}}"


def test_last_boxed_last_wins():
    assert last_boxed(r"first \boxed{1}, then \boxed{2}, finally \boxed{3}.") == "3"


def test_last_boxed_fbox_and_spacing():
    assert last_boxed(r"answer: \fbox{7}") == "7"
    assert last_boxed(r"\boxed{1} and \fbox{ 9 }") == "9"
    assert last_boxed(r"\boxed {12}") == "12"


def test_last_boxed_none_and_unclosed():
    assert last_boxed(None) is None
    assert last_boxed("") is None
    assert last_boxed("no box here, answer 42") is None
    # an unclosed last box does not count; the earlier closed one does
    assert last_boxed(r"\boxed{5} then \boxed{6") == "5"


def test_extract_answer_unclosed_think():
    assert answer_region("<think>I think \\boxed{4} maybe") is None
    assert extract_answer("<think>I think \\boxed{4} maybe") is None


def test_extract_answer_after_think():
    gen = "<think>scratch: \\boxed{3}</think> The answer is \\boxed{4}."
    assert extract_answer(gen) == "4"
    # a box only inside the think block does not count
    assert extract_answer("<think>maybe \\boxed{3}</think> so I am done.") is None
    # without any think block the whole text is the answer region
    assert extract_answer("plain \\boxed{8}") == "8"


def test_is_reasoning_complete():
    assert is_reasoning_complete("<think>a</think> \\boxed{1}", "stop") is True
    assert is_reasoning_complete("no think block \\boxed{1}", "stop") is True
    assert is_reasoning_complete("<think>a \\boxed{1}", "stop") is False
    assert is_reasoning_complete("<think>a</think> \\boxed{1}", "length") is False
    assert is_reasoning_complete(None, "stop") is False
    assert is_reasoning_complete("", "stop") is False
    assert is_reasoning_complete("<think>a</think>", None) is False


# --- check_problem -------------------------------------------------------------------------------


def test_fraction_equals_decimal():
    r = check_one("0.5", boxed(r"\frac{1}{2}"))
    assert (r.status, r.correct, r.extracted) == ("ok", True, r"\frac{1}{2}")


def test_wrong_answer_is_mismatch():
    r = check_one("0.5", boxed(r"\frac{1}{3}"))
    assert (r.status, r.correct) == ("mismatch", False)


def test_truncated_without_box_is_no_answer():
    r = check_one("42", "Adding these up ... so the answer is 42")
    assert r == Check("no_answer", False, None)
    r = check_one("42", "<think>... so the answer is \\boxed{42}")  # reasoning never closed
    assert r == Check("no_answer", False, None)


def test_aime_leading_zero():
    assert check_one("025", boxed("25")).status == "ok"
    assert check_one("025", boxed("25")).correct is True
    assert check_one("025", boxed("52")).correct is False


def test_interval():
    assert check_one("(2, 5]", boxed("(2,5]")).correct is True
    assert check_one("(2, 5]", boxed(r"\left(2, 5\right]")).correct is True
    assert check_one("(2, 5]", boxed("(2, 5)")).correct is False


def test_set_order_does_not_matter():
    r = check_one(r"\{1, 3\}", boxed(r"\{3, 1\}"))
    assert (r.status, r.correct) == ("ok", True)
    assert check_one(r"\{1, 3\}", boxed(r"\{1, 4\}")).correct is False


def test_mcq_letter():
    assert check_one("C", boxed("C")).correct is True
    assert check_one("C", boxed(r"\text{C}")).correct is True
    assert check_one("C", boxed("D")).correct is False


def test_text_answer():
    r = check_one("Wednesday", boxed(r"\text{Wednesday}"))
    assert (r.status, r.correct) == ("ok", True)
    assert check_one("Wednesday", boxed(r"\text{Thursday}")).correct is False


def test_unparseable_gold():
    # Balanced but meaningless: the answer cannot be compared to it, which is the gold's status,
    # not a mismatch of the model's answer.
    r = check_one(r"\frac{}{}", boxed("7"))
    assert (r.status, r.correct, r.extracted) == ("gold_unparseable", False, "7")


@pytest.mark.parametrize("gold", [r"\frac{", r"\boxed{5", r"\frac{1}{2}}", r"\boxed{3}}", r"\sqrt{2"])
def test_gold_with_unbalanced_braces_is_malformed(gold):
    """A broken source row says so, and no sympy runs on it: even the gold's own digits are not accepted."""
    r = check_one(gold, boxed("5"))
    assert (r.status, r.correct, r.extracted) == ("gold_malformed", False, "5")
    assert check_one(gold, "no box here").status == "no_answer"


def test_set_braces_are_not_grouping_braces():
    from distillery.verification import braces_balanced

    assert braces_balanced(r"\left\{ x \mid x > 0 \right.") and braces_balanced(r"\{1, \frac{1}{2}\}")
    assert not braces_balanced(r"\{1, \frac{1}{2\}")


@pytest.mark.parametrize("gold", [r"\boxed{5}", r"$\boxed{5}$", r" \fbox{5}. "])
def test_gold_stored_in_its_box_is_its_contents(gold):
    assert check_one(gold, boxed("5")).status == "ok"
    assert check_one(gold, boxed("6")).status == "mismatch"


def test_empty_gold_is_unparseable():
    r = check_one("", boxed("7"))
    assert (r.status, r.correct) == ("gold_unparseable", False)


def test_several_generations_in_order():
    gens = [boxed("1/2"), None, boxed("3"), "<think>unfinished", boxed("0.5")]
    results = check_problem("1/2", gens, TIMEOUT, ROUND)
    assert [r.status for r in results] == ["ok", "no_answer", "mismatch", "no_answer", "ok"]
    assert [r.correct for r in results] == [True, False, False, False, True]


def test_hostile_generation_is_not_executed():
    marker = Path("/tmp/pwned_distillery")
    if marker.exists():
        marker.unlink()
    gen = boxed("__import__('os').system('touch /tmp/pwned_distillery')")
    for gold in ("0", "42", "__import__('os').system('touch /tmp/pwned_distillery')x"):
        r = check_one(gold, gen)
        assert r.correct is False
    assert not marker.exists()


# --- check_many ----------------------------------------------------------------------------------


def test_check_many_keeps_input_order():
    items = []
    expected = []
    for i in range(10):
        gold = str(i * 7)
        if i % 3 == 0:
            items.append((gold, [boxed(str(i * 7)), boxed(str(i * 7 + 1))]))
            expected.append([True, False])
        elif i % 3 == 1:
            items.append((gold, [boxed(str(i * 7 + 1))]))
            expected.append([False])
        else:
            items.append((gold, [None, boxed(str(i * 7))]))
            expected.append([False, True])
    results = check_many(items, VerifyConfig(workers=2))
    assert len(results) == 10
    assert [[c.correct for c in per] for per in results] == expected
    assert [per[-1].extracted for per in results] == [str(i * 7 + (1 if i % 3 == 0 or i % 3 == 1 else 0)) for i in range(10)]


def test_check_many_empty():
    assert check_many([], VerifyConfig()) == []


# --- deadline, limits, box policy -------------------------------------------------------------------

# An answer that ignores math-verify's signal-based timeout: evaluating the tower is one long C call.
POWER_TOWER = "9^{9^{9^{9^{9}}}}"


def test_a_pathological_answer_costs_one_deadline_not_the_shard():
    # math-verify's own timeout is set past the deadline, so the outer deadline is what stops it
    # (as it must for a computation that ignores the signal).
    cfg = VerifyConfig(workers=1, item_deadline_s=3, timeout_s=60, precheck_complexity=False)
    items = [("1", [boxed(POWER_TOWER), boxed("1"), boxed("2")]), ("3", [boxed(r"\frac{6}{2}"), boxed("4")])]
    stats = PoolStats()
    started = __import__("time").monotonic()
    out = check_many(items, cfg, stats=stats)
    took = __import__("time").monotonic() - started
    assert [[c.status for c in per] for per in out] == [["timeout", "ok", "mismatch"], ["ok", "mismatch"]]
    assert stats.killed == 1 and stats.workers_started == 2 and 3 <= stats.slowest_item_s < 10 and took < 30


def test_overlong_answers_are_not_parsed():
    cfg = VerifyConfig(max_answer_chars=50)
    [r] = check_problem("7", [boxed("7+" * 100 + "0")], cfg=cfg)
    assert (r.status, r.correct) == ("answer_too_long", False)


def test_multiple_boxes_settings():
    gen = "<think>maybe \\boxed{9}</think> First $\\boxed{3}$, finally $\\boxed{4}$."
    [by_gold] = check_problem("4", [gen])
    [last] = check_problem("4", [gen], cfg=VerifyConfig(multiple_boxes="last"))
    [agree] = check_problem("4", [gen], cfg=VerifyConfig(multiple_boxes="all_agree"))
    assert (by_gold.status, last.status, agree.status) == ("hedged", "ok", "mismatch")
    assert by_gold.extracted == "3; 4"


def final(text: str) -> str:
    return f"<think>Scratch: $\\boxed{{99}}$ is wrong.</think>\nSo {text}."


@pytest.mark.parametrize(
    "gold, answer, status",
    [
        # several parts: the boxes are one answer
        ("-3, 1", "$x = \\boxed{1}$ or $x = \\boxed{-3}$", "ok"),
        ("(2,1),(1,2)", "$\\boxed{(1,2)}, \\boxed{(2,1)}$", "ok"),
        ("(3,-1)", "$x = \\boxed{3}$, $y = \\boxed{-1}$", "ok"),
        ("(3,-1)", "$\\boxed{-1}$ and $\\boxed{3}$", "mismatch"),  # a pair is ordered
        ("x=2, y=3", "$x = \\boxed{3}$, $y = \\boxed{2}$", "mismatch"),  # the names are kept
        ("(-\\infty,1)\\cup(3,+\\infty)", "$\\boxed{(-\\infty,1)}$ and $\\boxed{(3,+\\infty)}$", "ok"),
        ("-2, 3", "$\\boxed{-2}$, $\\boxed{3}$, $\\boxed{4}$", "mismatch"),
        ("\\{-1, 2\\}", "$\\boxed{-1}$, $\\boxed{2}$, so $\\boxed{\\{-1,2\\}}$", "ok"),  # the whole restated
        # one value: a hedge unless every box is the gold
        ("3", "it is $\\boxed{2}$; no wait, $\\boxed{3}$", "hedged"),
        ("\\frac{1}{2}", "$\\boxed{\\frac12}$, that is, $\\boxed{0.5}$", "ok"),
        ("\\frac{1}{2}", "$\\boxed{\\frac13}$ or $\\boxed{\\frac14}$", "mismatch"),
        ("42", "$\\boxed{41}$ or $\\boxed{42}$", "hedged"),  # integers, decided without sympy
        ("42", "$\\boxed{042}$, $\\boxed{42}$", "ok"),
        # option letters, as sets of letters
        ("ACD", "$\\boxed{A}$, $\\boxed{C}$, $\\boxed{D}$", "ok"),
        ("ACD", "$\\boxed{A, C}$", "mismatch"),
        ("C", "$\\boxed{A}$ or $\\boxed{C}$", "hedged"),
        ("B", "$\\boxed{\\textbf{(B)}}$", "ok"),
    ],
)
def test_several_boxes_by_gold(gold, answer, status):
    r = check_one(gold, final(answer))
    assert (r.status, r.correct) == (status, status == "ok"), r


def test_several_boxes_by_gold_in_worker_processes():
    """The worker path decides the same as the in-process one (a tuple of boxes crosses the pipe)."""
    items = [
        ("(3,-1)", [final("$x = \\boxed{3}$, $y = \\boxed{-1}$"), final("$\\boxed{-1}$ and $\\boxed{3}$")]),
        ("\\frac{2}{3}", [final("$\\boxed{\\frac23}$ or $\\boxed{\\frac32}$")]),
    ]
    out = check_many(items, VerifyConfig(), workers=1)
    assert [[c.status for c in per] for per in out] == [["ok", "mismatch"], ["hedged"]]


def test_named_boxes_keep_their_unknown_but_not_a_coefficient():
    from distillery.verification import named_boxes

    text = "So $x = \\boxed{3}$, $y_1 = \\boxed{-1}$, $2z = \\boxed{4}$ and \\boxed{w=5}."
    assert named_boxes(text) == ["x=3", "y_1=-1", "4", "w=5"]


@pytest.mark.parametrize(
    "answer, flagged",
    [
        ("7^{123456789}", True),
        ("9^{9^{9^{9^{9}}}}", True),
        ("10^{10^{10}}", True),
        ("(10^{10})!", True),
        ("100000!", True),
        ("2^{100}", False),
        ("3^{2^{3}}", False),
        ("2^{2^{10}}", False),
        ("(2^3)!", False),
        ("5!", False),
        ("\\frac{1}{2^{10}}", False),
    ],
)
def test_too_complex_answers_are_decided_without_sympy(answer, flagged):
    from distillery.verification import too_complex

    assert too_complex(answer) is flagged
    if flagged:
        [r] = check_problem("1", [boxed(answer)])
        assert (r.status, r.correct) == ("too_complex", False)


def test_equal_answers_of_a_problem_share_one_comparison():
    """Each distinct answer of a problem crosses to a worker once; every generation still gets its verdict."""
    gens = [boxed("0.5"), boxed("0.25"), boxed("0.5"), boxed(r"\dfrac{2}{4}"), boxed("0.25")]
    [checks] = check_many([(r"\frac{1}{2}", gens)], VerifyConfig(workers=1))
    assert [c.status for c in checks] == ["ok", "mismatch", "ok", "ok", "mismatch"]


def test_each_answer_form_setting_decides_its_class():
    """Each setting of the forms math-verify does not read, on and off (off: math-verify's own reading)."""

    def status(gold: str, final: str, **settings) -> str:
        return check_problem(gold, [f"<think>Scratch.</think>\n{final}"], cfg=VerifyConfig(**settings))[0].status

    blank = "Filling in $\\boxed{\\phantom{2}} + 8 = 12$, the missing number is $\\boxed{4}$."
    assert (status("4", blank), status("4", blank, blank_boxes="count")) == ("ok", "hedged")
    assert status("4", "So the blank is $\\boxed{\\quad}$.") == "no_answer"
    radians = "The angle is $\\boxed{\\frac{\\pi}{3}}$."
    assert (status("60^\\circ", radians), status("60^\\circ", radians, degrees="drop_sign")) == ("ok", "mismatch")
    assert status("60", radians) == "mismatch"  # no degree sign: 60 is a number
    repeating = "So $\\boxed{0.1\\overline{6}}$."
    assert (status("\\frac{1}{6}", repeating), status("\\frac{1}{6}", repeating, repeating_decimals=False)) == ("ok", "mismatch")
    letter = "The answer is $\\boxed{C}$."
    assert (status("\\textbf{(C) } 7", letter), status("\\textbf{(C) } 7", letter, choice_with_value=False)) == ("ok", "mismatch")
    square = "So $\\boxed{(1+i)^2}$."
    assert (status("2i", square), status("2i", square, imaginary_unit=False)) == ("ok", "mismatch")
    assert status("5", "So $\\boxed{i = 5}$.") == "ok"  # an unknown named i is not the imaginary unit
    assert (
        status("i^2+1", "So $\\boxed{0}$.") == "ok" and status("n i^2", "So $\\boxed{-n}$.") == "mismatch"
    )  # n beside i: i stays a symbol
