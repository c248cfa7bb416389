"""distillery.stages.difficulty: GRPO's problems by their pass rate under the model GRPO starts from.

The pass rates are checked against an answer key: the student's answers are written to the
difficulty journal under the exact request keys the stage computes (as tests/test_evaluate.py does),
so the whole stage runs (prompts, keys, the journal, GRPO's accuracy verdicts, the range) and the
kept set is compared with the one the key implies. The journal's own promise (nothing asked twice,
a widened range included) is checked with a real, untrained student built by the models stage's code.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from distillery.config import VerifyConfig, parse_stage_config, stage_config
from distillery.config.difficulty import DifficultyConfig
from distillery.errors import ConfigError, DistilleryError
from distillery.stages import difficulty


def settings(model="fixed-outputs", **over):
    return {
        "llm": {"model": str(model), "dtype": "float32"},
        "splits": ["default", "extended"],
        "sampling": {"temperature": 1.0, "top_p": 1.0, "max_new_tokens": 16},
        "samples": 4,
        "min_pass_rate": 0.25,
        "max_pass_rate": 0.75,
        **over,
    }


def problem(uuid, n, answer=None):
    return {"uuid": uuid, "problem": f"Compute {n}+1.", "answer": str(n + 1) if answer is None else answer}


def write_splits(root, default, extended=()):
    files = []
    for split, rows in (("default", default), ("extended", extended)):
        path = root / split / "train-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pl.DataFrame(list(rows), schema={"uuid": pl.String, "problem": pl.String, "answer": pl.String}).write_parquet(path)
        files.append(path)
    return files


def paths_in(tmp_path, files):
    out = tmp_path / "out"
    return difficulty.Paths(
        dataset=files,
        kept=out / "kept.parquet",
        rejected=out / "rejected.parquet",
        pass_rates=out / "pass_rates.parquet",
        metrics=out / "metrics.json",
        server_logs=out / "servers",
    )


def journal_answers(cfg, seed, rows, answer_for):
    """One fixed answer per request the stage will make: answer_for(row, sample_index) -> (text, finish_reason)."""
    from distillery.journal import ShardJournal, journal_dir
    from distillery.llm import Completion
    from distillery.llm.task import journal_record

    task = difficulty.DifficultyTask(cfg, seed)
    with ShardJournal(journal_dir("difficulty"), 0, 1) as jn:
        for r in rows:
            for i in range(cfg.samples):
                text, finish = answer_for(r, i)
                jn.append(journal_record(Completion(task.request(task.messages(r), cfg.sampling, i).key, text, finish), "difficulty"))


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"min_pass_rate": 0.8, "max_pass_rate": 0.2}, "min_pass_rate 0.8 is above max_pass_rate 0.2"),
        ({"samples": 0}, "difficulty.samples = 0: Input should be greater than or equal to 1"),
        ({"max_pass_rate": 1.5}, "difficulty.max_pass_rate = 1.5: Input should be less than or equal to 1"),
    ],
)
def test_a_bad_setting_is_one_clear_message(over, message):
    with pytest.raises(ConfigError) as err:
        parse_stage_config("difficulty", json.dumps({**settings(), **over, "seed": 1}))
    lines = str(err.value).splitlines()
    assert lines[0] == "config of stage difficulty is invalid:" and len(lines) == 2 and message in lines[1], str(err.value)


def test_the_extras_are_verify_and_grpos_word_golds():
    cfg = DifficultyConfig.model_validate(settings())
    text = stage_config("difficulty", cfg, seed=3, verify=VerifyConfig().model_dump(mode="json"), word_golds="compare")
    section, extras = parse_stage_config("difficulty", text)
    assert section == cfg and (extras.seed, extras.word_golds) == (3, "compare")
    with pytest.raises(ConfigError, match="word_golds"):
        stage_config("difficulty", cfg, seed=3, verify=VerifyConfig().model_dump(mode="json"))


def test_the_kept_problems_are_those_whose_pass_rate_is_in_range(tmp_path):
    # The answer key: how many of the 4 samples answer right, per problem. One more right answer is
    # cut off (finish_reason length): GRPO's accuracy reward never counts a truncated completion.
    right_in = {"a": 4, "b": 3, "c": 2, "d": 1, "e": 0, "f": 2}
    truncated_right = {"f"}  # its third sample is right but cut off
    rows = [problem(u, n) for n, u in enumerate("abcde")]
    extended = [problem("f", 9)]
    unscorable = [
        problem("no-gold", 20, answer=""),
        problem("malformed", 21, answer="\\frac{1}{2"),
        problem("words", 22, answer="Wednesday"),  # a gold of bare words: GRPO gives it no reward (word_golds unusable)
    ]
    files = write_splits(tmp_path / "ds", rows + unscorable, extended)
    cfg = DifficultyConfig.model_validate(settings())

    def answer_for(r, i):
        gold = int(r["answer"])
        if i < right_in[r["uuid"]]:
            return f"<think>{gold - 1}+1</think> The answer is $\\boxed{{{gold}}}$.", "stop"
        if r["uuid"] in truncated_right and i == right_in[r["uuid"]]:
            return f"<think>{gold - 1}+1</think> The answer is $\\boxed{{{gold}}}$.", "length"
        return f"<think>guess</think> The answer is $\\boxed{{{gold + 5}}}$.", "stop"

    journal_answers(cfg, 5, rows + extended, answer_for)
    paths = paths_in(tmp_path, files)
    out = difficulty.run(cfg, 5, VerifyConfig(workers=1), "unusable", paths)

    rates = {u: k / 4 for u, k in right_in.items()}
    expected = {u for u, r in rates.items() if 0.25 <= r <= 0.75}
    assert expected == {"b", "c", "d", "f"}
    kept = pl.read_parquet(paths.kept)
    assert set(kept["uuid"]) == expected
    assert dict(zip(kept["uuid"], kept["pass_rate"])) == {u: rates[u] for u in expected}
    assert dict(zip(kept["uuid"], kept["split"]))["f"] == "extended"
    assert kept.columns[:4] == ["uuid", "split", "problem", "answer"]
    table = pl.read_parquet(paths.pass_rates)
    assert {r["uuid"]: (r["samples"], r["correct"], r["pass_rate"]) for r in table.iter_rows(named=True)} == {
        u: (4, k, k / 4) for u, k in right_in.items()
    }
    rejected = pl.read_parquet(paths.rejected)
    assert dict(zip(rejected["uuid"], rejected["reason"])) == {
        "a": "too_easy",
        "e": "too_hard",
        "no-gold": "no_gold",
        "malformed": "gold_malformed",
        "words": "unusable_gold",
    }
    metrics = json.loads(paths.metrics.read_text())
    assert metrics["counts"] == {
        "rows_in": 9,
        "kept": 4,
        "rejected": 5,
        "rejected_by_reason": {"gold_malformed": 1, "no_gold": 1, "too_easy": 1, "too_hard": 1, "unusable_gold": 1},
    }
    assert metrics["correct_of_samples"] == {"0/4": 1, "1/4": 1, "2/4": 2, "3/4": 1, "4/4": 1}
    assert out["requests"] == 6 * 4 and out["sent"] == 0  # every answer came from the journal


def test_no_problem_in_range_is_one_clear_error(tmp_path):
    files = write_splits(tmp_path / "ds", [problem("a", 1)])
    cfg = DifficultyConfig.model_validate(settings(samples=2))
    journal_answers(cfg, 5, [problem("a", 1)], lambda r, i: ("\\boxed{0}", "stop"))
    with pytest.raises(DistilleryError, match=r"none of the 1 problems has a pass rate in \[0.25, 0.75\].*too_hard"):
        difficulty.run(cfg, 5, VerifyConfig(workers=1), "unusable", paths_in(tmp_path, files))


@pytest.fixture(scope="module")
def untrained_student(tmp_path_factory):
    """A real student, untrained: the models stage's tokenizer and architecture, built in seconds."""
    from distillery.config.models import TinyModelsConfig
    from distillery.stages.models import build_tokenizer, new_model

    out = tmp_path_factory.mktemp("student") / "student"
    cfg = TinyModelsConfig()
    corpus = [f"Compute {n}+1. <think>{n}+1</think> The answer is $\\boxed{{{n + 1}}}$." for n in range(50)]
    tokenizer = build_tokenizer(corpus, 400, cfg.max_position_embeddings)
    new_model(tokenizer, cfg, 0).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_a_rerun_and_a_widened_range_send_nothing_twice(untrained_student, tmp_path):
    files = write_splits(tmp_path / "ds", [problem(u, n) for n, u in enumerate("abc")])
    cfg = DifficultyConfig.model_validate(
        settings(untrained_student, samples=2, sampling={"temperature": 1.0, "top_p": 1.0, "max_new_tokens": 4}, min_pass_rate=0.0)
    )
    first = difficulty.run(cfg, 5, VerifyConfig(workers=1), "unusable", paths_in(tmp_path / "1", files))
    assert first["requests"] == 3 * 2 and first["sent"] == 3 * 2
    again = difficulty.run(cfg, 5, VerifyConfig(workers=1), "unusable", paths_in(tmp_path / "2", files))
    assert again["sent"] == 0
    wider = cfg.model_copy(update={"max_pass_rate": 1.0})
    widened = difficulty.run(wider, 5, VerifyConfig(workers=1), "unusable", paths_in(tmp_path / "3", files))
    assert widened["sent"] == 0 and widened["counts"]["kept"] == 3
    for name in ("kept", "rejected", "pass_rates"):
        assert (tmp_path / "1/out" / f"{name}.parquet").read_bytes() == (tmp_path / "2/out" / f"{name}.parquet").read_bytes()
