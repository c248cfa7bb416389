"""Serving engine launch: hostlists, the rendered commands, and the lifecycle against a real CPU
vLLM server (start, health, a completion, failures, timeout, cancellation by SIGTERM)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from distillery.config import LLM
from distillery.errors import DistilleryError
from distillery.llm.serving import Allocation, NodeCommand, Plan, expand_hostlist, launch_plan, serve, serve_python, with_base_url

VLLM_PYTHON = Path(__file__).resolve().parents[1] / ".venv-vllm/bin/python"
needs_vllm = pytest.mark.skipif(not VLLM_PYTHON.exists(), reason="needs .venv-vllm (made by `make setup`)")
PY = "/envs/serve/bin/python"
LOCAL = Allocation(["127.0.0.1"], False)
SRUN = ["srun", "--nodes=1", "--ntasks=1", "--overlap", "--kill-on-bad-exit=1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def llm(**serve) -> LLM:
    return LLM.model_validate({"backend": "openai", "model": "org/model", "serve": {"engine": "vllm", "port": 8000, **serve}})


def srun(node: str) -> list[str]:
    return SRUN[:3] + [f"--nodelist={node}"] + SRUN[3:]


def group_alive(pgid: int) -> bool:
    """Any non-zombie process left in the group (checked through /proc, independently of serving)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(pgrp) == pgid and state not in ("Z", "X"):
            return True
    return False


def wait_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while group_alive(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


# --- hostlists and allocation --------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr, hosts",
    [
        ("gpu[01-03,07],login1", ["gpu01", "gpu02", "gpu03", "gpu07", "login1"]),
        ("rack[1-2]-node[01-02]", ["rack1-node01", "rack1-node02", "rack2-node01", "rack2-node02"]),
        ("node7", ["node7"]),
        ("a,b", ["a", "b"]),
        ("n[9-11]", ["n9", "n10", "n11"]),
        ("ip-10-0-[008-010]", ["ip-10-0-008", "ip-10-0-009", "ip-10-0-010"]),
    ],
)
def test_expand_hostlist(expr, hosts):
    assert expand_hostlist(expr) == hosts


@pytest.mark.parametrize("expr", ["", "a,,b", "gpu[01-03", "gpu]01", "a[1[2]]", "a[]", "a[x-y]", "a[3-1]", "a[1-2-3]"])
def test_expand_hostlist_rejects_malformed(expr):
    with pytest.raises(ValueError, match="malformed hostlist"):
        expand_hostlist(expr)


