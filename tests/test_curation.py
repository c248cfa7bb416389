"""curation: s1K- and LIMO-style subset selection over a built dataset, every row explained."""

from __future__ import annotations

import math
from collections import Counter

import polars as pl
import pytest

from distillery import curation
from distillery.curation import LimoSettings, S1KSettings

PROBLEM = "Find all real numbers x such that x^2 - 5x + 6 = 0, and give their sum."
SCHEMA = {
    "problem": pl.String,
    "solution": pl.String,
    "answer": pl.String,
    "problem_type": pl.String,
    "question_type": pl.String,
    "source": pl.String,
    "uuid": pl.String,
    "is_reasoning_complete": pl.List(pl.Boolean),
    "generations": pl.List(pl.String),
    "correctness_math_verify": pl.List(pl.Boolean),
    "correctness_llama": pl.List(pl.Boolean),
    "finish_reasons": pl.List(pl.String),
    "correctness_count": pl.Int64,
    "messages": pl.List(pl.Struct({"content": pl.String, "role": pl.String})),
}


def trace(words: int = 50, body: str | None = None, answer: str = "The answer is $\\boxed{5}$.") -> str:
    """An R1-style generation: `words` words of thinking (or `body`), then the boxed answer."""
    thought = body if body is not None else " ".join(f"w{i}" for i in range(words))
    return f"<think>\n{thought}\n</think>\n\n{answer}"


def row(
    uuid: str,
    problem: str | None = PROBLEM,
    problem_type: str | None = "Algebra",
    correct: tuple[bool | None, ...] = (True, False, False, False),
    text: str | None = None,
    words: int = 50,
    judge: tuple[bool | None, ...] | None = None,
    complete: tuple[bool, ...] | None = None,
    messages: list[dict] | None = None,
) -> dict:
    """One built-dataset row: `correct` are math_verify verdicts (judge verdicts optional), the chosen
    trace is `text` (default: a clean trace of `words` words)."""
    text = trace(words) if text is None else text
    n = len(correct)
    return {
        "problem": problem,
        "solution": "x = 2 or x = 3.",
        "answer": "5",
        "problem_type": problem_type,
        "question_type": "math-word-problem",
        "source": "olympiads",
        "uuid": uuid,
        "is_reasoning_complete": list(complete) if complete is not None else [True] * n,
        "generations": [text] * n,
        "correctness_math_verify": list(correct),
        "correctness_llama": list(judge) if judge is not None else None,
        "finish_reasons": ["stop"] * n,
        "correctness_count": sum(bool(c) for c in correct),
        "messages": messages if messages is not None else [{"content": problem, "role": "user"}, {"content": text, "role": "assistant"}],
    }


def frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SCHEMA)


# --- quality ---------------------------------------------------------------------------------------

