import json
import math

import pytest

from distillery.config import BenchmarkFile, EvaluateConfig
from distillery.stages import evaluate

from conftest import BUNDLED_BENCHMARKS


def test_pass_at_1_and_standard_error():
    mean, se = evaluate.pass_at_1([[True, True], [True, False], [False, False], [False, False]])
    assert mean == pytest.approx(0.375)
    rates = [1, 0.5, 0, 0]
    expected = math.sqrt(sum((r - 0.375) ** 2 for r in rates) / 3 / 4)
    assert se == pytest.approx(expected)
    assert evaluate.pass_at_1([[True]]) == (1.0, 0.0)
    assert evaluate.pass_at_1([]) == (0.0, 0.0)


def test_evaluates_the_tiny_model_on_shared_benchmarks(tiny_models, tmp_path):
    benchmarks = {
        "math500": BenchmarkFile(path=str(BUNDLED_BENCHMARKS / "math500.jsonl"), id_field="unique_id"),
        "aime2024": BenchmarkFile(path=str(BUNDLED_BENCHMARKS / "aime2024.jsonl"), id_field="id"),
    }
    cfg = EvaluateConfig.model_validate(
        {
            "llm": {"model": str(tiny_models / "teacher")},
            "sampling": {"max_new_tokens": 16},
            "benchmarks": {"math500": {"n": 2, "limit": 3}, "aime2024": {"n": 3, "limit": 2}},
        }
    )
    results = evaluate.run(
        cfg, 42, benchmarks, evaluate.Paths(samples=tmp_path / "s.parquet", metrics=tmp_path / "m.json", results=tmp_path / "results.md")
    )["sampled"]
    assert results["math500"]["problems"] == 3 and results["math500"]["samples_per_problem"] == 2
    assert results["aime2024"]["problems"] == 2
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["protocol"]["sampled"]["temperature"] == 0.6
    assert metrics["protocol"]["sampled"]["samples_per_problem"] == {"math500": 2, "aime2024": 3}
    import polars as pl

    samples = pl.read_parquet(tmp_path / "s.parquet")
    assert samples.height == 3 * 2 + 2 * 3
    assert set(samples["gold"].filter(samples["benchmark"] == "aime2024")) == {"204", "025"}
    assert "| math500 |" in (tmp_path / "results.md").read_text()


# --- scoring against a known answer key ---------------------------------------------------------------
# The "model" is a file of fixed outputs: its answers are written to the evaluate journal under the
# exact request keys evaluate.run computes, so the whole stage runs (prompts, keys, the journal,
# extraction, checking, pass@1) and sends nothing.


def fixed_outputs(cfg, benchmarks, seed, answer_for):
    """Journal one fixed completion per request: answer_for(mode, item, sample_index) -> text."""
    from distillery.journal import ShardJournal, journal_dir
    from distillery.llm import Completion
    from distillery.llm.task import journal_record

    with ShardJournal(journal_dir("evaluate"), 0, 1) as jn:
        for mode in cfg.modes:
            task = evaluate.EvaluateTask(cfg, seed, mode)
            for name, spec in cfg.benchmarks.items():
                rows = evaluate.load_benchmark(name, benchmarks[name], spec.limit)
                for it in evaluate.items_for(name, benchmarks[name], rows, cfg, seed):
                    for i in range(task.samples(it)):
                        key = task.request(task.messages(it), evaluate.mode_sampling(cfg, mode), i).key
                        jn.append(journal_record(Completion(key, answer_for(mode, it, i), "stop"), "evaluate"))


GPQA_ROWS = [
    {
        "Question": f"Which particle is number {k}?",
        "Correct Answer": f"right {k}",
        "Incorrect Answer 1": f"wrong {k}a",
        "Incorrect Answer 2": f"wrong {k}b",
        "Incorrect Answer 3": f"wrong {k}c",
    }
    for k in range(6)
]


@pytest.fixture
def answer_key(tmp_path):
    gpqa = tmp_path / "gpqa.jsonl"
    gpqa.write_text("".join(json.dumps(r) + "\n" for r in GPQA_ROWS))
    benchmarks = {
        "aime2024": BenchmarkFile(path=str(BUNDLED_BENCHMARKS / "aime2024.jsonl"), id_field="id"),
        "gpqa_diamond": BenchmarkFile(
            path=str(gpqa),
            problem_field="Question",
            answer_field="Correct Answer",
            kind="multiple_choice",
            incorrect_fields=["Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"],
        ),
    }
    cfg = EvaluateConfig.model_validate(
        {
            "llm": {"model": "fixed-outputs"},
            "modes": ["sampled", "greedy"],
            "benchmarks": {"aime2024": {"n": 4, "limit": 3}, "gpqa_diamond": {"n": 2}},
        }
    )
    return cfg, benchmarks


