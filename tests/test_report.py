"""report: the plot tables on small hand-made frames (exact numbers), the figures and the per-stage
table, and DVC reading the plots in a temp copy of the repository."""

import json
import shutil

import polars as pl
import pytest
import yaml

from distillery import tables
from distillery.config import ReportConfig
from distillery.stages import report

from conftest import REPO, sh

EDGES = [0, 100, 200, 400]


def gens(rows: list[tuple]) -> pl.DataFrame:
    cols = ["uuid", "sample_index", "completion_tokens", "correctness_math_verify", "correctness_llama", "verify_status", "judge_verdict"]
    return pl.DataFrame(
        [dict(zip(cols, r)) for r in rows],
        schema={
            "uuid": pl.String,
            "sample_index": pl.Int64,
            "completion_tokens": pl.Int64,
            "correctness_math_verify": pl.Boolean,
            "correctness_llama": pl.Boolean,
            "verify_status": pl.String,
            "judge_verdict": pl.String,
        },
    )


GENS = gens(
    [
        ("a", 0, 50, True, None, "ok", "not_judged"),
        ("a", 1, 100, False, True, "mismatch", "EQUIVALENT"),
        ("b", 0, 199, False, False, "mismatch", "DIFFERENT"),
        ("b", 1, 250, False, None, "no_answer", None),
        ("c", 0, 400, False, False, "mismatch", "DIFFERENT"),
        ("c", 1, 9000, True, None, "ok", "not_judged"),
        ("c", 2, None, None, None, "error", None),  # a rejected request: no tokens
    ]
)
PROBLEMS = pl.DataFrame({"uuid": ["a", "b", "c"], "source": ["olympiads", "olympiads", "cn_k12"]})


def test_length_histogram_counts_every_fixed_bin():
    rows = report.length_histogram(GENS, EDGES)
    got = {(r["bin"], r["math_verify"]): r["generations"] for r in rows}
    assert got == {
        ("0–99", "correct"): 1,
        ("0–99", "not correct"): 0,
        ("100–199", "correct"): 0,
        ("100–199", "not correct"): 2,
        ("200–399", "correct"): 0,
        ("200–399", "not correct"): 1,
        ("≥ 400", "correct"): 1,
        ("≥ 400", "not correct"): 1,
    }
    assert [r["order"] for r in rows if r["math_verify"] == "correct"] == [0, 1, 2, 3]
    assert sum(r["generations"] for r in rows) == 6  # the row without tokens is left out
    # The bins come from the edges alone: an empty frame lists the same bins.
    assert [r["bin"] for r in report.length_histogram(GENS.clear(), EDGES)] == [r["bin"] for r in rows]


def test_bin_labels():
    assert [report.bin_label([0, 1024, 16384], i) for i in range(3)] == ["0–1,023", "1,024–16,383", "≥ 16,384"]


def test_pass_rates_per_source_and_overall():
    rows = {(r["source"], r["measure"]): (r["pass_rate"], r["correct"], r["of"]) for r in report.pass_rates(GENS, PROBLEMS)}
    assert rows[("all sources", "generations: math-verify")] == (28.6, 2, 7)
    assert rows[("all sources", "generations: judge")] == (14.3, 1, 7)
    assert rows[("all sources", "generations: either")] == (42.9, 3, 7)
    assert rows[("all sources", "problems: any correct")] == (66.7, 2, 3)
    assert rows[("olympiads", "generations: math-verify")] == (25.0, 1, 4)
    assert rows[("olympiads", "generations: either")] == (50.0, 2, 4)
    assert rows[("olympiads", "problems: any correct")] == (50.0, 1, 2)
    assert rows[("cn_k12", "generations: judge")] == (0.0, 0, 3)
    assert rows[("cn_k12", "problems: any correct")] == (100.0, 1, 1)
    order = {r["source"]: r["order"] for r in report.pass_rates(GENS, PROBLEMS)}
    assert order == {"all sources": 0, "cn_k12": 1, "olympiads": 2}


def test_agreement_counts_combinations_including_not_judged():
    got = {(r["math_verify"], r["judge"]): r["generations"] for r in report.agreement(GENS)}
    assert got == {
        ("ok", "not_judged"): 2,
        ("mismatch", "EQUIVALENT"): 1,
        ("mismatch", "DIFFERENT"): 2,
        ("no_answer", "not_judged"): 1,
        ("error", "not_judged"): 1,
    }


