"""Lineage off the bundled path, end to end in throwaway copies with real git, DVC and Snakemake:
a user's own source and benchmark files are tracked, growing the sample sends only the new
problems' requests, and a `dvc repro` killed mid-stage finishes on a plain re-run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from distillery import journal as request_journal
from distillery.io import file_md5

from conftest import REPO, run_env, seed_models, sh
from test_pipeline import ran_stages

pytestmark = pytest.mark.e2e


def set_params(repo: Path, change) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    change(params)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, width=200))


def restored_stages(dvc_output: str) -> list[str]:
    """The stages DVC restored from its cache instead of running them."""
    return re.findall(r"Stage '([a-z_0-9]+)' is cached - skipping run", dvc_output)


def status_stages(repo: Path) -> dict[str, str]:
    """`dvc status`: stage -> its block of text."""
    out = sh(["dvc", "status"], repo).stdout
    return {m.group(1): m.group(2) for m in re.finditer(r"^(\w+):\n((?:\t.*\n?)*)", out, re.M)}


def requests_generated(repo: Path) -> int:
    return json.loads((repo / "logs/generate/throughput.json").read_text())["generated"]


def test_users_files_are_tracked_and_growing_the_sample_sends_only_new_requests(repo_copy, built_repo):
    seed_models(built_repo, repo_copy)  # the tiny models, as the build made them: not trained again here
    bundled = (REPO / "data/bundled/numina_sample.jsonl").read_text().splitlines(keepends=True)
    (repo_copy / "data/my_source.jsonl").write_text("".join(bundled))
    math500 = (REPO / "data/bundled/benchmarks/math500.jsonl").read_text().splitlines(keepends=True)
    (repo_copy / "data/my_bench.jsonl").write_text("".join(math500[:20]))

    def use_own_files(p):
        p["sample"]["source"] = "data/my_source.jsonl"
        p["sample"]["n"] = 20
        p["base"]["benchmarks"]["mybench"] = {**p["base"]["benchmarks"]["math500"], "path": "data/my_bench.jsonl"}
        p["dedupe"]["benchmarks"] = ["mybench"]

    set_params(repo_copy, use_own_files)
    # DVC read dvc.yaml before the run: the first run regenerates it (it now tracks both files) and stops.
    stale = sh(["dvc", "repro", "dedupe"], repo_copy)
    assert stale.returncode != 0 and "run `dvc repro` again" in stale.stdout + stale.stderr
    first = sh(["dvc", "repro", "dedupe"], repo_copy)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert sorted(ran_stages(first.stdout)) == sorted(
        ["check_params", "sample", "ingest", "generate", "mix", "verify", "judge"]
        + ["generate_round_2", "verify_round_2", "judge_round_2", "dedupe"]
    )
    assert restored_stages(first.stdout) == ["models"]  # from the seeded cache (the teacher reads no file of the user's)
    assert requests_generated(repo_copy) == 40

    # The benchmark file: only dedupe reads it. (build and what follows were never run: stale before too.)
    never_run = status_stages(repo_copy)
    assert set(never_run) == {"build", "curate", "sft", "preferences", "dpo", "difficulty", "grpo", "evaluate", "report"}
    with (repo_copy / "data/my_bench.jsonl").open("a") as fh:
        fh.write(math500[20])
    changed = {k: v for k, v in status_stages(repo_copy).items() if k not in never_run}
    assert set(changed) == {"dedupe"} and "modified:           data/my_bench.jsonl" in changed["dedupe"]
    rerun = sh(["dvc", "repro", "dedupe"], repo_copy)
    assert rerun.returncode == 0 and ran_stages(rerun.stdout) == ["dedupe"], rerun.stdout[-2000:]

    # The source file: sample re-runs; the teacher does not depend on it, and nothing is generated.
    with (repo_copy / "data/my_source.jsonl").open("a") as fh:
        fh.write(json.dumps({"problem": "An added problem with no answer.", "answer": None}) + "\n")
    changed = {k: v for k, v in status_stages(repo_copy).items() if k not in never_run}
    assert set(changed) == {"sample"} and "modified:           data/my_source.jsonl" in changed["sample"]
    rerun = sh(["dvc", "repro", "dedupe"], repo_copy)
    assert rerun.returncode == 0, rerun.stdout[-2000:]
    ran = ran_stages(rerun.stdout)
    assert ran[0] == "sample" and "models" not in ran + restored_stages(rerun.stdout)
    assert "generate" not in ran or requests_generated(repo_copy) == 0  # the same problems: all from the journal
    rejected = pl.read_parquet(repo_copy / "data/sample/rejected.parquet")
    assert rejected.filter(pl.col("source_row") == len(bundled))["reason"].to_list() == ["missing_answer"]

    # Growing the sample: exactly the new problems' requests are sent, and the teacher is unchanged.
    set_params(repo_copy, lambda p: p["sample"].__setitem__("n", 26))
    grown = sh(["dvc", "repro", "generate"], repo_copy)
    assert grown.returncode == 0, grown.stdout[-2000:]
    assert ran_stages(grown.stdout) == ["check_params", "sample", "generate"]  # a params edit is validated first
    assert requests_generated(repo_copy) == 6 * 2  # 6 new problems x generate.num_generations
    assert pl.read_parquet(repo_copy / "data/generate/generations.parquet").height == 26 * 2


def run_until(repo: Path, ready, what: str, timeout: float = 600) -> str:
    """`dvc repro` in its own process group, SIGKILLed (all of it: DVC, Snakemake, the stage) once
    `ready()` holds, as an OOM kill or a preemption would. Returns what it printed (DVC flushes each line)."""
    log = repo.parent / "killed_repro.log"
    with log.open("w") as out:
        proc = subprocess.Popen(["dvc", "repro"], cwd=repo, env=run_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline and not ready():
        time.sleep(0.02)
    finished = proc.poll() is not None
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not finished, f"dvc repro ended before it was {what}"
    return log.read_text()


ROUND_1_TABLES = ("data/generate/generations.parquet", "data/verify/verified.parquet", "data/judge/judged.parquet")


def test_a_killed_dvc_repro_finishes_on_a_plain_rerun(repo_copy, built_repo):
    seed_models(built_repo, repo_copy)  # the tiny models, as the build made them: only the stages killed below run
    journal = Path(os.environ["DISTILLERY_JOURNAL_DIR"]) / "generate"

    def answered() -> int:  # requests with a final answer, read as the stage reads them (torn lines skipped)
        return request_journal.stats(journal)["records"]

    first = run_until(repo_copy, lambda: answered() > 0 and not (repo_copy / "data/generate/generations.parquet").exists(), "mid-generate")
    assert restored_stages(first) == ["models"] and "models" not in ran_stages(first), first[-2000:]
    answered_before_kill = answered()
    assert 0 < answered_before_kill < 150
    run_until(repo_copy, lambda: (repo_copy / "logs/verify/shard-0.log").exists(), "mid-verify")
    assert not (repo_copy / "data/verify/verified.parquet").exists()
    # Mid round 2 (generate.rounds): round 1's 150 requests answered, round 2's under way.
    round_2 = repo_copy / "data/generate/round-2/generations.parquet"
    run_until(repo_copy, lambda: answered() > 150 and not round_2.exists(), "mid-round-2")
    round_1 = {f: file_md5(repo_copy / f) for f in ROUND_1_TABLES}
    checkpoints = repo_copy / "data/sft/checkpoints"
    run_until(repo_copy, lambda: any(checkpoints.glob("*/checkpoint-*/trainer_state.json")), "mid-sft")

    final = sh(["dvc", "repro"], repo_copy)
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    assert "LockException" not in final.stdout + final.stderr
    assert not {"generate", "verify", "judge"} & set(ran_stages(final.stdout))  # round 1 was done before the kill mid-round-2
    # Generation: 0 lost, 0 duplicated; every request answered exactly once across the five runs.
    stats = request_journal.stats(journal)
    generations = pl.read_parquet(repo_copy / "data/generate/generations.parquet")
    assert generations.height == generations["request_key"].n_unique() == 150
    # Round 2: 2 new samples for each problem with no correct generation after round 1 (counted here
    # from round 1's judged table), each asked once; round 1's tables untouched by the kill and the re-run.
    judged = pl.read_parquet(repo_copy / "data/judge/judged.parquet").filter(pl.col("round") == 1)
    correct = pl.col("is_reasoning_complete") & (pl.col("correctness_math_verify") | pl.col("correctness_llama").fill_null(False))
    unsolved = set(judged["uuid"]) - set(judged.filter(correct)["uuid"])
    both = pl.read_parquet(round_2)
    assert both.filter(pl.col("round") == 2)["uuid"].unique().sort().to_list() == sorted(unsolved)
    assert both.height == both["request_key"].n_unique() == 150 + 2 * len(unsolved)
    assert {f: file_md5(repo_copy / f) for f in ROUND_1_TABLES} == round_1
    written = sum(f["lines"] - f["unreadable_lines"] for f in stats["files"].values())
    assert stats["records"] == written == 150 + 2 * len(unsolved)  # one answer line per request: none asked twice
    # SFT resumed from its checkpoint, and nothing is left behind: no lock, checkpoint or partial file.
    assert json.loads((repo_copy / "logs/sft/run.json").read_text())["resumed_from_step"] >= 1
    assert not checkpoints.exists()
    assert not list((repo_copy / ".snakemake/locks").glob("*")) if (repo_copy / ".snakemake/locks").exists() else True
    assert not [p for d in ("data", "metrics", "plots") for p in (repo_copy / d).rglob("*.tmp")]
    assert sh(["dvc", "status"], repo_copy).stdout.strip() == "Data and pipelines are up to date."
    assert ran_stages(sh(["dvc", "repro"], repo_copy).stdout) == []
