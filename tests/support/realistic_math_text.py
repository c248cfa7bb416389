"""Math problems with real word frequencies, real lengths and the benchmarks' real closing sentences,
for decontamination at scale (benchmarks/decontamination.py) and its tests.

    corpus = RealisticCorpus.from_benchmarks(bench_dir, seed=0)
    rows = corpus.clean_problems(400_000)            # [(text, role)], role "clean" or "duplicate"
    planted = corpus.planted(verbatim=200, edited=200)  # [(text, "verbatim:<b>:<item>" | "edited:<kind>:<b>:<item>")]

- Words are drawn with MATH-500's frequencies (its problems and solutions, split on whitespace, so
  `$x$`, `\\frac{1}{2}` and `5.` are words as they are written; words seen fewer than 3 times, mostly
  one item's own formulas, are left out), sentence lengths from a log-normal
  fitted to MATH-500's sentences (median 12 words, a long tail), 1-4 sentences per problem.
- A third of the problems end with one of the benchmarks' own closing sentences ("Express your
  answer as a common fraction."), drawn with their real frequency: in real corpora these are
  what a clean problem shares with a benchmark, and what one shared 8-gram wrongly flags.
- 5% of the clean problems have a near duplicate (a reordering, a LaTeX respelling or a changed
  number): they are clean too, and a rule that flags a problem flags its duplicates.
- Planted copies are benchmark problems, verbatim, or lightly edited the ways real scrapes edit
  them: case, spacing and punctuation, LaTeX respelled, numbers formatted, one sentence reworded,
  a "Problem 7." prefix; an edited copy gets two of these.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BENCHMARK_FILES = {"math500": ("math500.jsonl", "unique_id"), "aime2024": ("aime2024.jsonl", "id"), "aime2025": ("aime2025.jsonl", "id")}
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+(?=[A-Z$\\])")
# Instructions about the answer's form: boilerplate when several items share them, or when they say
# nothing but the form ("Express your answer in simplest radical form.").
_CLOSING_START = ("Express", "Enter", "Give", "Write your answer", "Round", "Simplify your answer", "Your answer", "Separate")
SYNONYMS = {
    "Find": "Determine",
    "find": "determine",
    "What": "Which",
    "Compute": "Calculate",
    "compute": "calculate",
    "number": "count",
    "value": "amount",
    "integer": "whole number",
    "positive": "nonnegative",
    "smallest": "least",
    "largest": "greatest",
    "the": "a",
    "is": "equals",
    "are": "were",
    "How": "In how",
    "of": "for",
}


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


@dataclass
class RealisticCorpus:
    items: list[tuple[str, str, str]]  # (benchmark, item id, problem)
    words: np.ndarray  # vocabulary
    probs: np.ndarray  # their frequencies
    closings: list[str]
    closing_probs: np.ndarray
    seed: int = 0

    @classmethod
    def from_benchmarks(cls, bench_dir: Path, seed: int = 0) -> RealisticCorpus:
        items, counts, closing_counts = [], Counter(), Counter()
        for name, (file, id_field) in BENCHMARK_FILES.items():
            for line in (bench_dir / file).read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                items.append((name, str(row[id_field]), row["problem"]))
                text = re.sub(r"\[asy\].*?\[/asy\]", " ", row["problem"] + " " + row.get("solution", ""), flags=re.S)
                counts.update(text.split())
                problem = re.sub(r"\[asy\].*?\[/asy\]", " ", row["problem"], flags=re.S).strip()
                last = sentences(problem)[-1].split("\n\n")[0].strip() if sentences(problem) else ""
                if last.startswith(_CLOSING_START) and len(last.split()) >= 4:
                    closing_counts[last] += 1
        # Words seen once or twice are mostly one item's own formulas ("$\\frac{\\sqrt{2.5^2-0.7^2}}{2.7-2.5}$."):
        # drawn into clean text they would make real copies of that item's core.
        words, freq = zip(*((w, k) for w, k in counts.most_common() if k >= 3))
        generic = {c: k for c, k in closing_counts.items() if k >= 2 or c.startswith(("Express your answer", "Enter your answer"))}
        closings, cfreq = zip(*Counter(generic).most_common())
        return cls(
            items,
            np.array(words, dtype=object),
            np.array(freq, float) / sum(freq),
            list(closings),
            np.array(cfreq, float) / sum(cfreq),
            seed,
        )

    def clean_problems(self, n: int) -> list[tuple[str, str]]:
        rng = np.random.default_rng(self.seed)
        n_sentences = np.minimum(1 + rng.geometric(0.55, size=n) - 1, 4) + 0
        lengths = np.clip(np.round(rng.lognormal(np.log(12), 0.6, size=int(n_sentences.sum()))), 3, 90).astype(int)
        flat = rng.choice(self.words, size=int(lengths.sum()), p=self.probs)
        ends = rng.choice(np.array([".", "?", "."], dtype=object), size=len(lengths))
        closing = rng.random(n) < 1 / 3
        chosen_closings = rng.choice(len(self.closings), size=n, p=self.closing_probs)
        out: list[tuple[str, str]] = []
        pos = sent = 0
        for i in range(n):
            parts = []
            for _ in range(n_sentences[i]):
                k = lengths[sent]
                words = flat[pos : pos + k]
                parts.append(" ".join(words).rstrip(".?,") + ends[sent])
                pos, sent = pos + k, sent + 1
            if closing[i]:
                parts.append(self.closings[chosen_closings[i]])
            text = " ".join(parts)
            out.append((text[0].upper() + text[1:], "clean"))
        # Near duplicates of 5% of them: clean problems too.
        pyrng = random.Random(self.seed)
        for i in pyrng.sample(range(n), n // 20):
            out.append((near_duplicate(pyrng, out[i][0]), "duplicate"))
        return out

    def planted(self, verbatim: int, edited: int) -> list[tuple[str, str]]:
        rng = random.Random(self.seed + 1)
        out = [(text, f"verbatim:{b}:{i}") for b, i, text in rng.sample(self.items, verbatim)]
        for b, i, text in rng.sample(self.items, edited):
            kinds = rng.sample(sorted(EDITS), 2)
            for kind in kinds:
                text = EDITS[kind](rng, text)
            out.append((text, f"edited:{'+'.join(kinds)}:{b}:{i}"))
        return out


def near_duplicate(rng: random.Random, text: str) -> str:
    kind = rng.choice(["reorder", "latex", "number"])
    if kind == "reorder":
        s = sentences(text)
        return " ".join(s[1:] + s[:1]) if len(s) > 1 else text + " "
    if kind == "latex":
        return respell_latex(rng, text)
    return re.sub(r"\d+", lambda m: str(int(m.group()) + 1), text, count=1)


def change_case(rng: random.Random, text: str) -> str:
    return rng.choice([str.upper, str.lower])(text)


def respace(rng: random.Random, text: str) -> str:
    return re.sub(r"\s+", lambda m: rng.choice([" ", "  ", "\n"]), text).replace(", ", " , ").replace(". ", "; ")


def respell_latex(rng: random.Random, text: str) -> str:
    text = text.replace("\\frac", "\\dfrac").replace("\\left(", "(").replace("\\right)", ")").replace("\\cdot", "\\times")
    return re.sub(r"\$([^$]+)\$", lambda m: f"\\({m.group(1)}\\)", text)


def format_numbers(rng: random.Random, text: str) -> str:
    text = re.sub(r"\b(\d{1,3})(\d{3})\b", r"\1,\2", text)
    return re.sub(r"\b0\.(\d)", r".\1", text)


def reword_sentence(rng: random.Random, text: str) -> str:
    """Two words of one sentence changed (a synonym, or two neighbours swapped)."""
    s = sentences(text)
    k = rng.randrange(len(s))
    words = s[k].split()
    for _ in range(2):
        swappable = [i for i, w in enumerate(words) if w in SYNONYMS]
        if swappable:
            i = rng.choice(swappable)
            words[i] = SYNONYMS[words[i]]
        elif len(words) > 1:
            i = rng.randrange(len(words) - 1)
            words[i], words[i + 1] = words[i + 1], words[i]
    s[k] = " ".join(words)
    return " ".join(s)


def prefix(rng: random.Random, text: str) -> str:
    return f"{rng.choice(['Problem', 'Example', 'Question', '例'])} {rng.randint(1, 30)}. {text}"


EDITS = {
    "case": change_case,
    "spacing": respace,
    "latex": respell_latex,
    "numbers": format_numbers,
    "reworded": reword_sentence,
    "prefix": prefix,
}
