"""Which code a stage runs, identified by what decides its outputs rather than by a git commit.

A stage's code is its module under `distillery/stages/`, the launcher the CLI runs it under (if
any), and every distillery module those import, transitively (imports inside functions count).
Each file counts by its normalized syntax tree: docstrings, comments, layout and the `description=`
text of pydantic `Field(...)` calls are left out, since none of them changes what a stage writes.
So a documentation edit, or one in a module the stage does not import, changes no stage's hash.

DVC hashes whole files, so dvc.yaml does not list these files as a stage's deps: the check_params
stage depends on all of them and writes each stage's `code_record` to `data/check_params/code/`,
and each stage depends on its own record (docs/design.md, "Code identity").
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# Modules that change no output: the package marker and the exception types.
NEUTRAL = frozenset({"__init__.py", "errors.py"})
# Code the CLI runs a stage under, which the stage module does not import.
LAUNCHERS = {"sft": ("sft_launch.py",), "dpo": ("sft_launch.py",), "grpo": ("sft_launch.py",)}
# Keywords of `Field(...)` that only document a setting.
DOC_KEYWORDS = frozenset({"description"})


def _module_file(module: str, package: Path) -> Path | None:
    parts = module.split(".")
    if parts[0] != "distillery":
        return None
    p = package.joinpath(*parts[1:])
    if (p / "__init__.py").is_file():
        return p / "__init__.py"
    return p.with_suffix(".py") if p.with_suffix(".py").is_file() else None


def _is_text(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def _is_field(call: ast.Call) -> bool:
    func = call.func
    return (func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)) == "Field"


def _undocument(tree: ast.Module) -> ast.Module:
    """Drops, in place, what documents code without running: string statements (docstrings among
    them) and the doc-only keywords of `Field(...)` calls."""
    for node in ast.walk(tree):
        for name in ("body", "orelse", "finalbody"):
            stmts = getattr(node, name, None)
            if isinstance(stmts, list) and any(_is_text(s) for s in stmts):
                setattr(node, name, [s for s in stmts if not _is_text(s)])
        if isinstance(node, ast.Call) and _is_field(node):
            node.keywords = [k for k in node.keywords if k.arg not in DOC_KEYWORDS]
    return tree


@functools.cache  # every Snakemake start (each Slurm job too) renders dvc.yaml: parse each file once
def _tree(path: Path) -> ast.Module:
    """The file's syntax tree, undocumented (`_undocument`): which changes none of its imports."""
    return _undocument(ast.parse(path.read_text(encoding="utf-8")))


@functools.cache
def imports_of(path: Path, package: Path = PACKAGE_DIR) -> frozenset[Path]:
    """The distillery module files `path` imports, at any level of the file."""
    found: set[Path | None] = set()
    for node in ast.walk(_tree(path)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = [f"{node.module}.{a.name}" for a in node.names]
            # `from pkg import mod` imports the module; pkg/__init__.py counts only for a name it defines
            # (so `from distillery.config import curate` is config/curate.py, not the whole package).
            own = not all(_module_file(s, package) for s in subs)
            names = [node.module] * own + subs
        found |= {_module_file(n, package) for n in names if n.split(".")[0] == "distillery"}
    return frozenset(p for p in found if p is not None)


@functools.cache
def stage_code_files(stage: str, package: Path = PACKAGE_DIR) -> tuple[Path, ...]:
    """The module files stage `stage` runs (absolute paths, sorted), neutral modules left out."""
    seen: set[Path] = set()
    todo = [package / "stages" / f"{stage}.py", *(package / f for f in LAUNCHERS.get(stage, ()))]
    while todo:
        f = todo.pop()
        if f not in seen:
            seen.add(f)
            todo += imports_of(f, package)
    return tuple(sorted(p for p in seen if p.relative_to(package).as_posix() not in NEUTRAL))


def relative_code_files(stage: str, package: Path = PACKAGE_DIR) -> list[str]:
    """stage_code_files as repository paths (src/distillery/...)."""
    return [f"src/distillery/{p.relative_to(package).as_posix()}" for p in stage_code_files(stage, package)]


@functools.cache
def normalized_source(path: Path) -> str:
    """The file's code as `ast.unparse` writes it back, without docstrings, comments and Field
    descriptions (unparse's text varies less across Python versions than ast.dump's)."""
    return ast.unparse(_tree(path))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def file_hashes(stage: str, package: Path = PACKAGE_DIR) -> dict[str, str]:
    """12 hex digits of each file's normalized source, by repository path."""
    return {rel: _digest(normalized_source(p)) for rel, p in zip(relative_code_files(stage, package), stage_code_files(stage, package))}


@functools.cache
def code_hash(stage: str, package: Path = PACKAGE_DIR) -> str:
    """12 hex digits over the paths and normalized sources of the files the stage runs."""
    return _digest("".join(f"{rel}\0{h}\0" for rel, h in file_hashes(stage, package).items()))


def code_record(stage: str, package: Path = PACKAGE_DIR) -> str:
    """What `data/check_params/code/<stage>.txt` holds: the stage's hash, then each file's. Nothing
    that varies between runs or machines, so the same code writes the same bytes."""
    lines = [f"{stage} {code_hash(stage, package)}", *(f"{rel} {h}" for rel, h in file_hashes(stage, package).items())]
    return "\n".join(lines) + "\n"
