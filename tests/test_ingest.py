"""ingest and mix: each bundled corpus file (data/bundled/corpora/, in its published layout) read into
the generation schema, then through verify and build unchanged; mix's caps and accounting."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import polars as pl
import pytest

from distillery.config import BuildConfig, Corpus, IngestConfig, MixConfig, VerifyConfig
from distillery.corpora import LAYOUTS
from distillery.errors import DistilleryError
from distillery.stages import build, ingest, mix, verify
from distillery.tables import (
    GENERATIONS,
    INGEST_REJECTED,
    INGESTED_GENERATIONS,
    INGESTED_PROBLEMS,
    JUDGED,
    KEPT,
    MIX_LEFT_OUT,
    MIXED_PROBLEMS,
    PROBLEMS,
    read_table,
)

from support.tables import write_table_file

CORPORA = Path(__file__).parent.parent / "data" / "bundled" / "corpora"
WITH_GOLD = ("openr1_math", "limo", "s1k", "s1k_1_1")
WITHOUT_GOLD = ("openthoughts", "bespoke_stratos", "dolphin_r1")  # they publish no gold answer (distillery.corpora)


def ingest_paths(out: Path) -> ingest.Paths:
    return ingest.Paths(out / "problems.parquet", out / "generations.parquet", out / "rejected.parquet", out / "ingest.json")


def run_ingest(tmp_path: Path, corpora: dict[str, Corpus]) -> ingest.Paths:
    paths = ingest_paths(tmp_path / "ingest")
    ingest.run(IngestConfig(corpora=corpora), 7, paths)
    return paths


def corpus(layout: str, **kw) -> Corpus:
    return Corpus(layout=layout, path=str(CORPORA / f"{layout}.jsonl"), licence="apache-2.0", **kw)


def judged_without_judge(verified: Path, out: Path) -> Path:
    """The judged table as the judge writes it for rows it was not asked about (the judge's model is
    not what these tests are about: test_judge.py runs it)."""
    df = pl.read_parquet(verified).with_columns(pl.lit("not_judged").alias("judge_verdict"))
    df = df.with_columns(*(pl.lit(None, dtype=t).alias(c) for c, t in JUDGED.schema.items() if c not in df.columns))
    df.select(JUDGED.columns).cast(JUDGED.schema).write_parquet(out)
    return out


def test_every_layout_is_tested_here():
    assert sorted(WITH_GOLD + WITHOUT_GOLD) == sorted(LAYOUTS)


@pytest.mark.parametrize("layout", WITH_GOLD)
def test_a_corpus_goes_through_ingest_verify_and_build(tmp_path, layout):
    raw = [json.loads(line) for line in (CORPORA / f"{layout}.jsonl").read_text().splitlines() if line.strip()]
    paths = run_ingest(tmp_path, {"c": corpus(layout)})
    problems = read_table(paths.problems, INGESTED_PROBLEMS)
    gens = read_table(paths.generations, INGESTED_GENERATIONS)
    rejected = read_table(paths.rejected, INGEST_REJECTED)
    metrics = json.loads(paths.metrics.read_text())
    # Rows in = problems + rejections, each rejection with its row and reason.
    assert problems.height + rejected.height == len(raw) == metrics["counts"]["rows_in"]
    assert metrics["corpora"]["c"]["problems"] == problems.height > 0
    assert set(rejected["reason"]) <= {"missing_problem", "no_trace", "malformed_trace", "not_a_row", "no_gold", "duplicate_key"}
    assert set(problems["source_row"]).isdisjoint(rejected["source_row"])
    assert (problems["corpus"] == "c").all() and (problems["licence"] == "apache-2.0").all()
    assert problems["answer"].str.len_chars().min() > 0 and set(problems["answer_origin"]) <= {"gold", "reference_solution"}
    assert (gens["teacher_backend"] == "corpus").all() and gens["request_key"].n_unique() == gens.height
    assert gens["generation"].str.starts_with("<think>").all()  # a truncated OpenR1 trace never closes it
    # The same file read again makes the same keys (a re-run reuses what verify and judge paid for).
    again = run_ingest(tmp_path / "again", {"c": corpus(layout)})
    assert read_table(again.generations, GENERATIONS).equals(read_table(paths.generations, GENERATIONS))

    verified = tmp_path / "verified.parquet"
    out = verify.run(VerifyConfig(workers=1), verify.Paths(paths.generations, paths.problems, verified, tmp_path / "verify.json"))
    assert out.height == gens.height
    assert out["correctness_math_verify"].any(), "the fixture's correct traces must verify"
    judged = judged_without_judge(verified, tmp_path / "judged.parquet")
    kept = write_table_file(tmp_path / "kept.parquet", KEPT, {"uuid": problems["uuid"].to_list()})
    dataset = tmp_path / "dataset"
    settings = {"corpora": {"c": {"layout": layout, "path": "p", "licence": "apache-2.0", "config": None, "revision": None, "cap": None}}}
    counts = build.run(
        BuildConfig(),
        7,
        {"stage_metrics": {}, "settings": settings},
        build.Paths(judged, paths.problems, kept, dataset, tmp_path / "rejected.parquet", tmp_path / "build.json"),
    )
    assert counts.rows_in == problems.height and counts.kept + sum(counts.rejected.values()) == problems.height
    rows = pl.concat([pl.read_parquet(build.split_file(dataset, s)) for s in build.SPLITS])
    solved = out.filter(pl.col("correctness_math_verify") & pl.col("is_reasoning_complete"))["uuid"].unique()
    assert sorted(rows["uuid"]) == sorted(solved)
    card = (dataset / "README.md").read_text()
    assert f"| c | {layout} | p | unpinned | apache-2.0 | all |" in card


@pytest.mark.parametrize("layout", WITHOUT_GOLD)
def test_a_corpus_without_golds_is_refused_with_the_reason(tmp_path, layout):
    with pytest.raises(DistilleryError, match="has no row with a gold answer.*never one"):
        run_ingest(tmp_path, {"c": corpus(layout)})


def test_a_corpus_without_golds_is_refused_beside_one_with_them(tmp_path):
    # A corpus that yields nothing is a setting to fix, not a silent empty share of the mix.
    with pytest.raises(DistilleryError, match="corpus dolphin"):
        run_ingest(tmp_path, {"limo": corpus("limo"), "dolphin": corpus("dolphin_r1")})


def test_the_wrong_layout_is_named(tmp_path):
    with pytest.raises(DistilleryError, match=r"could be read as layout s1k\b.*check ingest.corpora.c.layout"):
        run_ingest(tmp_path, {"c": Corpus(layout="s1k", path=str(CORPORA / "openr1_math.jsonl"), licence="mit")})


def test_max_rows_reads_only_the_first_rows(tmp_path):
    paths = run_ingest(tmp_path, {"c": corpus("openr1_math", max_rows=2)})
    metrics = json.loads(paths.metrics.read_text())
    assert metrics["counts"]["rows_in"] == 2


def test_corpus_names_are_checked():
    with pytest.raises(Exception, match="'own'"):
        IngestConfig(corpora={"own": corpus("limo")})


# --- mix ----------------------------------------------------------------------------------------


def own_tables(tmp_path: Path, n: int) -> tuple[Path, Path]:
    uuids = [f"own-{i}" for i in range(n)]
    problems = write_table_file(
        tmp_path / "own_problems.parquet",
        PROBLEMS,
        {
            "uuid": uuids,
            "problem": [f"Compute {i} + {i}." for i in range(n)],
            "answer": [str(2 * i) for i in range(n)],
            "source_row": list(range(n)),
        },
    )
    gens = write_table_file(
        tmp_path / "own_generations.parquet",
        GENERATIONS,
        {
            "uuid": uuids,
            "sample_index": [0] * n,
            "generation": [f"<think>x</think> \\boxed{{{2 * i}}}" for i in range(n)],
            "finish_reason": ["stop"] * n,
        },
    )
    return problems, gens


def run_mix(tmp_path: Path, ingested: ingest.Paths, cfg: MixConfig, own: tuple[Path, Path] | None, seed: int = 3) -> mix.Paths:
    out = tmp_path / "mix"
    paths = mix.Paths(
        ingested.problems,
        ingested.generations,
        out / "problems.parquet",
        out / "generations.parquet",
        out / "left_out.parquet",
        out / "mix.json",
        own_problems=own[0] if own else None,
        own_generations=own[1] if own else None,
    )
    mix.run(cfg, seed, paths)
    return paths


def test_mix_combines_sources_under_their_caps_and_accounts_for_every_problem(tmp_path):
    ingested = run_ingest(tmp_path, {"openr1": corpus("openr1_math"), "s1k": corpus("s1k_1_1")})
    own = own_tables(tmp_path, 10)
    paths = run_mix(tmp_path, ingested, MixConfig(own=True, caps={"own": 4, "s1k": 1}), own)
    problems = read_table(paths.mixed_problems, MIXED_PROBLEMS)
    left = read_table(paths.left_out, MIX_LEFT_OUT)
    by = dict(problems.group_by("corpus").len().rows())
    assert by == {"own": 4, "s1k": 1, "openr1": 3}
    assert problems.height + left.height == 10 + 3 + 3 and set(left["reason"]) == {"over_cap"}
    assert left.filter(pl.col("corpus") == "own")["detail"].str.contains("mix.caps.own = 4").all()
    gens = read_table(paths.mixed_generations, GENERATIONS)
    assert set(gens["uuid"]) == set(problems["uuid"])  # a left-out problem's generations go with it
    assert problems.filter(pl.col("corpus") == "own")["answer_origin"].to_list() == ["gold"] * 4
    metrics = json.loads(paths.metrics.read_text())
    assert metrics["counts"]["rejected_by_reason"] == {"over_cap": 8} and metrics["licences"] == {
        "openr1": "apache-2.0",
        "s1k": "apache-2.0",
    }
    # Caps are nested, like sample.n: a larger cap keeps what the smaller one kept.
    bigger = run_mix(tmp_path / "bigger", ingested, MixConfig(own=True, caps={"own": 7}), own)
    kept7 = set(read_table(bigger.mixed_problems, MIXED_PROBLEMS).filter(pl.col("corpus") == "own")["uuid"])
    assert set(problems.filter(pl.col("corpus") == "own")["uuid"]) < kept7
    # Seeded: the same seed, the same draw; another seed, (here) another.
    again = run_mix(tmp_path / "again", ingested, MixConfig(own=True, caps={"own": 4, "s1k": 1}), own)
    assert read_table(again.mixed_problems, MIXED_PROBLEMS).equals(problems)


def test_mix_without_the_own_generations(tmp_path):
    ingested = run_ingest(tmp_path, {"limo": corpus("limo")})
    paths = run_mix(tmp_path, ingested, MixConfig(own=False), None)
    assert set(read_table(paths.mixed_problems, MIXED_PROBLEMS)["corpus"]) == {"limo"}


def test_mix_caps_must_name_a_source():
    import yaml

    from distillery.config import validate_params

    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["mix"]["caps"] = {"nope": 3}
    with pytest.raises(Exception, match=r"mix.caps names \['nope'\]"):
        validate_params(raw)
    raw["ingest"]["corpora"] = {}
    raw["mix"]["caps"] = {}
    raw["mix"]["own"] = False
    with pytest.raises(Exception, match="apply only when ingest.corpora names a corpus"):
        validate_params(raw)


def test_a_corpus_is_streamed_in_batches_with_the_same_rows(tmp_path, monkeypatch):
    whole = run_ingest(tmp_path / "whole", {"c": corpus("openr1_math")})
    monkeypatch.setattr(ingest, "BATCH_ROWS", 1)  # every trace its own batch
    batched = run_ingest(tmp_path / "batched", {"c": corpus("openr1_math")})
    assert read_table(batched.generations, GENERATIONS).equals(read_table(whole.generations, GENERATIONS))


def test_undecodable_and_non_object_rows_are_rejected_with_their_reason(tmp_path):
    good = (CORPORA / "limo.jsonl").read_bytes().splitlines()[0]
    path = tmp_path / "limo.jsonl"
    path.write_bytes(good + b"\n" + good.replace(b"Find", b"F\xffind", 1) + b"\n")
    paths = run_ingest(tmp_path, {"c": Corpus(layout="limo", path=str(path), licence="mit")})
    rejected = read_table(paths.rejected, INGEST_REJECTED)
    assert rejected["reason"].to_list() == ["undecodable_text"] and "is not UTF-8" in rejected["detail"][0]


def test_an_empty_corpus_file_is_said_to_be_empty_not_of_the_wrong_layout(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DistilleryError) as info:
        run_ingest(tmp_path, {"c": Corpus(layout="limo", path=str(empty), licence="mit")})
    assert f"corpus c ({empty}) is empty: it has no rows" in str(info.value)
    assert "layout" not in str(info.value)