ASCII_ART = "Count the squares in this grid:\n+---+---+\n|   |   |\n+---+---+\n|   |   |\n+---+---+\nHow many squares are there?"
QUALITY_CASES = {
    "clean": (row("clean"), None),
    "template_opened_think": (
        row("t", text="thinking without the opening tag, as R1's template puts it in the prompt\n</think>\n\\boxed{5}"),
        None,
    ),
    "figure_out_is_fine": (row("f", problem="Figure out the sum of all integers from 1 to 100 inclusive."), None),
    "empty_problem": (row("e", problem="   "), "missing_field"),
    "null_problem": (row("n", problem=None), "missing_field"),
    "no_assistant": (row("a", messages=[{"content": PROBLEM, "role": "user"}]), "missing_field"),
    "blank_assistant": (row("b", messages=[{"content": PROBLEM, "role": "user"}, {"content": " ", "role": "assistant"}]), "missing_field"),
    "asy": (row("asy", problem="In triangle ABC below, find AB.\n[asy]draw((0,0)--(1,0));[/asy]"), "image_reference"),
    "markdown_image": (
        row("md", problem="Find the shaded area.\n![](https://cdn.mathpix.com/cropped/abc.jpg?height=300)"),
        "image_reference",
    ),
    "png": (row("png", problem="Find the area of the region in picture1.png, given the side 4."), "image_reference"),
    "img_tag": (row("img", problem='Find the length of the segment <img src="x"> when AB = 3.'), "image_reference"),
    "figure_below": (row("fb", problem="In the figure below, the circle has radius 3. Find the shaded area."), "image_reference"),
    "shown_in_figure": (row("sf", problem="As shown in the figure, ABCD is a square of side 2. Find AC."), "image_reference"),
    "diagram": (row("dg", problem="Using the diagram, determine how many paths lead from A to B."), "image_reference"),
    "fig_number": (row("fn", problem="The lines in Fig. 3 meet at P; find the angle between them."), "image_reference"),
    "image_before_format": (row("ib", problem="See the figure below.", text=trace(answer="no box")), "image_reference"),
    "short_problem": (row("sp", problem="Solve x+1=2."), "odd_format"),
    "non_ascii_problem": (row("na", problem="求所有满足方程的实数解并给出它们的和是多少呢请详细说明"), "odd_format"),
    "ascii_art": (row("art", problem=ASCII_ART), "odd_format"),
    "no_box": (row("nb", text=trace(answer="The answer is 5.")), "odd_format"),
    "box_only_inside_thinking": (row("bt", text=trace(body="so it is \\boxed{5}", answer="Five.")), "odd_format"),
    "unclosed_think": (row("uc", text="<think>\nstill thinking \\boxed{5}"), "odd_format"),
    "two_thinks": (row("tt", text="<think>\na\n</think>\n<think>\nb\n</think>\n\\boxed{5}"), "odd_format"),
    "close_before_open": (row("cb", text="a\n</think>\n<think>\n\\boxed{5}"), "odd_format"),
    "non_ascii_thinking": (row("nt", text=trace(body="所以答案是五因为二加三等于五")), "odd_format"),
}


@pytest.mark.parametrize("case", list(QUALITY_CASES))
def test_each_quality_reason_fires_on_its_row(case):
    r, expected = QUALITY_CASES[case]
    assert curation.quality_reasons(frame([r])).to_list() == [expected]


def test_quality_reasons_keep_row_order_and_never_flag_clean_rows():
    rows = [QUALITY_CASES[c][0] for c in ("no_box", "clean", "asy", "empty_problem")]
    assert curation.quality_reasons(frame(rows)).to_list() == ["odd_format", None, "image_reference", "missing_field"]


def test_thinking_is_between_the_tags_or_the_whole_text():
    assert curation.thinking("<think>\na b c\n</think>\n\\boxed{1}").split() == ["a", "b", "c"]
    assert curation.thinking("a b\n</think>\nanswer").split() == ["a", "b"]
    assert curation.thinking("no tags at all") == "no tags at all"
    assert curation.word_count(curation.thinking(trace(123))) == 123


# --- difficulty ------------------------------------------------------------------------------------


# build's rule, written out by hand: (math_verify, judge, complete) -> counted correct under
# (math_verify, judge, either). An incomplete generation never counts; null is not a yes.
CORRECT_BY_HAND = {
    (True, True, True): (1, 1, 1),
    (True, False, True): (1, 0, 1),
    (True, None, True): (1, 0, 1),
    (False, True, True): (0, 1, 1),
    (False, False, True): (0, 0, 0),
    (False, None, True): (0, 0, 0),
    (None, True, True): (0, 1, 1),
    (None, False, True): (0, 0, 0),
    (None, None, True): (0, 0, 0),
    **{(mv, ll, False): (0, 0, 0) for mv in (True, False, None) for ll in (True, False, None)},
}


def test_correct_count_follows_builds_rule_for_every_verdict():
    assert curation.SELECTIONS == ("math_verify", "judge", "either")
    for (mv, ll, done), expected in CORRECT_BY_HAND.items():
        got = tuple(curation.correct_count([mv], [ll], [done], 1, s) for s in curation.SELECTIONS)
        assert got == expected, (mv, ll, done)
    # All 18 cases as one row's generations: 3, 3 and 5 correct.
    mv, ll, done = zip(*CORRECT_BY_HAND)
    assert [curation.correct_count(mv, ll, done, 18, s) for s in curation.SELECTIONS] == [3, 3, 5]
    # A missing list is all null; a short one is null past its end (incomplete, for is_reasoning_complete).
    assert curation.correct_count([True, True], None, [True, True], 2, "judge") == 0
    assert curation.correct_count([True, True], None, [True, True], 2, "either") == 2
    assert curation.correct_count([True, True, True], [True], [True, True], 3, "either") == 2
    assert curation.correct_count([True], [False], None, 1, "math_verify") == 0


