"""Every key of params.yaml, changed to another valid value, makes DVC re-run exactly the stages that
read it, and never answers one of them from its run cache with the outputs of the old value.

"The stages that read it" come from Snakemake, not from dvc.yaml: the jobs whose params (the JSON a
stage receives) or input files change when the key changes, over the whole DAG. What DVC does comes
from DVC's own code (tests/support/dvc_params_probe.py): the params values it compares with
dvc.lock, and its run-cache key. A key DVC leaves out of that key (a param named `size`,
treeverse/dvc#10296) or a stage that lists a section it does not read fails here, key by key.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from distillery.config import Params
from distillery.workflow import render

from conftest import REPO, copy_repo

DVC_PYTHON = REPO / ".venv-dvc/bin/python"
PROBE = REPO / "tests/support/dvc_params_probe.py"
WHOLE_FILE_STAGES = {"check_params"}  # tracks every key by design: it validates the whole file
# Keys no single change of which is valid: each needs another key changed with it.
CHANGED_ONLY_WITH_ANOTHER = {
    "base.benchmarks.*.kind": "multiple_choice needs the benchmark's incorrect_fields",
    "models.build_tiny": "false needs every model setting moved off data/models/",
    "*.llm.serve.engine": "a server the job starts needs llm.backend: openai",
    "*.llm.backend": "a server the job starts (llm.serve) needs llm.backend: openai",
    "ingest.corpora": "a corpus is a whole entry; params.yaml names two, whose keys are walked",
    "mix.own": "mix applies only when ingest.corpora names a corpus (walked in params.yaml)",
    "mix.caps": "mix applies only when ingest.corpora names a corpus (walked in params.yaml)",
}
# Values to try first, by the key's last part: a file an unset key may name, TRL's loss names (checked
# against the installed TRL, so no pattern of ours finds them).
VALUES_TO_TRY = {
    "accelerate_config": ["configs/accelerate/cpu.yaml"],
    "loss_type": ["hinge", "ipo", "grpo", "dr_grpo", "sigmoid"],
    "splits": [["default", "extended"], ["extended"], ["default"]],
    "num_ignore_by_budget": [[1] * n for n in range(1, 9)],  # one count per budget
}
# The recipe's GPQA-diamond is a site's own file (its authors ask that it not be republished).
SITE_FILES = {
    "data/inputs/gpqa_diamond.jsonl": {
        "Question": "q",
        "Correct Answer": "a",
        "Incorrect Answer 1": "b",
        "Incorrect Answer 2": "c",
        "Incorrect Answer 3": "d",
    }
}
COPY_PREFIX = "copy_of_"  # another file of the same contents, beside a file the params name


def leaves(raw: dict, prefix: tuple = ()) -> list[tuple]:
    """Dotted paths of every value that is not a non-empty mapping (lists and {} are one value)."""
    found = []
    for key, value in raw.items():
        path = (*prefix, key)
        if isinstance(value, dict) and value:
            found += leaves(value, path)
        else:
            found.append(path)
    return found


def get(raw: dict, path: tuple):
    for part in path:
        raw = raw[part]
    return raw


def with_value(raw: dict, path: tuple, value) -> dict:
    data = copy.deepcopy(raw)
    parent = get(data, path[:-1])
    parent[path[-1]] = value
    return data


def other_file(value: str) -> list[str]:
    """For a file the params name (a source, benchmark, prompt), a copy beside it (made by walk)."""
    path = Path(value)
    return [str(path.parent / f"{COPY_PREFIX}{path.name}")] if (REPO / value).is_file() else []


def candidates(path: tuple, value) -> list:
    """Other values of the same type to try, most ordinary first."""
    first = [v for v in VALUES_TO_TRY.get(path[-1], []) if v != value]
    return first + [v for v in ordinary_candidates(value) if v not in first]


def ordinary_candidates(value) -> list:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1, value * 2, value // 2, 1, 0]
    if isinstance(value, float):
        return [round(value * 0.5, 6), round(value + 0.1, 6), value + 1.0, 0.5, 1.0, 0.0]
    if isinstance(value, str):
        return [*other_file(value), value + "x", value.upper(), "x"]
    if isinstance(value, list):
        texts = [f"{v}x" for v in value if isinstance(v, str)]
        return [value[:-1], value[:1], texts, value + value] if value else [["x"], [1], ["--x"]]
    if isinstance(value, dict):
        return [{"x": 1}]
    return [1, 0.5, "x", True, [1]]  # None: whichever type the key takes


def literal_choices(exc: ValidationError, path: tuple) -> list:
    """The allowed values a Literal key's error lists ("Input should be 'a' or 'b'")."""
    for err in exc.errors(include_url=False):
        if tuple(str(p) for p in err["loc"]) == tuple(str(p) for p in path) and "expected" in (err.get("ctx") or {}):
            return re.findall(r"'([^']*)'", err["ctx"]["expected"])
    return []


def valid(raw: dict) -> bool:
    try:
        Params.model_validate(raw)
    except ValidationError:
        return False
    return True


def mutation(raw: dict, path: tuple, builds_dag) -> dict | None:
    """`raw` with the key at `path` set to another value that validates and plans (None if none)."""
    value = get(raw, path)
    tried = candidates(path, value)
    first = with_value(raw, path, tried[0]) if tried else None
    if first is not None:
        try:
            Params.model_validate(first)
        except ValidationError as exc:
            tried += [c for c in literal_choices(exc, path) if c != value]
    for candidate in tried:
        if candidate == value:
            continue
        changed = with_value(raw, path, candidate)
        if valid(changed) and builds_dag(changed):
            return changed
    return None


