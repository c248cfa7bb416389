"""Rounds of generation (generate.rounds): a later round samples exactly the problems its condition
selects from the verdicts so far, n new samples each, with sample indices after the rounds before.

The teacher is fixed-output: its answers are written beforehand into the generate journal under the
exact request keys the stage computes (as tests/test_difficulty.py does), and its model name is no
model at all, so a request the test did not foresee fails the run instead of being answered. The
rounds then run through the real stages: generate's shards and gather, math-verify, the judge (also
fixed-output), and the gathers that merge each round into the table of the rounds before. What each
problem's answers are, and so which problems each condition selects, is written out by hand below.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from distillery.config import GenerateConfig, JudgeConfig, Params, SampleConfig, VerifyConfig
from distillery.errors import ConfigError
from distillery.stages import generate, judge, sample, verify
from distillery.tables import JUDGED, read_table

from conftest import REPO

NUM_SHARDS = 2
RIGHT, WRONG, CUT = "right", "wrong", "cut"
# Each problem's answers in round 1 (sample indices 0 and 1): right (the gold, boxed), wrong (a
# boxed other number) or cut (no answer, stopped by the length limit).
ROUND_1 = {
    "p_solved_twice": (RIGHT, RIGHT),
    "p_solved_once": (RIGHT, WRONG),
    "p_wrong_twice": (WRONG, WRONG),
    "p_cut_twice": (CUT, CUT),
    "p_wrong_and_cut": (WRONG, CUT),
    "p_cut_and_right": (CUT, RIGHT),
}
# By hand: no correct answer after round 1 -> round 2 of {count: correct, fewer_than: 1}.
UNSOLVED = {"p_wrong_twice", "p_cut_twice", "p_wrong_and_cut"}
FEWER_THAN_TWO_CORRECT = UNSOLVED | {"p_solved_once", "p_cut_and_right"}
ONLY_TRUNCATED = {"p_cut_twice"}


def problems_file(tmp_path: Path) -> Path:
    """The sample stage's table of six problems whose golds are n + 1."""
    rows = [
        {
            "problem": f"Problem {name}: compute {n} + 1.",
            "solution": f"$\\boxed{{{n + 1}}}$",
            "answer": str(n + 1),
            "problem_type": "Algebra",
            "question_type": "math-word-problem",
            "problem_is_valid": "Yes",
            "solution_is_valid": "Yes",
            "source": "amc_aime",
            "synthetic": False,
        }
        for n, name in enumerate(ROUND_1, start=10)
    ]
    source = tmp_path / "source.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "sample"
    cfg = SampleConfig.model_validate({"source": str(source)})
    sample.run(cfg, 42, sample.Paths(problems=out / "problems.parquet", rejected=out / "rejected.parquet", metrics=out / "metrics.json"))
    return out / "problems.parquet"


def names_by_uuid(problems: Path) -> dict[str, str]:
    df = pl.read_parquet(problems)
    return {u: p.split(":")[0].removeprefix("Problem ") for u, p in zip(df["uuid"], df["problem"])}


def text_of(kind: str, gold: int) -> tuple[str, str]:
    if kind == RIGHT:
        return f"So the answer is \\boxed{{{gold}}}.", "stop"
    if kind == WRONG:
        return f"So the answer is \\boxed{{{gold + 100}}}.", "stop"
    return "Let me think about this for a very long", "length"


def teacher_cfg(rounds: list[dict]) -> GenerateConfig:
    return GenerateConfig.model_validate(
        {
            "llm": {"model": "fixed-outputs-teacher", "dtype": "float32"},
            "sampling": {"temperature": 0.6, "top_p": 0.95, "max_new_tokens": 64},
            "num_generations": 2,
            "rounds": rounds,
            "num_shards": NUM_SHARDS,
        }
    )


