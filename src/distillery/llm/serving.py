"""Start a serving engine (vLLM or SGLang) inside a job, across the nodes of its own allocation.

    with serve(cfg.llm, log_dir) as base_url:
        backend = make_backend(with_base_url(cfg.llm, base_url))
        ...

Two halves, so that the part with the decisions is testable without a cluster:

* `launch_plan` is pure: from the config and the allocation (Slurm's node list, or this machine)
  it renders every command line, in start order, and the URL the client will use.
* `ServedEngine` runs a plan: one process group per command (logs under `log_dir`), waits for
  `/health`, and on any exit (normal, exception, KeyboardInterrupt, SystemExit) sends SIGTERM to
  every group, then SIGKILL after `stop_timeout_s`. A process that dies before the server is
  healthy, or a health timeout, stops the rest and raises DistilleryError with the log's tail.

Several nodes need Slurm: each node's command runs as its own `srun --overlap` step, so it shares
the resources the job already holds. The serving engine may live in another virtualenv than
distillery: DISTILLERY_SERVE_PYTHON names its interpreter (a site setting, so not in params).
"""

from __future__ import annotations

import http.client
import itertools
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from distillery.config.base import LLM
from distillery.errors import DistilleryError
from distillery.secrets import scrub

log = logging.getLogger(__name__)

RAY_PORT = 6379
SGLANG_DIST_PORT = 20000
POLL_S = 1.0
PROGRESS_EVERY_S = 30.0
LOG_TAIL_LINES = 20

# --- Slurm allocation ----------------------------------------------------------------------------

_RANGE = re.compile(r"(\d+)(?:-(\d+))?")


def _expand_group(body: str, expr: str) -> list[str]:
    out: list[str] = []
    for item in body.split(","):
        m = _RANGE.fullmatch(item)
        if not m:
            raise ValueError(f"malformed hostlist {expr!r}: bad range {item!r} in [{body}]")
        lo, hi = m.group(1), m.group(2) or m.group(1)
        if int(hi) < int(lo):
            raise ValueError(f"malformed hostlist {expr!r}: range {item!r} runs backwards")
        out += [str(i).zfill(len(lo)) for i in range(int(lo), int(hi) + 1)]  # "01-03" keeps width 2
    return out


def _expand_host(host: str, expr: str) -> list[str]:
    parts: list[list[str]] = []  # literal text and bracket groups, combined in order
    for piece in re.split(r"(\[[^\[\]]*\])", host):
        if piece.startswith("["):
            parts.append(_expand_group(piece[1:-1], expr))
        elif "[" in piece or "]" in piece:
            raise ValueError(f"malformed hostlist {expr!r}: unbalanced or nested brackets in {host!r}")
        elif piece:
            parts.append([piece])
    return ["".join(p) for p in itertools.product(*parts)]


def expand_hostlist(expr: str) -> list[str]:
    """Slurm hostlist syntax: "gpu[01-03,07],login1" -> gpu01 gpu02 gpu03 gpu07 login1."""
    hosts: list[str] = []
    depth, start = 0, 0
    text = expr.strip()
    for i, ch in enumerate(text + ","):  # split on commas outside brackets
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if depth not in (0, 1):
            raise ValueError(f"malformed hostlist {expr!r}: unbalanced or nested brackets")
        if ch == "," and depth == 0:
            host = text[start:i]
            if not host:
                raise ValueError(f"malformed hostlist {expr!r}: empty host name")
            hosts += _expand_host(host, expr)
            start = i + 1
    if depth:
        raise ValueError(f"malformed hostlist {expr!r}: unclosed bracket")
    return hosts


@dataclass(frozen=True)
class Allocation:
    nodes: list[str]
    in_slurm: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Allocation:
        env = os.environ if env is None else env
        # The job's list, not the step's: the shard job itself may run as a one-node step.
        if env.get("SLURM_JOB_ID") and env.get("SLURM_JOB_NODELIST"):
            return cls(expand_hostlist(env["SLURM_JOB_NODELIST"]), True)
        return cls(["127.0.0.1"], False)


