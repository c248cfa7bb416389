"""Tests for distillery.stages.dedupe: exact dedupe on normalized text and n-gram decontamination
against the public MATH-500 / AIME benchmark files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from distillery.config import BenchmarkFile, DedupeConfig, NearDedupeConfig
from distillery.errors import DistilleryError
from distillery.keys import problem_key
from distillery.stages import dedupe
from distillery.stages.dedupe import near_duplicate_pairs, tokens

from support.synthetic_problems import synthetic_problems

BENCH_DIR = Path(__file__).resolve().parents[1] / "data" / "bundled" / "benchmarks"
BENCHMARKS = {
    "math500": BenchmarkFile(path=str(BENCH_DIR / "math500.jsonl"), problem_field="problem", id_field="unique_id"),
    "aime2024": BenchmarkFile(path=str(BENCH_DIR / "aime2024.jsonl"), problem_field="problem", id_field="id"),
    "aime2025": BenchmarkFile(path=str(BENCH_DIR / "aime2025.jsonl"), problem_field="problem", id_field="id"),
}


def bench_rows(name: str) -> list[dict]:
    return [json.loads(l) for l in Path(BENCHMARKS[name].path).read_text().splitlines() if l.strip()]


MATH500 = bench_rows("math500")
AIME24 = bench_rows("aime2024")
AIME25 = bench_rows("aime2025")

CLEAN = [
    "A gardener plants marigolds in seventeen rows of eleven and then removes every third marigold; how many remain?",
    "Ferdinand the tortoise walks 3 meters on Mondays, doubles it each following day, and rests on Sundays. Find his weekly total.",
    "Let the quirky sequence satisfy q_1 = 4 and q_{n+1} = q_n^2 - 3 q_n + 1. Determine the remainder of q_6 modulo 13.",
    "In the orchard of Zephyrine, pears outnumber quinces by a ratio of nine to four. If there are 52 quinces, count the pears.",
    "An icosahedral die with faces numbered by primes below seventy-three is rolled twice; compute the chance both rolls are odd.",
]
# Three spellings of one problem in three sources: case, whitespace and LaTeX spacing differ.
DUPES = [
    ("Find the value of $y$ if $3 \\, y = 9$ holds for the unknown quantity today.", "olympiads"),
    ("find THE value of $y$ if   $3 y = 9$ holds for the\nunknown quantity today.", "cn_k12"),
    ("Find the value of $y$ if $3\\, y = 9$ holds for the unknown quantity today.  ", "amc_aime"),
]


def edited(text: str) -> str:
    """A light edit: upper-cased, with doubled spaces and a trailing blank."""
    return text.upper().replace(" ", "   ") + "  "


def build_problems() -> tuple[pl.DataFrame, dict[str, str]]:
    """Problems plus a map uuid -> role ("clean", "dupe", "contam:<bench>")."""
    rows, roles = [], {}

    def add(problem: str, source: str, role: str) -> str:
        uuid = problem_key(problem, source)
        assert uuid not in roles
        rows.append({"uuid": uuid, "problem": problem, "source": source})
        roles[uuid] = role
        return uuid

    for text in CLEAN:
        add(text, "olympiads", "clean")
    for text, source in DUPES:
        add(text, source, "dupe")
    for row in MATH500[:5]:
        add(row["problem"], "cn_k12", "contam:math500")
    for row in AIME24[:3]:
        add(row["problem"], "amc_aime", "contam:aime2024")
    add(edited(MATH500[10]["problem"]), "orca_math", "contam:math500")
    add(edited(AIME25[0]["problem"]), "aops_forum", "contam:aime2025")
    return pl.DataFrame(rows, schema={"uuid": pl.String, "problem": pl.String, "source": pl.String}), roles


def build_judged(problems: pl.DataFrame, n_correct: dict[str, int]) -> pl.DataFrame:
    """Two generations per problem; n_correct[uuid] of them correct (math-verify first, then judge)."""
    rows = []
    for uuid in problems["uuid"]:
        k = n_correct.get(uuid, 0)
        rows.append({"uuid": uuid, "correctness_math_verify": k >= 1, "correctness_llama": None})
        rows.append({"uuid": uuid, "correctness_math_verify": False, "correctness_llama": True if k >= 2 else None})
    return pl.DataFrame(rows, schema={"uuid": pl.String, "correctness_math_verify": pl.Boolean, "correctness_llama": pl.Boolean})


def run_dedupe(tmp_path: Path, problems: pl.DataFrame, judged: pl.DataFrame, benchmarks=BENCHMARKS, **cfg):
    cfg = DedupeConfig.model_validate({"benchmarks": list(benchmarks), **cfg})
    tmp_path.mkdir(parents=True, exist_ok=True)
    if "answer" not in problems.columns:  # the sample stage's table has one; these problems give none
        problems = problems.with_columns(pl.lit(None, pl.String).alias("answer"))
    problems.write_parquet(tmp_path / "problems.parquet")
    judged.write_parquet(tmp_path / "judged.parquet")
    out = {k: tmp_path / f"{k}.parquet" for k in ("kept", "rejected", "contamination", "near_duplicates")}
    out["metrics"] = tmp_path / "metrics.json"
    counts = dedupe.run(
        cfg,
        benchmarks,
        dedupe.Paths(
            problems=tmp_path / "problems.parquet",
            judged=tmp_path / "judged.parquet",
            kept=out["kept"],
            rejected=out["rejected"],
            contamination=out["contamination"],
            metrics=out["metrics"],
            near_duplicates=out["near_duplicates"],
        ),
    )
    return (
        counts,
        pl.read_parquet(out["kept"]),
        pl.read_parquet(out["rejected"]),
        pl.read_parquet(out["contamination"]),
        json.loads(out["metrics"].read_text()),
    )


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    problems, roles = build_problems()
    result = run_dedupe(tmp_path_factory.mktemp("dedupe"), problems, build_judged(problems, {}))
    return problems, roles, result


def dupe_uuids() -> list[str]:
    return [problem_key(t, s) for t, s in DUPES]


# --- exact dedupe --------------------------------------------------------------------------------


def test_exact_duplicates_first_by_key(default_run):
    _, _, (counts, kept, rejected, _, _) = default_run
    uuids = dupe_uuids()
    keeper = min(uuids)
    assert counts.rejected["exact_duplicate"] == 2
    dup_rows = rejected.filter(pl.col("reason") == "exact_duplicate")
    assert sorted(dup_rows["uuid"].to_list()) == sorted(set(uuids) - {keeper})
    assert set(dup_rows["detail"].to_list()) == {f"duplicate of {keeper}"}
    assert keeper in kept["uuid"].to_list()
    assert not (set(uuids) - {keeper}) & set(kept["uuid"].to_list())


def test_exact_duplicates_most_correct(tmp_path):
    problems, _ = build_problems()
    uuids = sorted(dupe_uuids())
    best = uuids[-1]  # the largest uuid: first_by_key would drop it
    judged = build_judged(problems, {uuids[0]: 1, uuids[1]: 0, best: 2})
    counts, kept, rejected, _, _ = run_dedupe(tmp_path, problems, judged, keep="most_correct")
    assert best in kept["uuid"].to_list()
    assert uuids[0] not in kept["uuid"].to_list() and uuids[1] not in kept["uuid"].to_list()
    dup_rows = rejected.filter(pl.col("reason") == "exact_duplicate")
    assert sorted(dup_rows["uuid"].to_list()) == uuids[:2]
    assert set(dup_rows["detail"].to_list()) == {f"duplicate of {best}"}


def test_most_correct_ties_fall_back_to_smallest_uuid(tmp_path):
    problems, _ = build_problems()
    uuids = sorted(dupe_uuids())
    judged = build_judged(problems, {uuids[0]: 1, uuids[1]: 1, uuids[2]: 0})
    _, kept, _, _, _ = run_dedupe(tmp_path, problems, judged, keep="most_correct")
    assert [u for u in uuids if u in kept["uuid"].to_list()] == [uuids[0]]


def test_exact_and_near_off_keep_duplicates(tmp_path):
    problems, _ = build_problems()
    counts, kept, rejected, _, _ = run_dedupe(tmp_path, problems, build_judged(problems, {}), exact=False, near={"enabled": False})
    assert "exact_duplicate" not in counts.rejected
    assert set(dupe_uuids()) <= set(kept["uuid"].to_list())


def test_exact_off_leaves_exact_copies_to_near_dedupe(tmp_path):
    problems, _ = build_problems()
    counts, kept, rejected, _, _ = run_dedupe(tmp_path, problems, build_judged(problems, {}), exact=False)
    assert counts.rejected["near_duplicate"] == 2
    assert [u for u in dupe_uuids() if u in kept["uuid"].to_list()] == [min(dupe_uuids())]


# --- decontamination -----------------------------------------------------------------------------


def test_planted_benchmark_problems_are_flagged(default_run):
    problems, roles, (_, kept, rejected, contam, _) = default_run
    flagged = dict(zip(contam["uuid"], contam["benchmark"]))
    for row in MATH500[:5]:
        assert flagged[problem_key(row["problem"], "cn_k12")] == "math500"
    for row in AIME24[:3]:
        assert flagged[problem_key(row["problem"], "amc_aime")] == "aime2024"
    contaminated = {u for u, r in roles.items() if r.startswith("contam:")}
    assert set(flagged) == contaminated
    assert not contaminated & set(kept["uuid"].to_list())
    contam_rej = rejected.filter(pl.col("reason") == "contaminated")
    assert set(contam_rej["uuid"].to_list()) == contaminated


def test_lightly_edited_copies_are_flagged(default_run):
    _, _, (_, _, _, contam, _) = default_run
    flagged = dict(zip(contam["uuid"], contam["benchmark"]))
    assert flagged[problem_key(edited(MATH500[10]["problem"]), "orca_math")] == "math500"
    assert flagged[problem_key(edited(AIME25[0]["problem"]), "aops_forum")] == "aime2025"


def test_clean_problems_are_kept(default_run):
    _, roles, (_, kept, rejected, contam, _) = default_run
    clean = {u for u, r in roles.items() if r == "clean"}
    assert clean <= set(kept["uuid"].to_list())
    assert not clean & set(rejected["uuid"].to_list())
    assert not clean & set(contam["uuid"].to_list())
    # kept = the clean ones plus the one surviving spelling of the duplicate
    assert set(kept["uuid"].to_list()) == clean | {min(dupe_uuids())}


def test_contamination_report_holds_matching_ngram(default_run):
    problems, _, (_, _, rejected, contam, metrics) = default_run
    text = dict(zip(problems["uuid"], problems["problem"]))
    by_bench = {
        "math500": {r["unique_id"]: r["problem"] for r in MATH500},
        "aime2024": {r["id"]: r["problem"] for r in AIME24},
        "aime2025": {r["id"]: r["problem"] for r in AIME25},
    }
    assert contam.height == 10
    for row in contam.iter_rows(named=True):
        gram, item = row["ngram"], by_bench[row["benchmark"]][row["benchmark_item"]]
        k = dedupe.retrieval_length(len(dedupe.tokens(item)), 8)  # 8, or shorter for a short item
        assert len(gram.split(" ")) == k
        assert gram in word_ngrams(text[row["uuid"]], k)
        assert gram in word_ngrams(item, k)
        assert 0.5 <= row["item_coverage"] <= 1.0
    details = dict(zip(rejected["uuid"], rejected["detail"]))
    for row in contam.iter_rows(named=True):
        assert details[row["uuid"]] == f"{row['benchmark']} item {row['benchmark_item']}"
    assert metrics["contaminated_by_benchmark"] == {"math500": 6, "aime2024": 3, "aime2025": 1}
    assert metrics["ngram"] == 8


def test_counts_and_metrics_agree(default_run):
    problems, _, (counts, kept, rejected, _, metrics) = default_run
    assert counts.rows_in == problems.height == 18
    assert counts.kept == kept.height == 6
    assert sum(counts.rejected.values()) == rejected.height == 12
    assert counts.kept + sum(counts.rejected.values()) == counts.rows_in
    assert metrics["stage"] == "dedupe"
    assert metrics["counts"] == {"rows_in": 18, "kept": 6, "rejected": 12, "rejected_by_reason": {"contaminated": 10, "exact_duplicate": 2}}


def test_decontaminate_off(tmp_path):
    problems, _ = build_problems()
    counts, kept, _, contam, metrics = run_dedupe(tmp_path, problems, build_judged(problems, {}), decontaminate=False)
    assert contam.height == 0
    assert counts.kept == kept.height == 16
    assert metrics["counts"]["rejected_by_reason"] == {"exact_duplicate": 2}


def test_only_selected_benchmarks_are_used(tmp_path):
    problems, _ = build_problems()
    only = {"aime2024": BENCHMARKS["aime2024"]}
    _, _, _, contam, metrics = run_dedupe(tmp_path, problems, build_judged(problems, {}), benchmarks=only)
    assert set(contam["benchmark"].to_list()) == {"aime2024"}
    assert contam.height == 3
    assert metrics["contaminated_by_benchmark"] == {"aime2024": 3}


def word_ngrams(text: str, n: int) -> set[str]:
    t = tokens(text)
    return {" ".join(t[i : i + n]) for i in range(len(t) - n + 1)}


def test_tokens_ignore_case_spacing_and_punctuation():
    assert tokens("A  b,\nc D.") == ["a", "b", "c", "d"]
    assert tokens("$\\frac{1}{2}\\,x$") == tokens("$\\frac {1} {2} x$") == ["frac", "1", "2", "x"]
    assert tokens("?!") == []


def test_thin_space_before_a_letter_is_still_a_duplicate(tmp_path):
    # `\,` is LaTeX spacing wherever it stands; `x\,dx` (its most common use) and `x \, dx`
    # are the same problem text.
    a = ("Evaluate the definite integral $\\int_0^1 x^2\\,dx$ and give the exact value.", "olympiads")
    b = ("Evaluate the definite integral $\\int_0^1 x^2 \\, dx$ and give the exact value.", "cn_k12")
    problems = pl.DataFrame([{"uuid": problem_key(t, s), "problem": t, "source": s} for t, s in (a, b)])
    counts, kept, rejected, _, _ = run_dedupe(tmp_path, problems, build_judged(problems, {}), decontaminate=False)
    assert counts.rejected["exact_duplicate"] == 1
    assert kept["uuid"].to_list() == [min(problems["uuid"])]


# --- near duplicates -----------------------------------------------------------------------------


BOILERPLATE = [
    "Find the value of $x$ if $2x + 3 = 7$. Express your answer as a common fraction.",
    "Find the value of $y$ if $5y - 1 = 9$. Express your answer as a common fraction.",
    "Find the value of $k$ such that the line $y = kx$ is tangent to the parabola $y = x^2 + 4$. Express your answer as a common fraction.",
    "Find the value of the expression $\\frac{3}{4} + \\frac{5}{6}$. Express your answer as a common fraction.",
    "Find the value of $\\sin 30^\\circ + \\cos 60^\\circ$. Express your answer as a common fraction.",
    "Compute $\\binom{10}{5}$.",
    "Compute $\\binom{10}{4}$.",
    "How many positive divisors does 3600 have? Give your answer in simplest form.",
    "How many positive divisors does the number of ways to seat 5 people at a round table have?",
]


def test_boilerplate_phrasing_is_not_a_near_duplicate(tmp_path):
    problems = pl.DataFrame([{"uuid": problem_key(t, "olympiads"), "problem": t, "source": "olympiads"} for t in BOILERPLATE])
    counts, kept, rejected, _, _ = run_dedupe(tmp_path, problems, build_judged(problems, {}), decontaminate=False)
    assert kept.height == len(BOILERPLATE) and rejected.height == 0
    assert pl.read_parquet(tmp_path / "near_duplicates.parquet").height == 0


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    rows, roles = synthetic_problems(3000, seed=7, exact_rate=0.05, near_rate=0.05)
    problems = pl.DataFrame(rows)
    result = run_dedupe(tmp_path_factory.mktemp("synthetic"), problems, build_judged(problems, {}), decontaminate=False)
    return problems, roles, result


def groups(roles: dict[str, str]) -> dict[str, set[str]]:
    """original uuid -> the original and every planted copy of it."""
    out: dict[str, set[str]] = {}
    for uuid, role in roles.items():
        original = role.split(":", 1)[1] if role.startswith(("exact_of:", "near_of:")) else uuid
        out.setdefault(original, set()).add(uuid)
    return out


def test_planted_exact_and_near_duplicates_leave_one_per_group(synthetic_run):
    _, roles, (counts, kept, rejected, _, _) = synthetic_run
    kept_set = set(kept["uuid"].to_list())
    planted = {g: members for g, members in groups(roles).items() if len(members) > 1}
    assert len(planted) > 200
    missed = {g: members & kept_set for g, members in planted.items() if len(members & kept_set) != 1}
    assert missed == {}
    # No unique problem was merged with another: every kept row is one group's survivor.
    assert kept.height == len(groups(roles))
    assert counts.rejected["exact_duplicate"] + counts.rejected["near_duplicate"] == len(roles) - kept.height
    near = rejected.filter(pl.col("reason") == "near_duplicate")
    assert near.height >= 140 and near["detail"].str.starts_with("near-duplicate of ").all()


def test_near_duplicate_pairs_are_written_for_audit(synthetic_run, tmp_path_factory):
    problems, roles, (_, _, rejected, _, metrics) = synthetic_run
    out = next(tmp_path_factory.getbasetemp().glob("synthetic*")) / "near_duplicates.parquet"
    pairs = pl.read_parquet(out)
    assert pairs.columns == ["uuid_a", "uuid_b", "similarity", "problem_a", "problem_b", "dedupe_params", "dedupe_code"]
    assert pairs.height == metrics["near_duplicates"]["pairs"] > 0
    assert pairs["similarity"].min() >= 0.7 and pairs["similarity"].max() <= 1.0
    text = dict(zip(problems["uuid"], problems["problem"]))
    for row in pairs.head(50).iter_rows(named=True):
        assert text[row["uuid_a"]] == row["problem_a"] and text[row["uuid_b"]] == row["problem_b"]
        # every pair is a real planted relation: the same group
        ga = {roles[row["uuid_a"]].split(":", 1)[-1], row["uuid_a"]}
        gb = {roles[row["uuid_b"]].split(":", 1)[-1], row["uuid_b"]}
        assert ga & gb
    near_rejected = set(rejected.filter(pl.col("reason") == "near_duplicate")["uuid"].to_list())
    assert near_rejected <= set(pairs["uuid_a"].to_list()) | set(pairs["uuid_b"].to_list())


def test_near_dedupe_keeps_the_most_correct_member(tmp_path):
    base = BOILERPLATE[2]
    variants = [base, base.replace("4", "5"), base.replace("4", "6")]
    problems = pl.DataFrame([{"uuid": problem_key(t, "olympiads"), "problem": t, "source": "olympiads"} for t in variants])
    best = max(problems["uuid"])
    _, kept, rejected, _, _ = run_dedupe(tmp_path, problems, build_judged(problems, {best: 2}), decontaminate=False, keep="most_correct")
    assert kept["uuid"].to_list() == [best]
    assert set(rejected["detail"].str.extract(r"near-duplicate of (\S+)").to_list()) == {best}


def test_bands_must_divide_permutations():
    with pytest.raises(ValueError, match="bands"):
        DedupeConfig.model_validate({"near": {"num_perm": 128, "bands": 30}})


# --- decontamination against every benchmark problem -----------------------------------------------


def all_benchmark_problems() -> list[tuple[str, str, str]]:
    ids = {"math500": "unique_id", "aime2024": "id", "aime2025": "id"}
    return [
        (name, str(r[ids[name]]), r["problem"])
        for name, rows in (("math500", MATH500), ("aime2024", AIME24), ("aime2025", AIME25))
        for r in rows
    ]


def punctuated(text: str) -> str:
    """A light edit: lower case, punctuation and spacing changed."""
    return text.lower().replace(". ", "; ").replace(",", " ,").replace("$", "$ ") + " ."


def test_every_benchmark_problem_planted_verbatim_or_lightly_edited_is_flagged(tmp_path):
    every = all_benchmark_problems()
    assert len(every) == 560
    planted = [(b, i, t) for b, i, t in every] + [(b, i, edited(t)) for b, i, t in every] + [(b, i, punctuated(t)) for b, i, t in every]
    rows, roles = synthetic_problems(2000, seed=11, exact_rate=0, near_rate=0, planted=planted)
    problems = pl.DataFrame(rows)
    counts, kept, _, contam, metrics = run_dedupe(tmp_path, problems, build_judged(problems, {}), exact=False, near={"enabled": False})
    flagged = dict(zip(contam["uuid"], zip(contam["benchmark"], contam["benchmark_item"])))
    planted_uuids = {u: r for u, r in roles.items() if r.startswith("planted:")}
    assert len(planted_uuids) >= 1600  # some edits collide with the verbatim text's key
    not_flagged = [r for u, r in planted_uuids.items() if u not in flagged]
    assert not_flagged == []
    # the clean synthetic problems (shared boilerplate included) are not flagged
    assert not [u for u in flagged if u not in planted_uuids]
    # the report names the benchmark each came from: every one of them (no two benchmarks share a problem)
    wrong = [(planted_uuids[u], flagged[u]) for u in flagged if not planted_uuids[u].startswith(f"planted:{flagged[u][0]}:")]
    assert wrong == []
    assert counts.rejected["contaminated"] == len(planted_uuids) == sum(metrics["contaminated_by_benchmark"].values())


def test_a_user_supplied_gpqa_file_is_a_benchmark(tmp_path):
    question = (
        "A spin-half particle is in a linear superposition 0.5|up> + sqrt(3)/2|down> of its spin states. "
        "What is the expectation value up to one decimal place of the operator 10 sigma_z + 5 sigma_x?"
    )
    gpqa = tmp_path / "gpqa_diamond.jsonl"
    gpqa.write_text(json.dumps({"Question": question, "Correct Answer": "-0.7"}) + "\n")
    benchmarks = {"gpqa_diamond": BenchmarkFile(path=str(gpqa), problem_field="Question", answer_field="Correct Answer")}
    texts = [question.upper(), CLEAN[0]]
    problems = pl.DataFrame([{"uuid": problem_key(t, "olympiads"), "problem": t, "source": "olympiads"} for t in texts])
    counts, kept, _, contam, metrics = run_dedupe(tmp_path / "run", problems, build_judged(problems, {}), benchmarks=benchmarks)
    assert contam.select("uuid", "benchmark", "benchmark_item").rows() == [(problem_key(texts[0], "olympiads"), "gpqa_diamond", "0")]
    assert metrics["contaminated_by_benchmark"] == {"gpqa_diamond": 1}


def test_a_benchmark_without_the_problem_field_names_the_fix(tmp_path):
    from distillery.errors import DistilleryError

    bad = tmp_path / "bench.jsonl"
    bad.write_text(json.dumps({"Question": "What is 2 + 2?"}) + "\n")
    problems, _ = build_problems()
    with pytest.raises(DistilleryError, match=r"no string field 'problem'.*problem_field"):
        run_dedupe(tmp_path / "run", problems, build_judged(problems, {}), benchmarks={"mine": BenchmarkFile(path=str(bad))})


def test_boilerplate_shared_with_an_item_is_spared_but_copies_are_not(tmp_path):
    boiler = "Find the set of all positive integers $n$ such that $n + 1$ divides $12$."
    problems = pl.DataFrame(
        [
            {"uuid": problem_key(t, "olympiads"), "problem": t, "source": "olympiads"}
            for t in (boiler, AIME25[1]["problem"], edited(MATH500[3]["problem"]))
        ]
    )
    judged = build_judged(problems, {})
    boiler_uuid = problem_key(boiler, "olympiads")
    copies = set(problems["uuid"].to_list()) - {boiler_uuid}
    # Every candidate (min_item_coverage 0): the boilerplate's two shared 8-grams flag it.
    _, _, _, loose, _ = run_dedupe(tmp_path / "any", problems, judged, min_item_coverage=0.0)
    assert set(loose["uuid"]) == copies | {boiler_uuid}
    boiler_row = loose.filter(pl.col("uuid") == boiler_uuid).row(0, named=True)
    assert boiler_row["matching_ngrams"] == 2 and boiler_row["item_coverage"] < 0.5
    # The default share of the item, or more shared n-grams, spare it and still flag the copies.
    _, _, _, default, _ = run_dedupe(tmp_path / "default", problems, judged)
    _, _, _, strict, _ = run_dedupe(tmp_path / "five", problems, judged, min_item_coverage=0.0, min_matching_ngrams=5)
    assert set(default["uuid"]) == set(strict["uuid"]) == copies


def test_an_empty_benchmark_file_is_an_error_not_decontamination_turned_off(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DistilleryError) as info:
        dedupe.BenchmarkIndex.build({"mybench": BenchmarkFile(path=str(empty))}, 8)
    msg = str(info.value)
    assert "benchmark mybench" in msg and "has no rows" in msg and "dedupe.benchmarks" in msg


def test_item_coverage_spares_a_shared_closing_but_not_a_copy(tmp_path):
    """One shared 8-gram is a share of 1/len(item): a clean problem that ends like a long benchmark
    item is flagged by OpenR1's rule (min_item_coverage 0) and not at 0.5; copies are flagged at both."""
    item = (
        "A bag has 4 red marbles, 5 white marbles, and 6 blue marbles. Three marbles are drawn from the bag "
        "without replacement. What is the probability that they are all the same color? Express your answer as a common fraction."
    )
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"problem": item, "id": "marbles"}) + "\n")
    index = dedupe.BenchmarkIndex.build({"b": BenchmarkFile(path=str(bench), id_field="id")}, 8)
    problems = pl.DataFrame(
        {
            "uuid": ["clean", "copy", "respelled"],
            "problem": [
                "Two dice are rolled. What is the probability that they show the same color? Express your answer as a common fraction.",
                "Problem 3. " + item.upper(),
                item.replace("4 red", "4 RED").replace("drawn from", "taken from"),
            ],
            "source": "s",
        }
    )
    any_ngram = dedupe.contamination(problems, index, min_matching=1, min_coverage=0.0)
    assert set(any_ngram["uuid"]) == {"clean", "copy", "respelled"}
    coverage = dict(zip(any_ngram["uuid"], any_ngram["item_coverage"]))
    assert coverage["copy"] == 1.0 and 0.5 < coverage["respelled"] < 1.0 and coverage["clean"] < 0.5
    half = dedupe.contamination(problems, index, min_matching=1, min_coverage=0.5)
    assert set(half["uuid"]) == {"copy", "respelled"} and set(half["benchmark_item"]) == {"marbles"}


