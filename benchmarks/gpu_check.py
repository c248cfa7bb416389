"""GPU node check: every CUDA path of the pipeline run once, each in its own process, in minutes.

    python3 benchmarks/gpu_check.py [--wheels .gpu-wheels] [--out DIR]   # on a GPU node, any Python 3.12 with torch
    python3 benchmarks/gpu_check.py --cpu                                 # the same paths, tiny, on CPU (CI's dry run)

For a node with a fixed Python (torch with CUDA, transformers, accelerate) and no registry or hub:
the packages it lacks (TRL, datasets, polars, math-verify, pydantic, DeepSpeed, ...) come from a
folder of wheels `make gpu-wheels` fills elsewhere (constraints/gpu-wheels*.txt), installed into a
temporary target only when missing. Models are built on the node with random weights (no hub): the
models stage's tiny Qwen2 student and tokenizer, and a Qwen2 with Qwen2.5-1.5B's layer shapes (1.3B
parameters with the tiny tokenizer's vocabulary) on CUDA.

Each path runs in its own process under a time limit, so one failure hides none of the others,
on one GPU (the first of CUDA_VISIBLE_DEVICES, else GPU 0):

- sft: the sft stage (`sft.run`) with the recipe's settings (bf16, gradient checkpointing, sdpa,
  its packing, batch and accumulation, rope) and its lengths scaled down, on the large model:
  trained tokens per second and model FLOPs utilisation;
- sft_resume: the `distillery sft` command killed at its first checkpoint, then re-run: it resumes;
- dpo, grpo: a few steps of `dpo.run` and `grpo.run` with the recipe's settings scaled down (GRPO
  generates with transformers, the accuracy reward checks answers in the verifier's worker pool),
  with their per-step metrics;
- generation: the `transformers` backend on the large model: generated tokens per second;
- budget_forcing: evaluate's budget forcing through that backend: no thinking over its budget;
- accelerate: `distillery sft` under `accelerate launch` with the recipe's config
  (configs/accelerate/zero3.yaml, DeepSpeed ZeRO-3) on the one GPU (CPU: configs/accelerate/cpu.yaml).

It writes `<out>/gpu_check.json` and `<out>/gpu_check.md` (each path: ran, or failed with its
error; its figures), each path's log to `<out>/logs/`, and exits 1 if any path failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "openr1-math-220k.yaml"
WHEEL_LISTS = (REPO / "constraints" / "gpu-wheels.txt", REPO / "constraints" / "gpu-wheels-built.txt")
PATHS = ("sft", "sft_resume", "dpo", "grpo", "generation", "budget_forcing", "accelerate")
SEED = 42
# Only `accelerate launch` with DeepSpeed ZeRO-3 needs these: the CPU dry run launches without it.
CUDA_ONLY = ("deepspeed", "hjson")

# Dense bf16 peak of the cards this is meant for, FLOP/s (NVIDIA's data sheets, without sparsity).
PEAK_BF16 = (("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("H800", 989e12), ("A100", 312e12))


@dataclass(frozen=True)
class Sizes:
    """How big each path runs: `cuda` for the node, `cpu` for the dry run."""

    large: dict  # TinyModelsConfig fields of the large model
    sft_rows: int
    sft_max_length: int
    resume_steps: int
    resume_max_length: int
    dpo_steps: int
    dpo_max_length: int
    grpo_steps: int
    grpo_batch: int
    grpo_generations: int
    grpo_completion: int
    gen_prompts: int
    gen_tokens: int
    gen_batch: int
    budgets: tuple[int, ...]
    answer_tokens: int
    bf_items: int
    accelerate_steps: int
    limits_s: dict = field(default_factory=dict)


CUDA = Sizes(
    # Qwen2.5-1.5B's layers (28 x hidden 1536, 12 heads, 2 KV heads, MLP 8960): 1.3B parameters with
    # the tiny tokenizer's 1,024-token vocabulary in place of Qwen's 151,936.
    large={"hidden_size": 1536, "intermediate_size": 8960, "num_layers": 28, "num_heads": 12, "num_kv_heads": 2},
    sft_rows=96,
    sft_max_length=2048,  # the recipe's 32768 / 16
    resume_steps=40,
    resume_max_length=512,
    dpo_steps=2,
    dpo_max_length=2048,
    grpo_steps=3,
    grpo_batch=8,
    grpo_generations=4,
    grpo_completion=128,  # the recipe's 2048 / 16
    gen_prompts=32,
    gen_tokens=256,
    gen_batch=16,
    budgets=(128, 512),
    answer_tokens=64,
    bf_items=8,
    accelerate_steps=4,
    limits_s={
        "prepare": 90,
        "sft": 90,
        "sft_resume": 90,
        "dpo": 75,
        "grpo": 90,
        "generation": 90,
        "budget_forcing": 120,  # each round loads the model again (the evaluate task opens its backend per call)
        "accelerate": 120,
    },
)
CPU = Sizes(
    large={"hidden_size": 128, "intermediate_size": 256, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2},
    sft_rows=8,
    sft_max_length=256,
    resume_steps=8,
    resume_max_length=128,
    dpo_steps=2,
    dpo_max_length=128,
    grpo_steps=2,
    grpo_batch=4,
    grpo_generations=2,
    grpo_completion=16,
    gen_prompts=4,
    gen_tokens=16,
    gen_batch=4,
    budgets=(8, 24),
    answer_tokens=8,
    bf_items=2,
    accelerate_steps=2,
    limits_s={p: 240 for p in ("prepare", *PATHS)},
)


# --- packages -------------------------------------------------------------------------------------


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_list() -> dict[str, str]:
    """name -> version of every wheel `make gpu-wheels` makes (constraints/gpu-wheels*.txt)."""
    out = {}
    for path in WHEEL_LISTS:
        for line in path.read_text().splitlines():
            spec = line.split("#", 1)[0].split("--hash", 1)[0].strip()
            if spec:
                name, version = spec.split("==")
                out[canonical(name)] = version.strip()
    return out


def shown(path: Path) -> str:
    """A path as the report shows it: relative to the checkout when it is inside."""
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def wheels_to_install(needed: dict[str, str], installed: dict[str, str | None], folder: Path) -> tuple[list[Path], list[str]]:
    """(the folder's wheels of the needed packages this interpreter lacks, those the folder lacks too)."""
    missing = sorted(n for n in needed if installed.get(n) is None)
    found = {canonical(p.name.split("-")[0]): p for p in sorted(folder.glob("*.whl"))} if folder.is_dir() else {}
    return [found[n] for n in missing if n in found], [n for n in missing if n not in found]


def install_missing(wheels: Path, site: Path, cuda: bool) -> dict:
    """Installs what this interpreter lacks from the wheel folder into `site` (put on PYTHONPATH)."""
    needed = {n: v for n, v in wheel_list().items() if cuda or n not in CUDA_ONLY}
    installed = {n: installed_version(n) for n in needed}
    chosen, unavailable = wheels_to_install(needed, installed, wheels)
    report = {
        "wheel_folder": shown(wheels),
        "already_installed": {n: v for n, v in installed.items() if v is not None},
        "installed_from_wheels": [p.name for p in chosen],
    }
    if unavailable:
        raise RuntimeError(
            f"{', '.join(unavailable)} not installed and not in the wheel folder {wheels}: run `make gpu-wheels` on a machine "
            "with the package registries and copy .gpu-wheels/ beside this checkout (or pass --wheels DIR)"
        )
    if chosen:
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--target", str(site), *map(str, chosen)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"pip install --target {site} failed: {done.stderr.strip().splitlines()[-1:]}")
    return report


# --- the orchestrator -----------------------------------------------------------------------------


def child_env(work: Path, site: Path, cpu: bool) -> dict[str, str]:
    env = dict(os.environ)
    if cpu:  # tiny models: one thread each does it, and threads spinning on a busy machine cost more than they give
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    else:  # one GPU, the first visible: the Trainer would spread a process over all of them (DataParallel)
        env["CUDA_VISIBLE_DEVICES"] = (env.get("CUDA_VISIBLE_DEVICES") or "0").split(",")[0]
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(site), *filter(None, [env.get("PYTHONPATH")])])
    env["PATH"] = os.pathsep.join([str(site / "bin"), env.get("PATH", "")])
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        DISTILLERY_JOURNAL_DIR=str(work / "journal"),
        HF_DATASETS_CACHE=str(work / "hf-datasets"),
    )
    env.pop("DISTILLERY_SFT_LAUNCHED", None)
    return env


