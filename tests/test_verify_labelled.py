"""The verifier against hand-labelled cases: tests/data/labelled_verify.jsonl.

The cases are written by hand in tests/data/make_labelled_verify.py (gold, final answer, expected
verdict, category, note), wrapped there in R1-style generations. `expected` is what a careful human
grader says, never what the verifier does. Where the verifier disagrees today the case is listed in
KNOWN_WRONG with the reason; the test requires the disagreements to be exactly those, so a
regression (a new disagreement) and a fix (a known-wrong case that now agrees) both fail it.

Per-category agreement: `.venv/bin/python tests/test_verify_labelled.py`, or `pytest -rP` on this file.
"""

from __future__ import annotations

import importlib.util
import json
from collections import defaultdict
from pathlib import Path

import pytest

from distillery.verification import Check, check_problem

# id -> why the verifier's verdict differs from the label (found by parsing both sides with math-verify).
KNOWN_WRONG: dict[str, str] = {
    "const-017": "latex2sympy cannot parse '\\log_e 2' under the prediction config (raw string; math-verify's default config even reads it as 2)",
    "pct-008": "math-verify accepts a percent without its sign only for integers (25% vs 25); 12.5% is the value 0.125, compared with the float 12.5",
    "pct-010": "latex2sympy cannot parse a mixed number followed by a percent sign ('33\\frac{1}{3}\\%'): the gold is unparseable",
    "ivl-007": "'x<1 \\text{ or } x>3' parses as the set {x<1, x>3} of two relations, not as the union of two intervals",
    "text-012": "text answers match only as normalized strings; 'no solution' parses as the symbol nosolution and \\varnothing as another symbol",
    "mat-008": "a column Matrix gold and a Tuple answer are different sympy types, which verify() never compares",
    "num-007": "float_rounding=6 rounds both sides to 6 places: the approximation 0.333333 equals 1/3 rounded, so it is accepted",
    "num-008": "float_rounding=6 rounds both sides to 6 places: the approximation 6.283185 equals 2pi rounded, so it is accepted",
    "num-013": "float_rounding=6 rounds both sides to 6 places: 1.41421356 and sqrt(2) both round to 1.414214, so it is accepted",
    "unit-006": "units are stripped without conversion (units=True): '180 minutes' becomes 180, compared with 3",
    "unit-013": "a whole answer inside \\text{} ('\\text{8 apples}') becomes the symbol 8apples; units are stripped only outside \\text",
    "unit-014": "units are stripped on both sides without conversion: 3 minutes and 3 hours both become 3",
    "trap-022": "no <think> tag in the text (the template pre-filled it), so the whole generation is the answer region and a tentative box counts",
    "multi-053": "a comma list gold ('\\frac{1}{2}, 2') is a set for math-verify, so the answers of a two-part problem are accepted in either order",
}

DATA = Path(__file__).parent / "data" / "labelled_verify.jsonl"
GENERATOR = Path(__file__).parent / "data" / "make_labelled_verify.py"
FIELDS = {"id", "category", "gold", "generation", "expected", "note"}
TIMEOUT_S = 5
FLOAT_ROUNDING = 6


def load_cases() -> list[dict]:
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]


def run_verifier(cases: list[dict]) -> dict[str, Check]:
    """Every case through check_problem; cases with the same gold go in one call (gold parsed once)."""
    by_gold: dict[str, list[dict]] = defaultdict(list)
    for case in cases:
        by_gold[case["gold"]].append(case)
    out: dict[str, Check] = {}
    for gold, group in by_gold.items():
        checks = check_problem(gold, [c["generation"] for c in group], timeout_s=TIMEOUT_S, float_rounding=FLOAT_ROUNDING)
        out.update((c["id"], check) for c, check in zip(group, checks, strict=True))
    return out


def summary(cases: list[dict], verdicts: dict[str, Check]) -> str:
    """Per category: cases, how many are labelled true/false, and how many the verifier agrees with."""
    rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for case in cases:
        r = rows[case["category"]]
        r[0] += 1
        r[1 if case["expected"] else 2] += 1
        r[3] += verdicts[case["id"]].correct == case["expected"]
    lines = [f"{'category':<24}{'cases':>6}{'true':>6}{'false':>6}{'agree':>7}{'%':>6}"]
    total = [0, 0, 0, 0]
    for cat, r in rows.items():
        total = [a + b for a, b in zip(total, r)]
        lines.append(f"{cat:<24}{r[0]:>6}{r[1]:>6}{r[2]:>6}{r[3]:>7}{100 * r[3] / r[0]:>6.0f}")
    lines.append(f"{'all':<24}{total[0]:>6}{total[1]:>6}{total[2]:>6}{total[3]:>7}{100 * total[3] / total[0]:>6.0f}")
    return "\n".join(lines)


