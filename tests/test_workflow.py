"""distillery.workflow: the files params.yaml names are inputs of exactly the stages that read them,
and dvc.yaml is generated from the same answer (and is current)."""

from __future__ import annotations

import copy

import pytest
import yaml

from distillery.code_identity import code_hash, relative_code_files
from distillery.config import load_params, validate_params
from distillery.errors import ConfigError
from distillery.workflow import dvc_stages, named_inputs, render, unpinned_hub_ids

from conftest import REPO, sh


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def with_changes(raw: dict, change) -> object:
    data = copy.deepcopy(raw)
    change(data)
    return validate_params(data)


def deps_of(params) -> dict[str, list[str]]:
    return {name: spec["deps"] for name, spec in dvc_stages(params).items()}


def test_committed_dvc_yaml_is_the_generated_one():
    r = sh(["distillery", "dvc-yaml", "--check"], REPO)
    assert r.returncode == 0, r.stderr
    assert (REPO / "dvc.yaml").read_text() == render(load_params(REPO / "params.yaml"))


def test_a_users_source_and_benchmark_are_deps_of_exactly_the_stages_that_read_them(raw):
    def change(d):
        d["sample"]["source"] = "data/my_source.jsonl"
        d["base"]["benchmarks"]["gpqa"] = {**d["base"]["benchmarks"]["math500"], "path": "/scratch/gpqa_diamond.parquet"}
        d["dedupe"]["benchmarks"] = ["math500", "gpqa"]
        d["judge"]["prompt_template"] = "prompts/my_judge.txt"

    deps = deps_of(with_changes(raw, change))
    holders = {
        f: sorted(s for s, d in deps.items() if f in d)
        for f in (
            "data/my_source.jsonl",
            "/scratch/gpqa_diamond.parquet",
            "prompts/my_judge.txt",
            "data/bundled/numina_sample.jsonl",
            "data/bundled/benchmarks/aime2024.jsonl",
        )
    }
    assert holders == {
        "data/my_source.jsonl": ["sample"],
        "/scratch/gpqa_diamond.parquet": ["dedupe"],  # evaluate does not use it
        "prompts/my_judge.txt": ["judge", "models"],  # the tiny judge is trained on the template too
        "data/bundled/numina_sample.jsonl": ["models"],  # the tiny models' corpus, no longer the sample's
        "data/bundled/benchmarks/aime2024.jsonl": ["evaluate"],  # dedupe no longer checks against it
    }


def test_hub_ids_are_tracked_by_revision_and_unpinned_ones_are_named(raw):
    def change(d):
        d["sample"]["source"] = "AI-MO/NuminaMath-1.5"
        d["generate"]["llm"]["model"] = "deepseek-ai/DeepSeek-R1"
        d["generate"]["llm"]["revision"] = "56d4cbbb4d29f4355bab4b9a39ccb717a14ad5ad"

    params = with_changes(raw, change)
    assert named_inputs(params, "sample") == {} and named_inputs(params, "generate") == {}
    [warning] = unpinned_hub_ids(params)
    assert warning.startswith("sample.source = 'AI-MO/NuminaMath-1.5' is a hub id with no pinned revision: set sample.revision")
    assert "sample" in dvc_stages(params)["sample"]["params"]  # the revision is a param: DVC sees it change


def test_without_tiny_models_no_stage_depends_on_them_and_naming_one_is_an_error(raw):
    def real_models(d):
        d["models"]["build_tiny"] = False
        d["generate"]["llm"]["model"] = d["judge"]["llm"]["model"] = "Qwen/Qwen2.5-0.5B-Instruct"
        d["sft"]["model"] = "/scratch/models/qwen-7b"

    stages = dvc_stages(with_changes(raw, real_models))
    assert "models" not in stages and not any("data/models" in s["deps"] for s in stages.values())
    assert "/scratch/models/qwen-7b" in stages["sft"]["deps"]  # a local model directory is tracked
    with pytest.raises(ConfigError, match=r"generate.llm.model = 'data/models/teacher' is made by the models stage"):
        with_changes(raw, lambda d: d["models"].__setitem__("build_tiny", False))