def test_pass_rate_counts_by_selection():
    # 4 generations: math_verify only, judge only, both, and a correct-looking but incomplete one.
    r = row("u", correct=(True, None, True, True), judge=(False, True, True, True), complete=(True, True, True, False))
    df = frame([r])
    for selection, correct in (("math_verify", 2), ("judge", 2), ("either", 3)):
        got = curation.pass_rates(df, selection).row(0, named=True)
        assert got == {"correct": correct, "generations": 4, "pass_rate": correct / 4}
    no_judge = frame([row("v", correct=(True, False))])  # correctness_llama null: never judged
    assert curation.pass_rates(no_judge, "judge")["correct"].to_list() == [0]
    with pytest.raises(ValueError, match="math_verify, judge, either"):
        curation.pass_rates(df, "majority")


def test_s1k_too_easy_above_max_pass_rate_only():
    rows = [
        row("quarter", correct=(True, False, False, False)),
        row("half", correct=(True, True, False, False)),
        row("three_quarters", correct=(True, True, True, False)),
        row("none", correct=(False, False, False, False)),  # s1K keeps unsolved problems (it kept incorrect traces)
    ]
    out = curation.select(frame(rows), "s1k", S1KSettings(size=10, max_pass_rate=0.5), seed=0)
    assert dict(out.select("uuid", "reason").iter_rows()) == {
        "quarter": "selected",
        "half": "selected",
        "three_quarters": "too_easy",
        "none": "selected",
    }


def test_limo_keeps_min_to_max_correct():
    rows = [row(f"c{k}", correct=tuple([True] * k + [False] * (8 - k))) for k in range(6)]
    out = curation.select(frame(rows), "limo", LimoSettings(size=10, min_correct=1, max_correct=3), seed=0)
    assert out["reason"].to_list() == ["unsolved", "selected", "selected", "selected", "too_easy", "too_easy"]
    assert out["correct"].to_list() == [0, 1, 2, 3, 4, 5] and set(out["generations"]) == {8}
    wider = curation.select(frame(rows), "limo", LimoSettings(size=10, min_correct=0, max_correct=4), seed=0)
    assert wider["reason"].to_list() == ["selected"] * 5 + ["too_easy"]


def test_difficulty_uses_the_chosen_selection():
    # correct by the judge only: solved under "judge"/"either", unsolved under "math_verify"
    df = frame([row("j", correct=(False, False), judge=(True, False))])
    for selection, reason in (("math_verify", "unsolved"), ("judge", "selected"), ("either", "selected")):
        assert curation.select(df, "limo", LimoSettings(selection=selection), seed=0)["reason"].to_list() == [reason]


# --- the s1K draw ----------------------------------------------------------------------------------


def test_s1k_draws_domains_uniformly_not_by_size():
    # 30 / 10 / 10 candidates, 9 drawn: uniform domains give 3 each on average; drawing by size would
    # give the big domain 5.4. No domain can run out within 9 draws, so the average is exactly 3.
    candidates = [(f"{d}{i:02d}", d, 100 + i) for d, n in (("alg", 30), ("geo", 10), ("nt", 10)) for i in range(n)]
    totals = Counter()
    seeds = range(300)
    for seed in seeds:
        drawn = curation.s1k_draw(candidates, 9, seed)
        assert [o for _, o in drawn] == list(range(1, 10))
        totals.update(u.rstrip("0123456789") for u, _ in drawn)
    for domain in ("alg", "geo", "nt"):
        assert 2.7 <= totals[domain] / len(seeds) <= 3.3, totals


