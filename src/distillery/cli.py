"""`distillery <stage> --config JSON --<paths> ...`: the entry points the Snakemake rules call.

A stage gets its own validated params section as JSON (plus explicit extras such as the seed) and
every path on the command line; it reads nothing else. User errors print one message and exit 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import importlib
import logging
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from distillery.config.params import load_params, parse_stage_config
from distillery.declaration import Stage
from distillery.errors import DistilleryError

Handler = Callable[[argparse.Namespace], Any]
T = TypeVar("T")
COMMANDS: dict[str, tuple[str, list[tuple[str, dict]], Handler]] = {}


def command(name: str, help: str, *args: tuple[str, dict]) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = (help, list(args), fn)
        return fn

    return register


def _cfg(stage: str, ns: argparse.Namespace):
    return parse_stage_config(stage, ns.config)


def _paths(paths_type: type[T], ns: argparse.Namespace) -> T:
    """A stage's Paths from the command line, field by field: `--near-duplicates` fills
    `near_duplicates`, so the rule's names, the flags and the stage's fields are one set of words
    (tests/test_cli.py checks every field has its flag)."""
    return paths_type(**{f.name: getattr(ns, f.name) for f in dataclasses.fields(paths_type)})


CONFIG = ("--config", {"required": True, "help": "the stage's params section as JSON"})


def P(flag: str, **kw) -> tuple[str, dict]:
    return (flag, {"required": True, "type": Path, **kw})


# Where an LLM stage (distillery.llm.task) keeps what outlives a run; the defaults are the task's.
JOURNAL = ("--journal", {"type": Path, "default": None, "help": "the stage's request journal (default $DISTILLERY_JOURNAL_DIR/<stage>)"})
SERVER_LOGS = (
    "--server-logs",
    {"type": Path, "default": None, "help": "where a server the job starts logs (default logs/<stage>/servers)"},
)

# A later round of generation (generate.rounds): its gathers merge in the table of the rounds before it.
SO_FAR = ("--so-far", {"type": Path, "default": None, "help": "a later round: the gathered table of the rounds before it"})
ROUND = ("--round", {"type": int, "default": 1, "help": "the round of generation (1: every problem; later: generate.rounds)"})


@command(
    "check-params",
    "validate a params file (default params.yaml)",
    ("params", {"nargs": "?", "default": "params.yaml"}),
    ("--stamp", {"type": Path, "default": None, "help": "write this file when valid (the check_params stage, which every stage follows)"}),
)
def _check_params(ns):
    from distillery.stages import check_params

    for warning in check_params.run(Path(ns.params), ns.stamp):
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{ns.params}: valid")


@command(
    "dvc-yaml",
    "write dvc.yaml from params.yaml and the workflow (the files each stage reads, its code)",
    ("--params", {"default": "params.yaml", "help": "the params file (default params.yaml)"}),
    ("--out", {"type": Path, "default": Path("dvc.yaml")}),
    ("--check", {"action": "store_true", "help": "only say whether --out is current (exit 1 if not)"}),
)
def _dvc_yaml(ns):
    from distillery.workflow import stale_dvc_yaml, unversioned_inputs

    params = load_params(ns.params)
    for warning in unversioned_inputs(params):  # dvc.lock will hash them; a commit must keep them
        print(f"warning: {warning}", file=sys.stderr)
    expected = stale_dvc_yaml(params, ns.out)
    if expected is None:
        print(f"{ns.out}: current")
    elif ns.check:
        print(f"{ns.out} does not match {ns.params}: run `distillery dvc-yaml`", file=sys.stderr)
        sys.exit(1)
    else:
        ns.out.write_text(expected)
        print(f"{ns.out}: written from {ns.params}")


def _exit_on_sigterm() -> None:
    """Slurm cancels and preempts with SIGTERM: turn it into a normal exit so a started server is
    stopped and the journal is closed on the way out (finished requests are on disk already)."""
    import signal

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


@command(
    "generate-shard",
    "generate one shard",
    CONFIG,
    P("--problems"),
    ("--shard", {"required": True, "type": int}),
    P("--generations"),
    ROUND,
    ("--judged-so-far", {"type": Path, "default": None, "help": "a later round: the judged table of the rounds before it"}),
    ("--run-figures", {"type": Path, "default": None, "help": "this run's reuse, requests and timings for the shard (a log, JSON)"}),
    JOURNAL,
    SERVER_LOGS,
)
def _generate_shard(ns):
    from distillery.stages import generate

    _exit_on_sigterm()
    cfg, extra = _cfg("generate", ns)
    generate.run_shard(cfg, extra.seed, ns.shard, _paths(generate.ShardPaths, ns), ns.round)


@command(
    "generate-gather",
    "gather generation shards",
    ("--shards", {"required": True, "nargs": "+", "type": Path}),
    P("--generations"),
    P("--metrics"),
    SO_FAR,
    ("--throughput", {"type": Path, "default": None, "help": "this run's reuse and throughput, summed over the shards (a log, JSON)"}),
    ("--shard-figures", {"nargs": "*", "type": Path, "default": [], "help": "the shards' --run-figures files"}),
)
def _generate_gather(ns):
    from distillery.stages import generate

    generate.gather(_paths(generate.GatherPaths, ns))


@command(
    "journal",
    "inspect or prune the request journals (see distillery.journal)",
    ("action", {"choices": ["stats", "prune"]}),
    ("--stage", {"default": "generate", "help": "whose journals (default generate)"}),
    (
        "--keep",
        {"nargs": "+", "type": Path, "default": [], "help": "prune: parquet files whose request_key column lists the entries to keep"},
    ),
)
def _journal(ns):
    import json

    from distillery import journal
    from distillery.io import read_parquet

    directory = journal.journal_dir(ns.stage)
    if ns.action == "stats":
        print(json.dumps(journal.stats(directory), indent=2))
        return
    if not ns.keep:
        raise DistilleryError("journal prune needs --keep FILE... (e.g. data/generate/generations.parquet): the request keys to keep")
    keep: set[str] = set()
    for path in ns.keep:
        df = read_parquet(path, "--keep file")
        if "request_key" not in df.columns:
            raise DistilleryError(f"--keep file {path} has no request_key column")
        keep.update(df["request_key"].drop_nulls().to_list())
    print(json.dumps(journal.prune(directory, keep), indent=2))


@command(
    "verify",
    "check answers with Math-Verify",
    CONFIG,
    P("--generations"),
    P("--problems"),
    P("--verified"),
    P("--metrics"),
    ("--threads", {"type": int, "default": None}),
)
def _verify(ns):
    from distillery.stages import verify

    verify.run(_verify_cfg(ns), _paths(verify.Paths, ns))


def _verify_cfg(ns):
    cfg, _ = _cfg("verify", ns)
    if ns.threads:  # the rule's threads bound the worker pool
        cfg = cfg.model_copy(update={"workers": min(cfg.workers, ns.threads)})
    return cfg


SHARD = ("--shard", {"type": int, "required": True})
NUM_SHARDS = ("--num-shards", {"type": int, "required": True, "help": "generate.num_shards: the shards a problem key hashes into"})


@command(
    "verify-shard",
    "check one generation shard's answers with Math-Verify",
    CONFIG,
    SHARD,
    NUM_SHARDS,
    P("--generations", help="generate's shard, or the whole mixed table (only the shard's problems are read)"),
    P("--problems"),
    P("--verified"),
    P("--figures"),
    ("--threads", {"type": int, "default": None}),
)
def _verify_shard(ns):
    from distillery.stages import verify

    _check_shard(ns)
    verify.run_shard(_verify_cfg(ns), ns.shard, ns.num_shards, _paths(verify.ShardPaths, ns))


def _check_shard(ns) -> None:
    if not 0 <= ns.shard < ns.num_shards:
        raise DistilleryError(f"shard {ns.shard} does not exist: there are {ns.num_shards} shards (0..{ns.num_shards - 1})")


@command(
    "verify-gather",
    "gather verify's shards and count",
    ("--shards", {"required": True, "nargs": "+", "type": Path}),
    ("--figures", {"required": True, "nargs": "+", "type": Path}),
    P("--problems"),
    P("--verified"),
    P("--metrics"),
    SO_FAR,
)
def _verify_gather(ns):
    from distillery.stages import verify

    verify.gather(_paths(verify.GatherPaths, ns))


@command(
    "judge",
    "LLM judge for math-verify failures",
    CONFIG,
    P("--verified"),
    P("--problems"),
    P("--judged"),
    P("--metrics"),
    ("--disagreements", {"type": Path, "default": None, "help": "a readable report of where the judge overturned math-verify"}),
    JOURNAL,
    SERVER_LOGS,
)
def _judge(ns):
    from distillery.stages import judge

    _exit_on_sigterm()
    cfg, extra = _cfg("judge", ns)
    judge.run(cfg, extra.seed, _paths(judge.Paths, ns))


@command(
    "judge-shard",
    "LLM judge for one verify shard's math-verify failures",
    CONFIG,
    SHARD,
    NUM_SHARDS,
    P("--verified"),
    P("--problems"),
    P("--judged"),
    JOURNAL,
    SERVER_LOGS,
)
def _judge_shard(ns):
    from distillery.stages import judge

    _exit_on_sigterm()
    _check_shard(ns)
    cfg, extra = _cfg("judge", ns)
    judge.run_shard(cfg, extra.seed, ns.shard, ns.num_shards, _paths(judge.ShardPaths, ns))


@command(
    "judge-gather",
    "gather the judge's shards, count, and write the disagreements report",
    CONFIG,
    ("--shards", {"required": True, "nargs": "+", "type": Path}),
    P("--problems"),
    P("--judged"),
    P("--metrics"),
    ("--disagreements", {"type": Path, "default": None, "help": "a readable report of where the judge overturned math-verify"}),
    SO_FAR,
)
def _judge_gather(ns):
    from distillery.stages import judge

    cfg, _ = _cfg("judge", ns)
    judge.gather(cfg, _paths(judge.GatherPaths, ns))


@command(
    "diff",
    "rows added, removed and changed in a stage output between two versions (git revisions or `workspace`)",
    ("rev_a", {"help": "a git revision, or `workspace`"}),
    ("rev_b", {"nargs": "?", "default": "workspace", "help": "a git revision, or `workspace` (the default)"}),
    ("--path", {"default": "data/build/dataset", "help": "a DVC-tracked output or a file inside one (default: the dataset)"}),
    ("--path-b", {"default": None, "help": "the path at B when it differs (a later round's table: data/judge/round-2/judged.parquet)"}),
    ("--key", {"default": None, "help": "comma-separated key columns (default: uuid[, sample_index])"}),
    ("--format", {"choices": ["text", "markdown", "json"], "default": "text"}),
    ("--examples", {"type": int, "default": 5, "help": "keys listed per kind of change"}),
    ("--repo", {"type": Path, "default": Path("."), "help": "the repository (default: here)"}),
)
def _diff(ns):
    from distillery.diff import diff, render

    d = diff(ns.repo, ns.rev_a, ns.rev_b, ns.path, ns.key.split(",") if ns.key else None, ns.path_b)
    print(render(d, ns.format, ns.examples), end="")


@command(
    "ablate",
    "run an ablation's arms as DVC experiments (`ablate FILE`), or compare them (`ablate report FILE`)",
    ("what", {"nargs": "+", "metavar": "[report] FILE", "help": "an ablation file (ablations/*.yaml), after `report` to compare its arms"}),
    ("--print", {"action": "store_true", "dest": "print_only", "help": "print `dvc exp run --queue` commands for DVC's queue instead"}),
    ("--mode", {"default": "greedy", "help": "report: the evaluate mode compared (default greedy)"}),
    ("--repo", {"type": Path, "default": Path("."), "help": "the repository (default: here)"}),
)
def _ablate(ns):
    from distillery import ablation, ablation_report

    if ns.what[0] == "report" and len(ns.what) == 2:
        files = ablation_report.write(ns.what[1], ns.repo, ns.mode)
        for kind, path in files.items():
            print(f"{kind}: {path}")
        print(f"as a DVC plot: dvc plots show {files['plot']} -x arm -y pass@1")
    elif len(ns.what) == 1:
        ablation.run(ns.what[0], ns.repo, print_only=ns.print_only)
    else:
        raise DistilleryError(f"expected `ablate FILE` or `ablate report FILE`, got `ablate {' '.join(ns.what)}`")


@command(
    "checkout",
    "restore a version's outputs (git + DVC) and make Snakemake's records agree with them",
    ("rev", {"nargs": "?", "default": None, "help": "a git revision to check out first (default: stay on this commit)"}),
    ("--repo", {"type": Path, "default": Path("."), "help": "the repository (default: here)"}),
)
def _checkout(ns):
    from distillery.checkout import checkout

    for step in checkout(ns.repo, ns.rev):
        print(step)


@command(
    "publish",
    "push a built dataset to a Hugging Face dataset repo (token from the environment)",
    ("--dataset-dir", {"type": Path, "default": Path("data/build/dataset")}),
    ("--repo-id", {"required": True, "help": "namespace/name of the dataset repo"}),
    ("--public", {"action": "store_true", "help": "create the repo public (default: private)"}),
    ("--revision", {"default": None, "help": "branch to push to (default: main)"}),
    ("--token-env", {"default": "HF_TOKEN", "help": "the environment variable holding the token"}),
    ("--message", {"default": None, "help": "commit message"}),
    ("--dry-run", {"action": "store_true", "help": "check and list what would be uploaded; no network"}),
)
def _publish(ns):
    from distillery.publish import publish

    print(
        publish(
            ns.dataset_dir,
            ns.repo_id,
            private=not ns.public,
            revision=ns.revision,
            token_env=ns.token_env,
            message=ns.message,
            dry_run=ns.dry_run,
        )
    )


CHECKPOINTS = ("--checkpoints", {"type": Path, "default": None, "help": "checkpoint root (default: beside --model)"})
RUN_FIGURES = ("--run-figures", {"type": Path, "default": None, "help": "wall time, steps/s and resume step (a log, JSON)"})


def _relaunched(stage: str, cfg: Any, ns: argparse.Namespace) -> bool:
    """A training stage with an accelerate config: start `accelerate launch` of this same command
    on every node (distillery.sft_launch), which then trains; True when that happened."""
    if not cfg.launch.accelerate_config or os.environ.get("DISTILLERY_SFT_LAUNCHED"):
        return False
    from distillery.sft_launch import launch

    argv = [stage]
    for flag, _ in COMMANDS[stage][1]:
        value = getattr(ns, flag.lstrip("-").replace("-", "_"))
        if value is not None:
            argv += [flag, str(value)]
    launch(cfg.launch, argv)
    return True


@command(
    "plots-template",
    "write an HTML template for `dvc plots show/diff --html-template` that renders offline (Vega inlined)",
    ("--out", {"type": Path, "default": Path(".dvc/plots_template.html")}),
)
def _plots_template(ns):
    from distillery.stages import report

    ns.out.parent.mkdir(parents=True, exist_ok=True)
    ns.out.write_text(report.plots_template(), encoding="utf-8")
    print(f"{ns.out}: dvc plots diff --html-template {ns.out} ...")


def _declared_command(decl: Stage) -> Handler:
    """The handler of a declared stage (distillery.declaration): its section and extras from
    --config, its Paths from the flags, then `distillery.stages.<name>.<entry>(cfg, *extras, paths)`."""

    def handle(ns: argparse.Namespace) -> Any:
        cfg, extra = _cfg(decl.name, ns)
        if decl.launcher and _relaunched(decl.name, cfg, ns):
            return None
        module = importlib.import_module(f"distillery.stages.{decl.name}")
        if decl.handles_sigterm:
            _exit_on_sigterm()
        return getattr(module, decl.entry)(cfg, *(getattr(extra, e) for e in decl.extras), _paths(module.Paths, ns))

    return handle


def _declare_commands() -> None:
    from distillery.workflow import DECLARED

    for decl in DECLARED.values():
        COMMANDS.setdefault(decl.name, (decl.help, decl.cli_args(), _declared_command(decl)))


_declare_commands()


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="distillery", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for name, (help_text, args, fn) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text)
        for flag, kw in args:
            sp.add_argument(flag, **kw)
        sp.set_defaults(handler=fn)
    return ap


# torch picks CPU kernels by the processor's vector instructions, and on this project's CPUs the
# AVX-512 and AVX2 kernels train different tiny models (measured: teacher and judge weights differ;
# thread count does not matter). AVX2 is on every x86-64 server and laptop of the last decade, so
# pinning it makes the demo's outputs the same bytes on all of them. GPU work is unaffected; set
# ATEN_CPU_CAPABILITY=default to lift the pin. Set before any stage imports torch.
CPU_KERNELS = "avx2"


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("ATEN_CPU_CAPABILITY", CPU_KERNELS)
    logging.basicConfig(
        level=os.environ.get("DISTILLERY_LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    ns = parser().parse_args(argv)
    try:
        ns.handler(ns)
    except DistilleryError as exc:
        print(f"distillery {ns.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if not _disk_full(exc):
            raise
        print(f"distillery {ns.command}: error: {_disk_full_message(exc, ns)}", file=sys.stderr)
        return 2
    return 0


def _disk_full(exc: OSError) -> bool:
    """No space left (or over quota), as the OS, pyarrow or polars reports it."""
    text = str(exc)
    return exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left on device" in text or "os error 28" in text


def _existing(path: Path) -> Path:
    """`path`, or its nearest ancestor that exists (an output not yet written lives on its parent's disk)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _mount_point(path: Path) -> Path:
    path = _existing(path)
    device = path.stat().st_dev
    while path != path.parent and path.parent.stat().st_dev == device:
        path = path.parent
    return path


def _disk_of(path: Path) -> str:
    where = _existing(path)
    return f"{shutil.disk_usage(where).free / 1e9:.1f} GB is free on the disk of {path} (mounted at {_mount_point(where)})"


def _written_paths(ns: argparse.Namespace) -> list[Path]:
    """Where this command writes (and reads): its path arguments, and for an LLM stage its request
    journal, which may be on another disk ($DISTILLERY_JOURNAL_DIR)."""
    from distillery.journal import journal_root

    paths = [v for k, v in sorted(vars(ns).items()) if isinstance(v, Path) and k != "config"]
    paths += [p for v in vars(ns).values() if isinstance(v, list) for p in v if isinstance(p, Path)]
    if hasattr(ns, "journal") and ns.journal is None:
        paths.append(journal_root())
    return paths


def _disk_full_message(exc: OSError, ns: argparse.Namespace) -> str:
    """The disk that filled up, named by the path that failed; when the library did not say which
    file (polars, pyarrow), each disk the step writes to, with its free space."""
    fix = (
        "Free space there, or point the workflow (or DISTILLERY_JOURNAL_DIR, for request journals) at a larger disk, then re-run this step"
    )
    if exc.filename:
        return f"the disk is full writing {exc.filename} ({exc.strerror or exc}); {_disk_of(Path(exc.filename))}. {fix}"
    by_disk: dict[Path, list[str]] = {}
    for path in _written_paths(ns) or [Path.cwd()]:
        by_disk.setdefault(_mount_point(path), []).append(str(path))
    disks = "; ".join(
        f"{shutil.disk_usage(_existing(Path(paths[0]))).free / 1e9:.1f} GB free on {mount} ({', '.join(paths)})"
        for mount, paths in sorted(by_disk.items())
    )
    return f"the disk is full ({exc.strerror or exc}), on one of the disks this step writes to: {disks}. {fix}"