def test_eval_scores_beside_published():
    evaluate = {
        "results": {
            "greedy": {"math500": {"pass@1": 10.0, "stderr": 0.0}},
            "sampled": {"math500": {"pass@1": 12.5, "stderr": 2.5}, "gpqa_diamond": {"pass@1": 30.0, "stderr": 1.0}},
        }
    }
    rows = report.eval_scores(evaluate, ["OpenR1-Qwen-7B"])
    assert [(r["benchmark"], r["model"], r["pass@1"]) for r in rows] == [
        ("gpqa_diamond", "ours (sampled)", 30.0),  # nothing published for GPQA in distillery/published.py
        ("math500", "ours (sampled)", 12.5),
        ("math500", "ours (greedy)", 10.0),
        ("math500", "OpenR1-Qwen-7B (published)", 90.6),
    ]
    assert [r["order"] for r in rows if r["benchmark"] == "math500"] == [0, 1, 2]


def test_stage_counts_table():
    metrics = {
        "sample": {"counts": {"rows_in": 10, "kept": 7, "rejected": 3, "rejected_by_reason": {"synthetic": 2, "empty_answer": 1}}},
        "generate": {"requests": 14, "by_status": {"ok": 13, "empty": 1, "rejected": 0}},
        "verify": {"generations": 14, "generations_by_status": {"ok": 8, "mismatch": 6}},
        "judge": {"judged": 6, "verdicts": {"EQUIVALENT": 2, "DIFFERENT": 4, "not_judged": 8}},
    }
    rows = report.stage_counts(metrics)
    assert [(r["stage"], r["rows_in"], r["kept"], r["rejected_by_reason"]) for r in rows] == [
        ("sample", 10, 7, {"synthetic": 2, "empty_answer": 1}),
        ("generate", 14, 13, {"empty": 1, "rejected": 0}),
        ("verify", 14, 8, {"mismatch": 6}),
        ("judge", 6, 2, {"DIFFERENT": 4}),
    ]
    html = report.stage_counts_html(rows)
    assert (
        "<td>sample</td><td>problems</td><td class=n>10</td><td class=n>7</td><td class=n>3</td><td>synthetic: 2<br>empty_answer: 1</td>"
        in html
    )
    assert "rejected: 0" not in html  # zero counts are left out


def test_stage_counts_table_covers_the_corpora_curation_and_training_stages():
    def counts(rows_in, kept, **by):
        return {"rows_in": rows_in, "kept": kept, "rejected": rows_in - kept, "rejected_by_reason": by}

    metrics = {
        "ingest": {"counts": counts(12, 9, missing_problem=2, malformed_trace=1)},
        "mix": {"counts": counts(20, 19, over_cap=1)},
        "curate": {"counts": counts(31, 9, too_easy=6, image_reference=1, not_drawn=15)},
        "sft": {"rows": 75, "steps": 38},
        "preferences": {"pairs": 7, "problems": counts(80, 7, no_rejected_generation=68, no_correct_generation=2, removed_by_dedupe=3)},
        "dpo": {"pairs": 7, "steps": 6},
        "grpo": {"problems": counts(75, 70, prompt_too_long=5), "steps": 6},
    }
    rows = report.stage_counts(metrics)
    assert [(r["stage"], r["unit"], r["rows_in"], r["kept"], r["rejected_by_reason"]) for r in rows] == [
        ("ingest", "corpus rows", 12, 9, {"missing_problem": 2, "malformed_trace": 1}),
        ("mix", "problems", 20, 19, {"over_cap": 1}),
        ("curate", "dataset rows (kept: selected)", 31, 9, {"too_easy": 6, "image_reference": 1, "not_drawn": 15}),
        ("sft", "dataset rows trained on", 75, 75, {}),
        (
            "preferences",
            "problems (kept: paired)",
            80,
            7,
            {"no_rejected_generation": 68, "no_correct_generation": 2, "removed_by_dedupe": 3},
        ),
        ("dpo", "preference pairs trained on", 7, 7, {}),
        ("grpo", "problems in difficulty's range (kept: trained on)", 75, 70, {"prompt_too_long": 5}),
    ]


def test_the_counts_table_reads_every_stage_that_makes_or_trains_on_rows():
    from distillery.config import load_params
    from distillery.workflow import report_stage_metrics, wanted_stages

    params = load_params(REPO / "params.yaml")
    stages = [p.removeprefix("metrics/").removesuffix(".json") for p in report_stage_metrics(params)]
    # Every pipeline stage but the params check, the tiny models, the evaluation, the report itself and
    # opt-in lighteval;
    # ingest and mix only when ingest names a corpus (the shipped params.yaml names two).
    # round 2's generate, verify and judge (params.yaml runs two rounds) among them.
    assert set(stages) == set(wanted_stages(params)) - {"check_params", "models", "evaluate", "report", "lighteval"}
    assert {"generate_round_2", "verify_round_2", "judge_round_2"} < set(stages)
    assert stages.index("sample") < stages.index("ingest") < stages.index("mix") < stages.index("build") < stages.index("grpo")


