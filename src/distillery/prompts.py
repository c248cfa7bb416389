"""Prompt rendering. Placeholders are substituted in one pass, so text inside a problem or a
generation (which may itself contain "{problem}" or braces) is never re-interpreted."""

from __future__ import annotations

import re
from pathlib import Path

from distillery.errors import ConfigError

JUDGE_FIELDS = ("problem", "reference_answer", "candidate_answer")
_PLACEHOLDER = re.compile(r"\{(problem|reference_answer|candidate_answer|choices|letters)\}")


def _render(template: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)] if m.group(1) in values else m.group(0), template)


def render_problem_prompt(template: str, problem: str) -> str:
    return _render(template, {"problem": problem})


def render_choice_prompt(template: str, problem: str, choices: str, letters: str) -> str:
    return _render(template, {"problem": problem, "choices": choices, "letters": letters})


def render_judge_prompt(template: str, problem: str, reference_answer: str, candidate_answer: str) -> str:
    return _render(template, {"problem": problem, "reference_answer": reference_answer, "candidate_answer": candidate_answer})


def load_judge_template(path: str | Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"judge.prompt_template = {str(path)!r}: file not found; point it at a prompt file such as prompts/judge.txt")
    text = path.read_text(encoding="utf-8")
    missing = [f for f in JUDGE_FIELDS if "{" + f + "}" not in text]
    if missing:
        raise ConfigError(f"judge.prompt_template {path} lacks the placeholders {['{' + m + '}' for m in missing]}")
    return text
