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


# --- s1's semantics (simplescaling/s1, eval/lm-evaluation-harness/lm_eval/models/vllm_causallms.py) ---

S1 = BudgetForcing(budgets=[64], answer_max_tokens=32)  # every other setting at its default: s1's


def run_one(tok, cfg: BudgetForcing, budget: int, script: list[tuple[str | None, str]]):
    prompt = ids_of(tok, "Q<think>\n")
    model = Scripted([script])
    model.prompt_of = {tuple(prompt): 0}
    [t] = force([prompt], budget, cfg, tok, model)
    return prompt, t, model


def test_the_defaults_are_s1s_fixed_budget_runs(tok):
    assert (S1.num_ignore, S1.min_thinking_tokens, S1.answer_prefix_when, S1.answer_fallback) == (0, 0, "length", "answer_line")
    # An early end of thinking is kept: no "Wait" at a fixed budget (s1's commands.sh gives those runs
    # no thinking_n_ignore), and so no minimum of one token per round either.
    prompt, t, model = run_one(tok, S1, 64, [(" one", "stop"), (" \\boxed{1}", "stop")])
    assert t.thinking == ids_of(tok, " one") and (t.ignores, t.rounds, t.capped, t.tail) == (0, 2, False, "</think>")
    [[first], [answer]] = model.asked
    assert (first.max_tokens, first.min_tokens, first.stop) == (64, 0, ("</think>",))
    assert answer.prompt_ids == tuple(prompt + ids_of(tok, " one") + ids_of(tok, "</think>"))
    # A round cut at its limit gets "Final Answer:" after the delimiter.
    _, t, model = run_one(tok, S1, 64, [(" x" * 200, "length"), (" 7", "stop")])
    assert len(t.thinking) == 64 and t.tail == "</think>\nFinal Answer:" and t.rounds == 2


def test_a_round_that_uses_up_the_budget_on_the_delimiter_ends_the_thinking_without_a_zero_token_round(tok):
    text = " y" * 40  # 40 tokens (the tokenizer's count, checked below)
    assert len(ids_of(tok, text)) == 40
    for when, tail in (("length", "</think>"), ("budget", "</think>\nFinal Answer:")):
        cfg = BF.model_copy(update={"answer_prefix_when": when})  # num_ignore 2: "Wait" would be allowed
        _, t, model = run_one(tok, cfg, 40, [(text, "stop"), (" \\boxed{1}", "stop")])
        # 40 of 40 used, on a round that stopped at the delimiter: nothing is left to ask for.
        assert (len(t.thinking), t.ignores, t.rounds, t.capped, t.stopped_at_limit) == (40, 0, 2, True, False)
        assert t.tail == tail  # s1 appends "Final Answer:" only after a round cut at its limit
        assert [r.max_tokens for call in model.asked for r in call] == [40, 32]


def test_an_ignore_string_that_would_exactly_fill_the_budget_ends_the_thinking(tok):
    text = " y" * 40
    wait = ids_of(tok, "Wait")
    assert len(wait) == 3
    # 40 + 3 = 43: "Wait" fits with no token left after it; the old rule appended it and asked for 0.
    _, t, model = run_one(tok, BF, 43, [(text, "stop"), (" \\boxed{1}", "stop")])
    assert (len(t.thinking), t.ignores, t.rounds, t.capped, t.tail) == (40, 0, 2, False, "</think>")
    assert [r.max_tokens for call in model.asked for r in call] == [43, 32]
    # One more token of budget: "Wait" goes in and the next round asks for that one token.
    _, t, model = run_one(tok, BF, 44, [(text, "stop"), (" y y", "length"), (" \\boxed{1}", "stop")])
    assert t.thinking == ids_of(tok, text) + wait + ids_of(tok, " y") and len(t.thinking) == 44  # the reply cut to 1 token
    assert (t.ignores, t.rounds, t.capped, t.tail) == (1, 3, True, "</think>\nFinal Answer:")
    assert [r.max_tokens for call in model.asked for r in call] == [44, 1, 32]


