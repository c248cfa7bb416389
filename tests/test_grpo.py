"""Tests for distillery.stages.grpo: GRPO steps on CPU with the tiny student, the per-step metrics,
the mapping onto the installed TRL, the vLLM server plan, and resume after a SIGKILL."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from test_sft import row

from distillery.config import GRPOConfig, GRPOGeneration, VerifyConfig
from distillery.errors import DistilleryError
from distillery.rewards import Verdicts, accuracy_reward, completion_text
from distillery.stages import grpo
from distillery.verification import check_problem

from conftest import REPO, run_env
from support.training import kill_at_first_checkpoint


def settings(model, **over):
    return {
        "model": str(model),
        "learning_rate": 1e-4,
        "max_steps": 2,
        "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 1,
        "logging_steps": 1,
        "save_steps": 2,
        "save_total_limit": 1,
        "generation": {"num_generations": 4, "max_completion_length": 24, "max_prompt_tokens": 64, "temperature": 1.0},
        "rewards": {
            "accuracy": {"weight": 1.0},
            "cosine": {"weight": 1.0, "max_len": 24},
            "repetition": {"weight": 1.0},
            "overlong": {"weight": 1.0, "cache": 8},
            "format": {"weight": 0.5},
        },
        "verify_workers": 1,
        **over,
    }


def write_problems(path, rows):
    """GRPO's problems as the difficulty stage keeps them (uuid, problem, answer, ...)."""
    import polars as pl

    pl.DataFrame([{k: r[k] for k in ("uuid", "problem", "answer")} for r in rows]).write_parquet(path)
    return path


def dataset_rows(n):
    rows = [row(i) for i in range(n)]
    rows[0] = {**rows[0], "answer": ""}  # no gold: left out, counted
    rows[1] = {**rows[1], "answer": "\\frac{1}{2"}  # a malformed gold: left out, counted
    rows[2] = {**rows[2], "problem": "Compute " + "very " * 200 + "much."}  # a prompt past max_prompt_tokens
    return rows


def record_batches(monkeypatch) -> list[tuple[list[str], list[str], list[list[int]]]]:
    """Every batch of completions the rewards are handed during training: (texts, golds, token ids)."""
    seen: list[tuple[list[str], list[str], list[list[int]]]] = []
    real = Verdicts.__call__

    def recording(self, completions, gold, completion_ids):
        batch = ([completion_text(c) for c in completions], list(gold), [list(i) for i in completion_ids])
        if not seen or seen[-1] != batch:  # accuracy and cosine are handed the same batch
            seen.append(batch)
        return real(self, completions, gold, completion_ids)

    monkeypatch.setattr(Verdicts, "__call__", recording)
    return seen


def stop_ids(model_dir) -> set[int]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    return {tok.eos_token_id, tok.pad_token_id} - {None}


def test_correct_share_is_the_share_of_correct_completions_among_the_checkable_ones():
    """A hand-made step: 4 completions of gold 4 (2 right, 1 wrong, 1 right but cut off) and 2 of an
    unparseable gold (no verdict). The real accuracy reward scores them, TRL logs the mean of the
    scores that are not None, and the step record's correct_share is 2 of the 4 checkable ones."""
    eos = 0
    completions = ["<think>2+2</think> \\boxed{4}", "<think>x</think> $\\boxed{4.0}$", "<think>no</think> \\boxed{5}"]
    completions += ["<think>2+2</think> \\boxed{4}", "<think>a</think> \\boxed{1}", "<think>b</think> \\boxed{2}"]
    ids = [[5, 6, eos], [7, eos], [8, eos], [5, 6, 9], [1, eos], [2, eos]]  # the 4th never reached a stop token
    golds = ["4"] * 4 + ["\\frac{1}{2"] * 2
    verdicts = Verdicts(VerifyConfig(workers=1), 1, frozenset({eos}))
    try:
        scores = accuracy_reward(verdicts)(completions=completions, gold=golds, completion_ids=ids)
    finally:
        verdicts.close()
    scored = [x for x in scores if x is not None]
    history = [{"step": 1, "reward": -3.0, "rewards/accuracy/mean": sum(scored) / len(scored)}]
    assert grpo.step_records(history, ["accuracy"])[0]["correct_share"] == 0.5