def test_s1k_draw_exhausts_small_domains_and_stops_when_empty():
    candidates = [(f"{d}{i:02d}", d, i) for d, n in (("alg", 30), ("geo", 5), ("nt", 5)) for i in range(n)]
    drawn = curation.s1k_draw(candidates, 100, seed=3)
    assert sorted(u for u, _ in drawn) == sorted(c[0] for c in candidates)
    assert [o for _, o in drawn] == list(range(1, 41))
    # Once geo and nt are empty only alg is left: its rows fill the tail of the draw.
    last_small = max(o for u, o in drawn if not u.startswith("alg"))
    assert all(u.startswith("alg") for u, o in drawn if o > last_small)
    assert curation.s1k_draw(candidates, 0, seed=3) == [] and curation.s1k_draw([], 5, seed=3) == []


def test_uniform_rows_is_the_share_rounded_half_up():
    # s1's code: uniform while fewer than 700 of 1,000 are selected.
    assert curation.uniform_rows(1000, 0.7) == 700
    assert curation.uniform_rows(4, 0.7) == 3  # 2.8
    assert curation.uniform_rows(5, 0.7) == 4  # 3.5, half up
    assert curation.uniform_rows(4, 0.0) == 0 and curation.uniform_rows(4, 1.0) == 4


def test_target_mix_scales_each_source_to_its_weight():
    # s1's rule with its values: AIME weight 1, GPQA 0.5. AIME rows: alg, alg, geo; GPQA rows: phys, alg.
    # AIME gives alg 2/3, geo 1/3; GPQA (total scaled to 0.5) gives phys 1/4, alg 1/4; sum 1.5.
    domains = ["alg", "alg", "geo", "phys", "alg", "nt"]
    sources = ["aime", "aime", "aime", "gpqa", "gpqa", "olympiads"]
    mix = curation.target_mix(domains, sources, {"aime": 1.0, "gpqa": 0.5})
    assert mix == pytest.approx({"alg": (2 / 3 + 1 / 4) / 1.5, "geo": (1 / 3) / 1.5, "phys": (1 / 4) / 1.5})
    assert curation.target_mix(domains, sources, {"amc_aime": 1.0}) == {}  # no rows of the source: no mix


def test_s1k_draw_is_uniform_until_the_threshold_then_follows_the_mix():
    candidates = [(f"{d}{i:02d}", d, 100 + i) for d in ("alg", "geo", "nt") for i in range(30)]
    drawn = curation.s1k_draw_phases(candidates, 9, seed=5, uniform_until=3, mix={"geo": 1.0})
    assert [p for _, _, p in drawn] == ["uniform"] * 3 + ["weighted"] * 6
    assert all(u.startswith("geo") for u, _, p in drawn if p == "weighted")
    # Two domains weighted 3:1 (nt has no weight): the weighted draws split 3:1.
    totals = Counter()
    for seed in range(300):
        for u, _, phase in curation.s1k_draw_phases(candidates, 4, seed, uniform_until=0, mix={"alg": 0.75, "geo": 0.25}):
            assert phase == "weighted"
            totals[u[:3]] += 1
    assert totals["nt"] == 0 and 0.70 <= totals["alg"] / 1200 <= 0.80, totals


def test_s1k_draw_goes_on_uniformly_once_the_mix_is_exhausted():
    candidates = [("geo1", "geo", 5), ("geo2", "geo", 4)] + [(f"alg{i}", "alg", i) for i in range(5)]
    drawn = curation.s1k_draw_phases(candidates, 7, seed=1, uniform_until=0, mix={"geo": 1.0})
    assert {u for u, _, _ in drawn[:2]} == {"geo1", "geo2"}  # the mix's one domain first, until it is empty
    assert [p for _, _, p in drawn] == ["weighted"] * 2 + ["uniform"] * 5
    assert curation.s1k_draw(candidates, 7, seed=1) == [(u, o) for u, o, _ in curation.s1k_draw_phases(candidates, 7, seed=1)]


