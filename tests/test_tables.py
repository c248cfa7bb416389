"""The declared stage tables (distillery.tables): a missing or mistyped column, or a swapped path, is
one message naming the file, the column, the stage that makes it and the fix; writers refuse
undeclared columns; filtering stages count and record a rejected row in one call."""

from __future__ import annotations

import subprocess
import sys

import polars as pl
import pytest

from distillery import tables
from distillery.config import VerifyConfig, stage_config
from distillery.errors import DistilleryError
from distillery.metrics import FilterCounts
from distillery.stages import verify

from support.tables import table_frame, write_table_file


def problems_and_generations(tmp_path):
    problems = write_table_file(tmp_path / "problems.parquet", tables.PROBLEMS, {"uuid": ["a"], "problem": ["1+1?"], "answer": ["2"]})
    gens = write_table_file(
        tmp_path / "generations.parquet",
        tables.GENERATIONS,
        {"uuid": ["a"], "sample_index": [0], "generation": ["\\boxed{2}"], "finish_reason": ["stop"]},
    )
    return problems, gens


def test_swapped_paths_name_the_file_the_stage_and_what_it_looks_like(tmp_path):
    problems, gens = problems_and_generations(tmp_path)
    paths = verify.Paths(generations=problems, problems=gens, verified=tmp_path / "v.parquet", metrics=tmp_path / "m.json")
    with pytest.raises(DistilleryError) as info:
        verify.run(VerifyConfig(workers=1), paths)
    msg = str(info.value)
    assert msg.startswith(f"{problems} has no column(s) ['sample_index', 'round', 'request_key'")
    assert "the generate stage writes them, as its generations (data/generate/generations.parquet)" in msg
    assert "It looks like the sample stage's sampled problems (data/sample/problems.parquet): check the path" in msg
    assert not (tmp_path / "v.parquet").exists()


def test_the_swap_reaches_the_console_as_one_line_from_the_cli(tmp_path):
    problems, gens = problems_and_generations(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "distillery", "verify", "--config", stage_config("verify", VerifyConfig(workers=1), seed=1)]
        + ["--generations", str(problems), "--problems", str(gens), "--verified", str(tmp_path / "v"), "--metrics", str(tmp_path / "m")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("error:") == 1 and "looks like the sample stage's sampled problems" in proc.stderr


def test_a_mistyped_column_names_both_types(tmp_path):
    df = table_frame(tables.GENERATIONS, {"uuid": ["a"], "sample_index": [0]}).with_columns(pl.col("sample_index").cast(pl.String))
    df.write_parquet(tmp_path / "g.parquet")
    with pytest.raises(DistilleryError, match=r"has the wrong type: sample_index is String, not Int64; the generate stage writes"):
        tables.read_table(tmp_path / "g.parquet", tables.GENERATIONS, columns=["uuid", "sample_index"])


def test_a_reader_asks_only_for_the_columns_it_uses(tmp_path):
    table_frame(tables.PROBLEMS, {"uuid": ["a"]}).drop("solution").write_parquet(tmp_path / "p.parquet")
    assert tables.read_table(tmp_path / "p.parquet", tables.PROBLEMS, columns=["uuid"]).columns == ["uuid"]
    with pytest.raises(DistilleryError, match=r"no column\(s\) \['solution'\]; the sample stage writes them"):
        tables.read_table(tmp_path / "p.parquet", tables.PROBLEMS)


def test_a_missing_file_names_the_stage_that_makes_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DistilleryError, match=r"made by the `judge` stage; run `dvc repro judge`"):
        tables.read_table("data/judge/judged.parquet", tables.JUDGED)


def test_writers_refuse_undeclared_or_missing_columns_and_cast_to_declared_types(tmp_path):
    kept = pl.DataFrame({"uuid": ["a"], "dedupe_params": ["p"], "dedupe_code": ["c"]})
    with pytest.raises(DistilleryError, match=r"bug: the dedupe stage made dedupe's kept problems with columns .* declare the change"):
        tables.write_table(kept.with_columns(pl.lit(1).alias("extra")), tmp_path / "k.parquet", tables.KEPT)
    with pytest.raises(DistilleryError, match="declares"):
        tables.write_table(kept.drop("dedupe_code"), tmp_path / "k.parquet", tables.KEPT)
    pairs = pl.DataFrame(
        {
            "uuid_a": ["a"],
            "uuid_b": ["b"],
            "similarity": [1],
            "problem_a": ["x"],
            "problem_b": ["y"],
            "dedupe_params": ["p"],
            "dedupe_code": ["c"],
        }
    )
    written = tables.write_table(pairs, tmp_path / "n.parquet", tables.NEAR_DUPLICATES)
    assert written.schema["similarity"] == pl.Float64 and pl.read_parquet_schema(tmp_path / "n.parquet")["similarity"] == pl.Float64


def test_each_table_is_named_after_a_stage_that_writes_it():
    from distillery.workflow import STAGES

    stage_names = set(STAGES)
    for t in tables.TABLES:
        assert t.stage in stage_names and t.path.startswith(f"data/{t.stage}/"), t.name
    assert len({t.path for t in tables.TABLES}) == len(tables.TABLES)


