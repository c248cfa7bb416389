"""`distillery diff REV_A [REV_B]`: what changed in a stage output between two versions, row by row.

A version is a git revision (its dvc.lock names the output's md5, and the bytes come from the DVC
cache) or `workspace` (the files on disk). Rows are matched by key (`uuid`, plus `sample_index`
where there is one); a changed row lists the columns that changed. A row whose content is the same
and whose provenance columns (distillery.provenance: settings hashes, code versions, request keys)
changed is counted apart, as re-made: a new judge setting re-stamps every judged row but changes
the verdicts of only some. Aggregates (rows per source and
split, pass rates, judge recoveries, generation lengths), the params that differ between the two
revisions, the input files that differ (dvc.lock's md5s of the deps no stage makes: a source, a
benchmark, a prompt, the code) and why the removed rows are gone (the rejected tables at B) come
with it. Output: plain text, markdown or JSON.

    distillery diff HEAD~1 HEAD                               # the final dataset
    distillery diff v1 workspace --path data/judge/judged.parquet --format markdown
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import yaml

from distillery.errors import DistilleryError
from distillery.provenance import is_provenance_column
from distillery.rounds import by_round, count_by_round

WORKSPACE = "workspace"
DEFAULT_PATH = "data/build/dataset"
BATCH_ROWS = 16_384  # rows decoded at a time


# --- reading a version ------------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> bytes:
    out = subprocess.run(["git", *args], cwd=repo, capture_output=True)
    if out.returncode != 0:
        raise DistilleryError(f"git {' '.join(args)}: {out.stderr.decode(errors='replace').strip()}")
    return out.stdout


def resolve(repo: Path, rev: str) -> str:
    """A revision's commit id, or WORKSPACE."""
    if rev == WORKSPACE:
        return rev
    try:
        return _git(repo, "rev-parse", "--verify", f"{rev}^{{commit}}").decode().strip()
    except DistilleryError:
        raise DistilleryError(f"{rev!r} is not a git revision of {repo} (nor `workspace`); see `git log --oneline`") from None


def _cache_object(repo: Path, md5: str) -> Path:
    return repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


def _lock_outs(repo: Path, rev: str, path: str) -> list[dict]:
    """The DVC outputs recorded at rev: dvc.lock's stage outputs, and the `<out>.dvc` file of a
    `dvc add`ed path that contains `path`."""
    outs = []
    try:
        lock = yaml.safe_load(_git(repo, "show", f"{rev}:dvc.lock"))
        outs += [o for stage in (lock.get("stages") or {}).values() for o in stage.get("outs", [])]
    except DistilleryError:
        pass
    parts = Path(path).parts
    for i in range(len(parts), 0, -1):
        candidate = Path(*parts[:i])
        try:
            added = yaml.safe_load(_git(repo, "show", f"{rev}:{candidate.as_posix()}.dvc"))
        except DistilleryError:
            continue
        outs += [{**o, "path": (candidate.parent / o["path"]).as_posix()} for o in added.get("outs", [])]
        break
    if not outs:
        raise DistilleryError(f"revision {rev[:12]} has no dvc.lock (nor a .dvc file for {path}): it was committed before `dvc repro` ran")
    return outs


