"""Tests for distillery.stages.build: selection, choice of the SFT generation, OpenR1 schema,
default/extended splits and the dataset card."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import polars as pl
import pytest
import yaml

from distillery import tables
from distillery.config import BuildConfig
from distillery.keys import problem_key
from distillery.stages import build

from support.tables import table_frame

COLUMNS = [
    "problem",
    "solution",
    "answer",
    "problem_type",
    "question_type",
    "source",
    "uuid",
    "is_reasoning_complete",
    "generations",
    "correctness_math_verify",
    "correctness_llama",
    "finish_reasons",
    "correctness_count",
    "messages",
]
DEFAULT_SOURCES = ["olympiads", "aops_forum"]

# name -> (problem text, source)
PROBLEMS = {
    "A": ("Compute 2 + 2.", "olympiads"),  # math-verify correct (3 of 4), never judged
    "B": ("Compute 3 + 3.", "cn_k12"),  # only the judge says correct
    "C": ("Compute 4 + 4.", "amc_aime"),  # correct answers only in incomplete generations
    "D": ("Compute 5 + 5.", "aops_forum"),  # math-verify correct, judge says DIFFERENT on the other
    "E": ("Compute 6 + 6.", "orca_math"),  # no generations at all
    "F": ("Compute 7 + 7.", "olympiads"),  # removed by dedupe: not in kept
}
U = {name: problem_key(text, src) for name, (text, src) in PROBLEMS.items()}

# name -> list of (generation, finish_reason, error, complete, math_verify, llama, verdict)
GENS = {
    "A": [
        ("<think>hmm</think> wrong \\boxed{5}", "stop", None, True, False, None, "not_judged"),
        ("<think>a long and careful derivation of the sum</think> \\boxed{4}", "stop", None, True, True, None, "not_judged"),
        ("<think>s</think> \\boxed{4}", "stop", None, True, True, None, "not_judged"),
        ("<think>medium reasoning</think> \\boxed{4}", "stop", None, True, True, None, "not_judged"),
    ],
    "B": [
        ("<think>x</think> \\boxed{6.0}", "stop", None, True, False, True, "EQUIVALENT"),
        ("<think>x</think> \\boxed{7}", "stop", None, True, False, False, "DIFFERENT"),
    ],
    "C": [
        ("<think>cut off \\boxed{8}", "length", None, False, True, None, "not_judged"),
        (None, None, "timeout", False, False, None, "not_judged"),
    ],
    "D": [
        ("<think>y</think> \\boxed{10}", "stop", None, True, True, None, "not_judged"),
        ("<think>y</think> \\boxed{11}", "stop", None, True, False, False, "DIFFERENT"),
    ],
    "F": [
        ("<think>z</think> \\boxed{14}", "stop", None, True, True, None, "not_judged"),
    ],
}


def make_inputs(tmp_path: Path) -> dict[str, Path]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    problems = [
        {
            "uuid": U[n],
            "problem": text,
            "solution": f"solution of {n}",
            "answer": f"ans{n}",
            "problem_type": "Algebra",
            "question_type": "math-word-problem",
            "source": src,
            "synthetic": False,
            "source_row": i,
        }
        for i, (n, (text, src)) in enumerate(PROBLEMS.items())
    ]
    judged = []
    for n, gens in GENS.items():
        for idx, (gen, fin, err, comp, mv, ll, verdict) in enumerate(gens):
            judged.append(
                {
                    "uuid": U[n],
                    "sample_index": idx,
                    "generation": gen,
                    "finish_reason": fin,
                    "error": err,
                    "is_reasoning_complete": comp,
                    "correctness_math_verify": mv,
                    "correctness_llama": ll,
                    "judge_verdict": verdict,
                }
            )
    judged.sort(key=lambda j: (j["uuid"], j["sample_index"]))  # as the judge stage writes it (build streams it in this order)
    paths = {"problems": tmp_path / "problems.parquet", "judged": tmp_path / "judged.parquet", "kept": tmp_path / "kept.parquet"}
    table_frame(tables.PROBLEMS, {k: [p[k] for p in problems] for k in problems[0]}).write_parquet(paths["problems"])
    table_frame(tables.JUDGED, {k: [j[k] for j in judged] for k in judged[0]}).write_parquet(paths["judged"])
    table_frame(tables.KEPT, {"uuid": [U[n] for n in "ABCDE"]}).write_parquet(paths["kept"])
    return paths


def run_build(tmp_path: Path, seed: int = 42, **cfg):
    cfg = BuildConfig.model_validate({"splits": {"default_sources": DEFAULT_SOURCES}, **cfg})
    paths = make_inputs(tmp_path / "in")
    out = tmp_path / "out"
    dataset = out / "dataset"
    counts = build.run(
        cfg,
        seed,
        {"stage_metrics": {"sample": {"kept": 6}}, "settings": {"seed": seed}},
        build.Paths(
            judged=paths["judged"],
            problems=paths["problems"],
            kept=paths["kept"],
            dataset_dir=dataset,
            rejected=out / "rejected.parquet",
            metrics=out / "metrics.json",
        ),
    )
    rows = {}
    for split in build.SPLITS:
        for r in pl.read_parquet(build.split_file(dataset, split)).to_dicts():
            rows[r["uuid"]] = {**r, "_split": split}
    return counts, rows, pl.read_parquet(out / "rejected.parquet"), json.loads((out / "metrics.json").read_text()), dataset


def names(rows: dict) -> set[str]:
    inv = {u: n for n, u in U.items()}
    return {inv[u] for u in rows}


# --- selection -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "selection, kept",
    [("math_verify", {"A", "D"}), ("judge", {"B"}), ("either", {"A", "B", "D"})],
)
def test_selection(tmp_path, selection, kept):
    counts, rows, rejected, metrics, _ = run_build(tmp_path, selection=selection, choice="first")
    assert names(rows) == kept
    no_correct = set("ABCD") - kept
    reasons = dict(zip(rejected["uuid"], rejected["reason"]))
    assert reasons == {**{U[n]: "no_correct_generation" for n in no_correct}, U["E"]: "no_generations"}
    assert counts.rows_in == 5  # F was removed by dedupe
    assert counts.kept == len(kept)
    assert counts.kept + sum(counts.rejected.values()) == counts.rows_in
    assert metrics["counts"] == {
        "rows_in": 5,
        "kept": len(kept),
        "rejected": 5 - len(kept),
        "rejected_by_reason": {"no_correct_generation": len(no_correct), "no_generations": 1},
    }
    assert metrics["selection"] == selection
    assert U["F"] not in rows and U["F"] not in reasons


def test_rejected_detail_counts_failed_requests(tmp_path):
    _, _, rejected, _, _ = run_build(tmp_path, selection="either")
    detail = dict(zip(rejected["uuid"], rejected["detail"]))[U["C"]]
    assert "2 generations" in detail and "1 failed requests" in detail and "selection=either" in detail


def test_correctness_count(tmp_path):
    _, rows, _, _, _ = run_build(tmp_path, selection="either", choice="first")
    assert rows[U["A"]]["correctness_count"] == 3
    assert rows[U["B"]]["correctness_count"] == 1
    assert rows[U["D"]]["correctness_count"] == 1


# --- choice --------------------------------------------------------------------------------------


def assistant(row: dict) -> str:
    return row["messages"][1]["content"]


def test_choice_first(tmp_path):
    _, rows, _, _, _ = run_build(tmp_path, selection="either", choice="first")
    assert assistant(rows[U["A"]]) == GENS["A"][1][0]  # the first correct one, not sample 0
    assert assistant(rows[U["B"]]) == GENS["B"][0][0]
    assert assistant(rows[U["D"]]) == GENS["D"][0][0]


def test_choice_shortest(tmp_path):
    _, rows, _, _, _ = run_build(tmp_path, selection="math_verify", choice="shortest")
    assert assistant(rows[U["A"]]) == GENS["A"][2][0]


def test_choice_random_is_seeded(tmp_path):
    correct_a = {GENS["A"][i][0] for i in (1, 2, 3)}
    picks = []
    for seed in range(8):
        _, rows1, _, _, _ = run_build(tmp_path / f"s{seed}a", seed=seed, choice="random")
        _, rows2, _, _, _ = run_build(tmp_path / f"s{seed}b", seed=seed, choice="random")
        assert assistant(rows1[U["A"]]) == assistant(rows2[U["A"]])
        assert assistant(rows1[U["A"]]) in correct_a
        picks.append(assistant(rows1[U["A"]]))
    assert len(set(picks)) > 1  # the seed matters


# --- schema and loading --------------------------------------------------------------------------


def test_loads_with_datasets(tmp_path):
    import datasets

    _, _, _, _, dataset = run_build(tmp_path, selection="either", choice="first")
    loaded = {}
    for split in build.SPLITS:
        ds = datasets.load_dataset(
            "parquet", data_files=str(build.split_file(dataset, split)), split="train", cache_dir=str(tmp_path / "hf_cache")
        )
        assert ds.column_names == COLUMNS
        loaded[split] = ds.to_list()
    assert [r["uuid"] for r in loaded["default"]] == sorted([U["A"], U["D"]])
    assert [r["uuid"] for r in loaded["extended"]] == [U["B"]]
    a = next(r for r in loaded["default"] if r["uuid"] == U["A"])
    assert a["messages"] == [{"content": PROBLEMS["A"][0], "role": "user"}, {"content": GENS["A"][1][0], "role": "assistant"}]
    assert a["correctness_llama"] is None  # never judged
    assert a["generations"] == [g[0] for g in GENS["A"]]
    assert a["correctness_math_verify"] == [False, True, True, True]
    assert a["is_reasoning_complete"] == [True, True, True, True]
    assert a["finish_reasons"] == ["stop"] * 4
    assert a["correctness_count"] == 3
    assert (a["problem"], a["solution"], a["answer"], a["source"]) == (PROBLEMS["A"][0], "solution of A", "ansA", "olympiads")
    d = next(r for r in loaded["default"] if r["uuid"] == U["D"])
    assert d["correctness_llama"] == [None, False]
    b = loaded["extended"][0]
    assert b["correctness_llama"] == [True, False]
    assert b["messages"][0] == {"content": PROBLEMS["B"][0], "role": "user"}
    assert b["messages"][1]["role"] == "assistant"


def test_each_config_loads_by_name_from_the_card_offline(tmp_path, monkeypatch):
    """OpenR1-Math-220k's three configs, read through the card's YAML as the Hub would: default,
    extended, and all (both), with the card's dataset_info row counts checked by `datasets`."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    _, _, _, _, dataset = run_build(tmp_path, selection="either", choice="first")
    expected = {"default": {U["A"], U["D"]}, "extended": {U["B"]}, "all": {U["A"], U["B"], U["D"]}}
    for name, uuids in expected.items():
        ds = datasets.load_dataset(str(dataset), name, split="train", cache_dir=str(tmp_path / "hf_cache"))
        assert sorted(ds["uuid"]) == sorted(uuids), name
        assert ds.column_names == COLUMNS
        info = datasets.load_dataset_builder(str(dataset), name, cache_dir=str(tmp_path / "hf_cache")).info
        assert info.splits["train"].num_examples == len(uuids)
        assert info.features == ds.features
    card = (dataset / "README.md").read_text()
    header = yaml.safe_load(card.split("---\n", 2)[1])
    assert [c["config_name"] for c in header["configs"]] == ["default", "extended", "all"]
    assert {i["config_name"]: i["splits"][0]["num_examples"] for i in header["dataset_info"]} == {"default": 2, "extended": 1, "all": 3}
    sizes = {s: build.split_file(dataset, s).stat().st_size for s in build.SPLITS}
    assert {i["config_name"]: i["download_size"] for i in header["dataset_info"]} == {
        "default": sizes["default"],
        "extended": sizes["extended"],
        "all": sizes["default"] + sizes["extended"],
    }