def serve_python(env: Mapping[str, str] | None = None) -> str:
    """The serving engine's interpreter: DISTILLERY_SERVE_PYTHON, else this one."""
    env = os.environ if env is None else env
    return env.get("DISTILLERY_SERVE_PYTHON") or sys.executable


# --- launch plan (pure) --------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeCommand:
    node: str
    rank: int
    argv: list[str]
    role: str  # server | ray-head | ray-worker
    env: dict[str, str] = field(default_factory=dict)  # added to the inherited environment
    after: str | None = None  # "host:port" that must accept connections before this starts

    @property
    def log_name(self) -> str:
        return f"serve-{self.role}-{self.rank}.log"


@dataclass(frozen=True)
class Plan:
    engine: str
    commands: list[NodeCommand]  # in start order
    base_url: str

    @property
    def health_url(self) -> str:
        return self.base_url.removesuffix("/v1") + "/health"


def _fail(key: str, problem: str, fix: str) -> DistilleryError:
    return DistilleryError(f"{key}: {problem}; {fix}")


def launch_plan(llm: LLM, alloc: Allocation, python: str, *, where: str = "generate.llm") -> Plan:
    """Every command that serves `llm` on `alloc`, in start order. `where` prefixes keys in errors."""
    s, nodes = llm.serve, alloc.nodes
    key = f"{where}.serve"
    n, head = len(nodes), nodes[0]
    if s.engine == "none":
        raise _fail(f"{key}.engine", "is 'none', so there is nothing to launch", "set it to 'vllm' or 'sglang'")
    if n > 1 and not alloc.in_slurm:
        raise DistilleryError(f"serving on {n} nodes needs a Slurm allocation (SLURM_JOB_ID and SLURM_JOB_NODELIST are not set)")
    # In a job the client may be elsewhere in the allocation; on a workstation, stay private.
    host = "0.0.0.0" if alloc.in_slurm else "127.0.0.1"
    base_url = f"http://{head}:{s.port}/v1"

    if s.engine == "sglang":
        if s.pipeline_parallel_size > 1:
            raise _fail(
                f"{key}.pipeline_parallel_size",
                f"is {s.pipeline_parallel_size}, but only engine vllm uses it",
                "set it to 1 and spread the model with tensor_parallel_size over all GPUs of all nodes",
            )
        if s.tensor_parallel_size % n:
            raise _fail(
                f"{key}.tensor_parallel_size",
                f"is {s.tensor_parallel_size}, not a multiple of the {n} nodes of the allocation",
                "set it to the number of GPUs over all nodes (OpenR1: 16 on 2 nodes of 8) or change the node count",
            )
        server = [python, "-m", "sglang.launch_server", "--model-path", llm.model]
        server += ["--revision", llm.revision] if llm.revision else []
        server += ["--tp", str(s.tensor_parallel_size), "--dtype", llm.dtype, "--host", host, "--port", str(s.port)]
        server += ["--context-length", str(s.max_model_len)] if s.max_model_len else []
        commands = []
        for rank, node in enumerate(nodes):
            dist = ["--nnodes", str(n), "--node-rank", str(rank), "--dist-init-addr", f"{head}:{SGLANG_DIST_PORT}"] if n > 1 else []
            commands.append(NodeCommand(node, rank, server + dist + list(s.extra_args), "server"))
    else:
        world = s.tensor_parallel_size * s.pipeline_parallel_size
        if n > 1 and (world < n or world % n):
            raise _fail(
                f"{key}.tensor_parallel_size",
                f"tensor_parallel_size x pipeline_parallel_size = {world} GPUs cannot fill the {n} nodes evenly",
                "use the GPUs of all nodes, e.g. tensor_parallel_size = GPUs per node and pipeline_parallel_size = nodes",
            )
        server = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", llm.model]
        server += ["--revision", llm.revision] if llm.revision else []
        server += [
            "--tensor-parallel-size",
            str(s.tensor_parallel_size),
            "--pipeline-parallel-size",
            str(s.pipeline_parallel_size),
            "--dtype",
            llm.dtype,
            "--host",
            host,
            "--port",
            str(s.port),
        ]
        server += ["--max-model-len", str(s.max_model_len)] if s.max_model_len else []
        if n == 1:
            commands = [NodeCommand(head, 0, server + list(s.extra_args), "server")]
        else:
            # vLLM spans nodes through Ray: a head and one worker per other node, then the API
            # server on the head as a Ray driver. `-m ray.scripts.scripts` is the `ray` console
            # script's own entry point; like `-m vllm...` it needs only the interpreter, not a
            # bin/ directory that uv-run or container setups may not have on PATH.
            ray = [python, "-m", "ray.scripts.scripts", "start", "--block"]
            gcs = f"{head}:{RAY_PORT}"
            commands = [NodeCommand(head, 0, ray + ["--head", "--port", str(RAY_PORT)], "ray-head")]
            commands += [
                NodeCommand(node, rank, ray + ["--address", gcs], "ray-worker", after=gcs) for rank, node in enumerate(nodes) if rank
            ]
            # RAY_ADDRESS: join this cluster, never start a private one if the head is slow.
            commands.append(
                NodeCommand(
                    head,
                    0,
                    server + ["--distributed-executor-backend", "ray"] + list(s.extra_args),
                    "server",
                    env={"RAY_ADDRESS": gcs},
                    after=gcs,
                )
            )

    if n > 1:
        # One step per node; --overlap because the job's resources are already held by this step.
        commands = [
            NodeCommand(
                c.node,
                c.rank,
                ["srun", "--nodes=1", "--ntasks=1", f"--nodelist={c.node}", "--overlap", "--kill-on-bad-exit=1"] + c.argv,
                c.role,
                c.env,
                c.after,
            )
            for c in commands
        ]
    return Plan(s.engine, commands, base_url)