def test_ignores_per_budget(tok):
    cfg = BudgetForcing(budgets=[16, 64], num_ignore=0, num_ignore_by_budget=[0, 1])
    assert (cfg.ignores_at(16), cfg.ignores_at(64)) == (0, 1)
    script = [(" a", "stop"), (" b", "stop"), (" \\boxed{1}", "stop")]
    _, t, _ = run_one(tok, cfg, 64, list(script))
    assert t.thinking == ids_of(tok, " a") + ids_of(tok, "Wait") + ids_of(tok, " b") and t.ignores == 1 and t.rounds == 3
    _, t, _ = run_one(tok, cfg, 16, list(script))
    assert t.thinking == ids_of(tok, " a") and t.ignores == 0 and t.rounds == 2
    with pytest.raises(ValueError, match=r"one count of 0 or more per budget \(2 budgets"):
        BudgetForcing(budgets=[16, 64], num_ignore_by_budget=[1])


def test_min_thinking_tokens_appends_the_ignore_string_until_the_minimum(tok):
    one, two, wait = ids_of(tok, " one"), ids_of(tok, " two two two two"), ids_of(tok, "Wait")
    assert (len(one), len(two), len(wait)) == (1, 4, 3)
    # s1's default num_ignore 0, a minimum of 10: " one" (1) + Wait (3) = 4 < 10, so again;
    # + " two two two two" (4) = 8 < 10, so again; + Wait + " one" = 12: the minimum is reached.
    cfg = S1.model_copy(update={"min_thinking_tokens": 10})
    script = [(" one", "stop"), (" two two two two", "stop"), (" one", "stop"), (" \\boxed{1}", "stop")]
    _, t, model = run_one(tok, cfg, 64, script)
    assert t.thinking == one + wait + two + wait + one
    assert (t.ignores, t.ignores_for_minimum, t.rounds, t.capped, t.tail) == (2, 2, 4, False, "</think>")
    assert [r.min_tokens for call in model.asked[:-1] for r in call] == [1, 1, 1]
    # The minimum's ignores are not num_ignore's: with num_ignore 1, one more comes after the minimum.
    cfg = cfg.model_copy(update={"num_ignore": 1})
    script = [(" one", "stop"), (" two two two two", "stop"), (" one", "stop"), (" one", "stop"), (" \\boxed{1}", "stop")]
    _, t, _ = run_one(tok, cfg, 64, script)
    assert t.thinking == one + wait + two + wait + one + wait + one and (t.ignores, t.ignores_for_minimum, t.rounds) == (3, 2, 5)


@pytest.mark.parametrize(
    "answer, fallback, scored",
    [
        # No box: the last "Answer:" line, boxed (s1's scorer), its $...$ and full stop off.
        (
            " So the answer is 5.\nAnswer: $\\frac{1}{2}$.",
            "answer_line",
            "<think></think> So the answer is 5.\nAnswer: $\\frac{1}{2}$.\n\\boxed{\\frac{1}{2}}",
        ),
        (" 7\nanswer:\n\n  42\n", "answer_line", "<think></think> 7\nanswer:\n\n  42\n\n\\boxed{42}"),  # the label ends its line
        (" \\boxed{3}\nAnswer: 4", "answer_line", "<think></think> \\boxed{3}\nAnswer: 4"),  # a box is the answer
        (" no label here", "answer_line", "<think></think> no label here"),
        (" Answer: {", "answer_line", "<think></think> Answer: {"),  # could not stand in a box
        (" Answer: 4", "none", "<think></think> Answer: 4"),
    ],
)
def test_scoring_falls_back_to_the_last_answer_line(answer, fallback, scored):
    from distillery.budget_forcing import Trace

    t = Trace([], 8, tail="</think>", answer=Reply(answer, "stop"))
    assert t.scored_text(S1.model_copy(update={"answer_fallback": fallback})) == scored


def test_the_answer_prefix_is_read_as_an_answer_line():
    from distillery.budget_forcing import Trace

    t = Trace([], 8, tail="</think>\nFinal Answer:", answer=Reply(" 12", "stop"))
    assert t.scored_text(S1) == "<think></think>\nFinal Answer: 12\n\\boxed{12}"