def test_null_generation_becomes_empty_string(tmp_path):
    _, rows, _, _, _ = run_build(tmp_path, selection="either", choice="first")
    for r in rows.values():
        assert all(isinstance(g, str) for g in r["generations"])
        assert len(r["generations"]) == len(r["correctness_math_verify"]) == len(r["finish_reasons"])


def test_splits_by_source(tmp_path):
    _, rows, _, metrics, _ = run_build(tmp_path, selection="either")
    split_of = {n: rows[U[n]]["_split"] for n in ("A", "B", "D")}
    assert split_of == {"A": "default", "B": "extended", "D": "default"}
    assert metrics["rows_by_split"] == {"default": 2, "extended": 1}
    assert metrics["rows_by_source"] == {"aops_forum": 1, "cn_k12": 1, "olympiads": 1}


def test_empty_split_still_written(tmp_path):
    _, rows, _, metrics, dataset = run_build(tmp_path, selection="judge")
    assert metrics["rows_by_split"] == {"default": 0, "extended": 1}
    empty = pl.read_parquet(build.split_file(dataset, "default"))
    assert empty.height == 0
    assert empty.columns == COLUMNS


def test_dataset_card(tmp_path):
    _, _, _, _, dataset = run_build(tmp_path, selection="either")
    card = (dataset / "README.md").read_text()
    assert card.startswith("---\nconfigs:")
    assert "| default | 2 |" in card
    assert "| extended | 1 |" in card
    assert "config_name: default" in card and "config_name: extended" in card and "config_name: all" in card
    assert "| all | 3 |" in card
    assert '"no_correct_generation": 1' in card
    assert '"sample"' in card


