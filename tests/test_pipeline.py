"""End to end on the bundled sample: a Snakemake run, the DVC repro behaviours, and the messages a
user sees for an invalid params.yaml or a missing input. Real Snakemake, git and DVC in temp copies."""

import json
import re

import datasets
import pytest
import yaml

from conftest import REPO, sh

pytestmark = pytest.mark.e2e


def ran_stages(dvc_output: str) -> list[str]:
    return re.findall(r"Running stage '([a-z_]+)'", dvc_output)


def test_snakemake_runs_the_whole_dag(repo_copy):
    r = sh(["snakemake", "--profile", "profiles/local"], repo_copy)
    assert r.returncode == 0, r.stderr[-3000:]
    ds = datasets.load_dataset("parquet", data_files=str(repo_copy / "data/build/dataset/*/train-*.parquet"), split="train")
    assert len(ds) > 0
    assert list(ds.features)[:3] == ["problem", "solution", "answer"] and "messages" in ds.features
    verify = json.loads((repo_copy / "metrics/verify.json").read_text())["generations_by_status"]
    assert verify["ok"] > 0 and verify["mismatch"] + verify["no_answer"] > 0  # accepted and rejected generations
    judge = json.loads((repo_copy / "metrics/judge.json").read_text())["verdicts"]
    assert sum(judge.get(v, 0) for v in ("EQUIVALENT", "DIFFERENT", "AMBIGUOUS")) > 0
    dedupe = json.loads((repo_copy / "metrics/dedupe.json").read_text())["counts"]
    assert dedupe["rejected_by_reason"]["exact_duplicate"] >= 1 and dedupe["rejected_by_reason"]["contaminated"] >= 2
    evaluate = json.loads((repo_copy / "metrics/evaluate.json").read_text())["results"]
    assert set(evaluate) == {"sampled", "greedy"}
    assert all(set(per) == {"math500", "aime2024", "aime2025"} for per in evaluate.values())
    assert (repo_copy / "data/evaluate/model_card.md").read_text().count("## Evaluation") == 1
    near = json.loads((repo_copy / "metrics/dedupe.json").read_text())["near_duplicates"]
    assert near["threshold"] == 0.7 and (repo_copy / "data/dedupe/near_duplicates.parquet").exists()
    card = (repo_copy / "data/build/dataset/README.md").read_text()
    assert "## Decontamination" in card and "| dedupe |" in card and '"git_commit"' in card
    assert (repo_copy / "data/sft/model/model.safetensors").exists()
    # Every filtering stage accounts for every row.
    for stage in ("sample", "dedupe", "build"):
        c = json.loads((repo_copy / f"metrics/{stage}.json").read_text())["counts"]
        assert c["rows_in"] == c["kept"] + c["rejected"] == c["kept"] + sum(c["rejected_by_reason"].values())
    again = sh(["snakemake", "--profile", "profiles/local", "-n"], repo_copy)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_dvc_repro_builds_once_then_reruns_only_what_a_param_touches(repo_copy):
    first = sh(["dvc", "repro"], repo_copy)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert ran_stages(first.stdout) == ["sample", "models", "generate", "verify", "judge", "dedupe", "build", "sft", "evaluate"]

    second = sh(["dvc", "repro"], repo_copy)
    assert second.returncode == 0 and ran_stages(second.stdout) == []
    assert "up to date" in second.stdout

    params = yaml.safe_load((repo_copy / "params.yaml").read_text())
    params["judge"]["sampling"]["max_new_tokens"] = 12  # cut the judge's replies short: verdicts change
    (repo_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    third = sh(["dvc", "repro"], repo_copy)
    assert third.returncode == 0, third.stdout[-3000:]
    ran = ran_stages(third.stdout)
    assert ran[0] == "judge"
    assert not set(ran) & {"sample", "models", "generate", "verify"}
    assert "dedupe" in ran  # the judged rows changed, so what follows re-ran


def test_invalid_params_stop_snakemake_with_one_message(repo_copy):
    params = (repo_copy / "params.yaml").read_text().replace("  policy: unsolved_problems", "  policy: everything")
    (repo_copy / "params.yaml").write_text(params)
    r = sh(["snakemake", "--profile", "profiles/local", "-n"], repo_copy)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "judge.policy = 'everything'" in out and "unsolved_problems" in out
    assert "Traceback" not in out


def test_missing_input_names_the_stage_that_makes_it(repo_copy):
    from distillery.config import VerifyConfig, stage_config

    cfg = stage_config("verify", VerifyConfig(), seed=1)
    r = sh(["distillery", "verify", "--config", cfg, "--generations", "data/generate/generations.parquet",
            "--problems", "data/sample/problems.parquet", "--out", "x.parquet", "--metrics", "m.json"], repo_copy)
    assert r.returncode == 2
    assert "data/generate/generations.parquet does not exist: it is made by the `generate` stage" in r.stderr
    assert "Traceback" not in r.stderr


def test_dvc_stages_mirror_the_snakemake_rules():
    """Every rule belongs to exactly one DVC stage, each stage's outputs are its command's targets,
    and each stage tracks its own params section."""
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    rules_by_file = {p.stem: re.findall(r"^rule (\w+):", p.read_text(), re.M) for p in (REPO / "rules").glob("*.smk")}
    rules_by_file.pop("common")
    rules_by_file.pop("lighteval")  # opt-in and in its own environment: not a DVC stage (tests/test_lighteval.py)
    assert set(dvc) == set(rules_by_file)
    for stage, spec in dvc.items():
        allowed, targets = re.fullmatch(r"snakemake --cores all --allowed-rules ([\w ]+?) -- (.+)", spec["cmd"]).groups()
        assert set(allowed.split()) == set(rules_by_file[stage]), stage
        declared = set(spec["outs"]) | {next(iter(m)) for m in spec["metrics"]}
        for target in targets.split():  # a target is a declared output or inside a declared directory
            assert any(target == d or target.startswith(d + "/") for d in declared), (stage, target)
        assert stage in spec["params"], stage
        assert f"rules/{stage}.smk" in spec["deps"] and f"src/distillery/stages/{stage}.py" in spec["deps"], stage


def test_recipe_validates_and_sets_every_key():
    from distillery.config import load_params, unset_fields

    recipe = load_params(REPO / "recipes/openr1-math-220k.yaml")
    assert unset_fields(recipe) == []
    assert recipe.sample.n == 400000 and recipe.generate.llm.model == "deepseek-ai/DeepSeek-R1"
    assert (recipe.generate.sampling.temperature, recipe.generate.sampling.top_p, recipe.generate.sampling.max_new_tokens) == (0.6, 0.95, 16384)
    assert recipe.judge.llm.model == "meta-llama/Llama-3.3-70B-Instruct" and recipe.dedupe.ngram == 8
    assert recipe.sft.rope_theta == 300000 and recipe.sft.max_length == 32768 and recipe.sft.learning_rate == 5e-5
    assert {k: v.n for k, v in recipe.evaluate.benchmarks.items()} == {"math500": 4, "aime2024": 64, "aime2025": 64, "gpqa_diamond": 8}


def test_snakemake_lint_is_clean():
    r = sh(["snakemake", "--lint"], REPO)
    assert r.returncode == 0 and "Congratulations, your workflow is in a good condition!" in r.stdout + r.stderr, r.stdout[-2000:]
