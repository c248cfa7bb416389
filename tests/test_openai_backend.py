"""The openai backend against a real OpenAI-compatible server (`transformers serve`) running the
tiny local teacher."""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import polars as pl
import pytest

from distillery.config import LLM, Sampling
from distillery.llm import Request
from distillery.llm.openai_backend import OpenAIBackend

from conftest import BIN, REPO, run_env
from support.fault_proxy import FaultProxy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_models):
    port = free_port()
    exe = Path(sys.executable).parent / "transformers"
    proc = subprocess.Popen(
        [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)], env=run_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("transformers serve exited before it was healthy")
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("transformers serve was not healthy within 120 s")
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    proc.wait(timeout=30)


def test_generations_through_a_real_server(server, tiny_models):
    cfg = LLM.model_validate(
        {"backend": "openai", "model": str(tiny_models / "teacher"), "openai": {"base_urls": [server], "max_in_flight": 4}}
    )
    reqs = [Request(f"k{i}", (("user", f"Compute {i} + 3."),), i) for i in range(6)] + [Request("empty", (("user", ""),), 0)]
    out = {c.key: c for c in OpenAIBackend(cfg).generate(reqs, Sampling(max_new_tokens=16))}
    assert set(out) == {f"k{i}" for i in range(6)} | {"empty"}
    for i in range(6):
        c = out[f"k{i}"]
        assert c.error is None, c.error
        assert c.finish_reason in ("stop", "length")
        assert c.prompt_tokens > 0 and 0 < c.completion_tokens <= 16
        assert isinstance(c.text, str)
    assert out["empty"].finish_reason == "error"


def test_unreachable_server_is_a_recorded_failure(tiny_models):
    cfg = LLM.model_validate(
        {"backend": "openai", "model": "m", "openai": {"base_urls": ["http://127.0.0.1:9/v1"], "max_retries": 0, "timeout_s": 5}}
    )
    [c] = list(OpenAIBackend(cfg).generate([Request("k", (("user", "hi"),), 0)], Sampling(max_new_tokens=4)))
    assert c.finish_reason == "error" and "Connection" in c.error and c.text is None
    assert c.retryable  # the next run tries it again


def test_samples_a_server_leaves_out_of_n_are_asked_for_one_by_one(server, tiny_models):
    """transformers serve answers n=3 with one choice: the other two samples are requested singly."""
    cfg = LLM.model_validate({"backend": "openai", "model": str(tiny_models / "teacher"), "openai": {"base_urls": [server]}})
    backend = OpenAIBackend(cfg)
    reqs = [Request(f"k{i}", (("user", "Compute 1 + 1."),), 5) for i in range(3)]
    out = {c.key: c for c in backend.generate(reqs, Sampling(max_new_tokens=8))}
    assert set(out) == {"k0", "k1", "k2"} and all(c.error is None for c in out.values())
    assert backend.requests_sent == 3  # one native request, two single ones


def test_budget_forcing_against_a_chat_only_server_is_one_clear_error(server, tiny_models):
    """`transformers serve` has no completions endpoint that takes token ids (it answers 422): a raw
    continuation cannot be asked of it, and the user is told what to serve instead."""
    from distillery.config import EvaluateConfig
    from distillery.errors import DistilleryError
    from distillery.stages import evaluate

    cfg = EvaluateConfig.model_validate(
        {
            "llm": {"backend": "openai", "model": str(tiny_models / "student_base"), "openai": {"base_urls": [server], "max_retries": 0}},
            "modes": ["budget_forcing"],
            "budget_forcing": {"budgets": [8]},
        }
    )
    task = evaluate.EvaluateTask(cfg, 42, "budget_forcing_8")
    items = [evaluate.Item("toy", "0", "What is 1+1?", "2", "math")]
    with pytest.raises(
        DistilleryError, match=r"no completions endpoint \(/v1/completions\) that continues.*Serve the model with vLLM or SGLang"
    ):
        task.force_budget(items, 8)


# --- refusals, failures and secrets: a key-checking gateway (tests/support/fault_proxy.py) in front
# of the real server ---------------------------------------------------------------------------------

RIGHT_KEY = "sk-right-0123456789abcdef"
WRONG_KEY = "sk-wrong-fedcba9876543210"
KEY_ENV = "DISTILLERY_TEST_API_KEY"


