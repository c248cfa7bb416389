"""distillery.code_identity: a stage's code hash follows what decides its outputs. Each test edits a
copy of the package and names the stages whose hash must change from reading the code: a
description, a comment or a docstring decides no output; a published score is shown by sft's model
card, evaluate's results table and the report's plot only; dedupe's code is imported by no stage."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from distillery.code_identity import code_hash, code_record, normalized_source, stage_code_files
from distillery.stages.check_params import write_code_records
from distillery.workflow import STAGES, code_record_path

from conftest import REPO, sh

PACKAGE = REPO / "src/distillery"
ALL_STAGES = sorted(p.stem for p in (PACKAGE / "stages").glob("*.py"))
UPSTREAM_OF_DEDUPE = {"sample", "ingest", "mix", "models", "generate", "verify", "judge"}


def copy_package(tmp_path: Path, name: str) -> Path:
    return Path(shutil.copytree(PACKAGE, tmp_path / name / "distillery"))


def edit(package: Path, file: str, old: str, new: str) -> None:
    path = package / file
    text = path.read_text()
    assert text.count(old) == 1, f"{file}: {old!r} should occur once"
    path.write_text(text.replace(old, new))


def changed_stages(tmp_path: Path, file: str, old: str, new: str) -> set[str]:
    """The stages whose code hash differs between the package and a copy with one edit."""
    before, after = copy_package(tmp_path, "before"), copy_package(tmp_path, "after")
    edit(after, file, old, new)
    return {s for s in ALL_STAGES if code_hash(s, before) != code_hash(s, after)}


def test_a_field_description_changes_no_stage(tmp_path):
    old = 'description="How the subset is cut: s1k (quality, difficulty, diversity) or limo."'
    assert changed_stages(tmp_path, "config/curate.py", old, 'description="How the subset is chosen: s1k or limo."') == set()


def test_a_published_score_changes_only_the_stages_that_show_it(tmp_path):
    changed = changed_stages(tmp_path, "published.py", '"math500": 90.6', '"math500": 90.7')
    assert changed == {"sft", "evaluate", "report"}


def test_a_line_of_dedupe_changes_dedupe_and_nothing_upstream(tmp_path):
    changed = changed_stages(tmp_path, "stages/dedupe.py", "_MAX_BUCKET_PAIRS_WITH = 200", "_MAX_BUCKET_PAIRS_WITH = 201")
    assert "dedupe" in changed and not changed & UPSTREAM_OF_DEDUPE
    assert changed == {"dedupe"}  # no other stage imports distillery.stages.dedupe


@pytest.mark.parametrize(
    ("file", "old", "new"),
    [
        ("config/params.py", "\nclass BaseConfig(Section):\n", "\n# A comment.\nclass BaseConfig(Section):\n"),
        ("stages/dedupe.py", '"""dedupe: decontamination', '"""dedupe (edited): decontamination'),
        ("io.py", '"""Reading and writing stage files.', '"""Reading and writing (edited) stage files.'),
    ],
)
def test_a_comment_or_docstring_changes_no_stage(tmp_path, file, old, new):
    assert changed_stages(tmp_path, file, old, new) == set()


def test_a_fields_other_keywords_still_count(tmp_path):
    old = 'method: Literal["s1k", "limo"] = Field("s1k",'
    assert "curate" in changed_stages(tmp_path, "config/curate.py", old, 'method: Literal["s1k", "limo"] = Field("limo",')


def test_a_line_of_curates_config_changes_only_the_stages_that_import_it(tmp_path):
    # curate's stage imports distillery.config.curate; check_params validates the whole params file
    # (distillery.config.params imports every stage's config). No other stage imports it.
    old = "if self.min_correct > self.max_correct:"
    changed = changed_stages(tmp_path, "config/curate.py", old, "if self.min_correct >= self.max_correct:")
    assert changed == {"curate", "check_params"}


def test_a_line_of_the_shared_config_base_changes_every_stage(tmp_path):
    changed = changed_stages(tmp_path, "config/base.py", 'PROBLEM_PLACEHOLDER = "{problem}"', 'PROBLEM_PLACEHOLDER = "{problem} "')
    assert changed == set(ALL_STAGES)


def test_a_stage_runs_only_its_own_config_and_the_shared_base():
    config = PACKAGE / "config"
    for stage in ALL_STAGES:
        files = {p.name for p in stage_code_files(stage) if p.parent == config}
        assert "__init__.py" not in files, f"{stage} imports the package distillery.config: import distillery.config.<module>"
        assert {"base.py", f"{stage}.py"} <= files or stage == "check_params"
    assert {p.name for p in stage_code_files("sample") if p.parent == config} == {"base.py", "sample.py"}


def test_from_a_package_import_a_module_counts_the_module_not_the_package(tmp_path):
    package = copy_package(tmp_path, "p")
    stage = package / "stages" / "sample.py"
    stage.write_text(
        stage.read_text().replace("from distillery.config.sample import STAGE, SampleConfig", "from distillery.config import sample")
    )
    files = {p.relative_to(package).as_posix() for p in stage_code_files("sample", package)}
    assert "config/sample.py" in files and "config/__init__.py" not in files and "config/curate.py" not in files


def test_normalized_source_drops_documentation_only(tmp_path):
    f = tmp_path / "m.py"
    f.write_text(
        '"""Doc."""\n# comment\nclass A:\n    """Doc."""\n    x: int = Field(1, ge=0, description="d")\n\n\n'
        'def g():\n    "doc"\n    return "kept"\n'
    )
    assert normalized_source(f) == "class A:\n    x: int = Field(1, ge=0)\n\ndef g():\n    return 'kept'"


def test_the_launcher_counts_for_the_stages_it_launches(tmp_path):
    assert changed_stages(tmp_path, "sft_launch.py", "import time\n", "import time\nDELAY = 1\n") == {"sft", "dpo", "grpo"}


def test_a_code_record_is_the_same_bytes_for_the_same_code_anywhere(tmp_path):
    a, b = copy_package(tmp_path, "a"), copy_package(tmp_path, "b")
    assert code_record("dedupe", a) == code_record("dedupe", b)
    lines = code_record("dedupe", a).splitlines()
    assert lines[0] == f"dedupe {code_hash('dedupe', a)}" and "src/distillery/stages/dedupe.py" in {line.split()[0] for line in lines}


def test_records_are_written_once_and_left_alone_while_the_code_is_the_same(tmp_path):
    written = write_code_records(tmp_path)
    # A later round's stages (generate_round_2, ...) run their stage's code: they share its record.
    assert sorted(written) == sorted(s for s in STAGES if s != "check_params" and "_round_" not in s)
    dedupe = tmp_path / code_record_path("dedupe")
    mtime = dedupe.stat().st_mtime_ns
    assert write_code_records(tmp_path) == [] and dedupe.stat().st_mtime_ns == mtime
    dedupe.write_text("stale\n")
    assert write_code_records(tmp_path) == ["dedupe"] and dedupe.read_text() == code_record("dedupe")


@pytest.mark.e2e
def test_under_dvc_a_comment_reruns_check_params_alone_and_a_code_line_its_stage(repo_copy, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(repo_copy / "src"))  # the copy's code writes the records

    def repro() -> list[str]:
        r = sh(["dvc", "repro", "sample"], repo_copy)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        return re.findall(r"Running stage '([a-z_0-9]+)'", r.stdout)

    assert repro() == ["check_params", "sample"]
    record = (repo_copy / "data/check_params/code/sample.txt").read_bytes()
    package = repo_copy / "src/distillery"
    edit(package, "config/params.py", "\nclass BaseConfig(Section):\n", "\n# A comment.\nclass BaseConfig(Section):\n")
    edit(package, "config/params.py", 'description="The one seed every stage', 'description="The single seed every stage')
    assert repro() == ["check_params"]  # seconds: the records' bytes are the same
    assert (repo_copy / "data/check_params/code/sample.txt").read_bytes() == record
    edit(package, "stages/sample.py", "\ndef run(", "\nUNUSED = 1\n\n\ndef run(")
    assert repro() == ["check_params", "sample"]