def test_pass_at_1_from_a_known_answer_key(answer_key, tmp_path):
    cfg, benchmarks = answer_key
    aime = {r["id"]: r["answer"] for r in map(json.loads, (BUNDLED_BENCHMARKS / "aime2024.jsonl").read_text().splitlines())}
    items = list(aime)[:3]
    # AIME: item 0 right in 4 of 4 samples, item 1 (gold "025") right in 1 of 4, item 2 in 0 of 4;
    # greedy right on item 1 only.
    right_in = {items[0]: 4, items[1]: 1, items[2]: 0}
    assert aime[items[1]] == "025"

    def aime_answer(mode, it, i):
        gold = int(aime[it.item])
        if mode == "greedy":
            ok = it.item == items[1]
        else:
            ok = i < right_in[it.item]
        # "25" for the gold "025" (and "025" for 25): the same integer either way
        shown = (str(gold) if i % 2 == 0 else f"{gold:03d}") if ok else str(gold + 1)
        return f"<think>work</think> The answer is $\\boxed{{{shown}}}$."

    letters = {}

    def answer_for(mode, it, i):
        if it.benchmark == "aime2024":
            return aime_answer(mode, it, i)
        letters[it.item] = it.gold
        k = int(it.item)
        if mode == "greedy" or k < 3:  # items 0-2 right in both samples, items 3-5 wrong in sample 1 only
            return f"<think>hmm</think>\nAnswer: {it.gold}"
        wrong = next(l for l in "ABCD" if l != it.gold)
        return f"<think>hmm</think>\nAnswer: {wrong if i == 1 else it.gold}"

    fixed_outputs(cfg, benchmarks, 3, answer_for)
    results = evaluate.run(
        cfg, 3, benchmarks, evaluate.Paths(samples=tmp_path / "s.parquet", metrics=tmp_path / "m.json", results=tmp_path / "r.md")
    )

    rates = [1.0, 0.25, 0.0]
    mean = sum(rates) / 3
    se = math.sqrt(sum((r - mean) ** 2 for r in rates) / 2 / 3)
    assert results["sampled"]["aime2024"] == {
        "pass@1": round(100 * mean, 2),
        "stderr": round(100 * se, 2),
        "problems": 3,
        "samples_per_problem": 4,
    }
    assert results["greedy"]["aime2024"]["pass@1"] == round(100 / 3, 2) and results["greedy"]["aime2024"]["samples_per_problem"] == 1
    g_rates = [1, 1, 1, 0.5, 0.5, 0.5]
    g_mean = sum(g_rates) / 6
    g_se = math.sqrt(sum((r - g_mean) ** 2 for r in g_rates) / 5 / 6)
    assert results["sampled"]["gpqa_diamond"] == {"pass@1": 75.0, "stderr": round(100 * g_se, 2), "problems": 6, "samples_per_problem": 2}
    assert results["greedy"]["gpqa_diamond"]["pass@1"] == 100.0
    # The options were shuffled: the correct letter is not always the same one.
    assert len(set(letters.values())) > 1
    samples = __import__("polars").read_parquet(tmp_path / "s.parquet")
    assert set(samples["mode"]) == {"sampled", "greedy"} and samples.height == (3 * 4 + 6 * 2) + (3 + 6)
    table = (tmp_path / "r.md").read_text()
    assert "## greedy: temperature 0.0" in table and "| gpqa_diamond | 75.0 |" in table
    assert "OpenR1-Qwen-7B" in table and "| this model (sampled) |" in table


def test_model_card_gets_the_results():
    card = "---\nbase_model: m\n---\n# Student\n\n## Training\n\nloss\n\n## Evaluation\n\nsee elsewhere\n"
    table = "# Evaluation of `m`\n\n## sampled: temperature 0.6\n\n| math500 | 50.0 |\n"
    out = evaluate.model_card_with_results(card, table)
    assert out.startswith("---\nbase_model: m\n---\n# Student") and "## Training\n\nloss" in out
    assert "see elsewhere" not in out and "## Evaluation\n\n### sampled: temperature 0.6\n\n| math500 | 50.0 |" in out


def test_option_shuffle_is_seeded_and_prompts_list_every_option(answer_key):
    cfg, benchmarks = answer_key
    rows = evaluate.load_benchmark("gpqa_diamond", benchmarks["gpqa_diamond"], None)
    one = evaluate.items_for("gpqa_diamond", benchmarks["gpqa_diamond"], rows, cfg, 3)
    two = evaluate.items_for("gpqa_diamond", benchmarks["gpqa_diamond"], rows, cfg, 3)
    other = evaluate.items_for("gpqa_diamond", benchmarks["gpqa_diamond"], rows, cfg, 4)
    assert one == two and [i.gold for i in one] != [i.gold for i in other]
    for it, row in zip(one, GPQA_ROWS):
        assert f"{it.gold}) {row['Correct Answer']}" in it.prompt
        assert all(row[f"Incorrect Answer {k}"] in it.prompt for k in (1, 2, 3))
        assert "one of ABCD" in it.prompt and row["Question"] in it.prompt


@pytest.mark.parametrize(
    "text, letter",
    [
        ("<think>long</think>\nAnswer: C", "C"),
        ("Answer: (B)", "B"),
        ("**Answer: D**", "D"),
        ("so \\boxed{A}", "A"),
        ("Answer: A\nOn reflection, Answer: B", "B"),
        ("<think>Answer: A", None),
        ("Answer: E", None),
        ("no letter", None),
    ],
)
def test_choice_extraction(text, letter):
    assert evaluate.extract_choice(text, 4) == letter


def test_a_multiple_choice_benchmark_needs_its_wrong_options():
    with pytest.raises(ValueError, match="incorrect_fields"):
        BenchmarkFile(path="g.jsonl", kind="multiple_choice")


def test_an_empty_benchmark_file_is_an_error(tmp_path):
    from distillery.config import BenchmarkFile
    from distillery.errors import DistilleryError

    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DistilleryError, match=r"benchmark mybench .* has no rows: there is nothing to evaluate on"):
        evaluate.load_benchmark("mybench", BenchmarkFile(path=str(empty)), None)