def test_latex_and_number_respellings_are_the_same_tokens():
    assert dedupe.tokens(r"Find \dfrac{1}{2} \left( x \right) \times 1,000,000 and 0.5, \le 3") == dedupe.tokens(
        r"find \frac{1}{2} ( x ) \cdot 1000000 and .5 \leq 3"
    )


def test_near_duplicates_ignore_boilerplate_and_short_texts():
    """80 one-word problems sharing a long closing were all "near duplicates" of each other with the
    settings shipped before; the closing is boilerplate now, and what is left is too short to compare,
    while a real near duplicate (a number changed) is still found."""
    closing = "Express your answer as a common fraction in lowest terms and in simplest form."
    names = [a + b + c for a in "bcdfg" for b in "aeiou" for c in "klmnp"][:80]
    long = "A bag holds 7 red marbles and 5 blue marbles, and two of them are drawn without replacement"
    texts = pl.Series([f"Find {name}. {closing}" for name in names] + [f"{long}. {closing}", f"{long.replace('7', '8')}. {closing}"])
    before = near_duplicate_pairs(texts, NearDedupeConfig(threshold=0.7, boilerplate_share=1.0, min_shingles=1), seed=0)
    now = near_duplicate_pairs(texts, NearDedupeConfig(), seed=0)
    assert before.height > 1000
    assert now.select("a", "b").rows() == [(80, 81)]


