"""The Slurm profile on a real two-node Slurm cluster started by the test (Debian's slurm-wlm):
the bundled DAG runs through `--profile profiles/slurm` (merged with tests/slurm_ci_overlay.yaml
for partition names and sizes), and Slurm's own job records show each rule's resources."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import REPO, copy_repo, run_env
from support.slurm_cluster import SlurmCluster, slurm_available
from test_pipeline import check_whole_dag_outputs

pytestmark = pytest.mark.skipif(slurm_available() is not None, reason=f"no Slurm here: {slurm_available()}")

GPU_RULES = {"generate_shard", "generate_round_shard", "judge_shard", "judge_round_shard", "sft", "dpo", "difficulty", "grpo", "evaluate"}


def merge(base: dict, overlay: dict) -> dict:
    """overlay's keys win, recursively; a None in the overlay removes the key."""
    out = copy.deepcopy(base)
    for k, v in overlay.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def ci_profile(dest: Path) -> tuple[Path, dict]:
    profile = merge(
        yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text()),
        yaml.safe_load((REPO / "tests/slurm_ci_overlay.yaml").read_text()),
    )
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return dest, profile


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with SlurmCluster(tmp_path_factory.mktemp("slurm")) as c:
        yield c


def snakemake(args: list[str], cwd: Path, env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    # timeout -k: a hang fails this test, not the whole CI run.
    return subprocess.run(["timeout", "-k", "10", str(timeout), "snakemake", *args], cwd=cwd, env=env, capture_output=True, text=True)


def rule_threads() -> dict[str, int]:
    """`threads:` of each rule, read from rules/*.smk (Snakemake's default is 1)."""
    import re

    out = {}
    for smk in (REPO / "rules").glob("*.smk"):
        for block in re.split(r"^rule ", smk.read_text(), flags=re.M)[1:]:
            name = block.split(":", 1)[0].strip()
            m = re.search(r"^\s+threads:\s*(\d+)", block, re.M)
            out[name] = int(m.group(1)) if m else 1
    return out


def expected_resources(profile: dict, rule: str) -> dict:
    res = {**profile["default-resources"], **profile.get("set-resources", {}).get(rule, {})}
    threads = res.get("cpus_per_task") or profile.get("set-threads", {}).get(rule) or rule_threads()[rule]
    return {
        "partition": res["slurm_partition"],
        "nodes": res["nodes"],
        "mem": f"{res['mem_mb']}M",
        "cpus": threads,
        "minutes": res["runtime"],
        "gres": res.get("gres"),
    }


def minutes(limit: str) -> int:
    days, _, hms = limit.rpartition("-")
    h, m, s = (int(x) for x in hms.split(":"))
    return (int(days) if days else 0) * 1440 + h * 60 + m + (1 if s else 0)


def test_the_bundled_dag_runs_as_slurm_jobs_with_the_profiles_resources(cluster, tmp_path):
    repo = copy_repo(tmp_path / "repo")
    profile_dir, profile = ci_profile(tmp_path / "profile")
    env = cluster.env() | run_env()
    r = snakemake(["--profile", str(profile_dir)], repo, env)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    jobs = [j for j in cluster.jobs() if j.get("WorkDir") == str(repo)]
    by_rule: dict[str, list[dict]] = {}
    for j in jobs:
        by_rule.setdefault(j["Comment"].removeprefix("rule_").split("_wildcards_")[0], []).append(j)
    shards = yaml.safe_load((repo / "params.yaml").read_text())["generate"]["num_shards"]
    assert {k: len(v) for k, v in by_rule.items()} == {
        "sample": 1,
        "ingest": 1,
        "mix": 1,
        "models": 1,
        "generate_shard": shards,
        "generate_gather": 1,
        "verify_shard": shards,
        "verify_gather": 1,
        "judge_shard": shards,
        "judge_gather": 1,
        # round 2 (params.yaml: generate.rounds), on the problems round 1 left unsolved
        "generate_round_shard": shards,
        "generate_round_gather": 1,
        "verify_round_shard": shards,
        "verify_round_gather": 1,
        "judge_round_shard": shards,
        "judge_round_gather": 1,
        "dedupe": 1,
        "build": 1,
        "curate": 1,
        "sft": 1,
        "preferences": 1,
        "dpo": 1,
        "difficulty": 1,
        "grpo": 1,
        "evaluate": 1,
        "report": 1,
    }
    for rule, rule_jobs in by_rule.items():
        want = expected_resources(profile, rule)
        for j in rule_jobs:
            got = {
                "partition": j["Partition"],
                "nodes": int(j["NumNodes"]),
                "mem": j["MinMemoryNode"],
                "cpus": int(j["CPUs/Task"]),
                "minutes": minutes(j["TimeLimit"]),
                "gres": j.get("TresPerNode", "").removeprefix("gres:") or None,
            }
            assert j["JobState"] == "COMPLETED", (rule, j["JobState"])
            assert got == want, rule
    assert {r for r in by_rule if expected_resources(profile, r)["gres"]} == GPU_RULES
    assert int(by_rule["generate_shard"][0]["NumNodes"]) == 2  # DeepSeek-R1 is served across two nodes
    assert (repo / "data/build/dataset/README.md").exists() and (repo / "metrics/evaluate.json").exists()
    check_whole_dag_outputs(repo)  # every stage's outputs, as a laptop run leaves them
    again = snakemake(["--profile", str(profile_dir), "-n"], repo, env)
    assert "Nothing to be done" in again.stdout + again.stderr, again.stdout[-2000:] + again.stderr[-2000:]


def test_a_cancelled_shard_is_retried_and_resumes_from_its_journal(cluster, tmp_path):
    import json
    import time

    repo = copy_repo(tmp_path / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["generate"]["llm"]["batch_size"] = 2  # small batches: journaled a little at a time, so a cancel lands mid-shard
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    profile_dir, _ = ci_profile(tmp_path / "profile")
    env = cluster.env() | run_env()
    proc = subprocess.Popen(
        ["timeout", "-k", "10", "900", "snakemake", "--profile", str(profile_dir), "data/generate/generations.parquet"],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    journal = Path(env["DISTILLERY_JOURNAL_DIR"]) / "generate/shard-0-of-2.jsonl"  # the tests' own journal (conftest)
    deadline = time.monotonic() + 600
    while not (journal.exists() and journal.read_text().count("\n") >= 10):
        assert proc.poll() is None and time.monotonic() < deadline, "shard 0 never got going"
        time.sleep(0.2)
    [job] = [j for j in cluster.jobs() if j.get("WorkDir") == str(repo) and j["Comment"].endswith("generate_shard_wildcards_0")]
    subprocess.run(["scancel", job["JobId"]], env=env, check=True)
    cancelled_at = journal.read_text().count("\n")
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-4000:]
    jobs = [j for j in cluster.jobs() if j.get("WorkDir") == str(repo)]
    states = {}
    for j in jobs:
        states.setdefault(j["Comment"].removeprefix("rule_"), []).append(j["JobState"])
    assert states["generate_shard_wildcards_0"] == ["CANCELLED", "COMPLETED"]  # retried by the profile's `retries`
    assert states["generate_shard_wildcards_1"] == ["COMPLETED"]  # the other shard was not redone
    stats = json.loads((repo / "logs/generate/shard-0.run.json").read_text())  # this run's figures: a log
    assert stats["reused_from_journal"] >= cancelled_at - 2  # what was journaled before the cancel was not asked again
    assert stats["generated"] == stats["requests"] - stats["reused_from_journal"]
    import polars as pl

    df = pl.read_parquet(repo / "data/generate/generations.parquet")
    assert df["request_key"].n_unique() == df.height == 2 * pl.read_parquet(repo / "data/sample/problems.parquet").height
