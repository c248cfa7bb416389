"""`distillery ablate FILE`: a recipe question asked as DVC experiments, one arm at a time.

An ablation file (`ablations/<name>.yaml`) names arms, each a set of params.yaml overrides by
dotted key; one arm is the base the others are compared with (the first, or the one `base:` names):

    description: Which correct generation should the dataset keep?
    base: random
    arms:
      random: {}                                    # params.yaml as committed
      shortest: {build.choice: shortest}

Each arm not yet run on this commit runs as `dvc exp run --temp --name <name>-<arm> -S ++key=value`:
a DVC experiment of the last commit, in a temporary copy, its results in DVC's experiment refs
(`dvc exp show`), never in the workspace. Arms share what makes them cheap: the request journals
(`$DISTILLERY_JOURNAL_DIR`, made absolute so the temporary copies write the workspace's), and DVC's
cache and run cache, so the stages upstream of the first param an arm changes are not re-run, and a
killed arm, run again, restores every stage it finished. Per arm, `.distillery/ablations/<name>/
<arm>.json` records what it cost: the stages run, restored from the run cache and unchanged, each
stage's seconds, and the requests each LLM stage sent (new journal lines). `--print` prints the
`dvc exp run --queue` commands instead, for DVC's own queue (`dvc queue start`); those runs record
no costs. `distillery ablate report FILE` compares the arms (distillery.ablation_report).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from distillery.config.params import _StrictLoader, read_params_yaml, require_every_key, validate_params
from distillery.errors import ConfigError, DistilleryError
from distillery.io import write_json
from distillery.journal import JOURNAL_ENV, journal_root
from distillery.workflow import render

RUNS = Path(".distillery/ablations")  # per-arm costs, beside the journals: history, never versioned
ARM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")  # a git ref component DVC accepts as an experiment name
FILE_KEYS = {"description", "base", "arms"}

# What `dvc exp run` prints about each stage (DVC 3).
_RAN = re.compile(r"^Running stage '([^']+)'")
_UNCHANGED = re.compile(r"^Stage '([^']+)' didn't change, skipping")
_RESTORED = re.compile(r"^Stage '([^']+)' is cached - skipping run, checking out outputs")
_LOCKED = re.compile(r"^Updating lock file")


@dataclass(frozen=True)
class Arm:
    name: str
    overrides: dict[str, Any]  # dotted params key -> value
    params: dict[str, Any]  # params.yaml with the overrides applied


@dataclass(frozen=True)
class Ablation:
    name: str  # the file's stem: experiments are named <name>-<arm>
    path: Path
    description: str
    arms: list[Arm]  # the base first

    @property
    def base(self) -> Arm:
        return self.arms[0]

    def experiment(self, arm: Arm) -> str:
        return f"{self.name}-{arm.name}"


# --- the file ---------------------------------------------------------------------------------------


def _set(params: dict[str, Any], key: str, value: Any) -> None:
    node = params
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(parts[: i + 1])} is a value, not a section: {key} cannot be set under it")
        node = child
    node[parts[-1]] = copy.deepcopy(value)


def load_ablation(path: str | Path, params_path: str | Path = "params.yaml") -> Ablation:
    """The file, checked against params.yaml: every arm's params valid, no arm the same as another."""
    path = Path(path)
    if not path.is_file():
        raise DistilleryError(f"{path} not found: an ablation file names its arms (see ablations/selection.yaml)")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except ConfigError as exc:  # a key twice in one mapping: two arms of one name, or a key set twice in an arm
        raise DistilleryError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise DistilleryError(f"{path} is not valid YAML: {exc}") from None
    if not raw:
        raise DistilleryError(
            f"{path} is empty: write `arms:` with two arms or more, each a mapping of params keys to values (see ablations/selection.yaml)"
        )
    if not isinstance(raw, dict) or not isinstance(raw.get("arms"), dict):
        raise DistilleryError(f"{path} needs `arms:`, a mapping of arm names to params overrides (see ablations/selection.yaml)")
    unknown = sorted(set(raw) - FILE_KEYS)
    if unknown:
        raise DistilleryError(f"{path}: unknown key(s) {', '.join(unknown)}; an ablation file has {', '.join(sorted(FILE_KEYS))}")
    names = [str(n) for n in raw["arms"]]
    if len(names) < 2:
        raise DistilleryError(f"{path} has {len(names)} arm(s): an ablation compares two or more (a base and the arms that change it)")
    for name in names:
        if not ARM_NAME.match(name):
            raise DistilleryError(f"{path}: arm name {name!r}: use letters, digits, '-' and '_' (it names a DVC experiment)")
    base_name = str(raw.get("base", names[0]))
    if base_name not in names:
        raise DistilleryError(f"{path}: base {base_name!r} is not one of the arms ({', '.join(names)})")
    committed = read_params_yaml(params_path)
    arms = []
    for name in [base_name, *(n for n in names if n != base_name)]:
        overrides = raw["arms"][name] or {}
        if not isinstance(overrides, dict):
            raise DistilleryError(f"{path}: arm {name!r} must be a mapping of params keys to values, e.g. {{build.choice: shortest}}")
        params = copy.deepcopy(committed)
        try:
            for key, value in overrides.items():
                _set(params, str(key), value)
            require_every_key(validate_params(params, f"{path}, arm {name!r}"), f"{path}, arm {name!r}")
        except ConfigError as exc:
            raise DistilleryError(str(exc)) from None
        arms.append(Arm(name, {str(k): v for k, v in overrides.items()}, params))
    for i, arm in enumerate(arms):
        for other in arms[:i]:
            if arm.params == other.params:
                what = "the base arm" if other is arms[0] else "arm"
                raise DistilleryError(
                    f"{path}: arm {arm.name!r} gives the same params as {what} {other.name!r}: it would be the same "
                    "experiment; change a value, or drop the arm"
                )
    name = path.stem
    if not ARM_NAME.match(name):
        raise DistilleryError(f"{path}: name the file with letters, digits, '-' and '_' (it prefixes its experiments' names)")
    return Ablation(name, path, str(raw.get("description") or "").strip(), arms)


