"""The command line the rules call: each stage's flags are its Paths fields, word for word."""

from __future__ import annotations

import dataclasses
import importlib
import os
from pathlib import Path

import pytest

from distillery import cli
from distillery.config import load_params
from distillery.stages import dedupe, evaluate, generate, judge, verify
from distillery.workflow import DECLARED

from conftest import REPO

# A declared stage's command takes its Paths (both derived from its declaration); the sharded
# stages' shard and gather commands are written out.
COMMAND_PATHS = {
    **{name: importlib.import_module(f"distillery.stages.{name}").Paths for name in DECLARED},
    "generate-shard": generate.ShardPaths,
    "generate-gather": generate.GatherPaths,
    "verify": verify.Paths,
    "verify-shard": verify.ShardPaths,
    "verify-gather": verify.GatherPaths,
    "judge": judge.Paths,
    "judge-shard": judge.ShardPaths,
    "judge-gather": judge.GatherPaths,
}


@pytest.mark.parametrize("command", sorted(COMMAND_PATHS))
def test_every_paths_field_is_a_flag_of_its_command(command):
    _, args, _ = cli.COMMANDS[command]
    flags = {flag.lstrip("-").replace("-", "_") for flag, _ in args}
    fields = {f.name for f in dataclasses.fields(COMMAND_PATHS[command])}
    assert fields <= flags, f"distillery {command} lacks flags for {sorted(fields - flags)}"


def test_the_paths_are_filled_by_name_never_by_position(tmp_path):
    ns = cli.parser().parse_args(
        ["dedupe", "--config", "{}"]
        + [
            f"--{flag}={tmp_path / flag}"
            for flag in ("problems", "judged", "kept", "rejected", "contamination", "near-duplicates", "metrics")
        ]
    )
    paths = cli._paths(dedupe.Paths, ns)
    assert {f.name: getattr(paths, f.name).name for f in dataclasses.fields(paths)} == {
        "problems": "problems",
        "judged": "judged",
        "kept": "kept",
        "rejected": "rejected",
        "contamination": "contamination",
        "metrics": "metrics",
        "near_duplicates": "near-duplicates",
    }


def test_every_stage_command_is_covered():
    stage_commands = {name for name, (_, args, _) in cli.COMMANDS.items() if any(flag == "--config" for flag, _ in args)}
    assert stage_commands - {"dvc-yaml"} <= set(COMMAND_PATHS)


def test_a_training_stage_relaunches_itself_with_every_flag(monkeypatch, tmp_path):
    """Under an accelerate config, the training stages start `accelerate launch` of the same command."""
    import json

    from distillery import sft_launch

    seen = {}
    monkeypatch.setattr(sft_launch, "launch", lambda launch, argv: seen.update(argv=argv))
    monkeypatch.delenv("DISTILLERY_SFT_LAUNCHED", raising=False)
    cfg = json.dumps({"model": "m", "seed": 1, "launch": {"accelerate_config": "configs/accelerate/cpu.yaml"}})
    argv = ["dpo", "--config", cfg, "--pairs", "p.parquet", "--model", "out", "--metrics", "m.json", "--run-figures", "r.json"]
    assert cli.main(argv) == 0
    assert seen["argv"] == argv


@pytest.mark.parametrize(
    "fault",
    [
        OSError(28, "Error writing bytes to file. Detail: [errno 28] No space left on device"),  # pyarrow's
        OSError("failed to write parquet: No space left on device (os error 28)"),  # polars', without errno
    ],
)
def test_a_full_disk_is_one_message_naming_the_disk_and_what_to_do(fault, monkeypatch, tmp_path, capsys):
    """A full disk is a fault no real part of a test can make here: the writer is made to fail as pyarrow and polars do."""
    from test_tables import generation_rows

    from distillery import tables

    shard = tmp_path / "shard-0.parquet"
    generation_rows(5, seed=1).sort("uuid", "sample_index").write_parquet(shard)

    def full(*_args, **_kwargs):
        raise fault

    monkeypatch.setattr(tables.TableWriter, "write", full)
    monkeypatch.chdir(tmp_path)
    argv = ["generate-gather", "--shards", str(shard), "--generations", "g.parquet", "--metrics", "m.json"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("distillery generate-gather: error: the disk is full (") and "Traceback" not in err
    # The library did not say which file: every disk the step writes to, with the paths on it.
    mount = mount_point_of(tmp_path)
    assert "on one of the disks this step writes to: " in err and f"GB free on {mount} (" in err
    assert "g.parquet" in err and "m.json" in err and str(shard) in err and "re-run this step" in err
    monkeypatch.setattr(tables.TableWriter, "write", lambda *a, **k: (_ for _ in ()).throw(PermissionError(13, "denied")))
    with pytest.raises(PermissionError):  # any other OSError stays what it is
        cli.main(argv)


def mount_point_of(path: Path) -> Path:
    path = Path(path).absolute()
    while not os.path.ismount(path):
        path = path.parent
    return path


def test_a_full_disk_names_the_disk_of_the_file_that_failed_not_the_workspace(monkeypatch, tmp_path, capsys):
    """The journal or an output can sit on another disk than the working directory: the message names
    the disk of the path that failed (here a journal under $DISTILLERY_JOURNAL_DIR)."""
    from test_tables import generation_rows

    from distillery import tables

    shard = tmp_path / "shard-0.parquet"
    generation_rows(5, seed=1).sort("uuid", "sample_index").write_parquet(shard)
    journal = tmp_path / "elsewhere" / "journal" / "generate" / "shard-0-of-1.jsonl"

    def full(*_args, **_kwargs):
        raise OSError(28, "No space left on device", str(journal))

    monkeypatch.setattr(tables.TableWriter, "write", full)
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    monkeypatch.chdir(workspace)
    argv = ["generate-gather", "--shards", str(shard), "--generations", "g.parquet", "--metrics", "m.json"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"distillery generate-gather: error: the disk is full writing {journal} (No space left on device); ")
    assert f"GB is free on the disk of {journal} (mounted at {mount_point_of(tmp_path)})" in err
    assert str(workspace) not in err


def test_files_the_stage_finds_in_a_folder_are_rule_outputs_and_one_dvc_out_but_no_flags():
    from distillery.workflow import DECLARED

    build_decl = DECLARED["build"]
    outs = {name: path for name, (path, _) in build_decl.rule_outputs().items()}
    assert outs["card"] == "data/build/dataset/README.md"
    assert outs["default"] == "data/build/dataset/default/train-00000-of-00001.parquet"
    assert build_decl.dvc_outs()[0] == ["data/build/dataset", "data/build/rejected.parquet", "data/build/provenance.parquet"]
    flags = {flag for flag, _ in cli.COMMANDS["build"][1]}
    assert {"--dataset-dir", "--stage-metrics"} <= flags and not {"--card", "--default", "--extended"} & flags
    shell = build_decl.shell(load_params(REPO / "params.yaml"))
    assert "--card" not in shell and "--dataset-dir {params.dataset_dir:q}" in shell


def test_a_command_only_flag_is_offered_but_never_passed_by_the_rule():
    from distillery.workflow import DECLARED

    assert "--journal" in {flag for flag, _ in cli.COMMANDS["evaluate"][1]}
    assert "journal" not in DECLARED["evaluate"].shell(load_params(REPO / "params.yaml"))
    assert evaluate.Paths(samples=Path("s"), metrics=Path("m")).journal is None
