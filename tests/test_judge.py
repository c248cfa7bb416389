"""Tests for distillery.stages.judge helpers (verdict parsing, selection, candidate text) and
distillery.prompts (judge prompt rendering and template loading)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from distillery.errors import ConfigError
from distillery.prompts import load_judge_template, render_judge_prompt, render_problem_prompt
from distillery.stages.judge import candidate_text, parse_verdict, select_for_judging

ROOT = Path(__file__).resolve().parents[1]


# --- parse_verdict -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("The answers match.\nVerdict: EQUIVALENT", "EQUIVALENT"),
        ("verdict: equivalent", "EQUIVALENT"),
        ("They differ.\n**Verdict:** DIFFERENT", "DIFFERENT"),
        ("Hard to say.\nVerdict: `AMBIGUOUS`", "AMBIGUOUS"),
        ("Verdict - different", "unparseable"),
        ("Verdict DIFFERENT", "DIFFERENT"),
        ("Verdict: EQUIVALENT\n...on second thought\nVerdict: DIFFERENT", "unparseable"),
        ("Verdict: DIFFERENT\n\nFinal Verdict: different", "DIFFERENT"),
        ("The two are equivalent, I think.", "unparseable"),
        ("Verdict: EQUIVALENTLY wrong", "unparseable"),
        ("Verdict: maybe", "unparseable"),
        (None, "unparseable"),
        ("", "unparseable"),
    ],
)
def test_parse_verdict(reply, expected):
    assert parse_verdict(reply) == expected


# --- select_for_judging --------------------------------------------------------------------------


def frame() -> pl.DataFrame:
    rows = [
        # p1: no correct complete generation, gold present -> its complete failures are judged
        ("p1", "5", True, False),
        ("p1", "5", False, False),  # incomplete: never judged
        ("p1", "5", True, False),
        # p2: solved by a complete correct generation -> nothing judged under unsolved_problems
        ("p2", "7", True, True),
        ("p2", "7", True, False),
        # p3: the only correct generation is incomplete -> the problem counts as unsolved
        ("p3", "x", False, True),
        ("p3", "x", True, False),
        # p4: empty gold -> never judged
        ("p4", "  ", True, False),
        # p5: null gold -> never judged
        ("p5", None, True, False),
        # p6: a hedge (several different boxes for one value) is a form decision, not the judge's
        ("p6", "3", True, False, "hedged"),
        # p7: a malformed gold is no reference to judge against
        ("p7", "\\frac{1}{2", True, False, "gold_malformed"),
    ]
    rows = [row if len(row) == 5 else (*row, "ok" if row[3] else "mismatch") for row in rows]
    return pl.DataFrame(
        rows,
        schema={
            "uuid": pl.String,
            "answer": pl.String,
            "is_reasoning_complete": pl.Boolean,
            "correctness_math_verify": pl.Boolean,
            "verify_status": pl.String,
        },
        orient="row",
    )


def test_select_unsolved_problems():
    chosen = select_for_judging(frame(), "unsolved_problems")
    assert chosen.dtype == pl.Boolean
    assert chosen.to_list() == [True, False, True, False, False, False, True, False, False, False, False]


def test_select_all_failures():
    chosen = select_for_judging(frame(), "all_failures")
    assert chosen.to_list() == [True, False, True, False, True, False, True, False, False, False, False]


def test_select_empty_frame():
    empty = frame().head(0)
    assert select_for_judging(empty, "unsolved_problems").to_list() == []


# --- candidate_text ------------------------------------------------------------------------------


def test_candidate_text_only_after_think():
    gen = "<think>" + "secret reasoning " * 50 + "</think>\n  The answer is \\boxed{4}.  "
    assert candidate_text(gen, 300) == "The answer is \\boxed{4}."
    assert "secret" not in candidate_text(gen, 300)


def test_candidate_text_capped_to_tail():
    tail = "x" * 500 + "END"
    gen = "<think>r</think>" + tail
    out = candidate_text(gen, 100)
    assert len(out) == 100
    assert out.endswith("END")
    assert out == tail[-100:]


def test_candidate_text_without_think():
    assert candidate_text("just \\boxed{3}", 50) == "just \\boxed{3}"


# --- prompts -------------------------------------------------------------------------------------


def test_render_judge_prompt_is_single_pass():
    template = "P: {problem}\nR: {reference_answer}\nC: {candidate_answer}"
    out = render_judge_prompt(template, "What is {reference_answer} plus {candidate_answer}? {x}", "42", "\\boxed{41}")
    assert out == "P: What is {reference_answer} plus {candidate_answer}? {x}\nR: 42\nC: \\boxed{41}"


def test_render_judge_prompt_backslashes_literal():
    template = "{problem}|{reference_answer}|{candidate_answer}"
    out = render_judge_prompt(template, r"\1 \g<0> \n", r"\frac{1}{2}", r"\\")
    assert out == r"\1 \g<0> \n|\frac{1}{2}|\\"


def test_render_problem_prompt_keeps_braces():
    out = render_problem_prompt("Solve:\n{problem}", "Let {problem} = {x}")
    assert out == "Solve:\nLet {problem} = {x}"


def test_shipped_judge_template_loads():
    text = load_judge_template(ROOT / "prompts" / "judge.txt")
    for field in ("{problem}", "{reference_answer}", "{candidate_answer}"):
        assert field in text


def test_judge_template_missing_candidate(tmp_path):
    path = tmp_path / "judge.txt"
    path.write_text("Problem: {problem}\nReference: {reference_answer}\nVerdict:")
    with pytest.raises(ConfigError) as info:
        load_judge_template(path)
    assert "{candidate_answer}" in str(info.value)
    assert "{problem}" not in str(info.value).split("placeholders", 1)[1]


def test_judge_template_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_judge_template(tmp_path / "nope.txt")


# --- the stage, with the tiny judge model --------------------------------------------------------


def test_judge_run_is_journaled_and_writes_a_readable_disagreements_report(tiny_models, tmp_path):
    import json

    from distillery.config import JudgeConfig
    from distillery.stages import judge
    from distillery.tables import PROBLEMS, VERIFIED

    from support.tables import table_frame

    problems = table_frame(
        PROBLEMS,
        {"uuid": ["a", "b"], "problem": ["Compute 2+3.", "Compute 7*6."], "answer": ["5", "42"], "source": ["olympiads", "amc_aime"]},
    )
    gens = ["<think>2+3=5</think> $\\boxed{five}$", "<think>hmm</think> $\\boxed{6}$", "<think>7*6</think> $\\boxed{41}$"]
    verified = table_frame(
        VERIFIED,
        {
            "uuid": ["a", "a", "b"],
            "sample_index": [0, 1, 0],
            "generation": gens,
            "finish_reason": ["stop"] * 3,
            "extracted_answer": ["five", "6", "41"],
            "is_reasoning_complete": [True] * 3,
            "correctness_math_verify": [False] * 3,
            "verify_status": ["mismatch"] * 3,
        },
    )
    problems.write_parquet(tmp_path / "problems.parquet")
    verified.write_parquet(tmp_path / "verified.parquet")
    cfg = JudgeConfig.model_validate(
        {
            "llm": {"model": str(tiny_models / "judge")},
            "sampling": {"max_new_tokens": 24},
            "prompt_template": str(ROOT / "prompts/judge.txt"),
        }
    )
    inputs = {"verified": tmp_path / "verified.parquet", "problems": tmp_path / "problems.parquet"}
    first = judge.run(
        cfg, 42, judge.Paths(**inputs, judged=tmp_path / "j1.parquet", metrics=tmp_path / "m1.json", disagreements=tmp_path / "dis.md")
    )
    journal_file = next((tmp_path / "journal" / "judge").glob("*.jsonl"))
    lines = journal_file.read_text().count("\n")
    second = judge.run(cfg, 42, judge.Paths(**inputs, judged=tmp_path / "j2.parquet", metrics=tmp_path / "m2.json"))
    assert journal_file.read_text().count("\n") == lines == 3  # the second run asked nothing
    assert first.equals(second)
    metrics = json.loads((tmp_path / "m1.json").read_text())
    assert metrics["judged"] == 3 and sum(metrics["verdicts"].values()) == 3
    assert set(metrics["by_source"]) == {"olympiads", "amc_aime"}
    report = (tmp_path / "dis.md").read_text()
    overturned = first.filter(pl.col("judge_verdict") != "DIFFERENT").height
    assert report.startswith(f"# Judge disagreements with math-verify ({overturned})")
    assert report.count("\n## ") == overturned


def test_judge_per_shard_then_gathered_is_the_judge_in_one_process(tiny_models, tmp_path):
    """A judge job per verify shard, each with its own journal shard, then the gather: the same table,
    counts and disagreements report as the judge in one process, which finds every answer in the
    shards' journals and asks nothing. (The tiny model's replies depend on what it is batched with, so
    the answers come from the journal, as a re-run's do.)"""
    import json

    from distillery.config import JudgeConfig
    from distillery.keys import shard_of
    from distillery.stages import judge
    from distillery.tables import PROBLEMS, VERIFIED

    from support.tables import table_frame

    uuids = [f"q{i}" for i in range(6)]
    problems = table_frame(
        PROBLEMS,
        {
            "uuid": uuids,
            "problem": [f"Compute {i}+{i}." for i in range(6)],
            "answer": [str(2 * i) for i in range(6)],
            "source": ["olympiads", "amc_aime", None, "olympiads", "cn_contest", "amc_aime"],
        },
    )
    rows = [(u, s) for u in uuids for s in range(2)]
    verified = table_frame(
        VERIFIED,
        {
            "uuid": [u for u, _ in rows],
            "sample_index": [s for _, s in rows],
            "generation": [f"<think>adding {u}</think> $\\boxed{{{s + 7}}}$" for u, s in rows],
            "finish_reason": ["stop"] * len(rows),
            "extracted_answer": [str(s + 7) for _, s in rows],
            "is_reasoning_complete": [True] * len(rows),
            "correctness_math_verify": [u == "q0" and s == 1 for u, s in rows],  # q0 is solved: not judged by default
            "verify_status": ["ok" if u == "q0" and s == 1 else "mismatch" for u, s in rows],
        },
    ).sort("uuid", "sample_index")
    problems.write_parquet(tmp_path / "problems.parquet")
    verified.write_parquet(tmp_path / "verified.parquet")
    cfg = JudgeConfig.model_validate(
        {
            "llm": {"model": str(tiny_models / "judge")},
            "sampling": {"max_new_tokens": 16},
            "prompt_template": str(ROOT / "prompts/judge.txt"),
        }
    )
    shards = []
    for k in range(2):
        part = tmp_path / f"verified-{k}.parquet"
        verified.filter(pl.col("uuid").map_elements(lambda u, k=k: shard_of(u, 2) == k, return_dtype=pl.Boolean)).write_parquet(part)
        shards.append(tmp_path / f"judged-{k}.parquet")
        judge.run_shard(cfg, 42, k, 2, judge.ShardPaths(part, tmp_path / "problems.parquet", shards[-1], journal=tmp_path / "j-shards"))
    assert sorted(p.name for p in (tmp_path / "j-shards").glob("*.jsonl")) == ["shard-0-of-2.jsonl", "shard-1-of-2.jsonl"]
    asked = sum(p.read_text().count("\n") for p in (tmp_path / "j-shards").glob("*.jsonl"))
    whole = judge.run(
        cfg,
        42,
        judge.Paths(
            tmp_path / "verified.parquet",
            tmp_path / "problems.parquet",
            tmp_path / "whole.parquet",
            tmp_path / "whole.json",
            tmp_path / "whole.md",
            journal=tmp_path / "j-shards",
        ),
    )
    assert sum(p.read_text().count("\n") for p in (tmp_path / "j-shards").glob("*.jsonl")) == asked == 10  # nothing asked twice
    judge.gather(
        cfg,
        judge.GatherPaths(
            shards, tmp_path / "problems.parquet", tmp_path / "gathered.parquet", tmp_path / "gathered.json", tmp_path / "gathered.md"
        ),
    )
    assert pl.read_parquet(tmp_path / "gathered.parquet").equals(whole)
    assert whole.filter(pl.col("uuid") == "q0")["judge_verdict"].to_list() == ["not_judged"] * 2
    assert json.loads((tmp_path / "gathered.json").read_text()) == json.loads((tmp_path / "whole.json").read_text())
    assert (tmp_path / "gathered.md").read_text() == (tmp_path / "whole.md").read_text()


