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
    """check_params depends on every module file a stage runs, whole; each other stage on its own
    code record (which check_params writes) and on no module file, so DVC re-runs a stage when its
    code_hash changes and not for a comment."""
    stages = dvc_stages(load_params(REPO / "params.yaml"))
    checked = stages.pop("check_params")
    records = [next(iter(o)) for o in checked["outs"]][1:]
    # A later round's stages (generate_round_2, ...) run their stage's code, under its record.
    own = [name for name in stages if "_round_" not in name]
    assert records == [f"data/check_params/code/{name}.txt" for name in own]
    for name, spec in stages.items():
        stage = name.split("_round_")[0]
        assert set(relative_code_files(stage)) <= set(checked["deps"]), name
        assert f"data/check_params/code/{stage}.txt" in spec["deps"], name
        assert not [d for d in spec["deps"] if d.startswith("src/")], name
    assert "src/distillery/stages/verify.py" not in relative_code_files("sample")
    assert "src/distillery/sft_launch.py" in relative_code_files("dpo")  # the launcher the CLI runs it under
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


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "neither git nor DVC" in line]


SOURCE_WARNING = (
    "sample.source names data/my_source.jsonl, which neither git nor DVC versions: no commit can bring this version back; "
    "version it with `dvc add data/my_source.jsonl` (then commit data/my_source.jsonl.dvc)"
)
PROMPT_WARNING = (
    "judge.prompt_template names prompts/my_judge.txt, which neither git nor DVC versions: no commit can bring this version "
    "back; version it with `git add prompts/my_judge.txt` (then commit)"
)


def test_a_named_file_no_commit_can_bring_back_is_warned_with_the_command_that_versions_it(repo_copy):
    """The README's flow in a real git + DVC repository: a source under data/ (git-ignored, so DVC's
    to version) and a judge prompt git could hold; each is named with its command until it is versioned,
    by check-params, dvc-yaml and Snakemake, and under `dvc repro` by the stage that reads it only."""
    params = (repo_copy / "params.yaml").read_text()
    params = params.replace("source: data/bundled/numina_sample.jsonl", "source: data/my_source.jsonl")
    params = params.replace("prompt_template: prompts/judge.txt", "prompt_template: prompts/my_judge.txt")
    (repo_copy / "params.yaml").write_text(params)
    (repo_copy / "data/my_source.jsonl").write_text((REPO / "data/bundled/numina_sample.jsonl").read_text())
    (repo_copy / "prompts/my_judge.txt").write_text((REPO / "prompts/judge.txt").read_text())

    check = sh(["distillery", "check-params"], repo_copy)
    assert check.returncode == 0 and _warnings(check.stderr) == [f"warning: {SOURCE_WARNING}", f"warning: {PROMPT_WARNING}"]
    dvc_yaml = sh(["distillery", "dvc-yaml"], repo_copy)
    assert dvc_yaml.returncode == 0 and _warnings(dvc_yaml.stderr) == [f"warning: {SOURCE_WARNING}", f"warning: {PROMPT_WARNING}"]
    plain = sh(["snakemake", "-n", "data/sample/problems.parquet"], repo_copy)
    assert plain.returncode == 0 and _warnings(plain.stderr) == [
        f"distillery: warning: {SOURCE_WARNING}",
        f"distillery: warning: {PROMPT_WARNING}",
    ]
    repro = sh(["dvc", "repro", "sample"], repo_copy)
    assert repro.returncode == 0, repro.stdout[-2000:] + repro.stderr[-2000:]
    assert _warnings(repro.stdout + repro.stderr) == [f"distillery: warning: {SOURCE_WARNING}"]  # sample's file only

    added = sh(["dvc", "add", "data/my_source.jsonl"], repo_copy)
    assert added.returncode == 0, added.stdout + added.stderr
    assert sh(["git", "add", "prompts/my_judge.txt", "data/my_source.jsonl.dvc"], repo_copy).returncode == 0
    versioned = sh(["distillery", "check-params"], repo_copy)
    assert versioned.returncode == 0 and _warnings(versioned.stderr) == [], versioned.stderr


def test_a_named_file_outside_the_repository_is_warned(raw, tmp_path, monkeypatch):
    from distillery.workflow import unversioned_inputs

    repo, outside = tmp_path / "repo", tmp_path / "elsewhere.jsonl"
    repo.mkdir()
    assert sh(["git", "init", "-q"], repo).returncode == 0
    outside.write_text((REPO / "data/bundled/numina_sample.jsonl").read_text())
    params = with_changes(raw, lambda d: d["sample"].__setitem__("source", str(outside)))
    assert unversioned_inputs(params, ["sample"], root=repo) == [
        f"sample.source names {outside}, outside this repository: neither git nor DVC versions it, so no commit can bring "
        "this version back; copy it into the repository and `dvc add` it there"
    ]
    assert unversioned_inputs(params, ["sample"], root=tmp_path / "nowhere") == []  # not a repository: nothing to say


def test_a_file_in_an_ignored_folder_is_versioned_by_adding_the_folder(raw, tmp_path):
    """data/mine/x.jsonl.dvc would be git-ignored (all of data/mine is), so DVC's record must be data/mine.dvc."""
    from distillery.workflow import unversioned_inputs

    repo = tmp_path / "repo"
    (repo / "data/mine").mkdir(parents=True)
    assert sh(["git", "init", "-q"], repo).returncode == 0
    (repo / ".gitignore").write_text((REPO / ".gitignore").read_text())
    (repo / "data/mine/x.jsonl").write_text((REPO / "data/bundled/numina_sample.jsonl").read_text())
    params = with_changes(raw, lambda d: d["sample"].__setitem__("source", "data/mine/x.jsonl"))
    assert unversioned_inputs(params, ["sample"], root=repo) == [
        "sample.source names data/mine/x.jsonl, which neither git nor DVC versions: no commit can bring this version back; "
        "version it with `dvc add data/mine` (then commit data/mine.dvc)"
    ]
    (repo / "data/mine.dvc").write_text("outs:\n- path: mine\n")  # what `dvc add data/mine` leaves
    assert unversioned_inputs(params, ["sample"], root=repo) == []