def with_base_url(llm: LLM, url: str) -> LLM:
    """`llm` with its openai backend pointed at the server this job started."""
    return llm.model_copy(update={"openai": llm.openai.model_copy(update={"base_urls": [url]})})


# --- lifecycle -----------------------------------------------------------------------------------

# Cluster nodes often set http_proxy; requests to a compute node must never go through it.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def _http_ok(url: str) -> bool:
    try:
        with _NO_PROXY.open(url, timeout=5) as resp:
            return resp.status == 200
    except (OSError, http.client.HTTPException):
        return False


def _tcp_open(hostport: str) -> bool:
    host, port = hostport.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


def process_group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies do not count: they hold nothing)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]  # after "(comm)"
            if int(pgrp) == pgid and state not in ("Z", "X"):
                return True
        except (OSError, IndexError, ValueError):
            continue
    return False


def _tail(path: Path, n: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open(errors="replace") as f:
            # A server's log may quote a token (a hub download's header): not into the message.
            return scrub("".join(deque(f, maxlen=n)).rstrip()) or "(empty)"
    except OSError as exc:
        return f"(cannot read: {exc})"


class ServedEngine:
    """Context manager: starts the plan's processes, yields the base URL once healthy, stops them."""

    def __init__(self, llm: LLM, log_dir: Path, alloc: Allocation | None = None, python: str | None = None, *, where: str = "generate.llm"):
        if llm.serve.port == 0:  # this process runs on the head node, where the server will listen
            llm = llm.model_copy(update={"serve": llm.serve.model_copy(update={"port": free_port()})})
        self.llm, self.where = llm, where
        self.log_dir = Path(log_dir)
        self.plan = launch_plan(llm, alloc or Allocation.from_env(), python or serve_python(), where=where)
        self.processes: list[tuple[NodeCommand, subprocess.Popen]] = []  # kept after stop, for inspection
        self._logs: list[IO[bytes]] = []
        self._stopped = False

    @property
    def _what(self) -> str:
        return f"the {self.plan.engine} server at {self.plan.health_url}"

    def __enter__(self) -> str:
        try:
            self.start()
        except BaseException:  # __exit__ does not run when __enter__ raises
            self.stop()
            raise
        return self.plan.base_url

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self.processes or self._stopped:
            raise RuntimeError("a ServedEngine starts once; make a new one")
        s = self.llm.serve
        # A server already answering on the port would pass our health check in place of ours.
        if _tcp_open(self.plan.health_url.split("/")[2]):
            raise _fail(
                f"{self.where}.serve.port",
                f"{s.port} is already in use on {self.plan.commands[0].node}",
                "stop what listens there or choose another port",
            )
        self.log_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + s.health_timeout_s  # for the whole start-up, Ray's included
        for cmd in self.plan.commands:
            if cmd.after:
                self._wait(lambda after=cmd.after: _tcp_open(after), deadline, f"{cmd.after} (needed by {cmd.role} {cmd.rank})")
            logf = (self.log_dir / cmd.log_name).open("wb")
            self._logs.append(logf)
            log.info("starting %s %d on %s: %s (log: %s)", cmd.role, cmd.rank, cmd.node, " ".join(cmd.argv), logf.name)
            # A session of its own: the whole tree (vLLM's engine core, Ray's raylet) is one group to signal.
            proc = subprocess.Popen(
                cmd.argv,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                env={**os.environ, **cmd.env},
                start_new_session=True,
            )
            self.processes.append((cmd, proc))
        self._wait(lambda: _http_ok(self.plan.health_url), deadline, self._what)
        log.info("%s is healthy", self._what)

    def _wait(self, ready: Callable[[], bool], deadline: float, what: str) -> None:
        t0 = last = time.monotonic()
        while True:
            dead = self._dead(f"before {what} was ready")
            if dead:
                self.stop()
                raise DistilleryError(dead)
            if ready():
                return
            now = time.monotonic()
            if now >= deadline:
                self.stop()
                logs = ", ".join(str(self.log_dir / c.log_name) for c, _ in self.processes) or "none started"
                raise _fail(
                    f"{self.where}.serve.health_timeout_s",
                    f"{what} was not ready within {self.llm.serve.health_timeout_s:g} s (logs: {logs})",
                    "raise it if the model is still loading (a 671B model takes 30+ minutes), else read the logs",
                )
            if now - last >= PROGRESS_EVERY_S:
                last = now
                log.info("waiting for %s (%.0f s, log: %s)", what, now - t0, self.log_dir / self.plan.commands[-1].log_name)
            time.sleep(min(POLL_S, max(0.0, deadline - now)))

    def check(self) -> None:
        """Raise if a process of the running server has exited (e.g. between batches of requests)."""
        dead = self._dead("while serving")
        if dead:
            raise DistilleryError(dead)

    def _dead(self, when: str) -> str | None:
        for cmd, proc in self.processes:
            code = proc.poll()
            if code is not None:
                path = self.log_dir / cmd.log_name
                how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
                return f"{self.plan.engine} {cmd.role} (rank {cmd.rank} on {cmd.node}) {how} {when}; last lines of {path}:\n{_tail(path)}"
        return None

    def stop(self) -> None:
        """SIGTERM every group, SIGKILL what is left after stop_timeout_s. Safe to call again."""
        if self._stopped:  # never signal a group id again: once empty, the id may be reused
            return
        self._stopped = True
        groups = [proc.pid for _, proc in self.processes]  # start_new_session: pgid == pid
        for pgid in reversed(groups):  # the server before the Ray cluster it runs on
            self._signal(pgid, signal.SIGTERM)
        deadline = time.monotonic() + self.llm.serve.stop_timeout_s
        try:
            while self._alive(groups) and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:  # also when a second signal cuts the grace period short
            for pgid in self._alive(groups):
                log.warning(
                    "process group %d still runs %g s after SIGTERM (or stop was interrupted); killing it",
                    pgid,
                    self.llm.serve.stop_timeout_s,
                )
                self._signal(pgid, signal.SIGKILL)
            for _, proc in self.processes:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    log.warning("process %d did not exit after SIGKILL", proc.pid)
            for f in self._logs:
                f.close()

    def _alive(self, groups: list[int]) -> list[int]:
        for _, proc in self.processes:
            proc.poll()  # reap our own children, so they do not count as alive
        return [g for g in groups if process_group_alive(g)]

    @staticmethod
    def _signal(pgid: int, sig: signal.Signals) -> None:
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass


def serve(
    llm: LLM, log_dir: Path, alloc: Allocation | None = None, python: str | None = None, *, where: str = "generate.llm"
) -> ServedEngine:
    """`with serve(llm, log_dir) as base_url:` runs the configured engine for the block's duration."""
    return ServedEngine(llm, log_dir, alloc, python, where=where)
