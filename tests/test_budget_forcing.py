"""Budget forcing (distillery.budget_forcing and evaluate's budget_forcing mode): rounds, delimiters
and scores with a fixed-output model; exact budgets and ignore counts through a real backend."""

from __future__ import annotations

import json

import polars as pl
import pytest

from distillery.budget_forcing import Reply, Round, force, ids_of
from distillery.config import BudgetForcing, EvaluateConfig
from distillery.errors import DistilleryError
from distillery.llm.loading import load_tokenizer
from distillery.llm.task import Answer
from distillery.stages import evaluate

BF = BudgetForcing(budgets=[64], num_ignore=2, ignore_string="Wait", answer_prefix="\nFinal Answer:", answer_max_tokens=32)


class Scripted:
    """A fixed-output model: each call answers every round from a script of (text, finish_reason) per
    prompt, in order, and records what it was asked."""

    def __init__(self, scripts: list[list[tuple[str, str]]]):
        self.scripts = [list(s) for s in scripts]
        self.asked: list[list[Round]] = []
        self.prompt_of: dict[tuple[int, ...], int] = {}

    def __call__(self, rounds):
        self.asked.append(list(rounds))
        out = []
        for r in rounds:
            who = next(i for i, p in self.prompt_of.items() if r.prompt_ids[: len(i)] == i)
            text, finish = self.scripts[self.prompt_of[who]].pop(0)
            out.append(Reply(text, finish))
        return out


@pytest.fixture(scope="module")
def tok(tiny_models):
    return load_tokenizer(str(tiny_models / "student_base"))


def test_rounds_delimiters_and_budgets_with_a_fixed_output_model(tok):
    prompts = [ids_of(tok, "Question A<think>\n"), ids_of(tok, "Question B, longer<think>\n")]
    model = Scripted(
        [
            # A ends its thinking early twice: "Wait" twice (num_ignore 2), then its third end is kept.
            [(" one", "stop"), (" two", "stop"), (" three", "stop"), (" so \\boxed{4}", "stop")],
            # B thinks past its budget: the server's text is longer than the budget left; cut to it.
            [(" x" * 200, "length"), (" \\boxed{7}", "stop")],
        ]
    )
    model.prompt_of = {tuple(p): i for i, p in enumerate(prompts)}
    a, b = force(prompts, 64, BF, tok, model)

    wait = ids_of(tok, "Wait")
    assert a.thinking == ids_of(tok, " one") + wait + ids_of(tok, " two") + wait + ids_of(tok, " three")
    assert (a.ignores, a.capped, a.rounds) == (2, False, 4)
    assert a.tail == "</think>" and a.text(tok, BF) == "<think>\n" + tok.decode(a.thinking) + "</think> so \\boxed{4}"
    assert len(b.thinking) == 64 and b.thinking == ids_of(tok, " x" * 200)[:64]
    assert (b.ignores, b.capped, b.rounds) == (0, True, 2)
    assert b.tail == "</think>\nFinal Answer:" and b.scored_text(BF) == "<think></think>\nFinal Answer: \\boxed{7}"

    # Every thinking round stops at the delimiter, asks at least one token and at most the budget left;
    # the answer continues the thinking, the delimiter and (B only) the answer prefix.
    thinking_rounds = [r for call in model.asked[:-1] for r in call]
    assert all(r.stop == ("</think>",) and r.min_tokens == 1 for r in thinking_rounds)
    first_a, second_a = model.asked[0][0], model.asked[1][0]
    assert first_a.max_tokens == 64 and second_a.max_tokens == 64 - len(ids_of(tok, " one") + wait)
    answer_a, answer_b = model.asked[-1]
    assert answer_a.prompt_ids == tuple(prompts[0] + a.thinking + ids_of(tok, "</think>")) and answer_a.max_tokens == 32
    assert answer_b.prompt_ids == tuple(prompts[1] + b.thinking + ids_of(tok, "</think>\nFinal Answer:"))
    assert answer_a.stop == () and answer_a.min_tokens == 0


