"""The models stage: tiny smoke-test models built locally from a fixed corpus, byte for byte the
same on every run, and nothing at all when the recipe names real models."""

from __future__ import annotations

import json

import pytest

from distillery.config import GenerateConfig, ModelsConfig
from distillery.errors import DistilleryError
from distillery.stages import models

from conftest import REPO

TEMPLATE = GenerateConfig.model_fields["prompt_template"].default
SMALL = {"tiny": {"teacher_epochs": 1, "judge_epochs": 1, "max_position_embeddings": 512}}


def build(out, corpus=REPO / "data/bundled/numina_sample.jsonl", **over):
    cfg = ModelsConfig.model_validate({**SMALL, **over})
    return models.run(
        cfg,
        42,
        TEMPLATE,
        models.Paths(
            corpus=corpus,
            judge_template=REPO / "prompts/judge.txt",
            models=out,
            metrics=out.parent / f"{out.name}.json",
            run_figures=out.parent / f"{out.name}.run.json",
        ),
    )


def test_two_builds_are_the_same_bytes_and_timings_stay_out_of_the_metrics(tmp_path):
    build(tmp_path / "a")
    build(tmp_path / "b")
    for role in models.ROLES:
        for name in ("model.safetensors", "tokenizer.json", "config.json"):
            assert (tmp_path / "a" / role / name).read_bytes() == (tmp_path / "b" / role / name).read_bytes(), (role, name)
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    metrics = json.loads((tmp_path / "a.json").read_text())
    assert "seconds" not in json.dumps(metrics) and metrics["versions"]["torch"].startswith("2.")
    assert set(json.loads((tmp_path / "a.run.json").read_text())["training_seconds"]) == set(models.ROLES)
    # Trained on the corpus's rows with a problem, a solution and an answer (the sample plays no part).
    usable = sum(
        1
        for line in (REPO / "data/bundled/numina_sample.jsonl").read_text().splitlines()
        if line.strip()
        and all(isinstance(v, str) and v.strip() for v in (json.loads(line).get(k) for k in ("problem", "solution", "answer")))
    )
    assert metrics["training_examples"]["teacher"] == usable


def test_a_corpus_without_usable_rows_is_named(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"problem": "p", "answer": "1"}) + "\n")  # no solution
    with pytest.raises(DistilleryError, match=r"models.tiny.corpus = .* has no row with a non-empty problem, solution and answer"):
        build(tmp_path / "m", corpus=corpus)


def test_without_build_tiny_nothing_is_built(tmp_path):
    report = build(tmp_path / "m", build_tiny=False)
    assert report["built"] == [] and not (tmp_path / "m" / "teacher").exists()


@pytest.mark.parametrize("answer", ["9", "-7", "\\frac{3}{4}", "C", "Wednesday", "[-1, \\infty)", "\\pi", "-\\pi"])
def test_a_near_miss_is_one_small_change_that_leaves_latex_commands_alone(answer):
    import random
    import re

    miss = models.near_miss(answer, random.Random(0))
    assert miss != answer
    commands = re.findall(r"\\[A-Za-z]+", answer)
    assert re.findall(r"\\[A-Za-z]+", miss) == commands  # \frac, \infty, \pi spelled as they were
    if len(miss) == len(answer):
        assert sum(a != b for a, b in zip(answer, miss)) == 1
    else:  # a sign added or taken away
        assert {miss, answer} == {answer.removeprefix("-"), "-" + answer.removeprefix("-")}


def test_the_judge_learns_each_verdict_from_the_answer_it_is_shown():
    import random

    problems = [{"problem": "Compute 2+3.", "answer": "5"}, {"problem": "Name the third letter.", "answer": "C"}]
    template = (REPO / "prompts/judge.txt").read_text()
    examples = models.judge_examples(problems, template, random.Random(0))
    assert len(examples) == 8
    for (prompt, reply), gold, shown, verdict in zip(
        examples,
        ["5"] * 4 + ["C"] * 4,
        ["$\\boxed{5}$", "$\\boxed{C}$", None, "$\\boxed{5$", "$\\boxed{C}$", "$\\boxed{5}$", None, "$\\boxed{C$"],
        ["EQUIVALENT", "DIFFERENT", "DIFFERENT", "AMBIGUOUS"] * 2,
    ):
        assert f"Reference answer:\n{gold}\n" in prompt and reply.endswith(f"\nVerdict: {verdict}")
        if shown is not None:
            assert shown in prompt


def test_a_saved_tokenizer_is_the_same_bytes_whether_or_not_the_shell_is_offline(tiny_models, tmp_path):
    """Training stages load the tokenizer and save it beside the model; HF_HUB_OFFLINE (which
    `make demo` sets and a bare `dvc repro` may not) must not reach those bytes."""
    import os
    import subprocess
    import sys

    save = "import sys; from distillery.llm.loading import load_tokenizer; load_tokenizer(sys.argv[1]).save_pretrained(sys.argv[2])"
    saved = {}
    for offline in ("1", None):
        env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"} | ({"HF_HUB_OFFLINE": offline} if offline else {})
        out = tmp_path / f"offline-{offline}"
        r = subprocess.run(
            [sys.executable, "-c", save, str(tiny_models / "student_base"), str(out)], env=env, capture_output=True, text=True
        )
        assert r.returncode == 0, r.stderr[-2000:]
        saved[offline] = (out / "tokenizer_config.json").read_bytes()
    assert saved["1"] == saved[None]
    assert b"local_files_only" not in saved["1"]
