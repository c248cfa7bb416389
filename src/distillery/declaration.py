"""One declaration per stage: its name, the files it reads and writes by name, the params keys it
reads and what its `run()` takes besides them. Everything that used to repeat these is derived:

- the rule's `input:` and `output:` (`rules/<stage>.smk` writes `**declared_inputs("<stage>")`) and
  its shell command (`declared_shell`), flag for flag;
- the CLI command, `distillery <stage> --config JSON --<name> PATH ...` (distillery.cli);
- the stage's `Paths` record, field for field (`STAGE.paths_record()`), which its code receives;
- its dvc.yaml stage: the outs, metrics, plots, what it reads and the params it tracks
  (distillery.workflow).

A declaration lives beside the stage's params model, in `distillery/config/<stage>.py`: light modules
(pydantic only) that the Snakefile, the CLI and dvc.yaml's generator load on every start, which
the stage code (polars, torch) is not. docs/design.md, "One declaration per stage", says why.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

# What verify and every later stage read as "the problems" and "the generations": sample's and
# generate's, or mix's when ingest names a corpus (Snakemake's conditional inputs, decided once here
# for the rules and for dvc.yaml alike).
OWN_PROBLEMS, OWN_GENERATIONS = "data/sample/problems.parquet", "data/generate/generations.parquet"
MIXED_PROBLEMS, MIXED_GENERATIONS = "data/mix/problems.parquet", "data/mix/generations.parquet"


def mixing(params: Any) -> bool:
    return bool(params.ingest.corpora)


def problems_table(params: Any) -> str:
    return MIXED_PROBLEMS if mixing(params) else OWN_PROBLEMS


def generations_table(params: Any) -> str:
    return MIXED_GENERATIONS if mixing(params) else OWN_GENERATIONS


# A path, or a function of the validated params (distillery.config.params.Params) giving one.
Where = str | Callable[[Any], Any]

# Where the rule holds a name: Snakemake's `input`, `output`, `params` (a value the rule computes,
# such as the folder around declared outputs) or `log` (a file no output hash may include); `cli`:
# nowhere, a flag only the command offers (its default lies outside the DAG, such as a journal).
Role = Literal["input", "output", "params", "log", "cli"]


@dataclass(frozen=True)
class Io:
    """One named path of a stage: the rule's name for it, its flag (`--name-with-dashes`) and its
    field in the stage's Paths."""

    role: Role
    where: Where | None = None  # None: the rule gives it (params/log, or an input params.yaml names: `named`)
    kind: Literal["file", "dir", "metrics", "files"] = "file"  # files: a list (nargs)
    help: str = ""
    optional: bool = False  # the flag may be left out (the field is then None)
    dvc: str | None = None  # what dvc.yaml tracks when not `where` itself (a folder around the file)
    # False: the rule and dvc.yaml name the file, the command does not (no flag, no Paths field): the
    # stage finds it inside a folder it is given, such as build's dataset files under its dataset_dir.
    flag: bool = True

    def at(self, params: Any) -> Any:
        return self.where(params) if callable(self.where) else self.where


def read(where: Where, help: str = "", dvc: str | None = None, flag: bool = True) -> Io:
    """A file the stage reads: another stage's output, or a repository file."""
    return Io("input", where, help=help, dvc=dvc, flag=flag)


def read_if(where: Callable[[Any], Any], help: str = "") -> Io:
    """A file the stage reads under some params only: `where` gives None where it reads none. The
    input is then absent: no rule input, no DVC dep, its flag left out of the command (the Paths
    field is None)."""
    return Io("input", where, help=help, optional=True)


def named(help: str = "") -> Io:
    """A file params.yaml names that the stage takes by flag: the rule's input of that name and its
    DVC dep come from `distillery.workflow.named_inputs` (with the files no flag names), not from here."""
    return Io("input", None, help=help)


def read_all(where: Where, help: str = "", optional: bool = False) -> Io:
    """Several files the stage reads (one flag, many paths; optional: the field defaults to none)."""
    return Io("input", where, kind="files", help=help, optional=optional)


