"""`distillery checkout` refuses to tell Snakemake a version is current unless DVC agrees, and says
how to fix it. (The successful path, on the real DAG, is in test_pipeline.py.) Real git and DVC."""

from __future__ import annotations

from conftest import sh

STAGE = "stages:\n  make:\n    cmd: cp in.txt out.txt\n    deps:\n      - in.txt\n    outs:\n      - out.txt\n"


def dvc_repo(path):
    path.mkdir()
    assert sh(["git", "init", "-q"], path).returncode == 0
    assert sh(["dvc", "init", "-q"], path).returncode == 0
    (path / "dvc.yaml").write_text(STAGE)
    (path / "in.txt").write_text("v1\n")
    return path


def test_outputs_missing_from_the_cache_name_dvc_pull(tmp_path):
    repo = dvc_repo(tmp_path / "r")
    (repo / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  make:\n    cmd: cp in.txt out.txt\n    outs:\n    - path: out.txt\n"
        "      hash: md5\n      md5: 0123456789abcdef0123456789abcdef\n      size: 3\n"
    )
    r = sh(["distillery", "checkout"], repo)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "dvc checkout failed" in r.stderr and "`dvc pull`" in r.stderr and "Snakemake's records were left alone" in r.stderr


def test_a_stale_stage_is_named_and_snakemake_is_not_touched(tmp_path):
    repo = dvc_repo(tmp_path / "r")
    assert sh(["dvc", "repro"], repo).returncode == 0
    (repo / "in.txt").write_text("v2\n")  # the workspace no longer matches dvc.lock
    r = sh(["distillery", "checkout"], repo)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "DVC says these are not current for this version: make" in r.stderr and "`dvc repro`" in r.stderr
    assert not (repo / ".snakemake").exists()