def test_code_deps_are_what_the_code_hash_covers():
    stages = dvc_stages(load_params(REPO / "params.yaml"))
    for name, spec in stages.items():
        assert set(relative_code_files(name)) <= set(spec["deps"]), name
    assert "src/distillery/stages/verify.py" not in relative_code_files("sample")
    assert code_hash("sample") != code_hash("verify") and len(code_hash("sample")) == 12


def test_under_dvc_a_stale_dvc_yaml_is_regenerated_and_the_run_stops(repo_copy):
    params = (repo_copy / "params.yaml").read_text().replace("source: data/bundled/numina_sample.jsonl", "source: data/my_source.jsonl")
    (repo_copy / "params.yaml").write_text(params)
    (repo_copy / "data/my_source.jsonl").write_text((REPO / "data/bundled/numina_sample.jsonl").read_text())
    plain = sh(["snakemake", "-n", "data/sample/problems.parquet"], repo_copy)
    assert plain.returncode == 0 and "dvc.yaml does not match params.yaml" in plain.stderr
    r = sh(["dvc", "repro", "sample"], repo_copy)
    assert r.returncode != 0
    assert "dvc.yaml has been regenerated from it" in r.stdout + r.stderr and "run `dvc repro` again" in r.stdout + r.stderr
    assert "data/my_source.jsonl" in yaml.safe_load((repo_copy / "dvc.yaml").read_text())["stages"]["sample"]["deps"]
    again = sh(["dvc", "repro", "sample"], repo_copy)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]


def test_a_failing_stage_shows_its_own_message_on_the_dvc_console(repo_copy):
    params = (
        (repo_copy / "params.yaml")
        .read_text()
        .replace(
            "  include: {question_type: [], problem_type: [], source: []}",
            "  include: {question_type: [], problem_type: [], source: [nowhere]}",
        )
    )
    (repo_copy / "params.yaml").write_text(params)
    r = sh(["dvc", "repro", "sample"], repo_copy)
    assert r.returncode != 0
    # --show-failed-logs: the stage's one-line message, not only "check log file(s)".
    assert "distillery sample: error: sample: no problem of 84 rows" in r.stdout + r.stderr
    assert "loosen sample.include/exclude" in r.stdout + r.stderr
    # Snakemake's part of the console ends with the stage's own line and its log path, after the job
    # dump; only DVC's own closing line comes after it.
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    own = next(i for i in range(len(lines) - 1, -1, -1) if lines[i].startswith("distillery sample: error:"))
    assert lines[own].endswith("loosen sample.include/exclude or fix the input (log: logs/sample/sample.log)"), lines[own]
    assert all(line.startswith("ERROR: failed to reproduce 'sample'") for line in lines[own + 1 :]), lines[own:]


def test_a_stages_warnings_are_on_the_console_after_a_successful_run(repo_copy):
    params = (repo_copy / "params.yaml").read_text()
    assert "\n  n: null\n" in params
    (repo_copy / "params.yaml").write_text(params.replace("\n  n: null\n", "\n  n: 1000\n", 1))
    r = sh(["snakemake", "--cores", "1", "--nolock", "--allowed-rules", "sample", "--", "data/sample/problems.parquet"], repo_copy)
    assert r.returncode == 0, r.stderr[-3000:]
    last = [line for line in r.stderr.splitlines() if line.strip()][-1]
    assert last == (
        "distillery: warning: sample: sample.n = 1000 but only 75 of the 84 rows in data/bundled/numina_sample.jsonl pass "
        "the filters, so 75 problems are kept (metrics/sample.json: eligible); lower sample.n or loosen the filters to "
        "silence this (log: logs/sample/sample.log)"
    )
