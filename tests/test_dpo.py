"""Tests for distillery.stages.dpo: DPO steps on CPU with the tiny student from preference pairs."""

from __future__ import annotations

import json

import polars as pl
import pytest
import yaml

from distillery.config import DPOConfig
from distillery.errors import DistilleryError
from distillery.provenance import stamp
from distillery.stages import dpo
from distillery.tables import PREFERENCE_PAIRS, write_table

from conftest import REPO


def write_pairs(path, n):
    rows = [
        {
            "uuid": f"u{i}",
            "pair_index": 0,
            "prompt": [{"content": f"Compute {i}+1.", "role": "user"}],
            "chosen": [{"content": f"<think>\n{i}+1\n</think>\nThe final answer is $\\boxed{{{i + 1}}}$.", "role": "assistant"}],
            "rejected": [{"content": f"<think>\n{i}\n</think>\nThe final answer is $\\boxed{{{i + 7}}}$.", "role": "assistant"}],
            "rejected_kind": "wrong",
            "chosen_sample_index": 0,
            "rejected_sample_index": 1,
            "chosen_request_key": f"k{i}a",
            "rejected_request_key": f"k{i}b",
            "chosen_completion_tokens": 20,
            "rejected_completion_tokens": 20,
        }
        for i in range(n)
    ]
    schema = {c: t for c, t in PREFERENCE_PAIRS.schema.items() if not c.startswith("preferences_")}
    write_table(stamp(pl.DataFrame(rows, schema=schema), "preferences", {}), path, PREFERENCE_PAIRS)


def config(model, **over):
    return DPOConfig.model_validate(
        {
            "model": str(model),
            "learning_rate": 1e-3,
            "num_train_epochs": 2,
            "per_device_train_batch_size": 4,
            "gradient_accumulation_steps": 1,
            "logging_steps": 1,
            "save_steps": 2,
            "max_length": 256,
            **over,
        }
    )


def test_dpo_steps_on_cpu_move_the_policy_towards_the_chosen(tiny_models, tmp_path):
    write_pairs(tmp_path / "pairs.parquet", 8)
    paths = dpo.Paths(
        pairs=tmp_path / "pairs.parquet",
        model=tmp_path / "model",
        metrics=tmp_path / "m.json",
        checkpoints=tmp_path / "ckpt",
        run_figures=tmp_path / "run.json",
    )
    out = dpo.run(config(tiny_models / "student_base"), 7, paths)
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["pairs"] == 8 and metrics["steps"] == 4 and out["steps_per_s"] > 0
    # A fresh reference copy: the loss starts at log(2) and the chosen side gains on the rejected one.
    assert metrics["first_logged_loss"] == pytest.approx(0.6931, abs=0.01)
    assert metrics["last_logged_loss"] < metrics["first_logged_loss"] and metrics["last_reward_margin"] > 0
    assert (tmp_path / "model" / "model.safetensors").is_file() and "DPOTrainer" in (tmp_path / "model" / "README.md").read_text()
    assert not (tmp_path / "ckpt").exists()


def test_no_pairs_is_a_clear_error(tiny_models, tmp_path):
    write_pairs(tmp_path / "pairs.parquet", 0)
    paths = dpo.Paths(pairs=tmp_path / "pairs.parquet", model=tmp_path / "model", metrics=tmp_path / "m.json")
    with pytest.raises(DistilleryError, match="no preference pairs"):
        dpo.run(config(tiny_models / "student_base"), 7, paths)


def test_recipe_settings_map_onto_the_installed_trl(tmp_path):
    recipe = yaml.safe_load((REPO / "recipes/openr1-math-220k.yaml").read_text())
    cfg = DPOConfig.model_validate({**recipe["dpo"], "bf16": False})
    args = dpo.trl_args(cfg, 42, tmp_path)
    assert args.beta == cfg.beta and args.learning_rate == cfg.learning_rate and args.max_length == cfg.max_length
