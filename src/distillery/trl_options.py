"""The values the installed TRL accepts for an option such as DPOConfig.loss_type, read from TRL's
own source so params are checked at config time (Snakemake's parse, `distillery check-params`)
without importing TRL (and torch) there.

TRL lists an option's values only in its help text ("Possible values are: 'sigmoid', 'hinge', ...");
a value it does not list fails only when the trainer computes its first loss, after the model has
loaded. When the installed TRL's text cannot be read this way, nothing is checked here and TRL
itself decides.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from pathlib import Path

# TRL's config class -> the module (under trl/trainer/) that defines it.
CONFIG_MODULES = {"DPOConfig": "dpo_config", "GRPOConfig": "grpo_config", "SFTConfig": "sft_config"}
_VALUES_SENTENCE = re.compile(r"(?:Possible|Supported) values are:?\s*(.*?)(?:\.\s|\.$)", re.S)
_QUOTED = re.compile(r"'([A-Za-z0-9_]+)'")


def trl_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("trl")
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def _help_texts(config_class: str) -> dict[str, str]:
    spec = importlib.util.find_spec("trl")
    if spec is None or not spec.submodule_search_locations or config_class not in CONFIG_MODULES:
        return {}
    source = Path(next(iter(spec.submodule_search_locations))) / "trainer" / f"{CONFIG_MODULES[config_class]}.py"
    if not source.is_file():
        return {}
    helps: dict[str, str] = {}
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.ClassDef) and node.name == config_class):
            continue
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and isinstance(item.value, ast.Call):
                for kw in item.value.keywords:
                    if kw.arg == "metadata" and isinstance(kw.value, ast.Dict):
                        for k, v in zip(kw.value.keys, kw.value.values):
                            if isinstance(k, ast.Constant) and k.value == "help" and isinstance(v, ast.Constant):
                                helps[item.target.id] = str(v.value)
    return helps


def trl_choices(config_class: str, option: str) -> list[str] | None:
    """The values the installed TRL's `config_class` lists for `option`, or None where it lists none
    (or TRL is not installed here)."""
    found = _VALUES_SENTENCE.search(_help_texts(config_class).get(option, ""))
    values = _QUOTED.findall(found.group(1)) if found else []
    return list(dict.fromkeys(values)) or None


def check_choice(stage: str, config_class: str, option: str, value: str) -> str:
    """`value` when the installed TRL lists it for `option` (or lists nothing); else a ValueError
    naming the values it lists."""
    choices = trl_choices(config_class, option)
    if choices is not None and value not in choices:
        raise ValueError(
            f"{value!r} is not a {option} of the installed TRL {trl_version()} (its {config_class} lists: {', '.join(choices)}); "
            f"pick one of those"
        )
    return value
