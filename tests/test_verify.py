"""The verify stage as its rule runs it: every generation gets a status, the columns later stages
read, the problem-level counts, provenance and the versions it ran. (The checker itself is tested in
test_verification.py, on hostile input in test_verify_hostile.py, and against hand labels in
test_verify_labelled.py.)"""

from __future__ import annotations

import json

from distillery.config import VerifyConfig
from distillery.provenance import code_version
from distillery.stages import verify
from distillery.tables import GENERATIONS, PROBLEMS

from support.tables import write_table_file


def test_the_stage_labels_every_generation_and_counts_problems(tmp_path):
    think = "<think>\nwork\n</think>\n\n"
    rows = [  # (uuid, generation, finish_reason): what R1-style teachers return
        ("a", think + "So $\\boxed{\\frac{1}{2}}$.", "stop"),  # right, in another form than the gold
        ("a", think + "So $\\boxed{3}$.", "stop"),  # wrong
        ("b", think + "No box here, the answer is 7.", "stop"),  # no boxed answer
        ("b", "<think>\nwork that never ends $\\boxed{7}$", "length"),  # truncated: never correct
        ("c", think + "$\\boxed{x}$", "stop"),  # the gold is empty
    ]
    columns = {
        "uuid": [r[0] for r in rows],
        "sample_index": [0, 1, 0, 1, 0],
        "generation": [r[1] for r in rows],
        "finish_reason": [r[2] for r in rows],
    }
    write_table_file(tmp_path / "gens.parquet", GENERATIONS, columns)
    write_table_file(tmp_path / "problems.parquet", PROBLEMS, {"uuid": ["a", "b", "c"], "answer": ["0.5", "7", ""]})
    out = verify.run(
        VerifyConfig(workers=1),
        verify.Paths(
            generations=tmp_path / "gens.parquet",
            problems=tmp_path / "problems.parquet",
            verified=tmp_path / "out.parquet",
            metrics=tmp_path / "m.json",
        ),
    )
    assert out["verify_status"].to_list() == ["ok", "mismatch", "no_answer", "no_answer", "gold_unparseable"]
    assert out["correctness_math_verify"].to_list() == [True, False, False, False, False]
    assert out["is_reasoning_complete"].to_list() == [True, True, True, False, True]
    assert out["verify_code"].unique().to_list() == [code_version("verify")] and out["verifier"][0].startswith("math-verify ")
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["problems_with_correct_generation"] == 1 and metrics["problems"] == 3
    assert metrics["problems_by_best_status"]["ok"] == 1 and metrics["generations_by_status"]["mismatch"] == 1
    assert metrics["versions"]["math-verify"] == out["verifier"][0].split()[1]


def test_verify_per_shard_then_gathered_is_verify_in_one_process(tmp_path):
    """A verify job per shard of the problem keys, each reading the whole (mixed) table and keeping its
    own problems, then the gather: the same table and counts as one process, every row in one shard."""
    import polars as pl

    from distillery.keys import shard_of
    from distillery.tables import VERIFIED

    think = "<think>\nwork\n</think>\n\n"
    answers = ["\\frac{1}{2}", "0.5", "3", "\\boxed", "x+1", "1/2"]
    uuids = [f"problem-{i:02d}" for i in range(15)]
    rows = [(u, s, think + f"So $\\boxed{{{answers[(i + s) % len(answers)]}}}$.") for i, u in enumerate(uuids) for s in range(3)]
    gens = {
        "uuid": [r[0] for r in rows],
        "sample_index": [r[1] for r in rows],
        "generation": [r[2] for r in rows],
        "finish_reason": ["stop"] * len(rows),
    }
    write_table_file(tmp_path / "gens.parquet", GENERATIONS, gens)
    write_table_file(tmp_path / "problems.parquet", PROBLEMS, {"uuid": uuids, "answer": ["0.5"] * 14 + ["{1"]})
    cfg = VerifyConfig(workers=1)
    whole = verify.run(
        cfg, verify.Paths(tmp_path / "gens.parquet", tmp_path / "problems.parquet", tmp_path / "whole.parquet", tmp_path / "whole.json")
    )
    shards = [
        verify.ShardPaths(tmp_path / "gens.parquet", tmp_path / "problems.parquet", tmp_path / f"v-{k}.parquet", tmp_path / f"v-{k}.json")
        for k in range(3)
    ]
    figures = [verify.run_shard(cfg, k, 3, p) for k, p in enumerate(shards)]
    for k, p in enumerate(shards):
        assert all(shard_of(u, 3) == k for u in pl.read_parquet(p.verified)["uuid"])
    assert sum(f["generations"] for f in figures) == whole.height  # rows in = rows out, summed over shards
    verify.gather(
        verify.GatherPaths(
            [p.verified for p in shards],
            [p.figures for p in shards],
            tmp_path / "problems.parquet",
            tmp_path / "gathered.parquet",
            tmp_path / "gathered.json",
        )
    )
    assert pl.read_parquet(tmp_path / "gathered.parquet").equals(whole.cast(VERIFIED.schema))
    per_shard, one = (json.loads((tmp_path / f).read_text()) for f in ("gathered.json", "whole.json"))
    assert per_shard.pop("shards") == {f"shard-{k}": f["generations"] for k, f in enumerate(figures)}
    one.pop("shards")
    assert per_shard == one and one["problems_with_malformed_gold"] == 1
