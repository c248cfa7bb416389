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
from pydantic.fields import FieldInfo

from distillery.errors import ConfigError

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


# --- shared blocks -------------------------------------------------------------------------------


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


# --- stages --------------------------------------------------------------------------------------


class ColumnFilter(Section):
    """Values of the source's columns; an empty list places no restriction."""

    question_type: list[str] = Field([], description="Values of the `question_type` column (e.g. proof, math-word-problem).")
    problem_type: list[str] = Field([], description="Values of the `problem_type` column (e.g. Algebra, Geometry).")
    source: list[str] = Field([], description="Values of the `source` column (e.g. olympiads, amc_aime).")


class SampleConfig(Section):
    source: str = Field(description="The problems: a local .jsonl/.json/.parquet file, or a hub dataset id.")
    split: str = Field("train", description="Dataset split to read; hub ids only.")
    revision: str | None = Field(None, description="Hub commit, branch or tag to read; pin a commit sha for a reproducible sample.")
    n: int | None = Field(
        None, ge=1, description="Problems to keep: the first n in an order derived from the seed. null: every row that passes the filters."
    )
    require_answer: bool = Field(True, description="Drop rows without a non-empty `answer`.")
    drop_synthetic: bool = Field(True, description="Drop rows whose `synthetic` column is true.")
    valid_only: bool = Field(True, description='Keep only rows whose problem_is_valid / solution_is_valid is "Yes", where present.')
    max_problem_chars: int = Field(20000, ge=1, description="Drop problems longer than this, in characters.")
    include: ColumnFilter = Field(ColumnFilter(), description="Keep only rows whose column value is listed; an empty list: no restriction.")
    exclude: ColumnFilter = Field(ColumnFilter(), description="Drop rows whose column value is listed.")

    @field_validator("source")
    @classmethod
    def _source_format(cls, v: str) -> str:
        return _data_source(v)


# The published corpora distillery.corpora maps (one adapter each); tests/test_corpora.py checks the lists agree.
CorpusLayout = Literal["openr1_math", "openthoughts", "bespoke_stratos", "dolphin_r1", "limo", "s1k", "s1k_1_1"]
RESERVED_SOURCE = "own"  # the project's own sample + generate, as mix names it


class Corpus(Section):
    """A published reasoning corpus read into the generation schema, so verify, judge, dedupe and build
    re-check it with this project's own verifier."""

    layout: CorpusLayout = Field(
        description="Its published layout: openr1_math (open-r1/OpenR1-Math-220k), openthoughts (open-thoughts/OpenThoughts-114k), "
        "bespoke_stratos (bespokelabs/Bespoke-Stratos-17k), dolphin_r1 (cognitivecomputations/dolphin-r1), limo (GAIR/LIMO), "
        "s1k (simplescaling/s1K), s1k_1_1 (simplescaling/s1K-1.1)."
    )
    path: str = Field(description="A local .jsonl/.json/.parquet file in that layout, or the hub dataset id.")
    config: str | None = Field(
        None, description="Hub dataset config (OpenR1-Math-220k: default, extended, all; dolphin-r1: reasoning-deepseek). null: none."
    )
    split: str = Field("train", description="Dataset split to read; hub ids only.")
    revision: str | None = Field(None, description="Hub commit, branch or tag to read; pin a commit sha for a reproducible read.")
    licence: str = Field(description="The corpus's licence (e.g. apache-2.0, mit): recorded in the card of any dataset built from it.")
    max_rows: int | None = Field(None, ge=1, description="Read only the first max_rows rows (a trial run). null: all.")

    @field_validator("path")
    @classmethod
    def _path_format(cls, v: str) -> str:
        return _data_source(v)


class IngestConfig(Section):
    corpora: dict[str, Corpus] = Field(
        {},
        description="Corpora to ingest, by a short name (the `corpus` of their rows; lowercase letters, digits, _ and -). "
        "Empty: no ingest and no mix; verify reads the project's own generations.",
    )

    @field_validator("corpora")
    @classmethod
    def _names(cls, corpora: dict[str, Corpus]) -> dict[str, Corpus]:
        import re

        for name in corpora:
            if name == RESERVED_SOURCE or not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
                raise ValueError(
                    f"corpus name {name!r}: use lowercase letters, digits, _ and - (and not {RESERVED_SOURCE!r}, mix's name for "
                    "the project's own generations)"
                )
        return corpora


class MixConfig(Section):
    """How the ingested corpora and the project's own generations are combined before verify (only
    when ingest.corpora names one)."""

    own: bool = Field(True, description="Include the project's own problems and generations (sample, generate). false: only the corpora.")
    caps: dict[str, int] = Field(
        {},
        description="At most this many problems from a source (`own` or an ingest.corpora name): a seeded draw, nested like "
        "sample.n (a larger cap keeps the smaller cap's problems). A source not named: all its problems.",
    )

    @field_validator("caps")
    @classmethod
    def _positive(cls, caps: dict[str, int]) -> dict[str, int]:
        bad = {k: v for k, v in caps.items() if v < 1}
        if bad:
            raise ValueError(f"caps must be at least 1 (got {bad}); leave a source out to keep all of it, or set own: false")
        return caps


class TinyModelsConfig(Section):
    """Smoke-test models built locally: a BPE tokenizer and Qwen2-architecture models."""

    corpus: str = Field(
        "data/bundled/numina_sample.jsonl",
        description="NuminaMath-shaped rows (problem, solution, answer) the tokenizer, teacher and judge learn from. A fixed "
        "file, not the sample: growing the sample must not change the teacher.",
    )
    vocab_size: int = Field(1024, ge=300, description="BPE tokenizer vocabulary size, in tokens.")
    hidden_size: int = Field(
        128, ge=32, description="Hidden size; hidden_size / num_heads (the head dim) must be a multiple of 16 and at least 32."
    )
    intermediate_size: int = Field(256, ge=1, description="MLP intermediate size.")
    num_layers: int = Field(2, ge=1, description="Transformer layers.")
    num_heads: int = Field(
        4, ge=1, description="Attention heads; must divide hidden_size (vLLM's CPU attention rejects head dims below 32)."
    )
    num_kv_heads: int = Field(2, ge=1, description="Key/value heads (grouped-query attention); must divide num_heads.")
    max_position_embeddings: int = Field(2048, ge=16, description="Longest sequence the models take, in tokens.")
    teacher_epochs: int = Field(40, ge=0, description="Training epochs of the teacher over the corpus.")
    judge_epochs: int = Field(10, ge=0, description="Training epochs of the judge.")
    learning_rate: float = Field(3e-3, gt=0, description="AdamW learning rate of the teacher and judge training.")
    batch_size: int = Field(8, ge=1, description="Training batch size, in sequences.")

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
    build_tiny: bool = Field(
        True, description="true: build the smoke-test models; false: the recipe's models come from the hub and nothing is built."
    )
    tiny: TinyModelsConfig = Field(TinyModelsConfig(), description="The smoke-test models built when build_tiny is true.")


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