def version_files(repo: Path, rev: str, path: str) -> dict[str, Path]:
    """The parquet files of `path` (a file or a directory output) at `rev`: relative name -> the file
    on disk (in the workspace, or the object in the DVC cache)."""
    path = path.rstrip("/")
    if rev == WORKSPACE:
        target = repo / path
        files = [target] if target.is_file() else sorted(target.rglob("*.parquet")) if target.is_dir() else []
        if not files:
            raise DistilleryError(f"{path} has no parquet files in the workspace; run `dvc repro` or `dvc checkout` first")
        return {(f.relative_to(target).as_posix() if f != target else f.name): f for f in files}
    outs = _lock_outs(repo, rev, path)
    out = next((o for o in outs if path == o["path"] or path.startswith(o["path"] + "/")), None)
    if out is None:
        names = ", ".join(sorted(o["path"] for o in outs))
        raise DistilleryError(f"{path} is not a DVC output at {rev[:12]} (its dvc.lock has: {names})")
    missing = f"is not in this repo's DVC cache; fetch it with `dvc fetch --all-commits` (or `git checkout {rev[:12]} && dvc pull`)"
    if not out["md5"].endswith(".dir"):
        obj = _cache_object(repo, out["md5"])
        if not obj.is_file():
            raise DistilleryError(f"{out['path']} at {rev[:12]} (md5 {out['md5']}) {missing}")
        return {Path(out["path"]).name: obj}
    listing = _cache_object(repo, out["md5"])
    if not listing.is_file():
        raise DistilleryError(f"{out['path']} at {rev[:12]} (listing {out['md5']}) {missing}")
    sub = path[len(out["path"]) + 1 :] if path != out["path"] else ""
    files = {}
    for entry in json.loads(listing.read_text()):
        rel = entry["relpath"]
        if rel.endswith(".parquet") and (not sub or rel == sub or rel.startswith(sub + "/")):
            obj = _cache_object(repo, entry["md5"])
            if not obj.is_file():
                raise DistilleryError(f"{out['path']}/{rel} at {rev[:12]} {missing}")
            files[rel[len(sub) + 1 :] if sub and rel != sub else rel] = obj
    if not files:
        raise DistilleryError(f"{path} at {rev[:12]} holds no parquet files")
    return files


def columns_of(files: dict[str, Path]) -> list[str]:
    """The columns of a version (its files' union, plus `split` when it has several files)."""
    cols: list[str] = []
    for _, file in sorted(files.items()):
        cols += [c for c in pq.read_schema(file).names if c not in cols]
    return cols + (["split"] if len(files) > 1 or any("/" in n for n in files) else [])


def scan(files: dict[str, Path], key: list[str], cols: list[str]) -> tuple[pl.DataFrame, pl.DataFrame, pl.Series | None]:
    """One pass over a version in batches: (key + a hash per cell, the aggregates' small columns,
    the generations' lengths).
    Memory is bounded by a batch, not by the version: its texts are never all in memory at once."""
    split = len(files) > 1 or any("/" in n for n in files)
    hashes, small, lengths = [], [], []
    for name, file in sorted(files.items()):
        pf = pq.ParquetFile(file, pre_buffer=False)
        for batch in pf.iter_batches(batch_size=BATCH_ROWS):
            df = pl.from_arrow(batch)
            if split:
                df = df.with_columns(pl.lit(name.split("/")[0] if "/" in name else name).alias("split"))
            hashes.append(hashed(df, key, [c for c in cols if c in df.columns]))
            part, chars = aggregate_inputs(df)
            small.append(part)
            if chars is not None:
                lengths.append(chars)
            del df, batch
    return (pl.concat(hashes, how="diagonal_relaxed"), pl.concat(small, how="diagonal_relaxed"), pl.concat(lengths) if lengths else None)


def params_at(repo: Path, rev: str) -> dict[str, Any]:
    text = (repo / "params.yaml").read_text() if rev == WORKSPACE else _git(repo, "show", f"{rev}:params.yaml").decode()
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            flat[prefix] = node

    walk("", yaml.safe_load(text))
    return flat


def _lock_deps(repo: Path, rev: str) -> dict[str, str]:
    """path -> md5 of every stage dependency dvc.lock records at `rev` (the workspace: its dvc.lock)."""
    try:
        text = (repo / "dvc.lock").read_text() if rev == WORKSPACE else _git(repo, "show", f"{rev}:dvc.lock").decode()
    except (OSError, DistilleryError):
        return {}
    lock = yaml.safe_load(text) or {}
    deps: dict[str, str] = {}
    for stage in (lock.get("stages") or {}).values():
        for dep in stage.get("deps", []):
            if "md5" in dep:
                deps[dep["path"]] = dep["md5"]
    return deps


