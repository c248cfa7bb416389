"""What each stage reads: one answer for Snakemake's rules and for DVC's dvc.yaml.

Files that params.yaml names (the sample source, benchmark files, the judge prompt, the tiny models'
corpus, an accelerate config, a local model directory) are inputs of exactly the stages that read
them. The rules take them from `named_inputs()`; dvc.yaml is generated from the same function plus
the stage table below (`distillery dvc-yaml`), so a user's own source or benchmark file is a DVC
dependency the moment params.yaml names it. docs/design.md says why dvc.yaml is generated rather
than templated.
"""

from __future__ import annotations

import importlib
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from distillery.code_identity import relative_code_files
from distillery.config.base import model_settings
from distillery.config.build import CARD_CORPUS_FIELDS, CARD_LLM_FIELDS, VERIFY_EXECUTION_FIELDS
from distillery.config.generate import GenerateConfig
from distillery.config.params import Params
from distillery.config.report import report_stage_metrics as report_stage_metrics  # tests' import
from distillery.declaration import (
    OWN_GENERATIONS,
    OWN_PROBLEMS,
    Stage,
    generations_table,
    problems_table,
)
from distillery.declaration import (
    mixing as mixing,  # re-exported: rules/common.smk reads it here
)
from distillery.metrics import headline_path
from distillery.rounds import later_rounds, metrics_name, stage_dir

LOCAL_DATA_SUFFIXES = (".jsonl", ".json", ".parquet")
# Outputs of stages that other stages name as models: a model under one of them depends on the stage.
MODEL_OUTPUTS = ("data/models", "data/sft/model", "data/dpo/model", "data/grpo/model")


def is_local_file(path: str) -> bool:
    """A data source that is a local file (tracked by its md5); anything else is a hub id."""
    return Path(path).suffix.lower() in LOCAL_DATA_SUFFIXES


def local_model(model: str) -> str | None:
    """The path DVC tracks for a model setting: the stage output it lives in, a local directory, or
    None for a hub id (tracked by its `revision` in params)."""
    norm = os.path.normpath(model)
    for out in MODEL_OUTPUTS:
        if norm == out or norm.startswith(out + "/"):
            return out
    if Path(model).exists() or model.startswith(("/", "./", "../")):
        return model
    return None


def _benchmarks(params: Params, names: Any) -> dict[str, str]:
    return {f"benchmark_{n}": params.base.benchmarks[n].path for n in names if is_local_file(params.base.benchmarks[n].path)}


def _model(name: str, model: str) -> dict[str, str]:
    path = local_model(model)
    return {name: path} if path else {}


def named_inputs(params: Params, stage: str) -> dict[str, str]:
    """The files that params.yaml names for `stage`, by input name (the rule's `input:` names)."""
    p = params
    if stage == "sample":
        return {"source": p.sample.source} if is_local_file(p.sample.source) else {}
    if stage == "ingest":
        return {f"corpus_{name}": c.path for name, c in sorted(p.ingest.corpora.items()) if is_local_file(c.path)}
    if stage == "models":
        return {"corpus": p.models.tiny.corpus, "judge_template": p.judge.prompt_template}
    if stage == "generate":
        return _model("models", p.generate.llm.model)
    if stage == "judge":
        return {"prompt_template": p.judge.prompt_template, **_model("models", p.judge.llm.model)}
    if stage == "dedupe":
        return _benchmarks(p, p.dedupe.benchmarks) if p.dedupe.decontaminate else {}
    if stage == "build":
        return _model("reward_model", p.build.reward_model.model or "") if p.build.choice == "reward_model" else {}
    if stage in ("sft", "dpo", "grpo"):
        train = getattr(p, stage)
        accelerate = train.launch.accelerate_config
        return {**_model("models" if stage == "sft" else "model", train.model), **({"accelerate_config": accelerate} if accelerate else {})}
    if stage == "evaluate":
        return {**_model("model", p.evaluate.llm.model), **_benchmarks(p, p.evaluate.benchmarks)}
    declared = DECLARED.get(stage)
    if declared is not None and declared.models is not None:
        return {name: path for name, (_, model) in declared.models(p).items() if (path := local_model(model))}
    return {}


