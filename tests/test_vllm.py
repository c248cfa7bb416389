"""Generation against real vLLM (the CPU build in .venv-vllm, made by `make setup`): the openai
backend through a real `vllm` server started by the serving launcher, the offline engine in
process, and the fault tests: a SIGKILLed shard, a server killed and restarted mid-run, a proxy
that answers with 500s and drops connections, malformed rows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest
from test_openai_backend import free_port

from distillery.budget_forcing import ids_of
from distillery.config import LLM, BenchmarkFile, EvaluateConfig, GenerateConfig, Sampling, stage_config
from distillery.llm import Request
from distillery.llm.loading import load_tokenizer
from distillery.llm.openai_backend import OpenAIBackend
from distillery.llm.serving import serve
from distillery.stages import evaluate, generate

from conftest import BIN, REPO, run_env
from support.fault_proxy import FaultProxy

VLLM_VENV = REPO / ".venv-vllm"
pytestmark = pytest.mark.skipif(not (VLLM_VENV / "bin/python").exists(), reason="needs .venv-vllm (made by `make setup`)")

SAMPLING = {"temperature": 0.6, "top_p": 0.95, "max_new_tokens": 32}


@pytest.fixture(scope="module", autouse=True)
def vllm_env():
    """What the CPU build needs: a small KV cache, and the launcher pointed at its interpreter."""
    saved = {k: os.environ.get(k) for k in ("VLLM_CPU_KVCACHE_SPACE", "DISTILLERY_SERVE_PYTHON")}
    os.environ["VLLM_CPU_KVCACHE_SPACE"] = "1"
    os.environ["DISTILLERY_SERVE_PYTHON"] = str(VLLM_VENV / "bin/python")
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def served_llm(model: Path, port: int, **openai) -> LLM:
    return LLM.model_validate(
        {
            "backend": "openai",
            "model": str(model),
            "dtype": "float32",
            "openai": {"max_in_flight": 8, "max_retries": 8, "retry_max_wait_s": 4, "timeout_s": 120, **openai},
            # Seeded sampling with chunked prefill crashes vLLM's CPU build ("CPU Generator does not use offset").
            "serve": {
                "engine": "vllm",
                "port": port,
                "max_model_len": 512,
                "extra_args": ["--enforce-eager", "--no-enable-chunked-prefill"],
                "health_timeout_s": 240,
                "stop_timeout_s": 30,
            },
        }
    )


@pytest.fixture(scope="module")
def vllm_server(tiny_models, tmp_path_factory):
    llm = served_llm(tiny_models / "teacher", 0)  # 0: the launcher picks a free port
    with serve(llm, tmp_path_factory.mktemp("vllm-logs")) as url:
        assert not url.endswith(":0/v1")
        yield url


def shard_config(model: Path, base_url: str, **over) -> GenerateConfig:
    raw = {
        "llm": {
            "backend": "openai",
            "model": str(model),
            "openai": {"base_urls": [base_url], "max_in_flight": 8, "max_retries": 8, "retry_max_wait_s": 4, "timeout_s": 120},
        },
        "sampling": SAMPLING,
        "num_generations": 2,
        "num_shards": 1,
    }
    raw.update(over)
    return GenerateConfig.model_validate(raw)


def shard_cmd(cfg: GenerateConfig, problems: Path, out: Path, exe: Path = BIN / "distillery") -> list[str]:
    return [
        str(exe),
        "generate-shard",
        "--config",
        stage_config("generate", cfg, seed=42),
        "--problems",
        str(problems),
        "--shard",
        "0",
        "--generations",
        str(out),
        "--run-figures",
        str(out.with_suffix(".json")),
    ]


def journal_lines(journal_root: Path) -> int:
    files = list((journal_root / "generate").glob("*.jsonl"))
    return sum(f.read_bytes().count(b"\n") for f in files)


def wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def assert_every_request_once(out: pl.DataFrame, problems: Path, n: int) -> None:
    expected = pl.read_parquet(problems).height * n
    assert out.height == expected and out["request_key"].n_unique() == expected
    assert out["error"].is_null().all() and set(out["status"]) <= {"ok", "empty"}


# --- the backends against real vLLM --------------------------------------------------------------


def test_openai_backend_sends_n_natively_to_vllm_and_splits_on_request(vllm_server, tiny_models):
    prompts = [f"Compute {i} + {i}." for i in range(5)]
    reqs = [Request(f"p{i}-s{j}", (("user", p),), 100 + i) for i, p in enumerate(prompts) for j in range(3)]
    for mode, expected_calls in (("native", 5), ("split", 15)):
        cfg = LLM.model_validate(
            {"backend": "openai", "model": str(tiny_models / "teacher"), "openai": {"base_urls": [vllm_server], "n_mode": mode}}
        )
        backend = OpenAIBackend(cfg)
        out = {c.key: c for c in backend.generate(reqs, Sampling(**SAMPLING))}
        assert backend.requests_sent == expected_calls, mode
        assert set(out) == {r.key for r in reqs}
        for c in out.values():
            assert c.error is None and c.finish_reason in ("stop", "length") and c.prompt_tokens > 0, (mode, c)
            assert 0 <= c.completion_tokens <= 3 * SAMPLING["max_new_tokens"]


def test_a_model_the_server_does_not_serve_stops_the_stage_at_once_with_one_message(vllm_server, tiny_models, tmp_path):
    """vLLM answers a request for a model it does not serve with a 404: the first one stops the shard,
    naming the server and the key to fix, and nothing is journaled as an answer."""
    from distillery.errors import EndpointRefused

    problems = tmp_path / "problems.parquet"
    pl.DataFrame({"uuid": [f"p{i}" for i in range(4)], "problem": [f"Compute {i} + 1." for i in range(4)]}).write_parquet(problems)
    cfg = shard_config(tiny_models / "teacher", vllm_server, num_generations=1)
    cfg = cfg.model_copy(update={"llm": cfg.llm.model_copy(update={"model": "no-such-model"})})
    with pytest.raises(EndpointRefused) as info:
        generate.run_shard(cfg, 42, 0, generate.ShardPaths(problems=problems, generations=tmp_path / "out.parquet"))
    assert str(info.value).startswith(
        f"generate shard 0/1: the server at {vllm_server} has no model 'no-such-model' or no chat endpoint (NotFoundError: Error code: 404"
    )
    assert f"set generate.llm.model to a model it serves (GET {vllm_server}/models lists them)" in str(info.value)
    journaled = "".join(p.read_text() for p in (tmp_path / "journal").rglob("*.jsonl"))
    assert '"finish_reason":"error"' not in journaled and not (tmp_path / "out.parquet").exists()


def test_malformed_rows_are_reasoned_rejections_not_a_crashed_shard(vllm_server, tiny_models, tmp_path):
    problems = tmp_path / "problems.parquet"
    pl.DataFrame({"uuid": ["fine", "blank", "huge"], "problem": ["Compute 2 + 2.", "   ", "seven " * 2000]}).write_parquet(problems)
    cfg = shard_config(tiny_models / "teacher", vllm_server, prompt_template="{problem}", num_generations=1)
    out = generate.run_shard(
        cfg, 42, 0, generate.ShardPaths(problems=problems, generations=tmp_path / "out.parquet", run_figures=tmp_path / "out.json")
    )
    rows = {r["uuid"]: r for r in out.to_dicts()}
    assert rows["fine"]["status"] == "ok" and rows["fine"]["error"] is None
    assert rows["blank"]["status"] == "rejected" and rows["blank"]["error"] == "empty prompt"
    assert rows["huge"]["status"] == "rejected" and "BadRequestError" in rows["huge"]["error"]
    assert "context length" in rows["huge"]["error"] or "maximum" in rows["huge"]["error"]


def test_offline_vllm_engine_in_process(tiny_models, tmp_path):
    problems = tmp_path / "problems.parquet"
    pl.DataFrame(
        {
            "uuid": [f"u{i}" for i in range(6)] + ["blank", "huge"],
            "problem": [f"Compute {i} + 1." for i in range(6)] + ["  ", "seven " * 2000],
        }
    ).write_parquet(problems)
    cfg = GenerateConfig.model_validate(
        {
            "llm": {
                "backend": "vllm",
                "model": str(tiny_models / "teacher"),
                "dtype": "float32",
                "batch_size": 4,
                "vllm": {"max_model_len": 512, "enforce_eager": True, "engine_args": {"enable_chunked_prefill": False}},
            },
            "sampling": SAMPLING,
            "prompt_template": "{problem}",
            "num_generations": 2,
            "num_shards": 1,
        }
    )
    env = run_env() | {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    outs = []
    for run in ("a", "b"):
        out = tmp_path / f"{run}.parquet"
        r = subprocess.run(
            shard_cmd(cfg, problems, out, VLLM_VENV / "bin/distillery"), env=env, capture_output=True, text=True, timeout=300
        )
        assert r.returncode == 0, r.stderr[-3000:]
        outs.append((pl.read_parquet(out), json.loads(out.with_suffix(".json").read_text())))
    (first, s1), (second, s2) = outs
    rows = {(r["uuid"], r["sample_index"]): r for r in first.to_dicts()}
    assert first.height == 16 and all(rows[(f"u{i}", j)]["status"] == "ok" for i in range(6) for j in range(2))
    assert rows[("blank", 0)]["error"] == "empty prompt"
    assert "does not fit the model's context of 512" in rows[("huge", 1)]["error"]
    assert rows[("u0", 0)]["generation"] != rows[("u0", 1)]["generation"]  # two samples, not one twice
    # The 12 answers come back from the journal; the 4 rejections (blank, too long) are asked again,
    # because a rejection is never kept as an answer, and are rejected again, the same rows.
    assert s1["generated"] == 16 and s2["reused_from_journal"] == 12 and s2["generated"] == 4
    assert first.equals(second)


# --- fault tests ---------------------------------------------------------------------------------


def test_sigkilled_shard_resumes_with_every_request_exactly_once(vllm_server, tiny_models, bundled_problems, tmp_path):
    journal = tmp_path / "journal"
    env = run_env() | {"DISTILLERY_JOURNAL_DIR": str(journal)}
    with FaultProxy(vllm_server.removesuffix("/v1")) as proxy:  # here only a counter of what vLLM was asked
        cfg = shard_config(tiny_models / "teacher", proxy.base_url)
        out = tmp_path / "out.parquet"
        proc = subprocess.Popen(shard_cmd(cfg, bundled_problems, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: journal_lines(journal) >= 40 or proc.poll() is not None, 240, "40 journaled requests")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not out.exists()
        finished = journal_lines(journal)
        r = subprocess.run(shard_cmd(cfg, bundled_problems, out), env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
    df = pl.read_parquet(out)
    assert_every_request_once(df, bundled_problems, 2)
    stats = json.loads(out.with_suffix(".json").read_text())
    assert stats["reused_from_journal"] == finished and stats["generated"] == df.height - finished
    # Native n: one HTTP request per problem. Whatever vLLM was asked beyond that was redone.
    redone = proxy.seen - pl.read_parquet(bundled_problems).height
    assert 0 <= redone <= cfg.llm.openai.max_in_flight, (proxy.seen, redone)


def test_a_server_killed_mid_run_and_restarted_is_retried_to_completion(tiny_models, bundled_problems, tmp_path):
    llm = served_llm(tiny_models / "teacher", free_port())
    # A crash, not a graceful drain: SIGKILL 2 s after SIGTERM (vLLM drains in-flight requests on SIGTERM).
    llm = llm.model_copy(update={"serve": llm.serve.model_copy(update={"stop_timeout_s": 2})})
    url = f"http://127.0.0.1:{llm.serve.port}/v1"
    journal = tmp_path / "journal"
    env = run_env() | {"DISTILLERY_JOURNAL_DIR": str(journal)}
    cfg = shard_config(tiny_models / "teacher", url, num_generations=1)
    # Retries must outlast the restart (20-40 s on 2 busy cores): backoff 1, 2, 4, 8, then 10 s, 12 times.
    cfg = cfg.model_copy(
        update={"llm": cfg.llm.model_copy(update={"openai": cfg.llm.openai.model_copy(update={"max_retries": 12, "retry_max_wait_s": 10})})}
    )
    out = tmp_path / "out.parquet"
    first = serve(llm, tmp_path / "logs-1")
    first.__enter__()
    try:
        proc = subprocess.Popen(
            shard_cmd(cfg, bundled_problems, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        wait_for(lambda: journal_lines(journal) >= 10 or proc.poll() is not None, 240, "10 journaled requests")
    finally:
        first.stop()  # the server dies mid-run
    assert proc.poll() is None, "the shard finished before the server was stopped; make it longer"
    stopped_at = journal_lines(journal)
    with serve(llm, tmp_path / "logs-2"):
        _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    df = pl.read_parquet(out)
    assert_every_request_once(df, bundled_problems, 1)
    assert stopped_at < df.height  # some requests really were made after the restart


def test_500s_and_dropped_connections_are_retried_and_nothing_is_lost(vllm_server, tiny_models, bundled_problems, tmp_path):
    with FaultProxy(vllm_server.removesuffix("/v1"), fail_every=4, drop_every=7) as proxy:
        cfg = shard_config(tiny_models / "teacher", proxy.base_url)
        out = generate.run_shard(
            cfg,
            42,
            0,
            generate.ShardPaths(problems=bundled_problems, generations=tmp_path / "out.parquet", run_figures=tmp_path / "out.json"),
        )
    assert proxy.failed > 0 and proxy.dropped > 0
    assert_every_request_once(out, bundled_problems, 2)
    stats = json.loads((tmp_path / "out.json").read_text())
    assert stats["backend_requests_sent"] == proxy.seen  # every retry went through the proxy


def test_a_server_that_always_fails_fails_the_shard_loudly_and_a_rerun_finishes(vllm_server, tiny_models, bundled_problems, tmp_path):
    problems = tmp_path / "problems.parquet"
    pl.read_parquet(bundled_problems).head(6).write_parquet(problems)
    with FaultProxy(vllm_server.removesuffix("/v1"), always_fail=True) as proxy:
        broken = shard_config(tiny_models / "teacher", proxy.base_url, num_generations=1)
        broken = broken.model_copy(
            update={
                "llm": broken.llm.model_copy(
                    update={"openai": broken.llm.openai.model_copy(update={"max_retries": 2, "retry_max_wait_s": 0.2})}
                )
            }
        )
        r = subprocess.run(
            shard_cmd(broken, problems, tmp_path / "out.parquet"), env=run_env(), capture_output=True, text=True, timeout=120
        )
    assert r.returncode == 2 and "6 of 6 requests failed after 2 retries" in r.stderr and "Traceback" not in r.stderr
    assert proxy.seen == 18  # 6 requests x (1 + 2 retries)
    healthy = shard_config(tiny_models / "teacher", vllm_server, num_generations=1)
    out = generate.run_shard(healthy, 42, 0, generate.ShardPaths(problems=problems, generations=tmp_path / "out.parquet"))
    assert_every_request_once(out, problems, 1)


# --- budget forcing through vLLM -----------------------------------------------------------------


def budget_forcing_config(llm: dict) -> EvaluateConfig:
    return EvaluateConfig.model_validate(
        {
            "llm": llm,
            "modes": ["budget_forcing"],
            # "$" ends the tiny teacher's thinking early and often (it never learnt to close </think> in a few
            # tokens), so "Wait" is appended for real; 4 tokens cut every thinking off.
            "budget_forcing": {
                "budgets": [4, 24],
                "num_ignore": 2,
                "ignore_string": "Wait",
                "end_of_thinking": "$",
                "answer_max_tokens": 12,
                # Box-only scoring: .venv-vllm is vLLM's CPU build with distillery's core, without
                # math-verify (envs/generate.yaml, where the stage runs, has it), so the offline run
                # can score only answers decided without sympy. The "Answer:" fallback is tested in
                # tests/test_budget_forcing.py.
                "answer_fallback": "none",
            },
            "benchmarks": {"toy": {"n": 1}},
            "prompt_template": "{problem}",
            "workers": 1,
        }
    )


def check_traces(traces, budget: int, tokenizer) -> None:
    """Token by token: the thinking is within its budget, and holds the ignore string's ids exactly
    as many times as it was appended (the tiny teacher never writes "Wait" itself)."""
    wait = ids_of(tokenizer, "Wait")
    for t in traces:
        assert t.failed is None and t.answer is not None, t.failed
        assert len(t.thinking) <= budget and 0 <= t.ignores <= 2
        found = sum(t.thinking[i : i + len(wait)] == wait for i in range(len(t.thinking) - len(wait) + 1))
        assert found == t.ignores
        assert t.rounds == t.ignores + 2  # a round per "Wait", the round that ended the thinking, the answer


def test_budget_forcing_through_the_openai_completions_endpoint(vllm_server, tiny_models):
    cfg = budget_forcing_config(
        {"backend": "openai", "model": str(tiny_models / "teacher"), "openai": {"base_urls": [vllm_server], "max_retries": 2}}
    )
    items = [evaluate.Item("toy", str(i), f"Compute {i} + 1.", str(i + 1), "math") for i in range(6)]
    for budget in cfg.budget_forcing.budgets:
        task = evaluate.EvaluateTask(cfg, 42, f"budget_forcing_{budget}")
        traces = task.force_budget(items, budget)
        check_traces(traces, budget, task.tokenizer)
        if budget == 4:
            assert all(t.capped and len(t.thinking) == 4 for t in traces)
        else:
            assert any(t.ignores for t in traces), "the teacher never ended its thinking early: nothing was forced"
        again = evaluate.EvaluateTask(cfg, 42, f"budget_forcing_{budget}")
        assert [t.thinking for t in again.force_budget(items, budget)] == [t.thinking for t in traces]
        assert again.stats.generated == 0  # every round came from the journal


def test_budget_forcing_through_the_offline_vllm_engine(tiny_models, tmp_path):
    bench = tmp_path / "bench.jsonl"
    bench.write_text("".join(json.dumps({"problem": f"Compute {i} + 1.", "answer": str(i + 1), "id": f"q{i}"}) + "\n" for i in range(6)))
    cfg = budget_forcing_config(
        {
            "backend": "vllm",
            "model": str(tiny_models / "teacher"),
            "dtype": "float32",
            "batch_size": 8,
            "vllm": {"max_model_len": 512, "enforce_eager": True, "engine_args": {"enable_chunked_prefill": False}},
        }
    )
    files = {"toy": BenchmarkFile.model_validate({"path": str(bench), "id_field": "id"})}
    cmd = [
        str(VLLM_VENV / "bin/distillery"),
        "evaluate",
        "--config",
        stage_config("evaluate", cfg, seed=42, benchmark_files={k: v.model_dump(mode="json") for k, v in files.items()}),
        "--samples",
        str(tmp_path / "samples.parquet"),
        "--metrics",
        str(tmp_path / "m.json"),
    ]
    env = run_env() | {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    samples = pl.read_parquet(tmp_path / "samples.parquet")
    tokenizer = load_tokenizer(str(tiny_models / "teacher"))
    for budget in (4, 24):
        part = samples.filter(pl.col("mode") == f"budget_forcing_{budget}")
        assert part.height == 6 and (part["thinking_tokens"] <= budget).all() and (part["ignores_appended"] <= 2).all()
        for g, n in zip(part["generation"], part["ignores_appended"]):
            thinking = g[len("<think>\n") :].split("$")[0]
            assert thinking.count("Wait") == n and len(ids_of(tokenizer, thinking)) <= budget + n
    assert (samples.filter(pl.col("mode") == "budget_forcing_4")["thinking_capped"]).all()
    assert (samples.filter(pl.col("mode") == "budget_forcing_24")["ignores_appended"] > 0).any()
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert [p["budget"] for p in metrics["scaling_curve"]] == [4, 24]
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0 and pl.read_parquet(tmp_path / "samples.parquet").equals(samples)


# --- s1's rules, exactly, on the served tiny teacher (greedy: a fixed-output model) ------------------


def s1_config(base_url: str, tiny_models: Path, **budget_forcing) -> EvaluateConfig:
    """s1's defaults (no ignores at a fixed budget, "Final Answer:" only after a length stop), "$" as
    the delimiter the tiny teacher writes early and often."""
    return EvaluateConfig.model_validate(
        {
            "llm": {"backend": "openai", "model": str(tiny_models / "teacher"), "openai": {"base_urls": [base_url], "max_retries": 2}},
            "modes": ["budget_forcing"],
            "budget_forcing": {"budgets": [24], "end_of_thinking": "$", "answer_max_tokens": 12, **budget_forcing},
            "benchmarks": {"toy": {"n": 1}},
            "prompt_template": "{problem}",
            "workers": 1,
        }
    )


def recorded(task):
    """The task's rounds, as sent and as answered, in order: (Request, Answer) per request."""
    real, log = task.answer, []

    def answer(requests, sampling):
        answers = real(requests, sampling)
        log.extend((r, answers[r.key]) for r in requests)
        return answers

    task.answer = answer
    return log