def test_batches_and_partitions_change_no_output(tmp_path, monkeypatch):
    """The stage reads the problems in batches and counts boilerplate a hash partition at a time:
    every output is the same with batches of 37 problems and partitions of 500 shingles as with one
    batch and one partition, contamination, exact and near duplicates, boilerplate and ranking alike."""
    rows, _ = synthetic_problems(2000, seed=11, exact_rate=0.05, near_rate=0.05)
    closing = " Express your answer as a common fraction."  # boilerplate: in 300 of the rows
    rows = [{**r, "problem": r["problem"] + closing} if i % 7 == 0 else r for i, r in enumerate(rows)]
    rows += [{"uuid": problem_key(r["problem"], "cn_k12"), "problem": r["problem"], "source": "cn_k12"} for r in MATH500[:20]]
    problems = pl.DataFrame(rows).select("uuid", "problem", "source")
    judged = build_judged(problems, {u: i % 3 for i, u in enumerate(problems["uuid"])})

    def outputs(name: str) -> dict:
        run_dedupe(tmp_path / name, problems, judged, keep="most_correct")
        files = {
            p.name: pl.read_parquet(p) for p in (tmp_path / name).glob("*.parquet") if p.name not in ("problems.parquet", "judged.parquet")
        }
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        return {**files, "metrics": {k: v for k, v in metrics.items() if k != "versions"}}

    whole = outputs("whole")
    monkeypatch.setattr(dedupe, "PROBLEM_BATCH_ROWS", 37)
    monkeypatch.setattr(dedupe, "PARTITION_HASHES", 500)
    monkeypatch.setattr(dedupe, "UUID_MERGE_ROWS", 50)  # the uuid runs merged, and the judged counts joined, 50 rows at a time
    monkeypatch.setattr(dedupe, "BAND_BLOCK_ROWS", 29)  # each band's spool read back 29 rows at a time
    monkeypatch.setattr(dedupe, "EXACT_PARTITION_ROWS", 300)  # exact duplicates grouped in 7 partitions
    monkeypatch.setattr(dedupe, "CONFIRM_PAIRS", 13)  # candidate pairs' signatures read 13 pairs at a time
    monkeypatch.setattr(dedupe, "PAIR_TEXT_ROWS", 11)  # the audit table's texts read back 11 pairs at a time
    monkeypatch.setattr(dedupe, "REJECTED_CHUNK_ROWS", 17)  # rejected rows written 17 at a time, their uuids read back for them
    monkeypatch.setattr(dedupe, "IN_ORDER_SPOOLS", 3)  # the uuids and texts read back spooled in 3 files, several chunks each
    monkeypatch.setattr(dedupe, "PAIR_RUN_BLOCK", 7)  # the bands' candidate pairs merged 7 ids a run at a time
    pieces = outputs("pieces")
    judged = judged.sort("uuid")  # as the judge stage writes it: counted as it streams, not from a sorted copy
    sorted_judged = outputs("sorted_judged")
    assert sorted_judged.keys() == whole.keys()
    for name, value in whole.items():
        assert sorted_judged[name].equals(value) if isinstance(value, pl.DataFrame) else sorted_judged[name] == value, name
    assert whole["metrics"]["counts"]["rejected_by_reason"]["contaminated"] >= 20
    assert whole["metrics"]["near_duplicates"]["pairs"] > 50 and whole["metrics"]["exact"]["groups_with_duplicates"] > 50
    assert pieces.keys() == whole.keys()
    for name, value in whole.items():
        assert pieces[name].equals(value) if isinstance(value, pl.DataFrame) else pieces[name] == value, name
    assert not list(tmp_path.rglob(".dedupe-spool-*")), "the spool is removed"


