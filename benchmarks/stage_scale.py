"""The stages after generation at scale, each job run as its Snakemake rule runs it: wall time, CPU
time and peak memory per job at two sizes, and how they grow between the sizes (issue "Past one
node's memory: every stage streams or runs per shard").

    .venv/bin/python benchmarks/stage_scale.py --sizes 200000,800000 --write-results
    .venv/bin/python benchmarks/stage_scale.py --sizes 2000,8000          # a quick check, nothing written

Sizes are generations (two per problem). Each size gets its own work directory (`--work-dir`, default
a new one under /tmp), deleted before the next size starts unless `--keep`. Unless `--keep`, a table
no later job reads is deleted when its last reader ends: each copy of the traces is ~1.3 GB per
100,000 generations, and at most ~4 copies are on disk at once (800,000 wants ~45 GB free). Writing the inputs
takes about 0.25 ms per generation; the generator itself stays under ~1 GB.

Data: what sample and generate would have left, in the exact schemas of distillery.tables, written
in batches of 1,000 problems:
- data/sample/problems.parquet (PROBLEMS): generations / 2 problems with MATH-500's word frequencies
  and sentence lengths (tests/support/realistic_math_text.py), 5% near duplicates of others and a
  few MATH-500/AIME problems planted, so dedupe's near-duplicate and decontamination steps have real
  work; golds are MATH-500's answers in their own forms (`\\frac{14}{3}`, `(3, \\frac{\\pi}{2})`,
  `\\text{Evelyn}`); sources, types and a reference solution (median ~1 KB) as in NuminaMath.
- data/generate/shards/shard-<k>.parquet (GENERATION_SHARD), `--shards` of them (default 8), each
  problem in shard `distillery.keys.shard_of(uuid, K)` as generate puts it: R1-style traces
  `<think>\\n...\\n</think>\\n\\n<summary> ... $\\boxed{answer}$.`, lengths log-normal with median
  25 KB (mean 29 KB with the truncated ones), capped at 64 KB (16,384 tokens, the teacher's
  max_new_tokens here), built from 400,000 sentences of the same vocabulary (so zstd finds no more
  repetition than in real text: 2.3x); half of the answers are the gold, half another MATH-500
  answer; 5% are truncated at the cap (finish_reason `length`, no `</think>`, no box). Every column
  is filled: request keys, teacher, sampling, token counts (chars / 4), provenance strings; and
  sample's other outputs (rejected table, metrics), so that the DAG is complete.

Jobs: the work directory gets params.yaml (this repository's, with generate.num_shards = --shards,
no ingested corpora, the teacher a hub id so the shards count as generate's, and the judge
`backend: openai` pointed at a stub server), prompts/ and the bundled benchmarks. The jobs are then
whatever `snakemake -n -p` plans for data/build/dataset/README.md and data/preferences/pairs.parquet
in that directory, with the shell commands Snakemake would run, in DAG order: a verify_shard and a
judge_shard job per shard, generate_gather, verify_gather, judge_gather, dedupe, build and preferences. `--generations-per-shard N` sizes
generate.num_shards to the data, as a team would (25,000: 8 shards at 200,000, 32 at 800,000);
without it every size gets `--shards`.
Each job runs alone, as Snakemake runs a shell job (bash, `set -euo pipefail; ` first, the rule's
threads in OMP_NUM_THREADS and the like, --cores, default this machine's). Per job: wall time; CPU
time (user + system) of the job and every process it waited for (its verify workers); peak RSS:
the largest single process's (ru_maxrss over the processes a small runner process waited for:
exact), and the process tree's summed RSS sampled every 0.2 s ("tree"; forked workers count shared
pages twice there). A rule with several jobs (per shard) is summed for time, its largest job for RSS.

The judge's server is a stub (`--stub-server`, a ThreadingHTTPServer in its own process): an
OpenAI-compatible /v1/chat/completions (and /v1/models) that answers every request at once with two
sentences and `Verdict: DIFFERENT` (or EQUIVALENT for ~10%, AMBIGUOUS for ~5%, chosen by a hash of
the prompt), n choices for a request with n, usage in tokens (chars / 4). The model is not what is
measured; the stub's own CPU is not in the judge job's figures, but it shares the machine's cores.

Today (the issue, measured on 2 cores / 24 GB before this benchmark existed, one job per stage):

| stage | 50,000 generations: peak RSS | 200,000 generations: peak RSS, wall |
| --- | --- | --- |
| generate_gather | 2.7 GB | 10.7 GB, 37 s |
| verify | 3.9 GB | 15.4 GB, 297 s |
| judge (a local stub server answering at once) | 2.9 GB | 11.0 GB, 331 s |
| dedupe | 0.3 GB | 0.9 GB, 10 s |
| build | 3.9 GB | 14.1 GB, 58 s |

Done when (the issue): at 200,000 and 800,000 generations every job's peak RSS is within 20% between
the sizes and under 4 GB, with per-shard verify and judge jobs.

Results go to benchmarks/results/stage_scale.json with `--write-results` only. `--rerunnable` keeps
each size's work directory with the inputs of dedupe, build and preferences (the judged table, the
problems, dedupe's outputs) and the plan; `--rerun dedupe,build,preferences --work-dir D` then runs
those jobs again there with this checkout's code and puts their figures in place of the old ones:
a change to them measured on the same inputs without the hour the traces take to remake.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import yaml  # noqa: E402

from distillery.keys import problem_key, shard_of  # noqa: E402
from distillery.tables import GENERATION_SHARD, GROUP_ROWS, PROBLEMS, SAMPLE_REJECTED, TableWriter  # noqa: E402

from support.realistic_math_text import RealisticCorpus  # noqa: E402

BENCH_DIR = REPO / "data" / "bundled" / "benchmarks"
VENV_BIN = REPO / ".venv" / "bin"
RESULTS = REPO / "benchmarks" / "results" / "stage_scale.json"
SEED = 0
DEFAULT_SIZES = (200_000, 800_000)
DEFAULT_SHARDS = 8
GENERATIONS_PER_PROBLEM = 2
# build's card and preferences' pairs: the DAG up to build and preferences
TARGETS = ("data/build/dataset/README.md", "data/preferences/pairs.parquet")
# The jobs `--rerun` can run again on a kept work directory: those whose inputs are small to keep.
RERUN_RULES = ("dedupe", "build", "preferences")
RULE_TARGETS = {"dedupe": "data/dedupe/kept.parquet", "build": TARGETS[0], "preferences": TARGETS[1]}
RSS_BAR_MB = 4096  # the bar: every job under 4 GB at both sizes, within 20% between them

# Traces: log-normal lengths, median 25 KB; the cap is the teacher's max_new_tokens at 4 chars a token.
TRACE_MEDIAN_CHARS = 25_000
TRACE_SIGMA = 0.45
MAX_NEW_TOKENS = 16_384
TRACE_MAX_CHARS = 4 * MAX_NEW_TOKENS
TRACE_MIN_CHARS = 1_500
CORRECT_SHARE = 0.5
TRUNCATED_SHARE = 0.05
SENTENCE_POOL = 400_000
BATCH_PROBLEMS = 1_000  # problems per written batch (~55 MB of trace text)

TEACHER = {"backend": "openai", "model": "deepseek-ai/DeepSeek-R1", "revision": "56d4cbbb4d29f4355bab4b9a39ccb717a14ad5ad"}
JUDGE_MODEL = "stub-judge"
API_KEY_ENV = "STAGE_SCALE_API_KEY"
# NuminaMath-1.5's sources (OpenR1-Math-220k's), roughly in its proportions.
SOURCES = {
    "olympiads": 0.45,
    "cn_contest": 0.12,
    "aops_forum": 0.08,
    "amc_aime": 0.04,
    "inequalities": 0.03,
    "number_theory": 0.03,
    "cn_k12": 0.15,
    "orca_math": 0.05,
    "synthetic_math": 0.05,
}
PROBLEM_TYPES = ["Algebra", "Geometry", "Number Theory", "Combinatorics", "Inequalities", "Calculus", "Logic and Puzzles", "Other"]
QUESTION_TYPES = {"math-word-problem": 0.85, "MCQ": 0.1, "other": 0.05}  # sample drops proofs
R1_OPENERS = ["", "", "", "", "Wait, ", "Hmm, ", "So ", "But ", "Let me check: ", "Alternatively, ", "Therefore, ", "Okay, "]


# --- synthetic inputs -------------------------------------------------------------------------------


def hexdigest(text: str, n: int = 64) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def sentence_pool(corpus: RealisticCorpus, rng: np.random.Generator, size: int) -> np.ndarray:
    """Sentences of MATH-500's words and sentence lengths, with R1's openers and paragraph breaks. No
    word with a \\boxed in it: an answer's box is placed on purpose (two boxes are a hedge)."""
    keep = np.array(["boxed" not in w for w in corpus.words])
    words, probs = corpus.words[keep], corpus.probs[keep] / corpus.probs[keep].sum()
    lengths = np.clip(np.round(rng.lognormal(np.log(12), 0.6, size=size)), 3, 60).astype(int)
    flat = rng.choice(words, size=int(lengths.sum()), p=probs).tolist()
    openers = rng.choice(np.array(R1_OPENERS, dtype=object), size=size).tolist()
    breaks = (rng.random(size) < 0.25).tolist()
    out, pos = [], 0
    for k, opener, brk in zip(lengths.tolist(), openers, breaks):
        text = " ".join(flat[pos : pos + k]).rstrip(".?,")
        pos += k
        out.append(f"{opener}{text}.{chr(10) * 2 if brk else ' '}")
    return np.array(out, dtype=object)


