"""Run the sft stage under `accelerate launch`, on one machine or across the nodes of the job's
Slurm allocation (DeepSpeed ZeRO-3 over 8 x H100 per node in the recipe).

`launch_commands` is pure (config + allocation -> one command per node), so the decisions are
tested without GPUs; `launch` runs them: one `accelerate launch` per node, each an `srun --overlap`
step pinned to its node when there are several, all stopped if one fails. Every process they start
runs `distillery sft` again with DISTILLERY_SFT_LAUNCHED=1, which trains instead of launching.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from distillery.config.base import SFTLaunch
from distillery.errors import DistilleryError
from distillery.llm.serving import Allocation

log = logging.getLogger(__name__)
LAUNCHED = "DISTILLERY_SFT_LAUNCHED"


def launch_commands(launch: SFTLaunch, sft_argv: list[str], alloc: Allocation, python: str = sys.executable) -> list[tuple[str, list[str]]]:
    """(node, argv) per node: `accelerate launch` of `python -m distillery <sft_argv>`."""
    if not launch.accelerate_config:
        raise ValueError("launch_commands needs sft.launch.accelerate_config")
    if not Path(launch.accelerate_config).is_file():
        raise DistilleryError(
            f"sft.launch.accelerate_config: {launch.accelerate_config} does not exist; "
            "point it at an accelerate config (configs/accelerate/ has zero3.yaml and cpu.yaml)"
        )
    nodes = alloc.nodes
    if len(nodes) > 1 and not alloc.in_slurm:
        raise DistilleryError("sft on several nodes needs a Slurm allocation (SLURM_JOB_ID and SLURM_JOB_NODELIST are not set)")
    commands = []
    for rank, node in enumerate(nodes):
        argv = [
            python,
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            launch.accelerate_config,
            "--num_machines",
            str(len(nodes)),
            "--num_processes",
            str(len(nodes) * launch.processes_per_node),
            "--machine_rank",
            str(rank),
            "--main_process_ip",
            nodes[0],
            "--main_process_port",
            str(launch.main_process_port),
            "--module",
            "distillery",
            *sft_argv,
        ]
        if len(nodes) > 1:
            argv = ["srun", "--nodes=1", "--ntasks=1", f"--nodelist={node}", "--overlap", "--kill-on-bad-exit=1", *argv]
        commands.append((node, argv))
    return commands


def launch(launch: SFTLaunch, sft_argv: list[str], alloc: Allocation | None = None) -> None:
    commands = launch_commands(launch, sft_argv, alloc or Allocation.from_env())
    env = {**os.environ, LAUNCHED: "1"}
    procs = []
    for node, argv in commands:
        log.info("sft on %s: %s", node, " ".join(argv))
        procs.append(subprocess.Popen(argv, env=env, start_new_session=True))
    try:
        while True:
            codes = [p.poll() for p in procs]
            failed = [(commands[i][0], c) for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                raise DistilleryError(
                    f"sft failed on {failed[0][0]} (exit {failed[0][1]}); the other nodes were stopped. "
                    "Re-running resumes from the last checkpoint"
                )
            if all(c == 0 for c in codes):
                return
            time.sleep(1)
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
