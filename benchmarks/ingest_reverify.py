"""Ingest a published corpus and re-verify its traces, at the corpus's real size and trace lengths.

    .venv/bin/python benchmarks/ingest_reverify.py [--rows 100000] [--layout openr1_math|limo] [--workers 2]

Corpus, generated locally as JSON lines in the published layout (distillery.corpora):
- openr1_math (open-r1/OpenR1-Math-220k, `default` config: 93,733 rows): every column of the card
  (problem, solution, answer, problem_type, question_type, source, uuid, is_reasoning_complete,
  generations, correctness_math_verify, correctness_llama, finish_reasons, correctness_count,
  messages), 2 generations a row (the card: two, in some cases four), `messages` holding the problem
  and one generation again (a correct one where there is one), as in the bundled example row
  (data/bundled/corpora/openr1_math.jsonl);
- limo (GAIR/LIMO): question, solution (the trace: reasoning, then "**Final Answer**" and a box),
  answer; one trace a row, finished traces only.
Problems: tests/support/realistic_math_text.py (MATH-500's word frequencies and sentence lengths);
reasoning: words drawn with the same frequencies (boxes left out), in sentences of MATH-500's lengths,
a quarter opening with R1's markers ("Wait,", "Hmm,", "Let me check"), paragraphs of 1-5 sentences,
after an R1 opening ("Okay, so I need to ..."); then `</think>`, a final solution and its box.
Golds: MATH-500's answers (integers, fractions, radicals, intervals, tuples, text), cycled, each pass
after the first shifting the gold's first number that is no exponent or index by 1000 x pass, so golds
rarely repeat (benchmarks/verify_speed.py does the same). Each finished trace boxes the gold as
written 45%, another correct form 10% (`\\dfrac`, `68.0`, spacing), a wrong answer 37%, no box 3%
(limo: drawn again, its solutions all end in a box), two different boxes 5%; 5% of the openr1_math
traces are cut at the generation limit (finish_reason "length", no `</think>`). The 45 + 10% correct
is assumed ("about half"; 55% of OpenR1's problems passed Math-Verify, Open R1 Update #2).

Trace lengths (characters of the whole generation, `<think>` to the box):
- published: the SFT-Math-45k card (huggingface.co/datasets/96kevinli29/SFT-Math-45k, a 45k sample
  of OpenR1-Math-220k's complete traces of at most 60,000 characters) gives the assistant turn's
  length as mean 16,254, p50 12,980, p90 32,888, p99 50,593 characters, the `<think>` block 88% of
  it; OpenR1-Math-220k was generated with a 16k-token limit, as only 75% of the problems could be
  solved in under 8k tokens (the Open R1 Update #2 blog, huggingface.co/blog/open-r1/update-2, and
  the dataset card);
- used: a log-normal through that p50 and p90 (median 12,980 characters, sigma 0.726); a draw past
  the limit is drawn again; the limit, 16k tokens, taken as 57,000 characters (assumed: ~3.5
  characters a token); the 5% truncated traces are exactly the limit long. The final solution
  after `</think>` is 4-20% of the generation (150-5,000 characters).
LIMO traces get the same lengths (not checked against LIMO's own).

Each step runs in its own process (`--child`), so its wall time, CPU time and peak memory are its own;
the corpus is written by another one, so no measured process inherits its memory:
- ingest: `ingest.run(IngestConfig(corpora={"bench": Corpus(...)}), seed, ingest.Paths(...))`, as
  rules/ingest.smk calls it;
- verify: `verify.run(VerifyConfig(workers=2), verify.Paths(...))` on ingest's own tables (in the
  pipeline, mix sits between; with no caps it keeps every ingested row).
Per step: the stage call's wall and CPU seconds (the process and its reaped workers; the workers'
share apart), peak RSS of the stage process (ru_maxrss), the process tree's peak and the largest
worker's (sampled every 0.2 s), time and peak RSS of the stage's big calls (VmHWM reset around each,
as benchmarks/dedupe_scale.py does: verify's read_table, check_many, write_table; ingest's
write_table) and the time of calls inside them (ingest streams its corpus: reading and parsing the
rows, map_row, the batched writes of the generations; verify: finding the answers, plan_checks, and
the workers' comparisons, DeadlinePool.run).
A step whose tree passes --max-rss-gb (default 20) is stopped, and the run stops there.

The default run (100,000 openr1_math rows, 2 workers) writes benchmarks/results/ingest_reverify.json;
any other run writes benchmarks/results/ingest_reverify_<rows>_<layout>.json, or --out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid as uuidlib
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import numpy as np  # noqa: E402
import psutil  # noqa: E402

from support.realistic_math_text import RealisticCorpus  # noqa: E402

BENCH_DIR = REPO / "data" / "bundled" / "benchmarks"
SEED = 0
DEFAULT_ROWS = 100_000
LAYOUTS = ("openr1_math", "limo")

# Trace lengths in characters (see the module docstring for the sources).
MEDIAN_CHARS = 12_980  # SFT-Math-45k card, p50 of the assistant turn
P90_CHARS = 32_888  # same, p90
SIGMA = math.log(P90_CHARS / MEDIAN_CHARS) / 1.2816  # 0.726: the log-normal through p50 and p90
LIMIT_CHARS = 57_000  # the 16k-token generation limit at ~3.5 characters a token (assumed)
TRUNCATED_SHARE = 0.05  # openr1_math only: traces cut at the limit
# Finished traces: what the final solution boxes (shares, in this order).
KINDS = (("gold_form", 0.45), ("other_correct_form", 0.10), ("wrong", 0.37), ("no_box", 0.03), ("several_boxes", 0.05))

OPENINGS = (
    "Okay, so I need to solve this problem.",
    "Okay, let's see.",
    "Alright, so I have this problem here.",
    "Okay, so I need to figure out",
    "Hmm, let me try to work through this.",
)
MARKERS = ("Wait,", "Hmm,", "Let me check:", "So", "But", "Alternatively,", "Then", "Therefore,", "Let me think.", "Okay,", "Now,")
PROBLEM_TYPES = ("Algebra", "Geometry", "Number Theory", "Combinatorics", "Inequalities", "Calculus", "Logic and Puzzles", "Other")
SOURCES = ("olympiads", "cn_contest", "aops_forum", "amc_aime", "inequalities", "number_theory", "olympiads_ref")
INSTRUCTION = "\nPlease reason step by step, and put your final answer within \\boxed{}."


# --- the corpus ----------------------------------------------------------------------------------


class TextMaker:
    """Reasoning text with MATH-500's word frequencies, in sentences and paragraphs."""

    def __init__(self, corpus: RealisticCorpus, rng: np.random.Generator):
        keep = np.array(["boxed" not in w and "think>" not in w for w in corpus.words])
        self.words = corpus.words[keep]
        p = corpus.probs[keep] / corpus.probs[keep].sum()
        self.cdf = np.cumsum(p)
        self.chars_per_word = float(np.array([len(w) + 1 for w in self.words]) @ p)
        self.rng = rng

    def text(self, chars: int) -> str:
        """About `chars` characters (exactly, when cut)."""
        rng = self.rng
        n = max(4, round(chars / self.chars_per_word))
        idx = np.minimum(np.searchsorted(self.cdf, rng.random(n), side="right"), len(self.words) - 1)
        words = self.words[idx].tolist()
        lengths = np.clip(np.round(rng.lognormal(math.log(12), 0.6, size=n // 6 + 2)), 3, 60).astype(int)
        ends = np.cumsum(lengths)
        ends = ends[ends < n].tolist() + [n]
        paragraph = (rng.random(len(ends)) < 0.3).tolist()
        marked = (rng.random(len(ends)) < 0.25).tolist()
        marker = rng.integers(len(MARKERS), size=len(ends)).tolist()
        start = 0
        for k, end in enumerate(ends):
            if marked[k]:
                words[start] = f"{MARKERS[marker[k]]} {words[start]}"
            words[end - 1] = words[end - 1].rstrip(".,?") + (".\n\n" if paragraph[k] else ".")
            start = end
        text = " ".join(words).replace("\n\n ", "\n\n").strip()
        return text[:chars]


def other_form(gold: str, rng: random.Random) -> str:
    """The gold written another way a grader accepts."""
    if re.fullmatch(r"-?\d+", gold):
        return rng.choice([f"{gold}.0", f"\\text{{{gold}}}", f"{gold}\\,"])
    return rng.choice([gold.replace("\\frac", "\\dfrac"), gold.replace(",", ", "), f" {gold} "])


def wrong_form(gold: str, rng: random.Random) -> str:
    if re.fullmatch(r"-?\d+", gold):
        return str(int(gold) + rng.choice([-2, -1, 1, 2, 10]))
    return rng.choice([f"{gold}+1", f"2{gold}" if not gold.startswith("-") else gold[1:], f"-{gold}"])


def boxed_ending(ans: str, rng: random.Random, limo: bool) -> str:
    if limo:  # LIMO's solutions end with a "**Final Answer**" heading and the box
        return f"\n\n**Final Answer**\n\\boxed{{{ans}}}"
    return rng.choice(
        [
            f"\n\n\\[\n\\boxed{{{ans}}}\n\\]",
            f"\n\n**Final Answer**\n\\boxed{{{ans}}}",
            f"\n\nTherefore, the answer is $\\boxed{{{ans}}}$.",
            f"\n\nThe final answer is \\(\\boxed{{{ans}}}\\).",
        ]
    )


def final_part(kind: str, gold: str, rng: random.Random, limo: bool) -> str:
    if kind == "gold_form":
        return boxed_ending(gold, rng, limo)
    if kind == "other_correct_form":
        return boxed_ending(other_form(gold, rng), rng, limo)
    if kind == "wrong":
        return boxed_ending(wrong_form(gold, rng), rng, limo)
    if kind == "no_box":
        return f"\n\nThe answer is {gold}."
    return f"\n\nAt first $\\boxed{{{wrong_form(gold, rng)}}}$, then, correcting the sign, $\\boxed{{{gold}}}$."


def trace_length(rng: np.random.Generator) -> int:
    while True:
        chars = int(rng.lognormal(math.log(MEDIAN_CHARS), SIGMA))
        if chars < LIMIT_CHARS:
            return max(300, chars)


def make_trace(maker: TextMaker, layout: str, gold: str, rng: random.Random) -> tuple[str, str]:
    """(kind, text) of one generation: `<think>` reasoning `</think>` final solution for openr1_math
    (a truncated one stops inside the reasoning), reasoning then final solution for limo."""
    opening = rng.choice(OPENINGS)
    if layout == "openr1_math" and rng.random() < TRUNCATED_SHARE:
        return "truncated", f"<think>\n{opening} {maker.text(LIMIT_CHARS - len(opening) - 9)}"
    chars = trace_length(maker.rng)
    final_chars = min(5000, max(150, int(chars * rng.uniform(0.04, 0.20))))
    kind = "no_box"
    while kind == "no_box":
        u, kind = rng.random(), KINDS[-1][0]
        for name, share in KINDS:
            if u < share:
                kind = name
                break
            u -= share
        if layout == "openr1_math":
            break  # LIMO's curated solutions all have their answer: no box is drawn again
    reasoning = f"{opening} {maker.text(max(100, chars - final_chars - 60))}"
    final = maker.text(final_chars) + final_part(kind, gold, rng, layout == "limo")
    if layout == "limo":
        return kind, f"{reasoning}\n\n{final}"
    return kind, f"<think>\n{reasoning}\n</think>\n\n{final}"


# A gold's first number that is no exponent or index: shifting "x^2" to "x^1002" would make a gold
# verify calls too complex.
_SHIFTABLE = re.compile(r"(?<![\d^_])(?<!\^\{)(?<!_\{)\d+")


def golds_for(rows: int) -> list[str]:
    golds = [json.loads(line)["answer"] for line in (BENCH_DIR / "math500.jsonl").read_text().splitlines()]
    out = []
    for p in range(rows):
        gold, cycle = golds[p % len(golds)].strip(), p // len(golds)
        if cycle:
            gold = _SHIFTABLE.sub(lambda m, shift=1000 * cycle: str(int(m.group()) + shift), gold, count=1)
        out.append(gold)
    return out


def make_corpus(rows: int, layout: str, path: Path) -> dict:
    """Write `rows` rows of `layout` to `path` (JSON lines); what was written, by kind and length."""
    corpus = RealisticCorpus.from_benchmarks(BENCH_DIR, seed=SEED)
    problems = [text for text, _ in corpus.clean_problems(rows)[:rows]]
    golds = golds_for(rows)
    rng, nrng = random.Random(SEED), np.random.default_rng(SEED)
    maker = TextMaker(corpus, nrng)
    kinds: Counter = Counter()
    lengths: list[int] = []
    finished: list[int] = []  # lengths of the traces not cut at the limit
    with path.open("w", encoding="utf-8") as f:
        for i, (problem, gold) in enumerate(zip(problems, golds)):
            if layout == "limo":
                kind, text = make_trace(maker, layout, gold, rng)
                row = {"question": problem, "solution": text, "answer": gold}
                kinds[kind] += 1
                lengths.append(len(text))
                finished.append(len(text))
            else:
                gens, reasons, correct = [], [], []
                for _ in range(2):
                    kind, text = make_trace(maker, layout, gold, rng)
                    gens.append(text)
                    reasons.append("length" if kind == "truncated" else "stop")
                    correct.append(kind in ("gold_form", "other_correct_form"))
                    kinds[kind] += 1
                    lengths.append(len(text))
                    if kind != "truncated":
                        finished.append(len(text))
                shown = gens[correct.index(True)] if any(correct) else gens[0]
                reference = maker.text(min(6000, max(200, int(nrng.lognormal(math.log(1200), 0.7))))) + f" $\\boxed{{{gold}}}$."
                row = {
                    "problem": problem,
                    "solution": reference,
                    "answer": gold,
                    "problem_type": rng.choice(PROBLEM_TYPES),
                    "question_type": rng.choice(["math-word-problem"] * 8 + ["MCQ", "proof"]),
                    "source": rng.choice(SOURCES),
                    "uuid": str(uuidlib.UUID(int=rng.getrandbits(128), version=4)),
                    "is_reasoning_complete": [r == "stop" for r in reasons],
                    "generations": gens,
                    "correctness_math_verify": correct,
                    "correctness_llama": None if rng.random() < 0.88 else correct,
                    "finish_reasons": reasons,
                    "correctness_count": sum(correct),
                    "messages": [{"content": problem + INSTRUCTION, "role": "user"}, {"content": shown, "role": "assistant"}],
                }
            f.write(json.dumps(row) + "\n")
            if (i + 1) % 10_000 == 0:
                print(f"corpus: {i + 1:,} rows", file=sys.stderr, flush=True)
    return {
        "traces": len(lengths),
        "trace_kinds": dict(sorted(kinds.items())),
        "trace_chars": quantiles(lengths),
        "finished_trace_chars": quantiles(finished),
    }


def quantiles(lengths: list[int]) -> dict:
    q = np.percentile(lengths, [10, 50, 90, 99])
    return {
        "mean": round(float(np.mean(lengths))),
        "p10": round(q[0]),
        "p50": round(q[1]),
        "p90": round(q[2]),
        "p99": round(q[3]),
        "max": int(max(lengths)),
    }


# --- children: one step each ---------------------------------------------------------------------


def _vm_hwm_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def _reset_vm_hwm() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _cpu_s() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class TreeSampler(threading.Thread):
    """Peak RSS of this process and its descendants together, and of the largest descendant, sampled.
    (A worker's own ru_maxrss cannot say: Linux carries the parent's peak into a forked child.)"""

    def __init__(self, every_s: float = 0.2):
        super().__init__(daemon=True)
        self.every_s, self.peak, self.largest_child, self.stop = every_s, 0, 0, threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self.stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                if p.pid != me.pid:
                    self.largest_child = max(self.largest_child, rss)
            self.peak = max(self.peak, total)
            self.stop.wait(self.every_s)


def timed_calls(module, names: tuple[str, ...]) -> tuple[dict, dict, list]:
    """Wrap `module.<name>` for each name: seconds and peak RSS (VmHWM, reset around each call) per
    name; the time and memory between the calls go to "other"."""
    seconds: dict[str, float] = {}
    peaks: dict[str, float] = {}
    overall = [0.0]

    def peak(label: str) -> None:
        mb = _vm_hwm_mb()
        overall[0] = max(overall[0], mb)
        peaks[label] = max(peaks.get(label, 0.0), mb)

    for name in names:
        original = getattr(module, name, None)
        if original is None:
            continue

        def wrapper(*a, _f=original, _n=name, **k):
            peak("other")
            _reset_vm_hwm()
            t = time.perf_counter()
            try:
                return _f(*a, **k)
            finally:
                seconds[_n] = seconds.get(_n, 0.0) + time.perf_counter() - t
                peak(_n)
                _reset_vm_hwm()

        setattr(module, name, wrapper)
    return seconds, peaks, overall


def time_only(module, name: str, seconds: dict) -> None:
    """Wrap `module.<name>` (called many times, inside a measured call): its seconds only."""
    original = getattr(module, name, None)
    if original is None:
        return

    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t

    setattr(module, name, wrapper)


def time_iterator(module, name: str, seconds: dict) -> None:
    """Wrap `module.<name>`, a function returning an iterator: the seconds spent getting its items."""
    original = getattr(module, name, None)
    if original is None:
        return

    def items(it):
        while True:
            t = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t
                return
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t
            yield item

    setattr(module, name, lambda *a, **k: items(iter(original(*a, **k))))


def measure(call, module, names: tuple[str, ...], inner: dict | None = None) -> dict:
    seconds, peaks, overall = timed_calls(module, names)
    sampler = TreeSampler()
    sampler.start()
    c, t = _cpu_s(), time.perf_counter()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = call()
    wall, cpu = time.perf_counter() - t, _cpu_s() - c
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    workers_cpu = after.ru_utime + after.ru_stime - kids.ru_utime - kids.ru_stime
    sampler.stop.set()
    sampler.join()
    peaks["other"] = max(peaks.get("other", 0.0), _vm_hwm_mb())
    overall[0] = max(overall[0], peaks["other"])
    other_s = wall - sum(seconds.values())
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "workers_cpu_s": round(workers_cpu, 2),
        "peak_rss_mb": round(max(overall[0], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)),
        "largest_worker_peak_rss_mb": round(sampler.largest_child / 2**20),
        "tree_peak_rss_mb": round(sampler.peak / 2**20),
        "calls_s": {k: round(v, 2) for k, v in seconds.items()} | {"other": round(other_s, 2)},
        "calls_peak_rss_mb": {k: round(v) for k, v in peaks.items()},
        "calls_peak_rss_own": _reset_vm_hwm(),
        **({"inner_calls_s": {k: round(v, 2) for k, v in inner.items()}} if inner is not None else {}),
        "result": out,
    }


def child_ingest(work: Path, layout: str) -> dict:
    from distillery.config import Corpus, IngestConfig
    from distillery.stages import ingest

    cfg = IngestConfig(corpora={"bench": Corpus(layout=layout, path=str(work / "corpus.jsonl"), licence="apache-2.0")})
    out = work / "ingest"
    out.mkdir(exist_ok=True)
    paths = ingest.Paths(
        problems=out / "problems.parquet",
        generations=out / "generations.parquet",
        rejected=out / "rejected.parquet",
        metrics=out / "metrics.json",
    )
    # Ingest streams the corpus: reading (JSON parsing included), mapping and the batched writes of
    # the generations interleave, so they are timed inside the call (time only); write_table writes
    # the problems and rejections at the end. A name the stage no longer has is left out.
    inner: dict[str, float] = {}
    time_iterator(ingest, "iter_rows", inner)
    time_iterator(ingest, "load_rows", inner)
    time_only(ingest, "map_row", inner)
    if hasattr(ingest, "TableWriter"):
        time_only(ingest.TableWriter, "write", inner)
    m = measure(lambda: ingest.run(cfg, SEED, paths).as_dict(), ingest, ("write_table",), inner)
    metrics = json.loads(paths.metrics.read_text())
    m["result"] = {"counts": m["result"], "generations": metrics["corpora"]["bench"]["generations"]}
    m["parquet_mb"] = {p.name: round(p.stat().st_size / 2**20, 1) for p in out.glob("*.parquet")}
    return m


def child_verify(work: Path, workers: int) -> dict:
    from distillery import verification
    from distillery.config import VerifyConfig
    from distillery.stages import verify

    out = work / "verify"
    out.mkdir(exist_ok=True)
    paths = verify.Paths(
        generations=work / "ingest" / "generations.parquet",
        problems=work / "ingest" / "problems.parquet",
        verified=out / "verified.parquet",
        metrics=out / "metrics.json",
    )
    # Inside check_many: plan_checks finds each generation's answer in this process (the workers
    # get only the answers to compare).
    inner: dict[str, float] = {}
    time_only(verification, "plan_checks", inner)
    time_only(verification.DeadlinePool, "run", inner)
    m = measure(lambda: verify.run(VerifyConfig(workers=workers), paths).height, verify, ("read_table", "check_many", "write_table"), inner)
    metrics = json.loads(paths.metrics.read_text())
    m["result"] = {
        "generations": m["result"],
        "by_status": {k: v for k, v in metrics["generations_by_status"].items() if v},
        "generations_correct": metrics["generations_correct"],
        "generations_complete": metrics["generations_complete"],
        "problem_pass_rate": metrics["problem_pass_rate"],
        "workers_killed_at_deadline": metrics["workers_killed_at_deadline"],
    }
    m["parquet_mb"] = {"verified.parquet": round(paths.verified.stat().st_size / 2**20, 1)}
    return m


# --- the parent: runs the children, never holds the corpus ------------------------------------------


def _kids_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy (every process, every core)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def run_child(args: list[str], max_rss_mb: float) -> dict:
    """Run one child; stop it (and its workers) if the tree's RSS passes `max_rss_mb`. Also what other
    processes took of the machine meanwhile: on a shared machine, a figure to read the timings by."""
    me = psutil.Process()
    c, t, busy, mine = _kids_cpu_s(), time.perf_counter(), _busy_cpu_s(), sum(me.cpu_times()[:2])
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True)
    reader.start()
    tree, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        total = 0
        try:
            for p in [tree, *tree.children(recursive=True)]:
                total += p.memory_info().rss
        except psutil.Error:
            pass
        peak = max(peak, total)
        if total > max_rss_mb * 2**20:
            for p in tree.children(recursive=True):
                p.kill()
            proc.kill()
            proc.wait()
            return {"stopped_at_rss_mb": round(total / 2**20), "after_s": round(time.perf_counter() - t, 1)}
        time.sleep(0.5)
    reader.join()
    if proc.returncode:
        raise SystemExit(f"child {args[:2]} failed with exit code {proc.returncode} (its stderr is above)")
    result = json.loads(out[-1])
    result["process_wall_s"] = round(time.perf_counter() - t, 2)
    result["process_cpu_s"] = round(_kids_cpu_s() - c, 2)  # with interpreter start and imports
    other = _busy_cpu_s() - busy - result["process_cpu_s"] - (sum(me.cpu_times()[:2]) - mine)
    result["other_processes_cpu_s"] = round(max(0.0, other), 1)
    result["other_processes_cores"] = round(max(0.0, other) / result["process_wall_s"], 2)  # on average
    return result


def summary(step: dict, rows: int, traces: int) -> dict:
    return {
        "wall_s": step["wall_s"],
        "cpu_s": step["cpu_s"],
        "peak_rss_mb": step["peak_rss_mb"],
        "tree_peak_rss_mb": step["tree_peak_rss_mb"],
        "rows_per_s": round(rows / step["wall_s"], 1),
        "traces_per_s": round(traces / step["wall_s"], 1),
        "other_processes_cores": step["other_processes_cores"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="corpus rows (openr1_math: 2 traces each)")
    ap.add_argument("--layout", choices=LAYOUTS, default="openr1_math")
    ap.add_argument("--workers", type=int, default=2, help="verify.workers")
    ap.add_argument("--max-rss-gb", type=float, default=20.0, help="stop a step whose process tree passes this RSS")
    ap.add_argument("--out", type=Path, help="results file (default: benchmarks/results/ingest_reverify[_<rows>_<layout>].json)")
    ap.add_argument("--child", choices=["corpus", "ingest", "verify"])
    ap.add_argument("--work", type=Path)
    args = ap.parse_args()
    if args.child == "corpus":
        print(json.dumps(make_corpus(args.rows, args.layout, args.work / "corpus.jsonl")))
        return
    if args.child == "ingest":
        print(json.dumps(child_ingest(args.work, args.layout)))
        return
    if args.child == "verify":
        print(json.dumps(child_verify(args.work, args.workers)))
        return

    limit = args.max_rss_gb * 1024
    report: dict = {"rows": args.rows, "layout": args.layout, "cores": len(os.sched_getaffinity(0)), "verify_workers": args.workers}
    with tempfile.TemporaryDirectory(prefix="ingest_reverify_") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        corpus = run_child(["--child", "corpus", "--rows", str(args.rows), "--layout", args.layout, "--work", str(work)], limit)
        size_mb = (work / "corpus.jsonl").stat().st_size / 2**20
        report |= {"traces": corpus["traces"], "corpus_mb": round(size_mb, 1), "corpus": corpus}
        print(
            f"corpus: {args.rows:,} rows, {corpus['traces']:,} traces, {size_mb:,.1f} MB of JSON lines, written in "
            f"{time.perf_counter() - t:.1f} s; trace characters {corpus['trace_chars']} "
            f"(finished ones: {corpus['finished_trace_chars']}); kinds {corpus['trace_kinds']}",
            flush=True,
        )
        for step, extra in (("ingest", ["--layout", args.layout]), ("verify", ["--workers", str(args.workers)])):
            result = run_child(["--child", step, "--work", str(work), *extra], limit)
            report[step] = result
            if "stopped_at_rss_mb" in result:
                print(f"{step}: stopped at {result['stopped_at_rss_mb']:,} MB RSS after {result['after_s']} s (limit {limit:,.0f} MB)")
                break
            print(
                f"{step}: {result['wall_s']:.1f} s wall, {result['cpu_s']:.1f} CPU-s, peak RSS {result['peak_rss_mb']:,} MB "
                f"(tree {result['tree_peak_rss_mb']:,} MB, largest worker {result['largest_worker_peak_rss_mb']:,} MB, "
                f"workers {result['workers_cpu_s']:.1f} CPU-s); calls {result['calls_s']} s (inside: {result.get('inner_calls_s', {})}), "
                f"peaks {result['calls_peak_rss_mb']} MB; other processes used {result['other_processes_cores']} cores meanwhile",
                flush=True,
            )
    traces = report["traces"]
    done = [s for s in ("ingest", "verify") if s in report and "stopped_at_rss_mb" not in report[s]]
    report["summary"] = {s: summary(report[s], args.rows, traces) for s in done}
    if len(done) == 2:
        i, v = report["ingest"], report["verify"]
        report["summary"]["total"] = {
            "wall_s": round(i["wall_s"] + v["wall_s"], 2),
            "cpu_s": round(i["cpu_s"] + v["cpu_s"], 2),
            "rows_per_s": round(args.rows / (i["wall_s"] + v["wall_s"]), 1),
            "traces_per_s": round(traces / (i["wall_s"] + v["wall_s"]), 1),
        }
        report["ingest_share_of_total_wall"] = round(i["wall_s"] / (i["wall_s"] + v["wall_s"]), 3)
        report["ingest_share_of_total_cpu"] = round(i["cpu_s"] / (i["cpu_s"] + v["cpu_s"]), 3)
        report["verify_status_counts"] = v["result"]["by_status"]
    print(json.dumps(report, indent=2))
    for s, f in report["summary"].items():
        print(
            f"{s}: {f['wall_s']:.1f} s wall, {f['cpu_s']:.1f} CPU-s"
            + (f", peak RSS {f['peak_rss_mb']:,} MB (tree {f['tree_peak_rss_mb']:,} MB)" if "peak_rss_mb" in f else "")
            + f", {f['rows_per_s']:,} rows/s, {f['traces_per_s']:,} traces/s"
        )
    if len(done) == 2:
        print(
            f"ingest share of total: {report['ingest_share_of_total_wall']:.3f} of wall, {report['ingest_share_of_total_cpu']:.3f} of CPU"
        )
        print(f"verify statuses: {report['verify_status_counts']}")
    default = (args.rows, args.layout, args.workers) == (DEFAULT_ROWS, "openr1_math", 2)
    out = args.out or REPO / "benchmarks" / "results" / (
        "ingest_reverify.json" if default else f"ingest_reverify_{args.rows}_{args.layout}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
