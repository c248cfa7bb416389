"""Which code a stage runs, identified by its content rather than by a git commit.

A stage's code is its module under `distillery/stages/` and every distillery module that imports,
transitively (imports inside functions count). The same list is the stage's code deps in dvc.yaml
(`distillery.dvc_yaml`), so DVC re-runs a stage exactly when the bytes that `<stage>_code` hashes
change: a commit that touches only documentation, or another stage's module, changes no output.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# Modules that change no output: the package marker and the exception types.
NEUTRAL = frozenset({"__init__.py", "errors.py"})


def _module_file(module: str) -> Path | None:
    parts = module.split(".")
    if parts[0] != "distillery":
        return None
    p = PACKAGE_DIR.joinpath(*parts[1:])
    if (p / "__init__.py").is_file():
        return p / "__init__.py"
    return p.with_suffix(".py") if p.with_suffix(".py").is_file() else None


@functools.cache  # every Snakemake start (each Slurm job too) renders dvc.yaml: parse each file once
def imports_of(path: Path) -> frozenset[Path]:
    """The distillery module files `path` imports, at any level of the file."""
    found: set[Path | None] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        found |= {_module_file(n) for n in names if n.split(".")[0] == "distillery"}
    return frozenset(p for p in found if p is not None)


@functools.cache
def stage_code_files(stage: str) -> tuple[Path, ...]:
    """The module files stage `stage` runs (absolute paths, sorted), neutral modules left out."""
    seen: set[Path] = set()
    todo = [PACKAGE_DIR / "stages" / f"{stage}.py"]
    while todo:
        f = todo.pop()
        if f not in seen:
            seen.add(f)
            todo += imports_of(f)
    return tuple(sorted(p for p in seen if p.relative_to(PACKAGE_DIR).as_posix() not in NEUTRAL))


def relative_code_files(stage: str) -> list[str]:
    """stage_code_files as repository paths (src/distillery/...), as dvc.yaml lists them."""
    return [f"src/distillery/{p.relative_to(PACKAGE_DIR).as_posix()}" for p in stage_code_files(stage)]


@functools.cache
def code_hash(stage: str) -> str:
    """12 hex digits over the paths and bytes of the files the stage runs."""
    h = hashlib.sha256()
    for p in stage_code_files(stage):
        h.update(p.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0")
        h.update(p.read_bytes() + b"\0")
    return h.hexdigest()[:12]