@dataclass
class TextMaker:
    pool: np.ndarray
    mean_chars: float

    def texts(self, rng: np.random.Generator, lengths: np.ndarray) -> list[str]:
        """One text per length: pool sentences, cut at a word boundary near the length."""
        lengths = np.asarray(lengths).astype(int)
        need = np.ceil(lengths / self.mean_chars * 1.25 + 3).astype(int)
        ids = rng.integers(0, len(self.pool), size=int(need.sum()))
        out, pos = [], 0
        for n, k in zip(lengths.tolist(), need.tolist()):
            text = "".join(self.pool[ids[pos : pos + k]].tolist())
            pos += k
            while len(text) < n:  # a run of short sentences: top up
                text += "".join(self.pool[rng.integers(0, len(self.pool), size=k)].tolist())
            cut = text.rfind(" ", 0, n)
            out.append(text[: cut if cut > n // 2 else n].rstrip())
        return out


def benchmark_golds() -> list[str]:
    rows = [json.loads(line) for line in (BENCH_DIR / "math500.jsonl").read_text(encoding="utf-8").splitlines()]
    return [str(r["answer"]) for r in rows if str(r.get("answer", "")).strip()]


def problem_texts(corpus: RealisticCorpus, n: int) -> list[str]:
    """n problem texts: clean ones and 5% near duplicates of them (corpus.clean_problems), a few
    benchmark problems planted (verbatim and edited) for decontamination."""
    planted = min(100, n // 1000)
    clean = [text for text, _ in corpus.clean_problems(int((n - 2 * planted) / 1.05) + 2)]  # and 5% more: the duplicates
    texts = clean[: n - 2 * planted] + [text for text, _ in corpus.planted(verbatim=planted, edited=planted)]
    rng = np.random.default_rng(SEED + 3)
    return [texts[i] for i in rng.permutation(len(texts))]


@dataclass
class InputStats:
    problems: int = 0
    generations: int = 0
    correct: int = 0
    truncated: int = 0
    trace_chars: int = 0
    rows_per_shard: list[int] = field(default_factory=list)
    shard_bytes: int = 0
    problems_bytes: int = 0
    seconds: float = 0.0
    generator_peak_rss_mb: float = 0.0

    def as_dict(self) -> dict:
        return {
            "problems": self.problems,
            "generations": self.generations,
            "correct_answers": self.correct,
            "truncated": self.truncated,
            "trace_text_mb": round(self.trace_chars / 1e6, 1),
            "mean_trace_kb": round(self.trace_chars / max(self.generations, 1) / 1e3, 1),
            "rows_per_shard": self.rows_per_shard,
            "shards_on_disk_mb": round(self.shard_bytes / 1e6, 1),
            "problems_on_disk_mb": round(self.problems_bytes / 1e6, 1),
            "written_in_s": round(self.seconds, 1),
            "generator_peak_rss_mb": round(self.generator_peak_rss_mb),
        }


def write_inputs(work: Path, generations: int, shards: int) -> InputStats:
    """sample's and generate's outputs for `generations` generations, in batches."""
    started = time.perf_counter()
    rng = np.random.default_rng(SEED)
    corpus = RealisticCorpus.from_benchmarks(BENCH_DIR, seed=SEED)
    pool = sentence_pool(corpus, rng, SENTENCE_POOL)
    maker = TextMaker(pool, float(np.mean([len(s) for s in pool.tolist()])))
    golds = benchmark_golds()
    n_problems = generations // GENERATIONS_PER_PROBLEM
    texts = problem_texts(corpus, n_problems)
    sources, source_p = list(SOURCES), np.array(list(SOURCES.values())) / sum(SOURCES.values())
    qtypes, qtype_p = list(QUESTION_TYPES), np.array(list(QUESTION_TYPES.values())) / sum(QUESTION_TYPES.values())
    sampling = json.dumps(
        {"max_new_tokens": MAX_NEW_TOKENS, "n": GENERATIONS_PER_PROBLEM, "temperature": 0.6, "top_p": 0.95}, sort_keys=True
    )
    stats = InputStats(rows_per_shard=[0] * shards)
    seen: set[str] = set()
    shard_dir = work / "data" / "generate" / "shards"
    writers = [TableWriter(shard_dir / f"shard-{k}.parquet", GENERATION_SHARD) for k in range(shards)]
    problems_writer = TableWriter(work / "data" / "sample" / "problems.parquet", PROBLEMS)
    for start in range(0, n_problems, BATCH_PROBLEMS):
        batch = texts[start : start + BATCH_PROBLEMS]
        b = len(batch)
        src = rng.choice(len(sources), size=b, p=source_p).tolist()
        gold_ix = rng.integers(0, len(golds), size=b)
        uuids, problems_src = [], []
        for text, s in zip(batch, src):
            source = sources[s]
            uuid = problem_key(text, source)
            while uuid in seen:  # the same text twice from one source (vanishingly rare): another source
                source = sources[(sources.index(source) + 1) % len(sources)]
                uuid = problem_key(text, source)
            seen.add(uuid)
            uuids.append(uuid)
            problems_src.append(source)
        answers = [golds[i] for i in gold_ix.tolist()]
        solutions = [
            f"{body}\n\nThe answer is $\\boxed{{{a}}}$."
            for body, a in zip(maker.texts(rng, np.clip(rng.lognormal(np.log(1000), 0.6, size=b), 200, 8000)), answers)
        ]
        problems_writer.write(
            pl.DataFrame(
                {
                    "uuid": uuids,
                    "problem": batch,
                    "solution": solutions,
                    "answer": answers,
                    "problem_type": [PROBLEM_TYPES[i] for i in rng.integers(0, len(PROBLEM_TYPES), size=b).tolist()],
                    "question_type": [qtypes[i] for i in rng.choice(len(qtypes), size=b, p=qtype_p).tolist()],
                    "source": problems_src,
                    "synthetic": [False] * b,
                    "source_row": list(range(start, start + b)),
                    "sample_params": ["64366b0a97461e8e"] * b,
                    "sample_code": ["distillery 0.1.0 code 1f6aae139b29"] * b,
                    "source_version": ["md5 3bcd286bb4c18218ec9cf227c8b7e602"] * b,
                },
                schema=PROBLEMS.schema,
            )
        )

        # Two generations per problem.
        g = b * GENERATIONS_PER_PROBLEM
        owner = np.repeat(np.arange(b), GENERATIONS_PER_PROBLEM)
        lengths = np.clip(rng.lognormal(np.log(TRACE_MEDIAN_CHARS), TRACE_SIGMA, size=g), TRACE_MIN_CHARS, TRACE_MAX_CHARS).astype(int)
        truncated = rng.random(g) < TRUNCATED_SHARE
        lengths[truncated] = TRACE_MAX_CHARS
        correct = rng.random(g) < CORRECT_SHARE
        wrong_ix = (gold_ix[owner] + rng.integers(1, len(golds), size=g)) % len(golds)
        summary_lengths = np.clip(rng.lognormal(np.log(900), 0.5, size=g), 200, 4000).astype(int)
        bodies = maker.texts(rng, np.maximum(lengths - summary_lengths - 60, 500))
        summaries = maker.texts(rng, summary_lengths)
        gens, finish = [], []
        for j in range(g):
            if truncated[j]:
                gens.append(("<think>\n" + bodies[j] + " " + summaries[j])[:TRACE_MAX_CHARS])
                finish.append("length")
                continue
            answer = answers[owner[j]] if correct[j] else golds[wrong_ix[j]]
            if not correct[j] and answer == answers[owner[j]]:  # MATH-500 repeats some answers
                answer = f"{answer} + 1"
            gens.append(f"<think>\n{bodies[j]}\n</think>\n\n{summaries[j]}\n\nTherefore, the final answer is $\\boxed{{{answer}}}$.")
            finish.append("stop")
            stats.correct += bool(correct[j])
        owners = owner.tolist()
        sample_index = np.tile(np.arange(GENERATIONS_PER_PROBLEM), b).tolist()
        frame = pl.DataFrame(
            {
                "uuid": [uuids[o] for o in owners],
                "sample_index": sample_index,
                "request_key": [hexdigest(f"{uuids[o]}\x1f{i}\x1f{SEED}") for o, i in zip(owners, sample_index)],
                "generation": gens,
                "finish_reason": finish,
                "status": ["ok"] * g,
                "prompt_tokens": [(len(batch[o]) + 110) // 4 for o in owners],
                "completion_tokens": [len(t) // 4 for t in gens],
                "error": [None] * g,
                "teacher_backend": [TEACHER["backend"]] * g,
                "teacher_model": [TEACHER["model"]] * g,
                "teacher_revision": [TEACHER["revision"]] * g,
                "sampling": [sampling] * g,
                "teacher_fingerprint": ["9c1e52f0a7d3b864"] * g,
                "generate_params": ["4810a9e926b1c84a"] * g,
                "generate_code": ["distillery 0.1.0 code 496e246054ff"] * g,
            },
            schema=GENERATION_SHARD.schema,
        )
        shard = pl.Series([shard_of(uuids[o], shards) for o in owners])
        for k in range(shards):
            part = frame.filter(shard == k)
            if part.height:
                writers[k].write(part)
                stats.rows_per_shard[k] += part.height
        stats.problems += b
        stats.generations += g
        stats.truncated += int(truncated.sum())
        stats.trace_chars += sum(len(t) for t in gens)
    for w in [problems_writer, *writers]:
        w.close()
    # generate writes each shard in key order (uuid, sample_index), which the gathers' merge relies on.
    for k in range(shards):
        path = shard_dir / f"shard-{k}.parquet"
        sorted_rows = pl.read_parquet(path).sort("uuid", "sample_index")
        with TableWriter(path, GENERATION_SHARD, GROUP_ROWS) as w:
            for offset in range(0, sorted_rows.height, 4096):
                w.write(sorted_rows.slice(offset, 4096))
        del sorted_rows
    # The rest of sample's outputs, so that Snakemake sees a finished sample.
    TableWriter(work / "data" / "sample" / "rejected.parquet", SAMPLE_REJECTED).close()
    write_json(
        work / "metrics" / "sample.json",
        {"stage": "sample", "counts": {"rows_in": stats.problems, "kept": stats.problems, "rejected": 0, "rejected_by_reason": {}}},
    )
    # Times as the jobs would have left them: sample's outputs, then the shards (Snakemake compares them).
    now = time.time()
    for path in (work / "data" / "sample").glob("*.parquet"):
        os.utime(path, (now - 120, now - 120))
    os.utime(work / "metrics" / "sample.json", (now - 120, now - 120))
    for path in shard_dir.glob("shard-*.parquet"):
        os.utime(path, (now - 60, now - 60))
    stats.shard_bytes = sum(p.stat().st_size for p in shard_dir.glob("shard-*.parquet"))
    stats.problems_bytes = (work / "data" / "sample" / "problems.parquet").stat().st_size
    stats.seconds = time.perf_counter() - started
    stats.generator_peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return stats


def write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


# --- the work directory's params --------------------------------------------------------------------


def write_params(work: Path, shards: int, judge_url: str) -> None:
    """This repository's params.yaml, changed only where the synthetic run needs it."""
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    p["ingest"]["corpora"] = {}  # verify and later read sample's and generate's tables (no mix)
    p["mix"] = {"own": True, "caps": {}}
    gen = p["generate"]
    gen["num_shards"] = shards
    gen["num_generations"] = GENERATIONS_PER_PROBLEM
    gen["llm"].update(TEACHER)  # a hub id: no local model for Snakemake to rebuild the shards from
    gen["llm"]["serve"]["engine"] = "none"
    gen["sampling"] = {"temperature": 0.6, "top_p": 0.95, "max_new_tokens": MAX_NEW_TOKENS}
    judge = p["judge"]["llm"]
    judge.update({"backend": "openai", "model": JUDGE_MODEL, "revision": "stub"})
    judge["openai"].update({"base_urls": [judge_url], "api_key_env": API_KEY_ENV})
    judge["serve"]["engine"] = "none"
    (work / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False, allow_unicode=True))
    # What params.yaml names: the sample's source (so sample's rule resolves), the judge prompt, the benchmarks.
    for rel in ("prompts/judge.txt", p["sample"]["source"], *(b["path"] for b in p["base"]["benchmarks"].values())):
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / rel, work / rel)
        past = time.time() - 3600  # older than the synthetic outputs, as if sample ran after them
        os.utime(work / rel, (past, past))


# --- the jobs, as Snakemake plans them ----------------------------------------------------------------


@dataclass
class Job:
    rule: str
    inputs: list[str]
    outputs: list[str]
    logs: list[str]
    wildcards: str
    threads: int
    shellcmd: str
    order: int

    @property
    def name(self) -> str:
        return f"{self.rule}[{self.wildcards}]" if self.wildcards else self.rule


_FIELD = re.compile(r"^    (input|output|log|benchmark|wildcards|threads): (.*)$")
# What snakemake prints after a job's shell command: the next job, the summary.
_NOT_SHELL = re.compile(r"^(\[|Job stats:|Reasons:|This was a dry-run|\d+ jobs? ha|(local)?rule \w+:)")


def snakemake_env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def plan_jobs(work: Path, cores: int, targets: tuple[str, ...] = TARGETS, only: str | None = None) -> list[Job]:
    """The jobs `snakemake -n -p` plans for `targets` in `work`, with their shell commands, in DAG
    order; `only`: that rule's job alone, its inputs taken as they are."""
    cmd = [str(VENV_BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"), "--directory", str(work)]
    cmd += ["-n", "-p", "--cores", str(cores), *targets]
    if only:
        cmd += ["--allowed-rules", only, "--forcerun", only]
    out = subprocess.run(cmd, capture_output=True, text=True, env=snakemake_env())
    if out.returncode != 0:
        raise SystemExit(f"snakemake -n failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    text = out.stdout + "\n" + out.stderr
    jobs: list[Job] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(?:local)?rule (\w+):$", lines[i])
        if not m:
            i += 1
            continue
        fields: dict[str, str] = {}
        i += 1
        while i < len(lines) and lines[i].startswith("    "):
            f = _FIELD.match(lines[i])
            if f:
                fields[f.group(1)] = f.group(2)
            i += 1
        if i < len(lines) and lines[i].startswith("Shell command: "):
            shell = [lines[i][len("Shell command: ") :]]
            i += 1
            while i < len(lines) and lines[i].strip() and not _NOT_SHELL.match(lines[i]):
                shell.append(lines[i])  # a command with line breaks
                i += 1
        else:
            raise SystemExit(f"snakemake -n -p printed no shell command for rule {m.group(1)}; is it a shell rule?\n{text[-3000:]}")

        jobs.append(
            Job(
                rule=m.group(1),
                inputs=_paths(fields, "input"),
                outputs=_paths(fields, "output"),
                logs=_paths(fields, "log") + _paths(fields, "benchmark"),
                wildcards=fields.get("wildcards", ""),
                threads=int(fields.get("threads", "1")),
                shellcmd="\n".join(shell),
                order=len(jobs),
            )
        )
    if not jobs:
        raise SystemExit(f"snakemake -n planned no jobs for {' '.join(targets)}:\n{text[-3000:]}")
    upstream = {"sample", "generate_shard", "models", "ingest", "mix"} & {j.rule for j in jobs}
    if upstream:
        raise SystemExit(f"snakemake wants to re-run {sorted(upstream)}: the synthetic inputs do not stand for their outputs")
    return toposorted(jobs)


def _paths(fields: dict[str, str], key: str) -> list[str]:
    return [p for p in fields.get(key, "").split(", ") if p]


def toposorted(jobs: list[Job]) -> list[Job]:
    """Producers before consumers; among ready jobs, the order snakemake printed them in."""
    made_by = {o: j.order for j in jobs for o in j.outputs}
    needs = {j.order: {made_by[i] for i in j.inputs if i in made_by} for j in jobs}
    by_order = {j.order: j for j in jobs}
    done: list[Job] = []
    while needs:
        ready = sorted(k for k, deps in needs.items() if not deps)
        if not ready:
            raise SystemExit("the planned jobs have a cycle")
        k = ready[0]
        done.append(by_order[k])
        del needs[k]
        for deps in needs.values():
            deps.discard(k)
    return done


# --- running one job --------------------------------------------------------------------------------


def tree_rss_mb(pid: int) -> float:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


# Runs argv[2:], then writes its wall time, exit code and the usage of every process it waited for
# (bash -> distillery -> its workers): CPU time, and the largest single process's peak RSS.
RUNNER = """
import json, resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.call(sys.argv[2:])
wall = time.perf_counter() - t
u = resource.getrusage(resource.RUSAGE_CHILDREN)
figures = {"wall_s": wall, "returncode": rc, "cpu_s": u.ru_utime + u.ru_stime, "maxrss_kb": u.ru_maxrss}
open(sys.argv[1], "w").write(json.dumps(figures))
"""


def run_job(job: Job, work: Path, env: dict[str, str]) -> dict:
    """The job's shell command as Snakemake runs it; its wall time, CPU time and peak memory."""
    for path in job.outputs + job.logs:
        (work / path).parent.mkdir(parents=True, exist_ok=True)
    threads = str(job.threads)
    job_env = {**env, **dict.fromkeys(("OMP_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS"), threads)}
    job_env |= dict.fromkeys(("MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"), threads)
    figures = work / ".stage_scale" / f"{job.order}.json"
    figures.parent.mkdir(exist_ok=True)
    # A small runner process starts the job: a process forked from this one (hundreds of MB after
    # writing the inputs) would start with this one's RSS as its ru_maxrss.
    proc = subprocess.Popen(
        [sys.executable, "-S", "-c", RUNNER, str(figures), "bash", "-c", "set -euo pipefail; " + job.shellcmd], cwd=work, env=job_env
    )
    tree_peak, stop = [0.0], threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            tree_peak[0] = max(tree_peak[0], tree_rss_mb(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    proc.wait()
    stop.set()
    sampler.join()
    if proc.returncode != 0 or not figures.is_file():
        raise SystemExit(f"the runner of {job.name} failed (exit {proc.returncode})")
    ran = json.loads(figures.read_text())
    wall, rc = ran["wall_s"], ran["returncode"]
    result = {
        "job": job.name,
        "rule": job.rule,
        "threads": job.threads,
        "wall_s": round(wall, 2),
        "cpu_s": round(ran["cpu_s"], 2),
        "peak_rss_mb": round(ran["maxrss_kb"] / 1024, 1),
        "tree_rss_mb": round(tree_peak[0], 1),
        "returncode": rc,
    }
    if rc != 0:
        logs = [work / p for p in job.logs if (work / p).is_file() and (work / p).suffix == ".log"]
        tail = logs[0].read_text(errors="replace")[-4000:] if logs else "(no log)"
        raise SystemExit(f"{job.name} failed (exit {rc}) after {wall:.1f} s:\n{job.shellcmd[:600]}\n--- log ---\n{tail}")
    return result


# --- the judge's stub server ------------------------------------------------------------------------


def stub_reply(prompt: str) -> str:
    """A verdict chosen by a hash of the prompt (10% EQUIVALENT, 5% AMBIGUOUS), and a reply in the
    judge prompt's format: a little reasoning, then the verdict line."""
    h = int(hashlib.sha256(prompt.encode("utf-8", "replace")).hexdigest()[:8], 16) % 100
    verdict = "EQUIVALENT" if h < 10 else "AMBIGUOUS" if h < 15 else "DIFFERENT"
    why = {
        "EQUIVALENT": "The student's final answer is the reference answer written in another form; the values agree.",
        "AMBIGUOUS": "The end of the solution states no single final answer that can be compared with the reference.",
        "DIFFERENT": "The student's boxed answer and the reference answer are different values, not respellings of one value.",
    }[verdict]
    return f"I compare only the final answers. {why}\nVerdict: {verdict}"


def serve_stub() -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the client reuses its connections

        def log_message(self, *args) -> None:
            pass

        def send_json(self, code: int, obj: dict) -> None:
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self.send_json(200, {"object": "list", "data": [{"id": JUDGE_MODEL, "object": "model", "created": 0, "owned_by": "stub"}]})
            else:
                self.send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self.send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                return
            req = json.loads(body)
            prompt = "".join(str(m.get("content", "")) for m in req.get("messages", []))
            text = stub_reply(prompt)
            n = int(req.get("n") or 1)
            choices = [{"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"} for i in range(n)]
            usage = {"prompt_tokens": len(prompt) // 4, "completion_tokens": n * len(text) // 4}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            self.send_json(
                200,
                {
                    "id": "chatcmpl-" + hexdigest(prompt, 24),
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": req.get("model", JUDGE_MODEL),
                    "choices": choices,
                    "usage": usage,
                },
            )

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256

    server = Server(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def start_stub() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, __file__, "--stub-server"], stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}/v1"


# --- one size, all sizes ----------------------------------------------------------------------------


def run_size(generations: int, args: argparse.Namespace, judge_url: str, root: Path) -> dict:
    shards = -(-generations // args.generations_per_shard) if args.generations_per_shard else args.shards
    work = root / f"g{generations}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    print(f"\n== {generations:,} generations ({generations // GENERATIONS_PER_PROBLEM:,} problems), {shards} shards: {work}", flush=True)
    stats = write_inputs(work, generations, shards)
    s = stats.as_dict()
    print(
        f"inputs: {s['trace_text_mb']:,} MB of traces (mean {s['mean_trace_kb']} KB), {stats.correct:,} correct answers, "
        f"{stats.truncated:,} truncated; shards {s['shards_on_disk_mb']:,} MB on disk; written in {s['written_in_s']} s, "
        f"generator peak RSS {s['generator_peak_rss_mb']} MB",
        flush=True,
    )
    write_params(work, shards, judge_url)
    jobs = plan_jobs(work, args.cores)
    print(f"jobs (snakemake -n): {', '.join(j.name for j in jobs)}", flush=True)
    (work / ".stage_scale").mkdir(exist_ok=True)
    (work / ".stage_scale" / "jobs.json").write_text(json.dumps([asdict(j) for j in jobs], indent=1))
    env = snakemake_env() | {
        API_KEY_ENV: "stage-scale-dummy-key",
        "DISTILLERY_JOURNAL_DIR": str(work / ".distillery" / "journal"),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    results, peak_disk = [], 0
    for n, job in enumerate(jobs):
        r = run_job(job, work, env)
        results.append(r)
        peak_disk = max(peak_disk, disk_bytes(work))
        if not args.keep:
            free_disk(work, jobs[n + 1 :], keep=jobs if args.rerunnable else [])
        print(
            f"  {r['job']:<28} {r['wall_s']:>9.1f} s wall {r['cpu_s']:>9.1f} s CPU {r['peak_rss_mb']:>9.0f} MB peak RSS"
            f" {r['tree_rss_mb']:>9.0f} MB tree",
            flush=True,
        )
    outcome = stage_counts(work)
    print(f"outcome: {json.dumps(outcome)}", flush=True)
    disk = peak_disk
    print(f"work directory at its largest: {disk / 1e6:,.0f} MB", flush=True)
    if not (args.keep or args.rerunnable):
        shutil.rmtree(work)
    return {
        "shards": shards,
        "inputs": s,
        "jobs": results,
        "rules": by_rule(results),
        "outcome": outcome,
        "work_dir_peak_mb": round(disk / 1e6),
    }


def disk_bytes(work: Path) -> int:
    return sum(p.stat().st_size for p in work.rglob("*") if p.is_file())


def free_disk(work: Path, remaining: list[Job], keep: list[Job] = ()) -> None:
    """Delete the parquet tables no remaining job reads (the dataset excepted): at 800,000 generations
    every copy of the traces is ~10 GB, and all of them together would not fit this machine's disk.
    The inputs of `keep`'s RERUN_RULES jobs stay (`--rerunnable`)."""
    wanted = {i for j in remaining for i in j.inputs} | {i for j in keep if j.rule in RERUN_RULES for i in j.inputs}
    for path in (work / "data").rglob("*.parquet"):
        rel = str(path.relative_to(work))
        if rel not in wanted and not rel.startswith(("data/build/", "data/sample/", "data/dedupe/")):
            path.unlink()


def stage_counts(work: Path) -> dict:
    """What the stages made of the data, from their metrics: a check that each did real work."""

    def metrics(stage: str) -> dict:
        path = work / "metrics" / f"{stage}.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    v, j, d, b = metrics("verify"), metrics("judge"), metrics("dedupe"), metrics("build")
    return {
        "verify_correct": v.get("generations_correct"),
        "verify_complete": v.get("generations_complete"),
        "judged": j.get("judged"),
        "judge_verdicts": j.get("verdicts"),
        "dedupe": d.get("counts", {}).get("rejected_by_reason"),
        "build_rows": b.get("rows_by_split"),
    }


def by_rule(results: list[dict]) -> dict:
    """Per rule: jobs, their summed wall and CPU time, the largest peak RSS of any one job."""
    out: dict[str, dict] = {}
    for r in results:
        agg = out.setdefault(r["rule"], {"jobs": 0, "wall_s": 0.0, "cpu_s": 0.0, "peak_rss_mb": 0.0, "tree_rss_mb": 0.0})
        agg["jobs"] += 1
        agg["wall_s"] = round(agg["wall_s"] + r["wall_s"], 2)
        agg["cpu_s"] = round(agg["cpu_s"] + r["cpu_s"], 2)
        agg["peak_rss_mb"] = max(agg["peak_rss_mb"], r["peak_rss_mb"])
        agg["tree_rss_mb"] = max(agg["tree_rss_mb"], r["tree_rss_mb"])
    return out


def growth(small: dict, large: dict) -> dict:
    out = {}
    for rule, a in small["rules"].items():
        b = large["rules"].get(rule)
        if b:
            out[rule] = {k: round(b[k] / a[k], 2) if a[k] else None for k in ("wall_s", "cpu_s", "peak_rss_mb", "tree_rss_mb")}
    return out


def print_tables(sizes: list[int], runs: dict[int, dict]) -> None:
    cols = ("wall_s", "cpu_s", "peak_rss_mb", "tree_rss_mb")
    block = f"{'wall s':>8}{'CPU s':>8}{'RSS MB':>8}{'tree MB':>8}"
    print("\nper rule: wall and CPU summed over the rule's jobs, RSS the largest job's (RSS: largest process; tree: sampled sum)")
    top = f"{'':<22}" + "".join(f"   {f'{n:,} generations':<32}" for n in sizes)
    head = f"{'rule':<16}{'jobs':>6}" + "".join(f"   {block}" for _ in sizes)
    if len(sizes) > 1:
        top += f"   growth x{sizes[-1] / sizes[0]:g}"
        head += f"   {'wall':>6}{'CPU':>6}{'RSS':>6}{'tree':>6}"
    print(top)
    print(head)
    ratios = growth(runs[sizes[0]], runs[sizes[-1]]) if len(sizes) > 1 else {}
    for rule in dict.fromkeys(r for n in sizes for r in runs[n]["rules"]):
        counts = list(dict.fromkeys(runs[n]["rules"][rule]["jobs"] for n in sizes if rule in runs[n]["rules"]))
        jobs = "/".join(map(str, counts))
        line = f"{rule:<16}{jobs:>6}"
        for n in sizes:
            a = runs[n]["rules"].get(rule)
            line += "   " + ("".join(f"{a[k]:>8.1f}" if k.endswith("_s") else f"{a[k]:>8.0f}" for k in cols) if a else f"{'-':>32}")
        if rule in ratios:
            line += "   " + "".join(f"{v:>6.2f}" if v is not None else f"{'-':>6}" for v in (ratios[rule][k] for k in cols))
        print(line)
    if len(sizes) > 1:
        verdict = bar(runs[sizes[0]], runs[sizes[-1]])
        print(f"issue's bar (every job's peak RSS under {RSS_BAR_MB:,} MB and within 20% between the sizes): {verdict}")


def bar(small: dict, large: dict) -> str:
    """Which rules miss the issue's bar, by their largest job's peak RSS."""
    missed = []
    for rule, b in large["rules"].items():
        a = small["rules"].get(rule)
        if b["peak_rss_mb"] > RSS_BAR_MB or (a and b["peak_rss_mb"] > 1.2 * a["peak_rss_mb"]):
            missed.append(f"{rule} ({a['peak_rss_mb'] if a else '-':.0f} -> {b['peak_rss_mb']:.0f} MB)")
    return "met by every rule" if not missed else "missed by " + ", ".join(missed)


def machine() -> dict:
    mem = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:")), 0)
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(mem / 2**20, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="generations per run, comma-separated (default 200000,800000)"
    )
    ap.add_argument("--shards", type=int, default=DEFAULT_SHARDS, help="generate.num_shards: the synthetic shards (default 8)")
    ap.add_argument(
        "--generations-per-shard",
        type=int,
        default=None,
        help="shards = generations / this, as a team sizes generate.num_shards to its data (default: --shards at every size)",
    )
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 2, help="snakemake --cores: caps each rule's threads")
    ap.add_argument("--work-dir", type=Path, default=None, help="where the runs' files go (default a new directory under /tmp)")
    ap.add_argument("--keep", action="store_true", help="keep each size's work directory")
    ap.add_argument("--write-results", action="store_true", help=f"write {RESULTS.relative_to(REPO)}")
    ap.add_argument(
        "--rerunnable",
        action="store_true",
        help=f"keep each size's work directory with the inputs of {', '.join(RERUN_RULES)} (and the plan), for --rerun",
    )
    ap.add_argument(
        "--rerun",
        default="",
        help=f"run these rules ({', '.join(RERUN_RULES)}) again in a --rerunnable --work-dir, with this checkout's code, "
        "and replace their figures in the results",
    )
    ap.add_argument("--stub-server", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stub_server:
        serve_stub()
        return
    sizes = sorted(int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip())
    if any(n < 2 * args.shards or n % GENERATIONS_PER_PROBLEM for n in sizes):
        raise SystemExit(f"--sizes: even numbers of generations, at least {2 * args.shards}")
    if args.rerun:
        rerun(sizes, args)
        return
    root = args.work_dir or Path(tempfile.mkdtemp(prefix="stage_scale_"))
    root.mkdir(parents=True, exist_ok=True)
    stub, judge_url = start_stub()
    try:
        runs = {n: run_size(n, args, judge_url, root) for n in sizes}
    finally:
        stub.terminate()
        stub.wait()
        if not args.keep and args.work_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    print_tables(sizes, runs)
    result = {
        "machine": machine(),
        "settings": {
            "shards": args.shards if not args.generations_per_shard else None,
            "generations_per_shard": args.generations_per_shard,
            "cores": args.cores,
            "generations_per_problem": GENERATIONS_PER_PROBLEM,
            "trace_median_chars": TRACE_MEDIAN_CHARS,
            "trace_sigma": TRACE_SIGMA,
            "trace_max_chars": TRACE_MAX_CHARS,
            "correct_share": CORRECT_SHARE,
            "truncated_share": TRUNCATED_SHARE,
        },
        "sizes": {str(n): runs[n] for n in sizes},
        "growth": {f"{sizes[0]}->{sizes[-1]}": growth(runs[sizes[0]], runs[sizes[-1]])} if len(sizes) > 1 else {},
    }
    if args.write_results:
        write_json(RESULTS, result)
        print(f"\nwritten: {RESULTS.relative_to(REPO)}")


def rerun(sizes: list[int], args: argparse.Namespace) -> None:
    """Run `--rerun`'s rules again on each size's kept work directory, as planned the first time; their
    figures replace the old ones in the results (when written), with the code that ran them noted."""
    rules = [r.strip() for r in args.rerun.split(",") if r.strip()]
    if not set(rules) <= set(RERUN_RULES) or args.work_dir is None:
        raise SystemExit(f"--rerun takes rules among {', '.join(RERUN_RULES)} and the --work-dir of a --rerunnable run")
    saved = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"sizes": {}}
    runs = {}
    for n in sizes:
        work = args.work_dir / f"g{n}"
        plan = work / ".stage_scale" / "jobs.json"
        if not plan.is_file():
            raise SystemExit(f"{work} has no plan ({plan}): run the benchmark with --rerunnable --work-dir {args.work_dir} first")
        jobs = [Job(**j) for j in json.loads(plan.read_text())]
        for rule in (r for r in rules if r not in {j.rule for j in jobs}):  # not in the plan of the first run
            jobs += plan_jobs(work, args.cores, (RULE_TARGETS[rule],), only=rule)
        print(f"\n== {n:,} generations, again: {', '.join(rules)}", flush=True)
        run = saved["sizes"].get(str(n)) or {"jobs": [], "rules": {}}
        fresh = []
        for job in (j for j in jobs if j.rule in rules):
            r = run_job(job, work, snakemake_env())
            fresh.append(r)
            print(f"  {r['job']:<28} {r['wall_s']:>9.1f} s wall {r['cpu_s']:>9.1f} s CPU {r['peak_rss_mb']:>9.0f} MB peak RSS", flush=True)
        run["jobs"] = [j for j in run["jobs"] if j["rule"] not in rules] + fresh
        run["rules"] = by_rule(run["jobs"])
        run["rerun"] = sorted(set(run.get("rerun", [])) | set(rules))
        runs[n] = run
    print_tables(sizes, runs)
    if args.write_results:
        saved["sizes"].update({str(n): r for n, r in runs.items()})
        if len(sizes) > 1:
            saved["growth"] = {f"{sizes[0]}->{sizes[-1]}": growth(runs[sizes[0]], runs[sizes[-1]])}
        write_json(RESULTS, saved)
        print(f"\nwritten: {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