def unpinned_hub_ids(params: Params) -> list[str]:
    """One warning per setting that names a hub id with no revision: a new upload would change what
    is read, and neither DVC nor Snakemake could see it."""
    p = params
    found: list[tuple[str, str, str]] = []  # (setting, value, its revision key)
    if not is_local_file(p.sample.source) and not p.sample.revision:
        found.append(("sample.source", p.sample.source, "sample.revision"))
    for name, corpus in sorted(p.ingest.corpora.items()):
        if not is_local_file(corpus.path) and not corpus.revision:
            found.append((f"ingest.corpora.{name}.path", corpus.path, f"ingest.corpora.{name}.revision"))
    for block, model, revision in model_settings(p):
        if block == "build.reward_model" and p.build.choice != "reward_model":
            continue  # read only when build chooses by reward model
        if local_model(model) is None and not revision:
            found.append((f"{block}.model", model, f"{block}.revision"))
    used = set(p.evaluate.benchmarks) | (set(p.dedupe.benchmarks) if p.dedupe.decontaminate else set())
    for name in sorted(used):
        b = p.base.benchmarks[name]
        if not is_local_file(b.path) and not b.revision:
            found.append((f"base.benchmarks.{name}.path", b.path, f"base.benchmarks.{name}.revision"))
    return [
        f"{where} = {value!r} is a hub id with no pinned revision: set {rev} to a commit, or a new upload changes "
        "what is read and neither DVC nor Snakemake can see it"
        for where, value, rev in found
    ]


# --- dvc.yaml ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DvcStage:
    """One DVC stage: the Snakemake rules it runs and what DVC tracks for it. Files named by params
    and the code deps are added by `dvc_stages()`."""

    rules: tuple[str, ...]
    targets: tuple[str, ...]  # what the command asks Snakemake for
    outs: tuple[str, ...]
    params: tuple[str, ...] | Any  # the params sections and keys the stage reads, or params -> them
    reads: tuple[str, ...] | Any = ()  # outputs of other stages and repository files it reads, or params -> them
    metrics: tuple[str, ...] = ()
    plots: tuple[tuple[str, dict[str, Any]], ...] = ()
    wanted: Any = field(default=None, compare=False)  # params -> bool: whether the stage exists
    whole_params_file: bool = False  # tracks every key of params.yaml (check_params), not sections
    persist: bool = False  # outs DVC neither deletes before a run nor restores from its run cache
    code_of: str | None = None  # a later round's stage: the stage whose rule file and code record it shares


# Plots of several columns of one file (a stage's own plot entry takes one y): what users of GRPO
# watch for reward hacking and length collapse, step by step. The rewards that are off are absent.
GRPO_STEPS = "plots/grpo/steps.json"
TOP_PLOTS = {
    "grpo_rewards": {
        "template": "linear",
        "x": "step",
        "y": {GRPO_STEPS: ["reward", "accuracy_mean", "cosine_mean", "repetition_mean", "overlong_mean", "format_mean"]},
        "title": "GRPO: mean reward per step, in all and by reward function",
        "x_label": "step",
        "y_label": "mean reward",
    },
    "grpo_lengths": {
        "template": "linear",
        "x": "step",
        "y": {GRPO_STEPS: ["completion_mean_length", "completion_max_length"]},
        "title": "GRPO: completion length per step (tokens)",
        "x_label": "step",
        "y_label": "tokens",
    },
    "grpo_clipped_and_correct": {
        "template": "linear",
        "x": "step",
        "y": {GRPO_STEPS: ["clipped_share", "correct_share", "zero_std_share"]},
        "title": "GRPO: share of completions clipped at the limit and correct, and of groups with one reward (zero variance)",
        "x_label": "step",
        "y_label": "share",
    },
}

# --- what the dataset card records: build's card settings (its fields, and the params DVC tracks for
# them, are distillery.config.build's) ----------------------------------------------------------------


def card_settings(params: Params) -> dict[str, Any]:
    """The teacher, judge, verifier and corpora settings build's dataset card records."""
    g, j, v = params.generate, params.judge, params.verify
    corpora = {
        name: {**c.model_dump(include=set(CARD_CORPUS_FIELDS)), "cap": params.mix.caps.get(name)}
        for name, c in sorted(params.ingest.corpora.items())
    }
    return {
        **({"corpora": corpora, "own_generations": params.mix.own} if corpora else {}),
        "teacher": g.llm.model_dump(include=set(CARD_LLM_FIELDS)),
        "teacher_sampling": {**g.sampling.model_dump(), "n": g.num_generations},
        **({"later_rounds": [r.model_dump(mode="json") for r in g.rounds]} if g.rounds else {}),
        "prompt_template": g.prompt_template,
        "judge": {**j.llm.model_dump(include=set(CARD_LLM_FIELDS)), "policy": j.policy},
        "verifier": {"library": "math-verify", **v.model_dump(exclude=set(VERIFY_EXECUTION_FIELDS))},
    }


