"""What several stages' configs share: `Section` (strict, frozen), the benchmark file, the LLM
and its endpoints, sampling, the problem prompt, training, and the validators they use.

Each stage's own model is in `distillery.config.<stage>`, which a stage imports alone, so its code
identity (distillery.code_identity) holds this module and its own config, not the others'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.fields import FieldInfo

PROBLEM_PLACEHOLDER = "{problem}"


class Section(BaseModel):
    # A misspelt key is an error, never silently ignored; strict: `n: true` is not 1, "5" is not 5.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def is_execution(field: FieldInfo) -> bool:
    """A field marked `json_schema_extra={"execution": True}`: it decides how or where a stage runs,
    not what it produces (distillery.provenance leaves it out of `<stage>_params`)."""
    extra = field.json_schema_extra
    return isinstance(extra, dict) and extra.get("execution") is True


def _one_problem_placeholder(template: str) -> str:
    found = template.count(PROBLEM_PLACEHOLDER)
    if found != 1:
        raise ValueError(f"must contain {PROBLEM_PLACEHOLDER} exactly once (found {found})")
    unknown_placeholders(template, ("problem",))
    return template


def unknown_placeholders(template: str, known: tuple[str, ...]) -> str:
    """`template`, when every `{name}` in it is one that is filled; a ValueError otherwise (an
    unknown one would reach the model literally). Braces after a LaTeX command, a closing brace, ^
    or _ (\\boxed{answer}, \\frac{a}{b}, x^{n}) are LaTeX, not placeholders."""
    from distillery.prompts import placeholders_in

    unknown = sorted(set(placeholders_in(template)) - set(known))
    if unknown:
        raise ValueError(
            f"has the placeholder(s) {', '.join('{' + u + '}' for u in unknown)}, which nothing fills (it would reach the "
            f"model as written); the placeholders are {', '.join('{' + k + '}' for k in known)}: rename or remove it"
        )
    return template


# The data files the stages read; any other file type is refused at config time, not taken for a hub id.
DATA_FILE_SUFFIXES = (".jsonl", ".json", ".parquet")


# Suffixes of data files in other formats (a hub id has none of these).
OTHER_DATA_SUFFIXES = (
    ".csv",
    ".tsv",
    ".txt",
    ".xlsx",
    ".xls",
    ".arrow",
    ".feather",
    ".gz",
    ".bz2",
    ".xz",
    ".zst",
    ".zip",
    ".tar",
    ".yaml",
    ".yml",
)


def _data_source(value: str) -> str:
    """A .jsonl/.json/.parquet file or a hub dataset id; a file of another format is named as such
    (not first called a hub id with no pinned revision)."""
    suffix = Path(value).suffix.lower()
    if suffix in DATA_FILE_SUFFIXES:
        return value
    if suffix in OTHER_DATA_SUFFIXES or Path(value).is_file():
        kind = f"a {suffix} file" if suffix else "a local file without a suffix"
        raise ValueError(
            f"is {kind}, which is not a supported format: convert it to .jsonl, .json or .parquet (polars: "
            "pl.read_csv(path).write_parquet(...)), or name a hub dataset id (owner/name)"
        )
    return value


class BenchmarkFile(Section):
    """A benchmark (a .jsonl/.json/.parquet file or a hub dataset id): decontamination reference
    and evaluation set."""

    path: str = Field(description="A local .jsonl/.json/.parquet file, or a hub dataset id such as HuggingFaceH4/MATH-500.")
    split: str = Field("test", description="Dataset split to read; hub ids only (a local file is one split).")
    revision: str | None = Field(None, description="Hub commit, branch or tag to read; hub ids only. null: the latest.")
    problem_field: str = Field("problem", description="Column holding the problem text.")
    answer_field: str = Field("answer", description="Column holding the gold answer; for multiple_choice, the correct option's text.")
    id_field: str | None = Field(None, description="Column holding the item id. null: the row number.")
    kind: Literal["math", "multiple_choice"] = Field(
        "math",
        description="math: a free-form answer checked by math-verify. multiple_choice (GPQA): the options are the answer plus "
        "`incorrect_fields`, shuffled per item with the seed and lettered A, B, C...; the model answers with a letter.",
    )
    incorrect_fields: list[str] = Field([], description="multiple_choice only: the columns holding the wrong options (1 to 25).")

    @field_validator("path")
    @classmethod
    def _path_format(cls, v: str) -> str:
        return _data_source(v)

    @model_validator(mode="after")
    def _choices(self) -> BenchmarkFile:
        if self.kind == "multiple_choice" and not 1 <= len(self.incorrect_fields) <= 25:
            raise ValueError("a multiple_choice benchmark needs incorrect_fields: the fields of the wrong options (1 to 25)")
        return self


class OpenAIEndpoint(Section):
    """One or more OpenAI-compatible servers (vLLM serve, SGLang, a router)."""

    base_urls: list[str] = Field(
        ["http://127.0.0.1:8000/v1"], min_length=1, description="Base URLs of the servers; requests are spread over all of them."
    )
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="Name of the environment variable holding the API key; the key itself never enters params."
    )
    max_in_flight: int = Field(1000, ge=1, description="Requests in flight from this client, all servers together.")
    max_in_flight_per_server: int = Field(56, ge=1, description="Requests in flight per server (OpenR1 ran 56 per server).")
    timeout_s: float = Field(3600.0, gt=0, description="Timeout per request, in seconds; R1 traces of 16k tokens take many minutes.")
    max_retries: int = Field(
        8, ge=0, description="Retries on connection errors, timeouts, 429 and 5xx, with exponential backoff and jitter."
    )
    retry_max_wait_s: float = Field(60.0, gt=0, description="Longest wait between two retries, in seconds.")
    n_mode: Literal["native", "split"] = Field(
        "native",
        description="native: one request asks for n samples; split: n requests of one sample each. Samples a server leaves "
        "out of a native request are asked for again one by one.",
    )


class VLLMEngine(Section):
    """vLLM's offline engine (backend `vllm`)."""

    tensor_parallel_size: int = Field(1, ge=1, description="GPUs each model is split over (tensor parallelism).")
    pipeline_parallel_size: int = Field(1, ge=1, description="Pipeline-parallel stages.")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="Fraction of each GPU's memory vLLM may take (0 to 1).")
    max_model_len: int | None = Field(None, description="Context length in tokens, prompt and completion together. null: the model's own.")
    enforce_eager: bool = Field(False, description="true: no CUDA graphs (eager mode); slower, but starts faster and uses less memory.")
    engine_args: dict[str, Any] = Field(
        {}, description="Any other vllm.LLM argument, passed unchanged (e.g. max_num_seqs, enable_prefix_caching)."
    )


