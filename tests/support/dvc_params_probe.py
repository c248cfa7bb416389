"""What DVC itself makes of a params change, asked of DVC's own code (run with .venv-dvc's Python).

stdin: {"repo": DIR, "versions": [{"params": TEXT, "dvc_yaml": TEXT}, ...]}. For each version the
files are written into DIR and DVC reads its stages afresh; stdout gets, per version and stage:
- `params`: a digest of the values DVC reads for the stage's params deps (what `dvc status`
  compares with dvc.lock: a stage whose values differ from the base version's is one it names);
- `run_cache_key`: DVC's run-cache key for the stage as `dvc repro` would look it up after the
  change (`dvc.stage.cache._get_cache_hash`, the function DVC hashes with, over the stage's lock
  entry with these params). Deps' file hashes are left out: only params change between versions,
  and two versions whose keys are equal are answered from one run-cache entry.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import yaml
from dvc.dependency import param as dvc_param
from dvc.dependency.param import ParamsDependency
from dvc.fs import LocalFileSystem
from dvc.repo import Repo
from dvc.stage.cache import _get_cache_hash

_dvc_load_path = dvc_param.load_path
_parsed: dict[str, object] = {}


def _load_once(path, fs, **kwargs):
    """DVC reads the params file once per stage; parse each version once. DVC's own YAML 1.2
    parser reads the first version, and the fast one must agree with it (checked in main)."""
    text = fs.read_text(path)
    if text not in _parsed:
        _parsed[text] = yaml.load(text, Loader=yaml.CSafeLoader)
    return _parsed[text]


def probe(repo_dir: Path, params_texts: list[str]) -> list[dict[str, dict]]:
    """Each params text, read through the stages of the dvc.yaml in `repo_dir` (loaded once)."""
    repo = Repo(str(repo_dir))
    try:
        stages = list(repo.index.stages)
        found = []
        for text in params_texts:
            (repo_dir / "params.yaml").write_text(text)
            view = {}
            for stage in stages:
                params = {dep.def_path: dep.read_params() for dep in stage.deps if isinstance(dep, ParamsDependency)}
                entry = {
                    "cmd": stage.cmd,
                    "deps": [{"path": d.def_path} for d in stage.deps if not isinstance(d, ParamsDependency)],
                    "params": params,
                    "outs": [{"path": o.def_path} for o in stage.outs],
                }
                view[stage.name] = {
                    "params": hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest(),
                    "run_cache_key": _get_cache_hash(entry, key=True),
                }
            found.append(view)
        return found
    finally:
        repo.close()


def main() -> None:
    job = json.load(sys.stdin)
    root = Path(job["repo"])
    versions = job["versions"]
    results: list[dict | None] = [None] * len(versions)
    (root / "params.yaml").write_text(versions[0]["params"])
    assert _dvc_load_path(str(root / "params.yaml"), LocalFileSystem()) == yaml.load(versions[0]["params"], Loader=yaml.CSafeLoader)
    dvc_param.load_path = _load_once
    by_dvc_yaml: dict[str, list[int]] = {}  # DVC loads its stages once per distinct dvc.yaml
    for i, version in enumerate(versions):
        by_dvc_yaml.setdefault(version["dvc_yaml"], []).append(i)
    for dvc_yaml, indices in by_dvc_yaml.items():
        (root / "dvc.yaml").write_text(dvc_yaml)
        for i, view in zip(indices, probe(root, [versions[i]["params"] for i in indices])):
            results[i] = view
    json.dump(results, sys.stdout, default=str)


if __name__ == "__main__":
    main()
