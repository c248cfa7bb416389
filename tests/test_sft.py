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
    return {
        "problem": f"Compute {i}+1.",
        "solution": "",
        "answer": str(i + 1),
        "problem_type": "",
        "question_type": "",
        "source": "s",
        "uuid": f"u{i}",
        "is_reasoning_complete": [True],
        "generations": ["x"],
        "correctness_math_verify": [True],
        "correctness_llama": None,
        "finish_reasons": ["stop"],
        "correctness_count": 1,
        "messages": [
            {"content": f"Compute {i}+1.", "role": "user"},
            {"content": f"<think>\n{i}+1\n</think>\nThe final answer is $\\boxed{{{i + 1}}}$.", "role": "assistant"},
        ],
    }


def test_rope_and_context_overrides_are_applied_by_code(tiny_models):
    cfg = SFTConfig.model_validate({"model": str(tiny_models / "student_base"), "rope_theta": 300000, "max_position_embeddings": 4096})
    conf = sft.model_config(cfg)
    assert conf.rope_parameters["rope_theta"] == 300000
    assert conf.max_position_embeddings == 4096


def test_trains_the_tiny_student_with_assistant_only_loss(tiny_models, tmp_path):
    write_dataset(tmp_path / "ds", [row(i) for i in range(12)])
    cfg = SFTConfig.model_validate(
        {
            "model": str(tiny_models / "student_base"),
            "learning_rate": 1e-3,
            "num_train_epochs": 1,
            "max_length": 256,
            "per_device_train_batch_size": 4,
            "gradient_accumulation_steps": 1,
            "logging_steps": 1,
            "rope_theta": 20000,
            "max_position_embeddings": 1024,
        }
    )
    report = sft.run(cfg, 42, sft.Paths(dataset_dir=tmp_path / "ds", model=tmp_path / "model", metrics=tmp_path / "m.json"))
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
        sft.run(cfg, 42, sft.Paths(dataset_dir=tmp_path / "ds", model=tmp_path / "model", metrics=tmp_path / "m.json"))


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


# --- checkpoints and resume ------------------------------------------------------------------------


def test_run_key_follows_what_shapes_the_training():
    base = SFTConfig.model_validate({"model": "m"})
    data = {"default": "abc"}
    key = sft.run_key(base, 1, data)
    assert sft.run_key(base.model_copy(update={"logging_steps": 99}), 1, data) == key
    assert sft.run_key(base.model_copy(update={"launch": base.launch.model_copy(update={"processes_per_node": 8})}), 1, data) == key
    assert sft.run_key(base.model_copy(update={"learning_rate": 1e-3}), 1, data) != key
    assert sft.run_key(base, 2, data) != key
    assert sft.run_key(base, 1, {"default": "abd"}) != key


def test_last_checkpoint_skips_an_incomplete_one(tmp_path):
    for step, complete in ((2, True), (4, True), (6, False)):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        if complete:
            (d / "trainer_state.json").write_text("{}")
    assert sft.last_checkpoint(tmp_path) == tmp_path / "checkpoint-4"
    assert sft.last_checkpoint(tmp_path / "none") is None


def _sft_cmd(tiny_models, tmp_path, **over):
    import json

    cfg = {
        "model": str(tiny_models / "student_base"),
        "learning_rate": 1e-3,
        "num_train_epochs": 1,
        "max_length": 128,
        "per_device_train_batch_size": 1,
        "gradient_accumulation_steps": 1,
        "logging_steps": 1,
        "save_steps": 4,
        "save_total_limit": 1,
        **over,
    }
    return [
        "-m",
        "distillery",
        "sft",
        "--config",
        json.dumps({**cfg, "seed": 7}),
        "--dataset-dir",
        str(tmp_path / "ds"),
        "--model",
        str(tmp_path / "model"),
        "--metrics",
        str(tmp_path / "m.json"),
        "--checkpoints",
        str(tmp_path / "ckpt"),
        "--run-figures",
        str(tmp_path / "run.json"),
    ]


