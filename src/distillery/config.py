"""Typed models of params.yaml: one section per stage plus `base`.

params.yaml is both Snakemake's configfile and DVC's params file, so it is validated here, before
any job starts. Every stage receives only its own section (plus the base values the rule passes
explicitly) as JSON on its command line and re-validates it with the same model.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from distillery.errors import ConfigError

PROBLEM_PLACEHOLDER = "{problem}"


class Section(BaseModel):
    # A misspelt key is an error, never silently ignored; strict: `n: true` is not 1, "5" is not 5.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _one_problem_placeholder(template: str) -> str:
    found = template.count(PROBLEM_PLACEHOLDER)
    if found != 1:
        raise ValueError(f"must contain {PROBLEM_PLACEHOLDER} exactly once (found {found})")
    return template


# --- shared blocks -------------------------------------------------------------------------------


class BenchmarkFile(Section):
    """A benchmark (a .jsonl/.json/.parquet file or a hub dataset id): decontamination reference
    and evaluation set."""

    path: str  # a local file, or a hub id such as HuggingFaceH4/MATH-500
    split: str = "test"  # hub ids only; a local file is one split
    revision: str | None = None  # hub ids only
    problem_field: str = "problem"
    answer_field: str = "answer"  # for multiple_choice: the correct option's text
    id_field: str | None = None
    # multiple_choice (GPQA): the options are the answer plus these fields, shuffled per item with
    # the seed and lettered A, B, C...; the model answers with a letter.
    kind: Literal["math", "multiple_choice"] = "math"
    incorrect_fields: list[str] = []

    @model_validator(mode="after")
    def _choices(self) -> BenchmarkFile:
        if self.kind == "multiple_choice" and not 1 <= len(self.incorrect_fields) <= 25:
            raise ValueError("a multiple_choice benchmark needs incorrect_fields: the fields of the wrong options (1 to 25)")
        return self


class OpenAIEndpoint(Section):
    """One or more OpenAI-compatible servers (vLLM serve, SGLang, a router)."""

    base_urls: list[str] = Field(["http://127.0.0.1:8000/v1"], min_length=1)
    # Name of the environment variable holding the key; the key itself never enters params.
    api_key_env: str = "OPENAI_API_KEY"
    max_in_flight: int = Field(1000, ge=1)  # requests in flight from this client, all servers together
    max_in_flight_per_server: int = Field(56, ge=1)  # OpenR1 ran 56 per server
    timeout_s: float = Field(3600.0, gt=0)  # per request; R1 traces of 16k tokens take many minutes
    # Retries on connection errors, timeouts, 429 and 5xx, with exponential backoff and jitter.
    max_retries: int = Field(8, ge=0)
    retry_max_wait_s: float = Field(60.0, gt=0)
    # native: one request asks for n samples; split: n requests of one sample each. Samples a
    # server leaves out of a native request are asked for again one by one.
    n_mode: Literal["native", "split"] = "native"


class VLLMEngine(Section):
    """vLLM's offline engine (backend `vllm`)."""

    tensor_parallel_size: int = Field(1, ge=1)
    pipeline_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    max_model_len: int | None = None
    enforce_eager: bool = False
    # Any other vllm.LLM argument, passed unchanged (e.g. max_num_seqs, enable_prefix_caching).
    engine_args: dict[str, Any] = {}


class Serve(Section):
    """Start a serving engine inside the job, across the nodes of its Slurm allocation, and point
    the openai backend at it; the server stops when the job ends or is cancelled."""

    engine: Literal["none", "vllm", "sglang"] = "none"
    # 0: a free port, picked when the job starts, so shard jobs sharing a node never collide.
    port: int = Field(0, ge=0, le=65535)
    tensor_parallel_size: int = Field(1, ge=1)  # over all nodes of the allocation (OpenR1: 16 on 2 nodes)
    pipeline_parallel_size: int = Field(1, ge=1)  # vllm only
    max_model_len: int | None = None
    extra_args: list[str] = []  # passed to the server unchanged, e.g. ["--reasoning-parser", "deepseek_r1"]
    health_timeout_s: float = Field(3600.0, gt=0)  # loading a 671B model takes 30+ minutes
    stop_timeout_s: float = Field(60.0, gt=0)  # SIGTERM, then SIGKILL after this long