def test_deterministic_output(tmp_path):
    _, _, _, _, d1 = run_build(tmp_path / "one", seed=5)
    _, _, _, _, d2 = run_build(tmp_path / "two", seed=5)
    for split in build.SPLITS:
        assert pl.read_parquet(build.split_file(d1, split)).equals(pl.read_parquet(build.split_file(d2, split)))


# --- streaming -----------------------------------------------------------------------------------


def many_inputs(tmp_path: Path, n: int = 40) -> tuple[dict[str, Path], dict[str, int]]:
    """`n` problems with 0-5 generations each (so they straddle any batch boundary), a few removed
    by dedupe; judged sorted by (uuid, sample_index) as the judge stage writes it. Also returns the
    number of generations of each kept problem."""
    import random

    r = random.Random(3)
    uuids = [problem_key(f"Compute {i} * 3.", "olympiads") for i in range(n)]
    problems = {
        "uuid": uuids,
        "problem": [f"Compute {i} * 3." for i in range(n)],
        "solution": [f"solution {i}" for i in range(n)],
        "answer": [str(3 * i) for i in range(n)],
        "source": [r.choice(["olympiads", "cn_k12", "aops_forum"]) for _ in range(n)],
        "source_row": list(range(n)),
    }
    judged = []
    for u in uuids:
        for k in range(r.choice([0, 1, 2, 3, 4, 5])):
            judged.append(
                {
                    "uuid": u,
                    "sample_index": k,
                    "generation": f"<think>{'step ' * r.randint(1, 9)}</think> \\boxed{{{k}}}",
                    "finish_reason": "stop",
                    "is_reasoning_complete": r.random() < 0.9,
                    "correctness_math_verify": r.random() < 0.4,
                    "correctness_llama": r.choice([True, False, None]),
                    "judge_verdict": r.choice(["not_judged", "EQUIVALENT", "DIFFERENT"]),
                    "request_key": f"rk-{u}-{k}",
                    "teacher_fingerprint": r.choice(["fp1", None]),
                }
            )
    judged.sort(key=lambda j: (j["uuid"], j["sample_index"]))
    kept = sorted(u for i, u in enumerate(uuids) if i % 7)  # as dedupe writes it
    paths = {"problems": tmp_path / "problems.parquet", "judged": tmp_path / "judged.parquet", "kept": tmp_path / "kept.parquet"}
    tmp_path.mkdir(parents=True, exist_ok=True)
    table_frame(tables.PROBLEMS, problems).write_parquet(paths["problems"])
    table_frame(tables.JUDGED, {k: [j[k] for j in judged] for k in judged[0]}).write_parquet(paths["judged"])
    table_frame(tables.KEPT, {"uuid": kept}).write_parquet(paths["kept"])
    n_gens = {u: sum(j["uuid"] == u for j in judged) for u in kept}
    return paths, n_gens


