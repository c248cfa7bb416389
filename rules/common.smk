# Helpers shared by the rules: validated params and the JSON each stage receives.
import sys
from pathlib import Path

from distillery.config import stage_config, validate_params
from distillery.errors import ConfigError

try:
    PARAMS = validate_params(config, "params.yaml")
except ConfigError as exc:
    # One readable message before any job starts, instead of a traceback per job.
    sys.exit(f"distillery: {exc}")


def stage_json(stage, **extra):
    """The stage's params section plus the base seed, as the JSON its CLI validates."""
    return stage_config(stage, getattr(PARAMS, stage), seed=PARAMS.base.seed, **extra)


def benchmarks_json(names):
    return {n: PARAMS.base.benchmarks[n].model_dump(mode="json") for n in names}


def benchmark_paths(names):
    """The benchmarks that are local files (inputs Snakemake can check); hub ids are read at run time."""
    return [p for p in (PARAMS.base.benchmarks[n].path for n in names) if Path(p).suffix.lower() in (".jsonl", ".json", ".parquet")]


def sample_inputs(wildcards):
    """The source file when it is local (a hub dataset id has no file to track)."""
    source = PARAMS.sample.source
    return {"source": source} if Path(source).suffix in (".jsonl", ".json", ".parquet") else {}


def generate_shards(wildcards):
    return expand("data/generate/shards/shard-{shard}.parquet", shard=range(PARAMS.generate.num_shards))


def generate_shard_stats(wildcards):
    return expand("data/generate/shards/shard-{shard}.json", shard=range(PARAMS.generate.num_shards))


def card_settings():
    g, j, v = PARAMS.generate, PARAMS.judge, PARAMS.verify
    return {
        "teacher": g.llm.model_dump(include={"backend", "model", "revision"}),
        "teacher_sampling": {**g.sampling.model_dump(), "n": g.num_generations},
        "prompt_template": g.prompt_template,
        "judge": {**j.llm.model_dump(include={"backend", "model", "revision"}), "policy": j.policy},
        "verifier": {"library": "math-verify", **v.model_dump(exclude={"workers"})},
    }