# Every other stage depends on it, so DVC validates the whole params file before any stage runs or
# is declared up to date (distillery.stages.check_params says why).
CHECKED_PARAMS = "data/check_params/valid.txt"
# Each stage's code by what decides its outputs (distillery.code_identity): written by check_params,
# which depends on every module file, and read by the stage in place of those files.
CODE_RECORDS = "data/check_params/code"


def code_record_path(stage: str) -> str:
    return f"{CODE_RECORDS}/{stage}.txt"


_WRITTEN_OUT: dict[str, DvcStage] = {  # the stages not declared yet (distillery.declaration)
    "check_params": DvcStage(
        rules=("check_params",),
        targets=(CHECKED_PARAMS,),
        outs=(CHECKED_PARAMS,),
        params=(),
        whole_params_file=True,
        persist=True,
    ),
    "generate": DvcStage(
        rules=("generate_shard", "generate_gather"),
        targets=("data/generate/generations.parquet", "metrics/generate.json"),
        outs=("data/generate/shards", "data/generate/generations.parquet"),
        metrics=("metrics/generate.json",),
        reads=("data/sample/problems.parquet",),
        # Not generate.rounds: the later rounds are their own stages, and never change round 1.
        params=("base.seed", *(f"generate.{key}" for key in GenerateConfig.model_fields if key != "rounds")),
    ),
    "verify": DvcStage(
        rules=("verify_shard", "verify_gather"),  # one job per generate shard, then one that merges them
        targets=("data/verify/verified.parquet", "metrics/verify.json"),
        outs=("data/verify/shards", "data/verify/verified.parquet"),
        metrics=("metrics/verify.json",),
        reads=("data/generate/generations.parquet", "data/sample/problems.parquet"),
        params=("base.seed", "verify", "generate.num_shards"),
    ),
    "judge": DvcStage(
        rules=("judge_shard", "judge_gather"),  # one job per verify shard, then one that merges them
        targets=("data/judge/judged.parquet", "data/judge/disagreements.md", "metrics/judge.json"),
        outs=("data/judge/shards", "data/judge/judged.parquet", "data/judge/disagreements.md"),
        metrics=("metrics/judge.json",),
        reads=("data/verify/shards", "data/sample/problems.parquet"),
        params=("base.seed", "judge", "generate.num_shards"),
    ),
}


# A later round of generation (generate.rounds) is three stages, each after the one before it and the
# round before: generate_round_<r> -> verify_round_<r> -> judge_round_<r> (distillery.rounds).
MAX_ROUNDS = 8


def _round_stages(r: int) -> dict[str, DvcStage]:
    def wanted(params: Params, r: int = r) -> bool:
        return r in later_rounds(params)

    def tables(stage: str, name: str) -> tuple[str, str]:
        return f"{stage_dir(stage, r)}/{name}", f"{stage_dir(stage, r - 1)}/{name}"

    generations, generations_before = tables("generate", "generations.parquet")
    verified, verified_before = tables("verify", "verified.parquet")
    judged, judged_before = tables("judge", "judged.parquet")
    return {
        metrics_name("generate", r): DvcStage(
            rules=("generate_round_shard", "generate_round_gather"),
            targets=(generations, f"metrics/{metrics_name('generate', r)}.json"),
            outs=(f"{stage_dir('generate', r)}/shards", generations),
            metrics=(f"metrics/{metrics_name('generate', r)}.json",),
            reads=("data/sample/problems.parquet", judged_before, generations_before),
            params=("base.seed", "generate"),
            wanted=wanted,
            code_of="generate",
        ),
        metrics_name("verify", r): DvcStage(
            rules=("verify_round_shard", "verify_round_gather"),
            targets=(verified, f"metrics/{metrics_name('verify', r)}.json"),
            outs=(f"{stage_dir('verify', r)}/shards", verified),
            metrics=(f"metrics/{metrics_name('verify', r)}.json",),
            reads=(f"{stage_dir('generate', r)}/shards", verified_before, "data/sample/problems.parquet"),
            params=("base.seed", "verify", "generate.num_shards"),
            wanted=wanted,
            code_of="verify",
        ),
        metrics_name("judge", r): DvcStage(
            rules=("judge_round_shard", "judge_round_gather"),
            targets=(judged, f"{stage_dir('judge', r)}/disagreements.md", f"metrics/{metrics_name('judge', r)}.json"),
            outs=(f"{stage_dir('judge', r)}/shards", judged, f"{stage_dir('judge', r)}/disagreements.md"),
            metrics=(f"metrics/{metrics_name('judge', r)}.json",),
            reads=(f"{stage_dir('verify', r)}/shards", judged_before, "data/sample/problems.parquet"),
            params=("base.seed", "judge", "generate.num_shards"),
            wanted=wanted,
            code_of="judge",
        ),
    }