def _stage_outputs(repo: Path, rev: str) -> set[str]:
    try:
        return {o["path"] for o in _lock_outs(repo, rev, "")}
    except DistilleryError:
        return set()


def inputs_that_differ(repo: Path, rev_a: str, rev_b: str) -> dict[str, tuple[str | None, str | None]]:
    """The input files (stage deps that no stage makes: sources, benchmarks, prompts, code) whose md5
    differs between the two revisions' dvc.lock; for the workspace, the files' own md5 now (a file
    changed since the last `dvc repro` counts). A directory dep is compared by dvc.lock's hash."""
    from distillery.io import file_md5

    made = _stage_outputs(repo, rev_a) | _stage_outputs(repo, rev_b)

    def md5s(rev: str, paths: set[str]) -> dict[str, str | None]:
        if rev != WORKSPACE:
            return _lock_deps(repo, rev)
        recorded = _lock_deps(repo, rev)
        now: dict[str, str | None] = {}
        for p in paths | set(recorded):
            f = repo / p
            now[p] = file_md5(f) if f.is_file() else (recorded.get(p) if f.is_dir() else None)
        return now

    a = md5s(rev_a, set(_lock_deps(repo, rev_b)))
    b = md5s(rev_b, set(a))
    paths = sorted(p for p in set(a) | set(b) if not any(p == o or p.startswith(o + "/") for o in made))
    return {p: (a.get(p), b.get(p)) for p in paths if a.get(p) != b.get(p)}


# The tables that say why a problem left the data flow, searched in this order for a removed row's
# uuid at the newer revision: the output's own stage's first (distillery.tables).
REJECTED_TABLES = (
    "data/build/rejected.parquet",
    "data/dedupe/rejected.parquet",
    "data/mix/left_out.parquet",
    "data/preferences/unpaired.parquet",
)


def removed_reasons(repo: Path, rev: str, path: str, removed: list[tuple], key: list[str]) -> dict[str, int]:
    """Why the removed rows are gone, by `<stage>: <reason>` from the rejected tables at `rev`:
    counts, with the rows no table names counted apart."""
    if not removed or "uuid" not in key:
        return {}
    uuids = pl.DataFrame({"uuid": [k[key.index("uuid")] for k in removed]}).unique()
    own = f"data/{Path(path).parts[1]}/rejected.parquet" if len(Path(path).parts) > 1 and Path(path).parts[0] == "data" else None
    found: list[pl.DataFrame] = []
    left = uuids
    for table in dict.fromkeys([t for t in (own, *REJECTED_TABLES) if t]):
        try:
            files = version_files(repo, rev, table)
        except DistilleryError:
            continue
        frame = pl.concat([pl.read_parquet(f) for f in files.values()], how="diagonal_relaxed")
        if not {"uuid", "reason"} <= set(frame.columns):
            continue
        stage = Path(table).parts[1]
        hit = left.join(frame.select("uuid", "reason").unique("uuid", keep="first"), on="uuid", how="inner")
        found.append(hit.with_columns((pl.lit(f"{stage}: ") + pl.col("reason")).alias("reason")))
        left = left.join(hit.select("uuid"), on="uuid", how="anti")
    reasons: dict[str, int] = {}
    for frame in found:
        for reason, n in frame.group_by("reason").len().iter_rows():
            reasons[reason] = reasons.get(reason, 0) + n
    if left.height:
        reasons["in no rejected table (left out before build, e.g. not sampled)"] = left.height
    return dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))


# --- comparing -------------------------------------------------------------------------------------------


def default_key(columns: list[str]) -> list[str]:
    for key in (["uuid", "sample_index"], ["uuid"], ["request_key"]):
        if all(k in columns for k in key):
            return key
    raise DistilleryError(f"no key column in {columns[:12]}; pass --key COLUMN[,COLUMN]")


