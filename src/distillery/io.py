"""Reading and writing stage files. Every stage reads and writes through here, so a missing or
malformed input always gets the same clear message."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from distillery.errors import DistilleryError, MissingInputError


def require(path: str | Path, what: str = "input") -> Path:
    path = Path(path)
    if path.exists():
        return path
    norm = Path(os.path.normpath(path)).as_posix()
    # Which stage makes it comes from the stage declarations (distillery.workflow), loaded only for
    # this message: a message decides no output, so they stay out of every stage's code identity.
    for prefix, stage in importlib.import_module("distillery.workflow").output_folders().items():
        if norm == prefix or norm.startswith(prefix + "/"):
            raise MissingInputError(
                f"{what} {path} does not exist: it is made by the `{stage}` stage; run `dvc repro {stage}` "
                f"(or `snakemake --profile profiles/local {path}`) first"
            )
    raise MissingInputError(f"{what} {path} does not exist: check the path in params.yaml")


def read_parquet(path: str | Path, what: str = "input") -> pl.DataFrame:
    """A parquet file that is not a stage table (those go through distillery.tables.read_table)."""
    path = require(path, what)
    try:
        return pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for corrupt files
        raise DistilleryError(f"{what} {path} is not a readable parquet file ({exc}); re-run the stage that makes it") from None


def write_parquet(df: pl.DataFrame, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    df.write_parquet(tmp, compression="zstd", statistics=True)
    os.replace(tmp, path)  # a killed job never leaves a half-written output behind


# Set on a JSON-lines row whose line was not valid UTF-8 (its bad bytes became U+FFFD), so that a
# stage can reject it with a reason instead of keeping altered text without a word.
UNDECODABLE = "_distillery_undecodable_bytes"


def read_records(path: str | Path, what: str = "input") -> list[dict[str, Any]]:
    """Rows of a local .jsonl/.json/.parquet file, as plain dicts (types unchecked: callers validate)."""
    path = require(path, what)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return read_parquet(path, what).to_dicts()
    if suffix == ".jsonl":
        return list(iter_json_lines(path))
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise DistilleryError(f"{path} must hold a JSON list of objects")
        return data
    raise DistilleryError(f"{path}: unsupported file type {suffix!r}; use .jsonl, .json or .parquet")


def iter_json_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The objects of a JSON-lines file one at a time (a corpus of traces need not fit in memory)."""
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line, bad = raw.decode("utf-8"), None
            except UnicodeDecodeError as exc:
                line, bad = (
                    raw.decode("utf-8", errors="replace"),
                    f"line {lineno}: byte 0x{raw[exc.start]:02x} at offset {exc.start} is not UTF-8",
                )
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DistilleryError(f"{path} line {lineno} is not valid JSON ({exc.msg}); fix or remove that line") from None
            if not isinstance(row, dict):
                raise DistilleryError(f"{path} line {lineno} is a JSON {type(row).__name__}, not an object")
            if bad:
                row[UNDECODABLE] = bad
            yield row


def write_json(obj: Any, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def load_rows(
    source: str, split: str = "train", revision: str | None = None, what: str = "input", config: str | None = None
) -> list[dict[str, Any]]:
    """Rows from a local file or a hub dataset id (`config`: the hub dataset's config name); `what`
    names the setting in errors. `iter_rows` gives them one at a time."""
    return list(iter_rows(source, split, revision, what, config))


def iter_rows(
    source: str, split: str = "train", revision: str | None = None, what: str = "input", config: str | None = None
) -> Iterator[dict[str, Any]]:
    """The rows of `load_rows`, one at a time: a corpus of long traces need not fit in memory.

    Parquet files and hub ids go through `datasets.load_dataset`, the same call either way. JSON
    lines are read with the json module: datasets' JSON builder stores a mixed-type column as a
    `Json` feature in which the string "10" and the number 10 become the same value, so a
    non-string answer could no longer be told apart and rejected.
    """
    path = Path(source)
    if path.suffix.lower() == ".jsonl":
        yield from iter_json_lines(require(path, what))
        return
    if path.suffix.lower() == ".json":
        yield from read_records(path, what)
        return
    import datasets  # heavy; only for parquet and hub sources

    if path.suffix.lower() == ".parquet":
        if not path.exists():
            read_records(path, what)  # raises the standard missing-file message
        kwargs: dict[str, Any] = {"path": "parquet", "data_files": str(path)}
        split = "train"  # a data_files dataset has a single `train` split
    elif path.exists() or "/" not in source or source.startswith((".", "/")):
        raise DistilleryError(f"{what} = {source!r} is neither a .jsonl/.json/.parquet file nor a hub dataset id (owner/name)")
    else:
        kwargs = {"path": source, "revision": revision, **({"name": config} if config else {})}
    try:
        ds = datasets.load_dataset(**kwargs, split=split)
    except Exception as exc:  # hub/network/format errors: name the source and the setting
        which = f"config {config!r}, split {split!r}" if config else f"split {split!r}"
        raise DistilleryError(f"could not load {what} = {source!r} ({which}): {exc}") from None
    yield from ds  # Arrow-backed: rows are decoded as they are read


def file_md5(path: str | Path) -> str:
    """A file's md5, the hash DVC records for it in dvc.lock."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def utf8_text(text: str | None) -> str | None:
    """Text as parquet can hold it: a server's JSON may carry lone surrogates ("\\ud800"), which
    are not UTF-8; each becomes U+FFFD. The journal keeps the text exactly as it came."""
    if not text:
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