def test_grpo_steps_on_cpu_record_rewards_lengths_and_clipping(tiny_models, tmp_path, monkeypatch):
    cfg = GRPOConfig.model_validate(settings(tiny_models / "student_base"))
    paths = grpo.Paths(
        problems=write_problems(tmp_path / "kept.parquet", dataset_rows(10)),
        model=tmp_path / "model",
        metrics=tmp_path / "m.json",
        steps=tmp_path / "steps.json",
        checkpoints=tmp_path / "ckpt",
        run_figures=tmp_path / "run.json",
    )
    batches = record_batches(monkeypatch)
    out = grpo.run(cfg, 7, VerifyConfig(workers=1), paths)
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["steps"] == 2 and out["steps_per_s"] > 0
    assert metrics["problems"] == {
        "rows_in": 10,
        "kept": 7,
        "rejected": 3,
        "rejected_by_reason": {"gold_malformed": 1, "no_gold": 1, "prompt_too_long": 1},
    }
    assert metrics["rewards"] == {"accuracy": 1.0, "cosine": 1.0, "repetition": 1.0, "overlong": 1.0, "format": 0.5}
    steps = json.loads((tmp_path / "steps.json").read_text())
    assert [s["step"] for s in steps] == [1, 2] and steps == metrics["per_step"]
    assert metrics["mean_zero_std_share"] == pytest.approx(sum(s["zero_std_share"] for s in steps) / len(steps))
    for s in steps:
        for name in ("accuracy", "cosine", "repetition", "overlong", "format"):
            assert isinstance(s[f"{name}_mean"], float), name
        assert 0 < s["completion_mean_length"] <= s["completion_max_length"] <= 24
        assert 0.0 <= s["clipped_share"] <= 1.0
        # One group a step (4 completions of one prompt): its rewards are all equal exactly when TRL's
        # reward std, the group's, is 0.
        assert s["zero_std_share"] in (0.0, 1.0) and (s["zero_std_share"] == 1.0) == (s["reward_std"] == 0.0), s
        # An untrained student rambles to the limit: a clipped completion is never correct, and costs its
        # exceed-length reward and the full overlong punishment.
        if s["clipped_share"] == 1.0:
            assert s["accuracy_mean"] == 0.0 and s["cosine_mean"] == -10.0 and s["overlong_mean"] == -1.0
    # The shares, against the completions the rewards were handed (one batch of 4 per step): cut off
    # at 24 tokens without a stop token, and correct as the verifier finds it, asked here directly.
    assert len(batches) == len(steps)
    stops = stop_ids(tiny_models / "student_base")
    for (texts, golds, ids), s in zip(batches, steps):
        clipped = [len(i) == 24 and i[-1] not in stops for i in ids]
        correct = [not c and check_problem(g, [t])[0].correct for t, g, c in zip(texts, golds, clipped)]
        assert (s["clipped_share"], s["correct_share"]) == pytest.approx((sum(clipped) / 4, sum(correct) / 4)), s
    assert (tmp_path / "model" / "config.json").is_file() and (tmp_path / "model" / "tokenizer_config.json").is_file()
    assert "GRPOTrainer" in (tmp_path / "model" / "README.md").read_text()
    assert not (tmp_path / "ckpt").exists()  # the checkpoints go once the model is saved


def test_no_usable_problem_is_a_clear_error(tiny_models, tmp_path):
    problems = write_problems(tmp_path / "kept.parquet", [{**row(i), "answer": ""} for i in range(3)])
    cfg = GRPOConfig.model_validate(settings(tiny_models / "student_base"))
    paths = grpo.Paths(problems=problems, model=tmp_path / "model", metrics=tmp_path / "m.json", steps=tmp_path / "s.json")
    with pytest.raises(DistilleryError, match="no_gold"):
        grpo.run(cfg, 7, VerifyConfig(workers=1), paths)