@dataclass
class Diff:
    path: str
    rev_a: str
    rev_b: str
    key: list[str]
    rows_a: int
    rows_b: int
    added: list[tuple]
    removed: list[tuple]
    changed: dict[tuple, list[str]]  # key -> changed columns (some content column among them)
    columns_added: list[str]
    columns_removed: list[str]
    aggregates: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"a", "b"}
    params: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    remade: dict[tuple, list[str]] = field(default_factory=dict)  # key -> changed provenance columns, content the same
    inputs: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)  # input file -> (md5 at A, md5 at B)
    removed_by_reason: dict[str, int] = field(default_factory=dict)  # `<stage>: <reason>` -> removed rows
    # A table of generations (verified or judged): its problems with a correct one at A and at B
    # (None: not such a table). A second round of generation shows here as recovered problems.
    solved: tuple[set[str], set[str]] | None = None

    def changed_by_column(self) -> dict[str, int]:
        return _column_counts(self.changed)

    def remade_by_column(self) -> dict[str, int]:
        return _column_counts(self.remade)

    def as_json(self, examples: int = 20) -> dict[str, Any]:
        return {
            "path": self.path,
            "a": self.rev_a,
            "b": self.rev_b,
            "key": self.key,
            "rows": {
                "a": self.rows_a,
                "b": self.rows_b,
                "added": len(self.added),
                "removed": len(self.removed),
                "changed": len(self.changed),
                "remade": len(self.remade),
                "unchanged": self.rows_a - len(self.removed) - len(self.changed) - len(self.remade),
            },
            "changed_by_column": self.changed_by_column(),
            "remade_by_column": self.remade_by_column(),
            "columns": {"added": self.columns_added, "removed": self.columns_removed},
            "examples": {
                "added": [list(k) for k in self.added[:examples]],
                "removed": [list(k) for k in self.removed[:examples]],
                "changed": [{"key": list(k), "columns": v} for k, v in list(self.changed.items())[:examples]],
            },
            "aggregates": self.aggregates,
            "params": {k: {"a": a, "b": b} for k, (a, b) in self.params.items()},
            "inputs": {k: {"a": a, "b": b} for k, (a, b) in self.inputs.items()},
            "removed_by_reason": self.removed_by_reason,
            **({"problems_solved": self.problems_solved(examples)} if self.solved is not None else {}),
        }

    def problems_solved(self, examples: int) -> dict[str, Any]:
        a, b = self.solved or (set(), set())
        recovered, lost = sorted(b - a), sorted(a - b)
        return {
            "a": len(a),
            "b": len(b),
            "recovered": len(recovered),
            "lost": len(lost),
            "examples": {"recovered": recovered[:examples], "lost": lost[:examples]},
        }