def test_one_call_counts_and_records_a_rejected_row():
    counts = FilterCounts(rows_in=5)
    counts.reject("empty", uuid="a", detail="")
    counts.reject_all("dup", pl.DataFrame({"detail": ["of a", "of a"], "uuid": ["b", "c"]}))
    counts.reject_all("none", pl.DataFrame({"uuid": [], "detail": []}, schema={"uuid": pl.String, "detail": pl.String}))
    counts.reject("long", uuid="d", detail="9 chars")
    counts.keep()
    counts.check("test")
    rows = counts.rejected_rows({"uuid": pl.String, "reason": pl.String, "detail": pl.String})
    assert rows.rows() == [("a", "empty", ""), ("b", "dup", "of a"), ("c", "dup", "of a"), ("d", "long", "9 chars")]
    assert counts.as_dict()["rejected_by_reason"] == {"dup": 2, "empty": 1, "long": 1}  # a filter that rejected nothing is no reason


# --- streaming: batches that keep a problem's rows together, and the key-order merge of shards ----


def generation_rows(n_problems: int, seed: int) -> pl.DataFrame:
    import random

    rng = random.Random(seed)
    rows = [(f"p{rng.randrange(10**6):06d}-{i}", s, f"text {i}.{s}") for i in range(n_problems) for s in range(rng.randint(1, 4))]
    rng.shuffle(rows)
    return table_frame(
        tables.GENERATIONS, {"uuid": [r[0] for r in rows], "sample_index": [r[1] for r in rows], "generation": [r[2] for r in rows]}
    )


def test_gather_sorted_merges_shards_into_key_order_a_batch_at_a_time(tmp_path):
    from distillery.keys import shard_of

    df = generation_rows(40, seed=1)
    shards = []
    for k in range(3):
        path = tmp_path / f"shard-{k}.parquet"
        df.filter(pl.col("uuid").map_elements(lambda u, k=k: shard_of(u, 3) == k, return_dtype=pl.Boolean)).sort(
            "uuid", "sample_index"
        ).write_parquet(path)
        shards.append(path)
    empty = tmp_path / "empty.parquet"
    df.head(0).write_parquet(empty)
    out = tmp_path / "all.parquet"
    batches = list(tables.gather_sorted([*shards, empty], tables.GENERATIONS, out, batch_rows=4))
    merged = pl.read_parquet(out)
    assert merged.equals(df.sort("uuid", "sample_index"))
    assert pl.concat(batches).equals(merged) and len(batches) > 5  # written as it was merged, never all at once
    # The same bytes whatever the number of shards: whole row groups of batch_rows, the last one short.
    assert [b.height for b in batches[:-1]] == [4] * (len(batches) - 1) and 0 < batches[-1].height <= 4
    one = tmp_path / "one.parquet"
    df.sort("uuid", "sample_index").write_parquet(one)
    list(tables.gather_sorted([one], tables.GENERATIONS, tmp_path / "from_one.parquet", batch_rows=4))
    assert (tmp_path / "from_one.parquet").read_bytes() == out.read_bytes()
    # Two shards open at a time: merged in pairs into temporary files first, then those; the same bytes.
    # A killed gather's temporary directory (a copy of the rows) goes when the gather runs again.
    killed = tmp_path / ".paired.parquet.k1ll3d"
    killed.mkdir()
    (killed / "merge-0-0.parquet").write_bytes(b"half a file")
    paired = list(tables.gather_sorted([*shards, empty], tables.GENERATIONS, tmp_path / "paired.parquet", batch_rows=4, fan_in=2))
    assert (tmp_path / "paired.parquet").read_bytes() == out.read_bytes() and pl.concat(paired).equals(merged)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["all.parquet", "empty.parquet", "one.parquet", "from_one.parquet", "paired.parquet", *(s.name for s in shards)]
    )


def test_a_shard_out_of_key_order_is_refused_naming_it(tmp_path):
    path = tmp_path / "shard-0.parquet"
    generation_rows(10, seed=2).write_parquet(path)  # shuffled
    with pytest.raises(DistilleryError, match=r"shard-0.parquet is not sorted by \(uuid, sample_index\).*re-run it"):
        list(tables.gather_sorted([path], tables.GENERATIONS, tmp_path / "out.parquet", batch_rows=4))
    assert not (tmp_path / "out.parquet").exists()
    # Named as well when it is merged into a temporary file first, which goes with the error.
    with pytest.raises(DistilleryError, match=r"shard-0.parquet is not sorted"):
        list(tables.gather_sorted([path, path, path], tables.GENERATIONS, tmp_path / "out.parquet", batch_rows=4, fan_in=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard-0.parquet"]


def test_iter_groups_never_splits_a_problem_across_batches(tmp_path):
    df = generation_rows(30, seed=3).sort("uuid", "sample_index")
    df.write_parquet(tmp_path / "g.parquet")
    # Batches of one row: a problem's rows span several batches and wait whole for the next key.
    for batch_rows in (3, 1):
        groups = list(tables.iter_groups(tables.iter_table(tmp_path / "g.parquet", tables.GENERATIONS, batch_rows=batch_rows), "uuid", "g"))
        assert pl.concat(groups).equals(df)
        seen = [set(g["uuid"]) for g in groups]
        assert all(not (a & b) for i, a in enumerate(seen) for b in seen[i + 1 :])