def judge_inputs(tmp_path: Path) -> dict[str, Path]:
    """Three generations math-verify rejected, of two problems: three judge requests."""
    from distillery.tables import PROBLEMS, VERIFIED

    from support.tables import table_frame

    table_frame(
        PROBLEMS, {"uuid": ["a", "b"], "problem": ["Compute 2+3.", "Compute 7*6."], "answer": ["5", "42"], "source": ["olympiads", "amc"]}
    ).write_parquet(tmp_path / "problems.parquet")
    table_frame(
        VERIFIED,
        {
            "uuid": ["a", "a", "b"],
            "sample_index": [0, 1, 0],
            "generation": ["<think>2+3</think> $\\boxed{five}$", "<think>hmm</think> $\\boxed{6}$", "<think>7*6</think> $\\boxed{41}$"],
            "finish_reason": ["stop"] * 3,
            "extracted_answer": ["five", "6", "41"],
            "is_reasoning_complete": [True] * 3,
            "correctness_math_verify": [False] * 3,
            "verify_status": ["mismatch"] * 3,
        },
    ).write_parquet(tmp_path / "verified.parquet")
    return {"verified": tmp_path / "verified.parquet", "problems": tmp_path / "problems.parquet"}


def judge_config(tiny_models: Path, base_url: str):
    from distillery.config import JudgeConfig

    openai = {"base_urls": [base_url], "api_key_env": KEY_ENV, "max_in_flight": 1, "max_retries": 0}
    return JudgeConfig.model_validate(
        {
            "llm": {"backend": "openai", "model": str(tiny_models / "judge"), "openai": openai},
            "sampling": {"max_new_tokens": 24},
            "prompt_template": str(REPO / "prompts/judge.txt"),
        }
    )


def judge_cmd(cfg, inputs: dict[str, Path], out: Path) -> list[str]:
    from distillery.config import stage_config

    return [
        str(BIN / "distillery"),
        "judge",
        "--config",
        stage_config("judge", cfg, seed=42),
        "--verified",
        str(inputs["verified"]),
        "--problems",
        str(inputs["problems"]),
        "--judged",
        str(out / "judged.parquet"),
        "--metrics",
        str(out / "judge.json"),
    ]


def journal_text(tmp_path: Path) -> str:
    return "".join(p.read_text() for p in sorted((tmp_path / "journal").rglob("*.jsonl")))


def test_a_wrong_key_stops_the_judge_at_once_names_the_variable_and_never_reaches_the_disk(server, tiny_models, tmp_path):
    """The issue's case: a gateway answering 401 and echoing the key. The judge stops at the first
    reply with one message, keeps nothing (neither the refusal as an answer nor the key), and after
    the key is fixed every request is sent: nothing is answered from the journal."""
    inputs = judge_inputs(tmp_path)
    with FaultProxy(server.removesuffix("/v1"), api_key=RIGHT_KEY) as gate:
        cmd = judge_cmd(judge_config(tiny_models, gate.base_url), inputs, tmp_path / "out")
        wrong = subprocess.run(cmd, env={**run_env(), KEY_ENV: WRONG_KEY}, capture_output=True, text=True, timeout=300)
        assert gate.refused == 1  # stopped at the first refusal: nothing else was sent
        assert not (tmp_path / "out" / "judged.parquet").exists()
        assert WRONG_KEY not in journal_text(tmp_path) and '"finish_reason":"error"' not in journal_text(tmp_path)
        right = subprocess.run(cmd, env={**run_env(), KEY_ENV: RIGHT_KEY}, capture_output=True, text=True, timeout=300)
    print(wrong.stderr)  # the console text, for the record
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr, wrong.stderr
    [message] = [line for line in wrong.stderr.splitlines() if "error:" in line]
    assert message.startswith(f"distillery judge: error: judge: the server at {gate.base_url} refused the API key (AuthenticationError: ")
    assert message.endswith(
        f"the key is read from the environment variable {KEY_ENV} (named by judge.llm.openai.api_key_env): set it to a key "
        "this server accepts, then re-run (a refusal is never kept as an answer)"
    )
    assert "[redacted]" in message and WRONG_KEY not in wrong.stderr + wrong.stdout

    assert right.returncode == 0, right.stderr
    assert "judge: 3 requests: 0 reused from the journal (none), 3 to send" in right.stderr
    judged = pl.read_parquet(tmp_path / "out" / "judged.parquet")
    assert judged["judge_verdict"].is_in(["EQUIVALENT", "DIFFERENT", "AMBIGUOUS", "unparseable"]).all()
    assert RIGHT_KEY not in journal_text(tmp_path) and WRONG_KEY not in journal_text(tmp_path)


