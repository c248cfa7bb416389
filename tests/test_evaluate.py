import json
import math

import pytest

from distillery.config import BenchmarkFile, EvaluateConfig
from distillery.stages import evaluate

from conftest import SHARED_BENCHMARKS


def test_pass_at_1_and_standard_error():
    mean, se = evaluate.pass_at_1([[True, True], [True, False], [False, False], [False, False]])
    assert mean == pytest.approx(0.375)
    rates = [1, 0.5, 0, 0]
    expected = math.sqrt(sum((r - 0.375) ** 2 for r in rates) / 3 / 4)
    assert se == pytest.approx(expected)
    assert evaluate.pass_at_1([[True]]) == (1.0, 0.0)
    assert evaluate.pass_at_1([]) == (0.0, 0.0)


def test_evaluates_the_tiny_model_on_shared_benchmarks(tiny_models, tmp_path):
    benchmarks = {
        "math500": BenchmarkFile(path=str(SHARED_BENCHMARKS / "math500.jsonl"), id_field="unique_id"),
        "aime2024": BenchmarkFile(path=str(SHARED_BENCHMARKS / "aime2024.jsonl"), id_field="id"),
    }
    cfg = EvaluateConfig.model_validate({"llm": {"model": str(tiny_models / "teacher")}, "sampling": {"max_new_tokens": 16},
                                         "benchmarks": {"math500": {"n": 2, "limit": 3}, "aime2024": {"n": 3, "limit": 2}}})
    results = evaluate.run(cfg, 42, benchmarks, tmp_path / "s.parquet", tmp_path / "m.json")
    assert results["math500"]["problems"] == 3 and results["math500"]["samples_per_problem"] == 2
    assert results["aime2024"]["problems"] == 2
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["protocol"]["temperature"] == 0.6 and metrics["protocol"]["mode"] == "sampled"
    import polars as pl

    samples = pl.read_parquet(tmp_path / "s.parquet")
    assert samples.height == 3 * 2 + 2 * 3
    assert set(samples["gold"].filter(samples["benchmark"] == "aime2024")) == {"204", "025"}