def last_error(log: Path) -> str:
    """The exception line a failed child left at the end of its log (or its last line)."""
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    for ln in reversed(lines):
        if re.match(r"^[\w.]+(Error|Exception|Interrupt|Exit)\b|^\w+Error:|^AssertionError", ln):
            return ln[:500]
    return lines[-1][:500] if lines else "no output"


def run_child(name: str, device: str, work: Path, env: dict, limit_s: float, logs: Path) -> dict:
    """One path in its own process group, so that at its time limit `accelerate launch` and its
    workers go with it, and nothing it started outlives it. `cpu_s`: the CPU time it and the
    processes it waited for took."""
    log = logs / f"{name}.log"
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--child", name, "--work", str(work), "--device", device],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            code: int | None = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() - started > limit_s:
            os.killpg(proc.pid, signal.SIGKILL)
            _, status, usage = os.wait4(proc.pid, 0)
            code = None
            break
        time.sleep(0.2)
    proc.returncode = -9 if code is None else code  # reaped here, not by Popen
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever it left behind (a worker pool, a launcher)
    except ProcessLookupError:
        pass
    timing = {"wall_s": round(time.monotonic() - started, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1), "log": shown(log)}
    result_file = work / "results" / f"{name}.json"
    if code is None:
        return {"status": "failed", "error": f"stopped at its time limit of {limit_s:.0f} s", **timing}
    if code != 0 or not result_file.is_file():
        return {"status": "failed", "error": last_error(log), "exit_code": code, **timing}
    return {"status": "ran", **timing, "figures": json.loads(result_file.read_text())}