ROUND_STAGES: dict[str, DvcStage] = {name: spec for r in range(2, MAX_ROUNDS + 1) for name, spec in _round_stages(r).items()}


def _declared_stages() -> dict[str, Stage]:
    """Each params section's declared stage (`STAGE` in distillery.config.<section>), in the order
    of the sections in `Params`: the pipeline's."""
    found = {}
    for section in Params.model_fields:
        stage = getattr(importlib.import_module(f"distillery.config.{section}"), "STAGE", None) if section != "base" else None
        if stage is not None:
            found[section] = stage
    return found


DECLARED: dict[str, Stage] = _declared_stages()


def _dvc_stage(decl: Stage) -> DvcStage:
    outs, metrics = decl.dvc_outs()
    return DvcStage(
        rules=(decl.name,),
        targets=tuple(decl.targets()),
        outs=tuple(outs),
        metrics=tuple(metrics),
        plots=decl.plots,
        reads=decl.dvc_reads,
        params=decl.params,
        wanted=decl.wanted,
    )


# Every DVC stage, in pipeline order: check_params, then the params sections' order, the later rounds
# of generation after judge.
STAGES: dict[str, DvcStage] = {
    stage: spec
    for name in ("check_params", *Params.model_fields)
    if name in _WRITTEN_OUT or (name in DECLARED and DECLARED[name].versioned)
    for stage, spec in (
        {name: _dvc_stage(DECLARED[name]) if name in DECLARED else _WRITTEN_OUT[name]} | (ROUND_STAGES if name == "judge" else {})
    ).items()
}

# Flags of every stage's Snakemake run under DVC. --nolock: DVC already holds the repository's lock,
# and Snakemake's own lock outlives a SIGKILL (every later run would stop at a LockException).
# --rerun-incomplete: a job killed mid-write is re-run, never trusted. --show-failed-logs: the
# stage's own message reaches the console of `dvc repro`, not only logs/<stage>/. --quiet rules host:
# no job dump (each job's inputs, outputs and shell command; 60+ lines on a failure); the Snakefile's
# onerror handler ends the console with each failed job's own message and log path
# (distillery.console), and progress lines remain.
SNAKEMAKE = "snakemake --cores all --nolock --rerun-incomplete --show-failed-logs --quiet rules host"

HEADER = """\
# GENERATED by `distillery dvc-yaml` from params.yaml and src/distillery/workflow.py: do not edit.
# One DVC stage per pipeline stage; each runs only its own Snakemake rules (--allowed-rules), so DVC
# decides what is stale and Snakemake never re-runs another stage's outputs. Deps are the files the
# stage reads (those params.yaml names included: a user's source or benchmark file is tracked), its
# rule file and the record of the code it runs, which check_params writes from the module files
# (src/distillery/code_identity.py). A run whose params name other files than this file tracks
# regenerates it and stops: run `dvc repro` again.
# Through Slurm: SNAKEMAKE_PROFILE=profiles/slurm dvc repro
"""


def output_folders() -> dict[str, str]:
    """The folder of each stage's outputs under data/ (data/<stage>), by the stage that makes it."""
    folders = {}
    for name, spec in STAGES.items():
        for out in spec.outs:
            parts = Path(out).parts
            if parts[0] == "data" and len(parts) > 1:
                folders.setdefault(f"data/{parts[1]}", name)
    return folders


def wanted_stages(params: Params) -> list[str]:
    return [name for name, spec in STAGES.items() if spec.wanted is None or spec.wanted(params)]