def test_the_config_names_exactly_the_published_models():
    from distillery.config import PUBLISHED_MODELS
    from distillery.published import PUBLISHED

    assert sorted(PUBLISHED_MODELS) == sorted(PUBLISHED)


def test_config_rejects_bad_bins_and_unknown_models():
    with pytest.raises(ValueError, match="strictly increasing"):
        ReportConfig(length_bins=[0, 100, 100])
    with pytest.raises(ValueError, match="published.py"):
        ReportConfig(compare_with=["NoSuchModel"])


def test_run_writes_small_plot_files_and_svgs(tmp_path):
    judged, problems, evaluate = tmp_path / "judged.parquet", tmp_path / "problems.parquet", tmp_path / "evaluate.json"
    GENS.write_parquet(judged)
    PROBLEMS.write_parquet(problems)
    evaluate.write_text(json.dumps({"results": {"sampled": {"math500": {"pass@1": 1.0, "stderr": 0.5}}}}))
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps({"counts": {"rows_in": 3, "kept": 3, "rejected": 0, "rejected_by_reason": {}}}))
    report.run(
        ReportConfig(length_bins=EDGES),
        report.Paths(
            judged=judged,
            problems=problems,
            stage_metrics=[sample],
            evaluate=evaluate,
            plots_dir=tmp_path / "plots",
            figures_dir=tmp_path / "figures",
            stage_counts=tmp_path / "counts.html",
        ),
    )
    for name in report.PLOTS:
        assert isinstance(json.loads((tmp_path / "plots" / f"{name}.json").read_text()), list)
        svg = (tmp_path / "figures" / f"{name}.svg").read_text()
        assert svg.startswith("<svg") and "<text" in svg
    assert "Generation length" in (tmp_path / "figures/generation_lengths.svg").read_text()
    assert "<td>sample</td>" in (tmp_path / "counts.html").read_text()


def test_run_counts_the_judged_table_a_batch_of_whole_problems_at_a_time(tmp_path, monkeypatch):
    """Read two rows at a time (a problem's rows waiting for the next batch), the plots are those of the whole table."""
    judged, problems, evaluate = tmp_path / "judged.parquet", tmp_path / "problems.parquet", tmp_path / "evaluate.json"
    GENS.write_parquet(judged)
    PROBLEMS.write_parquet(problems)
    evaluate.write_text(json.dumps({"results": {}}))
    batches = []

    def small_batches(path, table, columns=None, batch_rows=0):
        for batch in tables.iter_table(path, table, columns, batch_rows=2):
            if table is tables.JUDGED:
                batches.append(batch.height)
            yield batch

    monkeypatch.setattr(report, "iter_table", small_batches)
    monkeypatch.setattr(report, "PROBLEM_BATCH_ROWS", 1)  # the problems' uuids sorted in runs of one, merged a row at a time
    paths = report.Paths(judged, problems, [], evaluate, tmp_path / "plots", tmp_path / "figures", tmp_path / "counts.html")
    report.run(ReportConfig(length_bins=EDGES), paths)
    assert batches == [2, 2, 2, 1]
    plot = {name: json.loads((tmp_path / "plots" / f"{name}.json").read_text()) for name in report.PLOTS}
    assert plot["generation_lengths"] == report.length_histogram(GENS, EDGES)
    assert plot["pass_rate_by_source"] == report.pass_rates(GENS, PROBLEMS)
    assert plot["verify_vs_judge"] == report.agreement(GENS)
    # One problem (c) split across batches is still one problem: 2 of 3 problems with a correct generation (a and c).
    overall = {r["measure"]: (r["correct"], r["of"]) for r in plot["pass_rate_by_source"] if r["source"] == report.ALL_SOURCES}
    assert overall["problems: any correct"] == (2, 3) and overall["generations: either"] == (3, 7)


def test_an_unsorted_judged_table_is_refused_naming_it(tmp_path):
    from distillery.errors import DistilleryError

    judged, problems = tmp_path / "judged.parquet", tmp_path / "problems.parquet"
    GENS.reverse().write_parquet(judged)
    PROBLEMS.write_parquet(problems)
    paths = report.Paths(judged, problems, [], tmp_path / "e.json", tmp_path / "plots", tmp_path / "figures", tmp_path / "counts.html")
    with pytest.raises(DistilleryError, match=r"judged.parquet is not sorted by uuid.*re-run it"):
        report.run(ReportConfig(length_bins=EDGES), paths)