def build_files(paths: dict[str, Path], out: Path, **kwargs) -> dict[str, object]:
    cfg = BuildConfig.model_validate({"splits": {"default_sources": DEFAULT_SOURCES}, "selection": "either", "choice": "random"})
    build.run(
        cfg,
        7,
        {"stage_metrics": {}, "settings": {}},
        build.Paths(
            judged=paths["judged"],
            problems=paths["problems"],
            kept=paths["kept"],
            dataset_dir=out / "dataset",
            rejected=out / "rejected.parquet",
            metrics=out / "metrics.json",
            provenance=out / "provenance.parquet",
        ),
        **kwargs,
    )
    files: dict[str, object] = {s: pl.read_parquet(build.split_file(out / "dataset", s)) for s in build.SPLITS}
    for name in ("rejected.parquet", "provenance.parquet", "metrics.json", "dataset/README.md"):
        files[name] = (out / name).read_bytes()
    return files


def without_byte_sizes(card: bytes) -> bytes:
    return re.sub(rb"(?m)^ *(?:num_bytes|download_size|dataset_size): \d+\n", b"", card)


def test_batch_size_changes_no_output(tmp_path, monkeypatch):
    """Problems whose generations straddle batch boundaries come out whole, and the same whatever
    the batch size, and however many buckets the problems are spread over: the split files, the
    rejections, the row provenance and the metrics."""
    import io

    paths, n_gens = many_inputs(tmp_path / "in")
    default = build_files(paths, tmp_path / "default")
    for batch_rows, per_bucket, group_rows in ((1, None, None), (3, None, None), (5, 2, 3)):
        if per_bucket:  # buckets of two kept problems; provenance row groups of three rows
            monkeypatch.setattr(tables, "KEPT_PER_BUCKET", per_bucket)
            monkeypatch.setattr(build, "PROVENANCE_GROUP_ROWS", group_rows)
        files = build_files(paths, tmp_path / f"b{batch_rows}", batch_rows=batch_rows)
        for name, value in default.items():
            if isinstance(value, pl.DataFrame):
                assert files[name].equals(value), f"{name} differs with batch_rows={batch_rows}"
            elif name == "provenance.parquet" and group_rows:  # other row groups: the same rows
                assert pl.read_parquet(io.BytesIO(files[name])).equals(pl.read_parquet(io.BytesIO(value))), name
            elif name == "dataset/README.md":  # the card's byte sizes follow the row groups, as the parquet bytes do
                assert without_byte_sizes(files[name]) == without_byte_sizes(value), name
            else:
                assert files[name] == value, f"{name} differs with batch_rows={batch_rows}"
    assert not list(tmp_path.rglob(".build-spool-*")), "the spool is removed"
    # ...and what they all made is right: every generation of a kept row, every kept problem accounted for.
    rows = pl.concat([default[s] for s in build.SPLITS])
    assert rows.height > 5
    for s in build.SPLITS:
        assert default[s]["uuid"].to_list() == sorted(default[s]["uuid"].to_list())
    assert {u: len(g) for u, g in zip(rows["uuid"], rows["generations"])} == {u: n_gens[u] for u in rows["uuid"]}
    rejected = pl.read_parquet(tmp_path / "default" / "rejected.parquet")
    no_generations = set(rejected.filter(pl.col("reason") == "no_generations")["uuid"])
    assert no_generations == {u for u, n in n_gens.items() if n == 0}
    assert rows.height + rejected.height == len(n_gens)
    assert rejected["uuid"].to_list() == sorted(rejected["uuid"].to_list())