def test_s1s_rules_exactly_on_the_served_teacher(vllm_server, tiny_models):
    tok = load_tokenizer(str(tiny_models / "teacher"))
    wait = ids_of(tok, "Wait")
    items = [evaluate.Item("toy", str(i), f"Compute {i} + 1.", str(i + 1), "math") for i in range(6)]

    # No ignores at a fixed budget: one thinking round, kept as the model ended it; "Final Answer:"
    # after the delimiter exactly where that round stopped at its limit.
    cfg = s1_config(vllm_server, tiny_models, budgets=[4, 24])
    finishes = set()
    for budget in (4, 24):  # at 4 the teacher is cut off, at 24 it mostly ends its thinking itself
        task = evaluate.EvaluateTask(cfg, 42, f"budget_forcing_{budget}")
        log = recorded(task)
        traces = task.force_budget(items, budget)
        rounds, answers = log[: len(items)], log[len(items) :]
        assert all(r.max_tokens == budget and r.min_tokens == 0 and r.stop == ("$",) for r, _ in rounds)
        for t, (_, reply) in zip(traces, rounds):
            assert (t.rounds, t.ignores) == (2, 0)
            assert t.thinking == ids_of(tok, reply.text)[:budget]
            assert t.tail == ("$\nFinal Answer:" if reply.finish_reason == "length" else "$")
            finishes.add(reply.finish_reason)
        assert all(r.max_tokens == 12 and r.stop == () for r, _ in answers)
    assert finishes == {"stop", "length"}, "both of s1's cases must occur"

    # A minimum of 12 thinking tokens: every early end below it gets "Wait" (not counted in num_ignore 0).
    cfg = s1_config(vllm_server, tiny_models, min_thinking_tokens=12)
    task = evaluate.EvaluateTask(cfg, 42, "budget_forcing_24")
    log = recorded(task)
    traces = task.force_budget(items, 24)
    thinking_rounds = [(r, a) for r, a in log if r.stop]
    assert all(r.min_tokens == 1 for r, _ in thinking_rounds)
    for t in traces:
        mine = [(r, a) for r, a in thinking_rounds if r.prompt_ids[: len(t.prompt_ids)] == tuple(t.prompt_ids)]
        expected: list[int] = []
        for k, (r, a) in enumerate(mine):
            assert r.max_tokens == 24 - len(expected) >= 1
            expected += ids_of(tok, a.text)[: r.max_tokens]
            if k < len(mine) - 1:  # the model stopped below the minimum, with room for "Wait" and a token
                assert a.finish_reason == "stop" and len(expected) < 12 and len(expected) + len(wait) < 24
                expected += wait
        last = mine[-1][1]
        assert last.finish_reason == "length" or len(expected) >= 12 or len(expected) + len(wait) >= 24
        assert t.thinking == expected and t.ignores == t.ignores_for_minimum == len(mine) - 1 and len(t.thinking) <= 24
    assert any(t.ignores for t in traces), "no thinking ended below the minimum: nothing was forced"


