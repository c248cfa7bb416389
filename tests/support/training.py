"""Killing a training run the way a preemption does: SIGKILL once its first checkpoint is complete."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path


def kill_at_first_checkpoint(cmd: list[str], checkpoints: Path, env: dict[str, str], timeout_s: float = 300) -> int:
    """Runs `cmd`, SIGKILLs it as soon as a checkpoint under `checkpoints` has its trainer_state.json,
    and returns the step of the newest complete checkpoint left behind."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if list(checkpoints.glob("*/checkpoint-*/trainer_state.json")):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the training finished before a checkpoint could be killed"
    return max(int(p.parent.name.split("-")[1]) for p in checkpoints.glob("*/checkpoint-*/trainer_state.json"))