def write(where: str, help: str = "", dvc: str | None = None, optional: bool = False, flag: bool = True) -> Io:
    """A file the stage writes (optional: the command may be run without it, the field is then None)."""
    return Io("output", where, help=help, dvc=dvc, optional=optional, flag=flag)


def write_dir(where: str, help: str = "") -> Io:
    return Io("output", where, kind="dir", help=help)


def metrics(stage: str) -> Io:
    """metrics/<stage>.json: the full counts (git-tracked), with its headline file, DVC's metric."""
    return Io("output", f"metrics/{stage}.json", kind="metrics", help="the stage's counts (JSON)")


def computed(help: str, optional: bool = False) -> Io:
    """A path the rule computes (`params:`): the folder around declared outputs, a checkpoint root."""
    return Io("params", help=help, optional=optional)


def logged(help: str) -> Io:
    """A log the rule names (`log:`): what differs from run to run (timings), kept out of outputs."""
    return Io("log", help=help, optional=True)


# The help of a training stage's flags besides its data (sft, dpo): resumable checkpoints, kept
# outside the outputs (DVC and Snakemake delete those before a run), and its run's figures, a log.
CHECKPOINTS = "checkpoint root (default: beside --model)"
RUN_FIGURES = "wall time, steps/s and resume step (a log, JSON)"


def cli_option(help: str) -> Io:
    """A flag the rule leaves out: the command's, for runs by hand (the default is the stage's)."""
    return Io("cli", help=help, optional=True)


def bars(x: str, y: str, title: str, x_label: str, y_label: str) -> dict[str, Any]:
    """A dvc.yaml plot's options: horizontal bars (.dvc/plots/distillery_bars.json), not cached."""
    return {"cache": False, "template": "distillery_bars", "x": x, "y": y, "title": title, "x_label": x_label, "y_label": y_label}