CASES = load_cases()


@pytest.fixture(scope="module")
def verdicts() -> dict[str, Check]:
    return run_verifier(CASES)


def test_dataset_shape():
    assert len(CASES) >= 470
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate ids"
    for c in CASES:
        assert set(c) == FIELDS, c["id"]
        assert isinstance(c["expected"], bool) and c["gold"] and c["note"], c["id"]
    labels: dict[str, set[bool]] = defaultdict(set)
    for c in CASES:
        labels[c["category"]].add(c["expected"])
    one_sided = sorted(cat for cat, seen in labels.items() if seen != {True, False})
    assert not one_sided, f"categories without both true and false cases: {one_sided}"
    assert not set(KNOWN_WRONG) - set(ids), f"KNOWN_WRONG names cases that do not exist: {sorted(set(KNOWN_WRONG) - set(ids))}"


def test_jsonl_matches_its_generator():
    """The jsonl is exactly what make_labelled_verify.py writes (edit the tables, then rerun it)."""
    spec = importlib.util.spec_from_file_location("make_labelled_verify", GENERATOR)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    expected = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in gen.cases())
    assert DATA.read_text(encoding="utf-8") == expected, "labelled_verify.jsonl is stale: run tests/data/make_labelled_verify.py"


def test_verifier_agrees_with_labels_except_known_wrong(verdicts):
    print("\n" + summary(CASES, verdicts))
    disagree = {c["id"] for c in CASES if verdicts[c["id"]].correct != c["expected"]}
    problems = []
    for c in CASES:
        v = verdicts[c["id"]]
        if c["id"] in disagree and c["id"] not in KNOWN_WRONG:
            problems.append(
                f"{c['id']} ({c['category']}): verifier says {v.correct} ({v.status}, extracted {v.extracted!r}), "
                f"label says {c['expected']}; gold {c['gold']!r}; {c['note']}"
            )
        elif c["id"] in KNOWN_WRONG and c["id"] not in disagree:
            problems.append(
                f"{c['id']} ({c['category']}) now agrees with its label ({c['expected']}): "
                f"the verifier was fixed, remove it from KNOWN_WRONG"
            )
    assert not problems, "\n".join(problems) + "\n\n" + summary(CASES, verdicts)


if __name__ == "__main__":
    found = run_verifier(CASES)
    print(summary(CASES, found))
    for case in CASES:
        if found[case["id"]].correct != case["expected"]:
            mark = "known" if case["id"] in KNOWN_WRONG else "NEW"
            print(f"{mark:>5} {case['id']}: expected {case['expected']}, got {found[case['id']].status}; {case['note']}")


def test_docs_list_the_known_wrong_cases_exactly():
    """docs/verify.md's table of disagreements is KNOWN_WRONG, case by case."""
    docs = (Path(__file__).parents[1] / "docs" / "verify.md").read_text(encoding="utf-8")
    section = docs.split("## Labelled cases the verifier still gets wrong", 1)[1]
    listed = {line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ") and "-" in line.split("|")[1]}
    listed.discard("---")
    assert listed == set(KNOWN_WRONG), (
        f"docs/verify.md lists {sorted(listed - set(KNOWN_WRONG))} too many, {sorted(set(KNOWN_WRONG) - listed)} missing"
    )
    assert f"({len(KNOWN_WRONG)} of {len(CASES)})" in docs, "update the count in the docs/verify.md heading"


def test_the_labelled_set_checks_the_shipped_settings():
    """check_problem's defaults are VerifyConfig's; params.yaml must ship the same, or this set
    would be testing settings the pipeline does not run."""
    from distillery.config import VerifyConfig, load_params

    shipped = load_params(Path(__file__).parents[1] / "params.yaml").verify
    assert shipped.model_dump(exclude={"workers"}) == VerifyConfig().model_dump(exclude={"workers"})
