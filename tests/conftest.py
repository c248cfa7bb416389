"""Shared fixtures: tiny local models built by the models stage itself, and throwaway copies of the
repository for end-to-end runs (real git, real DVC, real Snakemake)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# The benchmark files the project keeps (nothing outside the repository is read: a clone stands alone).
BUNDLED_BENCHMARKS = REPO / "data" / "bundled" / "benchmarks"
BIN = Path(sys.executable).parent  # the venv's bin: distillery, snakemake, dvc

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")  # as the CLI pins it (distillery.cli.CPU_KERNELS)


def run_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    env.pop("SNAKEMAKE_PROFILE", None)
    return env


@pytest.fixture(autouse=True)
def _own_journal(tmp_path, monkeypatch):
    """Each test gets its own request journal, so no test reuses another's generations."""
    monkeypatch.setenv("DISTILLERY_JOURNAL_DIR", str(tmp_path / "journal"))


@pytest.fixture(scope="session")
def bundled_problems(tmp_path_factory) -> Path:
    """The sample stage's output on the bundled file."""
    from distillery.config import SampleConfig
    from distillery.stages import sample

    out = tmp_path_factory.mktemp("sample")
    cfg = SampleConfig.model_validate({"source": str(REPO / "data/bundled/numina_sample.jsonl"), "exclude": {"question_type": ["proof"]}})
    sample.run(cfg, 42, sample.Paths(problems=out / "problems.parquet", rejected=out / "rejected.parquet", metrics=out / "metrics.json"))
    return out / "problems.parquet"


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, bundled_problems) -> Path:
    """teacher/judge/student_base built by the models stage (briefly trained, 512 positions)."""
    from distillery.config import GenerateConfig, ModelsConfig
    from distillery.stages import models

    out = tmp_path_factory.mktemp("models") / "models"
    cfg = ModelsConfig.model_validate({"tiny": {"teacher_epochs": 3, "judge_epochs": 1, "max_position_embeddings": 512}})
    template = GenerateConfig.model_fields["prompt_template"].default
    models.run(
        cfg,
        42,
        template,
        models.Paths(corpus=bundled_problems, judge_template=REPO / "prompts/judge.txt", models=out, metrics=out.parent / "metrics.json"),
    )
    return out


def copy_repo(dest: Path) -> Path:
    """A fresh checkout-like copy: the files git tracks (plus untracked, unignored ones), committed."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.split()
    for f in files:
        src = REPO / f
        if src.is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(git + ["add", "-A"], cwd=dest, check=True)
    subprocess.run(git + ["commit", "-qm", "copy"], cwd=dest, check=True)
    return dest


@pytest.fixture
def repo_copy(tmp_path) -> Path:
    return copy_repo(tmp_path / "repo")


@pytest.fixture(scope="session")
def built_repo(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess, Path]:
    """A copy of the repository built once by `dvc repro` on the bundled default (about 5 minutes),
    for the tests that start from a built version: (the copy, the run, its request journal). Tests
    change a copy of it (`copy_built`), never the copy itself."""
    repo = copy_repo(tmp_path_factory.mktemp("built") / "repo")
    journal = repo.parent / "journal"
    env = {**run_env(), "DISTILLERY_JOURNAL_DIR": str(journal)}
    first = subprocess.run(["dvc", "repro"], cwd=repo, env=env, capture_output=True, text=True, timeout=1800)
    return repo, first, journal


def copy_built(built: tuple[Path, subprocess.CompletedProcess, Path], tmp_path: Path) -> Path:
    """A copy of the built repository (git, DVC cache, outputs) with its journal as this test's own
    (the `_own_journal` directory), so what the build asked is answered from the journal here too."""
    repo, _, journal = built
    shutil.copytree(repo, tmp_path / "repo", symlinks=True)
    shutil.copytree(journal, tmp_path / "journal", dirs_exist_ok=True)
    return tmp_path / "repo"


def seed_models(built: tuple[Path, subprocess.CompletedProcess, Path], repo: Path) -> None:
    """Give `repo`'s DVC cache the built repository's models stage, and nothing of any other stage:
    its run-cache entry and its outputs' objects. `dvc repro` then restores models ("Stage 'models'
    is cached - skipping run") instead of training the tiny models again (about 2 minutes). The
    whole cache would let DVC restore every stage whose deps match the build (the run cache, or the
    outputs dvc.lock names), so the stages a test is about would not run."""
    built_cache, cache = built[0] / ".dvc/cache", repo / ".dvc/cache"
    entries = [
        e for e in (built_cache / "runs").glob("*/*/*") if "data/models" in (o["path"] for o in yaml.safe_load(e.read_text())["outs"])
    ]
    assert len(entries) == 1, (
        f"the built repository's run cache has {len(entries)} entries for models, not 1: see its `dvc repro` ({built[1].returncode})"
    )

    def copy(path: Path) -> None:
        (cache / path.relative_to(built_cache)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, cache / path.relative_to(built_cache))

    def obj(md5: str) -> Path:
        return built_cache / "files/md5" / md5[:2] / md5[2:]

    copy(entries[0])
    for out in yaml.safe_load(entries[0].read_text())["outs"]:  # data/models (a directory) and its metrics
        copy(obj(out["md5"]))
        for entry in json.loads(obj(out["md5"]).read_text()) if out["md5"].endswith(".dir") else []:
            copy(obj(entry["md5"]))


def sh(args: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=run_env(), capture_output=True, text=True, timeout=timeout)
