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
