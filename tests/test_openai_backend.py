"""The openai backend against a real OpenAI-compatible server (`transformers serve`) running the
tiny local teacher."""

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from distillery.config import LLM, Sampling
from distillery.llm import Request
from distillery.llm.openai_backend import OpenAIBackend

from conftest import run_env


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
