"""Tests for `distillery diff`: the row comparison against a direct one, aggregates, params, and
reading versions from git + the DVC cache (the end-to-end case is in test_pipeline.py)."""

from __future__ import annotations

import json
import random

import polars as pl
import pytest

from distillery import diff as d
from distillery.errors import DistilleryError


def frame(n: int, seed: int = 0) -> pl.DataFrame:
    rng = random.Random(seed)
    return pl.DataFrame(
        {
            "uuid": [f"u{i:04d}" for i in range(n)],
            "source": [rng.choice(["olympiads", "cn_k12"]) for _ in range(n)],
            "generations": [[f"gen {i} a", f"gen {i} b"] for i in range(n)],
            "correctness_math_verify": [[rng.random() < 0.5, rng.random() < 0.5] for _ in range(n)],
            "correctness_llama": [None if i % 3 else [True, False] for i in range(n)],
            "correctness_count": [rng.randint(0, 2) for _ in range(n)],
        }
    )


def test_compare_matches_a_direct_comparison():
    a = frame(300)
    rng = random.Random(1)
    rows = a.to_dicts()
    for r in rng.sample(rows, 20):
        r["generations"] = [r["generations"][0], "replaced"]
    for r in rng.sample(rows, 10):
        r["correctness_llama"] = [False, True]  # verdicts flipped (or set where the judge had not run)
    removed = set(rng.sample([r["uuid"] for r in rows], 7))
    kept = [r for r in rows if r["uuid"] not in removed]
    added = [{**rows[0], "uuid": f"new{i}"} for i in range(4)]
    b = pl.DataFrame(kept + added, schema=a.schema)

    got_added, got_removed, got_changed = d.compare(a, b, ["uuid"])
    before = {r["uuid"]: r for r in a.to_dicts()}
    after = {r["uuid"]: r for r in b.to_dicts()}
    assert [k[0] for k in got_added] == sorted(set(after) - set(before))
    assert [k[0] for k in got_removed] == sorted(removed)
    expected = {
        u: [c for c in a.columns if c != "uuid" and before[u][c] != after[u][c]]
        for u in sorted(set(before) & set(after))
        if before[u] != after[u]
    }
    assert {k[0]: v for k, v in got_changed.items()} == expected
    assert 20 <= len(expected) <= 30


def test_duplicate_keys_are_refused():
    a = frame(5)
    with pytest.raises(DistilleryError, match="share a key"):
        d.compare(pl.concat([a, a.head(1)]), a, ["uuid"])
    with pytest.raises(DistilleryError, match="no key column"):
        d.compare(a, a, ["sample_index"])


def test_aggregates():
    a = pl.DataFrame(
        {
            "uuid": ["x", "y"],
            "source": ["s", "t"],
            "split": ["default", "extended"],
            "generations": [["abcd", "ab"], ["abcdef"]],
            "correctness_math_verify": [[True, False], [False]],
            "correctness_llama": [[None, True], None],
        }
    )
    agg = d.aggregates(a)
    assert agg["rows_by_source"] == {"s": 1, "t": 1} and agg["rows_by_split"] == {"default": 1, "extended": 1}
    assert agg["math_verify_pass_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert agg["judge_recoveries"] == 1
    assert agg["generation_chars"]["max"] == 6 and agg["generation_chars"]["mean"] == 4.0


def test_render_formats():
    a = frame(10)
    b = a.with_columns(pl.when(pl.col("uuid") == "u0003").then(9).otherwise(pl.col("correctness_count")).alias("correctness_count"))
    added, removed, changed = d.compare(a, b, ["uuid"])
    diff = d.Diff(
        "data/x.parquet",
        "A",
        "B",
        ["uuid"],
        10,
        10,
        added,
        removed,
        changed,
        [],
        [],
        {"rows": {"a": 10, "b": 10}},
        {"build.choice": ("random", "shortest")},
    )
    text = d.render(diff)
    assert "changed    1" in text and "u0003: correctness_count" in text and "build.choice: random -> shortest" in text
    md = d.render(diff, "markdown")
    assert "| changed | 1 |" in md and "- build.choice: random -> shortest" in md
    j = json.loads(d.render(diff, "json"))
    assert j["rows"]["changed"] == 1 and j["changed_by_column"] == {"correctness_count": 1}
    assert j["params"] == {"build.choice": {"a": "random", "b": "shortest"}}


def test_rows_whose_only_change_is_provenance_are_counted_as_remade():
    a = frame(10).with_columns(pl.lit("p1").alias("judge_params"), pl.lit("distillery 0.1.0 git aaa").alias("judge_code"))
    # A new judge setting: every row is re-stamped, two verdicts change.
    b = a.with_columns(
        pl.lit("p2").alias("judge_params"),
        pl.when(pl.col("uuid").is_in(["u0001", "u0005"])).then(9).otherwise(pl.col("correctness_count")).alias("correctness_count"),
    )
    added, removed, changed = d.compare(a, b, ["uuid"])
    content, remade = d.split_remade(changed)
    assert {k[0]: v for k, v in content.items()} == {
        "u0001": ["correctness_count", "judge_params"],
        "u0005": ["correctness_count", "judge_params"],
    }
    assert len(remade) == 8 and all(v == ["judge_params"] for v in remade.values())
    diff = d.Diff("x", "A", "B", ["uuid"], 10, 10, added, removed, content, [], [], {}, {}, remade)
    j = diff.as_json()
    assert j["rows"] == {"a": 10, "b": 10, "added": 0, "removed": 0, "changed": 2, "remade": 8, "unchanged": 0}
    assert j["changed_by_column"] == {"correctness_count": 2, "judge_params": 2} and j["remade_by_column"] == {"judge_params": 8}
    assert "re-made    8 (same content; only provenance changed)" in d.render(diff)


def test_bad_revisions_and_paths_name_the_fix(tmp_path):
    import subprocess

    repo = tmp_path / "r"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / "params.yaml").write_text("a: 1\n")
    subprocess.run(git + ["add", "-A"], cwd=repo, check=True)
    subprocess.run(git + ["commit", "-qm", "x"], cwd=repo, check=True)
    with pytest.raises(DistilleryError, match="not a git revision"):
        d.diff(repo, "nope", "HEAD")
    with pytest.raises(DistilleryError, match="has no dvc.lock"):
        d.diff(repo, "HEAD", "HEAD")
    with pytest.raises(DistilleryError, match="no parquet files in the workspace"):
        d.diff(repo, "workspace", "workspace")