class Serve(Section):
    """Start a serving engine inside the job, across the nodes of its Slurm allocation, and point
    the openai backend at it; the server stops when the job ends or is cancelled."""

    engine: Literal["none", "vllm", "sglang"] = Field(
        "none", description="The server to start inside the job (needs backend `openai`). none: use the servers in `openai.base_urls`."
    )
    port: int = Field(
        0, ge=0, le=65535, description="Server port. 0: a free port picked when the job starts, so shard jobs sharing a node never collide."
    )
    tensor_parallel_size: int = Field(
        1, ge=1, description="GPUs the model is split over, across all nodes of the allocation (OpenR1: 16 on 2 nodes)."
    )
    pipeline_parallel_size: int = Field(1, ge=1, description="Pipeline-parallel stages; vllm only.")
    max_model_len: int | None = Field(None, description="Context length in tokens, prompt and completion together. null: the model's own.")
    extra_args: list[str] = Field([], description='Arguments passed to the server unchanged, e.g. ["--reasoning-parser", "deepseek_r1"].')
    health_timeout_s: float = Field(
        3600.0, gt=0, description="How long to wait for the server to become healthy, in seconds; loading a 671B model takes 30+ minutes."
    )
    stop_timeout_s: float = Field(60.0, gt=0, description="On stop: SIGTERM, then SIGKILL after this many seconds.")