class GenerateConfig(ProblemPrompt):
    llm: LLM = Field(description="The teacher: the model that writes the reasoning traces.")
    sampling: Sampling = Field(Sampling(), description="How the teacher samples.")
    system_prompt: str | None = Field(None, description="A system message before the prompt. null: none.")
    num_generations: int = Field(2, ge=1, description="Generations sampled per problem.")
    num_shards: int = Field(
        1,
        ge=1,
        description="Jobs the problems are split over, by a hash of their key: generate, verify and judge each run one job "
        "(one Slurm job) per shard.",
        json_schema_extra={"execution": True},
    )


class LatexExtraction(Section):
    """math_verify.LatexExtractionConfig with its NormalizationConfig."""

    enabled: bool = Field(True, description="Extract LaTeX answers (LatexExtractionConfig).")
    boxed_match_priority: int = Field(
        0,
        description="Priority of \\boxed{} matches. 0: a \\boxed{} wins over every other LaTeX match; 50: after final-answer "
        "patterns (math-verify's default); -1: never matched.",
    )
    try_extract_without_anchor: bool = Field(
        False, description='false: only anchored answers ("answer is", \\boxed); true: any LaTeX in the text.'
    )
    basic_latex: bool = Field(True, description="Basic LaTeX command replacements (\\mathrm, \\displaystyle, ...).")
    units: bool = Field(True, description='Strip units: "5 \\text{ cm}" is 5.')
    malformed_operators: bool = Field(
        True, description="Repair malformed operators such as \\frac12 (OpenR1's reward: false; R1 writes \\dfrac12)."
    )
    nits: bool = Field(False, description="Small formatting fixes (spaces, dots, ...).")
    boxed: Literal["all", "last", "none"] = Field(
        "all", description="Which boxed environments have their content extracted: all, the last, or none."
    )
    equations: bool = Field(
        False,
        description='Compare the right-hand side of an equation ("x = 3" as 3). OpenR1 set true; math-verify 0.9 deprecates it: '
        "its parser does this itself.",
    )


class Extraction(Section):
    """How math-verify finds the answer in a text: which extraction configs, in which mode."""

    latex: LatexExtraction = Field(LatexExtraction(), description="LaTeX extraction (LatexExtractionConfig).")
    expr: bool = Field(False, description='ExprExtractionConfig: also extract plain expressions ("1/2") outside LaTeX.')
    expr_without_anchor: bool = Field(
        True, description='With expr: plain expressions are extracted without an anchor such as "answer:" too.'
    )
    strings: list[str] = Field([], description="StringExtractionConfig: literal answers such as multiple-choice letters. []: none.")
    extraction_mode: Literal["first_match", "any_match"] = Field(
        "first_match", description="first_match: stop after the first match; any_match: try every match until one parses."
    )
    fallback_mode: Literal["no_fallback", "first_match"] = Field(
        "first_match",
        description="no_fallback: only parsed expressions count; first_match: the first matched string counts even if it did not parse.",
    )


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
    workers: int = Field(2, ge=1, description="Worker processes; bounded by the rule's threads.", json_schema_extra={"execution": True})
    timeout_s: int = Field(5, ge=1, description="math-verify's own timeouts, per parse and per verify (signal based), in seconds.")
    item_deadline_s: float = Field(
        30.0,
        gt=0,
        description="Hard outer deadline per generation, in seconds: past it the worker is killed and the generation is a "
        "`timeout`. Catches what ignores math-verify's signal (a power tower inside one C call).",
    )
    max_answer_chars: int = Field(1000, ge=1, description="A longer boxed answer, in characters, is `answer_too_long`, never parsed.")
    precheck_complexity: bool = Field(
        True,
        description="A power tower, an exponent of 5+ digits, a factorial of a power: `too_complex` at once, where sympy would "
        "only time out after `timeout_s` of CPU (verification.too_complex).",
    )
    multiple_boxes: Literal["by_gold", "last", "all_agree"] = Field(
        "by_gold",
        description="Several different \\boxed{} after the reasoning. by_gold: one answer, compared as a whole, where the "
        "gold has several parts (set, tuple, union, several values); a `hedged` generation where it has one. "
        "last: the last box is the answer. all_agree: every box must be right.",
    )
    exact_match_first: bool = Field(True, description="Equal normalized strings, or two plain integers, are decided without sympy.")
    wrap_gold: bool = Field(
        True,
        description="Wrap the gold in `$...$` before parsing; unwrapped golds miss many matches. A gold of bare words is then a "
        "product of one-letter symbols; GRPO's rewards tell such golds apart (rewards.word_gold: letters only, a word of 3+ "
        "letters or a capitalised one, not option letters) and give them None (grpo.rewards.accuracy.word_golds).",
    )
    gold: Extraction = Field(
        GOLD_EXTRACTION,
        description="How the gold answer is parsed: math-verify's parse() default, as OpenR1's accuracy reward parsed golds.",
    )
    prediction: Extraction = Field(
        PREDICTION_EXTRACTION,
        description="How the generation's answer is parsed: OpenR1's accuracy reward (open-r1 src/open_r1/rewards.py).",
    )
    float_rounding: int = Field(6, ge=0, description="Decimal places floats are rounded to before comparison.")
    numeric_precision: int = Field(15, ge=1, description="Significant digits of sympy's numeric evaluation.")
    strict: bool = Field(True, description="false: variables and function names may differ, e.g. f(x) = x vs g(x) = x.")
    allow_set_relation_comp: bool = Field(
        True, description='true: an interval gold matches the same set written as an inequality ("(2, 5]" vs "2 < x \\le 5").'
    )
    blank_boxes: Literal["skip", "count"] = Field(
        "skip",
        description="A box with nothing in it (\\boxed{}, \\boxed{\\phantom{2}}, \\boxed{\\quad}: a problem's blank restated). "
        "skip: not an answer, so it never makes a generation `hedged` or stands for its answer. count: a box like any other.",
    )
    degrees: Literal["convert", "drop_sign"] = Field(
        "convert",
        description="convert: a lone angle in degrees (60^\\circ, 60°) also equals the same angle in radians written with \\pi "
        "(\\frac{\\pi}{3}); a number without a degree sign is never taken for degrees. drop_sign: math-verify's own "
        "(60^\\circ is 60).",
    )
    repeating_decimals: bool = Field(
        True, description="Read a repeating decimal (0.1\\overline{6}, 0.\\dot{3}) as its exact fraction (1/6, 1/3), both sides."
    )
    choice_with_value: bool = Field(
        True,
        description="A gold naming an option and its value (\\textbf{(C) } 7) is answered by the letter, by the value, or by "
        "both (a wrong letter is wrong whatever the value); an answer of a letter with its value counts by its letter "
        "against a letter gold.",
    )
    imaginary_unit: bool = Field(
        True,
        description="Read i as the imaginary unit ((1+i)^2 = 2i, |3+4i| = 5) where a side has i and no other unknown; "
        "\\mathrm{i} is i. false: latex2sympy's plain symbol i.",
    )


