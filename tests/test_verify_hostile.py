"""Generations are untrusted text: a corpus of hostile ones goes through the real verify path
(extraction in this process, math-verify in deadline-bound worker processes). Nothing executes,
nothing hangs past its deadline, and each gets a status."""

from __future__ import annotations

import time
from pathlib import Path

from distillery.config import VerifyConfig
from distillery.stages import verify
from distillery.tables import GENERATIONS, PROBLEMS
from distillery.verification import STATUSES, PoolStats, check_many

from support.tables import write_table_file


def boxed(ans: str) -> str:
    return f"<think>Let me think.</think>\nThe answer is $\\boxed{{{ans}}}$."


def hostile_corpus(marker: Path) -> dict[str, str]:
    cmd = f"touch {marker}"
    return {
        "python_import": boxed(f"__import__('os').system('{cmd}')"),
        "python_exec": boxed(f"exec(\"import os; os.system('{cmd}')\")"),
        "python_eval": boxed(f"eval(\"__import__('os').system('{cmd}')\")"),
        "dunder_walk": boxed("().__class__.__bases__[0].__subclasses__()"),
        "lambda": boxed(f"(lambda: __import__('os').system('{cmd}'))()"),
        "sympy_sympify_string": boxed(f"sympify(\"__import__('os').system('{cmd}')\")"),
        "text_wrapped_python": boxed(f"\\text{{__import__('os').system('{cmd}')}}"),
        "latex_python_mix": boxed(f"\\frac{{__import__('os').system('{cmd}')}}{{2}}"),
        "deep_braces": boxed("{" * 20000 + "1" + "}" * 20000),
        "unbalanced_braces": boxed("{" * 50000 + "1"),
        "deep_frac": boxed("\\frac{1}{" * 2000 + "2" + "}" * 2000),
        "megabyte_answer": boxed("1+" * 500_000 + "1"),
        "megabyte_prose": "<think>" + "a" * 1_000_000 + "</think> no box here",
        "many_boxes": "</think>" + "".join(f"\\boxed{{{i}}}" for i in range(20000)),
        "nul_bytes": boxed("4\x002"),
        "control_chars": boxed("\x1b[31m42\x07"),
        "lone_surrogate": boxed("42\udcff"),
        "replacement_chars": boxed("\ufffd\ufffd"),
        "power_tower": boxed("9^{9^{9^{9^{9}}}}"),
        "huge_factorial": boxed("(10^{10})!"),
        "huge_binomial": boxed("\\binom{10^{12}}{10^{6}}"),
        "latex_macros": boxed("\\def\\x{\\x}\\x"),
        "input_command": boxed("\\input{/etc/passwd}"),
        "format_string": boxed("{0.__class__}"),
    }


def test_hostile_generations_get_statuses_and_nothing_executes(tmp_path):
    marker = tmp_path / "pwned"
    corpus = hostile_corpus(marker)
    cfg = VerifyConfig(workers=2, timeout_s=2, item_deadline_s=8)
    stats = PoolStats()
    started = time.monotonic()
    out = check_many([("42", list(corpus.values())), ("1", list(corpus.values()))], cfg, stats=stats)
    took = time.monotonic() - started
    assert not marker.exists(), "a generation was executed"
    for per_gold in out:
        assert len(per_gold) == len(corpus)
        for name, check in zip(corpus, per_gold):
            assert check.status in STATUSES, name
    by_name = dict(zip(corpus, out[0]))
    assert by_name["megabyte_answer"].status == "answer_too_long"
    assert by_name["megabyte_prose"].status == "no_answer"
    assert by_name["unbalanced_braces"].status == "no_answer"
    # Only the right answer counts: 42 with junk around it is not 42.
    assert [n for n, c in by_name.items() if c.correct] == []
    # Bounded: every answer is done within its deadline (a kill costs one deadline, not a stall).
    assert stats.slowest_item_s <= cfg.item_deadline_s + 2
    assert took < 2 * len(corpus) * cfg.item_deadline_s / cfg.workers


def test_hostile_rows_pass_through_the_verify_stage(tmp_path):
    corpus = hostile_corpus(tmp_path / "pwned")
    corpus.pop("lone_surrogate")  # parquet holds UTF-8 only; generate cleans such text before it is stored
    gens = {
        "uuid": ["p"] * len(corpus),
        "sample_index": list(range(len(corpus))),
        "generation": list(corpus.values()),
        "finish_reason": ["stop"] * len(corpus),
    }
    write_table_file(tmp_path / "gens.parquet", GENERATIONS, gens)
    write_table_file(tmp_path / "problems.parquet", PROBLEMS, {"uuid": ["p"], "answer": ["42"]})
    out = verify.run(
        VerifyConfig(timeout_s=2, item_deadline_s=8),
        verify.Paths(
            generations=tmp_path / "gens.parquet",
            problems=tmp_path / "problems.parquet",
            verified=tmp_path / "out.parquet",
            metrics=tmp_path / "m.json",
        ),
    )
    assert out.height == len(corpus) and set(out["verify_status"]) <= set(STATUSES)
    assert not out["correctness_math_verify"].any()
    assert not (tmp_path / "pwned").exists()
