"""The repository stands alone: a clone of its committed tree, in a fresh directory with no sibling
folders, collects the whole test suite, and nothing the code, tests or benchmarks read points
outside the repository (the benchmark files are in data/bundled/benchmarks/)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from conftest import REPO

# Where the code, tests, benchmarks and the pipeline's own files live: none may name a folder beside
# the repository. (docs and data/bundled/benchmarks/README.md may say where files were copied from.)
CHECKED = ["src", "tests", "benchmarks", "Makefile", ".ci", "Snakefile", "rules", "dvc.yaml", "params.yaml", "configs", "recipes"]
CHECKED += ["profiles", "pyproject.toml"]
OUTSIDE = re.compile(r"\.\./shared|shared/benchmarks")


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def collected(root: Path) -> tuple[Counter, str]:
    """Test items per file that `pytest --collect-only -q` finds in `root`, with root's src first
    on the path (the venv's editable install may point at another checkout), and its output."""
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    items = Counter(line.split("::", 1)[0] for line in proc.stdout.splitlines() if "::" in line)
    return items, out


def test_no_tracked_file_reads_a_folder_beside_the_repository():
    root = Path(git("rev-parse", "--show-toplevel").strip())
    this = Path(__file__).resolve().relative_to(root).as_posix()  # names the patterns it looks for
    found = []
    for name in git("ls-files", "--", *CHECKED, cwd=root).splitlines():
        path = root / name
        if name == this or not path.is_file():
            continue
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{name}:{n}: {line.strip()}")
    assert found == [], "read data/bundled/benchmarks/ instead:\n" + "\n".join(found)


def test_a_clone_with_no_siblings_collects_the_whole_suite(tmp_path):
    root = Path(git("rev-parse", "--show-toplevel").strip())
    clone = tmp_path / "alone" / "distillery"  # its parent holds nothing else: no ../shared
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(root), str(clone)], check=True, capture_output=True, text=True)
    assert sorted(p.name for p in clone.parent.iterdir()) == ["distillery"]

    in_clone, out = collected(clone)
    assert " error" not in out.splitlines()[-1] and "skipped" not in out.splitlines()[-1], out[-4000:]
    tracked = {f for f in git("ls-files", "tests", cwd=clone).splitlines() if re.fullmatch(r"tests/test_\w+\.py", f)}
    assert set(in_clone) == tracked, "test files that collect nothing in the clone: " + str(sorted(tracked - set(in_clone)))

    # Against this checkout, file by file: the same tests, where the file is as committed (a test
    # file edited but not committed differs from the clone for that reason alone).
    here, _ = collected(root)
    changed = set(git("diff", "--name-only", "HEAD", "--", "tests").splitlines())
    committed = {f: n for f, n in here.items() if f in tracked and f not in changed}
    assert committed == {f: in_clone[f] for f in committed}
    if not changed and not git("status", "--porcelain", "--", "src", "tests"):
        assert sum(in_clone.values()) == sum(here.values())
