# Helpers shared by the rules: validated params, the JSON each stage receives, and the files that
# params.yaml names for each stage (distillery.workflow: the same answer dvc.yaml is generated from).
import os
import sys
from pathlib import Path

from distillery.config import stage_config, validate_params_file
from distillery.config.generate import round_config
from distillery.rounds import judged_path, stage_dir
from distillery.errors import ConfigError
from distillery.stages.check_params import write_code_records
from distillery.workflow import (
    DECLARED,
    card_settings as workflow_card_settings,
    code_record_path as code_record,  # the rules' input `code`: the record of the stage's code
    generations_table,
    mixing,
    named_inputs,
    problems_table,
    stale_dvc_yaml,
    unpinned_hub_ids,
    unversioned_inputs,
)

try:
    PARAMS = validate_params_file(config, "params.yaml")
except ConfigError as exc:
    # One readable message before any job starts, instead of a traceback per job.
    sys.exit(f"distillery: {exc}")

for _warning in unpinned_hub_ids(PARAMS):
    print(f"distillery: warning: {_warning}", file=sys.stderr)

# Files params name that no commit could bring back; said once per run (not by each job's own
# Snakemake), and under `dvc repro` for the stage DVC is running only.
def _warn_unversioned_inputs():
    if not workflow.is_main_process:
        return
    dvc_stage = os.environ.get("DVC_STAGE")
    for warning in unversioned_inputs(PARAMS, [dvc_stage] if dvc_stage else None):
        print(f"distillery: warning: {warning}", file=sys.stderr)


_warn_unversioned_inputs()


# Each stage's code record, the input that stands for the code it runs (distillery.code_identity):
# rewritten only where what decides the stage's outputs changed, before the DAG is built. Under
# `dvc repro` by check_params' run alone: the records are its outputs, which DVC has recorded.
if workflow.is_main_process and os.environ.get("DVC_STAGE", "check_params") == "check_params":
    write_code_records()


# What verify and every later stage read: sample's and generate's tables, or mix's (distillery.workflow).
PROBLEMS_TABLE = problems_table(PARAMS)
GENERATIONS_TABLE = generations_table(PARAMS)


def _check_dvc_yaml():
    """dvc.yaml must track the files params.yaml names now. Under `dvc repro` (DVC_STAGE is set) a
    stale one is regenerated and the run stops, since DVC read the old one before starting; a plain
    snakemake run only warns. A job's own Snakemake (a Slurm job, a local subprocess) has been
    checked by the run that started it."""
    if not workflow.is_main_process:
        return
    path = Path(workflow.basedir) / "dvc.yaml"
    expected = stale_dvc_yaml(PARAMS, path)
    if expected is None:
        return
    if os.environ.get("DVC_STAGE"):
        path.write_text(expected)
        sys.exit("distillery: params.yaml names other files than dvc.yaml tracked (a source, benchmark, prompt or model), "
                 "so dvc.yaml has been regenerated from it (`distillery dvc-yaml`): run `dvc repro` again, and commit dvc.yaml")
    print("distillery: warning: dvc.yaml does not match params.yaml (the files it names, or the stages); "
          "run `distillery dvc-yaml` before `dvc repro`", file=sys.stderr)


_check_dvc_yaml()


def stage_json(stage, **extra):
    """The stage's params section plus the base seed, as the JSON its CLI validates."""
    return stage_config(stage, getattr(PARAMS, stage), seed=PARAMS.base.seed, **extra)


def generate_json(round_number):
    """generate's JSON for one round's jobs: the rounds up to it only, so a later round's settings never
    change an earlier round's jobs (distillery.config.generate.round_config)."""
    return stage_config("generate", round_config(PARAMS.generate, int(round_number)), seed=PARAMS.base.seed)


def round_shard_files(pattern):
    """An input function: a later round's `pattern` for every shard (what its gather reads)."""
    return lambda wildcards: expand(pattern, shard=range(PARAMS.generate.num_shards), round=wildcards.round)


def before(path_of_round):
    """An input function: the file `path_of_round(r)` of the round before this one (what a later round
    reads of the rounds so far, or merges into its own gathered table)."""
    return lambda wildcards: path_of_round(int(wildcards.round) - 1)


def benchmarks_json(names):
    return {n: PARAMS.base.benchmarks[n].model_dump(mode="json") for n in names}


def inputs_named_by_params(stage):
    """An input function: the files params.yaml names for `stage` (use with unpack())."""
    return lambda wildcards: named_inputs(PARAMS, stage)


def shard_files(pattern):
    """An input function: `pattern` for every shard of generate.num_shards (what a gather reads)."""
    return lambda wildcards: expand(pattern, shard=range(PARAMS.generate.num_shards))


def verify_shard_generations(wildcards):
    """A verify job reads its generate shard; with a mix, the mixed table (it keeps its shard's problems)."""
    return GENERATIONS_TABLE if mixing(PARAMS) else f"data/generate/shards/shard-{wildcards.shard}.parquet"


def card_settings():
    """What build's dataset card records (distillery.workflow: the same fields DVC tracks for build)."""
    return workflow_card_settings(PARAMS)


# A declared stage's inputs, outputs and command come from its declaration in
# distillery/config/<stage>.py (distillery.declaration); its file under rules/ adds what only
# Snakemake says (params it computes, logs, threads, its environment).
def declared_inputs(stage):
    """The stage's declared inputs, the files params.yaml names for it, and its code record (a DVC
    stage's: check_params writes one for those alone)."""
    code = {"code": code_record(stage)} if DECLARED[stage].versioned else {}
    return {**DECLARED[stage].rule_inputs(PARAMS), **named_inputs(PARAMS, stage), **code}


def declared_outputs(stage, reported=None):
    """The stage's declared outputs; those named in `reported` (name -> Snakemake's `report()`
    arguments: category, caption, labels) are filed in `snakemake --report`, which the declaration,
    free of Snakemake, does not know of."""
    reported = reported or {}
    outs = {name: directory(path) if kind == "dir" else path for name, (path, kind) in DECLARED[stage].rule_outputs().items()}
    return {name: report(path, **reported[name]) if name in reported else path for name, path in outs.items()}


def declared_shell(stage, log="{log:q}"):
    return DECLARED[stage].shell(PARAMS, log)
