"""Synthetic math problems for dedupe tests and the dedupe benchmark: realistic length, shared
boilerplate openings and closings, and planted exact duplicates (case, whitespace and LaTeX spacing
respelled), near duplicates (one or two numbers reworded) and benchmark problems.

    rows, roles = synthetic_problems(1000, seed=0, exact_rate=0.05, near_rate=0.05, planted=[...])

`roles[uuid]` is "unique", "exact_of:<uuid>", "near_of:<uuid>" or "planted:<benchmark>:<item>".
Every unique problem is built from its own random words, so two unique problems share only
boilerplate; a test that finds a pair among them has found a false positive.
"""

from __future__ import annotations

import random
import re

from distillery.keys import problem_key

OPENINGS = [
    "Find the value of",
    "Determine the number of",
    "How many",
    "Compute",
    "Let",
    "Prove that",
    "What is the smallest positive integer such that",
    "Find all real numbers",
    "Suppose that",
    "Given that",
    "Calculate",
    "Evaluate",
]
CLOSINGS = [
    "Express your answer as a common fraction.",
    "Give your answer in simplest form.",
    "Find the remainder when it is divided by 1000.",
    "",
    "",
    "",
]
MATH = [
    "$x^{{2}} + {a}x + {b} = 0$",
    "$\\frac{{{a}}}{{{b}}}$",
    "$\\sqrt{{{a}}}$",
    "$f(x) = {a}x - {b}$",
    "$a_{{n+1}} = {a} a_n + {b}$",
    "${a} \\le n \\le {b}$",
    "$\\angle ABC = {a}^\\circ$",
    "$\\binom{{{a}}}{{{b}}}$",
]
SOURCES = ["olympiads", "cn_k12", "amc_aime", "aops_forum", "number_theory", "inequalities", "orca_math"]
_SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ne",
    "ru",
    "sa",
    "te",
    "vo",
    "zi",
    "pa",
    "qu",
    "dre",
    "fo",
    "gil",
    "hap",
    "jor",
    "wex",
    "yul",
    "bri",
    "cas",
    "dom",
    "elf",
    "gan",
    "hux",
    "ist",
    "lum",
    "mor",
    "nix",
    "orb",
    "pev",
]
_NUMBER = re.compile(r"(?<![\w^])\d+")


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def unique_problem(rng: random.Random, vocab: list[str]) -> str:
    """30-90 words: an opening, sentences of random words with numbers and LaTeX, a closing."""
    parts = [rng.choice(OPENINGS)]
    for _ in range(rng.randint(3, 7)):
        sentence = [rng.choice(vocab) for _ in range(rng.randint(5, 11))]
        sentence.insert(rng.randrange(len(sentence)), str(rng.randint(2, 9999)))
        if rng.random() < 0.6:
            sentence.insert(rng.randrange(len(sentence)), rng.choice(MATH).format(a=rng.randint(2, 99), b=rng.randint(2, 99)))
        parts.append(" ".join(sentence) + rng.choice([".", ",", ";"]))
    parts.append(rng.choice(CLOSINGS))
    return " ".join(p for p in parts if p)


def respelled(rng: random.Random, text: str) -> str:
    """The same problem to exact dedupe: case, whitespace and LaTeX spacing changed."""
    out = text.replace(" = ", " \\, = \\, ") if rng.random() < 0.5 else text
    out = out.upper() if rng.random() < 0.3 else out.lower() if rng.random() < 0.5 else out
    return "  " + out.replace(" ", rng.choice(["  ", " \n ", "\t"]), 3) + " "


def reworded(rng: random.Random, text: str) -> str:
    """A near duplicate: one or two of its numbers changed, and its spacing."""
    numbers = list(_NUMBER.finditer(text))
    if not numbers:
        return text + " Answer in lowest terms."
    for m in sorted(rng.sample(numbers, min(len(numbers), rng.randint(1, 2))), key=lambda m: -m.start()):
        new = str(int(m.group()) + rng.randint(1, 9))
        text = text[: m.start()] + new + text[m.end() :]
    return text.replace(", ", " , ", 1)


def synthetic_problems(
    n: int,
    seed: int = 0,
    exact_rate: float = 0.05,
    near_rate: float = 0.05,
    planted: list[tuple[str, str, str]] = (),
    vocab_size: int = 20000,
) -> tuple[list[dict], dict[str, str]]:
    """n problems: (1 - rates) unique, the planted ones among them, the rest duplicates of unique ones."""
    rng = random.Random(seed)
    vocab = _vocabulary(rng, vocab_size)
    rows: list[dict] = []
    roles: dict[str, str] = {}

    def add(text: str, role: str) -> str | None:
        source = rng.choice(SOURCES)
        uuid = problem_key(text, source)
        if uuid in roles:
            return None
        rows.append({"uuid": uuid, "problem": text, "source": source})
        roles[uuid] = role
        return uuid

    n_exact, n_near = int(n * exact_rate), int(n * near_rate)
    originals: list[tuple[str, str]] = []
    while len(rows) < n - n_exact - n_near - len(planted):
        text = unique_problem(rng, vocab)
        uuid = add(text, "unique")
        if uuid:
            originals.append((uuid, text))
    for bench, item, text in planted:
        add(text, f"planted:{bench}:{item}")
    for kind, count, change in (("exact_of", n_exact, respelled), ("near_of", n_near, reworded)):
        made = 0
        while made < count:
            uuid, text = rng.choice(originals)
            if add(change(rng, text), f"{kind}:{uuid}"):
                made += 1
    rng.shuffle(rows)
    return rows, roles