BOLD_CASES = {
    "**3** apples are shared among the children; how many does each of the 3 children get?": "bold_digit",
    "**Problem**: find the value of 3x when x is the least prime greater than ten.": "bold_digit",  # s1's lookahead
    "**Problem 3** Find the least prime number greater than one hundred and twenty.": None,  # a space inside the bold
    "**Note** the answer is the least prime number greater than one hundred.": None,  # no digit
    "**Note**: find the least prime above one hundred.\nThen add 7 to it and report the sum.": None,  # digit on the next line
}


@pytest.mark.parametrize("problem", list(BOLD_CASES))
def test_bold_digit_is_s1s_filter_and_is_recorded(problem):
    df = frame([row("b", problem=problem)])
    out = curation.select(df, "s1k", S1KSettings(size=1), seed=0)
    assert out["reason"].to_list() == [BOLD_CASES[problem] or "selected"]
    kept = curation.select(df, "s1k", S1KSettings(size=1, drop_bold_digit=False), seed=0)
    assert kept["reason"].to_list() == ["selected"]
    assert curation.select(df, "limo", LimoSettings(size=1), seed=0)["reason"].to_list() == ["selected"]  # s1's filter only


def test_s1k_selection_records_each_rows_phase():
    # 8 rows drawn of 12: 6 uniform (0.7 * 8 = 5.6 -> 6), then 2 by the mix of amc_aime rows, all Geometry.
    rows = [row(f"a{i}", problem_type=("Algebra", "Geometry", "Number Theory")[i % 3]) for i in range(12)]
    for r in rows:
        r["source"] = "amc_aime" if r["problem_type"] == "Geometry" else "olympiads"
    out = curation.select(frame(rows), "s1k", S1KSettings(size=8, mix_sources={"amc_aime": 1.0}), seed=3)
    picked = out.filter("selected").sort("draw_order")
    assert picked["phase"].to_list() == ["uniform"] * 6 + ["weighted"] * 2
    assert set(picked.filter(pl.col("phase") == "weighted")["domain"]) == {"Geometry"}
    assert out.filter(~pl.col("selected"))["phase"].null_count() == 4
    with pytest.raises(ValueError, match="uniform_share"):
        curation.select(frame(rows), "s1k", S1KSettings(uniform_share=1.5), seed=0)


def test_2_to_the_minus_rank_favours_long_traces():
    # One domain of 10: P(first draw = longest) = 1 / (2 - 2^-9) ~ 0.50, second longest ~ 0.25.
    candidates = [(f"u{i}", "alg", 1000 - 37 * i) for i in range(10)]  # u0 longest, u9 shortest
    firsts = Counter(curation.s1k_draw(candidates, 1, seed)[0][0] for seed in range(400))
    assert 0.40 <= firsts["u0"] / 400 <= 0.60, firsts
    assert 0.17 <= firsts["u1"] / 400 <= 0.33, firsts
    assert firsts["u9"] <= 4, firsts


def test_equal_lengths_rank_by_uuid():
    # With equal lengths, rank 0 is the smallest uuid, whatever the input order.
    candidates = [("b", "alg", 10), ("a", "alg", 10), ("c", "alg", 10)]
    firsts = Counter(curation.s1k_draw(list(reversed(candidates)), 1, seed)[0][0] for seed in range(400))
    assert firsts["a"] > firsts["b"] > firsts["c"], firsts
    with pytest.raises(ValueError, match="unique"):
        curation.s1k_draw([("a", "alg", 1), ("a", "geo", 2)], 1, 0)


def mixed_rows() -> list[dict]:
    """A frame that meets every reason under both methods."""
    rows = []
    for i in range(40):
        domain = ("Algebra", "Geometry", "Number Theory", None)[i % 4]
        k = i % 5  # correct of 4
        rows.append(row(f"r{i:02d}", problem_type=domain, correct=tuple([True] * k + [False] * (4 - k))[:4], words=40 + 13 * i))
    rows += [
        row("q_missing", problem=""),
        row("q_image", problem="In the figure below, find the area of the shaded region."),
        row("q_format", text=trace(answer="no box here")),
    ]
    return rows