def test_allocation_from_env():
    assert Allocation.from_env({"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "gpu[1-2]"}) == Allocation(["gpu1", "gpu2"], True)
    assert Allocation.from_env({"SLURM_JOB_NODELIST": "gpu[1-2]"}) == Allocation(["127.0.0.1"], False)
    assert Allocation.from_env({}) == Allocation(["127.0.0.1"], False)


def test_serve_python():
    assert serve_python({"DISTILLERY_SERVE_PYTHON": PY}) == PY
    assert serve_python({}) == sys.executable


# --- launch plans --------------------------------------------------------------------------------


def test_sglang_two_nodes_in_slurm_like_openr1():
    cfg = LLM.model_validate(
        {
            "backend": "openai",
            "model": "deepseek-ai/DeepSeek-R1",
            "revision": "abc123",
            "dtype": "bfloat16",
            "serve": {
                "engine": "sglang",
                "port": 39877,
                "tensor_parallel_size": 16,
                "max_model_len": 32768,
                "extra_args": ["--max-running-requests", "56"],
            },
        }
    )
    plan = launch_plan(cfg, Allocation(["gpu01", "gpu02"], True), PY)
    server = [
        PY,
        "-m",
        "sglang.launch_server",
        "--model-path",
        "deepseek-ai/DeepSeek-R1",
        "--revision",
        "abc123",
        "--tp",
        "16",
        "--dtype",
        "bfloat16",
        "--host",
        "0.0.0.0",
        "--port",
        "39877",
        "--context-length",
        "32768",
    ]
    assert plan.base_url == "http://gpu01:39877/v1" and plan.health_url == "http://gpu01:39877/health"
    assert plan.commands == [
        NodeCommand(
            node,
            rank,
            srun(node)
            + server
            + ["--nnodes", "2", "--node-rank", str(rank), "--dist-init-addr", "gpu01:20000", "--max-running-requests", "56"],
            "server",
        )
        for rank, node in enumerate(["gpu01", "gpu02"])
    ]


def test_vllm_single_node_local():
    plan = launch_plan(llm(port=8123, max_model_len=512, extra_args=["--enforce-eager"]), Allocation(["127.0.0.1"], False), PY)
    assert plan.base_url == "http://127.0.0.1:8123/v1"
    assert plan.commands == [
        NodeCommand(
            "127.0.0.1",
            0,
            [
                PY,
                "-m",
                "vllm.entrypoints.openai.api_server",
                "--model",
                "org/model",
                "--tensor-parallel-size",
                "1",
                "--pipeline-parallel-size",
                "1",
                "--dtype",
                "auto",
                "--host",
                "127.0.0.1",
                "--port",
                "8123",
                "--max-model-len",
                "512",
                "--enforce-eager",
            ],
            "server",
        )
    ]


def test_vllm_single_node_in_slurm_runs_directly_on_all_interfaces():
    [cmd] = launch_plan(llm(tensor_parallel_size=8), Allocation(["gpu05"], True), PY).commands
    assert cmd.argv[0] == PY and cmd.argv[cmd.argv.index("--host") + 1] == "0.0.0.0"


def test_vllm_two_nodes_through_ray():
    plan = launch_plan(llm(tensor_parallel_size=8, pipeline_parallel_size=2, extra_args=["--x"]), Allocation(["gpu01", "gpu02"], True), PY)
    ray = [PY, "-m", "ray.scripts.scripts", "start", "--block"]
    assert plan.base_url == "http://gpu01:8000/v1"
    assert plan.commands == [
        NodeCommand("gpu01", 0, srun("gpu01") + ray + ["--head", "--port", "6379"], "ray-head"),
        NodeCommand("gpu02", 1, srun("gpu02") + ray + ["--address", "gpu01:6379"], "ray-worker", after="gpu01:6379"),
        NodeCommand(
            "gpu01",
            0,
            srun("gpu01")
            + [
                PY,
                "-m",
                "vllm.entrypoints.openai.api_server",
                "--model",
                "org/model",
                "--tensor-parallel-size",
                "8",
                "--pipeline-parallel-size",
                "2",
                "--dtype",
                "auto",
                "--host",
                "0.0.0.0",
                "--port",
                "8000",
                "--distributed-executor-backend",
                "ray",
                "--x",
            ],
            "server",
            env={"RAY_ADDRESS": "gpu01:6379"},
            after="gpu01:6379",
        ),
    ]
    assert [c.log_name for c in plan.commands] == ["serve-ray-head-0.log", "serve-ray-worker-1.log", "serve-server-0.log"]


@pytest.mark.parametrize(
    "cfg, nodes, in_slurm, key",
    [
        (llm(engine="sglang", pipeline_parallel_size=2), ["a"], False, "generate.llm.serve.pipeline_parallel_size"),
        (llm(engine="sglang", tensor_parallel_size=3), ["a", "b"], True, "generate.llm.serve.tensor_parallel_size"),
        (llm(tensor_parallel_size=1), ["a", "b"], True, "generate.llm.serve.tensor_parallel_size"),
        (llm(tensor_parallel_size=3), ["a", "b"], True, "generate.llm.serve.tensor_parallel_size"),
        (llm(engine="none"), ["a"], False, "generate.llm.serve.engine"),
    ],
)
def test_invalid_layouts_name_the_key(cfg, nodes, in_slurm, key):
    with pytest.raises(DistilleryError, match=key.replace(".", r"\.")):
        launch_plan(cfg, Allocation(nodes, in_slurm), PY)


def test_several_nodes_need_slurm():
    with pytest.raises(DistilleryError, match="Slurm"):
        launch_plan(llm(tensor_parallel_size=2), Allocation(["a", "b"], False), PY)


def test_with_base_url():
    cfg = llm()
    assert with_base_url(cfg, "http://gpu01:8000/v1").openai.base_urls == ["http://gpu01:8000/v1"]
    assert cfg.openai.base_urls == ["http://127.0.0.1:8000/v1"]  # the original is untouched


# --- lifecycle with stand-in processes (no engine needed) -----------------------------------------

FAKE = """
import http.server, signal, subprocess, sys, time
port, delay, ignore_term = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3] == "1"
if ignore_term:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the grandchild below
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # a grandchild in the same group
time.sleep(delay)
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""


def fake(tmp_path: Path, port: int, delay: float = 0, ignore_term: bool = False) -> list[str]:
    script = tmp_path / "fake_server.py"
    script.write_text(FAKE)
    return [sys.executable, str(script), str(port), str(delay), "1" if ignore_term else "0"]


def test_start_order_waits_and_stop_escalates_to_sigkill(tmp_path):
    head_port, port = free_port(), free_port()
    gcs = f"127.0.0.1:{head_port}"
    engine = serve(llm(port=port, stop_timeout_s=1), tmp_path, LOCAL, PY)
    engine.plan = Plan(
        "vllm",
        [
            NodeCommand("127.0.0.1", 0, fake(tmp_path, head_port, delay=1.5), "ray-head"),
            NodeCommand(
                "127.0.0.1",
                1,
                [sys.executable, "-c", "import os; print(os.environ['MARK'])"],
                "ray-worker",
                env={"MARK": "seen"},
                after=gcs,
            ),
            NodeCommand("127.0.0.1", 0, fake(tmp_path, port, ignore_term=True), "server", after=gcs),
        ],
        f"http://127.0.0.1:{port}/v1",
    )
    with pytest.raises(
        DistilleryError, match=r"vllm ray-worker \(rank 1 on 127\.0\.0\.1\) exited with code 0 .*serve-ray-worker-1\.log:\nseen"
    ):
        with engine:
            pass
    assert all(not group_alive(p.pid) for _, p in engine.processes)

    engine = serve(llm(port=port, stop_timeout_s=1), tmp_path, LOCAL, PY)
    engine.plan = Plan(
        "vllm",
        [
            NodeCommand("127.0.0.1", 0, fake(tmp_path, head_port, delay=1.5), "ray-head"),
            NodeCommand("127.0.0.1", 0, fake(tmp_path, port, ignore_term=True), "server", after=gcs),
        ],
        f"http://127.0.0.1:{port}/v1",
    )
    t0 = time.monotonic()
    with engine as base_url:
        assert time.monotonic() - t0 >= 1.5  # the server started only once the head listened
        assert urllib.request.urlopen(base_url.removesuffix("/v1") + "/health", timeout=5).status == 200
        pgids = [p.pid for _, p in engine.processes]
    assert all(not group_alive(g) for g in pgids)  # SIGTERM-deaf server and its grandchild: SIGKILLed
    assert engine.processes[1][1].returncode == -signal.SIGKILL


def test_check_reports_a_server_that_died_while_serving(tmp_path):
    port = free_port()
    engine = serve(llm(port=port, stop_timeout_s=5), tmp_path, LOCAL, PY)
    engine.plan = Plan("vllm", [NodeCommand("127.0.0.1", 0, fake(tmp_path, port), "server")], f"http://127.0.0.1:{port}/v1")
    with engine:
        engine.check()
        [(_, proc)] = engine.processes
        os.kill(proc.pid, signal.SIGKILL)  # the leader only: its grandchild lives on in the group
        proc.wait(timeout=10)
        with pytest.raises(DistilleryError, match=r"vllm server \(rank 0 on 127\.0\.0\.1\) was killed by signal 9 while serving"):
            engine.check()
        assert group_alive(proc.pid)
    assert wait_gone(proc.pid, 5)


def test_port_in_use_is_refused(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        cfg = llm(port=s.getsockname()[1])
        with pytest.raises(DistilleryError, match=r"generate\.llm\.serve\.port: \d+ is already in use"):
            with serve(cfg, tmp_path, LOCAL, PY):
                pass


# --- lifecycle against a real vLLM server (CPU) --------------------------------------------------


@pytest.fixture
def vllm_cfg(tiny_models, monkeypatch):
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; the launched server inherits it

    def make(**serve) -> LLM:
        return LLM.model_validate(
            {
                "backend": "openai",
                "model": str(tiny_models / "teacher"),
                "dtype": "float32",
                "serve": {
                    "engine": "vllm",
                    "port": free_port(),
                    "max_model_len": 512,
                    "extra_args": ["--enforce-eager"],
                    "health_timeout_s": 240,
                    "stop_timeout_s": 30,
                    **serve,
                },
            }
        )

    return make


@needs_vllm
def test_serves_a_completion_and_stops(vllm_cfg, tmp_path):
    cfg = vllm_cfg()
    engine = serve(cfg, tmp_path / "logs", LOCAL, str(VLLM_PYTHON))
    with engine as base_url:
        [pgid] = [p.pid for _, p in engine.processes]
        body = json.dumps({"model": cfg.model, "messages": [{"role": "user", "content": "Compute 2 + 3."}], "max_tokens": 8}).encode()
        req = urllib.request.Request(f"{base_url}/chat/completions", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            out = json.load(resp)
        assert isinstance(out["choices"][0]["message"]["content"], str)
        assert out["usage"]["completion_tokens"] > 0
    assert not group_alive(pgid) and engine.processes[0][1].returncode is not None
    engine.stop()  # idempotent
    assert "vllm" in (tmp_path / "logs/serve-server-0.log").read_text().lower()


@needs_vllm
def test_server_that_dies_is_an_error_with_its_log(vllm_cfg, tmp_path):
    cfg = vllm_cfg().model_copy(update={"model": str(tmp_path / "no-such-model")})
    t0 = time.monotonic()
    with pytest.raises(
        DistilleryError,
        match=r"vllm server \(rank 0 on 127\.0\.0\.1\) exited with code \d+ "
        r"before the vllm server at http://127\.0\.0\.1:\d+/health was ready",
    ) as exc:
        with serve(cfg, tmp_path, LOCAL, str(VLLM_PYTHON)):
            pytest.fail("the server cannot be healthy")
    assert "serve-server-0.log" in str(exc.value) and "no-such-model" in str(exc.value)  # the log's tail
    assert time.monotonic() - t0 < 120


@needs_vllm
def test_health_timeout_stops_the_server(vllm_cfg, tmp_path):
    engine = serve(vllm_cfg(health_timeout_s=3, stop_timeout_s=15), tmp_path, LOCAL, str(VLLM_PYTHON))
    with pytest.raises(DistilleryError, match=r"health_timeout_s.*not ready within 3 s.*serve-server-0\.log"):
        with engine:
            pytest.fail("the server cannot be healthy within 3 s")
    [pgid] = [p.pid for _, p in engine.processes]
    assert not group_alive(pgid)


@needs_vllm
def test_sigterm_to_the_job_stops_the_server(vllm_cfg, tmp_path):
    cfg = vllm_cfg(stop_timeout_s=20)
    pid_file = tmp_path / "server.pid"
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent(f"""
        import signal, sys, time
        from pathlib import Path
        from distillery.config import LLM
        from distillery.llm.serving import Allocation, serve

        signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))  # what the CLI does
        engine = serve(LLM.model_validate_json({cfg.model_dump_json()!r}), Path({str(tmp_path)!r}),
                       Allocation(["127.0.0.1"], False), {str(VLLM_PYTHON)!r})
        with engine:
            Path({str(pid_file)!r}).write_text(str(engine.processes[0][1].pid))
            print("healthy", flush=True)
            time.sleep(600)
    """)
    )
    job = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not pid_file.exists():
            assert job.poll() is None, job.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the server was not healthy within 240 s"
            time.sleep(0.5)
        pgid = int(pid_file.read_text())
        assert group_alive(pgid)
        job.send_signal(signal.SIGTERM)
        assert job.wait(timeout=cfg.serve.stop_timeout_s + 15) == 143
        assert wait_gone(pgid, 5), "the server outlived the job"
    finally:
        if job.poll() is None:
            job.kill()
        if pid_file.exists() and group_alive(int(pid_file.read_text())):
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)


@pytest.mark.parametrize("stage", ["generate", "judge", "evaluate"])
def test_a_serving_error_names_the_settings_of_the_stage_it_serves(stage, tmp_path, monkeypatch):
    """Every LLM stage starts its server through the journaled task; an error names that stage's
    keys (judge.llm.serve...), never generate's."""
    from distillery.config import EvaluateConfig, GenerateConfig, JudgeConfig, Sampling
    from distillery.llm.task import TaskDirs
    from distillery.stages import evaluate, generate, judge

    served = llm(engine="sglang", pipeline_parallel_size=2).model_dump()
    dirs = TaskDirs(journal=tmp_path / "journal", server_logs=tmp_path / "logs")
    task = {
        "generate": lambda: generate.GenerateTask(GenerateConfig.model_validate({"llm": served}), 1, dirs=dirs),
        "judge": lambda: judge.JudgeTask(
            JudgeConfig.model_validate({"llm": served, "prompt_template": str(Path(__file__).parents[1] / "prompts/judge.txt")}), 1, dirs
        ),
        "evaluate": lambda: evaluate.EvaluateTask(EvaluateConfig.model_validate({"llm": served}), 1, "greedy", dirs),
    }[stage]()
    assert task.stage == stage
    for var in ("SLURM_JOB_ID", "SLURM_JOB_NODELIST"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(DistilleryError) as info:
        task.answer([task.request([("user", "hi")], Sampling())], Sampling())
    assert f"{stage}.llm.serve.pipeline_parallel_size" in str(info.value)