class JudgeConfig(Section):
    llm: LLM = Field(description="The judge: the model that decides whether an answer matches the gold.")
    sampling: Sampling = Field(Sampling(temperature=0.0, top_p=1.0, max_new_tokens=256), description="How the judge samples.")
    prompt_template: str = Field(
        "prompts/judge.txt", description="A file holding the judge prompt, with {problem}, {reference_answer} and {candidate_answer}."
    )
    policy: Literal["unsolved_problems", "all_failures"] = Field(
        "unsolved_problems",
        description="Which generations are judged. unsolved_problems (OpenR1): complete generations of problems that have no "
        "math-verify-correct complete generation and a non-empty gold; all_failures: every complete generation with a non-empty gold "
        "that math-verify did not pass.",
    )
    candidate_tail_chars: int = Field(
        600, ge=50, description="Characters from the end of the answer the judge sees, not thousands of tokens of thinking."
    )

    @field_validator("prompt_template")
    @classmethod
    def _template_placeholders(cls, path: str) -> str:
        # Checked here when the file is at hand (Snakemake's parse, check-params); the stage checks it again.
        if Path(path).is_file():
            from distillery.prompts import load_judge_template

            load_judge_template(path)
        return path


class NearDedupeConfig(Section):
    """MinHash LSH near-duplicate dedupe over token shingles (rensa)."""

    enabled: bool = Field(True, description="Drop near duplicates.")
    shingle_size: int = Field(
        2,
        ge=1,
        description="Tokens per shingle. On realistic math text (benchmarks/dedupe_scale.py) 2 beats 1 (false pairs) and 3 "
        "(paraphrases and changed numbers missed).",
    )
    num_perm: int = Field(128, ge=8, description="MinHash permutations; bands must divide it.")
    bands: int = Field(32, ge=1, description="LSH bands; rows per band = num_perm / bands.")
    threshold: float = Field(
        0.6,
        gt=0,
        le=1,
        description="Estimated Jaccard similarity of the non-boilerplate shingles that makes a near duplicate (docs/design.md, "
        "dedupe: 0.7 missed 45% of one-sentence paraphrases).",
    )
    min_shingles: int = Field(
        5,
        ge=1,
        description="A text with fewer non-boilerplate shingles is left to exact dedupe: two such short texts share most of "
        "them by chance.",
    )
    boilerplate_share: float = Field(
        0.005,
        gt=0,
        le=1,
        description="A shingle found more often than this share of the rows (and than 50 rows) is boilerplate ('express your "
        "answer as a common fraction') and does not count; 1 counts every shingle.",
    )
    keep_different_answers: bool = Field(
        True,
        description="Never merge two near duplicates whose gold answers (the problems' `answer`, compared as normalized "
        "strings) are both given and differ: templated problems that differ only in their numbers are different problems. "
        "false: the texts alone decide. Exact dedupe and decontamination do not look at answers.",
    )

    @model_validator(mode="after")
    def _bands_divide_perms(self) -> NearDedupeConfig:
        if self.num_perm % self.bands:
            raise ValueError(f"dedupe.near.bands ({self.bands}) must divide dedupe.near.num_perm ({self.num_perm})")
        return self


class DedupeConfig(Section):
    exact: bool = Field(True, description="Drop problems whose normalized text an earlier-ranked problem has.")
    keep: Literal["first_by_key", "most_correct"] = Field(
        "first_by_key",
        description="Which duplicate is kept. first_by_key: the lowest uuid; most_correct: the one with the most correct generations.",
    )
    near: NearDedupeConfig = Field(NearDedupeConfig(), description="Near-duplicate dedupe (MinHash LSH).")
    decontaminate: bool = Field(True, description="Drop problems that share n-grams with the benchmarks.")
    ngram: int = Field(8, ge=1, description="Decontamination n-gram length, in tokens (lowercased runs of letters and digits).")
    min_matching_ngrams: int = Field(
        1,
        ge=1,
        description="Of one benchmark item's n-grams, how many a problem must hold to be flagged (all, when the item has fewer). "
        "OpenR1: one.",
    )
    min_item_coverage: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="Of one benchmark item's token bigrams, each weighted by how rare it is among the benchmark items, the "
        "share a problem that shares a retrieval n-gram with the item must hold to be flagged. A closing such as 'express "
        "your answer as a common fraction' is a small share; a copy, even lightly edited, most of it (benchmarks/"
        "decontamination.py). 0: every problem that shares a retrieval n-gram.",
    )
    benchmarks: list[str] = Field([], description="Benchmarks to decontaminate against: names from base.benchmarks.")


