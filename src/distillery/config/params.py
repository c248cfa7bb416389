"""The whole params file: `Params` (every stage's section plus `base`), the strict YAML loader,
validation with one readable line per problem, and the JSON a rule passes to a stage (its
section plus extras). The CLI and Snakefile use this; stage modules import only their own
`distillery.config.<stage>`.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from distillery.config.base import RESERVED_SOURCE, BenchmarkFile, Section, model_settings
from distillery.config.build import BuildConfig
from distillery.config.curate import CurateConfig
from distillery.config.dedupe import DedupeConfig
from distillery.config.difficulty import DifficultyConfig
from distillery.config.dpo import DPOConfig
from distillery.config.evaluate import EvaluateConfig
from distillery.config.generate import GenerateConfig
from distillery.config.grpo import GRPOConfig
from distillery.config.ingest import IngestConfig
from distillery.config.judge import JudgeConfig
from distillery.config.lighteval import LightevalConfig
from distillery.config.mix import MixConfig
from distillery.config.models import ModelsConfig
from distillery.config.preferences import PreferencesConfig
from distillery.config.report import ReportConfig
from distillery.config.sample import SampleConfig
from distillery.config.sft import SFTConfig
from distillery.config.verify import VerifyConfig
from distillery.errors import ConfigError


class BaseConfig(Section):
    seed: int = Field(42, description="The one seed every stage derives its randomness from.")
    benchmarks: dict[str, BenchmarkFile] = Field(
        {}, description="Benchmarks by name: the decontamination reference (dedupe) and the evaluation sets (evaluate)."
    )


class Params(Section):
    base: BaseConfig = Field(description="Settings every stage shares.")
    sample: SampleConfig = Field(description="sample: the problems drawn from the source.")
    ingest: IngestConfig = Field(description="ingest: published reasoning corpora read into the generation schema.")
    models: ModelsConfig = Field(description="models: the smoke-test models built locally.")
    generate: GenerateConfig = Field(description="generate: the teacher's reasoning traces.")
    mix: MixConfig = Field(description="mix: the corpora and the project's own generations combined, with per-source caps.")
    verify: VerifyConfig = Field(description="verify: math-verify's check of each generation against the gold.")
    judge: JudgeConfig = Field(description="judge: an LLM's check of the generations math-verify did not pass.")
    dedupe: DedupeConfig = Field(description="dedupe: exact and near duplicates and benchmark contamination dropped.")
    build: BuildConfig = Field(description="build: the dataset, in the OpenR1-Math-220k schema.")
    curate: CurateConfig = Field(description="curate: a small subset cut from the dataset by a recorded method (s1K, LIMO).")
    sft: SFTConfig = Field(description="sft: the student fine-tuned on the dataset.")
    preferences: PreferencesConfig = Field(description="preferences: chosen/rejected pairs from the judged generations, for DPO.")
    dpo: DPOConfig = Field(description="dpo: the student trained on the preference pairs (TRL's DPOTrainer).")
    difficulty: DifficultyConfig = Field(description="difficulty: the problems whose pass rate under GRPO's start model is in range.")
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
        for block, model, _ in model_settings(self):
            where = f"{block}.model"
            if Path(model).parts[:2] == ("data", "models"):
                raise ValueError(
                    f"{where} = {model!r} is made by the models stage, which models.build_tiny: false turns off; "
                    "name a hub id or a local model directory, or set models.build_tiny: true"
                )
        return self


# Each stage's section model, by section name (what `parse_stage_config` validates a stage's JSON with).
STAGE_MODELS: dict[str, type[Section]] = {name: f.annotation for name, f in Params.model_fields.items() if name != "base"}  # type: ignore[misc]


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


class DifficultyExtras(GRPOExtras):
    word_golds: Literal["unusable", "compare"] = Field(description="grpo.rewards.accuracy.word_golds: a word gold as GRPO scores it.")


STAGE_EXTRAS: dict[str, type[StageExtras]] = {
    "difficulty": DifficultyExtras,
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
