import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distillery.config import SFTConfig
from distillery.errors import ConfigError, DistilleryError
from distillery.stages import sft
from distillery.stages.build import DATASET_SCHEMA, split_file


def write_dataset(root, rows):
    for split, items in (("default", rows), ("extended", [])):
        path = split_file(root, split)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(items, schema=DATASET_SCHEMA), path)


def row(i):
    return {"problem": f"Compute {i}+1.", "solution": "", "answer": str(i + 1), "problem_type": "", "question_type": "", "source": "s",
            "uuid": f"u{i}", "is_reasoning_complete": [True], "generations": ["x"], "correctness_math_verify": [True],
            "correctness_llama": None, "finish_reasons": ["stop"], "correctness_count": 1,
            "messages": [{"content": f"Compute {i}+1.", "role": "user"},
                         {"content": f"<think>\n{i}+1\n</think>\nThe final answer is $\\boxed{{{i + 1}}}$.", "role": "assistant"}]}


def test_rope_and_context_overrides_are_applied_by_code(tiny_models):
    cfg = SFTConfig.model_validate({"model": str(tiny_models / "student_base"), "rope_theta": 300000, "max_position_embeddings": 4096})
    conf = sft.model_config(cfg)
    assert conf.rope_parameters["rope_theta"] == 300000
    assert conf.max_position_embeddings == 4096


def test_trains_the_tiny_student_with_assistant_only_loss(tiny_models, tmp_path):
    write_dataset(tmp_path / "ds", [row(i) for i in range(12)])
    cfg = SFTConfig.model_validate({"model": str(tiny_models / "student_base"), "learning_rate": 1e-3, "num_train_epochs": 1,
                                    "max_length": 256, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1,
                                    "logging_steps": 1, "rope_theta": 20000, "max_position_embeddings": 1024})
    report = sft.run(cfg, 42, tmp_path / "ds", tmp_path / "model", tmp_path / "m.json")
    assert report["rows"] == 12 and report["steps"] == 3
    assert (tmp_path / "model" / "tokenizer.json").exists() and (tmp_path / "model" / "config.json").exists()
    from transformers import AutoConfig, AutoTokenizer

    saved = AutoConfig.from_pretrained(tmp_path / "model")
    assert saved.rope_parameters["rope_theta"] == 20000 and saved.max_position_embeddings == 1024
    assert "{% generation %}" in AutoTokenizer.from_pretrained(tmp_path / "model").chat_template


def test_empty_dataset_is_a_clear_error(tiny_models, tmp_path):
    write_dataset(tmp_path / "ds", [])
    cfg = SFTConfig.model_validate({"model": str(tiny_models / "student_base")})
    with pytest.raises(DistilleryError, match="have no rows: nothing to train on"):
        sft.run(cfg, 42, tmp_path / "ds", tmp_path / "model", tmp_path / "m.json")


def test_bf16_on_cpu_is_refused_at_config_time(tmp_path):
    cfg = SFTConfig.model_validate({"model": "m", "bf16": True})
    with pytest.raises(ConfigError, match="bf16"):
        sft.trl_args(cfg, 1, tmp_path)


def test_recipe_settings_map_onto_the_installed_trl(tmp_path):
    import yaml

    from conftest import REPO

    recipe = yaml.safe_load((REPO / "recipes/openr1-math-220k.yaml").read_text())["sft"]
    cfg = SFTConfig.model_validate({**recipe, "bf16": False, "use_liger_kernel": False})
    args = sft.trl_args(cfg, 42, tmp_path)
    assert args.learning_rate == 5e-5 and args.num_train_epochs == 3 and args.max_length == 32768
    assert args.warmup_steps == 0.1 and args.lr_scheduler_type == "linear"
    assert args.per_device_train_batch_size == 1 and args.gradient_accumulation_steps == 2 and not args.packing