@dataclass(frozen=True)
class Stage:
    """A stage, declared once."""

    name: str
    help: str  # one line: the CLI's help
    paths: Mapping[str, Io]
    params: tuple[str, ...] | Callable[[Any], tuple[str, ...]] = ()  # the params keys it reads (dvc.yaml)
    extras: tuple[str, ...] = ("seed",)  # what `run()` takes before `paths`, from the JSON's extras
    plots: tuple[tuple[str, dict[str, Any]], ...] = ()  # dvc.yaml plots: (path, options); outputs too
    wanted: Callable[[Any], bool] | None = None  # whether the params call for the stage at all
    # Models its params name, as input name -> (params key, value): a local one (a directory, or
    # another stage's output) is an input of the rule and a DVC dep; a hub id is tracked by revision.
    models: Callable[[Any], dict[str, tuple[str, str]]] | None = None
    versioned: bool = True  # a DVC stage (lighteval, opt-in and in its own environment, is not)
    launcher: bool = False  # a training stage: relaunched under `accelerate launch` when configured
    handles_sigterm: bool = False  # turn Slurm's SIGTERM into an exit, so servers and journals close
    entry: str = "run"  # the function of distillery.stages.<name> the CLI calls
    # What dvc.yaml tracks besides the declared inputs: files Snakemake itself reads for the rule
    # (report's captions), never the command.
    also_reads: tuple[str, ...] = ()

    # -- the stage's Paths record ------------------------------------------------------------------
    def paths_record(self) -> type:
        """A frozen dataclass with one Path field per declared flag (a list for `files`), optional
        ones defaulting to None (an empty list): what the stage's code receives."""
        flagged = {n: io for n, io in self.paths.items() if io.flag}
        required = [(n, list[Path] if io.kind == "files" else Path) for n, io in flagged.items() if not io.optional]
        optional = [
            (n, list[Path], field(default_factory=list)) if io.kind == "files" else (n, Path | None, field(default=None))
            for n, io in flagged.items()
            if io.optional
        ]
        record = dataclasses.make_dataclass("Paths", [*required, *optional], frozen=True)
        record.__module__ = f"distillery.stages.{self.name}"
        record.__doc__ = f"The {self.name} stage's files, by the names its declaration gives them."
        return record

    # -- the rule ----------------------------------------------------------------------------------
    def named(self, role: Role) -> dict[str, Io]:
        return {n: io for n, io in self.paths.items() if io.role == role}

    def rule_inputs(self, params: Any) -> dict[str, Any]:
        """name -> path, less the inputs params name (`named`) and those absent under `params` (`read_if`)."""
        return {n: at for n, io in self.named("input").items() if (at := io.at(params)) is not None}

    def absent(self, params: Any) -> set[str]:
        """The inputs `params` call for none of (`read_if`)."""
        return {n for n, io in self.named("input").items() if callable(io.where) and io.at(params) is None}

    def rule_outputs(self) -> dict[str, tuple[str, str]]:
        """name -> (path, kind); a metrics file brings its headline file (distillery.metrics)."""
        from distillery.metrics import headline_path

        outs: dict[str, tuple[str, str]] = {}
        for n, io in self.named("output").items():
            outs[n] = (str(io.where), io.kind)
            if io.kind == "metrics":
                outs["headline"] = (headline_path(str(io.where)).as_posix(), "file")
        for path, _ in self.plots:
            outs[Path(path).stem] = (path, "file")
        return outs

    def shell(self, params: Any, log: str = "{log:q}") -> str:
        """`distillery <name> --config {params.config:q} --<flag> {<role>.<name>:q} ... > log 2>&1`,
        without the flags of the inputs absent under `params`, of files the command does not take
        (`flag=False`) and of command-only options."""
        absent = self.absent(params)
        flags = " ".join(
            f"--{n.replace('_', '-')} {{{io.role}.{n}:q}}"
            for n, io in self.paths.items()
            if io.flag and io.role != "cli" and n not in absent
        )
        return f"distillery {self.name} --config {{params.config:q}} {flags} > {log} 2>&1"

    # -- the CLI -----------------------------------------------------------------------------------
    def cli_args(self) -> list[tuple[str, dict[str, Any]]]:
        args: list[tuple[str, dict[str, Any]]] = [("--config", {"required": True, "help": "the stage's params section as JSON"})]
        for n, io in self.paths.items():
            if not io.flag:
                continue
            kw: dict[str, Any] = {"type": Path, "help": io.help or None}
            if io.kind == "files":
                kw.update(nargs="*", default=[])
            elif io.optional:
                kw["default"] = None
            else:
                kw["required"] = True
            args.append((f"--{n.replace('_', '-')}", kw))
        return args

    # -- dvc.yaml ----------------------------------------------------------------------------------
    def dvc_reads(self, params: Any) -> list[str]:
        """What the stage reads, as DVC tracks it: a file inside another stage's output folder
        counts as that folder."""
        reads: list[str] = []
        for io in self.named("input").values():
            at = io.dvc or io.at(params)
            if at is None:  # named by params (named_inputs), or absent under them
                continue
            reads += [str(a) for a in at] if isinstance(at, list | tuple) else [str(at)]
        return [*reads, *self.also_reads]

    def dvc_outs(self) -> tuple[list[str], list[str]]:
        """(outs, metrics) as dvc.yaml declares them; a file kept inside a declared folder is the folder."""
        outs = [io.dvc or str(io.where) for io in self.named("output").values() if io.kind in ("file", "dir")]
        return list(dict.fromkeys(outs)), [str(io.where) for io in self.named("output").values() if io.kind == "metrics"]

    def targets(self) -> list[str]:
        """What `dvc repro` asks Snakemake for: every plot and one declared output per DVC out (the
        first file of a folder DVC tracks as one: the rule makes the others with it)."""
        outs: dict[str, str] = {}
        for io in self.named("output").values():
            outs.setdefault(io.dvc or str(io.where), str(io.where))
        return [*outs.values(), *(p for p, _ in self.plots)]