# --- the committed demo run ----------------------------------------------------------------------


def test_the_committed_demo_run_takes_every_branch_of_the_judge_and_what_follows_it():
    """The bundled run (metrics/ as `make demo` writes them) exercises what the judge can do, and what
    build and preferences do with it. Every judged generation failed math-verify; the tiny judge
    overturns some (EQUIVALENT), confirms some (DIFFERENT) and runs past its token budget on others
    (unparseable: no verdict line). A problem whose every judged generation the judge refused has no
    correct generation (the judge only sees problems math-verify solved none of), so build rejects it
    unless dedupe dropped it first; and preferences pairs a judge-accepted generation against a wrong
    one."""
    import json

    metrics = {name: json.loads((ROOT / "metrics" / f"{name}.json").read_text()) for name in ("judge", "dedupe", "build", "preferences")}
    judge = metrics["judge"]
    verdicts = judge["verdicts"]
    for branch in ("EQUIVALENT", "DIFFERENT", "unparseable"):
        assert verdicts[branch] > 0, f"the demo's judge gave no {branch} verdict: {verdicts}"
    assert judge["judged"] - judge["recovered_generations"] >= verdicts["DIFFERENT"] + verdicts["unparseable"]
    refused = judge["judged_problems"] - judge["recovered_problems"]
    assert refused > 0, "the judge overturned at least one generation of every problem it saw: build rejects none because of it"
    rejected = metrics["build"]["counts"]["rejected_by_reason"].get("no_correct_generation", 0)
    assert rejected >= refused - metrics["dedupe"]["counts"]["rejected"] and rejected > 0
    # A judge-accepted generation paired against a wrong one: the judge decided the pair.
    assert metrics["preferences"]["pairs_by_chosen_correct_by"]["judge"] > 0
    assert metrics["preferences"]["pairs_by_rejected_kind"]["wrong"] > 0