def markdown(report: dict) -> str:
    env = report.get("environment", {})
    head = (
        f"GPU check on {env.get('device_name', report['device'])} ({report['device']}), Python {report['python']}, "
        f"torch {env.get('versions', {}).get('torch', '?')}: {report['wall_s']} s in all\n\n"
    )
    lines = ["| path | status | wall (s) | CPU (s) | figures |", "| --- | --- | --- | --- | --- |"]
    for name, r in report["paths"].items():
        text = r.get("error", "") if r["status"] != "ran" else headline(name, r["figures"])
        lines.append(f"| {name} | {r['status']} | {r.get('wall_s', '')} | {r.get('cpu_s', '')} | {text.replace('|', '/')} |")
    return head + "\n".join(lines) + "\n"


def headline(name: str, f: dict) -> str:
    """The figures of a path in a table cell."""
    if name == "prepare":
        return f"models: tiny {f['tiny_parameters']:,} and large {f['large_parameters']:,} parameters"
    if name == "sft":
        mfu = f"MFU {100 * f['mfu']:.1f}%" if f.get("mfu") is not None else "MFU n/a (CPU)"
        return f"{f['trained_tokens']:,} tokens in {f['steps']} steps: {f['tokens_per_s']:,.0f} tokens/s, {mfu}"
    if name == "sft_resume":
        return f"killed at step {f['killed_at_step']}, resumed from step {f['resumed_from_step']}, finished at step {f['steps']}"
    if name == "dpo":
        return f"{f['steps']} steps, {f['steps_per_s']} steps/s, losses {f['losses']}, last reward margin {f['last_reward_margin']}"
    if name == "grpo":
        rewards = [s.get("reward") for s in f["per_step"]]
        return f"{f['steps']} steps, {f['steps_per_s']} steps/s, reward per step {rewards}, mean length {f['mean_completion_length']}"
    if name == "generation":
        return f"{f['completion_tokens']:,} tokens for {f['requests']} requests: {f['tokens_per_s']:,.0f} tokens/s"
    if name == "budget_forcing":
        return "; ".join(
            f"budget {b['budget']}: max thinking {b['max_thinking_tokens']}, {b['capped']}/{b['items']} capped, "
            f"{b['tokens_per_s']:,.0f} tokens/s"
            for b in f["budgets"]
        )
    if name == "accelerate":
        return f"{f['accelerate_config']} ({f['distributed_type']}), {f['steps']} steps, world size {f['world_size']}"
    return json.dumps(f)[:200]


