"""Tests for distillery.stages.preferences: which generations become chosen and rejected, the
pairing policies, reasons for problems without a pair, and TRL's conversational format."""

from __future__ import annotations

import json

import polars as pl
import pytest

from distillery.config import PreferencesConfig
from distillery.stages import preferences
from distillery.tables import JUDGED, KEPT, PREFERENCE_PAIRS, PREFERENCES_UNPAIRED, PROBLEMS, read_table

from support.tables import write_table_file

# uuid -> [(generation, finish_reason, error, complete, math_verify, llama, completion_tokens)]
GENS = {
    "mixed": [
        ("<think>short</think> \\boxed{4}", "stop", None, True, True, None, 10),
        ("<think>wrong</think> \\boxed{5}", "stop", None, True, False, False, 30),
        ("<think>cut off", "length", None, False, False, None, 100),
        ("<think>long correct</think> \\boxed{4}", "stop", None, True, True, None, 40),
    ],
    "judge_only": [
        ("<think>x</think> \\boxed{6.0}", "stop", None, True, False, True, 12),
        ("<think>x</think> \\boxed{7}", "stop", None, True, False, False, 13),
    ],
    "all_correct": [
        ("<think>a</think> \\boxed{1}", "stop", None, True, True, None, 5),
        ("<think>b</think> \\boxed{1}", "stop", None, True, True, None, 6),
    ],
    "none_correct": [
        ("<think>a</think> \\boxed{2}", "stop", None, True, False, False, 5),
        (None, "error", "HTTP 500", False, None, None, 0),
    ],
    "truncated_only": [
        ("<think>ok</think> \\boxed{3}", "stop", None, True, True, None, 8),
        ("<think>never ends", "length", None, False, False, None, 100),
    ],
    "deduped": [
        ("<think>ok</think> \\boxed{3}", "stop", None, True, True, None, 8),
        ("<think>no</think> \\boxed{9}", "stop", None, True, False, False, 8),
    ],
}


@pytest.fixture
def inputs(tmp_path):
    rows = sorted((u, i, *g) for u, gens in GENS.items() for i, g in enumerate(gens))  # sorted, as the judge stage writes it
    write_table_file(
        tmp_path / "judged.parquet",
        JUDGED,
        {
            "uuid": [r[0] for r in rows],
            "sample_index": [r[1] for r in rows],
            "request_key": [f"{r[0]}-{r[1]}" for r in rows],
            "generation": [r[2] for r in rows],
            "finish_reason": [r[3] for r in rows],
            "error": [r[4] for r in rows],
            "is_reasoning_complete": [r[5] for r in rows],
            "correctness_math_verify": [r[6] for r in rows],
            "correctness_llama": [r[7] for r in rows],
            "completion_tokens": [r[8] for r in rows],
        },
    )
    write_table_file(tmp_path / "problems.parquet", PROBLEMS, {"uuid": list(GENS), "problem": [f"Problem {u}?" for u in GENS]})
    write_table_file(tmp_path / "kept.parquet", KEPT, {"uuid": [u for u in GENS if u != "deduped"]})
    return tmp_path


def run(root, **cfg):
    paths = preferences.Paths(
        judged=root / "judged.parquet",
        problems=root / "problems.parquet",
        kept=root / "kept.parquet",
        pairs=root / "pairs.parquet",
        unpaired=root / "unpaired.parquet",
        metrics=root / "m.json",
    )
    counts = preferences.run(PreferencesConfig.model_validate(cfg), 42, paths)
    return (
        counts,
        read_table(paths.pairs, PREFERENCE_PAIRS),
        read_table(paths.unpaired, PREFERENCES_UNPAIRED),
        json.loads(paths.metrics.read_text()),
    )