def journal_teacher(cfg: GenerateConfig, problems: Path, answers: dict[tuple[str, int], str], round_number: int) -> None:
    """The teacher's fixed answers for `round_number`: answers[(name, sample_index)] for every problem."""
    from distillery.journal import ShardJournal, journal_dir
    from distillery.keys import shard_of
    from distillery.llm import Completion
    from distillery.llm.task import journal_record

    names = names_by_uuid(problems)
    rows = pl.read_parquet(problems).select("uuid", "problem", "answer").to_dicts()
    sampling, n = generate.round_sampling(cfg, round_number)
    for shard in range(NUM_SHARDS):
        task = generate.GenerateTask(cfg, 42, shard, round_number=round_number)
        with ShardJournal(journal_dir("generate"), shard, NUM_SHARDS) as jn:
            for r in (r for r in rows if shard_of(r["uuid"], NUM_SHARDS) == shard):
                start = task.first_sample_index(r)
                for i in range(start, start + n):
                    text, finish = text_of(answers[(names[r["uuid"]], i)], int(r["answer"]))
                    key = task.request(task.messages(r), sampling, i).key
                    jn.append(journal_record(Completion(key, text, finish, completion_tokens=8), "generate"))


def run_round(
    cfg: GenerateConfig, round_number: int, problems: Path, tmp_path: Path, judged_so_far: Path | None
) -> tuple[Path, list[dict]]:
    """One round through generate, verify and judge (shards and gathers): its judged table of every
    round so far, and the generate shards' run figures."""
    out = tmp_path / f"round-{round_number}"
    figures = []
    gen_shards, ver_shards, ver_figures, jud_shards = [], [], [], []
    verify_cfg = VerifyConfig.model_validate({"workers": 1})
    judge_cfg = JudgeConfig.model_validate(
        {"llm": {"model": "fixed-outputs-judge", "dtype": "float32"}, "prompt_template": str(REPO / "prompts/judge.txt")}
    )
    for shard in range(NUM_SHARDS):
        g = out / f"generate/shard-{shard}.parquet"
        run_figures = out / f"generate/shard-{shard}.run.json"
        generate.run_shard(
            cfg, 42, shard, generate.ShardPaths(problems, g, judged_so_far=judged_so_far, run_figures=run_figures), round_number
        )
        figures.append(json.loads(run_figures.read_text()))
        v, vf = out / f"verify/shard-{shard}.parquet", out / f"verify/shard-{shard}.json"
        verify.run_shard(verify_cfg, shard, NUM_SHARDS, verify.ShardPaths(g, problems, v, vf))
        journal_judge(judge_cfg, v, problems)
        j = out / f"judge/shard-{shard}.parquet"
        judge.run_shard(judge_cfg, 42, shard, NUM_SHARDS, judge.ShardPaths(v, problems, j))
        gen_shards.append(g), ver_shards.append(v), ver_figures.append(vf), jud_shards.append(j)
    judged = out / "judged.parquet"
    judge.gather(judge_cfg, judge.GatherPaths(jud_shards, problems, judged, out / "judge.json", so_far=judged_so_far))
    return judged, figures


def journal_judge(cfg: JudgeConfig, verified: Path, problems: Path) -> None:
    """The judge's fixed reply to every generation of the shard: DIFFERENT (it confirms math-verify)."""
    from distillery.journal import ShardJournal, journal_dir
    from distillery.llm import Completion
    from distillery.llm.task import journal_record

    golds = pl.read_parquet(problems).select("uuid", "problem", "answer")
    rows = pl.read_parquet(verified).join(golds, on="uuid").to_dicts()
    for shard in range(NUM_SHARDS):
        task = judge.JudgeTask(cfg, 42, shard=shard, num_shards=NUM_SHARDS)
        with ShardJournal(journal_dir("judge"), shard, NUM_SHARDS) as jn:
            for r in rows:
                key = task.request(task.messages(r), cfg.sampling, 0).key
                jn.append(journal_record(Completion(key, "Verdict: DIFFERENT", "stop", completion_tokens=3), "judge"))


def answers_for_two_rounds(second_round_n: int) -> dict[tuple[str, int], str]:
    """Round 1 as ROUND_1; every later sample (index 2 on) of every problem right."""
    answers = {(name, i): kind for name, kinds in ROUND_1.items() for i, kind in enumerate(kinds)}
    answers |= {(name, i): RIGHT for name in ROUND_1 for i in range(2, 2 + second_round_n)}
    return answers


UNSOLVED_ROUND = {
    "when": {"count": "correct", "fewer_than": 1},
    "num_generations": 2,
    "sampling": {"temperature": 0.9, "top_p": 0.95, "max_new_tokens": 64},
}