def orchestrate(args: argparse.Namespace) -> int:
    device = "cpu" if args.cpu else "cuda"
    sizes = CPU if args.cpu else CUDA
    out = Path(args.out or REPO / "benchmarks" / "results" / ("gpu_check_cpu" if args.cpu else "gpu_check"))
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if args.budget_s is None:
        args.budget_s = 900.0 if args.cpu else 480.0
    started = time.monotonic()
    deadline = started + args.budget_s
    report: dict = {"device": device, "python": sys.version.split()[0], "budget_s": args.budget_s, "paths": {}}
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        work = Path(tmp)
        (work / "results").mkdir()
        site = work / "site"
        try:
            report["packages"] = install_missing(Path(args.wheels), site, cuda=not args.cpu)
        except RuntimeError as exc:
            report["packages"] = {"error": str(exc)}
            print(f"gpu_check: {exc}", file=sys.stderr)
        env = child_env(work, site, args.cpu)
        if "error" not in report["packages"]:
            prep = run_child("prepare", device, work, env, max(1.0, min(sizes.limits_s["prepare"], deadline - time.monotonic())), logs)
            report["prepare"] = prep
            if prep["status"] == "ran":
                report["environment"] = prep["figures"].pop("environment")
        ready = report.get("prepare", {}).get("status") == "ran"

        def one(name: str) -> dict:
            left = deadline - time.monotonic()
            if not ready:
                why = report["packages"].get("error") or f"prepare failed: {report.get('prepare', {}).get('error')}"
                r = {"status": "failed", "error": f"not run: {why}"}
            elif left < 5:
                r = {"status": "failed", "error": f"not run: the check's budget of {args.budget_s:.0f} s was spent"}
            else:
                r = run_child(name, device, work, env, min(sizes.limits_s[name], left), logs)
            print(f"gpu_check: {name}: {r['status']} {r.get('error', '')}", file=sys.stderr, flush=True)
            return r

        names = args.paths or list(PATHS)
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # one GPU: one path at a time, by default
            report["paths"] = dict(zip(names, pool.map(one, names)))
    report["wall_s"] = round(time.monotonic() - started, 1)
    report["failed"] = [n for n, r in report["paths"].items() if r["status"] != "ran"]
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown({**report, "paths": {**({"prepare": report["prepare"]} if "prepare" in report else {}), **report["paths"]}})
    (out / "gpu_check.md").write_text(table)
    print(table)
    return 1 if report["failed"] or report.get("prepare", {}).get("status") != "ran" else 0


# --- the children: one per path ---------------------------------------------------------------------


def models_dir(work: Path) -> Path:
    return work / "models"


def save(work: Path, name: str, figures: dict) -> None:
    (work / "results" / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")


def pinned() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints" / "pipeline.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonical(name)] = version.strip()
    return pins


def child_prepare(work: Path, sizes: Sizes, cuda: bool) -> dict:
    """The models (tiny through the models stage; the large one from the same tokenizer) and the data."""
    import torch
    from transformers import AutoTokenizer

    sys.path.insert(0, str(REPO / "benchmarks"))
    from sft_throughput import make_dataset

    from distillery.config import GenerateConfig, ModelsConfig, TinyModelsConfig
    from distillery.stages import models

    if cuda and not torch.cuda.is_available():
        raise RuntimeError("CUDA is not available to torch here: run on a GPU node, or pass --cpu for the dry run")
    if cuda and not torch.cuda.is_bf16_supported():
        raise RuntimeError(f"{torch.cuda.get_device_name(0)} has no bf16, which the recipe trains in")
    root = models_dir(work)
    cfg = ModelsConfig.model_validate({"tiny": {"teacher_epochs": 0, "judge_epochs": 0, "max_position_embeddings": 4096}})
    template = GenerateConfig.model_fields["prompt_template"].default
    models.run(
        cfg,
        SEED,
        template,
        models.Paths(corpus=REPO / cfg.tiny.corpus, judge_template=REPO / "prompts/judge.txt", models=root, metrics=work / "models.json"),
    )
    tokenizer = AutoTokenizer.from_pretrained(root / "student_base")
    large_cfg = TinyModelsConfig.model_validate({**sizes.large, "max_position_embeddings": 32768})
    with torch.device("cuda" if cuda else "cpu"):  # random init where it is fast
        large = models.new_model(tokenizer, large_cfg, SEED)
    if cuda:
        large = large.to(torch.bfloat16)
    large.save_pretrained(root / "large")
    tokenizer.save_pretrained(root / "large")
    shape = {"parameters": sum(p.numel() for p in large.parameters()), "layers": large_cfg.num_layers, "hidden": large_cfg.hidden_size}
    (root / "large" / "shape.json").write_text(json.dumps(shape))
    tiny_params = sum(p.numel() for p in models.new_model(tokenizer, cfg.tiny, SEED).parameters())
    del large
    make_dataset(work / "dataset", sizes.sft_rows)
    write_pairs(work / "dataset", work / "pairs.parquet")

    pins = pinned()
    names = ["torch", "transformers", "accelerate", "tokenizers", "huggingface-hub", "safetensors", "numpy", "pyarrow", "fsspec"]
    names += [n for n in wheel_list() if n not in names]
    versions = {n: installed_version(n) for n in names}
    env = {
        "device_name": torch.cuda.get_device_name(0) if cuda else "CPU",
        "cuda": torch.version.cuda,
        "versions": versions,
        "not_as_pinned": {
            n: {"here": v, "pinned": pins[n]} for n, v in versions.items() if n in pins and (v or "").split("+")[0] != pins[n]
        },
    }
    return {"tiny_parameters": tiny_params, "large_parameters": shape["parameters"], "large_shape": shape, "environment": env}


