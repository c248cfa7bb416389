"""lighteval: the student scored by lighteval (vLLM backend), for users who want its numbers beside
ours. Opt-in (`snakemake data/lighteval/results.json`), and run in its own environment
(envs/lighteval.yaml, or `make .venv-lighteval`): lighteval 0.13 pins latex2sympy2_extended 1.0.6
and vllm<0.10.2, which the main environment's math-verify 0.9 and vLLM cannot share.

`command` renders the call (pure, tested); `run` executes it with the lighteval found by
$DISTILLERY_LIGHTEVAL (a path to its executable) or on PATH, and copies the newest results file to
the stage's output.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

from distillery.config.lighteval import STAGE, LightevalConfig
from distillery.errors import DistilleryError
from distillery.metrics import write_metrics

log = logging.getLogger(__name__)


def model_args(cfg: LightevalConfig) -> str:
    s = cfg.sampling
    gen = f"{{max_new_tokens:{s.max_new_tokens},temperature:{s.temperature},top_p:{s.top_p}}}"
    return (
        f"model_name={cfg.model},dtype={cfg.dtype},max_model_length={cfg.max_model_length},"
        f"gpu_memory_utilization={cfg.gpu_memory_utilization},tensor_parallel_size={cfg.tensor_parallel_size},"
        f"generation_parameters={gen}"
    )


def command(cfg: LightevalConfig, output_dir: Path, executable: str = "lighteval") -> list[str]:
    argv = [executable, "vllm", model_args(cfg), ",".join(cfg.tasks), "--output-dir", str(output_dir)]
    if cfg.max_samples:
        argv += ["--max-samples", str(cfg.max_samples)]
    return argv


def executable() -> str:
    exe = os.environ.get("DISTILLERY_LIGHTEVAL") or shutil.which("lighteval")
    if not exe:
        raise DistilleryError(
            "lighteval is not installed here: it runs in its own environment. Use "
            "`snakemake --use-conda data/lighteval/results.json` (envs/lighteval.yaml), or `make .venv-lighteval` "
            "and set DISTILLERY_LIGHTEVAL=.venv-lighteval/bin/lighteval"
        )
    return exe


Paths = STAGE.paths_record()  # its files, by the names its declaration gives them


def run(cfg: LightevalConfig, paths: Paths) -> dict:
    argv = command(cfg, paths.work_dir, executable())
    log.info("running %s", " ".join(argv))
    done = subprocess.run(argv)
    if done.returncode != 0:
        raise DistilleryError(f"lighteval exited with {done.returncode}; its output is in this rule's log")
    found = sorted(paths.work_dir.glob("results/**/results_*.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise DistilleryError(f"lighteval wrote no results_*.json under {paths.work_dir}/results")
    data = json.loads(found[-1].read_text())
    paths.results.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(found[-1], paths.results)
    write_metrics(
        paths.metrics, "lighteval", model=cfg.model, tasks=cfg.tasks, sampling=cfg.sampling.model_dump(), results=data.get("results", {})
    )
    return data