def test_a_401_journaled_as_an_answer_by_an_older_version_is_asked_again(server, tiny_models, tmp_path, monkeypatch):
    """Journals from before refusals stopped the stage hold a 401 as a final record (the issue's "0 to
    send" after the key was fixed): each such record is sent again, and the verdicts are real."""
    from distillery.stages import judge

    inputs = judge_inputs(tmp_path)
    monkeypatch.setenv(KEY_ENV, RIGHT_KEY)
    cfg = judge_config(tiny_models, server)
    first = judge.run(cfg, 42, judge.Paths(**inputs, judged=tmp_path / "j1.parquet", metrics=tmp_path / "m1.json"))
    path = next((tmp_path / "journal" / "judge").glob("*.jsonl"))
    answers = [json.loads(line) for line in path.read_text().splitlines()]
    # Each answer replaced by the 401 record the old code wrote for that key (retryable false).
    error = "AuthenticationError: Error code: 401 - {'error': {'message': 'Incorrect API key provided'}}"
    old = [{**a, "text": None, "finish_reason": "error", "completion_tokens": None, "error": error, "retryable": False} for a in answers]
    path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in old))
    second = judge.run(cfg, 42, judge.Paths(**inputs, judged=tmp_path / "j2.parquet", metrics=tmp_path / "m2.json"))
    assert path.read_text().count("\n") == 2 * len(answers) == 6  # all three asked again
    assert "error" not in second["judge_verdict"].to_list()
    assert second.drop("judge_code").equals(first.drop("judge_code"))


@pytest.mark.parametrize(
    "status, expected",
    [
        (403, "refused access to model {model!r} (PermissionDeniedError: Error code: 403 - "),
        (404, "has no model {model!r} or no chat endpoint (NotFoundError: Error code: 404 - "),
    ],
)
def test_a_refused_permission_or_missing_model_stops_the_stage_at_once(server, tiny_models, tmp_path, monkeypatch, status, expected):
    from distillery.errors import EndpointRefused
    from distillery.stages import judge

    inputs = judge_inputs(tmp_path)
    monkeypatch.setenv(KEY_ENV, RIGHT_KEY)
    with FaultProxy(server.removesuffix("/v1"), refuse_status=status) as gate:
        cfg = judge_config(tiny_models, gate.base_url)
        with pytest.raises(EndpointRefused) as info:
            judge.run(cfg, 42, judge.Paths(**inputs, judged=tmp_path / "j.parquet", metrics=tmp_path / "m.json"))
    msg = str(info.value)
    assert msg.startswith(f"judge: the server at {gate.base_url} ") and expected.format(model=cfg.llm.model) in msg
    assert gate.refused == 1 and RIGHT_KEY not in msg and journal_text(tmp_path) == ""
    if status == 404:
        assert f"set judge.llm.model to a model it serves (GET {gate.base_url}/models lists them)" in msg
    else:
        assert f"environment variable {KEY_ENV} (named by judge.llm.openai.api_key_env)" in msg


def test_a_5xx_that_quotes_the_key_fails_the_shard_with_a_count_and_the_key_never_reaches_the_journal(
    server, tiny_models, tmp_path, monkeypatch
):
    from distillery.errors import DistilleryError
    from distillery.stages import judge

    inputs = judge_inputs(tmp_path)
    monkeypatch.setenv(KEY_ENV, RIGHT_KEY)
    with FaultProxy(server.removesuffix("/v1"), always_fail=True) as proxy:
        cfg = judge_config(tiny_models, proxy.base_url)
        with pytest.raises(DistilleryError) as info:
            judge.run(cfg, 42, judge.Paths(**inputs, judged=tmp_path / "j.parquet", metrics=tmp_path / "m.json"))
    msg = str(info.value)
    assert proxy.failed == 3 and msg.startswith("judge: 3 of 3 requests failed after 0 retries (e.g. InternalServerError: ")
    assert "injected fault (Authorization: [redacted])" in msg and RIGHT_KEY not in msg
    journaled = journal_text(tmp_path)
    assert journaled.count("injected fault (Authorization: [redacted])") == 3 and RIGHT_KEY not in journaled