def test_no_room_for_the_ignore_string_ends_the_thinking(tok):
    prompt = ids_of(tok, "Q<think>\n")
    text = " y" * 40
    budget = len(ids_of(tok, text)) + 1  # one token left: "Wait" does not fit
    model = Scripted([[(text, "stop"), (" \\boxed{1}", "stop")]])
    model.prompt_of = {tuple(prompt): 0}
    [t] = force([prompt], budget, BF, tok, model)
    assert (t.ignores, t.capped, t.rounds, len(t.thinking)) == (0, False, 2, budget - 1)


def test_a_failed_round_is_not_answered_and_an_all_failed_round_is_an_error(tok):
    prompts = [ids_of(tok, "Q<think>\n"), ids_of(tok, "R, other<think>\n")]
    model = Scripted([[(None, "error")], [(" fine", "length"), (" \\boxed{2}", "stop")]])
    model.prompt_of = {tuple(p): i for i, p in enumerate(prompts)}
    failed, ok = force(prompts, 16, BF, tok, model)
    assert failed.failed == "error" and failed.answer is None and failed.scored_text(BF) is None
    assert ok.answer is not None and len(model.asked) == 2  # the failed one is not asked for an answer
    model = Scripted([[(None, "error")]])
    model.prompt_of = {tuple(prompts[0]): 0}
    with pytest.raises(DistilleryError, match="every request of a round failed"):
        force(prompts[:1], 16, BF, tok, model)


def test_the_evaluate_stage_reports_each_budget_and_the_curve(tiny_models, tmp_path, monkeypatch):
    bench = tmp_path / "bench.jsonl"
    bench.write_text("".join(json.dumps({"problem": f"What is {i}+{i}?", "answer": str(2 * i), "id": f"q{i}"}) + "\n" for i in range(3)))
    cfg = EvaluateConfig.model_validate(
        {
            "llm": {"backend": "transformers", "model": str(tiny_models / "student_base")},
            "modes": ["greedy", "budget_forcing"],
            "budget_forcing": {"budgets": [16, 48], "num_ignore": 1, "answer_max_tokens": 16},
            "benchmarks": {"toy": {"n": 1}},
            "sampling": {"max_new_tokens": 16},
            "workers": 1,
        }
    )
    from distillery.config import BenchmarkFile

    files = {"toy": BenchmarkFile.model_validate({"path": str(bench), "id_field": "id"})}

    # The fixed-output model: thinking "hmm" ends early (then "Wait" once), the answer is right for q0 and q1.
    def answer(self, requests, sampling):
        out = {}
        for r in requests:
            prompt = self.tokenizer.decode(list(r.prompt_ids)) if r.prompt_ids else r.messages[-1][1]
            i = int(prompt.split("What is ")[1].split("+")[0])
            if r.prompt_ids is None:
                text, finish = f"<think>hm</think> \\boxed{{{2 * i}}}", "stop"
            elif r.stop:
                text, finish = " hmm", "stop"
            else:
                text, finish = f" \\boxed{{{2 * i if i < 2 else 99}}}", "stop"
            out[r.key] = Answer(text, finish, None, None, None, "code")
        return out

    monkeypatch.setattr(evaluate.EvaluateTask, "answer", answer)
    monkeypatch.setattr(evaluate.EvaluateTask, "tokenizer", load_tokenizer(str(tiny_models / "student_base")), raising=False)
    paths = evaluate.Paths(samples=tmp_path / "s.parquet", metrics=tmp_path / "m.json", results=tmp_path / "r.md")
    results = evaluate.run(cfg, 42, files, paths)

    assert list(results) == ["greedy", "budget_forcing_16", "budget_forcing_48"]
    for mode in ("budget_forcing_16", "budget_forcing_48"):
        r = results[mode]["toy"]
        assert r["pass@1"] == pytest.approx(66.67) and r["hit_budget_share"] == 0.0
        assert r["requests"] == 3 * 3  # per item: a round, a round after "Wait", the answer
    samples = pl.read_parquet(tmp_path / "s.parquet").filter(pl.col("mode") == "budget_forcing_16")
    tok = load_tokenizer(str(tiny_models / "student_base"))
    assert samples["thinking_tokens"].to_list() == [len(ids_of(tok, " hmm") + ids_of(tok, "Wait") + ids_of(tok, " hmm"))] * 3
    assert samples["ignores_appended"].to_list() == [1, 1, 1] and samples["generation"][0] == "<think>\n hmmWait hmm</think> \\boxed{0}"
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert [(p["budget"], p["benchmark"]) for p in metrics["scaling_curve"]] == [(16, "toy"), (48, "toy")]
    assert metrics["protocol"]["budget_forcing_16"]["thinking_budget"] == 16
    assert "budget_forcing_48: greedy, thinking held to 48 tokens" in (tmp_path / "r.md").read_text()


