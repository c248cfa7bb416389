"""evaluate: sample the trained model on benchmark problems through the generation backends, score
each sample, and report pass@1 averaged over n samples with its standard error, per mode.

- Protocol: `sampled` uses `evaluate.sampling` with each benchmark's n (OpenR1: temperature 0.6,
  top_p 0.95, 32768 new tokens; AIME 64 samples, MATH-500 4, GPQA 8); `greedy` is temperature 0 with
  one sample. Every result carries the protocol that produced it, and modes are never mixed.
- Math answers are checked by the verify stage's checker (OpenR1's math-verify settings), so AIME
  "025" and 25 are the same integer.
- Multiple choice (GPQA-diamond): the options are shuffled per item with the seed, lettered, and
  the model's last "Answer: X" (or a boxed letter) after its reasoning is compared with the letter of
  the correct option.
- Requests are journaled like generation's: a killed or repeated evaluation asks nothing twice.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from distillery.budget_forcing import Reply, Round, Trace, force, ids_of
from distillery.config.base import BenchmarkFile, Sampling
from distillery.config.evaluate import STAGE, EvaluateConfig
from distillery.config.verify import VerifyConfig
from distillery.errors import DistilleryError
from distillery.io import load_rows
from distillery.keys import derive_seed
from distillery.llm import Request
from distillery.llm.loading import load_tokenizer
from distillery.llm.task import Answer, Asked, LLMTask, TaskDirs
from distillery.metrics import write_metrics
from distillery.prompts import render_choice_prompt, render_problem_prompt
from distillery.provenance import library_version
from distillery.published import PUBLISHED
from distillery.tables import EVALUATION_SAMPLES, write_table
from distillery.verification import check_many

log = logging.getLogger(__name__)

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


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


@dataclass(frozen=True)
class Item:
    benchmark: str
    item: str
    prompt: str
    gold: str  # the answer, or the correct letter for multiple choice
    kind: str


def load_benchmark(name: str, bench: BenchmarkFile, limit: int | None) -> list[dict]:
    """Rows of a local file or a hub dataset id, through the same loader as the sample stage."""
    rows = load_rows(bench.path, bench.split, bench.revision, f"base.benchmarks.{name}.path")
    if not rows:
        raise DistilleryError(
            f"benchmark {name} ({bench.path}) has no rows: there is nothing to evaluate on; point "
            f"base.benchmarks.{name}.path at the benchmark, or remove {name} from evaluate.benchmarks"
        )
    fields = [bench.problem_field, bench.answer_field, *bench.incorrect_fields]
    out = []
    for i, row in enumerate(rows[:limit] if limit else rows):
        missing = [f for f in fields if row.get(f) is None or (f == bench.problem_field and not isinstance(row[f], str))]
        if missing:
            raise DistilleryError(
                f"benchmark {name} ({bench.path}) row {i} lacks {missing}; "
                f"set base.benchmarks.{name}'s *_field keys to the fields that hold them"
            )
        out.append(
            {
                "item": str(row.get(bench.id_field)) if bench.id_field else str(i),
                "problem": row[bench.problem_field],
                "answer": str(row[bench.answer_field]),
                "incorrect": [str(row[f]) for f in bench.incorrect_fields],
            }
        )
    return out


def items_for(name: str, bench: BenchmarkFile, rows: list[dict], cfg: EvaluateConfig, seed: int) -> list[Item]:
    out = []
    for row in rows:
        if bench.kind == "math":
            out.append(Item(name, row["item"], render_problem_prompt(cfg.prompt_template, row["problem"]), row["answer"], "math"))
            continue
        options = [row["answer"], *row["incorrect"]]
        order = list(range(len(options)))
        random.Random(derive_seed(seed, f"{name}/{row['item']}")).shuffle(order)
        letters = LETTERS[: len(options)]
        choices = "\n".join(f"{letters[k]}) {options[j]}" for k, j in enumerate(order))
        prompt = render_choice_prompt(cfg.multiple_choice_template, row["problem"], choices, "".join(letters))
        out.append(Item(name, row["item"], prompt, letters[order.index(0)], "multiple_choice"))
    return out


_ANSWER_LINE = re.compile(r"(?i:answer)\s*(?:(?i:is)\s*)?[:：]\s*\$?\s*\(?\s*(?:\\text\{|\\boxed\{)?\s*([A-Z])\b")
_BOXED_LETTER = re.compile(r"\\boxed\{\s*(?:\\text\{)?\s*\(?([A-Z])\)?\s*\}")


def extract_choice(text: str | None, n_options: int) -> str | None:
    """The letter a multiple-choice answer gives: its last "Answer: X", else its last boxed letter,
    looked for after the reasoning (an unclosed <think> has no answer, as in the verify stage)."""
    if not text or ("<think>" in text and "</think>" not in text):
        return None
    tail = text.rsplit("</think>", 1)[-1].replace("*", "")
    valid = LETTERS[:n_options]
    found = [m.group(1) for m in _ANSWER_LINE.finditer(tail) if m.group(1) in valid]
    found = found or [m.group(1) for m in _BOXED_LETTER.finditer(tail) if m.group(1) in valid]
    return found[-1] if found else None


BUDGET_MODE = "budget_forcing_"


def protocols(cfg: EvaluateConfig) -> list[str]:
    """The reported protocols: each mode, and budget_forcing once per budget (budget_forcing_<tokens>)."""
    out = []
    for mode in cfg.modes:
        out += [f"{BUDGET_MODE}{b}" for b in cfg.budget_forcing.budgets] if mode == "budget_forcing" else [mode]
    return out


def budget_of(mode: str) -> int | None:
    return int(mode[len(BUDGET_MODE) :]) if mode.startswith(BUDGET_MODE) else None


def mode_sampling(cfg: EvaluateConfig, mode: str) -> Sampling:
    if mode == "sampled":
        return cfg.sampling
    if budget_of(mode) is not None:  # greedy, as s1 evaluates; each request carries its own limit
        return Sampling(temperature=0.0, top_p=1.0, max_new_tokens=budget_of(mode) + cfg.budget_forcing.answer_max_tokens)
    return Sampling(temperature=0.0, top_p=1.0, max_new_tokens=cfg.sampling.max_new_tokens)


def samples_per_problem(cfg: EvaluateConfig, name: str, mode: str) -> int:
    return cfg.benchmarks[name].n if mode == "sampled" else 1


def score(samples: pl.DataFrame, modes: list[str], benchmarks: list[str]) -> dict[str, dict[str, dict]]:
    """mode -> benchmark -> pass@1 and its standard error (in %), from per-sample correctness."""
    results: dict[str, dict[str, dict]] = {}
    for mode in modes:
        results[mode] = {}
        for name in benchmarks:
            part = samples.filter((pl.col("mode") == mode) & (pl.col("benchmark") == name))
            per_problem = [g["correct"].to_list() for _, g in part.group_by("item", maintain_order=True)]
            mean, se = pass_at_1(per_problem)
            results[mode][name] = {
                "pass@1": round(100 * mean, 2),
                "stderr": round(100 * se, 2),
                "problems": len(per_problem),
                "samples_per_problem": max((len(p) for p in per_problem), default=0),
            }
    return results


def scored(t: Trace, cfg: EvaluateConfig) -> Answer:
    """A budget-forced generation as the scorer reads it: its answer after the thinking."""
    a = t.answer
    return Answer(t.scored_text(cfg.budget_forcing), a.finish_reason if a else t.failed, None, None, None, a.code if a else None)


def protocol_of(cfg: EvaluateConfig, mode: str) -> dict:
    budget = budget_of(mode)
    if budget is None:
        return {
            **mode_sampling(cfg, mode).model_dump(),
            "samples_per_problem": {b: samples_per_problem(cfg, b, mode) for b in cfg.benchmarks},
        }
    bf = cfg.budget_forcing
    return {
        "temperature": 0.0,
        "top_p": 1.0,
        "thinking_budget": budget,
        "num_ignore": bf.ignores_at(budget),
        **bf.model_dump(
            include={
                "ignore_string",
                "min_thinking_tokens",
                "thinking_prefix",
                "end_of_thinking",
                "answer_prefix",
                "answer_prefix_when",
                "answer_fallback",
                "answer_max_tokens",
            }
        ),
        "samples_per_problem": {b: 1 for b in cfg.benchmarks},
    }


def scaling_curve(samples: pl.DataFrame, results: dict) -> list[dict]:
    """Per budget-forcing protocol and benchmark: the thinking actually used, the share that hit the
    budget, the requests it took (added to `results`), and the curve's points (returned)."""
    curve = []
    for mode, per in results.items():
        budget = budget_of(mode)
        if budget is None:
            continue
        for name, r in per.items():
            part = samples.filter((pl.col("mode") == mode) & (pl.col("benchmark") == name))
            r["mean_thinking_tokens"] = round(float(part["thinking_tokens"].mean() or 0.0), 1)
            r["hit_budget_share"] = round(float(part["thinking_capped"].mean() or 0.0), 4)
            r["requests"] = int(part["requests"].sum() or 0)
            curve.append({"benchmark": name, "budget": budget, "mean_thinking_tokens": r["mean_thinking_tokens"], "pass@1": r["pass@1"]})
    return curve