class SnakemakeJobs:
    """What each stage's jobs receive, read from Snakemake's own DAG for a params file."""

    def __init__(self, repo: Path):
        self.repo = repo
        self.last: dict[str, frozenset] | None = None

    def __call__(self, raw: dict) -> dict[str, frozenset] | None:
        from snakemake.api import SnakemakeApi
        from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, Quietness, ResourceSettings

        (self.repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        jobs: dict[str, set] = {}
        try:
            with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
                workflow_api = api.workflow(
                    resource_settings=ResourceSettings(cores=1),
                    config_settings=ConfigSettings(),
                    snakefile=self.repo / "Snakefile",
                    workdir=self.repo,
                )
                workflow_api.dag(dag_settings=DAGSettings(forceall=True))
                workflow = workflow_api._workflow
                workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True)
                workflow._build_dag()
                for job in workflow.dag.jobs:
                    stage = Path(job.rule.snakefile).stem
                    if stage == "Snakefile":
                        continue
                    if "round" in job.wildcards.keys():  # a later round's rules: their own DVC stage (generate_round_2)
                        stage = f"{stage}_round_{job.wildcards.round}"
                    params = json.dumps(dict(job.params.items()), sort_keys=True, default=str)
                    jobs.setdefault(stage, set()).add((job.rule.name, str(job.wildcards), params, tuple(sorted(map(str, job.input)))))
        except (Exception, SystemExit):
            self.last = None
            return None
        self.last = {stage: frozenset(j) for stage, j in jobs.items()}
        return self.last


def dvc_views(repo: Path, versions: list[dict]) -> list[dict]:
    job = {
        "repo": str(repo),
        "versions": [{"params": yaml.safe_dump(v, sort_keys=False), "dvc_yaml": render(Params.model_validate(v))} for v in versions],
    }
    r = subprocess.run([str(DVC_PYTHON), str(PROBE)], input=json.dumps(job), capture_output=True, text=True, cwd=repo, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


def walked(raw: dict, params_file: Path) -> list[tuple]:
    """The keys walked: every key of params.yaml; of another file (the recipe), those whose value is not
    params.yaml's, where the walk of params.yaml has been (a third of the recipe's keys, a third of the
    time: the whole walk of both files cost 13 min of a CI run of 90 at most)."""
    if params_file == REPO / "params.yaml":
        return leaves(raw)
    default = yaml.safe_load((REPO / "params.yaml").read_text())

    def value_in_default(path):
        try:
            return get(default, path)
        except (KeyError, TypeError):
            return KeyError  # not a key of params.yaml

    return [path for path in leaves(raw) if value_in_default(path) != get(raw, path)]


def walk(params_file: Path, tmp_path: Path) -> tuple[list[str], dict[str, list[str]], list[str]]:
    """(keys walked, stages DVC re-runs per key, problems found)."""
    repo = copy_repo(tmp_path / "repo")
    os.chdir(repo)  # params name files relative to the repository, as Snakemake and DVC read them
    for site_file, row in SITE_FILES.items():
        (repo / site_file).parent.mkdir(parents=True, exist_ok=True)
        (repo / site_file).write_text(json.dumps(row) + "\n")
    raw = yaml.safe_load(params_file.read_text())
    for path in leaves(raw):
        for copy_path in other_file(value) if isinstance(value := get(raw, path), str) else []:
            shutil.copy2(repo / value, repo / copy_path)
    jobs_of = SnakemakeJobs(repo)
    base_jobs = jobs_of(raw)
    assert base_jobs is not None, f"{params_file} does not plan"
    keys, versions, job_views, problems = [], [raw], [base_jobs], []
    for path in walked(raw, params_file):
        changed = mutation(raw, path, lambda r: jobs_of(r) is not None)
        key = ".".join(map(str, path))
        if changed is None:
            if not any(fnmatch.fnmatch(key, pattern) for pattern in CHANGED_ONLY_WITH_ANOTHER):
                problems.append(f"{key}: no other valid value found to try")
            continue
        keys.append(key)
        versions.append(changed)
        job_views.append(jobs_of.last)  # the plan of the value mutation() settled on
    views = dvc_views(repo, versions)
    base_view = views[0]
    reran: dict[str, list[str]] = {}
    for key, jobs, view in zip(keys, job_views[1:], views[1:]):
        stages = set(base_view) | set(view)
        # A stage reads the key when its jobs change, or when the key decides whether it exists.
        exists = {s for s in stages if (s in base_view) != (s in view)}
        readers = {s for s in stages if base_jobs.get(s) != jobs.get(s)} | exists | (WHOLE_FILE_STAGES & stages)
        named = {s for s in stages if s not in base_view or s not in view or base_view[s]["params"] != view[s]["params"]}
        reran[key] = sorted(named)
        if named != readers:
            problems.append(
                f"{key}: dvc status would name {sorted(named)}, the stages that read it are {sorted(readers)} "
                f"(missing: {sorted(readers - named)}, extra: {sorted(named - readers)})"
            )
        for stage in sorted(named & set(base_view) & set(view)):
            if base_view[stage]["run_cache_key"] == view[stage]["run_cache_key"]:
                problems.append(f"{key}: DVC's run cache would restore {stage}'s outputs of the old value (same run-cache key)")
    return keys, reran, problems


@pytest.mark.parametrize("params_file", ["params.yaml", "recipes/openr1-math-220k.yaml"])
def test_every_key_reruns_exactly_the_stages_that_read_it(params_file, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    keys, reran, problems = walk(REPO / params_file, tmp_path)
    assert not problems, "\n".join(problems)
    assert len(keys) > (300 if params_file == "params.yaml" else 100)  # every leaf walked (the recipe's own values)
    assert all(stages for stages in reran.values())  # and each is read by some stage
    (tmp_path / "walk.json").write_text(json.dumps(reran, indent=1))