class LLM(Section):
    """Which model answers, and through which backend."""

    backend: Literal["transformers", "openai", "vllm"] = "transformers"
    model: str  # hub id or local directory, loaded through the same code path
    revision: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "cpu"  # transformers backend: cpu, cuda, auto
    # transformers: prompts per forward pass; vllm: prompts per engine call. Finished work is
    # journaled after each batch, so this is also the most a killed job redoes.
    batch_size: int = Field(8, ge=1)
    openai: OpenAIEndpoint = OpenAIEndpoint()
    vllm: VLLMEngine = VLLMEngine()
    serve: Serve = Serve()

    @model_validator(mode="after")
    def _serve_needs_openai(self) -> LLM:
        if self.serve.engine != "none" and self.backend != "openai":
            raise ValueError(
                f"serve.engine {self.serve.engine!r} starts a server, which only backend `openai` talks to (backend is {self.backend!r})"
            )
        return self


class Sampling(Section):
    temperature: float = Field(0.6, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    max_new_tokens: int = Field(16384, ge=1)


# --- stages --------------------------------------------------------------------------------------


class ColumnFilter(Section):
    question_type: list[str] = []
    problem_type: list[str] = []
    source: list[str] = []


class SampleConfig(Section):
    source: str  # local .jsonl/.json/.parquet file, or a hub dataset id
    split: str = "train"
    revision: str | None = None
    n: int | None = Field(None, ge=1)  # None: every row that passes the filters
    require_answer: bool = True
    drop_synthetic: bool = True
    valid_only: bool = True  # keep problem_is_valid / solution_is_valid == "Yes" where present
    max_problem_chars: int = Field(20000, ge=1)
    include: ColumnFilter = ColumnFilter()  # empty list: no restriction
    exclude: ColumnFilter = ColumnFilter()


class TinyModelsConfig(Section):
    """Smoke-test models built locally: a BPE tokenizer and Qwen2-architecture models."""

    # NuminaMath-shaped rows (problem, solution, answer) the tokenizer, teacher and judge learn from.
    # A fixed file, not the sample: growing the sample must not change the teacher.
    corpus: str = "data/bundled/numina_sample.jsonl"
    vocab_size: int = Field(1024, ge=300)
    hidden_size: int = 128
    intermediate_size: int = 256
    num_layers: int = Field(2, ge=1)
    num_heads: int = 4
    num_kv_heads: int = 2
    max_position_embeddings: int = 2048
    teacher_epochs: int = Field(40, ge=0)
    judge_epochs: int = Field(6, ge=0)
    learning_rate: float = Field(3e-3, gt=0)
    batch_size: int = Field(8, ge=1)

    @model_validator(mode="after")
    def _head_dim(self) -> TinyModelsConfig:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        head_dim = self.hidden_size // self.num_heads
        # vLLM's CPU attention rejects small head dims; later stages run these models in vLLM.
        if head_dim < 32 or head_dim % 16:
            raise ValueError(f"head_dim = hidden_size/num_heads = {head_dim}; use 32, 64, 80, 96, 112, 128, ...")
        if self.num_heads % self.num_kv_heads:
            raise ValueError("num_heads must be a multiple of num_kv_heads")
        return self


class ModelsConfig(Section):
    build_tiny: bool = True  # false: the recipe's models come from the hub and nothing is built
    tiny: TinyModelsConfig = TinyModelsConfig()


class ProblemPrompt(Section):
    """A section that renders problems into a user prompt."""

    # The instruction is part of the lineage: OpenR1's generation script used this form.
    prompt_template: str = "You will be given a problem. Please reason step by step, and put your final answer within \\boxed{}:\n{problem}"

    @field_validator("prompt_template")
    @classmethod
    def _has_placeholder(cls, v: str) -> str:
        return _one_problem_placeholder(v)


class GenerateConfig(ProblemPrompt):
    llm: LLM
    sampling: Sampling = Sampling()
    system_prompt: str | None = None
    num_generations: int = Field(2, ge=1)
    num_shards: int = Field(1, ge=1)


class LatexExtraction(Section):
    """math_verify.LatexExtractionConfig with its NormalizationConfig."""

    enabled: bool = True
    boxed_match_priority: int = 0  # 0: a \boxed{} wins over every other LaTeX match
    try_extract_without_anchor: bool = False  # False: only anchored answers ("answer is", \boxed)
    basic_latex: bool = True
    units: bool = True  # strip units: "5 \text{ cm}" is 5
    malformed_operators: bool = True  # repair "\\frac12" (OpenR1's reward: False; R1 writes \\dfrac12)
    nits: bool = False
    boxed: Literal["all", "last", "none"] = "all"
    # OpenR1 set True ("x = 3" compared as 3); math-verify 0.9 deprecates it: its parser does this itself.
    equations: bool = False


class Extraction(Section):
    """How math-verify finds the answer in a text: which extraction configs, in which mode."""

    latex: LatexExtraction = LatexExtraction()
    expr: bool = False  # ExprExtractionConfig: plain expressions ("1/2") outside LaTeX
    expr_without_anchor: bool = True
    strings: list[str] = []  # StringExtractionConfig: literal answers such as MCQ letters
    extraction_mode: Literal["first_match", "any_match"] = "first_match"
    fallback_mode: Literal["no_fallback", "first_match"] = "first_match"


# math-verify's own parse() default, which OpenR1's accuracy reward used for the gold.
GOLD_EXTRACTION = Extraction(
    latex=LatexExtraction(
        boxed_match_priority=50, try_extract_without_anchor=True, units=True, malformed_operators=True, nits=True, equations=False
    ),
    expr=True,
)
# OpenR1's accuracy reward for the prediction (open-r1 src/open_r1/rewards.py).
PREDICTION_EXTRACTION = Extraction()


class VerifyConfig(Section):
    workers: int = Field(2, ge=1)  # bounded by the rule's threads
    timeout_s: int = Field(5, ge=1)  # math-verify's own timeouts, per parse and per verify (signal based)
    # Hard outer deadline per generation: past it the worker is killed and the generation is a
    # `timeout`. Catches what ignores math-verify's signal (a power tower inside one C call).
    item_deadline_s: float = Field(30.0, gt=0)
    max_answer_chars: int = Field(1000, ge=1)  # a longer boxed answer is `answer_too_long`, never parsed
    # A power tower, an exponent of 5+ digits, a factorial of a power: `too_complex` at once, where
    # sympy would only time out after `timeout_s` of CPU (verification.too_complex).
    precheck_complexity: bool = True
    # last: the last \boxed{} after the reasoning is the answer. all_agree: every box there must be right.
    multiple_boxes: Literal["last", "all_agree"] = "last"
    exact_match_first: bool = True  # equal normalized strings, or two plain integers, are decided without sympy
    wrap_gold: bool = True  # wrap gold in $...$ before parsing; unwrapped golds miss many matches
    gold: Extraction = GOLD_EXTRACTION
    prediction: Extraction = PREDICTION_EXTRACTION
    float_rounding: int = Field(6, ge=0)
    numeric_precision: int = Field(15, ge=1)
    strict: bool = True  # False: variables and function names may differ, e.g. f(x) = x vs g(x) = x
    # True: an interval gold matches the same set written as an inequality ("(2, 5]" vs "2 < x \\le 5").
    allow_set_relation_comp: bool = True


class JudgeConfig(Section):
    llm: LLM
    sampling: Sampling = Sampling(temperature=0.0, top_p=1.0, max_new_tokens=256)
    prompt_template: str = "prompts/judge.txt"  # a file with {problem}, {reference_answer}, {candidate_answer}
    # Which generations are judged. unsolved_problems (OpenR1): complete generations of problems
    # that have no math-verify-correct complete generation and a non-empty gold.
    policy: Literal["unsolved_problems", "all_failures"] = "unsolved_problems"
    # The judge sees the end of the answer, not thousands of tokens of thinking.
    candidate_tail_chars: int = Field(600, ge=50)


class NearDedupeConfig(Section):
    """MinHash LSH near-duplicate dedupe over token shingles (rensa)."""

    enabled: bool = True
    # Tokens per shingle and the Jaccard a pair needs: on synthetic problems with one or two numbers
    # reworded, 2 and 0.7 found 966 of 967 planted pairs with no false pair (3 and 0.7: 944).
    shingle_size: int = Field(2, ge=1)
    num_perm: int = Field(128, ge=8)
    bands: int = Field(32, ge=1)  # LSH bands; rows per band = num_perm / bands
    threshold: float = Field(0.7, gt=0, le=1)

    @model_validator(mode="after")
    def _bands_divide_perms(self) -> NearDedupeConfig:
        if self.num_perm % self.bands:
            raise ValueError(f"dedupe.near.bands ({self.bands}) must divide dedupe.near.num_perm ({self.num_perm})")
        return self


class DedupeConfig(Section):
    exact: bool = True
    keep: Literal["first_by_key", "most_correct"] = "first_by_key"
    near: NearDedupeConfig = NearDedupeConfig()
    decontaminate: bool = True
    ngram: int = Field(8, ge=1)
    # OpenR1: one shared n-gram flags a problem. Boilerplate ("of all positive integers n such that
    # n") makes single shared 8-grams common; verbatim copies share tens. Raise to flag fewer.
    min_matching_ngrams: int = Field(1, ge=1)
    benchmarks: list[str] = []  # names from base.benchmarks


class SplitConfig(Section):
    # Sources whose problems go to the `default` config; every other source goes to `extended`.
    default_sources: list[str] = []


class BuildConfig(Section):
    selection: Literal["math_verify", "judge", "either"] = "either"
    choice: Literal["random", "shortest", "first"] = "random"
    splits: SplitConfig = SplitConfig()


class SFTLaunch(Section):
    """How the sft stage runs: in this process (null accelerate_config), or under `accelerate launch`
    with the given config on every node of the job's Slurm allocation (one launcher per node)."""

    accelerate_config: str | None = None  # e.g. configs/accelerate/zero3.yaml
    processes_per_node: int = Field(1, ge=1)  # GPUs per node
    main_process_port: int = Field(29500, ge=1, le=65535)


class SFTConfig(Section):
    model: str
    revision: str | None = None
    splits: list[Literal["default", "extended"]] = ["default"]
    learning_rate: float = Field(5e-5, gt=0)
    num_train_epochs: float = Field(3, gt=0)
    max_length: int = Field(32768, ge=16)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    lr_scheduler_type: str = "linear"
    weight_decay: float = Field(0.0, ge=0)
    per_device_train_batch_size: int = Field(1, ge=1)
    gradient_accumulation_steps: int = Field(2, ge=1)
    bf16: bool = False
    packing: bool = False
    assistant_only_loss: bool = True
    use_liger_kernel: bool = False
    gradient_checkpointing: bool = False
    logging_steps: int = Field(10, ge=1)
    # A checkpoint every save_steps optimizer steps; a killed run resumes from the last one.
    save_steps: int = Field(500, ge=1)
    save_total_limit: int = Field(2, ge=1)
    launch: SFTLaunch = SFTLaunch()
    # Applied to the model config by code (OpenR1 users hand-edited config.json for this).
    rope_theta: float | None = None
    max_position_embeddings: int | None = None


class EvalBenchmark(Section):
    n: int = Field(1, ge=1)  # samples per problem; pass@1 is averaged over them
    limit: int | None = Field(None, ge=1)  # first `limit` problems, for smoke tests


# OpenR1's GPQA prompt (from simple-evals, as lighteval uses it).
MULTIPLE_CHOICE_TEMPLATE = (
    "Answer the following multiple choice question. The last line of your response should be of the following "
    "format: 'Answer: $LETTER' (without quotes) where LETTER is one of {letters}. Think step by step before "
    "answering.\n\n{problem}\n\n{choices}"
)


class EvaluateConfig(ProblemPrompt):
    llm: LLM
    sampling: Sampling = Sampling(max_new_tokens=32768)
    # sampled: `sampling` with each benchmark's n samples (pass@1 averaged over them, as published);
    # greedy: temperature 0, one sample. Each mode is reported on its own, never mixed.
    modes: list[Literal["sampled", "greedy"]] = Field(["sampled"], min_length=1)
    multiple_choice_template: str = MULTIPLE_CHOICE_TEMPLATE
    benchmarks: dict[str, EvalBenchmark] = {}  # names from base.benchmarks
    workers: int = Field(2, ge=1)
    timeout_s: int = Field(5, ge=1)


class LightevalConfig(Section):
    """lighteval's own numbers for the student (opt-in: `snakemake data/lighteval/results.json`),
    run in its own environment: lighteval pins a latex2sympy2_extended that math-verify 0.9 cannot use."""

    model: str = "data/sft/model"
    tasks: list[str] = ["lighteval|math_500|0", "lighteval|aime24|0", "lighteval|aime25|0", "lighteval|gpqa:diamond|0"]
    sampling: Sampling = Sampling(max_new_tokens=32768)
    dtype: str = "bfloat16"
    max_model_length: int = Field(32768, ge=16)
    gpu_memory_utilization: float = Field(0.8, gt=0, le=1)
    tensor_parallel_size: int = Field(1, ge=1)
    max_samples: int | None = Field(None, ge=1)  # per task, for smoke runs


class ReportConfig(Section):
    """The report stage: small plot data for `dvc plots` (plots/report/) and figures for
    `snakemake --report` (reports/)."""

    # Completion-token edges of the generation length histogram: bins [e0, e1), [e1, e2), ... and
    # a last open bin [e_last, inf). Fixed in params, never derived from the data, so that two
    # versions' histograms overlay bin for bin in `dvc plots diff`.
    length_bins: list[int] = Field([0, 1024, 2048, 4096, 8192, 16384], min_length=1)
    # Published models (distillery.published) whose scores are drawn beside ours.
    compare_with: list[str] = ["OpenR1-Qwen-7B"]

    @field_validator("length_bins")
    @classmethod
    def _increasing(cls, edges: list[int]) -> list[int]:
        if edges[0] < 0 or any(b <= a for a, b in zip(edges, edges[1:])):
            raise ValueError(f"must be non-negative and strictly increasing, got {edges}")
        return edges

    @field_validator("compare_with")
    @classmethod
    def _published(cls, names: list[str]) -> list[str]:
        from distillery.published import PUBLISHED

        unknown = sorted(set(names) - set(PUBLISHED))
        if unknown:
            raise ValueError(f"names {unknown}, which distillery/published.py does not list (listed: {sorted(PUBLISHED)})")
        return names


class BaseConfig(Section):
    seed: int = 42
    benchmarks: dict[str, BenchmarkFile] = {}


class Params(Section):
    base: BaseConfig
    sample: SampleConfig
    models: ModelsConfig
    generate: GenerateConfig
    verify: VerifyConfig
    judge: JudgeConfig
    dedupe: DedupeConfig
    build: BuildConfig
    sft: SFTConfig
    evaluate: EvaluateConfig
    report: ReportConfig
    lighteval: LightevalConfig

    @model_validator(mode="after")
    def _benchmark_names(self) -> Params:
        known = set(self.base.benchmarks)
        for where, names in (("dedupe.benchmarks", self.dedupe.benchmarks), ("evaluate.benchmarks", self.evaluate.benchmarks)):
            unknown = sorted(set(names) - known)
            if unknown:
                raise ValueError(f"{where} names {unknown}, which base.benchmarks does not define (defined: {sorted(known)})")
        return self

    @model_validator(mode="after")
    def _tiny_models_are_built(self) -> Params:
        if self.models.build_tiny:
            return self
        for where, model in (
            ("generate.llm.model", self.generate.llm.model),
            ("judge.llm.model", self.judge.llm.model),
            ("sft.model", self.sft.model),
        ):
            if Path(model).parts[:2] == ("data", "models"):
                raise ValueError(
                    f"{where} = {model!r} is made by the models stage, which models.build_tiny: false turns off; "
                    "name a hub id or a local model directory, or set models.build_tiny: true"
                )
        return self


STAGE_MODELS: dict[str, type[Section]] = {
    "lighteval": LightevalConfig,
    "sample": SampleConfig,
    "models": ModelsConfig,
    "generate": GenerateConfig,
    "verify": VerifyConfig,
    "judge": JudgeConfig,
    "dedupe": DedupeConfig,
    "build": BuildConfig,
    "sft": SFTConfig,
    "evaluate": EvaluateConfig,
    "report": ReportConfig,
}


# --- validation with one readable message per problem --------------------------------------------


def _describe(err: dict[str, Any], prefix: str) -> str:
    loc = ".".join(str(p) for p in err["loc"])
    key = f"{prefix}.{loc}" if prefix and loc else (prefix or loc or "<root>")
    if err["type"] == "extra_forbidden":
        return f"{key}: unknown key (value {err['input']!r}); check the spelling against the documented keys"
    if err["type"] == "missing":
        return f"{key}: required key is missing"
    value = err.get("input")
    shown = repr(value) if not isinstance(value, dict) else "{...}"
    if len(shown) > 120:
        shown = shown[:117] + "..."
    allowed = err["msg"]
    ctx = err.get("ctx") or {}
    if "expected" in ctx:
        allowed = f"expected {ctx['expected']}"
    return f"{key} = {shown}: {allowed}"


def format_validation_error(exc: ValidationError, source: str, prefix: str = "") -> str:
    lines = [f"{source} is invalid:"]
    lines += [f"  - {_describe(e, prefix)}" for e in exc.errors(include_url=False)]
    return "\n".join(lines)


def validate_params(raw: Any, source: str = "params.yaml") -> Params:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must be a mapping of sections (base, sample, ...), got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


class _StrictLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping (PyYAML keeps the last one silently)."""


def _mapping_without_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(
                f"key {key!r} appears twice in one block (lines {seen[key]} and {key_node.start_mark.line + 1}): "
                "YAML would keep only the second one; merge the two blocks"
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def read_params_yaml(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} not found: copy params.yaml from the repository or a file from recipes/")
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None


def _default_of(path: str) -> Any:
    """The code default of a dotted params key, shown in the message for a missing key."""
    model: Any = Params
    default: Any = None
    for part in path.split("."):
        if typing.get_origin(model) is dict:  # a named entry (base.benchmarks.<name>): its value type
            model, default = typing.get_args(model)[1], None
            continue
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            return None
        field = fields[part]
        default = field.get_default(call_default_factory=True)
        model = field.annotation
    return default.model_dump(mode="json") if isinstance(default, BaseModel) else default


def require_every_key(params: Params, source: str) -> Params:
    """Every key is explicit in a params file, so dvc.lock records everything that made an output."""
    missing = unset_fields(params)
    if missing:
        lines = [
            f"{source} leaves {len(missing)} key(s) to code defaults; every key is set explicitly (dvc.lock then "
            "records everything that produced an output), so add:"
        ]
        for key in missing:
            lines.append(f"  - {key}: {json.dumps(_default_of(key))}")
        raise ConfigError("\n".join(lines))
    return params


def validate_params_file(raw: Any, source: str = "params.yaml") -> Params:
    """`raw` (Snakemake's config: the file plus any --config overrides) validated, with the file
    itself checked for keys given twice, and every key required."""
    if Path(source).is_file():
        read_params_yaml(source)  # duplicate keys: PyYAML (and so Snakemake) silently keeps the last
    return require_every_key(validate_params(raw, source), source)


def load_params(path: str | Path = "params.yaml") -> Params:
    return require_every_key(validate_params(read_params_yaml(path), str(path)), str(path))


class StageExtras(Section):
    """What a rule passes a stage besides its params section (validated like the section: a
    misspelt or missing extra is an error, never an empty default)."""

    seed: int


class ModelsExtras(StageExtras):
    prompt_template: str  # generate.prompt_template: the teacher learns to answer it


class BenchmarkExtras(StageExtras):
    benchmark_files: dict[str, BenchmarkFile]  # base.benchmarks entries of the names the stage uses


class BuildExtras(StageExtras):
    card_settings: dict[str, Any]  # the teacher, judge and verifier settings the dataset card records


STAGE_EXTRAS: dict[str, type[StageExtras]] = {
    "models": ModelsExtras,
    "dedupe": BenchmarkExtras,
    "evaluate": BenchmarkExtras,
    "build": BuildExtras,
}


def _extras(stage: str, section: Section, raw: dict[str, Any]) -> StageExtras:
    model = STAGE_EXTRAS.get(stage, StageExtras)
    try:
        extras = model.model_validate(raw)
    except ValidationError as exc:
        takes = ", ".join(sorted(model.model_fields))
        raise ConfigError(
            format_validation_error(exc, f"the extras passed to stage {stage} (it takes: {takes}; see stage_json() in rules/<stage>.smk)")
        ) from None
    if isinstance(extras, BenchmarkExtras):
        used = getattr(section, "benchmarks", [])
        if stage == "dedupe" and not getattr(section, "decontaminate", True):
            used = []
        missing = sorted(set(used) - set(extras.benchmark_files))
        if missing:
            raise ConfigError(
                f"stage {stage}: {stage}.benchmarks names {missing} but benchmark_files has no entry for them; "
                "pass their base.benchmarks entries (benchmarks_json in rules/common.smk)"
            )
    return extras


def stage_config(stage: str, section: Section, **extra: Any) -> str:
    """The JSON a rule passes to a stage's CLI: its validated section plus its extras, checked
    against the stage's extras model here too, so a misspelt extra stops the Snakefile at parse time."""
    payload = section.model_dump(mode="json")
    payload.update(_extras(stage, section, extra).model_dump(mode="json"))
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def parse_stage_config(stage: str, text: str) -> tuple[Section, StageExtras]:
    """Inverse of stage_config: the validated section and the validated extras (e.g. seed)."""
    model = STAGE_MODELS[stage]
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--config for stage {stage} is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ConfigError(f"--config for stage {stage} must be a JSON object (its params section and extras)")
    extras = {k: payload.pop(k) for k in list(payload) if k not in model.model_fields}
    try:
        section = model.model_validate(payload)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, f"config of stage {stage}", prefix=stage)) from None
    return section, _extras(stage, section, extras)


def unset_fields(model: BaseModel, prefix: str = "") -> list[str]:
    """Keys that a params file leaves to code defaults (the shipped files set every key explicitly,
    so that DVC's params record everything that produced an output)."""
    missing: list[str] = []
    for name in type(model).model_fields:
        key = f"{prefix}{name}"
        if name not in model.model_fields_set:
            missing.append(key)
            continue
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            missing += unset_fields(value, key + ".")
        elif isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, BaseModel):
                    missing += unset_fields(v, f"{key}.{k}.")
    return missing