def write_pairs(dataset: Path, path: Path) -> None:
    """Preference pairs in the preferences stage's table from the SFT rows: chosen = the row's
    conversation, rejected = the same reasoning ending in another answer."""
    import polars as pl

    from distillery.provenance import stamp
    from distillery.tables import PREFERENCE_PAIRS, write_table

    rows = pl.read_parquet(dataset / "default" / "train-00000-of-00001.parquet").to_dicts()
    pairs = []
    for i, r in enumerate(rows):
        user, assistant = r["messages"]
        wrong = assistant["content"].replace(f"\\boxed{{{r['answer']}}}", f"\\boxed{{{int(r['answer']) + 1}}}")
        pairs.append(
            {
                "uuid": r["uuid"],
                "pair_index": 0,
                "prompt": [user],
                "chosen": [assistant],
                "rejected": [{"role": "assistant", "content": wrong}],
                "rejected_kind": "wrong",
                "chosen_sample_index": 0,
                "rejected_sample_index": 1,
                "chosen_request_key": f"k{i}a",
                "rejected_request_key": f"k{i}b",
                "chosen_completion_tokens": 0,
                "rejected_completion_tokens": 0,
            }
        )
    schema = {c: t for c, t in PREFERENCE_PAIRS.schema.items() if not c.startswith("preferences_")}
    write_table(stamp(pl.DataFrame(pairs, schema=schema), "preferences", {}), path, PREFERENCE_PAIRS)


def recipe():
    from distillery.config import load_params

    return load_params(RECIPE)


def token_lengths(model: Path, dataset: Path, max_length: int) -> list[int]:
    """The tokens each conversation trains on (its chat-templated text, cut at max_length)."""
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    rows = pq.read_table(dataset / "default" / "train-00000-of-00001.parquet", columns=["messages"]).to_pylist()
    texts = [tok.apply_chat_template(r["messages"], tokenize=False) for r in rows]
    return [min(max_length, len(ids)) for ids in tok(texts, add_special_tokens=False)["input_ids"]]


def model_flops(lengths: list[int], parameters: int, layers: int, hidden: int) -> float:
    """Training FLOPs the model needs for these sequences (recomputation by gradient checkpointing not
    counted, as MFU has it): 6 per parameter per token for the matrix products (forward and backward;
    the tied embedding counted once, for the output layer), plus causal attention's scores and
    weighted values, 6 * layers * hidden * length^2 per sequence."""
    return sum(6 * parameters * s + 6 * layers * hidden * s * s for s in lengths)


def peak_flops(device_name: str) -> float | None:
    return next((peak for key, peak in PEAK_BF16 if key in device_name), None)


