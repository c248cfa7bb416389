"""`distillery checkout [REV]`: switch to a version and make DVC and Snakemake agree that it is current.

DVC is the authority on versions. `git checkout REV && dvc checkout` restores REV's outputs, and
`dvc repro` then runs nothing; but Snakemake keeps its own records (.snakemake/metadata: the params
each output was made with) and compares modification times, and `dvc checkout` rewrites the
restored files in no particular order. So a plain `snakemake` afterwards would re-run work DVC
considers current: the stages whose params differ from the last Snakemake run, and everything
downstream of a file restored after its consumers.

This command restores the version, checks with `dvc status` that every stage is current, and only
then runs `snakemake --touch`, which records the current params for each output and touches the
outputs in DAG order without running anything.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from distillery.errors import DistilleryError


def _run(args: list[str], cwd: Path, what: str, hint: str = "") -> str:
    exe = shutil.which(args[0])
    if exe is None:
        raise DistilleryError(
            f"`{args[0]}` is not on PATH; activate the environment (source .venv/bin/activate) or run `make .venv .venv-dvc`"
        )
    proc = subprocess.run([exe, *args[1:]], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise DistilleryError(f"{what} failed (`{' '.join(args)}`):\n{tail}{hint}")
    return proc.stdout


def checkout(repo: Path, rev: str | None = None) -> list[str]:
    """Restore `rev` (or the current commit) and sync Snakemake's records; returns what was done."""
    done = []
    if rev:
        _run(["git", "checkout", "-q", rev], repo, f"git checkout {rev}")
        done.append(f"git checkout {rev}")
    _run(
        ["dvc", "checkout"],
        repo,
        "dvc checkout",
        "\nOutputs missing from the local cache come from the remote (`dvc pull`) or are rebuilt (`dvc repro`); "
        "Snakemake's records were left alone.",
    )
    done.append("dvc checkout")
    status = json.loads(_run(["dvc", "status", "--json"], repo, "dvc status") or "{}")
    if status:
        stale = ", ".join(sorted(status))
        raise DistilleryError(
            f"DVC says these are not current for this version: {stale}. Their outputs are not in the local cache "
            "(`dvc pull` or `dvc fetch --all-commits` brings them from the remote) or the workspace has changes; "
            "run `dvc repro` to rebuild them. Snakemake's records were left alone."
        )
    _run(["snakemake", "--cores", "1", "--touch", "--quiet", "all"], repo, "snakemake --touch")
    done.append("snakemake --touch: Snakemake's records now match the restored outputs")
    return done
