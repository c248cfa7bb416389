"""The curate stage: the subset in the dataset's schema, every row's choice recorded, the selection
report's plots, and the same subset on a re-run (distillery.curation's logic: test_curation.py)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from test_curation import row

from distillery.config import CurateConfig, LimoCuration, S1KCuration
from distillery.errors import DistilleryError
from distillery.stages import curate
from distillery.stages.build import DATASET_SCHEMA
from distillery.tables import CURATE_SELECTION, read_table

SOURCE_CARD = "# Built\n\n## Sources and licences\n\n| corpus | licence |\n| limo | apache-2.0 |\n\n## Filters\n"


def dataset(tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(30):
        domain = ("Algebra", "Geometry", "Number Theory")[i % 3]
        correct = (True, True, True, True) if i % 5 == 0 else (True, False, False, False)  # every fifth too easy
        rows.append(row(f"u{i:02d}", problem=f"Problem number {i}: find the value of x in the equation.", problem_type=domain,
                        correct=correct, words=40 + 10 * i))  # fmt: skip
    rows.append(row("u99", problem="See the figure below and find the shaded area of the square."))  # image_reference
    path = tmp_path / "default.parquet"
    pq.write_table(pl.DataFrame(rows).to_arrow().cast(DATASET_SCHEMA), path)
    (tmp_path / "README.md").write_text(SOURCE_CARD)
    return path


def run(tmp_path: Path, cfg: CurateConfig, seed: int = 5, source: Path | None = None) -> curate.Paths:
    source = source or dataset(tmp_path)
    out = tmp_path / "out"
    paths = curate.Paths(source, tmp_path / "README.md", out / "subset", out / "selection.parquet", out / "curate.json", out / "plots")
    curate.run(cfg, seed, paths)
    return paths


def test_s1k_cuts_a_seeded_subset_and_explains_every_row(tmp_path):
    cfg = CurateConfig(method="s1k", s1k=S1KCuration(subset_rows=9, max_pass_rate=0.5))
    paths = run(tmp_path, cfg)
    selection = read_table(paths.selection, CURATE_SELECTION)
    subset = pl.read_parquet(paths.subset_dir / "train-00000-of-00001.parquet")
    assert pq.read_schema(paths.subset_dir / "train-00000-of-00001.parquet").names == DATASET_SCHEMA.names
    assert selection.height == 31 and subset.height == 9
    assert dict(selection.group_by("reason").len().rows()) == {"selected": 9, "too_easy": 6, "image_reference": 1, "not_drawn": 15}
    assert subset["uuid"].to_list() == selection.filter(pl.col("selected")).sort("draw_order")["uuid"].to_list()
    # A domain is drawn at random for each pick (s1's RandomChoice(D)), so each gets about a third.
    assert set(selection.filter(pl.col("selected"))["domain"]) == {"Algebra", "Geometry", "Number Theory"}
    metrics = json.loads(paths.metrics.read_text())
    assert metrics["counts"]["rows_in"] == metrics["counts"]["kept"] + metrics["counts"]["rejected"] == 31
    assert metrics["sizes"]["after_quality"] == 30 and metrics["sizes"]["after_difficulty"] == 24
    card = (paths.subset_dir / "README.md").read_text()
    assert "9 problems (s1k)" in card and "| limo | apache-2.0 |" in card
    domains = json.loads((paths.plots_dir / "domains.json").read_text())
    selected_by_domain = dict(selection.filter(pl.col("selected")).group_by("domain").len().rows())
    assert {r["domain"]: r["problems"] for r in domains if r["panel"] == "selected"} == selected_by_domain
    assert {r["panel"] for r in json.loads((paths.plots_dir / "trace_lengths.json").read_text())} == set(curate.PANELS)
    # Seeded and deterministic: a re-run writes the same bytes; another seed draws another subset.
    again = run(tmp_path / "again", cfg)
    for rel in ("subset/train-00000-of-00001.parquet", "selection.parquet"):
        assert (paths.subset_dir.parent / rel).read_bytes() == (again.subset_dir.parent / rel).read_bytes()
    other = run(tmp_path / "other", cfg, seed=6)
    assert pl.read_parquet(other.subset_dir / "train-00000-of-00001.parquet")["uuid"].to_list() != subset["uuid"].to_list()


def test_limo_keeps_the_rarely_solved_and_best_reasoned(tmp_path):
    cfg = CurateConfig(method="limo", limo=LimoCuration(subset_rows=4, min_correct=1, max_correct=1))
    paths = run(tmp_path, cfg)
    selection = read_table(paths.selection, CURATE_SELECTION)
    assert dict(selection.group_by("reason").len().rows()) == {"selected": 4, "too_easy": 6, "image_reference": 1, "not_selected": 20}
    chosen = selection.filter(pl.col("selected"))
    assert chosen.height == 4 and chosen["score"].min() >= selection.filter(pl.col("reason") == "not_selected")["score"].max()


def test_a_file_that_is_not_a_dataset_is_named(tmp_path):
    wrong = tmp_path / "wrong.parquet"
    pl.DataFrame({"uuid": ["a"]}).write_parquet(wrong)
    (tmp_path / "README.md").write_text("")
    with pytest.raises(DistilleryError, match=r"has no column\(s\) \['problem'.*re-run `dvc repro build`"):
        run(tmp_path, CurateConfig(), source=wrong)


def test_a_subset_larger_than_the_data_is_a_warning_with_both_numbers(tmp_path, caplog):
    # 31 rows: 6 too easy and 1 image reference, so 24 can be selected of the 1,000 asked for.
    with caplog.at_level("WARNING", logger="distillery"):
        paths = run(tmp_path, CurateConfig(method="s1k", s1k=S1KCuration(subset_rows=1000, max_pass_rate=0.5)))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        "curate: curate.s1k asks for 1000 problems but the dataset's default config has 31 rows (24 pass its filters), "
        "so 24 are selected (metrics/curate.json: counts.rejected_by_reason)"
    ]
    assert json.loads(paths.metrics.read_text())["counts"]["kept"] == 24


def test_a_subset_within_the_data_says_nothing(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="distillery"):
        run(tmp_path, CurateConfig(method="s1k", s1k=S1KCuration(subset_rows=9, max_pass_rate=0.5)))
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