def code_deps(params: Params, name: str) -> list[str]:
    """The stage's rule file and code record; check_params' are the module files of every stage,
    whole (its record of each stage is what changes when that stage's code does)."""
    if name != "check_params":
        own = STAGES[name].code_of or name
        return [f"rules/{own}.smk", code_record_path(own)]
    return ["rules/check_params.smk", *sorted({f for s in coded_stages(params) for f in relative_code_files(s)})]


def coded_stages(params: Params) -> list[str]:
    """The wanted stages that have their own code record (a later round's stages share their stage's)."""
    return [name for name in wanted_stages(params) if STAGES[name].code_of is None]


def stage_outs(params: Params, name: str) -> list[Any]:
    spec = STAGES[name]
    outs = [*spec.outs, *(code_record_path(s) for s in coded_stages(params) if s != name)] if name == "check_params" else spec.outs
    return [{o: {"persist": True}} for o in outs] if spec.persist else list(outs)


def stage_deps(params: Params, name: str) -> list[str]:
    spec = STAGES[name]
    named = list(named_inputs(params, name).values())
    code = code_deps(params, name)
    own = spec.reads(params) if callable(spec.reads) else spec.reads
    reads = list(own) if name == "check_params" else [CHECKED_PARAMS, *own]
    if (spec.code_of or name) not in ("generate", "mix"):  # the stages after mix read its tables when there is one
        reads = [{OWN_PROBLEMS: problems_table(params), OWN_GENERATIONS: generations_table(params)}.get(r, r) for r in reads]
    return list(dict.fromkeys([*reads, *named, *code]))


def stage_params(params: Params, spec: DvcStage) -> tuple[str, ...]:
    return spec.params(params) if callable(spec.params) else spec.params


def dvc_stages(params: Params) -> dict[str, dict[str, Any]]:
    stages: dict[str, dict[str, Any]] = {}
    for name in wanted_stages(params):
        spec = STAGES[name]
        entry: dict[str, Any] = {
            "cmd": f"{SNAKEMAKE} --allowed-rules {' '.join(spec.rules)} -- {' '.join(spec.targets)}",
            "deps": stage_deps(params, name),
            "params": [{"params.yaml": None}] if spec.whole_params_file else list(stage_params(params, spec)),
            "outs": stage_outs(params, name),
        }
        if spec.metrics:
            # Both are git-tracked metrics (cache: false): DVC saves no run-cache entry for a stage with
            # an uncached output that is neither a metric nor a plot (dvc/stage/__init__.py), and arms
            # of an ablation are restored from the run cache. `dvc metrics show metrics/headline` is the
            # table that fits a terminal (distillery.metrics).
            entry["metrics"] = [{path: {"cache": False}} for m in spec.metrics for path in (m, headline_path(m).as_posix())]
        if spec.plots:
            entry["plots"] = [{path: dict(options)} for path, options in spec.plots]
        stages[name] = entry
    return stages


class _IndentedDumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # lists indented under their key, as people write them


def render(params: Params) -> str:
    stages = [
        yaml.dump({name: spec}, Dumper=_IndentedDumper, sort_keys=False, width=200, default_flow_style=False)
        for name, spec in dvc_stages(params).items()
    ]
    out = HEADER + "\nstages:\n" + "\n".join("\n".join("  " + line if line else line for line in s.splitlines()) + "\n" for s in stages)
    if "grpo" in dvc_stages(params):
        plots = yaml.dump({"plots": [{k: v} for k, v in TOP_PLOTS.items()]}, Dumper=_IndentedDumper, sort_keys=False, width=200)
        out += "\n" + plots
    return out


# -- the user's own files: versioned, or said --------------------------------------------------------

# Big files and folders (datasets, model weights) belong in DVC's cache, small text in git.
GIT_ADD_MAX_BYTES = 10 * 1024 * 1024


def setting_of(stage: str, input_name: str, params: Params | None = None) -> str:
    """The params key behind one of `named_inputs(params, stage)`'s names."""
    declared = DECLARED.get(stage)
    if params is not None and declared is not None and declared.models is not None and input_name in declared.models(params):
        return declared.models(params)[input_name][0]
    if input_name == "source":
        return "sample.source"
    if input_name.startswith("corpus_"):
        return f"ingest.corpora.{input_name.removeprefix('corpus_')}.path"
    if input_name == "corpus":
        return "models.tiny.corpus"
    if input_name in ("prompt_template", "judge_template"):
        return "judge.prompt_template"
    if input_name.startswith("benchmark_"):
        return f"base.benchmarks.{input_name.removeprefix('benchmark_')}.path"
    if input_name == "accelerate_config":
        return f"{stage}.launch.accelerate_config"
    if input_name == "reward_model":
        return "build.reward_model.model"
    return f"{stage}.llm.model" if stage in ("generate", "judge", "evaluate") else f"{stage}.model"