def results_table(model: str, protocol: dict, results: dict) -> str:
    lines = [f"# Evaluation of `{model}`", ""]
    for mode, per in results.items():
        p = protocol[mode]
        if budget_of(mode) is not None:
            minimum = f" (and below {p['min_thinking_tokens']} thinking tokens)" if p["min_thinking_tokens"] else ""
            lines += [
                f"## {mode}: greedy, thinking held to {p['thinking_budget']} tokens, {p['ignore_string']!r} up to {p['num_ignore']} "
                f"times{minimum}, then {p['end_of_thinking']!r} and an answer of up to {p['answer_max_tokens']} tokens",
                "",
                "| benchmark | pass@1 (%) | ± stderr | problems | mean thinking tokens | share at the budget | requests |",
                "| --- | --- | --- | --- | --- | --- | --- |",
            ]
            lines += [
                f"| {b} | {r['pass@1']} | {r['stderr']} | {r['problems']} | {r['mean_thinking_tokens']} | {r['hit_budget_share']} "
                f"| {r['requests']} |"
                for b, r in per.items()
            ]
            lines.append("")
            continue
        lines += [
            f"## {mode}: temperature {p['temperature']}, top_p {p['top_p']}, {p['max_new_tokens']} new tokens",
            "",
            "| benchmark | pass@1 (%) | ± stderr | problems | samples per problem |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [f"| {b} | {r['pass@1']} | {r['stderr']} | {r['problems']} | {r['samples_per_problem']} |" for b, r in per.items()]
        lines.append("")
    benches = sorted({b for per in results.values() for b in per if any(b in s for s in PUBLISHED.values())})
    if benches:
        lines += [
            "## Published (OpenR1; sampled protocol: temperature 0.6, top_p 0.95, 32768 tokens; AIME 64 samples, MATH-500 4)",
            "",
            "| model | " + " | ".join(benches) + " |",
            "| --- |" + " --- |" * len(benches),
        ]
        lines += [f"| {name} | " + " | ".join(str(s.get(b, "")) for b in benches) + " |" for name, s in PUBLISHED.items()]
        if "sampled" in results:
            lines.append("| this model (sampled) | " + " | ".join(str(results["sampled"][b]["pass@1"]) for b in benches) + " |")
    return "\n".join(lines) + "\n"


def model_card_with_results(card: str, table: str) -> str:
    """The sft stage's model card with its Evaluation section replaced by this run's results."""
    head = card.split("\n## Evaluation", 1)[0].rstrip("\n")
    body = re.sub(r"(?m)^## ", "### ", table.split("\n", 1)[1].strip("\n"))
    return f"{head}\n\n## Evaluation\n\n{body}\n"


class EvaluateTask(LLMTask[Item]):
    """The student's answers to benchmark items in one mode (`sampled`: each benchmark's n; `greedy`: one)."""

    stage = "evaluate"

    def __init__(self, cfg: EvaluateConfig, seed: int, mode: str, dirs: TaskDirs | None = None):
        super().__init__(cfg.llm, seed, dirs, label=f"evaluate {mode}")
        self.cfg, self.mode = cfg, mode

    def messages(self, item: Item) -> list[tuple[str, str]]:
        return [("user", item.prompt)]

    def samples(self, item: Item) -> int:
        return samples_per_problem(self.cfg, item.benchmark, self.mode)

    def force_budget(self, items: list[Item], budget: int) -> list[Trace]:
        """Every item's budget-forced generation; each round is a journaled raw continuation."""
        bf, sampling = self.cfg.budget_forcing, mode_sampling(self.cfg, self.mode)
        tokenizer = load_tokenizer(self.llm.model, self.llm.revision)
        prompts = [
            ids_of(
                tokenizer,
                tokenizer.apply_chat_template([{"role": "user", "content": it.prompt}], tokenize=False, add_generation_prompt=True),
            )
            + ids_of(tokenizer, bf.thinking_prefix)
            for it in items
        ]

        def ask(rounds: Sequence[Round]) -> list[Reply]:
            reqs = [self.raw_request(r.prompt_ids, sampling, max_tokens=r.max_tokens, stop=r.stop, min_tokens=r.min_tokens) for r in rounds]
            answers = self.answer(reqs, sampling)
            return [
                Reply(answers[q.key].text, answers[q.key].finish_reason, q.key, answers[q.key].code, answers[q.key].error) for q in reqs
            ]

        self.tokenizer = tokenizer
        return force(prompts, budget, bf, tokenizer, ask)


Paths = STAGE.paths_record()  # its files, by the names its declaration gives them


def score_answers(asked: list[Asked[Item]], cfg: EvaluateConfig, n_options: dict[str, int]) -> list[tuple[str | None, bool, str]]:
    """(extracted answer, correct, status) per answer. Math goes through the verify stage's checker,
    grouped per problem so each gold is parsed once; multiple choice compares letters."""
    groups: dict[tuple[str, str], list[int]] = {}
    for idx, a in enumerate(asked):
        if a.item.kind == "math":
            groups.setdefault((a.item.benchmark, a.item.item), []).append(idx)
    checks = check_many(
        [(asked[idxs[0]].item.gold, [asked[i].answer.text for i in idxs]) for idxs in groups.values()],
        VerifyConfig(workers=cfg.workers, timeout_s=cfg.timeout_s),
    )
    verdicts: dict[int, tuple[str | None, bool, str]] = {}
    for idxs, per in zip(groups.values(), checks):
        for i, c in zip(idxs, per):
            verdicts[i] = (c.extracted, c.correct, c.status)
    for idx, a in enumerate(asked):
        if a.item.kind != "math":
            extracted = extract_choice(a.answer.text, n_options[a.item.benchmark])
            correct = extracted == a.item.gold
            verdicts[idx] = (extracted, correct, "ok" if correct else ("no_answer" if extracted is None else "mismatch"))
    return [verdicts[i] for i in range(len(asked))]


def run(cfg: EvaluateConfig, seed: int, benchmarks: dict[str, BenchmarkFile], paths: Paths) -> dict:
    items = [
        it
        for name, spec in cfg.benchmarks.items()
        for it in items_for(name, benchmarks[name], load_benchmark(name, benchmarks[name], spec.limit), cfg, seed)
    ]
    n_options = {name: 1 + len(benchmarks[name].incorrect_fields) for name in cfg.benchmarks}
    rows = []
    modes = protocols(cfg)
    for mode in modes:
        # The student's weights are in its request keys, so a retrained student is asked again.
        task = EvaluateTask(cfg, seed, mode, TaskDirs(journal=paths.journal, server_logs=paths.server_logs))
        budget = budget_of(mode)
        traces: list[Trace | None]
        if budget is not None:
            traces = list(task.force_budget(items, budget))
            asked = [
                Asked(it, 0, Request(t.answer.key if t.answer else "", (("raw", ""),), 0), scored(t, cfg)) for it, t in zip(items, traces)
            ]
        else:
            asked = task.ask(items, mode_sampling(cfg, mode))
            traces = [None] * len(asked)
        # Provenance: the model's contents (local directory), the verifier, the settings that shape an answer.
        provenance = {
            "model_fingerprint": task.model_fingerprint(),
            "verifier": library_version("math-verify"),
            "evaluate_params": task.settings_hash(
                cfg, benchmarks={k: benchmarks[k].model_dump(mode="json") for k in sorted(cfg.benchmarks)}
            ),
        }
        for a, t, (extracted, correct, status) in zip(asked, traces, score_answers(asked, cfg, n_options)):
            rows.append(
                {
                    "benchmark": a.item.benchmark,
                    "mode": mode,
                    "item": a.item.item,
                    "sample_index": a.sample_index,
                    "request_key": a.request.key,
                    "generation": a.answer.text if t is None else t.text(task.tokenizer, cfg.budget_forcing),
                    "finish_reason": a.answer.finish_reason,
                    "extracted_answer": extracted,
                    "gold": a.item.gold,
                    "correct": correct,
                    "verify_status": status,
                    "thinking_tokens": None if t is None else len(t.thinking),
                    "ignores_appended": None if t is None else t.ignores,
                    "thinking_capped": None if t is None else t.capped,
                    "requests": None if t is None else t.rounds,
                    "evaluate_code": a.answer.code,
                    **provenance,
                }
            )
    samples = pl.DataFrame(rows, schema=EVALUATION_SAMPLES.schema)
    write_table(samples, paths.samples, EVALUATION_SAMPLES)
    results = score(samples, modes, list(cfg.benchmarks))
    protocol = {mode: protocol_of(cfg, mode) for mode in modes}
    curve = scaling_curve(samples, results)
    extra = {"scaling_curve": curve} if curve else {}
    write_metrics(paths.metrics, "evaluate", model=cfg.llm.model, protocol=protocol, results=results, published=PUBLISHED, **extra)
    table = results_table(cfg.llm.model, protocol, results)
    if paths.results is not None:
        paths.results.parent.mkdir(parents=True, exist_ok=True)
        paths.results.write_text(table)
    if paths.model_card is not None:
        card = Path(cfg.llm.model) / "README.md"
        paths.model_card.parent.mkdir(parents=True, exist_ok=True)
        paths.model_card.write_text(model_card_with_results(card.read_text(), table) if card.is_file() else table)
    log.info("evaluate: %s", json.dumps(results))
    return results