def test_a_judged_file_without_a_needed_column_names_it(tmp_path):
    from distillery.errors import DistilleryError

    judged = tmp_path / "judged.parquet"
    GENS.drop("judge_verdict").write_parquet(judged)
    with pytest.raises(DistilleryError, match=r"no column\(s\) \['judge_verdict'\]; the judge stage writes them.*`dvc repro judge`"):
        report.run(
            ReportConfig(length_bins=EDGES),
            report.Paths(
                judged=judged,
                problems=tmp_path / "p.parquet",
                stage_metrics=[],
                evaluate=tmp_path / "e.json",
                plots_dir=tmp_path / "plots",
                figures_dir=tmp_path / "figures",
                stage_counts=tmp_path / "counts.html",
            ),
        )


def test_offline_plots_template_inlines_vega():
    page = report.plots_template()
    assert "{plot_divs}" in page and "vegaEmbed" in page and "cdn.jsdelivr" not in page and "<script src" not in page


def test_dvc_plots_show_reads_the_report_plots(repo_copy):
    """DVC renders every report plot with its template, title and axes (data from this checkout)."""
    (repo_copy / "plots/report").mkdir(parents=True, exist_ok=True)
    for name in report.PLOTS:
        src = REPO / "plots/report" / f"{name}.json"
        if not (repo_copy / src.relative_to(REPO)).exists():
            if not src.exists():
                pytest.skip(f"{src} is not built (snakemake --profile profiles/local)")
            shutil.copy(src, repo_copy / "plots/report")
    r = sh(["dvc", "plots", "show", "--json"], repo_copy, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    shown = json.loads(r.stdout)
    assert not shown.get("errors"), shown["errors"]
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["report"]
    declared = {next(iter(p)): p[next(iter(p))] for p in stage["plots"]}
    reports = {k: v for k, v in shown["data"].items() if k.startswith("plots/report/")}
    assert set(reports) == set(declared) == {f"plots/report/{n}.json" for n in report.PLOTS}
    # GRPO's per-step plots (dvc.yaml's top-level plots) render beside them.
    assert {"grpo_rewards", "grpo_lengths", "grpo_clipped_and_correct", "plots/grpo/steps.json"} <= set(shown["data"])
    for path, (plot,) in reports.items():
        spec = plot["content"]
        assert spec["title"]["text"] == declared[path]["title"]
        encoding = spec["spec"]["encoding"]
        assert encoding["x"]["title"] == declared[path]["x_label"] and encoding["y"]["title"] == declared[path]["y_label"]
        assert spec["data"]["values"] and all(v["rev"] == "workspace" for v in spec["data"]["values"])


def test_sources_are_met_in_uuid_order_as_a_join_would_meet_them(tmp_path, monkeypatch):
    """Problems in any order, some without generations, generations of uuids that no problem has
    (source "unknown"), a source that is null: the streamed counts are the join's."""
    import random

    rng = random.Random(7)
    uuids = [f"{i:03d}-{rng.random():.6f}" for i in range(60)]
    problems = pl.DataFrame({"uuid": uuids, "source": [rng.choice(["olympiads", "cn_k12", "amc_aime", None]) for _ in uuids]}).sample(
        fraction=1.0, shuffle=True, seed=3
    )
    judged_uuids = sorted(rng.sample(uuids, 40) + ["zzz-no-problem", "000-no-problem"])
    rows = [
        (u, i, rng.randint(1, 500), rng.random() < 0.5, rng.choice([True, False, None]), "ok", None)
        for u in judged_uuids
        for i in range(rng.randint(1, 3))
    ]
    judged = gens(rows)
    judged_path, problems_path, evaluate = tmp_path / "judged.parquet", tmp_path / "problems.parquet", tmp_path / "evaluate.json"
    judged.write_parquet(judged_path)
    problems.write_parquet(problems_path)
    evaluate.write_text(json.dumps({"results": {}}))
    monkeypatch.setattr(report, "PROBLEM_BATCH_ROWS", 7)
    paths = report.Paths(judged_path, problems_path, [], evaluate, tmp_path / "plots", tmp_path / "figures", tmp_path / "counts.html")
    report.run(ReportConfig(length_bins=EDGES), paths)
    plot = json.loads((tmp_path / "plots" / "pass_rate_by_source.json").read_text())
    assert plot == report.pass_rates(judged, problems)
    assert {r["source"] for r in plot} >= {"unknown", "olympiads", report.ALL_SOURCES}
    assert not list(tmp_path.glob(".report-spool-*")), "the spool is removed"
