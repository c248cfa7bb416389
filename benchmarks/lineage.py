"""Lineage off the bundled path, measured in a throwaway copy of the repository (real git, DVC,
Snakemake, the tiny teacher on CPU):

1. requests generated after growing the sample (20 -> 26 -> 40 -> 60 problems, `dvc repro generate`),
   over what the new problems need: 1.00 when the teacher does not depend on the sample;
2. a `dvc repro` SIGKILLed mid-generate, then a plain `dvc repro`: answers journaled before the kill
   + answers generated after it, over what was needed (1.00: nothing lost, nothing asked twice);
3. what the dvc.yaml check adds to every Snakemake start (each Slurm job parses the Snakefile):
   `workflow.render()` and `snakemake -n` with and without it, side by side.

    .venv/bin/python benchmarks/lineage.py        # about 3 minutes on 2 cores
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from distillery import journal as request_journal  # noqa: E402

from conftest import copy_repo, run_env  # noqa: E402  the copies and environment the tests use


def env(journal: Path) -> dict[str, str]:
    return {**run_env(), "DISTILLERY_JOURNAL_DIR": str(journal)}


def set_n(repo: Path, n: int) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["sample"]["n"] = n
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, width=200))


def repro(repo: Path, e: dict, *targets: str) -> float:
    t = time.perf_counter()
    r = subprocess.run(["dvc", "repro", *targets], cwd=repo, env=e, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"dvc repro failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return time.perf_counter() - t


def generated(repo: Path) -> int:
    return json.loads((repo / "logs/generate/throughput.json").read_text())["generated"]


def journaled(journal: Path) -> int:
    """Requests with a final answer in the generate journals, read as the stage reads them."""
    return request_journal.stats(journal / "generate")["records"]


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="lineage-"))
    repo = copy_repo(work / "repo")
    journal = work / "journal"
    e = env(journal)
    per_problem = yaml.safe_load((repo / "params.yaml").read_text())["generate"]["num_generations"]
    print("1. growing the sample (dvc repro generate)")
    print(f"   {'problems':>14} {'needed':>7} {'generated':>10} {'ratio':>6} {'wall s':>7}")
    previous = 0
    for n in (20, 26, 40):
        set_n(repo, n)
        wall = repro(repo, e, "generate")
        needed = (n - previous) * per_problem
        print(f"   {previous:>5} -> {n:<5} {needed:>7} {generated(repo):>10} {generated(repo) / needed:>6.2f} {wall:>7.1f}")
        previous = n

    print("2. dvc repro SIGKILLed mid-generate (40 -> 60 problems), then a plain dvc repro")
    set_n(repo, 60)
    before = journaled(journal)
    proc = subprocess.Popen(
        ["dvc", "repro", "generate"], cwd=repo, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    while proc.poll() is None and journaled(journal) == before:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    at_kill = journaled(journal) - before
    repro(repo, e, "generate")
    needed = 20 * per_problem
    print(
        f"   needed {needed}; journaled before the kill {at_kill}; generated after it {generated(repo)}; "
        f"(before + after) / needed = {(at_kill + generated(repo)) / needed:.2f}; Snakemake lock left: "
        f"{any((repo / '.snakemake/locks').glob('*')) if (repo / '.snakemake/locks').exists() else False}"
    )

    print("3. the dvc.yaml check at every Snakemake start")
    # Cold, as each Snakemake start is: a new process walks the imports and hashes the code once.
    probe = (
        "import time; t = time.perf_counter(); from distillery.config import load_params; "
        "from distillery.workflow import render; render(load_params('params.yaml')); print(time.perf_counter() - t)"
    )
    cold = [
        float(subprocess.run([sys.executable, "-c", probe], cwd=repo, env=e, capture_output=True, text=True, check=True).stdout)
        for _ in range(5)
    ]
    render_ms = statistics.median(cold) * 1000
    common = repo / "rules/common.smk"
    with_check = common.read_text()

    def snakemake_n() -> float:
        runs = []
        for _ in range(5):
            t = time.perf_counter()
            subprocess.run(["snakemake", "-n", "--quiet"], cwd=repo, env=e, capture_output=True, check=True)
            runs.append(time.perf_counter() - t)
        return statistics.median(runs)

    with_s = snakemake_n()
    common.write_text(with_check.replace("\n_check_dvc_yaml()\n", "\n"))
    without_s = snakemake_n()
    common.write_text(with_check)
    print(
        f"   imports + load_params + render(), new process, median of 5: {render_ms:.0f} ms; "
        f"`snakemake -n` median of 5: {with_s:.2f} s with the check, "
        f"{without_s:.2f} s without: {with_s / without_s:.3f}x"
    )
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
