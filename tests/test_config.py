"""Tests for distillery.config: params.yaml validation, readable errors, stage config round-trip."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from distillery.config import (
    DedupeConfig,
    Params,
    SampleConfig,
    TinyModelsConfig,
    load_params,
    parse_stage_config,
    stage_config,
    unset_fields,
    validate_params,
)
from distillery.errors import ConfigError, DistilleryError

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"


@pytest.fixture(scope="module")
def raw_params() -> dict:
    return yaml.safe_load(PARAMS.read_text())


def write_modified(raw: dict, tmp_path: Path, mutate) -> Path:
    data = copy.deepcopy(raw)
    mutate(data)
    path = tmp_path / "bad_params.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def load_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_params(path)
    return str(info.value)


# --- the shipped params.yaml ------------------------------------------------------------------


def test_shipped_params_validate_and_set_every_key():
    params = load_params(PARAMS)
    assert isinstance(params, Params)
    assert unset_fields(params) == []
    # A few concrete values, so the file really was read.
    assert params.base.seed == 42
    assert params.generate.llm.backend == "transformers"
    assert set(params.base.benchmarks) == {"math500", "aime2024", "aime2025"}
    assert params.dedupe.benchmarks == ["math500", "aime2024", "aime2025"]


def test_unmodified_copy_round_trips(raw_params, tmp_path):
    path = write_modified(raw_params, tmp_path, lambda d: None)
    assert load_params(path) == load_params(PARAMS)


def test_unset_fields_reports_keys_left_to_defaults(raw_params):
    data = copy.deepcopy(raw_params)
    del data["verify"]["float_rounding"]
    del data["generate"]["sampling"]["top_p"]
    params = validate_params(data)
    assert sorted(unset_fields(params)) == ["generate.sampling.top_p", "verify.float_rounding"]


# --- invalid files: one readable message each ------------------------------------------------


def test_misspelt_key(raw_params, tmp_path):
    path = write_modified(raw_params, tmp_path, lambda d: d["judge"].__setitem__("temprature", 0.2))
    msg = load_error(path)
    assert "judge.temprature" in msg
    assert "unknown key" in msg
    assert str(path) in msg


def test_top_p_out_of_range(raw_params, tmp_path):
    path = write_modified(raw_params, tmp_path, lambda d: d["generate"]["sampling"].__setitem__("top_p", 2))
    msg = load_error(path)
    assert "generate.sampling.top_p" in msg
    assert "= 2" in msg
    assert "less than or equal to 1" in msg


def test_unknown_backend(raw_params, tmp_path):
    path = write_modified(raw_params, tmp_path, lambda d: d["generate"]["llm"].__setitem__("backend", "sglang"))
    msg = load_error(path)
    assert "generate.llm.backend" in msg
    assert "sglang" in msg
    for backend in ("transformers", "openai", "vllm"):
        assert backend in msg
    # Only the one wrong key is reported.
    assert msg.count("\n  - ") == 1


def test_prompt_template_without_problem_placeholder(raw_params, tmp_path):
    path = write_modified(raw_params, tmp_path, lambda d: d["generate"].__setitem__("prompt_template", "Solve this."))
    msg = load_error(path)
    assert "generate.prompt_template" in msg
    assert "{problem}" in msg


def test_prompt_template_with_problem_twice(raw_params, tmp_path):
    path = write_modified(raw_params, tmp_path, lambda d: d["evaluate"].__setitem__("prompt_template", "{problem} {problem}"))
    msg = load_error(path)
    assert "evaluate.prompt_template" in msg
    assert "found 2" in msg


def test_dedupe_benchmark_not_defined(raw_params, tmp_path):
    path = write_modified(raw_params, tmp_path, lambda d: d["dedupe"].__setitem__("benchmarks", ["gpqa"]))
    msg = load_error(path)
    assert "gpqa" in msg
    assert "dedupe.benchmarks" in msg


def test_evaluate_benchmark_not_defined(raw_params, tmp_path):
    path = write_modified(raw_params, tmp_path, lambda d: d["evaluate"]["benchmarks"].__setitem__("gpqa", {"n": 1, "limit": 2}))
    msg = load_error(path)
    assert "evaluate.benchmarks" in msg
    assert "gpqa" in msg


def test_missing_file(tmp_path):
    missing = tmp_path / "nowhere" / "params.yaml"
    msg = load_error(missing)
    assert str(missing) in msg
    assert "not found" in msg


def test_invalid_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("base:\n  seed: [1, 2\nsample: {\n")
    msg = load_error(path)
    assert "not valid YAML" in msg
    assert str(path) in msg


def test_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    msg = load_error(path)
    assert "mapping" in msg


def test_config_error_is_a_distillery_error():
    assert issubclass(ConfigError, DistilleryError)


# --- the CLI ---------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    exe = ROOT / ".venv" / "bin" / "distillery"
    cmd = [str(exe), *args] if exe.exists() else [sys.executable, "-m", "distillery", *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)


def test_cli_check_params_bad_file(raw_params, tmp_path):
    path = write_modified(raw_params, tmp_path, lambda d: d["judge"].__setitem__("temprature", 0.2))
    proc = _cli("check-params", str(path))
    assert proc.returncode == 2, proc.stderr
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out
    assert out.count("error:") == 1
    assert "judge.temprature" in out
    assert "unknown key" in out


def test_cli_check_params_good_file():
    proc = _cli("check-params", str(PARAMS))
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout


# --- tiny models -----------------------------------------------------------------------------


def test_tiny_models_reject_head_dim_16():
    with pytest.raises(ValidationError) as info:
        TinyModelsConfig(hidden_size=64, num_heads=4, num_kv_heads=2)
    assert "head_dim" in str(info.value)
    assert "16" in str(info.value)


def test_tiny_models_head_dim_16_in_params(raw_params, tmp_path):
    path = write_modified(raw_params, tmp_path, lambda d: d["models"]["tiny"].update(hidden_size=64, num_heads=4))
    msg = load_error(path)
    assert "models.tiny" in msg
    assert "head_dim" in msg


def test_tiny_models_accept_head_dim_32():
    cfg = TinyModelsConfig(hidden_size=128, num_heads=4, num_kv_heads=2)
    assert cfg.hidden_size // cfg.num_heads == 32


# --- stage config round-trip -----------------------------------------------------------------


def test_stage_config_round_trip():
    params = load_params(PARAMS)
    text = stage_config("sample", params.sample, seed=7)
    section, extras = parse_stage_config("sample", text)
    assert isinstance(section, SampleConfig)
    assert section == params.sample
    assert extras.model_dump() == {"seed": 7}


def test_stage_config_round_trip_dedupe_with_benchmark_files():
    params = load_params(PARAMS)
    files = {k: v.model_dump() for k, v in params.base.benchmarks.items()}
    text = stage_config("dedupe", params.dedupe, seed=42, benchmark_files=files)
    section, extras = parse_stage_config("dedupe", text)
    assert isinstance(section, DedupeConfig)
    assert section == params.dedupe
    assert extras.model_dump() == {"seed": 42, "benchmark_files": files}


def test_parse_stage_config_errors():
    with pytest.raises(ConfigError, match="not JSON"):
        parse_stage_config("sample", "{not json")
    with pytest.raises(ConfigError) as info:
        parse_stage_config("verify", '{"workers": 0, "timeout_s": 5, "float_rounding": 6, "wrap_gold": true}')
    assert "verify.workers" in str(info.value)


# --- no silent case: what YAML or pydantic would accept quietly ------------------------------


def test_a_missing_subsection_names_the_keys_and_their_defaults(raw_params, tmp_path):
    path = write_modified(raw_params, tmp_path, lambda d: d["generate"].pop("sampling"))
    msg = load_error(path)
    assert "leaves 1 key(s) to code defaults" in msg
    assert '- generate.sampling: {"temperature": 0.6, "top_p": 0.95, "max_new_tokens": 16384}' in msg


def test_a_boolean_is_not_a_number(raw_params, tmp_path):
    path = write_modified(raw_params, tmp_path, lambda d: d["sample"].__setitem__("n", True))
    msg = load_error(path)
    assert "sample.n = True" in msg and "integer" in msg


def test_a_key_given_twice_is_an_error(tmp_path):
    text = PARAMS.read_text()
    path = tmp_path / "twice.yaml"
    path.write_text(text + "\nsample:\n  source: data/other.jsonl\n")  # a second `sample:` block
    msg = load_error(path)
    assert "key 'sample' appears twice" in msg and "merge the two blocks" in msg
    proc = _cli("check-params", str(path))
    assert proc.returncode == 2 and "appears twice" in proc.stderr and "Traceback" not in proc.stderr


def test_a_misspelt_or_missing_extra_is_one_message_naming_stage_key_and_fix():
    params = load_params(PARAMS)
    files = {k: v.model_dump() for k, v in params.base.benchmarks.items()}
    # At the rule: the Snakefile stops while it is parsed.
    with pytest.raises(ConfigError) as info:
        stage_config("dedupe", params.dedupe, seed=42, benchmark_file=files)
    msg = str(info.value)
    assert "extras passed to stage dedupe" in msg and "benchmark_file: unknown key" in msg
    assert "benchmark_files: required key is missing" in msg and "it takes: benchmark_files, seed" in msg
    # At the stage's command line, the same check.
    good = json.loads(stage_config("dedupe", params.dedupe, seed=42, benchmark_files=files))
    bad = {**{k: v for k, v in good.items() if k != "benchmark_files"}, "benchmark_file": files}
    proc = _cli(
        "dedupe",
        "--config",
        json.dumps(bad),
        "--problems",
        "p",
        "--judged",
        "j",
        "--kept",
        "k",
        "--rejected",
        "r",
        "--contamination",
        "c",
        "--near-duplicates",
        "n",
        "--metrics",
        "m",
    )
    assert proc.returncode == 2 and proc.stderr.count("error:") == 1 and "benchmark_file: unknown key" in proc.stderr
    assert "Traceback" not in proc.stderr
    with pytest.raises(ConfigError, match=r"extras passed to stage sample .*\n  - seed: required key is missing"):
        parse_stage_config("sample", stage_config("sample", params.sample, seed=1).replace('"seed":1', '"sed":1'))


def test_a_benchmark_without_a_file_is_named():
    params = load_params(PARAMS)
    files = {k: v.model_dump() for k, v in params.base.benchmarks.items() if k != "aime2025"}
    with pytest.raises(ConfigError, match=r"stage evaluate: evaluate.benchmarks names \['aime2025'\] but benchmark_files has no entry"):
        stage_config("evaluate", params.evaluate, seed=1, benchmark_files=files)


# --- silent and misleading cases: each a one-line message at config time --------------------------


def test_unknown_placeholder_in_the_generate_prompt_is_rejected(raw_params, tmp_path):
    path = write_modified(raw_params, tmp_path, lambda d: d["generate"].__setitem__("prompt_template", "Solve {problem} in {lang}."))
    msg = load_error(path)
    assert "generate.prompt_template = 'Solve {problem} in {lang}.': has the placeholder(s) {lang}, which nothing fills" in msg
    assert "the placeholders are {problem}" in msg


def test_latex_braces_in_a_prompt_are_not_placeholders(raw_params, tmp_path):
    template = "Solve {problem}; write \\boxed{answer}, \\frac{a}{b} or x^{n} and x_{i}."
    path = write_modified(raw_params, tmp_path, lambda d: d["generate"].__setitem__("prompt_template", template))
    assert load_params(path).generate.prompt_template == template


def test_unknown_placeholder_in_the_multiple_choice_prompt_is_rejected(raw_params, tmp_path):
    path = write_modified(
        raw_params, tmp_path, lambda d: d["evaluate"].__setitem__("multiple_choice_template", "{problem} {choices} {letter}")
    )
    msg = load_error(path)
    assert "evaluate.multiple_choice_template" in msg and "{letter}, which nothing fills" in msg


def test_unknown_placeholder_in_the_judge_prompt_file_is_rejected_at_config_time(raw_params, tmp_path):
    prompt = tmp_path / "judge.txt"
    prompt.write_text("Problem: {problem}\nGold: {reference_answer}\nAnswer: {candidate_answer}\nRubric: {foo}\n")
    path = write_modified(raw_params, tmp_path, lambda d: d["judge"].__setitem__("prompt_template", str(prompt)))
    msg = load_error(path)
    assert f"judge.prompt_template {prompt} has the placeholder(s) {{foo}}, which nothing fills" in msg


def test_every_grpo_reward_weight_zero_is_rejected(raw_params, tmp_path):
    def all_zero(d):
        for reward in d["grpo"]["rewards"].values():
            reward["weight"] = 0

    msg = load_error(write_modified(raw_params, tmp_path, all_zero))
    assert "grpo.rewards = {...}: every reward weight is 0 or null" in msg
    assert "the summed reward is always 0.0" in msg and "give at least one reward a non-zero weight" in msg


def test_zero_and_null_reward_weights_are_rejected_and_one_nonzero_is_enough(raw_params, tmp_path):
    def zero_and_null(d):
        for reward in d["grpo"]["rewards"].values():
            reward["weight"] = None
        d["grpo"]["rewards"]["format"]["weight"] = 0.0

    assert "every reward weight is 0 or null (format: 0.0)" in load_error(write_modified(raw_params, tmp_path, zero_and_null))

    def one_on(d):
        zero_and_null(d)
        d["grpo"]["rewards"]["accuracy"]["weight"] = 0.5

    assert load_params(write_modified(raw_params, tmp_path, one_on)).grpo.rewards.accuracy.weight == 0.5


@pytest.mark.parametrize("stage", ["sft", "difficulty"])
def test_an_empty_splits_list_says_so(raw_params, tmp_path, stage):
    msg = load_error(write_modified(raw_params, tmp_path, lambda d: d[stage].__setitem__("splits", [])))
    assert f"{stage}.splits = []: is empty, so there is nothing to train on" in msg
    assert "rejected" not in msg


@pytest.mark.parametrize("key", ["sample.source", "base.benchmarks.math500.path"])
def test_a_csv_source_is_an_unsupported_format_not_a_hub_id(raw_params, tmp_path, key):
    def to_csv(d):
        *parents, last = key.split(".")
        node = d
        for p in parents:
            node = node[p]
        node[last] = "data/my_source.csv"

    msg = load_error(write_modified(raw_params, tmp_path, to_csv))
    assert f"{key} = 'data/my_source.csv': is a .csv file, which is not a supported format" in msg
    assert ".jsonl, .json or .parquet" in msg and "hub id with no pinned revision" not in msg


def test_a_misspelt_dpo_loss_type_is_rejected_at_config_time_with_trls_own_list(raw_params, tmp_path):
    import dataclasses
    import re

    from trl import DPOConfig as TRLDPOConfig

    msg = load_error(write_modified(raw_params, tmp_path, lambda d: d["dpo"].__setitem__("loss_type", "sigmiod")))
    assert "dpo.loss_type = 'sigmiod': 'sigmiod' is not a loss_type of the installed TRL" in msg
    # The list is the installed TRL's own (its help text, read here through the imported class).
    help_text = next(f for f in dataclasses.fields(TRLDPOConfig) if f.name == "loss_type").metadata["help"]
    listed = re.findall(r"`'(\w+)'`", help_text)
    assert "sigmoid" in listed and "ipo" in listed
    assert f"lists: {', '.join(listed)})" in msg
    assert load_params(write_modified(raw_params, tmp_path, lambda d: d["dpo"].__setitem__("loss_type", "ipo"))).dpo.loss_type == "ipo"


def test_a_misspelt_grpo_loss_type_is_rejected_at_config_time(raw_params, tmp_path):
    msg = load_error(write_modified(raw_params, tmp_path, lambda d: d["grpo"].__setitem__("loss_type", "dr-grpo")))
    assert "grpo.loss_type = 'dr-grpo': 'dr-grpo' is not a loss_type of the installed TRL" in msg and "dr_grpo" in msg


def test_a_list_as_params_file_is_our_own_message(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("- base\n- sample\n")
    r = subprocess.run([sys.executable, "-m", "distillery", "check-params", str(path)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip() == f"distillery check-params: error: {path} must be a mapping of sections (base, sample, ...), got list"


def test_each_stage_config_module_names_the_model_params_uses():
    # provenance finds a stage's execution-only keys through distillery.config.<stage>.MODEL;
    # params.STAGE_MODELS (the CLI's parse_stage_config) must mean the same model.
    import importlib

    from distillery.config import STAGE_MODELS

    for stage, model in STAGE_MODELS.items():
        assert importlib.import_module(f"distillery.config.{stage}").MODEL is model, stage
    assert set(STAGE_MODELS) == set(Params.model_fields) - {"base"}