def test_budgets_are_never_exceeded_through_the_transformers_backend(tiny_models, tmp_path):
    """The untrained student rambles: every budget is reached, never passed, token by token."""
    cfg = EvaluateConfig.model_validate(
        {
            "llm": {"backend": "transformers", "model": str(tiny_models / "student_base"), "batch_size": 4},
            "modes": ["budget_forcing"],
            "budget_forcing": {"budgets": [5, 20], "num_ignore": 2, "answer_max_tokens": 8},
        }
    )
    task = evaluate.EvaluateTask(cfg, 42, "budget_forcing_20")
    items = [evaluate.Item("toy", str(i), f"What is {i}+1?", str(i + 1), "math") for i in range(4)]
    sent: list[Round] = []
    real_answer = task.answer

    def recording(requests, sampling):
        answers = real_answer(requests, sampling)
        for r in requests:
            sent.append(Round(r.prompt_ids, r.max_tokens, r.stop, r.min_tokens))
            text = answers[r.key].text
            if r.stop:  # a thinking round's reply never passes its limit, in the tokenizer's count
                assert len(ids_of(task.tokenizer, text)) <= r.max_tokens + 1
        return answers

    task.answer = recording
    for budget in (5, 20):
        sent.clear()
        traces = task.force_budget(items, budget)
        for t in traces:
            assert len(t.thinking) <= budget and t.ignores <= 2 and t.answer is not None
        assert all(r.max_tokens >= 1 for r in sent if r.stop)
        assert any(t.capped and len(t.thinking) == budget for t in traces)


def test_a_run_killed_mid_rounds_resumes_from_the_journal(tiny_models):
    """Each round is journaled: after a kill between rounds, the re-run asks only what is left."""
    cfg = EvaluateConfig.model_validate(
        {
            "llm": {"backend": "transformers", "model": str(tiny_models / "teacher"), "batch_size": 4},
            "modes": ["budget_forcing"],
            "budget_forcing": {"budgets": [24], "num_ignore": 2, "end_of_thinking": "$", "answer_max_tokens": 8},
        }
    )
    items = [evaluate.Item("toy", str(i), f"Compute {i} + 1.", str(i + 1), "math") for i in range(4)]
    killed = evaluate.EvaluateTask(cfg, 42, "budget_forcing_24")
    real, calls = killed.answer, []

    def dies_in_the_second_round(requests, sampling):
        calls.append(len(requests))
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a SIGKILL would stop it: the first round is on disk
        return real(requests, sampling)

    killed.answer = dies_in_the_second_round
    with pytest.raises(KeyboardInterrupt):
        killed.force_budget(items, 24)
    first_round = killed.stats.generated
    assert first_round == len(items)

    resumed = evaluate.EvaluateTask(cfg, 42, "budget_forcing_24")
    traces = resumed.force_budget(items, 24)
    assert resumed.stats.reused_from_journal == len(items) and resumed.stats.generated == sum(t.rounds for t in traces) - len(items)
    straight = evaluate.EvaluateTask(cfg, 42, "budget_forcing_24").force_budget(items, 24)
    assert [(t.thinking, t.answer.text) for t in traces] == [(t.thinking, t.answer.text) for t in straight]
