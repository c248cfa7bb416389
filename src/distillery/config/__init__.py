"""Typed models of params.yaml: one section per stage plus `base`, one module per stage.

params.yaml is both Snakemake's configfile and DVC's params file, so it is validated here, before
any job starts. Every stage receives only its own section (plus the base values the rule passes
explicitly) as JSON on its command line and re-validates it with the same model.

`distillery.config.base` holds what several stages share, `distillery.config.<stage>` a stage's own
models, `distillery.config.params` the whole file (`Params`), its loader and validation. This
package re-exports them all for the CLI, the Snakefile and tests; a stage module imports from the
submodules (never from here), so its code identity holds only the config it uses.
"""

from distillery.config.base import (
    DATA_FILE_SUFFIXES,
    LLM,
    OTHER_DATA_SUFFIXES,
    PROBLEM_PLACEHOLDER,
    RESERVED_SOURCE,
    BenchmarkFile,
    OpenAIEndpoint,
    ProblemPrompt,
    Sampling,
    Section,
    Serve,
    SFTLaunch,
    Training,
    VLLMEngine,
    is_execution,
    unknown_placeholders,
)
from distillery.config.build import BuildConfig, RewardModel, SplitConfig
from distillery.config.curate import CurateConfig, LimoCuration, S1KCuration
from distillery.config.dedupe import DedupeConfig, NearDedupeConfig
from distillery.config.dpo import DPOConfig
from distillery.config.evaluate import MULTIPLE_CHOICE_TEMPLATE, BudgetForcing, EvalBenchmark, EvaluateConfig
from distillery.config.generate import GenerateConfig
from distillery.config.grpo import (
    AccuracyReward,
    CosineReward,
    FormatReward,
    GRPOConfig,
    GRPOGeneration,
    OverlongReward,
    RepetitionReward,
    Rewards,
)
from distillery.config.ingest import Corpus, CorpusLayout, IngestConfig
from distillery.config.judge import JudgeConfig
from distillery.config.lighteval import LightevalConfig
from distillery.config.mix import MixConfig
from distillery.config.models import ModelsConfig, TinyModelsConfig
from distillery.config.params import (
    DVC_UNHASHED_KEYS,
    RENAMED_KEYS,
    STAGE_EXTRAS,
    STAGE_MODELS,
    BaseConfig,
    BenchmarkExtras,
    BuildExtras,
    GRPOExtras,
    ModelsExtras,
    Params,
    StageExtras,
    format_validation_error,
    keys_dvc_cannot_hash,
    load_params,
    parse_stage_config,
    read_params_yaml,
    require_every_key,
    stage_config,
    unset_fields,
    validate_params,
    validate_params_file,
)
from distillery.config.preferences import PreferencesConfig
from distillery.config.report import PUBLISHED_MODELS, ReportConfig
from distillery.config.sample import ColumnFilter, SampleConfig
from distillery.config.sft import SFTConfig
from distillery.config.verify import GOLD_EXTRACTION, PREDICTION_EXTRACTION, Extraction, LatexExtraction, VerifyConfig

__all__ = [
    "AccuracyReward",
    "BaseConfig",
    "BenchmarkExtras",
    "BenchmarkFile",
    "BudgetForcing",
    "BuildConfig",
    "BuildExtras",
    "ColumnFilter",
    "Corpus",
    "CorpusLayout",
    "CosineReward",
    "CurateConfig",
    "DATA_FILE_SUFFIXES",
    "DPOConfig",
    "DVC_UNHASHED_KEYS",
    "DedupeConfig",
    "EvalBenchmark",
    "EvaluateConfig",
    "Extraction",
    "FormatReward",
    "GOLD_EXTRACTION",
    "GRPOConfig",
    "GRPOExtras",
    "GRPOGeneration",
    "GenerateConfig",
    "IngestConfig",
    "JudgeConfig",
    "LLM",
    "LatexExtraction",
    "LightevalConfig",
    "LimoCuration",
    "MULTIPLE_CHOICE_TEMPLATE",
    "MixConfig",
    "ModelsConfig",
    "ModelsExtras",
    "NearDedupeConfig",
    "OTHER_DATA_SUFFIXES",
    "OpenAIEndpoint",
    "OverlongReward",
    "PREDICTION_EXTRACTION",
    "PROBLEM_PLACEHOLDER",
    "PUBLISHED_MODELS",
    "Params",
    "PreferencesConfig",
    "ProblemPrompt",
    "RENAMED_KEYS",
    "RESERVED_SOURCE",
    "RepetitionReward",
    "ReportConfig",
    "RewardModel",
    "Rewards",
    "S1KCuration",
    "SFTConfig",
    "SFTLaunch",
    "STAGE_EXTRAS",
    "STAGE_MODELS",
    "SampleConfig",
    "Sampling",
    "Section",
    "Serve",
    "SplitConfig",
    "StageExtras",
    "TinyModelsConfig",
    "Training",
    "VLLMEngine",
    "VerifyConfig",
    "format_validation_error",
    "is_execution",
    "keys_dvc_cannot_hash",
    "load_params",
    "parse_stage_config",
    "read_params_yaml",
    "require_every_key",
    "stage_config",
    "unknown_placeholders",
    "unset_fields",
    "validate_params",
    "validate_params_file",
]
