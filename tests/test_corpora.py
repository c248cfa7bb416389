"""distillery.corpora: each published layout's fixture maps row by row to the expected records and
rejections; traces come out in the think format verify reads; no gold is ever a model's own answer."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path

import math_verify
import pytest

from distillery import corpora
from distillery.corpora import GOLD_ORIGINS, LAYOUTS, REJECT_REASONS, Mapped, Rejected, Trace, last_boxed, map_row, reference_gold
from distillery.verification import extract_answer

DATA = Path(__file__).parent.parent / "data" / "bundled" / "corpora"  # the bundled corpora, in their published layouts
THINK = re.compile(r"<think>\n(?P<reasoning>.+)\n</think>\n\n(?P<final>.+)", re.S)
R1 = "deepseek-ai/DeepSeek-R1"

# Per fixture row: None where it maps, else its rejection reason.
EXPECTED_REJECTIONS = {
    "openr1_math": [None, None, None, None, "missing_problem", "malformed_trace"],
    "openthoughts": [None, None, "malformed_trace", "no_trace", "missing_problem", "no_trace"],
    "bespoke_stratos": [None, None, None, "malformed_trace"],
    "dolphin_r1": [None, None, None, "no_trace", "missing_problem"],
    "limo": [None, None, None, "missing_problem", "malformed_trace"],
    "s1k": [None, None, None, "no_trace", "missing_problem"],
    "s1k_1_1": [None, None, None, "no_trace"],
}
# Per mapped row with a gold: is each trace's boxed answer (after </think>) the gold? None: no answer.
EXPECTED_CORRECT = {
    "openr1_math": [[True, False], [True, True], [True, None]],
    "limo": [[True], [False], [True]],
    "s1k": [[True], [False]],
    "s1k_1_1": [[True], [False], [True]],
}


def rows(layout: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / f"{layout}.jsonl").read_text().splitlines() if line.strip()]


def mapped(layout: str) -> list[Mapped]:
    return [m for m in (map_row(layout, r) for r in rows(layout)) if isinstance(m, Mapped)]


def think_parts(trace: Trace) -> tuple[str, str]:
    m = THINK.fullmatch(trace.text)
    assert m, f"not in the think format: {trace.text[:120]!r}"
    assert trace.text.count("<think>") == 1 and trace.text.count("</think>") == 1
    return m["reasoning"], m["final"]


def test_layouts_agree_with_config():
    from distillery.config import CorpusLayout

    assert tuple(typing.get_args(CorpusLayout)) == LAYOUTS
    assert tuple(corpora.ADAPTERS) == LAYOUTS
    assert sorted(p.stem for p in DATA.glob("*.jsonl")) == sorted(LAYOUTS)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_row_is_mapped_or_rejected_for_its_reason(layout):
    fixture = rows(layout)
    results = [map_row(layout, r) for r in fixture]
    assert all(isinstance(r, Mapped | Rejected) for r in results)
    assert [r.reason if isinstance(r, Rejected) else None for r in results] == EXPECTED_REJECTIONS[layout]
    kept = [r for r in results if isinstance(r, Mapped)]
    rejected = [r for r in results if isinstance(r, Rejected)]
    assert len(fixture) == len(kept) + len(rejected)
    assert kept and rejected, "each fixture has rows that map and rows that do not"
    for r in rejected:
        assert r.reason in REJECT_REASONS and r.detail
    for m in kept:
        assert m.answer_origin in GOLD_ORIGINS
        assert (m.answer is None) == (m.answer_origin == "none")
        assert m.traces and m.problem.strip()


@pytest.mark.parametrize("layout", [la for la in LAYOUTS if la != "openr1_math"])
def test_traces_are_in_the_think_format_and_finished(layout):
    for m in mapped(layout):
        (trace,) = m.traces
        reasoning, final = think_parts(trace)
        assert reasoning == reasoning.strip() and final == final.strip()
        assert "<|" not in trace.text, "corpus delimiters are replaced, not kept"
        assert trace.finish_reason == "stop"


def test_openr1_generations_verbatim_with_their_finish_reasons():
    fixture = rows("openr1_math")
    first, _, third, proof = mapped("openr1_math")
    assert first.problem == fixture[0]["problem"]
    assert (first.answer, first.answer_origin) == ("68", "gold")
    assert first.solution == fixture[0]["solution"]
    assert (first.problem_type, first.question_type, first.source) == ("Algebra", "math-word-problem", "olympiads")
    assert [t.text for t in first.traces] == fixture[0]["generations"]
    assert [t.finish_reason for t in first.traces] == ["stop", None]  # a null entry stays unknown
    assert {t.model for t in first.traces} == {R1}
    think_parts(first.traces[0])
    assert [t.finish_reason for t in third.traces] == ["stop", "length"]
    assert "</think>" not in third.traces[1].text  # truncated, kept as published
    # NuminaMath's "proof" placeholder is not a gold.
    assert (proof.answer, proof.answer_origin, proof.question_type) == (None, "none", "proof")


def test_openr1_gold_fallbacks_and_blank_generations():
    row = rows("openr1_math")[1]
    boxed = {**row, "solution": "$\\sin 45^{\\circ}=\\frac{\\sqrt{2}}{2}$, so the square is $\\boxed{\\frac{1}{2}}$."}
    assert map_row("openr1_math", {**row, "answer": ""}).answer_origin == "none"  # a long unboxed solution: no gold
    assert map_row("openr1_math", {**boxed, "answer": ""}).answer_origin == "reference_solution"
    assert map_row("openr1_math", {**boxed, "answer": "notfound"}).answer == "\\frac{1}{2}"  # the solution's last box
    assert map_row("openr1_math", {**boxed, "answer": "proof"}).answer is None
    assert map_row("openr1_math", {**row, "answer": "  7 "}).answer == "7"
    one_blank = map_row("openr1_math", {**row, "generations": ["", row["generations"][1]]})
    assert [t.text for t in one_blank.traces] == ["", row["generations"][1]]  # verify will say no_answer
    assert map_row("openr1_math", {**row, "generations": ["", " "]}).reason == "no_trace"
    assert map_row("openr1_math", {**row, "generations": []}).reason == "no_trace"
    assert map_row("openr1_math", {**row, "generations": [None, "x"]}).reason == "malformed_trace"
    assert [t.finish_reason for t in map_row("openr1_math", {**row, "finish_reasons": None}).traces] == [None, None]


def test_openthoughts_exact_record():
    row = rows("openthoughts")[0]
    m = map_row("openthoughts", row)
    assert m == Mapped(
        problem="Return your final response within \\boxed{}. What is the sum of the interior angles of a convex hexagon, in degrees?",
        answer=None,
        answer_origin="none",
        solution=None,
        problem_type=None,
        question_type=None,
        source=None,
        traces=(
            Trace(
                "<think>\nOkay, the sum of interior angles of an n-gon is (n - 2) * 180. For a hexagon n = 6, so 4 * 180 = 720.\n\n"
                "Wait, let me verify with a triangulation: a hexagon splits into 4 triangles from one vertex, each 180°, so 720°. Yes."
                "\n</think>\n\n"
                "The interior angles of an $n$-gon sum to $(n-2)\\cdot 180^\\circ$. "
                "For $n=6$ this is $4 \\cdot 180^\\circ$.\n\n\\boxed{720}",
                "stop",
                R1,
            ),
        ),
    )


def test_bespoke_stratos_exact_trace_and_code_row():
    first, _, code = mapped("bespoke_stratos")
    assert first.problem == "Return your final response within \\boxed{}. Find the value of $x$ such that $2x + 3 = 11$."
    assert first.traces[0].text == (
        "<think>\nOkay, subtract 3 from both sides: 2x = 8. Divide by 2: x = 4.\n\nWait, check: 2*4 + 3 = 11. Correct.\n</think>\n\n"
        "Subtracting $3$ gives $2x = 8$, so $x = \\boxed{4}$."
    )
    assert (first.answer, first.answer_origin, first.traces[0].model) == (None, "none", R1)
    assert extract_answer(code.traces[0].text) is None  # a code row has no boxed answer


def test_sharegpt_turn_names_and_stray_tags():
    row = rows("bespoke_stratos")[0]
    human = [{"from": "human", "value": row["conversations"][0]["value"]}, {"from": "gpt", "value": row["conversations"][1]["value"]}]
    assert map_row("bespoke_stratos", {**row, "conversations": human}) == map_row("bespoke_stratos", row)
    tagged = row["conversations"][1]["value"].replace("Okay,", "<think> Okay,")
    bad = {**row, "conversations": [row["conversations"][0], {"from": "assistant", "value": tagged}]}
    assert map_row("bespoke_stratos", bad).reason == "malformed_trace"
    reordered = "<|begin_of_solution|>\n\nx\n\n<|end_of_solution|><|begin_of_thought|>\n\ny\n\n<|end_of_thought|>"
    bad = {**row, "conversations": [row["conversations"][0], {"from": "assistant", "value": reordered}]}
    assert map_row("bespoke_stratos", bad).reason == "malformed_trace"


def test_dolphin_r1_skips_the_system_message_and_never_takes_answer_as_gold():
    row = rows("dolphin_r1")[0]
    m = map_row("dolphin_r1", row)
    assert m.problem == "What is the area of a circle with radius 3?"
    assert m.traces == (
        Trace(
            "<think>\nThe area of a circle is πr². With r = 3 that is 9π.\n\nWait, the question may want a decimal, but the exact "
            "value 9π is cleaner.\n</think>\n\nThe area is $\\pi r^2 = \\pi \\cdot 3^2 = \\boxed{9\\pi}$.",
            "stop",
            None,
        ),
    )
    assert (m.answer, m.answer_origin, m.solution) == (None, "none", None)
    assert map_row("dolphin_r1", {**row, "model": R1}).traces[0].model == R1
    assert map_row("dolphin_r1", {**row, "answer": ""}).reason == "malformed_trace"


def test_limo_exact_record_and_split():
    fixture = rows("limo")
    first, _, no_heading = mapped("limo")
    assert first.problem == fixture[0]["question"]
    assert (first.answer, first.answer_origin, first.solution, first.traces[0].model) == ("60", "gold", None, None)
    reasoning, final = think_parts(first.traces[0])
    assert final == "**Final Answer**\n\\boxed{60}"
    assert reasoning.startswith("Okay, so I need log_z w.") and reasoning.endswith("So log_z w = 60.")
    assert think_parts(no_heading.traces[0])[1] == "The largest prime factor is therefore $\\boxed{13}$."
    assert map_row("limo", {**fixture[0], "answer": 60}).answer == "60"  # an integer-typed answer column


def test_s1k_exact_record():
    fixture = rows("s1k")
    m = map_row("s1k", fixture[0])
    assert m == Mapped(
        problem=fixture[0]["question"],
        answer="60",
        answer_origin="reference_solution",
        solution="60",
        problem_type="math",
        question_type=None,
        source="qq8933/AIME_1983_2024",
        traces=(
            Trace(
                f"<think>\n{fixture[0]['thinking_trajectories'][0]}\n</think>\n\n{fixture[0]['attempt']}",
                "stop",
                "google/gemini-2.0-flash-thinking-exp",
            ),
        ),
    )


def test_s1k_1_1_uses_the_deepseek_trace():
    fixture = rows("s1k_1_1")
    m = map_row("s1k_1_1", fixture[1])
    assert (m.answer, m.answer_origin) == ("\\frac{1}{6}", "reference_solution")
    (trace,) = m.traces
    assert trace.text == f"<think>\n{fixture[1]['deepseek_thinking_trajectory']}\n</think>\n\n{fixture[1]['deepseek_attempt']}"
    assert trace.model == R1
    assert "gemini" not in trace.text.lower() and fixture[1]["gemini_attempt"] not in trace.text
    crossword = map_row("s1k_1_1", fixture[2])
    assert (crossword.answer, crossword.problem_type) == ("OPENS", "crossword")
    # An early revision published the DeepSeek columns as one-element lists.
    listed = {**fixture[1], "deepseek_thinking_trajectory": [fixture[1]["deepseek_thinking_trajectory"]]}
    assert map_row("s1k_1_1", listed) == m


@pytest.mark.parametrize("layout", sorted(EXPECTED_CORRECT))
def test_traces_against_gold_with_math_verify(layout):
    """The fixtures hold right and wrong traces; math-verify parses every gold and tells them apart."""
    got = []
    for m in mapped(layout):
        if m.answer is None:
            continue
        gold = math_verify.parse(f"${m.answer}$")
        assert gold, f"math-verify cannot parse the gold {m.answer!r}"
        row = []
        for t in m.traces:
            extracted = extract_answer(t.text)
            row.append(None if extracted is None else math_verify.verify(gold, math_verify.parse(f"${extracted}$")))
        got.append(row)
    assert got == EXPECTED_CORRECT[layout]


def test_no_gold_from_a_models_own_answer():
    # Corpora without a gold column: the teacher's boxed answer is there, the gold is not.
    for layout in ("openthoughts", "bespoke_stratos", "dolphin_r1"):
        for m in mapped(layout):
            assert (m.answer, m.answer_origin) == (None, "none")
    boxed_final = [m for m in mapped("openthoughts") if extract_answer(m.traces[0].text)]
    assert boxed_final, "the fixture's traces do box an answer"
    # s1K: a long reference solution without a box gives no gold, though the attempt boxes 200.
    science = map_row("s1k", rows("s1k")[2])
    assert extract_answer(science.traces[0].text) == "200"
    assert (science.answer, science.answer_origin) == (None, "none")
    # s1K-1.1: the gold comes from the reference solution, not the (wrong) attempt.
    wrong = map_row("s1k_1_1", rows("s1k_1_1")[1])
    assert extract_answer(wrong.traces[0].text) == "\\frac{2}{7}" and wrong.answer == "\\frac{1}{6}"
    no_solution = {**rows("s1k_1_1")[1], "solution": None}
    assert map_row("s1k_1_1", no_solution).answer is None


def test_unknown_layout_names_the_layouts():
    with pytest.raises(ValueError) as err:
        map_row("openr1", {})
    for layout in LAYOUTS:
        assert layout in str(err.value)
    with pytest.raises(ValueError):
        map_row(None, {})  # type: ignore[arg-type]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_bad_row_is_rejected_never_raised(layout):
    assert map_row(layout, ["not", "a", "row"]) == Rejected("not_a_row", "a list, not an object")  # type: ignore[arg-type]
    assert isinstance(map_row(layout, {}), Rejected)
    good = rows(layout)[0]
    junk = [None, 0, 1.5, True, "", " ", [], {}, [None], [1], [{}], {"a": 1}]
    for key in good:
        for value in junk:
            result = map_row(layout, {**good, key: value})
            assert isinstance(result, Mapped | Rejected), (key, value)
            if isinstance(result, Rejected):
                assert result.reason in REJECT_REASONS


def test_last_boxed_matches_braces():
    assert last_boxed("\\boxed{1} then \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert last_boxed("\\boxed {3\\sqrt{2}} and \\boxed{unclosed") == "3\\sqrt{2}"
    assert last_boxed("\\boxed{\\{1, 2\\}}") == "\\{1, 2\\}"  # escaped set braces do not close the box
    assert last_boxed("\\boxed{\\left\\{ x > 0 \\right.}") == "\\left\\{ x > 0 \\right."  # nor open one
    assert last_boxed("\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}") == "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"
    assert last_boxed("no box here") is None


def test_reference_gold_rule():
    assert reference_gold("so $x = \\boxed{5}$ and then \\boxed{6}") == ("6", "reference_solution")
    assert reference_gold(" 128 ") == ("128", "reference_solution")
    assert reference_gold("x" * 64) == ("x" * 64, "reference_solution")
    assert reference_gold("x" * 65) == (None, "none")
    assert reference_gold("one line\nanother") == (None, "none")
    assert reference_gold(None) == (None, "none")
    assert reference_gold("\\boxed{}") == (None, "none")