def test_one_pair_per_problem_and_every_problem_accounted_for(inputs):
    counts, pairs, unpaired, metrics = run(inputs)
    assert sorted(pairs["uuid"]) == ["judge_only", "mixed", "truncated_only"]
    assert dict(zip(unpaired["uuid"], unpaired["reason"])) == {
        "all_correct": "no_rejected_generation",
        "none_correct": "no_correct_generation",
        "deduped": "removed_by_dedupe",
    }
    assert counts.rows_in == len(GENS) == counts.kept + sum(counts.rejected.values())
    assert metrics["problems"]["rejected_by_reason"] == {"no_correct_generation": 1, "no_rejected_generation": 1, "removed_by_dedupe": 1}
    assert metrics["pairs"] == 3 and sum(metrics["pairs_by_rejected_kind"].values()) == 3
    # judge_only's chosen side is correct by the judge alone (math-verify said no); mixed's and truncated_only's by math-verify.
    assert metrics["pairs_by_chosen_correct_by"] == {"judge": 1, "math_verify": 2}
    by = {r["uuid"]: r for r in pairs.iter_rows(named=True)}
    # TRL's conversational preference format; the request keys of both sides are kept.
    judge_only = by["judge_only"]
    assert judge_only["prompt"] == [{"content": "Problem judge_only?", "role": "user"}]
    assert judge_only["chosen"] == [
        {"content": "<think>x</think> \\boxed{6.0}", "role": "assistant"}
    ]  # the judge's verdict counts (either)
    assert judge_only["rejected"][0]["content"].endswith("\\boxed{7}")
    assert (judge_only["chosen_request_key"], judge_only["rejected_request_key"]) == ("judge_only-0", "judge_only-1")
    assert by["truncated_only"]["rejected_kind"] == "truncated"
    mixed = by["mixed"]
    assert mixed["chosen_sample_index"] in (0, 3) and mixed["rejected_sample_index"] in (1, 2)
    assert pairs["preferences_params"].n_unique() == 1 and pairs["preferences_code"][0].startswith("distillery")


def test_selection_math_verify_ignores_the_judge(inputs):
    _, pairs, unpaired, _ = run(inputs, selection="math_verify")
    assert "judge_only" not in pairs["uuid"].to_list()
    assert unpaired.filter(pl.col("uuid") == "judge_only")["reason"].item() == "no_correct_generation"


def test_all_pairs_and_its_cap(inputs):
    _, pairs, _, _ = run(inputs, pairing="all_pairs")
    mixed = pairs.filter(pl.col("uuid") == "mixed")
    assert mixed.height == 4 and mixed["pair_index"].to_list() == [0, 1, 2, 3]
    assert set(zip(mixed["chosen_sample_index"], mixed["rejected_sample_index"])) == {(0, 1), (0, 2), (3, 1), (3, 2)}
    _, capped, _, _ = run(inputs, pairing="all_pairs", max_pairs_per_problem=2)
    assert capped.filter(pl.col("uuid") == "mixed").height == 2


def test_hardest_negative_prefers_a_finished_wrong_answer_near_the_chosen_length(inputs):
    _, pairs, _, _ = run(inputs, pairing="hardest_negative")
    mixed = pairs.filter(pl.col("uuid") == "mixed").row(0, named=True)
    assert mixed["rejected_kind"] == "wrong" and mixed["rejected_sample_index"] == 1


def test_rejected_kinds_and_the_seed_decide_reproducibly(inputs):
    _, pairs, unpaired, _ = run(inputs, rejected_kinds=["wrong"])
    assert "truncated_only" not in pairs["uuid"].to_list()
    assert unpaired.filter(pl.col("uuid") == "truncated_only")["reason"].item() == "no_rejected_generation"
    a = run(inputs)[1]
    b = run(inputs)[1]
    assert a.equals(b)  # seeded: the same pairs on a re-run


def test_judged_not_sorted_by_uuid_is_an_error(inputs):
    from distillery.errors import DistilleryError

    judged = pl.read_parquet(inputs / "judged.parquet")
    judged.reverse().write_parquet(inputs / "judged.parquet")
    with pytest.raises(DistilleryError, match="judged.parquet is not sorted by uuid.*re-run it"):
        run(inputs)


def test_batches_change_no_output(inputs, monkeypatch):
    """Judged rows read a few at a time and kept problems in buckets of one: the same pairs."""
    from distillery import tables

    whole = run(inputs)
    monkeypatch.setattr(preferences, "JUDGED_BATCH_ROWS", 3)
    monkeypatch.setattr(tables, "KEPT_PER_BUCKET", 1)
    pieces = run(inputs)
    assert pieces[1].equals(whole[1]) and pieces[2].equals(whole[2]) and pieces[3] == whole[3]
