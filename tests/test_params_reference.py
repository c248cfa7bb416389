"""distillery.params_reference: the parameter reference (docs/params.md) and the JSON Schema
(schemas/params.schema.json) are generated from the config models and committed current; every key
is described; the shipped params files validate against the schema; the execution-only keys that
provenance leaves out of `<stage>_params` are the ones the models mark."""

from __future__ import annotations

import json
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from distillery import params_reference
from distillery.config import STAGE_EXTRAS, STAGE_MODELS, Params
from distillery.provenance import execution_only

REPO = Path(__file__).resolve().parents[1]
SHIPPED = [REPO / "params.yaml", REPO / "recipes" / "openr1-math-220k.yaml"]


def models_reachable(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> set[type[BaseModel]]:
    """`model` and every model its fields hold, through lists, dicts and unions."""
    seen = set() if seen is None else seen
    if model in seen:
        return seen
    seen.add(model)
    for field in model.model_fields.values():
        todo = [field.annotation]
        while todo:
            tp = todo.pop()
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                models_reachable(tp, seen)
            todo += typing.get_args(tp)
    return seen


@pytest.mark.parametrize("rel", [params_reference.SCHEMA_PATH, params_reference.DOCS_PATH], ids=str)
def test_generated_files_are_current(rel):
    committed = (REPO / rel).read_text(encoding="utf-8") if (REPO / rel).is_file() else None
    assert committed == params_reference.outputs()[rel], (
        f"{rel} differs from what src/distillery/config/ makes: run `make params-docs` and commit the result"
    )


def test_check_names_an_outdated_file(tmp_path):
    assert params_reference.main(["--root", str(tmp_path)]) == 0
    assert params_reference.stale(tmp_path) == []
    (tmp_path / params_reference.DOCS_PATH).write_text("old\n")
    proc = subprocess.run(
        [sys.executable, "-m", "distillery.params_reference", "--check", "--root", str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert str(params_reference.DOCS_PATH) in proc.stderr and "make params-docs" in proc.stderr
    assert str(params_reference.SCHEMA_PATH) not in proc.stderr


def test_every_field_is_described():
    models = models_reachable(Params)
    for extras in STAGE_EXTRAS.values():
        models |= models_reachable(extras)
    undescribed = sorted(
        f"{m.__name__}.{name}" for m in models for name, field in m.model_fields.items() if not (field.description or "").strip()
    )
    assert undescribed == []


def test_docs_have_one_table_per_section_and_every_key():
    text = params_reference.docs_text()
    for section in Params.model_fields:
        assert f"\n## {section}\n" in text
    assert "| `generate.llm.openai.max_in_flight` |" in text
    assert "| `base.benchmarks.<name>.path` |" in text and "| `evaluate.benchmarks.<name>.n` |" in text
    # Defaults of a nested block come from its parent's default: the gold's math-verify parse() default.
    assert "| `verify.gold.latex.boxed_match_priority` | int | `50` |" in text
    assert "| `verify.prediction.latex.boxed_match_priority` | int | `0` |" in text


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_params_validate_against_the_schema(path):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((REPO / params_reference.SCHEMA_PATH).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert [e.message for e in validator.iter_errors(raw)] == []
    raw["generate"]["num_shard"] = 2  # a misspelt key: extra="forbid" is additionalProperties: false
    assert any("num_shard" in e.message for e in validator.iter_errors(raw))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_params_name_the_schema(path):
    assert path.read_text(encoding="utf-8").splitlines()[0] == "# yaml-language-server: $schema=schemas/params.schema.json"


def test_schema_marks_execution_keys():
    defs = params_reference.params_schema()["$defs"]
    marked = sorted(f"{m}.{k}" for m, d in defs.items() for k, p in d.get("properties", {}).items() if p.get("x-execution"))
    assert marked == [
        "EvaluateConfig.workers",
        "GRPOConfig.verify_workers",
        "GenerateConfig.num_shards",
        "LLM.batch_size",
        "LLM.openai",
        "LLM.serve",
        "LLM.vllm",
        "RewardModel.batch_size",
        "VerifyConfig.workers",
    ]


def test_execution_only_is_derived_from_the_marks():
    llm = ["llm.batch_size", "llm.openai", "llm.serve", "llm.vllm"]
    expected = {
        "generate": sorted(["num_shards", *llm]),
        "judge": llm,
        "difficulty": llm,
        "evaluate": sorted(["workers", *llm]),
        "verify": ["workers"],
        "grpo": ["verify_workers"],
        "build": ["reward_model.batch_size"],
    }
    found = {stage: execution_only(stage) for stage in STAGE_MODELS}
    assert {stage: sorted(paths) for stage, paths in found.items() if paths} == expected
    assert all(found[s] == [] for s in ("sample", "models", "dedupe", "sft", "report", "lighteval"))