def test_recipe_settings_map_onto_the_installed_trl(tmp_path):
    recipe = yaml.safe_load((REPO / "recipes/openr1-math-220k.yaml").read_text())
    cfg = GRPOConfig.model_validate({**recipe["grpo"], "bf16": False})  # bf16 needs a GPU
    args = grpo.trl_args(cfg, 42, tmp_path, [1.0, 1.0])
    g = cfg.generation
    assert (args.num_generations, args.max_completion_length, args.use_vllm, args.vllm_mode) == (
        g.num_generations,
        g.max_completion_length,
        True,
        g.vllm_mode,
    )
    assert args.learning_rate == cfg.learning_rate and args.beta == cfg.beta and args.reward_weights == [1.0, 1.0]


def test_a_renamed_trl_option_is_a_config_error(tmp_path, monkeypatch):
    from distillery.errors import ConfigError

    cfg = GRPOConfig.model_validate(settings("m"))
    real = grpo.common_args
    monkeypatch.setattr(grpo, "common_args", lambda *a: {**real(*a), "max_prompt_length": 512})  # gone from recent TRL
    with pytest.raises(ConfigError, match=r"no GRPOConfig option\(s\) \['max_prompt_length'\]"):
        grpo.trl_args(cfg, 1, tmp_path, [1.0])


def test_vllm_server_plan_splits_the_nodes_gpus():
    g = GRPOGeneration(use_vllm=True, vllm_mode="server", vllm_server_gpus=2, vllm_server_port=8123)
    argv, server, training = grpo.vllm_server_plan(g, "/models/student", "abc123", [str(i) for i in range(8)])
    assert argv[:2] == ["trl", "vllm-serve"] and argv[argv.index("--model") + 1] == "/models/student"
    assert argv[argv.index("--tensor_parallel_size") + 1] == "2" and argv[argv.index("--port") + 1] == "8123"
    assert argv[argv.index("--revision") + 1] == "abc123"
    assert (server, training) == (["0", "1"], ["2", "3", "4", "5", "6", "7"])
    with pytest.raises(DistilleryError, match="sees 2"):
        grpo.vllm_server_plan(g, "m", None, ["0", "1"])


def grpo_cmd(tiny_models, root, **over):
    cfg = {**settings(tiny_models / "student_base", max_steps=8, save_steps=2, per_device_train_batch_size=2, **over), "seed": 7}
    cfg["generation"] = {**cfg["generation"], "num_generations": 2}
    cfg["verify"] = VerifyConfig(workers=1).model_dump(mode="json")
    return [
        sys.executable,
        "-m",
        "distillery",
        "grpo",
        "--config",
        json.dumps(cfg),
        "--problems",
        str(root / "kept.parquet"),
        "--model",
        str(root / "model"),
        "--metrics",
        str(root / "m.json"),
        "--steps",
        str(root / "steps.json"),
        "--checkpoints",
        str(root / "ckpt"),
        "--run-figures",
        str(root / "run.json"),
    ]


def test_a_killed_grpo_run_resumes_from_its_last_checkpoint(tiny_models, tmp_path):
    write_problems(tmp_path / "kept.parquet", [row(i) for i in range(16)])
    cmd = grpo_cmd(tiny_models, tmp_path)
    killed_at = kill_at_first_checkpoint(cmd, tmp_path / "ckpt", run_env())
    assert not (tmp_path / "m.json").exists()

    again = subprocess.run(cmd, env=run_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming from" in again.stderr
    figures = json.loads((tmp_path / "run.json").read_text())
    assert figures["resumed_from_step"] == killed_at >= 2
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["steps"] == 8
    # The steps before the kill come from the checkpoint's log: every step is in the metrics once.
    assert [s["step"] for s in metrics["per_step"]] == list(range(1, 9))
    assert not (tmp_path / "ckpt").exists()
