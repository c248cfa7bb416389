"""evaluate: sample the trained model on benchmark problems through the generation backends, score
with the verify stage's checker, and report pass@1 averaged over n samples with its standard error.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from types import SimpleNamespace

import polars as pl

from distillery.config import BenchmarkFile, EvaluateConfig
from distillery.errors import DistilleryError
from distillery.io import read_records, write_parquet
from distillery.keys import derive_seed, request_key
from distillery.config import VerifyConfig
from distillery.journal import journal_dir
from distillery.llm import Request
from distillery.llm.journaled import run_journaled
from distillery.metrics import write_metrics
from distillery.prompts import render_problem_prompt
from distillery.verification import check_many

log = logging.getLogger(__name__)


def pass_at_1(per_problem: list[list[bool]]) -> tuple[float, float]:
    """Mean over problems of the fraction of correct samples, and its standard error."""
    rates = [sum(s) / len(s) for s in per_problem if s]
    if not rates:
        return 0.0, 0.0
    mean = sum(rates) / len(rates)
    if len(rates) < 2:
        return mean, 0.0
    var = sum((r - mean) ** 2 for r in rates) / (len(rates) - 1)
    return mean, math.sqrt(var / len(rates))


def load_benchmark(name: str, bench: BenchmarkFile, limit: int | None) -> list[dict]:
    rows = read_records(bench.path, f"benchmark {name}")
    out = []
    for i, row in enumerate(rows[:limit] if limit else rows):
        problem, answer = row.get(bench.problem_field), row.get(bench.answer_field)
        if not isinstance(problem, str) or answer is None:
            raise DistilleryError(f"benchmark {name} ({bench.path}) row {i} lacks {bench.problem_field!r} or {bench.answer_field!r}")
        out.append({"item": str(row.get(bench.id_field)) if bench.id_field else str(i), "problem": problem, "answer": str(answer)})
    return out


def run(cfg: EvaluateConfig, seed: int, benchmarks: dict[str, BenchmarkFile], out_samples: Path, out_metrics: Path) -> dict:
    llm = cfg.llm
    sampling = cfg.sampling.model_dump()
    plan = []
    for name, spec in cfg.benchmarks.items():
        for prob in load_benchmark(name, benchmarks[name], spec.limit):
            prompt = render_problem_prompt(cfg.prompt_template, prob["problem"])
            chat = [{"role": "user", "content": prompt}]
            for i in range(spec.n):
                key = request_key(llm.model, llm.revision, chat, sampling, i)
                plan.append((name, prob, i, Request(key=key, messages=(("user", prompt),), seed=derive_seed(seed, key))))
    # Journaled like generation: a killed or repeated evaluation asks nothing twice (the student's
    # weights are in its request keys, so a retrained student is asked again).
    unique = list({p[3].key: p[3] for p in plan}.values())
    result = run_journaled(llm, cfg.sampling, unique, journal_dir("evaluate"), 0, 1, "evaluate", Path("logs/evaluate/servers"))
    if result.failed:
        example = next(iter(result.failed.values()))["error"]
        raise DistilleryError(f"evaluate: {len(result.failed)} of {len(unique)} requests failed after {llm.openai.max_retries} retries "
                              f"(e.g. {example}); finished ones are kept in {result.journal_path}, so re-running retries only these")
    done = {k: SimpleNamespace(key=k, text=r.get("text"), finish_reason=r.get("finish_reason")) for k, r in result.done.items()}
    # Group the samples of each problem so the gold is parsed once.
    groups: dict[tuple[str, str], list[int]] = {}
    for idx, (name, prob, _, _) in enumerate(plan):
        groups.setdefault((name, prob["item"]), []).append(idx)
    items = [(plan[idxs[0]][1]["answer"], [done[plan[i][3].key].text for i in idxs]) for idxs in groups.values()]
    # The verify stage's defaults (OpenR1's settings), with this stage's workers and timeout.
    checks = check_many(items, VerifyConfig(workers=cfg.workers, timeout_s=cfg.timeout_s))
    rows, results = [], {}
    for (name, item), idxs, per in zip(groups, groups.values(), checks):
        for i, c in zip(idxs, per):
            comp = done[plan[i][3].key]
            rows.append({"benchmark": name, "item": item, "sample_index": plan[i][2], "request_key": comp.key,
                         "generation": comp.text, "finish_reason": comp.finish_reason, "extracted_answer": c.extracted,
                         "gold": plan[i][1]["answer"], "correct": c.correct, "verify_status": c.status})
    samples = pl.DataFrame(rows, schema_overrides={"generation": pl.String, "extracted_answer": pl.String})
    write_parquet(samples, out_samples)
    for name, spec in cfg.benchmarks.items():
        per_problem = [[r["correct"] for r in rows if r["benchmark"] == name and r["item"] == item]
                       for (b, item) in groups if b == name]
        mean, se = pass_at_1(per_problem)
        results[name] = {"pass@1": round(100 * mean, 2), "stderr": round(100 * se, 2), "problems": len(per_problem),
                         "samples_per_problem": spec.n}
    protocol = {**sampling, "mode": "greedy" if cfg.sampling.temperature == 0 else "sampled"}
    write_metrics(out_metrics, "evaluate", model=llm.model, protocol=protocol, results=results)
    log.info("evaluate: %s", json.dumps(results))
    return results