def _column_counts(changes: dict[tuple, list[str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for cols in changes.values():
        for c in cols:
            counts[c] = counts.get(c, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def split_remade(changed: dict[tuple, list[str]]) -> tuple[dict[tuple, list[str]], dict[tuple, list[str]]]:
    """(rows with a changed content column, rows where only provenance columns changed)."""
    content, remade = {}, {}
    for k, cols in changed.items():
        (remade if all(is_provenance_column(c) for c in cols) else content)[k] = cols
    return content, remade


def hashed(df: pl.DataFrame, key: list[str], cols: list[str]) -> pl.DataFrame:
    """The key and one 64-bit hash per cell: lists and structs compare like scalars."""
    return df.select(*key, *[pl.col(c).hash(seed=0).alias(c) for c in cols])


def _check_key(columns: dict[str, list[str]], key: list[str]) -> None:
    for name, cols in columns.items():
        missing = [k for k in key if k not in cols]
        if missing:
            raise DistilleryError(f"version {name} has no key column(s) {missing}; pass --key")


def compare(a: pl.DataFrame, b: pl.DataFrame, key: list[str]) -> tuple[list[tuple], list[tuple], dict[tuple, list[str]]]:
    """Rows added, removed and changed (with their changed columns) between two frames."""
    _check_key({"A": a.columns, "B": b.columns}, key)
    cols = [c for c in a.columns if c in b.columns and c not in key]
    return compare_hashed(hashed(a, key, cols), hashed(b, key, cols), key, cols)


def compare_hashed(
    ha: pl.DataFrame, hb: pl.DataFrame, key: list[str], cols: list[str]
) -> tuple[list[tuple], list[tuple], dict[tuple, list[str]]]:
    for name, h in (("A", ha), ("B", hb)):
        dups = h.height - h.select(key).unique().height
        if dups:
            raise DistilleryError(f"version {name}: {dups} rows share a key {key}; pass a --key that is unique")
    added = [tuple(r) for r in hb.join(ha.select(key), on=key, how="anti").select(key).sort(key).iter_rows()]
    removed = [tuple(r) for r in ha.join(hb.select(key), on=key, how="anti").select(key).sort(key).iter_rows()]
    both = ha.join(hb, on=key, how="inner", suffix="__b")
    flags = both.select(*key, *[(pl.col(c) != pl.col(f"{c}__b")).alias(c) for c in cols])
    flags = flags.filter(pl.any_horizontal(cols)) if cols else flags.clear()
    changed = {}
    for row in flags.sort(key).iter_rows(named=True):
        changed[tuple(row[k] for k in key)] = [c for c in cols if row[c]]
    return added, removed, changed


def aggregate_inputs(frame: pl.DataFrame | pl.LazyFrame) -> tuple[pl.DataFrame, pl.Series | None]:
    """What the aggregates need: the small columns, and the generations' lengths (flat), not their
    texts, which are the bulk of a version. (`list.eval` would be the obvious way to get lengths;
    on 1M rows it was 4x slower and kept the texts alive.)"""
    df = frame.lazy().collect() if isinstance(frame, pl.LazyFrame) else frame
    small = df.select(
        [c for c in ("source", "split", "round", "correctness_math_verify", "correctness_llama") if c in df.columns]
        or [pl.lit(True).alias("_row")]
    )
    text_col = "generations" if "generations" in df.columns else "generation" if "generation" in df.columns else None
    if text_col is None:
        return small, None
    texts = df[text_col].explode() if isinstance(df.schema[text_col], pl.List) else df[text_col]
    return small, texts.drop_nulls().str.len_chars()


def aggregates(df: pl.DataFrame, lengths: pl.Series | None = None, *, prepared: bool = False) -> dict[str, Any]:
    """Rows per source and split, pass rates, judge recoveries, generation lengths."""
    if not prepared:
        df, lengths = aggregate_inputs(df)
    out: dict[str, Any] = {"rows": df.height}
    for col in ("source", "split"):
        if col in df.columns:
            out[f"rows_by_{col}"] = dict(sorted((str(k), v) for k, v in df.group_by(col).len().iter_rows()))
    if "round" in df.columns:  # a table of generations: rows per round of generation (distillery.rounds)
        out["rows_by_round"] = by_round(count_by_round(df))
    if "correctness_math_verify" in df.columns:
        mv = df["correctness_math_verify"]
        mv = mv.explode() if mv.dtype == pl.List(pl.Boolean) else mv
        out["math_verify_pass_rate"] = round(float(mv.drop_nulls().mean() or 0.0), 4)
    if "correctness_math_verify" in df.columns and "correctness_llama" in df.columns:
        pair = df.select("correctness_math_verify", "correctness_llama")
        if pair["correctness_math_verify"].dtype == pl.List(pl.Boolean):
            pair = pair.filter(pl.col("correctness_llama").is_not_null()).explode(["correctness_math_verify", "correctness_llama"])
        out["judge_recoveries"] = int(
            pair.filter(~pl.col("correctness_math_verify").fill_null(False) & pl.col("correctness_llama").fill_null(False)).height
        )
    if lengths is not None and lengths.len():
        out["generation_chars"] = {
            "mean": round(float(lengths.mean()), 1),
            "p50": int(lengths.quantile(0.5)),
            "p90": int(lengths.quantile(0.9)),
            "max": int(lengths.max()),
        }
    return out


SOLVED_BY = ["uuid", "is_reasoning_complete", "correctness_math_verify", "correctness_llama"]


def solved_problems(files: dict[str, Path]) -> set[str] | None:
    """The problems with a complete generation that math-verify or the judge called correct, in a
    table of generations (one row each) or the dataset (whose rows are such problems); None for any
    other table."""
    if files and {"uuid", "messages", "correctness_count"} <= set(columns_of(files)):
        return set(
            pl.concat([pl.read_parquet(f, columns=["uuid"]) for f in files.values()])["uuid"].to_list()
        )  # the dataset: solved ones only
    if not files or not set(SOLVED_BY) <= set(columns_of(files)):
        return None
    df = pl.concat([pl.read_parquet(f, columns=SOLVED_BY) for f in files.values()])
    if df.schema["correctness_math_verify"] != pl.Boolean:
        return None
    correct = pl.col("is_reasoning_complete") & (
        pl.col("correctness_math_verify").fill_null(False) | pl.col("correctness_llama").fill_null(False)
    )
    return set(df.filter(correct)["uuid"].to_list())


def diff(
    repo: Path, rev_a: str, rev_b: str = WORKSPACE, path: str = DEFAULT_PATH, key: list[str] | None = None, path_b: str | None = None
) -> Diff:
    """`path` at A against `path_b` (default `path`) at B: e.g. a one-round version's judged table
    against a two-round version's, which lives at data/judge/round-2/judged.parquet."""
    repo = Path(repo)
    ca, cb = resolve(repo, rev_a), resolve(repo, rev_b)
    files_a, files_b = version_files(repo, ca, path), version_files(repo, cb, path_b or path)
    cols_a, cols_b = columns_of(files_a), columns_of(files_b)
    key = key or default_key(cols_a)
    _check_key({"A": cols_a, "B": cols_b}, key)
    common = [c for c in cols_a if c in cols_b and c not in key]
    scanned = {"a": scan(files_a, key, common), "b": scan(files_b, key, common)}
    added, removed, changed = compare_hashed(scanned["a"][0], scanned["b"][0], key, common)
    changed, remade = split_remade(changed)
    pa, pb = params_at(repo, ca), params_at(repo, cb)
    params = {k: (pa.get(k), pb.get(k)) for k in sorted(set(pa) | set(pb)) if pa.get(k) != pb.get(k)}
    agg_a, agg_b = (aggregates(scanned[v][1], scanned[v][2], prepared=True) for v in ("a", "b"))
    aggs = {k: {"a": agg_a.get(k), "b": agg_b.get(k)} for k in dict.fromkeys([*agg_a, *agg_b])}
    return Diff(
        path,
        rev_a if ca == WORKSPACE else f"{rev_a} ({ca[:12]})",
        rev_b if cb == WORKSPACE else f"{rev_b} ({cb[:12]})",
        key,
        agg_a["rows"],
        agg_b["rows"],
        added,
        removed,
        changed,
        [c for c in cols_b if c not in cols_a],
        [c for c in cols_a if c not in cols_b],
        aggs,
        params,
        remade,
        inputs_that_differ(repo, ca, cb),
        removed_reasons(repo, cb, path, removed, key),
        solved if None not in (solved := (solved_problems(files_a), solved_problems(files_b))) else None,  # type: ignore[arg-type]
    )


# --- rendering -------------------------------------------------------------------------------------------


def _fmt(v: Any) -> str:
    return json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else str(v)


def render(d: Diff, fmt: str = "text", examples: int = 5) -> str:
    if fmt == "json":
        return json.dumps(d.as_json(), indent=2, sort_keys=False, default=str)
    j = d.as_json(examples)
    r = j["rows"]
    md = fmt == "markdown"
    lines = [f"{'## ' if md else ''}{d.path}: {d.rev_a} -> {d.rev_b} (key {', '.join(d.key)})", ""]
    summary = [
        ("rows", f"{r['a']} -> {r['b']}"),
        ("added", r["added"]),
        ("removed", r["removed"]),
        ("changed", r["changed"]),
        ("re-made", f"{r['remade']} (same content; only provenance changed)" if r["remade"] else 0),
        ("unchanged", r["unchanged"]),
    ]
    if md:
        lines += ["| | |", "| --- | --- |", *[f"| {k} | {v} |" for k, v in summary]]
    else:
        lines += [f"  {k:<10} {v}" for k, v in summary]
    if j["changed_by_column"]:
        lines += ["", f"{'### ' if md else ''}changed columns (rows)"]
        lines += [f"{'- ' if md else '  '}{c}: {n}" for c, n in j["changed_by_column"].items()]
    if j["remade_by_column"]:
        lines += ["", f"{'### ' if md else ''}re-made rows: provenance columns that changed (rows)"]
        lines += [f"{'- ' if md else '  '}{c}: {n}" for c, n in j["remade_by_column"].items()]
    for what in ("added", "removed"):
        if j["columns"][what]:
            lines += ["", f"columns {what}: {', '.join(j['columns'][what])}"]
    if j["removed_by_reason"]:
        lines += ["", f"{'### ' if md else ''}removed rows by reason (rejected tables at B)"]
        lines += [f"{'- ' if md else '  '}{reason}: {n}" for reason, n in j["removed_by_reason"].items()]
    for what in ("added", "removed"):
        if j["examples"][what]:
            lines += ["", f"{'### ' if md else ''}{what} (first {min(examples, r[what])})"]
            lines += [f"{'- ' if md else '  '}{', '.join(map(str, k))}" for k in j["examples"][what]]
    if j["examples"]["changed"]:
        lines += ["", f"{'### ' if md else ''}changed (first {min(examples, r['changed'])})"]
        lines += [f"{'- ' if md else '  '}{', '.join(map(str, e['key']))}: {', '.join(e['columns'])}" for e in j["examples"]["changed"]]
    if "problems_solved" in j:
        s = j["problems_solved"]
        lines += ["", f"{'### ' if md else ''}problems with a correct generation: {s['a']} -> {s['b']}"]
        lines += [
            f"{'- ' if md else '  '}recovered (none correct at A): {s['recovered']}",
            f"{'- ' if md else '  '}lost (none correct at B): {s['lost']}",
        ]
        for what in ("recovered", "lost"):
            if s["examples"][what]:
                lines.append(f"{'- ' if md else '  '}{what}, first {len(s['examples'][what])}: {', '.join(s['examples'][what])}")
    lines += ["", f"{'### ' if md else ''}aggregates (A -> B)"]
    if md:
        lines += ["| | A | B |", "| --- | --- | --- |"]
        lines += [f"| {k} | {_fmt(v['a'])} | {_fmt(v['b'])} |" for k, v in j["aggregates"].items() if v["a"] != v["b"]]
    else:
        lines += [f"  {k}: {_fmt(v['a'])} -> {_fmt(v['b'])}" for k, v in j["aggregates"].items() if v["a"] != v["b"]]
    same = [k for k, v in j["aggregates"].items() if v["a"] == v["b"]]
    if same:
        lines.append(f"{'' if md else '  '}unchanged: {', '.join(same)}")
    lines += ["", f"{'### ' if md else ''}params that differ"]
    lines += [f"{'- ' if md else '  '}{k}: {_fmt(v['a'])} -> {_fmt(v['b'])}" for k, v in j["params"].items()] or [
        f"{'' if md else '  '}none"
    ]
    lines += ["", f"{'### ' if md else ''}input files that differ (md5)"]
    lines += [f"{'- ' if md else '  '}{k}: {_short(v['a'])} -> {_short(v['b'])}" for k, v in j["inputs"].items()] or [
        f"{'' if md else '  '}none"
    ]
    return "\n".join(lines) + "\n"


def _short(md5: str | None) -> str:
    return "absent" if md5 is None else md5[:12]