@pytest.mark.parametrize("batch_rows", [1, 4096])
@pytest.mark.parametrize("disorder", ["reversed", "uuid comes back"])
def test_judged_not_sorted_by_uuid_is_an_error(tmp_path, disorder, batch_rows):
    from distillery.errors import DistilleryError

    paths, _ = many_inputs(tmp_path / "in")
    judged = pl.read_parquet(paths["judged"])
    if disorder == "reversed":
        judged = judged.reverse()
    else:  # the first problem's last generation moved to the end
        first = judged.filter(pl.col("uuid") == judged["uuid"][0])
        judged = pl.concat([first.head(first.height - 1), judged.filter(pl.col("uuid") != first["uuid"][0]), first.tail(1)])
    judged.write_parquet(paths["judged"])
    out = tmp_path / "out"
    with pytest.raises(DistilleryError, match="is not sorted by uuid, sample_index") as info:
        build_files(paths, out, batch_rows=batch_rows)
    assert "re-run the judge stage" in str(info.value) and str(paths["judged"]) in str(info.value)
    assert "\n" not in str(info.value)
    assert not [p for p in out.rglob("*") if p.is_file()], "a failed build leaves no file behind"


def test_features_are_openr1_math_220k_schema(tmp_path):
    import datasets
    from datasets import Features, List, Value

    expected = Features(
        {
            "problem": Value("string"),
            "solution": Value("string"),
            "answer": Value("string"),
            "problem_type": Value("string"),
            "question_type": Value("string"),
            "source": Value("string"),
            "uuid": Value("string"),
            "is_reasoning_complete": List(Value("bool")),
            "generations": List(Value("string")),
            "correctness_math_verify": List(Value("bool")),
            "correctness_llama": List(Value("bool")),
            "finish_reasons": List(Value("string")),
            "correctness_count": Value("int64"),
            "messages": List({"content": Value("string"), "role": Value("string")}),
        }
    )
    _, _, _, _, dataset = run_build(tmp_path, selection="either")
    for split in build.SPLITS:
        ds = datasets.load_dataset(
            "parquet", data_files=str(build.split_file(dataset, split)), split="train", cache_dir=str(tmp_path / "hf_cache")
        )
        assert ds.features == expected


