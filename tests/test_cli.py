"""The command line the rules call: each stage's flags are its Paths fields, word for word."""

from __future__ import annotations

import dataclasses

import pytest

from distillery import cli
from distillery.stages import build, dedupe, evaluate, generate, judge, lighteval, models, report, sample, sft, verify

COMMAND_PATHS = {
    "sample": sample.Paths,
    "models": models.Paths,
    "generate-shard": generate.ShardPaths,
    "generate-gather": generate.GatherPaths,
    "verify": verify.Paths,
    "judge": judge.Paths,
    "dedupe": dedupe.Paths,
    "build": build.Paths,
    "sft": sft.Paths,
    "evaluate": evaluate.Paths,
    "report": report.Paths,
    "lighteval": lighteval.Paths,
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
