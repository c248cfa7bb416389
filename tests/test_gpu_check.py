"""benchmarks/gpu_check.py: its CPU dry run end to end (every path runs, with sane figures), its
time limits, which wheels it installs, and the wheel list `make gpu-wheels` downloads against the
lockfile (no network)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from importlib import metadata

import pytest
from packaging.requirements import Requirement

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_check  # noqa: E402

# What the reference GPU node has (Python 3.12 with torch 2.11 + CUDA 13; the workplace's image
# list), as far as the wheels' own requirements reach.
NODE = {
    "torch",
    "transformers",
    "accelerate",
    "peft",
    "pyarrow",
    "pandas",
    "safetensors",
    "tokenizers",
    "sympy",
    "numpy",
    "huggingface-hub",
    "filelock",
    "fsspec",
    "requests",
    "tqdm",
    "packaging",
    "pyyaml",
    "psutil",
    "jinja2",
    "xxhash",
    "typing-extensions",
    "einops",
    "msgpack",
    "ninja",
    "py-cpuinfo",
    "nvidia-ml-py",
}


def pins() -> dict[str, str]:
    out = {}
    for line in (REPO / "constraints/pipeline.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            out[gpu_check.canonical(name)] = version
    return out


def test_the_wheel_list_has_the_lockfile_versions():
    listed, locked = gpu_check.wheel_list(), pins()
    assert {"trl", "datasets", "polars", "math-verify", "deepspeed"} <= set(listed)
    # DeepSpeed and its hjson are not in the CPU lockfile (no DeepSpeed there); everything else is, at the same version.
    gpu_only = set(gpu_check.CUDA_ONLY)
    assert {n: v for n, v in listed.items() if n not in gpu_only} == {n: locked[n] for n in listed if n not in gpu_only}
    built = (REPO / "constraints/gpu-wheels-built.txt").read_text()
    assert "deepspeed==0.19.8 --hash=sha256:" in built


def test_every_requirement_of_the_wheels_is_on_the_node_or_in_the_list():
    """Read from the installed packages' metadata (the same versions as the lockfile's, so the same
    requirements as the wheels'), with the node's Python 3.12 markers."""
    listed = set(gpu_check.wheel_list())
    env = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux", "platform_system": "Linux", "extra": ""}
    unmet = {}
    for name in listed - set(gpu_check.CUDA_ONLY):  # not installed on CPU: DeepSpeed's requirements are in the built list's comment
        for spec in metadata.requires(name) or []:
            req = Requirement(spec)
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            dep = gpu_check.canonical(req.name)
            if dep not in listed and dep not in NODE:
                unmet.setdefault(name, []).append(dep)
    assert unmet == {}


def test_only_the_missing_packages_are_installed_from_the_folder(tmp_path):
    for name in (
        "trl-1.16.0-py3-none-any.whl",
        "polars_runtime_32-2.1.0-cp311-abi3-manylinux_2_17_x86_64.whl",
        "dill-0.4.1-py3-none-any.whl",
    ):
        (tmp_path / name).write_bytes(b"")
    needed = {"trl": "1.16.0", "polars-runtime-32": "2.1.0", "dill": "0.4.1", "math-verify": "0.9.0"}
    installed = {"trl": None, "polars-runtime-32": None, "dill": "0.3.8", "math-verify": None}
    chosen, unavailable = gpu_check.wheels_to_install(needed, installed, tmp_path)
    assert [p.name for p in chosen] == ["polars_runtime_32-2.1.0-cp311-abi3-manylinux_2_17_x86_64.whl", "trl-1.16.0-py3-none-any.whl"]
    assert unavailable == ["math-verify"]
    assert gpu_check.wheels_to_install(needed, installed, tmp_path / "absent") == ([], ["math-verify", "polars-runtime-32", "trl"])


def test_a_path_past_its_time_limit_is_stopped_and_named(tmp_path):
    """A budget too small for anything: the first process is killed at its limit, every path is
    reported failed with the reason, and the check exits non-zero."""
    out = tmp_path / "out"
    cmd = [sys.executable, str(REPO / "benchmarks/gpu_check.py"), "--cpu", "--out", str(out), "--budget-s", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["prepare"]["error"] == "stopped at its time limit of 1 s"
    assert set(report["paths"]) == set(gpu_check.PATHS) and report["failed"] == list(gpu_check.PATHS)
    assert all(r["error"].startswith("not run: prepare failed: stopped at its time limit") for r in report["paths"].values())


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    cmd = [sys.executable, str(REPO / "benchmarks/gpu_check.py"), "--cpu", "--out", str(out), "--jobs", "2", "--budget-s", "900"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    return done, out


def test_the_cpu_dry_run_runs_every_path(dry_run):
    done, out = dry_run
    report = json.loads((out / "gpu_check.json").read_text())
    errors = {n: r.get("error") for n, r in report["paths"].items() if r["status"] != "ran"}
    assert errors == {} and done.returncode == 0, done.stderr[-3000:]
    assert list(report["paths"]) == list(gpu_check.PATHS)
    table = (out / "gpu_check.md").read_text()
    assert all(f"| {name} | ran |" in table for name in ("prepare", *gpu_check.PATHS))


def test_the_dry_run_figures(dry_run):
    _, out = dry_run
    report = json.loads((out / "gpu_check.json").read_text())
    f = {n: r["figures"] for n, r in report["paths"].items()}
    sizes = gpu_check.CPU

    # SFT: every row once at the recipe's batch 1 x 2 accumulation; no MFU without a GPU.
    assert f["sft"]["steps"] == sizes.sft_rows // 2 and f["sft"]["rows"] == sizes.sft_rows
    assert 0 < f["sft"]["longest_sequence"] <= sizes.sft_max_length and f["sft"]["tokens_per_s"] > 0
    assert f["sft"]["mfu"] is None and f["sft"]["settings"]["gradient_checkpointing"] is True
    # Resume: the re-run starts from the step it was killed at and ends where an unbroken run would.
    r = f["sft_resume"]
    assert r["resumed_from_step"] == r["killed_at_step"] >= 2 and r["steps"] == sizes.resume_steps
    # DPO's first step: the policy is the reference model, so the loss is -log sigmoid(0) = ln 2.
    assert f["dpo"]["steps"] == sizes.dpo_steps and math.isclose(f["dpo"]["losses"][0], math.log(2), rel_tol=1e-4)
    g = f["grpo"]
    assert g["steps"] == sizes.grpo_steps and [s["step"] for s in g["per_step"]] == list(range(1, sizes.grpo_steps + 1))
    assert g["rewards"]["accuracy"] == 1.0 and all(0 <= s["accuracy_mean"] <= 1 for s in g["per_step"])
    assert all(0 < s["completion_mean_length"] <= sizes.grpo_completion for s in g["per_step"])
    gen = f["generation"]
    assert gen["requests"] == sizes.gen_prompts and 0 < gen["completion_tokens"] <= sizes.gen_prompts * sizes.gen_tokens
    assert [b["budget"] for b in f["budget_forcing"]["budgets"]] == list(sizes.budgets)
    assert all(0 < b["max_thinking_tokens"] <= b["budget"] and b["items"] == sizes.bf_items for b in f["budget_forcing"]["budgets"])
    a = f["accelerate"]
    assert (a["accelerate_config"], a["distributed_type"], a["steps"], a["world_size"]) == (
        "configs/accelerate/cpu.yaml",
        "NO",
        sizes.accelerate_steps,
        1,
    )
