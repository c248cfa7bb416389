"""The opt-in lighteval stage: its rendered command, its place outside the default DAG and DVC, and
the message when lighteval is not installed (it lives in its own environment, never in CI's)."""

import re
import subprocess
import sys

import yaml

from distillery.config import LightevalConfig, load_params, stage_config
from distillery.stages import lighteval

from conftest import REPO, run_env


def test_command_renders_the_recipe_protocol(tmp_path):
    cfg = load_params(REPO / "recipes/openr1-math-220k.yaml").lighteval
    argv = lighteval.command(cfg, tmp_path / "run", executable="lv")
    assert argv[:2] == ["lv", "vllm"]
    assert argv[2] == (
        "model_name=data/sft/model,dtype=bfloat16,max_model_length=32768,gpu_memory_utilization=0.8,"
        "tensor_parallel_size=1,generation_parameters={max_new_tokens:32768,temperature:0.6,top_p:0.95}"
    )
    assert argv[3] == "lighteval|math_500|0,lighteval|aime24|0,lighteval|aime25|0,lighteval|gpqa:diamond|0"
    assert argv[4:] == ["--output-dir", str(tmp_path / "run")]
    smoke = LightevalConfig(max_samples=5)
    assert lighteval.command(smoke, tmp_path, "lv")[-2:] == ["--max-samples", "5"]


def test_it_is_opt_in():
    snakefile = (REPO / "Snakefile").read_text()
    all_inputs = re.search(r"rule all:\n    input:\n((?:        .*\n)+)", snakefile).group(1)
    assert "lighteval" not in all_inputs
    assert "lighteval" not in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert "lighteval" not in (REPO / "pyproject.toml").read_text()  # never a dependency of the main environment
    assert "lighteval[vllm,math]==0.13.0" in (REPO / "envs/lighteval.yaml").read_text()


def test_without_lighteval_installed_the_error_names_the_fix(tmp_path):
    env = {k: v for k, v in run_env().items() if k != "DISTILLERY_LIGHTEVAL"}
    env["PATH"] = str(tmp_path)  # no lighteval anywhere on it
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "distillery",
            "lighteval",
            "--config",
            stage_config("lighteval", LightevalConfig(), seed=42),  # as the rule passes it
            "--work-dir",
            str(tmp_path / "w"),
            "--results",
            str(tmp_path / "r.json"),
            "--metrics",
            str(tmp_path / "m.json"),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "its own environment" in r.stderr and "Traceback" not in r.stderr