class SplitConfig(Section):
    """How the dataset's problems are split into its two configs."""

    default_sources: list[str] = Field(
        [], description="Sources whose problems go to the `default` config; every other source goes to `extended`."
    )


class RewardModel(Section):
    """The reward model of build.choice: reward_model (a sequence-classification model with one label)."""

    model: str | None = Field(
        None, description="Hub id or local directory of the reward model. null: none (choice reward_model needs one)."
    )
    revision: str | None = Field(None, description="Hub commit, branch or tag of the reward model. null: the latest.")
    batch_size: int = Field(8, ge=1, description="Conversations scored at once.", json_schema_extra={"execution": True})
    max_length: int = Field(4096, ge=16, description="Longest scored conversation, in tokens; longer ones are cut.")
    device: Literal["cpu", "auto"] = Field("cpu", description="cpu, or auto (a GPU when there is one; its floats differ from the CPU's).")


class BuildConfig(Section):
    selection: Literal["math_verify", "judge", "either"] = Field(
        "either",
        description="What makes a generation correct: math_verify, the judge, or either (OpenR1's recommended union). A problem "
        "is kept when one complete generation is correct.",
    )
    choice: Literal["random", "shortest", "first", "reward_model"] = Field(
        "random",
        description="Which correct generation becomes the assistant message: random (seeded by the seed and the problem key), "
        "the shortest, the first, or the one reward_model scores highest (OpenR1's ablation: no better than random).",
    )
    reward_model: RewardModel = Field(RewardModel(), description="The reward model of choice: reward_model.")
    splits: SplitConfig = Field(SplitConfig(), description="The dataset's default/extended configs.")

    @model_validator(mode="after")
    def _reward_model_named(self) -> BuildConfig:
        if self.choice == "reward_model" and not self.reward_model.model:
            raise ValueError("choice: reward_model needs reward_model.model (a hub id or a local sequence-classification model)")
        return self


class S1KCuration(Section):
    """s1K's method (Muennighoff et al. 2025, s1: quality, difficulty, diversity)."""

    subset_rows: int = Field(1000, ge=1, description="Problems to select (s1K: 1,000).")
    max_pass_rate: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Difficulty: drop problems whose correct share of generations is above this (too_easy). s1 dropped problems "
        "either of two weaker models solved; the teacher's own pass rate over its n generations stands in (ours).",
    )
    domain_field: Literal["problem_type", "source", "question_type"] = Field(
        "problem_type",
        description="The column whose value is a problem's domain (s1 classified questions by Mathematics Subject "
        "Classification, 50 domains in s1K; NuminaMath's problem_type is the label at hand).",
    )
    uniform_share: float = Field(
        0.7,
        ge=0,
        le=1,
        description="Share of the rows drawn with domains picked uniformly (s1's code: while fewer than 700 of 1,000 are "
        "selected; rounded half up); the rest pick domains by the mix of mix_sources. 1: uniform throughout (s1's paper).",
    )
    mix_sources: dict[str, float] = Field(
        {"amc_aime": 1.0},
        description="The weighted phase's target mix: the domain counts of the candidates whose `source` is listed, each "
        "source's counts scaled so its total is its weight. s1: AIME 1, GPQA 0.5 (GPQA's counts scaled to half of AIME's "
        "total); NuminaMath has no GPQA rows, so amc_aime alone. {}: no weighted phase.",
    )
    drop_bold_digit: bool = Field(
        True,
        description="Drop problems with a bold token holding a digit (reason bold_digit), with s1's own regex "
        "(distillery.curation.BOLD_DIGIT_RE: the digit may be anywhere later on the same line).",
    )


class LimoCuration(Section):
    """LIMO's method (Ye et al. 2025): rarely solved problems, the best-reasoned chains."""

    subset_rows: int = Field(817, ge=1, description="Problems to select (LIMO: 817).")
    min_correct: int = Field(1, ge=0, description="Keep problems with at least this many correct generations (LIMO: 1 of k).")
    max_correct: int = Field(3, ge=0, description="... and at most this many (LIMO: 3 of k=32 samples).")
    weights: dict[Literal["self_verification", "exploration", "elaboration", "length"], float] = Field(
        {"self_verification": 1.0, "exploration": 1.0, "elaboration": 0.5, "length": 0.5},
        description="Weights of the rule-based signs of quality the chains are ranked by. LIMO v3 published shares (length 30%, "
        "verification 20%, exploration 25%, connectives 25%) but not its keyword lists or scales; on ours (hits per 1,000 words, "
        "log(1 + words)) these weights are ours (distillery.curation).",
    )

    @model_validator(mode="after")
    def _bounds(self) -> LimoCuration:
        if self.min_correct > self.max_correct:
            raise ValueError(f"min_correct {self.min_correct} is above max_correct {self.max_correct}")
        return self


class CurateConfig(Section):
    method: Literal["s1k", "limo"] = Field("s1k", description="How the subset is cut: s1k (quality, difficulty, diversity) or limo.")
    split: Literal["default", "extended"] = Field("default", description="The built dataset config the subset is cut from.")
    selection: Literal["math_verify", "judge", "either"] = Field(
        "either", description="What makes a generation correct, for the pass rates (as build.selection)."
    )
    s1k: S1KCuration = Field(S1KCuration(), description="Settings of method s1k.")
    limo: LimoCuration = Field(LimoCuration(), description="Settings of method limo.")


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


class SFTConfig(Training):
    splits: list[Literal["default", "extended"]] = Field(["default"], description="The dataset configs trained on.")
    max_length: int = Field(32768, ge=16, description="Longest training sequence, in tokens; longer ones are truncated.")
    packing: bool = Field(False, description="Pack several examples into one sequence of max_length.")
    assistant_only_loss: bool = Field(True, description="Loss on the assistant's tokens only, not on the prompt.")
    rope_theta: float | None = Field(
        None, description="RoPE base set on the model config by code (OpenR1 users hand-edited config.json for this). null: unchanged."
    )
    max_position_embeddings: int | None = Field(
        None, description="Context length set on the model config by code, in tokens. null: unchanged."
    )

    @field_validator("splits")
    @classmethod
    def _some_split(cls, splits: list[str]) -> list[str]:
        return _named_splits(splits)