def set_param(key: str, value: Any) -> str:
    """One `-S` of `dvc exp run`, in Hydra's override grammar (`++` adds a key or replaces it)."""
    return f"++{key}={_hydra(value)}"


def _hydra(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join(_hydra(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_hydra(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _HYDRA_WORDS:
        return text
    # Hydra's quoted string: a backslash is literal except in a run before a quote or the closing quote.
    text = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", text)
    text = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, text)
    return "'" + text + "'"


_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")  # read by Hydra as this very string
_HYDRA_WORDS = {"true", "false", "null", "nan", "inf"}


def exp_run_command(ablation: Ablation, arm: Arm, *, queue: bool = False, force: bool = False) -> list[str]:
    sets = [a for key, value in arm.overrides.items() for a in ("-S", set_param(key, value))]
    return [
        "dvc",
        "exp",
        "run",
        "--queue" if queue else "--temp",
        "--name",
        ablation.experiment(arm),
        *(["--force"] if force else []),
        *sets,
    ]


# --- the repository ---------------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    if out.returncode != 0:
        raise DistilleryError(f"git {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def head(repo: Path) -> str:
    try:
        return git(repo, "rev-parse", "--verify", "HEAD").strip()
    except DistilleryError:
        raise DistilleryError(f"{repo.resolve()} has no commit yet: an arm is an experiment on the last commit; commit first") from None


def require_clean(repo: Path) -> None:
    """DVC runs a `--temp` experiment from the last commit (and a queued one from a stash of the
    workspace), while the stages run the installed code of the workspace: with edits to tracked files,
    an arm would be neither the commit nor the workspace."""
    dirty = [line[3:] for line in git(repo, "status", "--porcelain", "--untracked-files=no").splitlines()]
    if dirty:
        shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        killed = " (a dvc.yaml left by an ablation killed as an arm started: `git checkout dvc.yaml`)" if "dvc.yaml" in dirty else ""
        raise DistilleryError(
            f"the workspace has uncommitted changes ({shown}): each arm is a DVC experiment on the last commit, so commit "
            f"them (or `git stash` them){killed}, then run the ablation again"
        )


def experiments(repo: Path, baseline: str) -> dict[str, str]:
    """The experiments of a commit: name -> the experiment's commit."""
    refs = git(repo, "for-each-ref", "--format=%(refname) %(objectname)", f"refs/exps/{baseline[:2]}/{baseline[2:]}/")
    return {ref.rsplit("/", 1)[1]: sha for ref, sha in (line.split() for line in refs.splitlines())}


def params_at(repo: Path, rev: str) -> dict[str, Any]:
    return yaml.safe_load(git(repo, "show", f"{rev}:params.yaml"))


def journal_sizes(root: Path) -> dict[Path, int]:
    """Each journal file's size: the mark after which an arm's requests are appended."""
    return {f: f.stat().st_size for f in sorted(root.glob("*/*.jsonl"))} if root.is_dir() else {}


def requests_since(root: Path, sizes: dict[Path, int]) -> dict[str, int]:
    """Finished requests journaled since `sizes` was taken, per stage (a line each, appended:
    distillery.journal), read from the marks on, so a large journal costs only its new lines."""
    sent: dict[str, int] = {}
    for f, size in journal_sizes(root).items():
        start = sizes.get(f, 0)
        start = start if size >= start else 0  # compacted (`distillery journal prune`) since: all of it
        with open(f, "rb") as fh:
            fh.seek(start)
            lines = fh.read().count(b"\n")
        if lines:
            sent[f.parent.name] = sent.get(f.parent.name, 0) + lines
    return sent


# --- running ----------------------------------------------------------------------------------------


@dataclass
class Attempt:
    """One `dvc exp run` of an arm, as its output told it."""

    returncode: int = 0
    wall_s: float = 0.0
    ran: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)  # answered from DVC's run cache
    unchanged: list[str] = field(default_factory=list)  # the commit's outputs, checked out
    stage_seconds: dict[str, float] = field(default_factory=dict)
    requests_sent: dict[str, int] = field(default_factory=dict)


def follow(lines, attempt: Attempt, clock=time.monotonic, echo=None, progress=None) -> None:
    """Reads `dvc exp run`'s output as it comes: which stages ran, were restored or skipped, and
    how long each one ran (from its "Running stage" line to DVC's lock update after it)."""
    running: tuple[str, float] | None = None
    for line in lines:
        if echo:
            echo(line)
        text = line.strip()
        now = clock()
        if running and (_LOCKED.match(text) or _RAN.match(text) or _UNCHANGED.match(text) or _RESTORED.match(text)):
            attempt.stage_seconds[running[0]] = round(now - running[1], 1)
            running = None
        if m := _RAN.match(text):
            attempt.ran.append(m.group(1))
            running = (m.group(1), now)
        elif m := _UNCHANGED.match(text):
            attempt.unchanged.append(m.group(1))
        elif m := _RESTORED.match(text):
            attempt.restored.append(m.group(1))
        else:
            continue
        if progress:
            progress()


def run_log_path(repo: Path, ablation: Ablation, arm: Arm) -> Path:
    return repo / RUNS / ablation.name / f"{arm.name}.json"


def read_run_log(repo: Path, ablation: Ablation, arm: Arm) -> dict[str, Any] | None:
    path = run_log_path(repo, ablation, arm)
    return json.loads(path.read_text()) if path.is_file() else None


def run_arm(repo: Path, ablation: Ablation, arm: Arm, baseline: str, *, force: bool) -> Attempt:
    journals = journal_root()
    journals = journals if journals.is_absolute() else (repo / journals).resolve()
    env = {**os.environ, JOURNAL_ENV: str(journals)}
    command = exp_run_command(ablation, arm, force=force)
    print(f"distillery ablate: arm {arm.name!r}: {shlex.join(command)}", file=sys.stderr, flush=True)
    marks = journal_sizes(journals)
    attempt = Attempt()
    started = time.monotonic()
    log_path = run_log_path(repo, ablation, arm)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # The attempts of this commit before this one (a killed arm's count when it resumes).
    previous = read_run_log(repo, ablation, arm)
    attempts = previous["attempts"] if previous and previous.get("baseline") == baseline else []

    def save() -> None:
        attempt.wall_s = round(time.monotonic() - started, 1)
        attempt.requests_sent = requests_since(journals, marks)
        record = {
            "ablation": ablation.name,
            "arm": arm.name,
            "experiment": ablation.experiment(arm),
            "baseline": baseline,
            "overrides": arm.overrides,
            "attempts": [*attempts, attempt.__dict__],
        }
        write_json(record, log_path)  # replaced whole: a kill mid-write leaves the last record

    # An arm that names other files (a reward model, a corpus) has another dvc.yaml: DVC's `--temp`
    # copy takes the workspace's uncommitted changes, so the arm's dvc.yaml is in place until the
    # copy is made (DVC's first line), and the committed one back at once after.
    dvc_yaml = repo / "dvc.yaml"
    committed = dvc_yaml.read_text()
    arm_yaml = render(validate_params(arm.params))
    restored = False

    def restore() -> None:
        nonlocal restored
        if not restored:
            restored = True
            if arm_yaml != committed:
                dvc_yaml.write_text(committed)

    try:
        if arm_yaml != committed:
            dvc_yaml.write_text(arm_yaml)
        with subprocess.Popen(command, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
            attempt.returncode = -1  # until it ends
            save()
            assert proc.stdout is not None

            def echo(line: str) -> None:
                restore()
                print(line, end="", flush=True)

            follow(proc.stdout, attempt, echo=echo, progress=save)  # a killed attempt keeps what it did
            attempt.returncode = proc.wait()
    finally:
        restore()
    save()
    return attempt


def run(path: str | Path, repo: Path = Path("."), *, print_only: bool = False) -> dict[str, str]:
    """Runs every arm not yet run on this commit; returns arm -> its experiment's commit."""
    repo = Path(repo)
    ablation = load_ablation(path, repo / "params.yaml")
    if print_only:
        committed = (repo / "dvc.yaml").read_text() if (repo / "dvc.yaml").is_file() else None
        for arm in ablation.arms:
            if render(validate_params(arm.params)) != committed:
                print(
                    f"# arm {arm.name} names files dvc.yaml does not track: queue it with its dvc.yaml in the workspace, "
                    "or run it with `distillery ablate`"
                )
            print(shlex.join(exp_run_command(ablation, arm, queue=True)))
        print("dvc queue start  # then: dvc queue status; dvc exp show")
        return {}
    require_clean(repo)
    baseline = head(repo)
    done: dict[str, str] = {}
    for arm in ablation.arms:
        exp = ablation.experiment(arm)
        existing = experiments(repo, baseline).get(exp)
        if existing and params_at(repo, existing) == arm.params:
            print(f"distillery ablate: arm {arm.name!r} ran on this commit already ({exp}, {existing[:7]})", file=sys.stderr)
            done[arm.name] = existing
            continue
        attempt = run_arm(repo, ablation, arm, baseline, force=existing is not None)
        if attempt.returncode != 0:
            raise DistilleryError(
                f"arm {arm.name!r}: `dvc exp run` failed (exit {attempt.returncode}; its output is above). Fix the cause and run "
                f"`distillery ablate {path}` again: arms that ran are kept, and this one restores the stages it finished from "
                "DVC's run cache"
            )
        sha = experiments(repo, baseline).get(exp)
        if sha is None:
            raise DistilleryError(f"arm {arm.name!r}: `dvc exp run` ended but left no experiment {exp!r} (see its output above)")
        got = params_at(repo, sha)
        if got != arm.params:
            wrong = sorted(k for k in arm.overrides if _get(got, k) != arm.overrides[k])
            raise DistilleryError(
                f"arm {arm.name!r}: DVC set {', '.join(wrong) or 'other keys'} differently from {path}; set them in params.yaml instead"
            )
        print(
            f"distillery ablate: arm {arm.name!r} done in {attempt.wall_s:.0f} s: ran {len(attempt.ran)} stage(s), restored "
            f"{len(attempt.restored)} from the run cache, {len(attempt.unchanged)} unchanged; requests sent: "
            f"{sum(attempt.requests_sent.values())} {attempt.requests_sent or ''}",
            file=sys.stderr,
            flush=True,
        )
        done[arm.name] = sha
    print(f"distillery ablate: {len(done)} arm(s) of {ablation.name}; compare them with `distillery ablate report {path}`", file=sys.stderr)
    return done


def _get(params: dict[str, Any], key: str) -> Any:
    node: Any = params
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node
