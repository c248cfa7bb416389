"""Per-row provenance: which settings and which code made a row. Ids and hashes, not copies.

Every stage output carries, for each stage that shaped its rows:

    <stage>_params   a 16-hex hash of the stage's settings that decide *what* it produces (those
                     that decide only *how* or *where*, such as shard counts, endpoints, worker
                     counts, are left out, so changing them changes no row)
    <stage>_code     "distillery <version> code <hash>": a hash of the code of the modules the stage
                     runs, docstrings, comments and Field descriptions left out
                     (distillery.code_identity), never a git commit, so a commit that does not
                     touch a stage's code changes none of its bytes

For the LLM stages (generate, judge, evaluate) `<stage>_code` is the code that answered the
request, recorded in the journal when it finished: a row reused from the journal keeps the
version that made it, so a re-run that reuses everything rewrites the same bytes. Their request
keys (`request_key`, `judge_request_key`) hash model, revision, model contents, rendered prompt,
sampling and sample index, which is the whole recipe of one generation.

Constant columns cost almost nothing in parquet (dictionary + run-length encoding); see
docs/measurements.md for the figure.
"""

from __future__ import annotations

import copy
import functools
import importlib
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl

from distillery.code_identity import code_hash
from distillery.config.base import Section, is_execution
from distillery.keys import stable_hash

PARAMS_SUFFIX = "_params"
CODE_SUFFIX = "_code"

# Identity columns that are provenance but do not follow the suffix convention.
PROVENANCE_COLUMNS = frozenset(
    {
        "source_row",
        "source_version",
        "request_key",
        "judge_request_key",
        "teacher_fingerprint",
        "judge_fingerprint",
        "model_fingerprint",
        "verifier",
    }
)


def execution_paths(model: type[Section], prefix: str = "") -> list[str]:
    """Dotted paths of `model`'s fields marked execution-only (distillery.config.is_execution),
    found through nested sections; a marked section is one path, its keys are not listed apart."""
    paths: list[str] = []
    for name, field in model.model_fields.items():
        if is_execution(field):
            paths.append(prefix + name)
        elif isinstance(field.annotation, type) and issubclass(field.annotation, Section):
            paths += execution_paths(field.annotation, f"{prefix}{name}.")
    return paths


@functools.cache
def execution_only(stage: str) -> list[str]:
    """The settings of `stage` that decide how or where it runs, not what it produces (dotted
    paths), as its config model marks them; [] for a stage without one. The model is found by
    name, not imported here: importing every stage's config would put all of them in each stage's
    code identity (distillery.code_identity), and each stage imports its own config anyway."""
    try:
        module = importlib.import_module(f"distillery.config.{stage}")
    except ModuleNotFoundError as exc:
        if exc.name != f"distillery.config.{stage}":
            raise
        return []
    model = getattr(module, "MODEL", None)  # distillery.config.base is no stage's
    return execution_paths(model) if model is not None else []


def _drop(settings: dict[str, Any], dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    node: Any = settings
    for p in parents:
        node = node.get(p) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(leaf, None)


def content_settings(stage: str, settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` without the stage's execution-only keys (a deep copy)."""
    out = copy.deepcopy(settings)
    for dotted in execution_only(stage):
        _drop(out, dotted)
    return out


def params_hash(stage: str, settings: dict[str, Any]) -> str:
    return stable_hash(content_settings(stage, settings))[:16]


def package_version() -> str:
    try:
        return metadata.version("distillery")
    except metadata.PackageNotFoundError:
        from distillery import __version__

        return __version__


def code_version(stage: str) -> str:
    """What code made a stage's rows: the package version and a hash of the modules it runs."""
    return f"distillery {package_version()} code {code_hash(stage)}"


def library_version(name: str) -> str:
    try:
        return f"{name} {metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return f"{name} unknown"


def source_version(source: str, revision: str | None) -> str:
    """What version of an input was read: a local file's md5 (the hash DVC records for it), or a
    hub dataset's revision."""
    path = Path(source)
    if path.is_file():
        from distillery.io import file_md5

        return f"md5 {file_md5(path)}"
    return f"revision {revision}" if revision else "revision unpinned"


def stamp(df: pl.DataFrame, stage: str, settings: dict[str, Any], **extra: str | None) -> pl.DataFrame:
    """`df` with `<stage>_params`, `<stage>_code` and any `extra` constant columns appended."""
    cols = {f"{stage}{PARAMS_SUFFIX}": params_hash(stage, settings), f"{stage}{CODE_SUFFIX}": code_version(stage), **extra}
    return df.with_columns(*(pl.lit(v, dtype=pl.String).alias(k) for k, v in cols.items()))


def is_provenance_column(name: str) -> bool:
    """Columns that say what made a row rather than what the row is (the diff reports them apart)."""
    return name.endswith((PARAMS_SUFFIX, CODE_SUFFIX)) or name in PROVENANCE_COLUMNS