def test_rows_sharing_a_band_found_from_its_hashes_alone():
    rng = np.random.default_rng(5)
    hashed = rng.integers(0, 50, size=300).astype(np.uint64)
    counts = np.bincount(hashed.astype(np.int64))
    assert dedupe._sharing_rows(hashed).tolist() == [i for i, h in enumerate(hashed.tolist()) if counts[h] > 1]
    assert dedupe._sharing_rows(np.arange(10, dtype=np.uint64)).tolist() == []


def test_values_found_more_than_a_count_without_counting():
    rng = np.random.default_rng(3)
    hashes = rng.integers(0, 40, size=2000).astype(np.uint64)
    values, counts = np.unique(hashes, return_counts=True)
    for over in (0, 1, 49.5, 50, 55.2, 80, 5000):
        assert dedupe._found_more_than(hashes.copy(), over).tolist() == values[counts > over].tolist(), over


def test_exact_duplicates_grouped_in_partitions_as_whole(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    n = 1000
    texts = rng.integers(0, 200, size=n).astype(np.uint64)  # 200 texts: most rows repeat one
    digests = np.stack([texts * np.uint64(7919), texts + np.uint64(1)], axis=1)
    position = np.full(n, -1, np.int64)
    still_in = rng.permutation(n)[:800]  # a fifth already out (contaminated), in a shuffled order
    position[still_in] = np.arange(len(still_in))
    digests.tofile(tmp_path / "digests.u64")
    whole = dedupe.exact_duplicates(digests[still_in])
    dup = np.nonzero(whole != np.arange(len(still_in)))[0]
    monkeypatch.setattr(dedupe, "EXACT_PARTITION_ROWS", 70)
    found, representatives = dedupe._exact_duplicates_spooled(tmp_path / "digests.u64", position, tmp_path)
    assert found.tolist() == dup.tolist() and representatives.tolist() == whole[dup].tolist()
    assert len(dup) > 400 and not list(tmp_path.glob("exact-*")), "partitions removed"


# --- gold answers: near duplicates with different answers are different problems ---------------------

TEMPLATE = (
    "A farmer named {name} has {n} sheep grazing in the northern meadow beside the river, and every morning "
    "the shepherd counts them before leading the flock across the old stone bridge toward the village market "
    "where the wool merchants gather each week. How many legs do the sheep have in total?"
)


def templated(values: list[int], answers: list[str | None], names: list[str] | None = None) -> pl.DataFrame:
    names = names or ["Ada"] * len(values)
    texts = [TEMPLATE.format(name=name, n=n) for name, n in zip(names, values)]
    return pl.DataFrame(
        {"uuid": [f"u{i:03d}" for i in range(len(texts))], "problem": texts, "answer": answers, "source": ["synthetic_math"] * len(texts)},
        schema={"uuid": pl.String, "problem": pl.String, "answer": pl.String, "source": pl.String},
    )


def test_templated_problems_with_different_answers_are_kept(tmp_path):
    """48 problems from one template (under 50: in more rows, at this size, its shingles would be
    boilerplate), each with other numbers and its own answer (4 legs a sheep): the texts are near
    duplicates of each other (2 of ~50 shingles differ), so texts alone merge them into one; by
    default their different gold answers keep all of them."""
    values = list(range(11, 59))
    problems = templated(values, [str(4 * n) for n in values])
    counts, kept, rejected, _, metrics = run_dedupe(tmp_path / "default", problems, build_judged(problems, {}), decontaminate=False)
    assert kept.height == 48 and rejected.height == 0
    near = metrics["near_duplicates"]
    assert near["keep_different_answers"] is True and near["pairs"] == 0 and near["pairs_with_different_answers"] > 0
    assert pl.read_parquet(tmp_path / "default" / "near_duplicates.parquet").height == 0
    # Texts alone: one left.
    _, kept, rejected, _, metrics = run_dedupe(
        tmp_path / "off", problems, build_judged(problems, {}), decontaminate=False, near={"keep_different_answers": False}
    )
    assert kept["uuid"].to_list() == ["u000"] and rejected["reason"].unique().to_list() == ["near_duplicate"]
    assert "pairs_with_different_answers" not in metrics["near_duplicates"]


def test_near_duplicates_with_the_same_answer_respelled_are_merged(tmp_path):
    """The same problem from three corpora, a number written another way in one and the answer in
    three spellings ($...$, spacing, \\dfrac): one answer, so one problem is kept."""
    problems = templated([12, 12, 12], ["\\frac{48}{1}", " $\\dfrac{48}{1}$ ", "\\frac{48}{1}."], names=["Ada", "Ada", "Bea"])
    problems = problems.with_columns(
        pl.Series("problem", [problems["problem"][0], problems["problem"][1].replace("12", "twelve"), problems["problem"][2]])
    )
    _, kept, rejected, _, _ = run_dedupe(tmp_path, problems, build_judged(problems, {}), decontaminate=False)
    assert kept["uuid"].to_list() == ["u000"]
    assert sorted(rejected["uuid"].to_list()) == ["u001", "u002"] and set(rejected["reason"]) == {"near_duplicate"}


def test_a_problem_without_an_answer_does_not_join_two_answers(tmp_path):
    """u000 (answer 48) ~ u001 (no answer) ~ u002 (answer 52): the pair with two answers is kept
    apart, and the chain through the answerless problem does not join them: u001 goes with u000,
    the first in uuid order, and u002 stays."""
    problems = templated([12, 12, 13], ["48", None, "52"], names=["Ada", "Bea", "Ada"])
    _, kept, rejected, _, metrics = run_dedupe(tmp_path, problems, build_judged(problems, {}), decontaminate=False)
    assert kept["uuid"].to_list() == ["u000", "u002"]
    assert rejected.select("uuid", "reason").rows() == [("u001", "near_duplicate")]
    assert rejected["detail"][0].startswith("near-duplicate of u000")
    assert metrics["near_duplicates"]["pairs_with_different_answers"] == 1


def test_answers_change_neither_exact_dedupe_nor_decontamination(tmp_path):
    """An exact copy with another gold answer is the same problem (a wrong or respelled gold): still
    an exact duplicate. A benchmark copy is contaminated whatever its answer."""
    text = TEMPLATE.format(name="Ada", n=12)
    rows = [("u000", text, "48"), ("u001", text.upper(), "50"), ("u002", MATH500[0]["problem"], "not the benchmark's")]
    problems = pl.DataFrame(rows, schema={"uuid": pl.String, "problem": pl.String, "answer": pl.String}, orient="row")
    problems = problems.with_columns(pl.lit("olympiads").alias("source"))
    _, kept, rejected, _, _ = run_dedupe(tmp_path, problems, build_judged(problems, {}))
    assert kept["uuid"].to_list() == ["u000"]
    assert dict(rejected.select("uuid", "reason").iter_rows()) == {"u001": "exact_duplicate", "u002": "contaminated"}


def test_answer_keys_equal_only_for_respellings():
    keys = dedupe.answer_keys(
        pl.Series(
            [
                "\\frac{1}{2}",
                " $\\dfrac{1}{2}$ ",
                "\\boxed{\\frac{1}{2}}",
                "\\frac{1}{2}.",
                "1/2",
                "0.5",
                None,
                " ",
                "$$",
                "\\left(1,2\\right)",
                "(1, 2)",
            ]
        )
    )
    assert len(set(keys[:4].tolist())) == 1  # the same answer, respelled
    assert len({keys[0], keys[4], keys[5]}) == 3  # 1/2 and 0.5 are not compared as numbers: kept apart
    assert keys[6:9].tolist() == [0, 0, 0]  # no answer given
    assert keys[9] == keys[10] and keys[9] != 0


def test_the_card_records_whether_answers_were_compared():
    from distillery.stages.build import _decontamination

    near = {"pairs": 3, "clusters": 2, "shingle_size": 2, "threshold": 0.6, "boilerplate_share": 0.005, "min_shingles": 5}
    on = _decontamination({"dedupe": {"near_duplicates": {**near, "keep_different_answers": True, "pairs_with_different_answers": 7}}})
    off = _decontamination({"dedupe": {"near_duplicates": {**near, "keep_different_answers": False}}})
    assert "gold answers differ are never merged: 7 such pairs" in on
    assert "Gold answers were not compared (keep_different_answers: false)" in off


# --- the pieces of near dedupe at scale ------------------------------------------------------------------


def test_bucket_pairs_pair_each_row_with_its_buckets_first_rows(monkeypatch):
    keys = np.array([5, 3, 5, 5, 3, 9, 5])  # buckets: {1, 4}, {0, 2, 3, 6}, {5}
    assert sorted(map(tuple, dedupe._bucket_pairs(keys).tolist())) == [(0, 2), (0, 3), (0, 6), (1, 4), (2, 3), (2, 6), (3, 6)]
    monkeypatch.setattr(dedupe, "_MAX_BUCKET_PAIRS_WITH", 2)  # each row with the bucket's first two only
    assert sorted(map(tuple, dedupe._bucket_pairs(keys).tolist())) == [(0, 2), (0, 3), (0, 6), (1, 4), (2, 3), (2, 6)]
    assert dedupe._bucket_pairs(np.array([1, 2, 3])).shape == (0, 2)


def test_runs_of_pair_ids_merged_a_block_at_a_time(tmp_path):
    rng = np.random.default_rng(8)
    runs = []
    for k in range(5):
        run = np.unique(rng.integers(0, 300, size=rng.integers(0, 120))).astype(np.uint64)
        run.tofile(tmp_path / f"run-{k}")
        runs.append(run)
    pieces = list(dedupe._merged_unique([tmp_path / f"run-{k}" for k in range(5)], block=7))
    merged = np.concatenate(pieces)
    assert merged.tolist() == sorted(set(np.concatenate(runs).tolist())) and len(pieces) > 5


def test_components_are_the_union_find_ones():
    rng = np.random.default_rng(9)
    n = 400
    a = rng.integers(0, n, size=300)
    b = rng.integers(0, n, size=300)
    a, b = np.minimum(a, b), np.maximum(a, b)
    parent = list(range(n))  # oracle: a plain union-find, lowest index as the root

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for x, y in zip(a.tolist(), b.tolist()):
        rx, ry = find(x), find(y)
        parent[max(rx, ry)] = min(rx, ry)
    assert dedupe._components(n, a, b).tolist() == [find(x) for x in range(n)]


def test_rows_read_in_any_order_from_one_pass(tmp_path, monkeypatch):
    problems = pl.DataFrame({"uuid": [f"u{i:03d}" for i in range(100)], "problem": [f"text {i}" for i in range(100)]})
    problems = problems.with_columns(
        pl.lit(None, pl.String).alias(c) for c in ["solution", "answer", "problem_type", "question_type", "source"]
    )
    path = tmp_path / "problems.parquet"
    problems.select("uuid", "problem").write_parquet(path)
    monkeypatch.setattr(dedupe, "PROBLEM_BATCH_ROWS", 9)
    monkeypatch.setattr(dedupe, "IN_ORDER_SPOOLS", 2)
    rows = np.array([57, 3, 3, 99, 0, 42, 57, 11, 76, 5, 88])
    frames = list(dedupe._in_order(path, ["uuid", "problem"], rows, 3, tmp_path))
    assert [f.height for f in frames] == [3, 3, 3, 2]  # chunks of 3, in order
    assert pl.concat(frames)["problem"].to_list() == [f"text {r}" for r in rows.tolist()]
    assert not list(tmp_path.glob("in-order-*")), "spool files removed"