def two_rounds(tmp_path: Path) -> tuple[dict[str, str], tuple[Path, list[dict]], tuple[Path, list[dict]]]:
    """Round 1 as ROUND_1, then OpenR1's round 2 (2 more, every one right, for the unsolved problems):
    (problem name by uuid, (judged table, generate figures) of each round)."""
    problems = problems_file(tmp_path)
    cfg = teacher_cfg([UNSOLVED_ROUND])
    answers = answers_for_two_rounds(2)
    journal_teacher(cfg, problems, answers, 1)
    journal_teacher(cfg, problems, answers, 2)
    first = run_round(cfg, 1, problems, tmp_path, None)
    return names_by_uuid(problems), first, run_round(cfg, 2, problems, tmp_path, first[0])


def test_round_two_asks_exactly_the_unsolved_problems_for_n_new_samples(tmp_path):
    names, (judged_1, figures_1), (judged_2, figures_2) = two_rounds(tmp_path)
    assert sum(f["requests"] for f in figures_1) == 6 * 2

    # Requests: 2 for each of the 3 unsolved problems, all answered by the fixed teacher's journal.
    assert sum(f["problems"] for f in figures_2) == len(UNSOLVED) == 3
    assert sum(f["requests"] for f in figures_2) == 3 * 2
    assert sum(f["reused_from_journal"] for f in figures_2) == 6 and sum(f["generated"] for f in figures_2) == 0
    both = read_table(judged_2, JUDGED)
    later = both.filter(pl.col("round") == 2)
    assert {names[u] for u in later["uuid"]} == UNSOLVED
    assert sorted(later.group_by("uuid").agg(pl.col("sample_index").sort())["sample_index"].to_list()) == [[2, 3]] * 3
    assert {json.loads(s)["temperature"] for s in later["sampling"]} == {0.9}  # the round's own sampling
    # Round 1's rows are carried over unchanged, and the table holds both rounds in key order.
    first = read_table(judged_1, JUDGED)
    assert both.filter(pl.col("round") == 1).select("request_key", "generation").equals(first.select("request_key", "generation"))
    assert both.height == 12 + 6 and both["request_key"].n_unique() == 18
    assert both.select("uuid", "sample_index").equals(both.select("uuid", "sample_index").sort("uuid", "sample_index"))
    # Round 2's right answers recovered every unsolved problem: the judge's metrics count them.
    metrics = json.loads((tmp_path / "round-2/judge.json").read_text())
    assert metrics["problems_first_solved_in_round"] == {"1": 3, "2": 3}
    assert metrics["generations_by_round"] == {"1": 12, "2": 6}


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ({"count": "correct", "fewer_than": 1}, UNSOLVED),
        ({"count": "correct", "fewer_than": 2}, FEWER_THAN_TWO_CORRECT),
        ({"every": "truncated"}, ONLY_TRUNCATED),
        ({"count": "wrong", "fewer_than": 1}, {"p_solved_twice", "p_cut_twice", "p_cut_and_right"}),
    ],
)
def test_each_condition_selects_the_problems_counted_by_hand(when, expected, tmp_path):
    problems = problems_file(tmp_path)
    names = names_by_uuid(problems)
    cfg = teacher_cfg([{"when": when, "num_generations": 1, "sampling": None}])
    answers = answers_for_two_rounds(1)
    journal_teacher(cfg, problems, answers, 1)
    journal_teacher(cfg, problems, answers, 2)
    judged_1, _ = run_round(cfg, 1, problems, tmp_path, None)
    selected = set()
    for shard in range(NUM_SHARDS):
        out = tmp_path / f"round2-shard-{shard}.parquet"
        rows = generate.run_shard(cfg, 42, shard, generate.ShardPaths(problems, out, judged_so_far=judged_1), 2)
        assert rows["sample_index"].to_list() == [2] * rows.height  # one new sample, after round 1's two
        selected |= {names[u] for u in rows["uuid"]}
    assert selected == expected