class PreferencesConfig(Section):
    selection: Literal["math_verify", "judge", "either"] = Field(
        "either", description="What makes a generation correct (as build.selection): math_verify, the judge, or either."
    )
    rejected_kinds: list[Literal["wrong", "truncated"]] = Field(
        ["wrong", "truncated"],
        min_length=1,
        description="What may be rejected: wrong (complete, not correct) and truncated (stopped by the length limit) generations.",
    )
    pairing: Literal["one_per_problem", "all_pairs", "hardest_negative"] = Field(
        "one_per_problem",
        description="one_per_problem: one seeded random correct and one seeded random rejected generation; all_pairs: every "
        "correct with every rejected one (capped by max_pairs_per_problem); hardest_negative: a seeded random correct one "
        "with the most plausible rejected one (a complete wrong answer before a truncated one, then the nearest in length).",
    )
    max_pairs_per_problem: int | None = Field(
        None, ge=1, description="all_pairs: at most this many pairs per problem, a seeded sample. null: all."
    )


class DPOConfig(Training):
    beta: float = Field(0.1, gt=0, description="DPO's beta: how far the policy may move from the reference model.")
    loss_type: str = Field(
        "sigmoid",
        description="TRL's DPO loss (sigmoid is the DPO paper's; ipo, hinge, ...): one of the values the installed TRL's "
        "DPOConfig lists, checked at config time.",
    )
    max_length: int = Field(32768, ge=16, description="Longest prompt + completion, in tokens; longer ones are truncated.")

    @field_validator("loss_type")
    @classmethod
    def _trl_loss(cls, value: str) -> str:
        from distillery.trl_options import check_choice

        return check_choice("dpo", "DPOConfig", "loss_type", value)


class GRPOGeneration(Section):
    """How GRPO samples its completions: plain generation (CPU, tests), or TRL's vLLM integration."""

    num_generations: int = Field(16, ge=2, description="Completions per prompt (the group whose rewards are compared).")
    max_completion_length: int = Field(1024, ge=1, description="Longest completion, in tokens; longer ones are truncated (clipped).")
    max_prompt_tokens: int = Field(
        1024, ge=1, description="Problems whose prompt is longer, in the model's tokens, are left out (counted by reason)."
    )
    temperature: float = Field(0.7, ge=0, description="Sampling temperature.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling.")
    use_vllm: bool = Field(False, description="Generate with vLLM (GPU) instead of the model's own generate().")
    vllm_mode: Literal["colocate", "server"] = Field(
        "colocate",
        description="colocate: vLLM shares the training GPUs; server: a `trl vllm-serve` on vllm_server_gpus GPUs of the node, "
        "started by the stage, and training on the others.",
    )
    vllm_gpu_memory_utilization: float = Field(
        0.3, gt=0, le=1, description="GPU memory share vLLM takes (colocate: of the training GPUs; server: of its own)."
    )
    vllm_tensor_parallel_size: int = Field(1, ge=1, description="vLLM's tensor parallelism (colocate: per training process).")
    vllm_server_gpus: int = Field(1, ge=1, description="server mode: GPUs of the node given to `trl vllm-serve`.")
    vllm_server_port: int = Field(8000, ge=1, le=65535, description="server mode: the port `trl vllm-serve` listens on.")
    vllm_server_timeout_s: int = Field(600, ge=1, description="server mode: how long to wait for `trl vllm-serve` to answer.")


class AccuracyReward(Section):
    weight: float | None = Field(1.0, description="Weight in the summed reward; 0: computed and logged only; null: off.")
    word_golds: Literal["unusable", "compare"] = Field(
        "unusable",
        description='A gold of bare words ("forty two", "Yes": letters only, with a word of 3+ letters or a capitalised '
        "one; rewards.word_gold) when verify.wrap_gold is on. unusable: None for every completion, as TRL's accuracy reward "
        "gives a gold it cannot parse (the accuracy and cosine rewards); compare: compared as math-verify reads it wrapped, "
        "a product of one-letter symbols (an anagram matches).",
    )


class CosineReward(Section):
    """Yeo et al. (arXiv 2502.03373): r = min + 0.5 (max - min) (1 + cos(pi * L / max_len)), with (min, max) =
    (min_correct, max_correct) for a correct answer and (max_wrong, min_wrong) for a wrong one."""

    weight: float | None = Field(None, description="Weight in the summed reward; 0: computed and logged only; null: off.")
    min_correct: float = Field(1.0, description="A correct answer's reward at max_len (the paper: 1).")
    max_correct: float = Field(2.0, description="A correct answer's reward at length 0 (the paper: 2).")
    min_wrong: float = Field(-10.0, description="A wrong answer's reward at length 0 (the paper: -10).")
    max_wrong: float = Field(0.0, description="A wrong answer's reward at max_len (the paper: 0).")
    max_len: int = Field(14336, ge=1, description="L_max, in completion tokens; longer completions count as max_len (the paper: 14336).")
    exceed_length: float | None = Field(
        -10.0, description="The reward of a truncated completion (the paper: -10). null: scored as a wrong answer."
    )


class RepetitionReward(Section):
    weight: float | None = Field(None, description="Weight in the summed reward; 0: computed and logged only; null: off.")
    unit: Literal["words", "tokens"] = Field("words", description="n-grams of whitespace-split lowercased words (open-r1) or of tokens.")
    ngram_size: int = Field(3, ge=1, description="n (open-r1: 3 words; the paper's dense variant: 40 tokens).")
    variant: Literal["share", "per_repeat"] = Field(
        "share",
        description="share: (1 - unique/total n-grams) * penalty (open-r1); per_repeat: penalty per repeated n-gram, summed "
        "(the paper's per-token penalty, as one reward per completion).",
    )
    penalty: float = Field(
        -1.0, le=0, description="share: the penalty of a fully repeated text (open-r1: -1); per_repeat: per repeat (the paper: -0.05)."
    )


