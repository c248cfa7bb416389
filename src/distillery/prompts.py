"""Prompt rendering. Placeholders are substituted in one pass, so text inside a problem or a
generation (which may itself contain "{problem}" or braces) is never re-interpreted."""

from __future__ import annotations

import re
from pathlib import Path

from distillery.errors import ConfigError

JUDGE_FIELDS = ("problem", "reference_answer", "candidate_answer")
_PLACEHOLDER = re.compile(r"\{(problem|reference_answer|candidate_answer|choices|letters)\}")
# Any `{name}`, except where the brace is LaTeX: after a command (\boxed{x}), a closing brace
# (\frac{a}{b}), ^ or _ (x^{n}).
_ANY_PLACEHOLDER = re.compile(r"(?<![A-Za-z\\}^_])\{([A-Za-z_][A-Za-z0-9_]*)\}")


def placeholders_in(template: str) -> list[str]:
    """The names of the `{name}` placeholders in `template`, in order."""
    return _ANY_PLACEHOLDER.findall(template)


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
    unknown = sorted(set(placeholders_in(text)) - set(JUDGE_FIELDS))
    if unknown:
        raise ConfigError(
            f"judge.prompt_template {path} has the placeholder(s) {', '.join('{' + u + '}' for u in unknown)}, which nothing "
            f"fills (the judge would see them as written); the placeholders are {', '.join('{' + f + '}' for f in JUDGE_FIELDS)}: "
            "rename or remove it"
        )
    return text