@pytest.mark.parametrize(("method", "settings"), [("s1k", S1KSettings(size=8)), ("limo", LimoSettings(size=5))])
def test_same_input_and_seed_give_identical_output_even_shuffled(method, settings):
    df = frame(mixed_rows())
    first = curation.select(df, method, settings, seed=7)
    for shuffle_seed in (1, 2):
        shuffled = df.sample(fraction=1.0, shuffle=True, seed=shuffle_seed)
        assert shuffled["uuid"].to_list() != df["uuid"].to_list()
        assert curation.select(shuffled, method, settings, seed=7).equals(first)
    assert first["uuid"].to_list() == sorted(df["uuid"].to_list())


def test_s1k_seed_changes_the_draw_and_records_its_order():
    df = frame(mixed_rows())
    a = curation.select(df, "s1k", S1KSettings(size=8), seed=1)
    b = curation.select(df, "s1k", S1KSettings(size=8), seed=2)
    assert set(a.filter("selected")["uuid"]) != set(b.filter("selected")["uuid"])
    assert sorted(a.filter("selected")["draw_order"].to_list()) == list(range(1, 9))
    assert a.filter(~pl.col("selected"))["draw_order"].null_count() == a.height - 8
    assert a["score"].null_count() == a.height  # no LIMO score under s1k
    assert set(a.filter(pl.col("domain") == "unknown")["uuid"]) == {f"r{i:02d}" for i in range(3, 40, 4)}


# --- LIMO score ------------------------------------------------------------------------------------

RICH = "Wait, let me verify this. Alternatively, perhaps we should check by substituting x = 2. Hmm, therefore it holds."
FLAT = "The quantity equals the sum of the two roots of the quadratic equation given in the problem statement here."


def test_a_self_checking_trace_outranks_a_flat_one_of_equal_length():
    assert curation.word_count(RICH) == curation.word_count(FLAT)
    rich, flat = curation.limo_scores([RICH, FLAT], curation.DEFAULT_LIMO_WEIGHTS)
    assert rich > flat
    terms = curation.limo_terms(RICH)
    assert terms["self_verification"] > 0 and terms["exploration"] > 0 and terms["elaboration"] > 0
    assert curation.limo_terms(FLAT) | {"length": 0.0} == {"self_verification": 0.0, "exploration": 0.0, "elaboration": 0.0, "length": 0.0}
    df = frame([row("a_flat", text=trace(body=FLAT)), row("b_rich", text=trace(body=RICH))])
    out = curation.select(df, "limo", LimoSettings(size=1), seed=0)
    assert dict(out.select("uuid", "reason").iter_rows()) == {"a_flat": "not_selected", "b_rich": "selected"}


def test_limo_scores_are_rates_plus_a_log_length_term():
    weights = {"self_verification": 1.0, "exploration": 1.0, "elaboration": 0.5, "length": 0.5}
    once, twice = curation.limo_scores([RICH, RICH + " " + RICH], weights)
    n = curation.word_count(RICH)
    assert twice - once == pytest.approx(0.5 * (math.log1p(2 * n) - math.log1p(n)))  # same rates, only length moves
    assert curation.limo_terms("let me double-check it")["self_verification"] == pytest.approx(1000 / 4)  # counted once
    assert curation.limo_scores(["verify"], {"length": 1.0}) == [pytest.approx(math.log1p(1))]
    with pytest.raises(ValueError, match="unknown LIMO weights"):
        curation.limo_scores([RICH], {"style": 1.0})


def test_limo_keeps_the_top_n_scores_ties_by_uuid():
    # Trace k carries k self-checks among 40 words: the score grows with k.
    def body(k: int) -> str:
        return " ".join(["verify"] * k + ["x"] * (40 - k))

    rows = [row(f"k{k}", text=trace(body=body(k))) for k in range(6)] + [row("k5_twin", text=trace(body=body(5)))]
    out = curation.select(frame(rows), "limo", LimoSettings(size=3), seed=0).sort("draw_order", nulls_last=True)
    assert out.filter("selected")["uuid"].to_list() == ["k5", "k5_twin", "k4"]
    assert out.filter("selected")["draw_order"].to_list() == [1, 2, 3]
    assert set(out.filter(~pl.col("selected"))["reason"]) == {"not_selected"}
    assert out["score"].null_count() == 0
    assert out["score"].to_list()[:3] == sorted(out["score"].to_list(), reverse=True)[:3]