class OverlongReward(Section):
    """DAPO's soft overlong punishment: 0 up to max_len - cache tokens, then linear to -1 at max_len, -1 beyond."""

    weight: float | None = Field(None, description="Weight in the summed reward; 0: computed and logged only; null: off.")
    max_len: int | None = Field(None, ge=1, description="In tokens. null: generation.max_completion_length.")
    cache: int = Field(512, ge=1, description="The soft zone's width, in tokens.")


class FormatReward(Section):
    weight: float | None = Field(None, description="Weight in the summed reward; 0: computed and logged only; null: off.")


class Rewards(Section):
    accuracy: AccuracyReward = Field(
        AccuracyReward(),
        description="1 when the answer after </think> matches the gold under verify's settings, 0 otherwise; truncated "
        "completions are never correct; an unusable gold gives no reward (None).",
    )
    cosine: CosineReward = Field(CosineReward(), description="Correctness scaled by length (Yeo et al.).")
    repetition: RepetitionReward = Field(RepetitionReward(), description="A penalty for repeated n-grams (reward hacking by repetition).")
    overlong: OverlongReward = Field(OverlongReward(), description="DAPO's soft overlong punishment.")
    format: FormatReward = Field(FormatReward(), description="1 when <think>...</think> appears exactly once, before the answer.")

    @model_validator(mode="after")
    def _one_reward_on(self) -> Rewards:
        weights = {name: getattr(self, name).weight for name in type(self).model_fields}
        if all(w is None for w in weights.values()):
            raise ValueError("every reward is off (weight: null): give at least one a weight")
        if all(not w for w in weights.values()):
            # 0 logs a reward without training on it: with every weight 0 or null the summed reward is
            # always 0.0, every advantage is 0 and GRPO learns nothing.
            on = ", ".join(f"{n}: {w}" for n, w in weights.items() if w is not None)
            raise ValueError(
                f"every reward weight is 0 or null ({on}), so the summed reward is always 0.0 and nothing is learned: "
                "give at least one reward a non-zero weight"
            )
        return self


class GRPOConfig(Training):
    splits: list[Literal["default", "extended"]] = Field(
        ["default"], description="The dataset configs whose problems (with a gold answer) are trained on."
    )
    generation: GRPOGeneration = Field(GRPOGeneration(), description="How completions are sampled.")
    rewards: Rewards = Field(Rewards(), description="The reward functions, each with its weight.")
    beta: float = Field(0.0, ge=0, description="KL coefficient against the reference model (0: no reference model is loaded).")
    loss_type: str = Field(
        "dapo",
        description="TRL's GRPO loss normalisation (grpo, bnpo, dr_grpo, dapo, ...): one of the values the installed TRL's "
        "GRPOConfig lists, checked at config time.",
    )
    scale_rewards: Literal["group", "batch", "none"] = Field(
        "group", description="Advantages divided by the group's (or batch's) std, or not."
    )
    num_iterations: int = Field(1, ge=1, description="Optimisation passes per generated batch (mu in the GRPO paper).")
    epsilon: float = Field(0.2, gt=0, description="PPO-style clipping of the policy ratio.")
    mask_truncated_completions: bool = Field(False, description="Leave truncated completions out of the loss (DAPO).")
    verify_workers: int = Field(
        2, ge=1, description="Worker processes that check answers for the accuracy reward.", json_schema_extra={"execution": True}
    )

    @field_validator("loss_type")
    @classmethod
    def _trl_loss(cls, value: str) -> str:
        from distillery.trl_options import check_choice

        return check_choice("grpo", "GRPOConfig", "loss_type", value)

    @field_validator("splits")
    @classmethod
    def _some_split(cls, splits: list[str]) -> list[str]:
        return _named_splits(splits)


class EvalBenchmark(Section):
    """How one benchmark is evaluated."""

    n: int = Field(1, ge=1, description="Samples per problem in mode sampled; pass@1 is averaged over them.")
    limit: int | None = Field(None, ge=1, description="Evaluate only the first `limit` problems, for smoke tests. null: all.")


# OpenR1's GPQA prompt (from simple-evals, as lighteval uses it).
MULTIPLE_CHOICE_TEMPLATE = (
    "Answer the following multiple choice question. The last line of your response should be of the following "
    "format: 'Answer: $LETTER' (without quotes) where LETTER is one of {letters}. Think step by step before "
    "answering.\n\n{problem}\n\n{choices}"
)


class BudgetForcing(Section):
    """s1's budget forcing (arXiv 2501.19393): the thinking held to each budget in turn, each budget a
    protocol of its own. Greedy, as s1 evaluates. The defaults are s1's evaluation code
    (simplescaling/s1, eval/lm-evaluation-harness/lm_eval/models/vllm_causallms.py, and eval/commands.sh
    for the fixed-budget runs); where ours differs it is a named option (docs/design.md)."""

    budgets: list[int] = Field(
        [500, 1000, 2000, 4000, 8000, 16000], min_length=1, description="Thinking budgets, in the model's tokens (s1: 500 to 16k)."
    )
    num_ignore: int = Field(
        0,
        ge=0,
        description="How many times an early end of thinking is replaced by ignore_string, at every budget without its own "
        "count in num_ignore_by_budget. s1's fixed-budget runs: 0 (eval/commands.sh gives them no thinking_n_ignore); s1 ran "
        "1, 2, 4 and 6 on its `auto` budget.",
    )
    num_ignore_by_budget: list[int] | None = Field(
        None,
        description="One num_ignore per budget, in budgets' order (e.g. [0, 0, 2] for three budgets). null: num_ignore at every budget.",
    )
    ignore_string: str = Field("Wait", description='Appended instead of the delimiter to keep the model thinking (s1: "Wait").')
    min_thinking_tokens: int = Field(
        0,
        ge=0,
        description="s1's min_tokens_thinking: thinking that ends before this many tokens gets ignore_string instead of the "
        "delimiter (not counted in num_ignore) until it reaches them or its budget. 0: no minimum (s1's default).",
    )
    thinking_prefix: str = Field(
        "<think>\n", description="Appended to the rendered prompt so the model starts thinking; empty when the chat template adds it."
    )
    end_of_thinking: str = Field(
        "</think>", min_length=1, description="The model's end-of-thinking delimiter (R1-style: </think>; s1: <|im_start|>answer)."
    )
    answer_prefix: str = Field(
        "\nFinal Answer:", description="Appended after the delimiter when answer_prefix_when says so, so the model answers."
    )
    answer_prefix_when: Literal["length", "budget"] = Field(
        "length",
        description="length: only when the last thinking round stopped at its token limit (s1); budget: whenever the thinking "
        "reached its budget, a round that stopped on the delimiter with the budget used up included.",
    )
    answer_fallback: Literal["answer_line", "none"] = Field(
        "answer_line",
        description="What is scored when the answer has no \\boxed{}. answer_line: the last `Answer:` line's text (s1's scorer; "
        "the answer prefix's own line included); none: nothing (a box only).",
    )
    answer_max_tokens: int = Field(1024, ge=1, description="The answer's own token limit.")

    @field_validator("budgets")
    @classmethod
    def _positive(cls, budgets: list[int]) -> list[int]:
        if any(b < 1 for b in budgets) or len(set(budgets)) != len(budgets):
            raise ValueError(f"budgets must be distinct positive token counts, not {budgets}")
        return budgets

    @model_validator(mode="after")
    def _ignores_per_budget(self) -> BudgetForcing:
        per = self.num_ignore_by_budget
        if per is not None and (len(per) != len(self.budgets) or any(n < 0 for n in per)):
            raise ValueError(
                f"num_ignore_by_budget must give one count of 0 or more per budget ({len(self.budgets)} budgets: "
                f"{self.budgets}), not {per}; or be null for num_ignore at every budget"
            )
        return self

    def ignores_at(self, budget: int) -> int:
        """How many early ends of thinking are replaced by ignore_string at this budget."""
        per = self.num_ignore_by_budget
        return self.num_ignore if per is None else per[self.budgets.index(budget)]