def test_growing_a_rounds_n_adds_only_the_new_sample_indices(tmp_path):
    problems = problems_file(tmp_path)
    two, three = teacher_cfg([UNSOLVED_ROUND]), teacher_cfg([{**UNSOLVED_ROUND, "num_generations": 3}])
    rows = pl.read_parquet(problems).select("uuid", "problem").to_dicts()

    def keys(cfg):
        task = generate.GenerateTask(cfg, 42, 0, round_number=2)
        sampling, n = generate.round_sampling(cfg, 2)
        return {task.request(task.messages(r), sampling, i).key for r in rows for i in range(2, 2 + n)}

    assert keys(two) < keys(three) and len(keys(three) - keys(two)) == len(rows)  # index 4 only
    # Round 1's keys are not among them: the indices differ, whatever the sampling.
    same_sampling = teacher_cfg([{**UNSOLVED_ROUND, "sampling": None}])
    task = generate.GenerateTask(same_sampling, 42, 0)
    round_1 = {task.request(task.messages(r), same_sampling.sampling, i).key for r in rows for i in range(2)}
    assert not round_1 & keys(same_sampling)


def params_with(rounds) -> dict:
    import yaml

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["generate"]["rounds"] = rounds
    return raw


@pytest.mark.parametrize(
    ("rounds", "message"),
    [
        (
            [{"when": {"count": "solved", "fewer_than": 1}, "num_generations": 2}],
            "generate.rounds.0.when.count = 'solved': expected 'correct', 'wrong', 'truncated' or 'failed'",
        ),
        (
            [{"when": {"count": "correct", "fewer_than": 1}, "num_generations": 0}],
            "generate.rounds.0.num_generations = 0: Input should be greater",
        ),
        ([{"when": {"count": "correct"}, "num_generations": 2}], "count and fewer_than go together"),
        ([{"when": {"count": "correct", "fewer_than": 1, "every": "truncated"}, "num_generations": 2}], "set either count and fewer_than"),
        ([{"num_generations": 2}], "generate.rounds.0.when: required key is missing"),
    ],
)
def test_a_bad_round_is_one_clear_message(rounds, message):
    from distillery.config import validate_params

    with pytest.raises(ConfigError) as exc:
        validate_params(params_with(rounds), "params.yaml")
    assert message in str(exc.value), str(exc.value)


def test_a_round_the_config_does_not_name_is_one_clear_error(tmp_path):
    from distillery.errors import DistilleryError

    problems = problems_file(tmp_path)
    with pytest.raises(DistilleryError, match=r"generate round 3 does not exist: generate.rounds names 1 round\(s\) after the first"):
        generate.run_shard(
            teacher_cfg([UNSOLVED_ROUND]), 42, 0, generate.ShardPaths(problems, tmp_path / "g.parquet", judged_so_far=problems), 3
        )
    with pytest.raises(DistilleryError, match="generate round 2 needs --judged-so-far"):
        generate.run_shard(teacher_cfg([UNSOLVED_ROUND]), 42, 0, generate.ShardPaths(problems, tmp_path / "g.parquet"), 2)


def test_the_demo_and_the_recipe_run_openr1s_rule():
    import yaml

    for path in ("params.yaml", "recipes/openr1-math-220k.yaml"):
        cfg = Params.model_validate(yaml.safe_load((REPO / path).read_text())).generate
        assert cfg.num_generations == 2 and len(cfg.rounds) == 1, path
        (later,) = cfg.rounds
        assert (later.when.count, later.when.fewer_than, later.num_generations) == ("correct", 1, 2), path


def test_diff_between_a_one_round_and_a_two_round_table_names_the_recovered_problems(tmp_path):
    from distillery.diff import diff, render

    names, _, _ = two_rounds(tmp_path)

    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())  # the workspace's, as diff reads them
    d = diff(tmp_path, "workspace", "workspace", path="round-1/judged.parquet", path_b="round-2/judged.parquet")
    out = d.as_json()
    assert out["rows"]["added"] == 6 and out["rows"]["removed"] == out["rows"]["changed"] == 0  # round 2's rows, nothing else
    solved = out["problems_solved"]
    assert (solved["a"], solved["b"], solved["recovered"], solved["lost"]) == (3, 6, 3, 0)
    assert {names[u] for u in solved["examples"]["recovered"]} == UNSOLVED
    assert out["aggregates"]["rows_by_round"] == {"a": {"1": 12}, "b": {"1": 12, "2": 6}}
    assert "recovered (none correct at A): 3" in render(d)