def test_a_round_that_fills_the_budget_exactly_ends_the_thinking_and_the_stage_completes(vllm_server, tiny_models, tmp_path, monkeypatch):
    """The thinking plus "Wait" exactly at the budget: the old rule asked vLLM for max_tokens=0."""
    tok = load_tokenizer(str(tiny_models / "teacher"))
    wait = ids_of(tok, "Wait")
    items = [evaluate.Item("toy", str(i), f"Compute {i} + 1.", str(i + 1), "math") for i in range(6)]
    probe = evaluate.EvaluateTask(s1_config(vllm_server, tiny_models, num_ignore=2), 42, "budget_forcing_24")
    log = recorded(probe)
    probe.force_budget(items, 24)
    # An item whose first round stopped early, within what its re-run will be allowed: greedy, the
    # same first round comes back, and then "Wait" would fill the budget exactly.
    early = [
        (it, ids_of(tok, a.text))
        for it, (_, a) in zip(items, log[: len(items)])
        if a.finish_reason == "stop" and a.completion_tokens <= len(ids_of(tok, a.text)) + len(wait)
    ]
    assert early, "the teacher never ended its thinking early"
    item, first = early[0]
    budget = len(first) + len(wait)

    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"problem": item.prompt, "answer": item.gold, "id": "q"}) + "\n")
    files = {"toy": BenchmarkFile.model_validate({"path": str(bench), "id_field": "id"})}
    cfg = s1_config(vllm_server, tiny_models, budgets=[budget], num_ignore=2)
    sent = []
    real = evaluate.EvaluateTask.answer

    def recording(self, requests, sampling):
        sent.extend(requests)
        return real(self, requests, sampling)

    monkeypatch.setattr(evaluate.EvaluateTask, "answer", recording)
    paths = evaluate.Paths(samples=tmp_path / "s.parquet", metrics=tmp_path / "m.json")
    results = evaluate.run(cfg, 42, files, paths)
    row = pl.read_parquet(paths.samples).row(0, named=True)
    assert row["evaluate_code"] is not None and row["finish_reason"] != "error"
    assert (row["thinking_tokens"], row["ignores_appended"], row["thinking_capped"], row["requests"]) == (len(first), 0, False, 2)
    assert row["generation"].startswith("<think>\n" + tok.decode(first) + "$")
    assert [r.max_tokens for r in sent] == [budget, 12] and results[f"budget_forcing_{budget}"]["toy"]["problems"] == 1