class EvaluateConfig(ProblemPrompt):
    llm: LLM = Field(description="The model evaluated: the student.")
    sampling: Sampling = Field(
        Sampling(max_new_tokens=32768), description="How the model samples in mode sampled; greedy uses its max_new_tokens."
    )
    modes: list[Literal["sampled", "greedy", "budget_forcing"]] = Field(
        ["sampled"],
        min_length=1,
        description="sampled: `sampling` with each benchmark's n samples (pass@1 averaged over them, as published); greedy: "
        "temperature 0, one sample; budget_forcing: greedy, with the thinking held to each of budget_forcing.budgets (one "
        "protocol per budget). Each is reported on its own, never mixed.",
    )
    budget_forcing: BudgetForcing = Field(BudgetForcing(), description="The budget_forcing mode's settings.")
    multiple_choice_template: str = Field(
        MULTIPLE_CHOICE_TEMPLATE,
        description="The prompt of multiple_choice benchmarks, with {letters}, {problem} and {choices}: OpenR1's GPQA prompt "
        "(from simple-evals, as lighteval uses it).",
    )
    benchmarks: dict[str, EvalBenchmark] = Field({}, description="The benchmarks evaluated: names from base.benchmarks.")
    workers: int = Field(2, ge=1, description="Worker processes that check the answers.", json_schema_extra={"execution": True})
    timeout_s: int = Field(5, ge=1, description="math-verify's timeouts when checking an answer, per parse and per verify, in seconds.")

    @field_validator("multiple_choice_template")
    @classmethod
    def _choice_placeholders(cls, template: str) -> str:
        return unknown_placeholders(template, ("letters", "problem", "choices"))


class LightevalConfig(Section):
    """lighteval's own numbers for the student (opt-in: `snakemake data/lighteval/results.json`),
    run in its own environment: lighteval pins a latex2sympy2_extended that math-verify 0.9 cannot use."""

    model: str = Field("data/sft/model", description="Hub id or local directory of the model evaluated.")
    tasks: list[str] = Field(
        ["lighteval|math_500|0", "lighteval|aime24|0", "lighteval|aime25|0", "lighteval|gpqa:diamond|0"],
        description="lighteval task specs (suite|task|few-shot).",
    )
    sampling: Sampling = Field(Sampling(max_new_tokens=32768), description="How the model samples.")
    dtype: str = Field("bfloat16", description="Weight dtype passed to vLLM.")
    max_model_length: int = Field(32768, ge=16, description="vLLM's context length, in tokens.")
    gpu_memory_utilization: float = Field(0.8, gt=0, le=1, description="Fraction of each GPU's memory vLLM may take (0 to 1).")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs the model is split over (tensor parallelism).")
    max_samples: int | None = Field(None, ge=1, description="Items per task, for smoke runs. null: all.")


class ReportConfig(Section):
    """The report stage: small plot data for `dvc plots` (plots/report/) and figures for
    `snakemake --report` (reports/)."""

    length_bins: list[int] = Field(
        [0, 1024, 2048, 4096, 8192, 16384],
        min_length=1,
        description="Completion-token edges of the generation length histogram: bins [e0, e1), [e1, e2), ... and a last open "
        "bin [e_last, inf). Fixed in params, never derived from the data, so two versions' histograms overlay bin for bin "
        "in `dvc plots diff`.",
    )
    compare_with: list[str] = Field(
        ["OpenR1-Qwen-7B"], description="Published models (distillery/published.py) whose scores are drawn beside ours."
    )

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
    seed: int = Field(42, description="The one seed every stage derives its randomness from.")
    benchmarks: dict[str, BenchmarkFile] = Field(
        {}, description="Benchmarks by name: the decontamination reference (dedupe) and the evaluation sets (evaluate)."
    )