# --- accounting and errors -------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "settings"), [("s1k", S1KSettings(size=8)), ("limo", LimoSettings(size=5))])
def test_every_row_once_and_rows_in_equal_the_sum_of_reasons(method, settings):
    df = frame(mixed_rows())
    out = curation.select(df, method, settings, seed=11)
    assert out.schema == pl.Schema(curation.OUTPUT_SCHEMA)
    assert sorted(out["uuid"].to_list()) == sorted(df["uuid"].to_list())
    assert out["selected"].to_list() == [r == "selected" for r in out["reason"]]
    sizes = curation.stage_sizes(out)
    assert sizes["rows"] == df.height == sum(sizes["by_reason"].values())
    assert sizes["selected"] == settings.size
    assert list(sizes["by_reason"]) == list(curation.REASONS)
    assert sizes["by_reason"]["missing_field"] == sizes["by_reason"]["image_reference"] == sizes["by_reason"]["odd_format"] == 1
    assert sizes["after_quality"] == df.height - 3
    final = "not_drawn" if method == "s1k" else "not_selected"
    assert sizes["after_difficulty"] == sizes["selected"] + sizes["by_reason"][final] > 0
    assert sizes["by_reason"]["too_easy"] > 0
    assert (sizes["by_reason"]["unsolved"] > 0) == (method == "limo")


def test_unknown_method_and_mismatched_settings():
    df = frame([row("a")])
    with pytest.raises(ValueError, match="limo, s1k"):
        curation.select(df, "random", S1KSettings(), seed=0)
    with pytest.raises(TypeError, match="LimoSettings"):
        curation.select(df, "limo", S1KSettings(), seed=0)
    with pytest.raises(ValueError, match="selection"):
        curation.select(df, "s1k", S1KSettings(selection="both"), seed=0)
    with pytest.raises(ValueError, match="min_correct"):
        curation.select(df, "limo", LimoSettings(min_correct=3, max_correct=1), seed=0)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="unique"):
        curation.select(frame([row("a"), row("a")]), "s1k", S1KSettings(), seed=0)
    with pytest.raises(ValueError, match="domain_field 'topic'|lacks columns"):
        curation.select(frame([row("a")]), "s1k", S1KSettings(domain_field="topic"), seed=0)
    with pytest.raises(ValueError, match="lacks columns"):
        curation.select(frame([row("a")]).drop("messages"), "s1k", S1KSettings(), seed=0)


def test_domain_field_is_configurable_and_null_is_unknown():
    df = frame([row("a", problem_type=None), row("b", problem_type="Geometry")])
    assert curation.select(df, "s1k", S1KSettings(), seed=0)["domain"].to_list() == ["unknown", "Geometry"]
    assert curation.select(df, "s1k", S1KSettings(domain_field="source"), seed=0)["domain"].to_list() == ["olympiads"] * 2


def test_distribution_counts_domains_and_bins_lengths():
    rows = [row(f"u{i}", problem_type=t, words=w) for i, (t, w) in enumerate([("Algebra", 10), ("Algebra", 600), ("Geometry", 20000)])]
    out = curation.select(frame(rows), "s1k", S1KSettings(size=10), seed=0)
    assert curation.distribution(out, "domain").rows() == [("Algebra", 2), ("Geometry", 1)]
    words = curation.distribution(out, "trace_words")
    assert words["bin"].to_list() == ["0-500", "500-1000", "1000-2000", "2000-4000", "4000-8000", "8000-16000", "16000+"]
    assert words["count"].to_list() == [1, 1, 0, 0, 0, 0, 1]
    rates = curation.distribution(out, "pass_rate")
    assert rates.height == 10 and rates["count"].sum() == 3 and rates.filter(pl.col("bin") == "0.2-0.3")["count"].item() == 3
    assert curation.distribution(out, "reason", selected_only=False).rows() == [("selected", 3)]
    with pytest.raises(ValueError, match="no distribution"):
        curation.distribution(out, "problem")