def test_card_has_filters_decontamination_and_revision(tmp_path):
    stage_metrics = {
        "sample": {"counts": {"rows_in": 10, "kept": 8, "rejected": 2, "rejected_by_reason": {"empty_answer": 2}}},
        "dedupe": {
            "counts": {"rows_in": 8, "kept": 6, "rejected": 2, "rejected_by_reason": {"contaminated": 1, "near_duplicate": 1}},
            "contaminated_by_benchmark": {"math500": 1, "aime2024": 0},
            "ngram": 8,
            "min_matching_ngrams": 1,
            "min_item_coverage": 0.5,
            "near_duplicates": {
                "pairs": 1,
                "clusters": 1,
                "shingle_size": 2,
                "threshold": 0.6,
                "boilerplate_share": 0.005,
                "min_shingles": 5,
            },
        },
    }
    paths = make_inputs(tmp_path / "in")
    dataset = tmp_path / "out" / "dataset"
    context = {"stage_metrics": stage_metrics, "settings": {"teacher": {"model": "t"}}, "revision": build.revision(paths)}
    build.run(
        BuildConfig(),
        1,
        context,
        build.Paths(
            judged=paths["judged"],
            problems=paths["problems"],
            kept=paths["kept"],
            dataset_dir=dataset,
            rejected=tmp_path / "out" / "r.parquet",
            metrics=tmp_path / "out" / "m.json",
        ),
    )
    card = (dataset / "README.md").read_text()
    assert "| sample | 10 | 8 | empty_answer 2 |" in card
    assert "| dedupe | 8 | 6 | contaminated 1, near_duplicate 1 |" in card
    assert "| build | 5 | 3 | no_correct_generation 1, no_generations 1 |" in card
    assert "| math500 | 1 |" in card and "| aime2024 | 0 |" in card
    assert "judged per benchmark item" in card and "1 pairs in 1 clusters" in card
    # The card names the rule as it ran: n, the matches it needs, the share of an item.
    assert "shares at least 1 of the item's token 8-grams" in card and "holds 50% of the item's token bigrams" in card
    assert "2-token shingles, estimated Jaccard >= 0.6; a shingle in more than 0.005 of the rows" in card
    assert "fewer than 5 other shingles is only exact-deduped" in card
    import hashlib

    assert hashlib.md5(paths["judged"].read_bytes()).hexdigest() in card
    # The code of each stage by content, never a git commit (a documentation commit changes no byte).
    from distillery.provenance import code_version

    assert context["revision"]["code"]["build"] == code_version("build") in card and "git" not in json.dumps(context["revision"])