def gpu_memory() -> dict:
    import torch

    if not torch.cuda.is_available():
        return {}
    return {"peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}


def child_sft(work: Path, sizes: Sizes, cuda: bool) -> dict:
    import torch

    from distillery.stages import sft

    r = recipe().sft
    large = models_dir(work) / "large"
    cfg = r.model_copy(
        update={
            "model": str(large),
            "max_length": sizes.sft_max_length,
            "max_steps": None,
            "num_train_epochs": 1,  # every row once: the trained tokens are known
            "save_steps": 10**6,
            "bf16": cuda,
            "launch": r.launch.model_copy(update={"accelerate_config": None}),
        }
    )
    out = work / "sft"
    report = sft.run(cfg, SEED, sft.Paths(dataset_dir=work / "dataset", model=out / "model", metrics=out / "metrics.json"))
    lengths = token_lengths(large, work / "dataset", cfg.max_length)
    shape = json.loads((large / "shape.json").read_text())
    runtime = report["runtime_s"]
    flops = model_flops(lengths, shape["parameters"], shape["layers"], shape["hidden"])
    name = torch.cuda.get_device_name(0) if cuda else "CPU"
    peak = peak_flops(name) if cuda else None
    return {
        "model_parameters": shape["parameters"],
        "rows": report["rows"],
        "steps": report["steps"],
        "trained_tokens": sum(lengths),
        "longest_sequence": max(lengths),
        "train_runtime_s": runtime,
        "tokens_per_s": round(sum(lengths) / runtime, 1),
        "model_tflops_per_s": round(flops / runtime / 1e12, 2),
        "peak_tflops_per_s": peak / 1e12 if peak else None,
        "mfu": round(flops / runtime / peak, 4) if peak else None,
        "train_loss": report["train_loss"],
        "settings": {
            k: getattr(cfg, k)
            for k in (
                "bf16",
                "gradient_checkpointing",
                "attn_implementation",
                "packing",
                "max_length",
                "per_device_train_batch_size",
                "gradient_accumulation_steps",
                "rope_theta",
            )
        },
        "liger_kernel": report["liger_kernel"],
        **gpu_memory(),
    }


def sft_command(work: Path, cfg: dict, name: str) -> list[str]:
    out = work / name
    return [
        sys.executable,
        "-m",
        "distillery",
        "sft",
        "--config",
        json.dumps({**cfg, "seed": SEED}),
        "--dataset-dir",
        str(work / "dataset"),
        "--model",
        str(out / "model"),
        "--metrics",
        str(out / "metrics.json"),
        "--checkpoints",
        str(out / "ckpt"),
        "--run-figures",
        str(out / "run.json"),
    ]


def tiny_sft_config(work: Path, cuda: bool, **over) -> dict:
    r = recipe().sft
    return {
        **r.model_dump(mode="json"),
        "model": str(models_dir(work) / "student_base"),
        "bf16": cuda,
        "launch": {**r.launch.model_dump(mode="json"), "accelerate_config": None},
        **over,
    }


def child_sft_resume(work: Path, sizes: Sizes, cuda: bool) -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    from support.training import kill_at_first_checkpoint

    cfg = tiny_sft_config(
        work, cuda, max_length=sizes.resume_max_length, max_steps=sizes.resume_steps, save_steps=2, save_total_limit=1, logging_steps=1
    )
    cmd = sft_command(work, cfg, "sft_resume")
    killed_at = kill_at_first_checkpoint(cmd, work / "sft_resume" / "ckpt", dict(os.environ))
    again = subprocess.run(cmd, capture_output=True, text=True)
    if again.returncode:
        raise RuntimeError(f"the re-run after the kill failed: {again.stderr.strip().splitlines()[-1:]}")
    figures = json.loads((work / "sft_resume" / "run.json").read_text())
    steps = json.loads((work / "sft_resume" / "metrics.json").read_text())["steps"]
    if figures["resumed_from_step"] != killed_at or steps != sizes.resume_steps:
        raise RuntimeError(f"resumed from step {figures['resumed_from_step']} (killed at {killed_at}), finished at {steps}")
    return {
        "killed_at_step": killed_at,
        "resumed_from_step": figures["resumed_from_step"],
        "steps": steps,
        "runtime_s": figures["runtime_s"],
    }


def child_dpo(work: Path, sizes: Sizes, cuda: bool) -> dict:
    from distillery.stages import dpo

    r = recipe().dpo
    cfg = r.model_copy(
        update={
            "model": str(models_dir(work) / "large"),
            "max_length": sizes.dpo_max_length,
            "max_steps": sizes.dpo_steps,
            "gradient_accumulation_steps": 2,  # the recipe's 16, scaled down
            "logging_steps": 1,
            "save_steps": 10**6,
            "bf16": cuda,
            "launch": r.launch.model_copy(update={"accelerate_config": None}),
        }
    )
    out = work / "dpo"
    report = dpo.run(cfg, SEED, dpo.Paths(pairs=work / "pairs.parquet", model=out / "model", metrics=out / "metrics.json"))
    return {
        "steps": report["steps"],
        "pairs_per_step": cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps,
        "steps_per_s": report["steps_per_s"],
        "runtime_s": report["runtime_s"],
        "losses": [report["first_logged_loss"], report["last_logged_loss"]],
        "last_reward_margin": report["last_reward_margin"],
        "last_reward_accuracy": report["last_reward_accuracy"],
        **gpu_memory(),
    }


def child_grpo(work: Path, sizes: Sizes, cuda: bool) -> dict:
    from distillery.stages import grpo
    from distillery.stages.build import split_file

    params = recipe()
    r = params.grpo
    generation = r.generation.model_copy(
        update={"use_vllm": False, "num_generations": sizes.grpo_generations, "max_completion_length": sizes.grpo_completion}
    )
    cfg = r.model_copy(
        update={
            "model": str(models_dir(work) / "large"),
            "generation": generation,
            "per_device_train_batch_size": sizes.grpo_batch,
            "gradient_accumulation_steps": 1,
            "max_steps": sizes.grpo_steps,
            "logging_steps": 1,
            "save_steps": 10**6,
            "bf16": cuda,
            "verify_workers": 2,
            "launch": r.launch.model_copy(update={"accelerate_config": None}),
        }
    )
    out = work / "grpo"
    report = grpo.run(
        cfg,
        SEED,
        params.verify,
        # GRPO trains on the difficulty stage's kept problems (uuid, problem, answer); the dataset's
        # default split has those columns, so it stands in for them.
        grpo.Paths(problems=split_file(work / "dataset", "default"), model=out / "model", metrics=out / "m.json", steps=out / "steps.json"),
    )
    if len(report["per_step"]) != report["steps"]:
        raise RuntimeError(f"{report['steps']} steps but {len(report['per_step'])} logged")
    return {
        "steps": report["steps"],
        "completions_per_step": cfg.per_device_train_batch_size,
        "num_generations": generation.num_generations,
        "max_completion_length": generation.max_completion_length,
        "steps_per_s": report["steps_per_s"],
        "runtime_s": report["runtime_s"],
        "rewards": report["rewards"],
        "per_step": report["per_step"],
        "mean_completion_length": round(sum(s["completion_mean_length"] or 0 for s in report["per_step"]) / len(report["per_step"]), 1),
        **gpu_memory(),
    }


def llm_config(work: Path, cuda: bool, batch_size: int):
    return recipe().evaluate.llm.model_copy(
        update={
            "backend": "transformers",
            "model": str(models_dir(work) / "large"),
            "device": "cuda" if cuda else "cpu",
            "dtype": "bfloat16" if cuda else "float32",
            "batch_size": batch_size,
        }
    )


def child_generation(work: Path, sizes: Sizes, cuda: bool) -> dict:
    from distillery.config import Sampling
    from distillery.llm import Request, make_backend

    backend = make_backend(llm_config(work, cuda, sizes.gen_batch))
    try:
        sampling = Sampling(temperature=0.6, top_p=0.95, max_new_tokens=sizes.gen_tokens)
        list(backend.generate([Request("warmup", (("user", "Warm up."),), SEED)], sampling.model_copy(update={"max_new_tokens": 4})))
        requests = [Request(f"r{i}", (("user", f"Problem {i}: what is {i} + {i}?"),), SEED) for i in range(sizes.gen_prompts)]
        t = time.perf_counter()
        done = list(backend.generate(requests, sampling))
        wall = time.perf_counter() - t
    finally:
        backend.close()
    errors = [c.error for c in done if c.text is None]
    if errors or len(done) != len(requests):
        raise RuntimeError(f"{len(errors)} of {len(requests)} requests failed, e.g. {errors[:1]}")
    over = [c.completion_tokens for c in done if c.completion_tokens > sizes.gen_tokens]
    if over:
        raise RuntimeError(f"completions over max_new_tokens {sizes.gen_tokens}: {over}")
    tokens = sum(c.completion_tokens for c in done)
    return {
        "requests": len(done),
        "batch_size": sizes.gen_batch,
        "max_new_tokens": sizes.gen_tokens,
        "completion_tokens": tokens,
        "finish_reasons": {r: sum(c.finish_reason == r for c in done) for r in sorted({c.finish_reason for c in done})},
        "wall_s": round(wall, 2),
        "tokens_per_s": round(tokens / wall, 1),
        **gpu_memory(),
    }


def child_budget_forcing(work: Path, sizes: Sizes, cuda: bool) -> dict:
    from distillery.stages import evaluate

    ev = recipe().evaluate
    bf = ev.budget_forcing.model_copy(update={"budgets": list(sizes.budgets), "answer_max_tokens": sizes.answer_tokens})
    cfg = ev.model_copy(update={"llm": llm_config(work, cuda, 8), "budget_forcing": bf, "modes": ["budget_forcing"]})
    items = [evaluate.Item("check", str(i), f"What is {i} + {i}?", str(2 * i), "math") for i in range(sizes.bf_items)]
    out = []
    for budget in sizes.budgets:
        task = evaluate.EvaluateTask(cfg, SEED, f"budget_forcing_{budget}")
        t = time.perf_counter()
        traces = task.force_budget(items, budget)
        wall = time.perf_counter() - t
        failed = [tr.failed for tr in traces if tr.failed or tr.answer is None or tr.answer.text is None]
        if failed:
            raise RuntimeError(f"budget {budget}: {len(failed)} of {len(traces)} generations failed, e.g. {failed[:1]}")
        thinking = [len(tr.thinking) for tr in traces]
        if max(thinking) > budget:
            raise RuntimeError(f"budget {budget} exceeded: thinking of {thinking} tokens")
        out.append(
            {
                "budget": budget,
                "items": len(traces),
                "max_thinking_tokens": max(thinking),
                "mean_thinking_tokens": round(sum(thinking) / len(thinking), 1),
                "capped": sum(tr.capped for tr in traces),
                "ignores_appended": sum(tr.ignores for tr in traces),
                "requests": sum(tr.rounds for tr in traces),
                "wall_s": round(wall, 2),
                "generated_tokens": task.stats.generated_tokens,
                # Over the time in the backend, model loads included: the task opens the backend for each round.
                "tokens_per_s": task.stats.tokens_per_s,
            }
        )
    return {"end_of_thinking": bf.end_of_thinking, "num_ignore": bf.num_ignore, "budgets": out, **gpu_memory()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_accelerate(work: Path, sizes: Sizes, cuda: bool) -> dict:
    """`distillery sft` with a launch config, as the Slurm rule runs it: it starts `accelerate launch` of itself."""
    import yaml

    config = recipe().sft.launch.accelerate_config if cuda else "configs/accelerate/cpu.yaml"
    launch = {"accelerate_config": str(REPO / config), "processes_per_node": 1, "main_process_port": free_port()}
    cfg = tiny_sft_config(
        work, cuda, max_length=sizes.resume_max_length, max_steps=sizes.accelerate_steps, save_steps=10**6, logging_steps=1, launch=launch
    )
    # This node only, even inside a Slurm job of several nodes (the launcher would start one per node).
    env = {k: v for k, v in os.environ.items() if k not in ("SLURM_JOB_ID", "SLURM_JOB_NODELIST")}
    done = subprocess.run(sft_command(work, cfg, "accelerate"), capture_output=True, text=True, env=env)
    sys.stderr.write(done.stderr[-20000:])
    if done.returncode:
        raise RuntimeError(f"`distillery sft` under accelerate launch failed (exit {done.returncode}); see this path's log")
    if "accelerate.commands.launch" not in done.stderr:
        raise RuntimeError("the sft command trained in its own process: accelerate launch was not used")
    metrics = json.loads((work / "accelerate" / "metrics.json").read_text())
    run = json.loads((work / "accelerate" / "run.json").read_text())
    distributed = yaml.safe_load((REPO / config).read_text()).get("distributed_type")
    return {
        "accelerate_config": config,
        "distributed_type": distributed,
        "steps": metrics["steps"],
        "world_size": metrics["world_size"],
        "runtime_s": run["runtime_s"],
    }


CHILDREN = {
    "prepare": child_prepare,
    "sft": child_sft,
    "sft_resume": child_sft_resume,
    "dpo": child_dpo,
    "grpo": child_grpo,
    "generation": child_generation,
    "budget_forcing": child_budget_forcing,
    "accelerate": child_accelerate,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu", action="store_true", help="the dry run: every path with tiny sizes on CPU")
    ap.add_argument("--wheels", default=str(REPO / ".gpu-wheels"), help="the folder `make gpu-wheels` fills (default .gpu-wheels)")
    ap.add_argument("--out", default=None, help="where the JSON, the table and the logs go (default benchmarks/results/gpu_check[_cpu])")
    ap.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help="the whole check's time limit (default 480 s, 900 with --cpu); each path also has its own",
    )
    ap.add_argument("--paths", nargs="+", choices=PATHS, help="run only these paths")
    ap.add_argument("--jobs", type=int, default=1, help="paths run at once (default 1: their timings do not share the device)")
    ap.add_argument("--child", choices=list(CHILDREN), help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--device", choices=["cpu", "cuda"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        import logging

        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        os.chdir(REPO)
        cuda = args.device == "cuda"
        work = Path(args.work)
        figures = CHILDREN[args.child](work, CUDA if cuda else CPU, cuda)
        save(work, args.child, figures)
        return
    sys.exit(orchestrate(args))


if __name__ == "__main__":
    main()