def test_a_killed_training_resumes_from_its_last_checkpoint(tiny_models, tmp_path):
    import json
    import subprocess
    import sys

    from conftest import run_env
    from support.training import kill_at_first_checkpoint

    write_dataset(tmp_path / "ds", [row(i) for i in range(48)])
    cmd = [sys.executable, *_sft_cmd(tiny_models, tmp_path)]
    killed_at = kill_at_first_checkpoint(cmd, tmp_path / "ckpt", run_env())
    assert not (tmp_path / "m.json").exists()

    again = subprocess.run(cmd, env=run_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming from" in again.stderr
    resumed = json.loads((tmp_path / "m.json").read_text())
    assert json.loads((tmp_path / "run.json").read_text())["resumed_from_step"] == killed_at >= 4

    # An uninterrupted run of the same training takes the same number of steps.
    whole = tmp_path / "whole"
    whole.mkdir()
    (whole / "ds").symlink_to(tmp_path / "ds")
    straight = subprocess.run([sys.executable, *_sft_cmd(tiny_models, whole)], env=run_env(), capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr[-3000:]
    uninterrupted = json.loads((whole / "m.json").read_text())
    assert json.loads((whole / "run.json").read_text())["resumed_from_step"] is None
    assert resumed["steps"] == uninterrupted["steps"] == 48
    # The checkpoints go once the model is saved; the model carries its tokenizer, template and card.
    assert not (tmp_path / "ckpt").exists()
    card = (tmp_path / "model" / "README.md").read_text()
    assert f"base_model: {tiny_models / 'student_base'}" in card and resumed["dataset_md5"]["default"] in card
    # Whether a run was resumed is a run figure (logs), not part of the model: the card is the same either way.
    assert "Resumed" not in card and "OpenR1-Qwen-7B | 90.6 | 36.7 | 40.0" in card


# --- launching under accelerate --------------------------------------------------------------------


def test_launch_commands_one_node(tmp_path):
    from distillery.config import SFTLaunch
    from distillery.llm.serving import Allocation
    from distillery.sft_launch import launch_commands

    conf = tmp_path / "acc.yaml"
    conf.write_text("distributed_type: 'NO'\n")
    [(node, argv)] = launch_commands(
        SFTLaunch(accelerate_config=str(conf), processes_per_node=8),
        ["sft", "--config", "{}"],
        Allocation(["127.0.0.1"], False),
        python="py",
    )
    assert argv == [
        "py",
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(conf),
        "--num_machines",
        "1",
        "--num_processes",
        "8",
        "--machine_rank",
        "0",
        "--main_process_ip",
        "127.0.0.1",
        "--main_process_port",
        "29500",
        "--module",
        "distillery",
        "sft",
        "--config",
        "{}",
    ]


def test_launch_commands_across_a_slurm_allocation():
    from distillery.config import SFTLaunch
    from distillery.llm.serving import Allocation
    from distillery.sft_launch import launch_commands

    from conftest import REPO

    alloc = Allocation.from_env({"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "gpu[07-08]"})
    cmds = launch_commands(
        SFTLaunch(accelerate_config=str(REPO / "configs/accelerate/zero3.yaml"), processes_per_node=8, main_process_port=29555),
        ["sft"],
        alloc,
        python="py",
    )
    assert [node for node, _ in cmds] == ["gpu07", "gpu08"]
    for rank, (node, argv) in enumerate(cmds):
        assert argv[:6] == ["srun", "--nodes=1", "--ntasks=1", f"--nodelist={node}", "--overlap", "--kill-on-bad-exit=1"]
        flags = dict(zip(argv[9:-3:2], argv[10:-3:2]))
        assert flags["--num_machines"] == "2" and flags["--num_processes"] == "16" and flags["--machine_rank"] == str(rank)
        assert flags["--main_process_ip"] == "gpu07" and flags["--main_process_port"] == "29555"


def test_launch_errors_name_the_fix(tmp_path):
    from distillery.config import SFTLaunch
    from distillery.llm.serving import Allocation
    from distillery.sft_launch import launch_commands

    with pytest.raises(DistilleryError, match="accelerate_config: .* does not exist"):
        launch_commands(SFTLaunch(accelerate_config=str(tmp_path / "nope.yaml")), ["sft"], Allocation(["127.0.0.1"], False))
    conf = tmp_path / "acc.yaml"
    conf.write_text("{}\n")
    with pytest.raises(DistilleryError, match="needs a Slurm allocation"):
        launch_commands(SFTLaunch(accelerate_config=str(conf)), ["sft"], Allocation(["a", "b"], False))


def test_sft_runs_under_accelerate_launch(tiny_models, tmp_path):
    import json
    import subprocess
    import sys

    from conftest import REPO, run_env

    write_dataset(tmp_path / "ds", [row(i) for i in range(8)])
    cmd = [
        sys.executable,
        *_sft_cmd(
            tiny_models, tmp_path, per_device_train_batch_size=4, launch={"accelerate_config": str(REPO / "configs/accelerate/cpu.yaml")}
        ),
    ]
    r = subprocess.run(cmd, env=run_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "accelerate.commands.launch" in r.stderr  # the launcher logged what it ran
    assert json.loads((tmp_path / "m.json").read_text())["steps"] == 2
    assert (tmp_path / "model" / "model.safetensors").exists()


def test_liger_is_used_only_when_available(tmp_path):
    cfg = SFTConfig.model_validate({"model": "m", "use_liger_kernel": True})
    assert sft.trl_args(cfg, 1, tmp_path).use_liger_kernel is False  # no CUDA, no liger-kernel here