class Params(Section):
    base: BaseConfig = Field(description="Settings every stage shares.")
    sample: SampleConfig = Field(description="sample: the problems drawn from the source.")
    ingest: IngestConfig = Field(description="ingest: published reasoning corpora read into the generation schema.")
    mix: MixConfig = Field(description="mix: the corpora and the project's own generations combined, with per-source caps.")
    models: ModelsConfig = Field(description="models: the smoke-test models built locally.")
    generate: GenerateConfig = Field(description="generate: the teacher's reasoning traces.")
    verify: VerifyConfig = Field(description="verify: math-verify's check of each generation against the gold.")
    judge: JudgeConfig = Field(description="judge: an LLM's check of the generations math-verify did not pass.")
    dedupe: DedupeConfig = Field(description="dedupe: exact and near duplicates and benchmark contamination dropped.")
    build: BuildConfig = Field(description="build: the dataset, in the OpenR1-Math-220k schema.")
    curate: CurateConfig = Field(description="curate: a small subset cut from the dataset by a recorded method (s1K, LIMO).")
    sft: SFTConfig = Field(description="sft: the student fine-tuned on the dataset.")
    preferences: PreferencesConfig = Field(description="preferences: chosen/rejected pairs from the judged generations, for DPO.")
    dpo: DPOConfig = Field(description="dpo: the student trained on the preference pairs (TRL's DPOTrainer).")
    grpo: GRPOConfig = Field(description="grpo: the student trained with verifiable rewards (TRL's GRPOTrainer).")
    evaluate: EvaluateConfig = Field(description="evaluate: the student's scores on the benchmarks.")
    report: ReportConfig = Field(description="report: plot data and figures.")
    lighteval: LightevalConfig = Field(description="lighteval: lighteval's own numbers for the student (opt-in).")

    @model_validator(mode="after")
    def _benchmark_names(self) -> Params:
        known = set(self.base.benchmarks)
        for where, names in (("dedupe.benchmarks", self.dedupe.benchmarks), ("evaluate.benchmarks", self.evaluate.benchmarks)):
            unknown = sorted(set(names) - known)
            if unknown:
                raise ValueError(f"{where} names {unknown}, which base.benchmarks does not define (defined: {sorted(known)})")
        return self

    @model_validator(mode="after")
    def _mix_sources(self) -> Params:
        corpora = self.ingest.corpora
        if not corpora and (self.mix.caps or not self.mix.own):
            raise ValueError("mix.caps and mix.own apply only when ingest.corpora names a corpus; leave mix at its defaults")
        unknown = sorted(set(self.mix.caps) - {RESERVED_SOURCE, *corpora})
        if unknown:
            raise ValueError(
                f"mix.caps names {unknown}, which is neither {RESERVED_SOURCE!r} nor an ingest.corpora name ({sorted(corpora)})"
            )
        return self

    @model_validator(mode="after")
    def _tiny_models_are_built(self) -> Params:
        if self.models.build_tiny:
            return self
        for where, model in (
            ("generate.llm.model", self.generate.llm.model),
            ("judge.llm.model", self.judge.llm.model),
            ("sft.model", self.sft.model),
            ("dpo.model", self.dpo.model),
            ("grpo.model", self.grpo.model),
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
    "ingest": IngestConfig,
    "mix": MixConfig,
    "models": ModelsConfig,
    "generate": GenerateConfig,
    "verify": VerifyConfig,
    "judge": JudgeConfig,
    "dedupe": DedupeConfig,
    "build": BuildConfig,
    "curate": CurateConfig,
    "sft": SFTConfig,
    "preferences": PreferencesConfig,
    "dpo": DPOConfig,
    "grpo": GRPOConfig,
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
    allowed = err["msg"].removeprefix("Value error, ")  # pydantic's prefix for a validator's own message
    ctx = err.get("ctx") or {}
    if "expected" in ctx:
        allowed = f"expected {ctx['expected']}"
    return f"{key} = {shown}: {allowed}"


def format_validation_error(exc: ValidationError, source: str, prefix: str = "") -> str:
    lines = [f"{source} is invalid:"]
    lines += [f"  - {_describe(e, prefix)}" for e in exc.errors(include_url=False)]
    return "\n".join(lines)


# DVC's run cache hashes a stage's params without any key named `size` or `nfiles`, at any depth
# (they are file metadata elsewhere in dvc.lock; treeverse/dvc#10296): changing such a key would
# restore the outputs of the old value. No params key may have these names; those that did say theirs.
DVC_UNHASHED_KEYS = ("size", "nfiles")
RENAMED_KEYS = {"curate.s1k.size": "curate.s1k.subset_rows", "curate.limo.size": "curate.limo.subset_rows"}


def keys_dvc_cannot_hash(raw: Any, prefix: str = "") -> list[str]:
    """The dotted keys of `raw` whose last part DVC's run cache leaves out of a stage's hash."""
    found: list[str] = []
    if isinstance(raw, dict):
        for key, value in raw.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key in DVC_UNHASHED_KEYS:
                found.append(path)
            found += keys_dvc_cannot_hash(value, path)
    elif isinstance(raw, list):
        for i, value in enumerate(raw):
            found += keys_dvc_cannot_hash(value, f"{prefix}[{i}]")
    return found


def _unhashed_key_message(key: str) -> str:
    if key in RENAMED_KEYS:
        return f"{key}: renamed to {RENAMED_KEYS[key]} (DVC's run cache ignores params named 'size'); rename the key"
    return (
        f"{key}: DVC's run cache ignores params named {' or '.join(map(repr, DVC_UNHASHED_KEYS))} (treeverse/dvc#10296), "
        "so changing it would restore stale outputs instead of re-running the stage; give it another name"
    )


def validate_params(raw: Any, source: str = "params.yaml") -> Params:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must be a mapping of sections (base, sample, ...), got {type(raw).__name__}")
    unhashed = keys_dvc_cannot_hash(raw)
    if unhashed:
        raise ConfigError("\n".join([f"{source} is invalid:", *(f"  - {_unhashed_key_message(k)}" for k in unhashed)]))
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

    seed: int = Field(description="base.seed.")


class ModelsExtras(StageExtras):
    prompt_template: str = Field(description="generate.prompt_template: the teacher learns to answer it.")


class BenchmarkExtras(StageExtras):
    benchmark_files: dict[str, BenchmarkFile] = Field(description="The base.benchmarks entries of the names the stage uses.")


class BuildExtras(StageExtras):
    card_settings: dict[str, Any] = Field(description="The teacher, judge and verifier settings the dataset card records.")


class GRPOExtras(StageExtras):
    verify: VerifyConfig = Field(description="verify's section: the accuracy reward checks answers as verify does.")


STAGE_EXTRAS: dict[str, type[StageExtras]] = {
    "grpo": GRPOExtras,
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