def test_a_request_for_no_tokens_is_a_clear_error_from_the_transformers_backend(tiny_models):
    from distillery.config import LLM, Sampling
    from distillery.llm import Request
    from distillery.llm.transformers_backend import TransformersBackend

    backend = TransformersBackend(LLM.model_validate({"backend": "transformers", "model": str(tiny_models / "student_base")}))
    prompt = tuple(ids_of(backend.tokenizer, "Q<think>\n"))
    zero = Request("k0", (("raw", "ids"),), 1, prompt_ids=prompt, stop=("</think>",), min_tokens=1, max_tokens=0)
    over = Request("k1", (("raw", "ids"),), 1, prompt_ids=prompt, min_tokens=5, max_tokens=4)
    fine = Request("k2", (("raw", "ids"),), 1, prompt_ids=prompt, max_tokens=2)
    out = {c.key: c for c in backend.generate([zero, over, fine], Sampling(temperature=0.0, top_p=1.0, max_new_tokens=8))}
    assert (out["k0"].text, out["k0"].finish_reason) == (None, "error")
    assert out["k0"].error == "max_tokens must be at least 1, not 0: a request for no tokens has nothing to generate"
    assert out["k1"].error == "min_tokens must be between 0 and max_tokens (4), not 5"
    assert out["k2"].text is not None and out["k2"].completion_tokens <= 2


@pytest.mark.parametrize("fallback, expected", [("answer_line", 66.67), ("none", 0.0)])
def test_the_evaluate_stage_under_s1s_defaults_scores_answer_lines(tiny_models, tmp_path, monkeypatch, fallback, expected):
    bench = tmp_path / "bench.jsonl"
    bench.write_text("".join(json.dumps({"problem": f"What is {i}+{i}?", "answer": str(2 * i), "id": f"q{i}"}) + "\n" for i in range(3)))
    cfg = EvaluateConfig.model_validate(
        {
            "llm": {"backend": "transformers", "model": str(tiny_models / "student_base")},
            "modes": ["budget_forcing"],
            "budget_forcing": {"budgets": [16], "answer_max_tokens": 16, "answer_fallback": fallback},
            "benchmarks": {"toy": {"n": 1}},
            "workers": 1,
        }
    )
    from distillery.config import BenchmarkFile

    files = {"toy": BenchmarkFile.model_validate({"path": str(bench), "id_field": "id"})}
    tokenizer = load_tokenizer(str(tiny_models / "student_base"))

    # The fixed-output model ends its thinking at once and answers on an "Answer:" line, no box.
    def answer(self, requests, sampling):
        out = {}
        for r in requests:
            i = int(tokenizer.decode(list(r.prompt_ids)).split("What is ")[1].split("+")[0])
            text = " hmm" if r.stop else f" Answer: {2 * i if i < 2 else 99}"
            out[r.key] = Answer(text, "stop", None, None, None, "code")
        return out

    monkeypatch.setattr(evaluate.EvaluateTask, "answer", answer)
    paths = evaluate.Paths(samples=tmp_path / "s.parquet", metrics=tmp_path / "m.json")
    results = evaluate.run(cfg, 42, files, paths)
    r = results["budget_forcing_16"]["toy"]
    assert r["pass@1"] == pytest.approx(expected) and r["requests"] == 3 * 2 and r["hit_budget_share"] == 0.0
    samples = pl.read_parquet(tmp_path / "s.parquet")
    assert samples["ignores_appended"].to_list() == [0, 0, 0]
    assert samples["generation"].to_list() == [f"<think>\n hmm</think> Answer: {a}" for a in (0, 2, 99)]
    if fallback == "answer_line":
        assert samples["extracted_answer"].to_list() == ["0", "2", "99"]
    protocol = json.loads((tmp_path / "m.json").read_text())["protocol"]["budget_forcing_16"]
    assert (protocol["num_ignore"], protocol["answer_prefix_when"], protocol["answer_fallback"]) == (0, "length", fallback)