def _commit(repo, git, message):
    import subprocess

    subprocess.run(git + ["add", "-A"], cwd=repo, check=True)
    subprocess.run(git + ["commit", "-qm", message], cwd=repo, check=True)


def _lock(deps: dict[str, str], outs: dict[str, str]) -> str:
    import yaml as _yaml

    stage = {"cmd": "x", "deps": [{"path": p, "md5": m} for p, m in deps.items()], "outs": [{"path": p, "md5": m} for p, m in outs.items()]}
    return _yaml.safe_dump({"schema": "2.0", "stages": {"build": stage}})


def test_changed_input_files_and_removed_rows_reasons_are_named(tmp_path):
    """Two versions whose params are the same but whose source file changed; the newer one drops two
    problems (build says why for one, dedupe for the other) and one that no table names."""
    import hashlib
    import subprocess

    repo = tmp_path / "r"
    (repo / "data").mkdir(parents=True)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / "params.yaml").write_text("sample: {n: 5}\n")

    def cached(frame: pl.DataFrame, name: str) -> str:
        path = tmp_path / name
        frame.write_parquet(path)
        md5 = hashlib.md5(path.read_bytes()).hexdigest()
        obj = repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
        obj.parent.mkdir(parents=True, exist_ok=True)
        obj.write_bytes(path.read_bytes())
        return md5

    old = cached(pl.DataFrame({"uuid": ["u1", "u2", "u3", "u4"], "problem": ["a", "b", "c", "d"]}), "a.parquet")
    new = cached(pl.DataFrame({"uuid": ["u1"], "problem": ["a"]}), "b.parquet")
    build_rejected = cached(pl.DataFrame({"uuid": ["u2"], "reason": ["no_correct_generation"], "detail": [""]}), "br.parquet")
    dedupe_rejected = cached(
        pl.DataFrame({"uuid": ["u3", "u9"], "reason": ["near_duplicate", "exact_duplicate"], "detail": ["", ""]}), "dr.parquet"
    )
    source_a, source_b = "1" * 32, "2" * 32
    (repo / "dvc.lock").write_text(
        _lock(
            {"data/my_source.jsonl": source_a, "src/x.py": "3" * 32, "data/dedupe/kept.parquet": "4" * 32},
            {"data/out.parquet": old, "data/dedupe/kept.parquet": "4" * 32},
        )
    )
    _commit(repo, git, "a")
    lock_b = _lock(
        {"data/my_source.jsonl": source_b, "src/x.py": "3" * 32, "data/dedupe/kept.parquet": "5" * 32},
        {
            "data/out.parquet": new,
            "data/dedupe/kept.parquet": "5" * 32,
            "data/build/rejected.parquet": build_rejected,
            "data/dedupe/rejected.parquet": dedupe_rejected,
        },
    )
    (repo / "dvc.lock").write_text(lock_b)
    _commit(repo, git, "b")

    result = d.diff(repo, "HEAD~1", "HEAD", path="data/out.parquet")
    # The source changed; the code did not; dedupe's kept table is made by a stage, not an input.
    assert result.inputs == {"data/my_source.jsonl": (source_a, source_b)}
    assert result.removed_by_reason == {
        "build: no_correct_generation": 1,
        "dedupe: near_duplicate": 1,
        "in no rejected table (left out before build, e.g. not sampled)": 1,
    }
    text = d.render(result)
    assert "params that differ\n  none" in text
    assert "input files that differ (md5)\n  data/my_source.jsonl: 111111111111 -> 222222222222" in text
    assert "removed rows by reason (rejected tables at B)\n  build: no_correct_generation: 1\n  dedupe: near_duplicate: 1\n" in text

    # The workspace: a file edited since the last `dvc repro` counts against the revision's record.
    (repo / "data" / "my_source.jsonl").write_text('{"problem": "edited"}\n')
    (repo / "src").mkdir()
    (repo / "src" / "x.py").write_text("")
    (repo / "data" / "out.parquet").write_bytes((tmp_path / "b.parquet").read_bytes())
    now = d.diff(repo, "HEAD", "workspace", path="data/out.parquet")
    edited = hashlib.md5(b'{"problem": "edited"}\n').hexdigest()
    empty = hashlib.md5(b"").hexdigest()
    assert now.inputs == {"data/my_source.jsonl": (source_b, edited), "src/x.py": ("3" * 32, empty)}