@pytest.fixture(scope="module")
def tiny_reward_model(tiny_models, tmp_path_factory) -> Path:
    """A sequence-classification model with one label on the tiny student's architecture and
    tokenizer, randomly initialised (seeded): its scores differ between generations, which is all
    the choice needs."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    src = tiny_models / "student_base"
    tok = AutoTokenizer.from_pretrained(src)
    conf = AutoConfig.from_pretrained(src, num_labels=1)
    conf.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("rm") / "reward_model"
    AutoModelForSequenceClassification.from_config(conf).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_choice_reward_model_takes_the_best_scoring_correct_generation(tmp_path, tiny_reward_model):
    from distillery.config import RewardModel
    from distillery.reward_model import Scorer

    rm = {"model": str(tiny_reward_model), "batch_size": 2, "max_length": 256}
    counts, rows, _, metrics, _ = run_build(tmp_path, choice="reward_model", reward_model=rm)
    scorer = Scorer(RewardModel.model_validate(rm))
    # A has three correct generations (positions 1-3): the one the reward model scores highest is the message.
    text_a = PROBLEMS["A"][0]
    correct = [g[0] for g in GENS["A"] if g[4]]
    scores = scorer([(text_a, g) for g in correct])
    assert len(set(scores)) == 3, "the tiny reward model should tell the three apart"
    assert assistant(rows[U["A"]]) == correct[scores.index(max(scores))]
    assert metrics["choice"] == "reward_model" and metrics["reward_model"]["generations_scored"] == 3 + 1 + 1
    # Scores are journaled under their own keys: a re-build scores nothing again and chooses the same.
    _, again, _, _, _ = run_build(tmp_path / "again", choice="reward_model", reward_model=rm)
    assert {u: assistant(r) for u, r in again.items()} == {u: assistant(r) for u, r in rows.items()}


def test_choice_reward_model_needs_a_model():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="choice: reward_model needs reward_model.model"):
        BuildConfig.model_validate({"choice": "reward_model"})


def test_reward_scores_are_recorded_in_the_row_provenance(tmp_path, tiny_reward_model):
    cfg = BuildConfig.model_validate(
        {"splits": {"default_sources": DEFAULT_SOURCES}, "choice": "reward_model", "reward_model": {"model": str(tiny_reward_model)}}
    )
    paths = make_inputs(tmp_path / "in")
    out = tmp_path / "out"
    build.run(
        cfg,
        42,
        {"stage_metrics": {}, "settings": {}},
        build.Paths(
            judged=paths["judged"],
            problems=paths["problems"],
            kept=paths["kept"],
            dataset_dir=out / "dataset",
            rejected=out / "rejected.parquet",
            metrics=out / "metrics.json",
            provenance=out / "provenance.parquet",
        ),
    )
    prov = {r["uuid"]: r for r in tables.read_table(out / "provenance.parquet", tables.ROW_PROVENANCE).to_dicts()}
    a = prov[U["A"]]
    assert a["reward_scores"][0] is None and all(isinstance(x, float) for x in a["reward_scores"][1:])  # the wrong one is not scored
    chosen = a["messages_sample_index"]
    assert a["reward_scores"][chosen] == max(x for x in a["reward_scores"] if x is not None)
