"""Tests for distillery.stages.sample: row checks with reasons, keys, nested seeded sampling."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import polars as pl
import pytest

from distillery.config import SampleConfig
from distillery.errors import DistilleryError, MissingInputError
from distillery.io import file_md5
from distillery.keys import problem_key
from distillery.stages import sample
from distillery.tables import PROBLEMS

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "data" / "bundled" / "numina_sample.jsonl"


def make_cfg(source, **kw) -> SampleConfig:
    return SampleConfig.model_validate({"source": str(source), **kw})


def run_sample(cfg: SampleConfig, out: Path, seed: int = 42):
    out.mkdir(parents=True, exist_ok=True)
    paths = (out / "problems.parquet", out / "rejected.parquet", out / "metrics.json")
    counts = sample.run(cfg, seed, sample.Paths(problems=paths[0], rejected=paths[1], metrics=paths[2]))
    return counts, pl.read_parquet(paths[0]), pl.read_parquet(paths[1]), json.loads(paths[2].read_text())


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def good_row(i: int, source: str = "olympiads", **kw) -> dict:
    row = {
        "problem": f"Compute {i} + {i}.",
        "solution": f"It is {2 * i}.",
        "answer": str(2 * i),
        "problem_type": "Algebra",
        "question_type": "math-word-problem",
        "source": source,
        "synthetic": False,
    }
    row.update(kw)
    return row


# --- the bundled sample -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    cfg = make_cfg(BUNDLED, exclude={"question_type": ["proof"]})
    return run_sample(cfg, tmp_path_factory.mktemp("bundled"))


def test_bundled_counts(bundled):
    counts, problems, rejected, metrics = bundled
    assert counts.rows_in == 84
    assert counts.kept + sum(counts.rejected.values()) == 84
    assert problems.height == counts.kept
    assert rejected.height == sum(counts.rejected.values())
    assert metrics["counts"]["rows_in"] == 84
    assert metrics["counts"]["kept"] + metrics["counts"]["rejected"] == 84
    assert metrics["counts"]["kept"] == problems.height
    assert sum(metrics["problems_by_source"].values()) == problems.height


def test_bundled_rejection_reasons(bundled):
    counts, _, rejected, metrics = bundled
    expected = {
        "missing_answer",
        "empty_answer",
        "answer_not_string",
        "empty_problem",
        "problem_not_string",
        "synthetic",
        "question_type_excluded",
    }
    assert expected <= set(counts.rejected)
    assert expected <= set(rejected["reason"].to_list())
    assert expected <= set(metrics["counts"]["rejected_by_reason"])
    assert rejected.schema["source_row"] == pl.Int64
    assert rejected["source_row"].null_count() == 0
    # every rejected source_row is a real row index, and each row is rejected at most once
    rows = rejected["source_row"].to_list()
    assert len(rows) == len(set(rows))
    assert all(0 <= r < 84 for r in rows)


def test_bundled_rejected_rows_match_the_file(bundled):
    _, _, rejected, _ = bundled
    lines = [json.loads(l) for l in BUNDLED.read_text().splitlines() if l.strip()]
    for row in rejected.iter_rows(named=True):
        src = lines[row["source_row"]]
        if row["reason"] == "missing_answer":
            assert src.get("answer") is None
        elif row["reason"] == "empty_answer":
            assert isinstance(src["answer"], str) and not src["answer"].strip()
        elif row["reason"] == "answer_not_string":
            assert not isinstance(src["answer"], str)
        elif row["reason"] == "problem_not_string":
            assert not isinstance(src["problem"], str)
        elif row["reason"] == "question_type_excluded":
            assert src["question_type"] == "proof"
        elif row["reason"] == "synthetic":
            assert src["synthetic"] is True


def test_bundled_kept_problems_are_clean(bundled):
    _, problems, _, _ = bundled
    assert problems.columns == PROBLEMS.columns
    assert problems["uuid"].n_unique() == problems.height
    # Provenance: every row points into this exact version of the source file, by row number.
    assert problems["source_version"].unique().to_list() == [f"md5 {file_md5(BUNDLED)}"]
    assert problems["sample_params"].n_unique() == 1 and problems["sample_code"][0].startswith("distillery ")
    assert "proof" not in problems["question_type"].to_list()
    assert not problems["synthetic"].any()
    assert all(a.strip() for a in problems["answer"].to_list())
    for row in problems.iter_rows(named=True):
        assert row["uuid"] == problem_key(row["problem"], row["source"])


# --- row checks on hand-made files --------------------------------------------------------------


def test_problem_too_long(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [good_row(1), good_row(2, problem="x" * 1_000_000)])
    counts, problems, rejected, _ = run_sample(make_cfg(src), tmp_path / "out")
    assert counts.rejected["problem_too_long"] == 1
    assert problems.height == 1
    row = rejected.row(0, named=True)
    assert row["reason"] == "problem_too_long"
    assert row["source_row"] == 1
    assert len(row["preview"]) <= 200


def test_non_string_source_rejected(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [good_row(1), good_row(2, source=5), good_row(3, problem_type=["a"])])
    counts, problems, rejected, _ = run_sample(make_cfg(src), tmp_path / "out")
    assert dict(counts.rejected) == {"source_not_string": 1, "problem_type_not_string": 1}
    by_row = dict(zip(rejected["source_row"], rejected["reason"]))
    assert by_row == {1: "source_not_string", 2: "problem_type_not_string"}
    assert problems["source_row"].to_list() == [0]


def test_duplicate_key_whitespace_and_case(tmp_path):
    rows = [
        good_row(1, problem="Find  the value of $x$ if $2x = 4$."),
        good_row(1, problem="find the value of $X$ if\n$2X = 4$. "),  # case and whitespace only
        good_row(1, problem="FIND THE VALUE OF $x$ IF $2x = 4$."),
        good_row(1, problem="Find the value of $x$ if $2x = 4$.", source="amc_aime"),  # other source: kept
    ]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    counts, problems, rejected, _ = run_sample(make_cfg(src), tmp_path / "out")
    assert counts.rejected["duplicate_key"] == 2
    assert sorted(rejected["source_row"].to_list()) == [1, 2]
    assert set(rejected["reason"].to_list()) == {"duplicate_key"}
    assert all("source_row 0" in d for d in rejected["detail"].to_list())
    assert sorted(problems["source_row"].to_list()) == [0, 3]
    assert sorted(problems["source"].to_list()) == ["amc_aime", "olympiads"]


def test_marked_invalid_and_answer_stripped(tmp_path):
    rows = [good_row(1, answer="  2 \n"), good_row(2, problem_is_valid="No"), good_row(3, solution_is_valid="Yes")]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    counts, problems, _, _ = run_sample(make_cfg(src), tmp_path / "out")
    assert dict(counts.rejected) == {"marked_invalid": 1}
    assert problems.sort("source_row")["answer"].to_list() == ["2", "6"]


# --- seeded, nested sampling ---------------------------------------------------------------------


@pytest.fixture()
def forty(tmp_path):
    return write_jsonl(tmp_path / "forty.jsonl", [good_row(i) for i in range(40)])


def test_nested_sample(forty, tmp_path):
    c10, p10, _, m10 = run_sample(make_cfg(forty, n=10), tmp_path / "n10", seed=3)
    c20, p20, _, _ = run_sample(make_cfg(forty, n=20), tmp_path / "n20", seed=3)
    assert p10.height == 10 and p20.height == 20
    assert set(p10["uuid"]) < set(p20["uuid"])
    assert c10.kept == 10 and c10.rejected["not_sampled"] == 30
    assert c20.kept == 20 and c20.rejected["not_sampled"] == 20
    assert m10["counts"]["rejected_by_reason"] == {"not_sampled": 30}


def test_same_seed_same_output(forty, tmp_path):
    _, a, ra, _ = run_sample(make_cfg(forty, n=10), tmp_path / "a", seed=11)
    _, b, rb, _ = run_sample(make_cfg(forty, n=10), tmp_path / "b", seed=11)
    assert a.equals(b)
    assert ra.equals(rb)
    assert (tmp_path / "a" / "problems.parquet").read_bytes() == (tmp_path / "b" / "problems.parquet").read_bytes()


def test_different_seed_different_sample(forty, tmp_path):
    _, a, _, _ = run_sample(make_cfg(forty, n=10), tmp_path / "a", seed=1)
    _, b, _, _ = run_sample(make_cfg(forty, n=10), tmp_path / "b", seed=2)
    assert set(a["uuid"]) != set(b["uuid"])


def test_output_in_source_order_and_uuid_stable(forty, tmp_path):
    _, p, _, _ = run_sample(make_cfg(forty, n=15), tmp_path / "o", seed=5)
    assert p["source_row"].to_list() == sorted(p["source_row"].to_list())
    for row in p.iter_rows(named=True):
        assert row["uuid"] == problem_key(row["problem"], row["source"])
        assert row["problem"] == f"Compute {row['source_row']} + {row['source_row']}."


def test_n_larger_than_pool(forty, tmp_path):
    counts, p, _, _ = run_sample(make_cfg(forty, n=1000), tmp_path / "o")
    assert p.height == 40
    assert counts.kept == 40 and sum(counts.rejected.values()) == 0


# --- sources -------------------------------------------------------------------------------------


def test_parquet_source_through_datasets(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_cache")
    calls = []
    real = datasets.load_dataset

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, cache_dir=str(tmp_path / "hf_cache"), **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", spy)
    rows = [good_row(i, source="cn_k12" if i % 2 else "olympiads") for i in range(8)]
    rows[3]["synthetic"] = True
    path = tmp_path / "src.parquet"
    pl.DataFrame(rows).write_parquet(path)
    counts, p, rejected, _ = run_sample(make_cfg(path, n=5), tmp_path / "out", seed=9)
    assert calls and calls[0]["path"] == "parquet" and calls[0]["data_files"] == str(path)
    assert counts.rows_in == 8
    assert counts.rejected["synthetic"] == 1
    assert counts.rejected["not_sampled"] == 2
    assert p.height == 5
    # Every row that is not a problem is in the rejected table, not-sampled ones included, in source order.
    assert sorted(p["source_row"].to_list() + rejected["source_row"].to_list()) == list(range(8))
    assert rejected["source_row"].is_sorted()
    not_sampled = rejected.filter(pl.col("reason") == "not_sampled")
    assert not_sampled["detail"].str.contains("of 7 eligible problems; sample.n = 5").all()
    assert 3 not in p["source_row"].to_list()
    for row in p.iter_rows(named=True):
        assert row["uuid"] == problem_key(row["problem"], row["source"])


def test_missing_source_file(tmp_path):
    for name in ("absent.jsonl", "absent.parquet"):
        missing = tmp_path / name
        with pytest.raises(DistilleryError) as info:
            run_sample(make_cfg(missing), tmp_path / "out")
        assert isinstance(info.value, MissingInputError)
        assert str(missing) in str(info.value)
    assert not (tmp_path / "out" / "problems.parquet").exists()


def test_not_a_file_nor_hub_id(tmp_path):
    with pytest.raises(DistilleryError, match="neither"):
        run_sample(make_cfg("just_a_name"), tmp_path / "out")


def test_every_row_rejected(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [good_row(1, answer=""), good_row(2, synthetic=True)])
    with pytest.raises(DistilleryError) as info:
        run_sample(make_cfg(src), tmp_path / "out")
    msg = str(info.value)
    assert "passed the filters" in msg
    assert "empty_answer" in msg and "synthetic" in msg
    assert "include/exclude" in msg
    assert not (tmp_path / "out" / "problems.parquet").exists()


def test_include_source_filter(tmp_path):
    rows = [good_row(i, source=s) for i, s in enumerate(["olympiads", "cn_k12", "amc_aime", "cn_k12", "olympiads"])]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    counts, p, rejected, metrics = run_sample(make_cfg(src, include={"source": ["cn_k12"]}), tmp_path / "out")
    assert p["source"].to_list() == ["cn_k12", "cn_k12"]
    assert p["source_row"].to_list() == [1, 3]
    assert counts.rejected["source_not_included"] == 3
    assert sorted(rejected["detail"].to_list()) == ["amc_aime", "olympiads", "olympiads"]
    assert metrics["problems_by_source"] == {"cn_k12": 2}


def test_include_on_bundled(tmp_path):
    counts, p, _, _ = run_sample(make_cfg(BUNDLED, include={"source": ["olympiads"]}), tmp_path / "out")
    assert p.height > 0
    assert set(p["source"].to_list()) == {"olympiads"}
    assert counts.kept + sum(counts.rejected.values()) == 84


def test_control_characters_and_undecodable_bytes_are_counted_rejections(tmp_path):
    """A NUL or other control byte in a text, or a line that is not UTF-8, is a rejection with a reason
    (never kept with U+FFFD silently in place of the bytes)."""
    src = tmp_path / "src.jsonl"
    good = {"problem": "What is 1+1?", "answer": "2", "solution": "1+1=2"}
    src.write_bytes(
        b"\n".join(
            [
                json.dumps(good).encode(),
                json.dumps({**good, "problem": "What is 2+2?\x00"}).encode(),
                json.dumps({**good, "problem": "What is 3+3?", "answer": "6\x1b[0m"}).encode(),
                b'{"problem": "Caf\xe9: what is 4+4?", "answer": "8"}',
                json.dumps({**good, "problem": "Tabs\tand\nnewlines are text: 5+5?", "answer": "10"}).encode(),
            ]
        )
        + b"\n"
    )
    cfg = SampleConfig.model_validate({"source": str(src)})
    counts = sample.run(cfg, 1, sample.Paths(problems=tmp_path / "p.parquet", rejected=tmp_path / "r.parquet", metrics=tmp_path / "m.json"))
    assert counts.as_dict()["rejected_by_reason"] == {"control_characters": 2, "undecodable_bytes": 1}
    assert counts.rows_in == 5 and counts.kept == 2
    details = dict(pl.read_parquet(tmp_path / "r.parquet").select("source_row", "detail").iter_rows())
    assert details[1] == "problem holds U+0000 at offset 12" and details[2] == "answer holds U+001B at offset 1"
    assert details[3].startswith("line 4: byte 0xe9") and "UTF-8" in details[3]


# --- n beyond the rows, an empty source: said, never silent ------------------------------------


def test_n_beyond_the_eligible_rows_is_a_warning_with_the_count(forty, tmp_path, caplog):
    # 40 good rows and 2 rejected ones; n asks for 1000.
    rows = [good_row(i) for i in range(40)] + [good_row(99, answer=""), good_row(98, synthetic=True)]
    source = write_jsonl(tmp_path / "forty_two.jsonl", rows)
    with caplog.at_level("WARNING", logger="distillery"):
        counts, problems, _, metrics = run_sample(make_cfg(source, n=1000), tmp_path / "out")
    assert problems.height == 40 and counts.kept == 40
    assert metrics["n_requested"] == 1000 and metrics["eligible"] == 40
    warning = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warning) == 1
    assert "sample.n = 1000 but only 40 of the 42 rows" in warning[0] and "40 problems are kept" in warning[0]


def test_n_within_the_eligible_rows_says_nothing(forty, tmp_path, caplog):
    with caplog.at_level("WARNING", logger="distillery"):
        _, _, _, metrics = run_sample(make_cfg(forty, n=10), tmp_path / "out")
    assert metrics["n_requested"] == 10 and metrics["eligible"] == 40
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_an_empty_source_says_it_is_empty(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DistilleryError, match=r"empty.jsonl is empty: it has no rows"):
        run_sample(make_cfg(empty), tmp_path / "out")