def test_vllm_rejects_a_bad_request_with_a_clear_error_not_a_traceback(tmp_path):
    """vLLM's own SamplingParams validation, inside the backend's error handling (the engine is never
    reached: the one thing not real here is an engine that fails the test if it is asked)."""
    script = tmp_path / "bad_request.py"
    script.write_text(
        """
import json
from distillery.config import LLM, Sampling
from distillery.llm import Request
from distillery.llm.vllm_backend import VLLMBackend

class NeverAsked:
    def generate(self, *args, **kwargs):
        raise AssertionError("a rejected request reached the engine")

backend = object.__new__(VLLMBackend)
backend.engine, backend.context = NeverAsked(), 512
backend.cfg = LLM.model_validate({"backend": "vllm", "model": "unused", "batch_size": 4})
sampling = Sampling(temperature=0.0, top_p=1.0, max_new_tokens=8)
zero = Request("zero", (("raw", "3 ids"),), 1, prompt_ids=(1, 2, 3), stop=("$",), min_tokens=1, max_tokens=0)
out = [c.as_dict() for c in backend.generate([zero], sampling)]
out += [c.as_dict() for c in backend._batch([([zero], [1, 2, 3])], sampling)]  # past the check: SamplingParams itself
print(json.dumps(out))
"""
    )
    r = subprocess.run([str(VLLM_VENV / "bin/python"), str(script)], env=run_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    checked, constructed = json.loads(r.stdout.strip().splitlines()[-1])
    assert (checked["text"], checked["finish_reason"], checked["retryable"]) == (None, "error", False)
    assert checked["error"] == "max_tokens must be at least 1, not 0: a request for no tokens has nothing to generate"
    assert (constructed["text"], constructed["finish_reason"], constructed["retryable"]) == (None, "error", False)
    assert constructed["error"].startswith("vLLM rejected the sampling parameters (max_tokens 0, min_tokens 1): ")
    assert "\n" not in constructed["error"]