def _git(root: Path, *args: str) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _dvc_tracked(path: Path, top: Path) -> bool:
    """`dvc add` of the path or of a folder above it left a `<name>.dvc` file beside it."""
    for p in (path, *path.parents):
        if p == top:
            return False
        if p.with_name(p.name + ".dvc").is_file():
            return True
    return False


def _git_tracked(path: Path, top: Path) -> bool:
    """Every file of `path` (a file, or a folder's files) is in git's index."""
    r = _git(top, "ls-files", "-z", "--full-name", "--", str(path.relative_to(top)))
    if r is None or r.returncode != 0:
        return False
    tracked = {f for f in r.stdout.split("\0") if f}
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return bool(files) and all(str(f.relative_to(top)) in tracked for f in files)


def _ignored(path: Path, top: Path) -> bool:
    return (r := _git(top, "check-ignore", "-q", "--", str(path))) is not None and r.returncode == 0


def _version_command(path: Path, shown: str, top: Path) -> str:
    if not (_ignored(path, top) or path.is_dir() or path.stat().st_size > GIT_ADD_MAX_BYTES):
        return f"`git add {shown}` (then commit)"
    # DVC's record, <path>.dvc, must be one git sees: the file's, or a folder's above it.
    for up, target in enumerate((path, *path.parents)):
        if target == top or up > len(Path(shown).parents) - 1:
            break
        if not _ignored(target.with_name(target.name + ".dvc"), top):
            name = shown if up == 0 else str(Path(shown).parents[up - 1])
            return f"`dvc add {name}` (then commit {name}.dvc)"
    return f"`dvc add {shown}`, after a `!` line in .gitignore that lets git see {shown}.dvc (then commit it)"


def unversioned_inputs(params: Params, stages: list[str] | None = None, root: str | Path = ".") -> list[str]:
    """One warning per file that params name (for `stages`, default all) that neither git nor DVC
    versions: dvc.lock records its hash, but no commit can bring that version back, so an old
    version of the dataset could not be rebuilt. Each names the setting and the command that
    versions it. Outside a git repository nothing can be said, and nothing is."""
    root = Path(root)
    r = _git(root, "rev-parse", "--show-toplevel")
    if r is None or r.returncode != 0:
        return []
    top = Path(r.stdout.strip()).resolve()
    made_by_stages = {os.path.normpath(o) for spec in STAGES.values() for o in spec.outs} | set(MODEL_OUTPUTS)
    named: dict[str, str] = {}  # path -> the first setting that names it
    for stage, spec in STAGES.items():
        if (stages is not None and stage not in stages) or (spec.wanted is not None and not spec.wanted(params)):
            continue
        for input_name, path in named_inputs(params, stage).items():
            norm = os.path.normpath(path)
            if any(norm == out or norm.startswith(out + "/") for out in made_by_stages):
                continue  # a stage's output: DVC versions it as one
            named.setdefault(path, setting_of(stage, input_name, params))
    warnings = []
    for path, setting in named.items():
        # The folder resolved, not the file: DVC may link a tracked file to its cache.
        full = Path(os.path.realpath((root / path).parent)) / Path(path).name
        if not full.exists():
            continue  # the stage that reads it says so
        if not full.is_relative_to(top):
            warnings.append(
                f"{setting} names {path}, outside this repository: neither git nor DVC versions it, so no commit can "
                "bring this version back; copy it into the repository and `dvc add` it there"
            )
        elif not (_dvc_tracked(full, top) or _git_tracked(full, top)):
            warnings.append(
                f"{setting} names {path}, which neither git nor DVC versions: no commit can bring this version back; "
                f"version it with {_version_command(full, path, top)}"
            )
    return warnings


def stale_dvc_yaml(params: Params, path: str | Path = "dvc.yaml") -> str | None:
    """The dvc.yaml that `params` call for, when the file at `path` differs from it (else None)."""
    expected = render(params)
    path = Path(path)
    current = path.read_text() if path.is_file() else None
    return expected if current != expected else None
