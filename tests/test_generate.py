import json

import polars as pl
import pytest

from distillery.config import GenerateConfig, Sampling
from distillery.errors import DistilleryError
from distillery.io import utf8_text
from distillery.keys import shard_of
from distillery.llm import Request
from distillery.llm.transformers_backend import TransformersBackend
from distillery.stages import generate


def gen_config(models_dir, **over):
    base = {
        "llm": {"model": str(models_dir / "teacher"), "batch_size": 8},
        "sampling": {"max_new_tokens": 24},
        "num_generations": 2,
        "num_shards": 2,
    }
    base.update(over)
    return GenerateConfig.model_validate(base)


def test_shards_partition_the_problems_and_gather_keeps_every_request(tiny_models, bundled_problems, tmp_path):
    cfg = gen_config(tiny_models)
    shards = [tmp_path / f"shard-{i}.parquet" for i in range(2)]
    frames = [generate.run_shard(cfg, 42, i, generate.ShardPaths(problems=bundled_problems, generations=p)) for i, p in enumerate(shards)]
    problems = pl.read_parquet(bundled_problems)
    for i, df in enumerate(frames):
        assert all(shard_of(u, 2) == i for u in df["uuid"])
    generate.gather(generate.GatherPaths(shards=shards, generations=tmp_path / "all.parquet", metrics=tmp_path / "m.json"))
    out = pl.read_parquet(tmp_path / "all.parquet")
    assert out.select("uuid", "sample_index").equals(out.select("uuid", "sample_index").sort("uuid", "sample_index"))
    assert out.height == 2 * problems.height
    assert out["request_key"].n_unique() == out.height
    assert set(out["finish_reason"]) <= {"stop", "length"}
    assert set(out["status"]) <= {"ok", "empty"}
    assert out["completion_tokens"].min() >= 1
    assert json.loads(out["sampling"][0]) == {"temperature": 0.6, "top_p": 0.95, "max_new_tokens": 24, "n": 2}
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["requests"] == out.height and metrics["rejected_requests"] == 0


def test_same_seed_same_generations(tiny_models, bundled_problems, tmp_path):
    cfg = gen_config(tiny_models, num_shards=4)
    a = generate.run_shard(
        cfg, 7, 0, generate.ShardPaths(problems=bundled_problems, generations=tmp_path / "a.parquet", journal=tmp_path / "ja")
    )
    b = generate.run_shard(
        cfg, 7, 0, generate.ShardPaths(problems=bundled_problems, generations=tmp_path / "b.parquet", journal=tmp_path / "jb")
    )
    assert a["generation"].to_list() == b["generation"].to_list()


def stats_of(path):
    return json.loads(path.read_text())


def test_a_rerun_reuses_the_journal_and_sends_nothing(tiny_models, bundled_problems, tmp_path):
    cfg = gen_config(tiny_models)
    first = generate.run_shard(
        cfg, 7, 0, generate.ShardPaths(problems=bundled_problems, generations=tmp_path / "a.parquet", run_figures=tmp_path / "a.json")
    )
    again = generate.run_shard(
        cfg, 7, 0, generate.ShardPaths(problems=bundled_problems, generations=tmp_path / "b.parquet", run_figures=tmp_path / "b.json")
    )
    assert first.equals(again)
    s = stats_of(tmp_path / "b.json")
    assert s["reused_from_journal"] == s["requests"] == first.height
    assert s["generated"] == 0 and s["backend_requests_sent"] == 0