class LLM(Section):
    """Which model answers, and through which backend."""

    backend: Literal["transformers", "openai", "vllm"] = Field(
        "transformers",
        description="transformers: in this process; openai: OpenAI-compatible servers (`openai`, or one started by `serve`); "
        "vllm: vLLM's offline engine (`vllm`).",
    )
    model: str = Field(description="Hub id or local model directory, loaded through the same code path.")
    revision: str | None = Field(None, description="Hub commit, branch or tag of the model. null: the latest.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description="Weight dtype. auto: the model config's.")
    device: str = Field("cpu", description="transformers backend only: cpu, cuda or auto.")
    batch_size: int = Field(
        8,
        ge=1,
        description="transformers: prompts per forward pass; vllm: prompts per engine call. Finished work is journaled after "
        "each batch, so this is also the most a killed job redoes.",
        json_schema_extra={"execution": True},
    )
    openai: OpenAIEndpoint = Field(
        OpenAIEndpoint(), description="The OpenAI-compatible servers (backend `openai`).", json_schema_extra={"execution": True}
    )
    vllm: VLLMEngine = Field(
        VLLMEngine(), description="Settings of vLLM's offline engine (backend `vllm`).", json_schema_extra={"execution": True}
    )
    serve: Serve = Field(
        Serve(), description="A server started inside the job for backend `openai`.", json_schema_extra={"execution": True}
    )

    @model_validator(mode="after")
    def _serve_needs_openai(self) -> LLM:
        if self.serve.engine != "none" and self.backend != "openai":
            raise ValueError(
                f"serve.engine {self.serve.engine!r} starts a server, which only backend `openai` talks to (backend is {self.backend!r})"
            )
        return self


class Sampling(Section):
    """How tokens are sampled."""

    temperature: float = Field(0.6, ge=0, description="Sampling temperature; 0: greedy.")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling: the smallest set of tokens holding this probability mass.")
    max_new_tokens: int = Field(16384, ge=1, description="Most tokens generated per completion; a longer answer is cut off (incomplete).")


RESERVED_SOURCE = "own"  # the project's own sample + generate, as mix names it


class ProblemPrompt(Section):
    """A section that renders problems into a user prompt."""

    prompt_template: str = Field(
        "You will be given a problem. Please reason step by step, and put your final answer within \\boxed{}:\n{problem}",
        description="The user prompt; {problem} (exactly once) is replaced by the problem. Part of the lineage: the default "
        "is the form OpenR1's generation script used.",
    )

    @field_validator("prompt_template")
    @classmethod
    def _has_placeholder(cls, v: str) -> str:
        return _one_problem_placeholder(v)


class SFTLaunch(Section):
    """How a training stage runs: in this process (null accelerate_config), or under `accelerate
    launch` with the given config on every node of the job's Slurm allocation (one launcher per node)."""

    accelerate_config: str | None = Field(
        None, description="accelerate config file, e.g. configs/accelerate/zero3.yaml. null: train in this process."
    )
    processes_per_node: int = Field(1, ge=1, description="Training processes per node (GPUs per node).")
    main_process_port: int = Field(29500, ge=1, le=65535, description="Port of accelerate's main process.")


def _named_splits(splits: list[str]) -> list[str]:
    if not splits:
        raise ValueError("is empty, so there is nothing to train on: name the dataset configs to train on, default and/or extended")
    if len(set(splits)) != len(splits):
        raise ValueError(f"names a config twice ({splits}): its rows would be trained on twice; name each once")
    return splits


class Training(Section):
    """What the training stages (sft, dpo, grpo) share: the model trained, the optimizer and schedule,
    checkpoints and launch. Each is mapped onto the installed TRL's config class by its stage."""

    model: str = Field(description="The model trained: hub id or local model directory.")
    revision: str | None = Field(None, description="Hub commit, branch or tag of the model. null: the latest.")
    learning_rate: float = Field(5e-5, gt=0, description="Peak learning rate.")
    num_train_epochs: float = Field(3, gt=0, description="Epochs over the data (fractions allowed).")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps. null: num_train_epochs decides.")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Fraction of the training steps spent warming the learning rate up.")
    lr_scheduler_type: str = Field("linear", description="transformers learning-rate schedule (linear, cosine, ...).")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    optim: str = Field("adamw_torch", description="transformers optimizer name (adamw_torch, adamw_torch_fused, ...).")
    per_device_train_batch_size: int = Field(1, ge=1, description="Sequences per device per step.")
    gradient_accumulation_steps: int = Field(2, ge=1, description="Steps accumulated per optimizer step.")
    bf16: bool = Field(False, description="Train in bfloat16 mixed precision.")
    attn_implementation: str | None = Field(
        None, description="transformers attention kernel (sdpa, flash_attention_2, eager). null: the model's default."
    )
    gradient_checkpointing: bool = Field(False, description="Recompute activations in the backward pass: less memory, more compute.")
    gradient_checkpointing_use_reentrant: bool = Field(
        False, description="torch's reentrant checkpointing (open-r1 sets use_reentrant: false, which DeepSpeed ZeRO-3 needs)."
    )
    use_liger_kernel: bool = Field(False, description="Use Liger's fused kernels (when liger-kernel and CUDA are there).")
    logging_steps: int = Field(10, ge=1, description="Log the training metrics every this many optimizer steps.")
    save_steps: int = Field(500, ge=1, description="A checkpoint every save_steps optimizer steps; a killed run resumes from the last one.")
    save_total_limit: int = Field(2, ge=1, description="Checkpoints kept; older ones are deleted.")
    launch: SFTLaunch = Field(SFTLaunch(), description="How the training runs: in this process or under `accelerate launch`.")


def model_settings(section: BaseModel, prefix: str = "") -> list[tuple[str, str, str | None]]:
    """(dotted key of the block, model, revision) of every block of `section` that names a model
    with a revision (an LLM, a training stage, a reward model), found by shape, so a new stage's
    model is guarded and tracked without a list to extend. Blocks naming no model are left out."""
    found: list[tuple[str, str, str | None]] = []
    if isinstance(getattr(section, "model", None), str) and "revision" in type(section).model_fields:
        found.append((prefix, section.model, section.revision))  # type: ignore[attr-defined]
    for name in type(section).model_fields:
        value = getattr(section, name)
        if isinstance(value, BaseModel):
            found += model_settings(value, f"{prefix}.{name}" if prefix else name)
    return found