def test_a_grown_sample_generates_only_the_new_problems(tiny_models, bundled_problems, tmp_path):
    problems = pl.read_parquet(bundled_problems)
    half = tmp_path / "half.parquet"
    problems.head(problems.height // 2).write_parquet(half)
    cfg = gen_config(tiny_models)
    small = generate.run_shard(
        cfg, 7, 1, generate.ShardPaths(problems=half, generations=tmp_path / "small.parquet", run_figures=tmp_path / "small.json")
    )
    full = generate.run_shard(
        cfg, 7, 1, generate.ShardPaths(problems=bundled_problems, generations=tmp_path / "full.parquet", run_figures=tmp_path / "full.json")
    )
    s = stats_of(tmp_path / "full.json")
    assert s["reused_from_journal"] == small.height
    assert s["generated"] == full.height - small.height > 0
    # The reused rows are the very rows of the first run.
    assert full.filter(pl.col("request_key").is_in(small["request_key"].implode())).sort("request_key").equals(small.sort("request_key"))


def test_a_changed_temperature_reuses_nothing(tiny_models, bundled_problems, tmp_path):
    cfg = gen_config(tiny_models)
    generate.run_shard(cfg, 7, 0, generate.ShardPaths(problems=bundled_problems, generations=tmp_path / "a.parquet"))
    hotter = cfg.model_copy(update={"sampling": Sampling(temperature=0.9, max_new_tokens=24)})
    generate.run_shard(
        hotter, 7, 0, generate.ShardPaths(problems=bundled_problems, generations=tmp_path / "b.parquet", run_figures=tmp_path / "b.json")
    )
    s = stats_of(tmp_path / "b.json")
    assert s["reused_from_journal"] == 0 and s["generated"] == s["requests"]


def test_requests_that_exhaust_their_retries_fail_the_shard_with_a_count(bundled_problems, tmp_path):
    cfg = GenerateConfig.model_validate(
        {
            "llm": {
                "backend": "openai",
                "model": "m",
                "openai": {"base_urls": ["http://127.0.0.1:9/v1"], "max_retries": 1, "retry_max_wait_s": 0.1, "timeout_s": 5},
            },
            "num_generations": 1,
            "num_shards": 4,
        }
    )
    with pytest.raises(DistilleryError, match=r"(\d+) of \1 requests failed after 1 retries .*re-running retries only these"):
        generate.run_shard(
            cfg, 7, 0, generate.ShardPaths(problems=bundled_problems, generations=tmp_path / "x.parquet", run_figures=tmp_path / "x.json")
        )
    assert not (tmp_path / "x.parquet").exists()
    s = stats_of(tmp_path / "x.json")
    assert s["failed_after_retries"] == s["requests"] > 0 and s["backend_requests_sent"] == 2 * s["requests"]
    lines = [json.loads(x) for x in next((tmp_path / "journal" / "generate").glob("*.jsonl")).read_text().splitlines()]
    assert len(lines) == s["requests"] and all(x["retryable"] and "Connection" in x["error"] for x in lines)


def test_request_key_changes_with_prompt_and_sampling(bundled_problems):
    problems = pl.read_parquet(bundled_problems).head(3).to_dicts()
    cfg = GenerateConfig.model_validate({"llm": {"model": "m"}})

    def keys(cfg, seed):
        task = generate.GenerateTask(cfg, seed)
        return {task.request(task.messages(p), cfg.sampling, i).key for p in problems for i in range(task.samples(p))}

    hotter = cfg.model_copy(update={"sampling": Sampling(temperature=0.7)})
    other_prompt = cfg.model_copy(update={"prompt_template": "Solve: {problem}"})
    assert len(keys(cfg, 1)) == 3 * cfg.num_generations
    assert keys(cfg, 1).isdisjoint(keys(hotter, 1))
    assert keys(cfg, 1).isdisjoint(keys(other_prompt, 1))
    assert keys(cfg, 1) == keys(cfg, 999)  # seed is not part of the key


def test_malformed_prompts_are_recorded_failures_not_crashes(tiny_models):
    cfg = gen_config(tiny_models)
    backend = TransformersBackend(cfg.llm)
    reqs = [
        Request("empty", (("user", "   "),), 1),
        Request("huge", (("user", "x " * 5000),), 1),  # far past the 512-position context
        Request("fine", (("user", "Compute 2+3."),), 1),
    ]
    out = {c.key: c for c in backend.generate(reqs, Sampling(max_new_tokens=8))}
    assert out["empty"].finish_reason == "error" and out["empty"].error == "empty prompt"
    assert out["huge"].finish_reason == "error" and "does not fit the model's context of 512" in out["huge"].error
    assert out["fine"].error is None and out["fine"].finish_reason in ("stop", "length")


def test_missing_model_names_the_stage_that_makes_it(bundled_problems, tmp_path, monkeypatch):
    from distillery.errors import MissingInputError

    monkeypatch.chdir(tmp_path)
    cfg = GenerateConfig.model_validate({"llm": {"model": "data/models/teacher"}, "num_shards": 1})
    with pytest.raises(MissingInputError, match="made by the `models` stage"):
        generate.run_shard(cfg, 1, 0, generate.ShardPaths(problems=bundled_problems, generations=tmp_path / "x.parquet"))


def test_text_parquet_cannot_hold_is_replaced_not_a_crash():
    assert utf8_text("ok \u00e9") == "ok \u00e9"
    cleaned = utf8_text("42\udcff")
    assert cleaned.startswith("42") and "\ufffd" in cleaned
    pl.DataFrame({"g": [cleaned]}).write_parquet(__import__("io").BytesIO())
