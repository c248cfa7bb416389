"""The dedupe stage at the recipe's scale, and its near-duplicate step with rensa against datasketch,
side by side in one run.

    .venv/bin/pip install -c constraints/pipeline.txt '.[benchmarks]'   # datasketch, for the comparison
    .venv/bin/python benchmarks/dedupe_scale.py [--problems 400000] [--duplicate-share 0.1] [--only stage]

Corpus (tests/support/realistic_math_text.py, as benchmarks/decontamination.py): --problems clean
problems with MATH-500's word frequencies and sentence lengths (a long tail), a third ending with the
benchmarks' own closing sentences; then, of those,
- 5% exact duplicates (case changed, or spacing and line breaks changed);
- 5% near duplicates, a quarter each: sentences reordered, LaTeX respelled (`\\dfrac`, `\\(...\\)`),
  a number changed, one sentence paraphrased (two words replaced by synonyms or swapped);
- 400 MATH-500/AIME problems planted, 200 verbatim and 200 lightly edited (two of: case, spacing and
  punctuation, LaTeX respelled, numbers formatted, one sentence reworded, a "Problem 7." prefix).
Rows are labelled with the corpora of a mix (OpenR1-Math, OpenThoughts, NuminaMath, s1K), each copy
from another corpus than its original: the same competition problems reach a mix through several
corpora. `--duplicate-share` is the share of the clean problems that get a copy (default 0.1, the 5%
+ 5% above; half exact, half near, the four kinds alike); raise it for a mix with more cross-corpus
copies (0.3: 30% of the problems come twice). Each problem gets one copy at most, so the corpus has
about problems x (1 + share) + 400 rows, and the share stops where a kind runs out of originals
(above about 0.8). Recall is reported per kind of near duplicate; "unrelated rows removed" are clean problems that are
nobody's duplicate and no benchmark's copy, yet removed (a false merge or a false flag).

Each measurement runs in its own process, so its wall time and peak memory (ru_maxrss) are its own:

- stage: `dedupe.run` exactly as the pipeline calls it (decontamination + exact + near-dup), with
  the time and peak memory of each step, and recall of every planted case (peak per step: the
  kernel's high-water mark, VmHWM, reset before each step, so a step's peak is its own);
- rensa / datasketch: the near-duplicate step alone on the exact-deduped rows, from the same shingle
  hashes, with the same permutations, bands and threshold: MinHash signatures, LSH candidates, pairs
  confirmed by estimated Jaccard.

Templated problems (`--templated-share S`, issue 30): a share S of --problems are families of 2-150
problems (log-uniform) that share their sentences (a realistic problem, as above) and differ in their
numbers and a name, as NuminaMath's synthetic subsets do; each member has its own numbers and its own
gold answer, so each is its own problem and a removed one is a false merge. Every row has a gold
answer (`answer`): a copy has its original's, written with or without `$...$`. At 400,000 problems,
S = 0.25 gives 1.67M candidate pairs.

Side by side on the same rows, each in its own process: `--baseline-src DIR` runs the stage from
another checkout's src/ (main's: `git archive main src | tar -x -C /tmp/main`), with today's
settings as far as that code has them; `--datatrove-python PY` runs datatrove's MinHash (signatures,
buckets, clusters, filter; benchmarks/dedupe_scale_datatrove.py) with a Python that has it, e.g.
`python -m venv /tmp/dt && /tmp/dt/bin/pip install 'datatrove[processing]==0.10.1' orjson pyarrow spacy`
(a venv of its own: its pins are not the pipeline's). Each run reports wall and CPU seconds (its
workers' too), peak RSS, candidate pairs (the stage's: pairs whose signatures are compared) and the
recall and false merges below.

`--only stage` measures the stage alone (the settings-before, rensa and datasketch runs take long at
millions of rows). The results go to benchmarks/results/dedupe_scale.json for the default run (400,000
problems, share 0.1, everything); any other run writes dedupe_scale_<problems>[_stage][_dup<share>].json,
so it leaves the committed results alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from distillery.config import BenchmarkFile, DedupeConfig  # noqa: E402
from distillery.stages import dedupe  # noqa: E402

from support.realistic_math_text import (  # noqa: E402
    RealisticCorpus,
    change_case,
    respell_latex,
    reword_sentence,
    sentences,
)

BENCH_DIR = REPO / "data" / "bundled" / "benchmarks"
BENCHMARKS = {
    "math500": BenchmarkFile(path=str(BENCH_DIR / "math500.jsonl"), id_field="unique_id"),
    "aime2024": BenchmarkFile(path=str(BENCH_DIR / "aime2024.jsonl"), id_field="id"),
    "aime2025": BenchmarkFile(path=str(BENCH_DIR / "aime2025.jsonl"), id_field="id"),
}
SEED = 0
DEFAULT_PROBLEMS = 400_000
DEFAULT_DUPLICATE_SHARE = 0.1
# The corpora a mix draws on; a copy comes from another corpus than its original.
CORPORA = ("openr1-math", "openthoughts", "numina-math", "s1k")


NEAR_KINDS = ("reorder", "latex", "number", "paraphrase")


def exact_copy(rng: random.Random, text: str) -> str:
    """What the stage's exact step must see through: case, spacing, line breaks."""
    return change_case(rng, text) if rng.random() < 0.5 else re.sub(r" ", lambda m: rng.choice([" ", "  ", "\n"]), text)


# What each kind of near copy needs of its original: two sentences to reorder, LaTeX to respell, a number.
ELIGIBLE = {
    "reorder": lambda text: len(sentences(text)) > 1,
    "latex": lambda text: "$" in text,
    "number": lambda text: re.search(r"\d", text) is not None,
    "paraphrase": lambda text: True,
}


def near_copy(rng: random.Random, kind: str, text: str) -> str:
    if kind == "reorder":
        parts = sentences(text)
        return " ".join(parts[1:] + parts[:1])
    if kind == "latex":
        return respell_latex(rng, text)
    if kind == "number":
        return re.sub(r"\d+", lambda m: str(int(m.group()) + 1), text, count=1)
    return reword_sentence(rng, text)


# Names for templated problems: "the same sentences with other numbers and names".
NAMES = (
    "Alice Bob Carla Deepak Elena Farid Grace Hiro Ines Jamal Kofi Lena Mateo Nadia Omar Priya Quinn Rosa Sven Tariq "
    "Uma Viktor Wen Ximena Yusuf Zara Anna Ben Chloe Dmitri Emma Felix Greta Hugo Ivy Jonas Kira Liam Mia Noah"
).split()
# Templated families' sizes: log-uniform between these (a family stays under boilerplate_share of the
# rows, else its sentences would be boilerplate and the family no near-duplicate question at all).
FAMILY_SIZES = (2, 150)
SLOT, NAME = "\x01", "\x02"  # a number's and a name's place in a template


def templated_problems(corpus: RealisticCorpus, n: int, seed: int) -> list[tuple[str, str, int]]:
    """n problems in families that share their sentences and differ in their numbers and names, as
    NuminaMath's synthetic subsets do: (text, gold answer, family). A template is a realistic problem
    (MATH-500's word frequencies and lengths) whose numbers, and 1-3 added numbers and a name, are
    slots; each member fills them with its own values, and its answer is a function of them, so two
    members never share an answer (they are different problems)."""
    rng = random.Random(seed)
    lo, hi = np.log(FAMILY_SIZES[0]), np.log(FAMILY_SIZES[1] + 1)
    sizes = []
    while sum(sizes) < n:
        sizes.append(min(int(np.exp(rng.uniform(lo, hi))), n - sum(sizes)))
    bases = dataclasses.replace(corpus, seed=seed).clean_problems(len(sizes))
    out = []
    for family, (size, (base, _)) in enumerate(zip(sizes, bases)):
        words = re.sub(r"\d+", SLOT, base).split(" ")
        for _ in range(rng.randint(1, 3)):
            words.insert(rng.randrange(len(words) + 1), SLOT)
        words.insert(rng.randrange(len(words) + 1), NAME)
        template = " ".join(words)
        slots = template.count(SLOT)
        seen: set[tuple[int, ...]] = set()
        while len(seen) < size:
            values = tuple(rng.randint(2, 999) for _ in range(slots))
            if values in seen:
                continue
            seen.add(values)
            pieces = template.split(SLOT)
            text = "".join(p + str(v) for p, v in zip(pieces, values)) + pieces[-1]
            text = text.replace(NAME, rng.choice(NAMES))
            out.append((text, str(sum(v * 1000**i for i, v in enumerate(values))), family))
    return out


def make_corpus(
    n: int, work: Path, duplicate_share: float = DEFAULT_DUPLICATE_SHARE, templated_share: float = 0.0
) -> tuple[Path, Path, Path]:
    rng = random.Random(SEED)
    corpus = RealisticCorpus.from_benchmarks(BENCH_DIR, seed=SEED)
    n_templated = int(n * templated_share)
    clean = [text for text, role in corpus.clean_problems(n - n_templated) if role == "clean"]
    uuids = [f"p{i:07d}" for i in range(len(clean))]
    rows, roles = list(zip(uuids, clean)), dict.fromkeys(uuids, "unique")
    # Gold answers from their own generator, so the texts are the same whatever the answers: a copy
    # has its original's answer, written with or without $...$ and spaces.
    answer_rng = random.Random(SEED + 3)
    answer = {u: str(answer_rng.randrange(10**6)) for u in uuids}
    order = list(range(len(clean)))
    rng.shuffle(order)
    used: set[int] = set()

    # One pass over the shuffled rows per kind: each kind takes the next eligible row not yet used.
    def eligible(kind: str | None):
        return (j for j in order if kind is None or ELIGIBLE[kind](clean[j]))

    pools = {kind: eligible(kind) for kind in (None, *NEAR_KINDS)}

    def original(kind: str | None) -> int:
        j = next((j for j in pools[kind] if j not in used), None)
        if j is None:
            raise SystemExit(f"--duplicate-share {duplicate_share}: no original left for a {kind or 'exact'} copy; lower the share")
        return j

    for k in range(int(len(clean) * duplicate_share + 1e-9)):
        uuid = f"d{k:07d}"
        kind = None if k % 2 == 0 else NEAR_KINDS[(k // 2) % len(NEAR_KINDS)]
        i = original(kind)
        used.add(i)
        if kind is None:
            rows.append((uuid, exact_copy(rng, clean[i])))
            roles[uuid] = f"exact_of:{uuids[i]}"
        else:
            rows.append((uuid, near_copy(rng, kind, clean[i])))
            roles[uuid] = f"near_of:{kind}:{uuids[i]}"
        answer[uuid] = answer_rng.choice(["{}", "${}$", " {} "]).format(answer[uuids[i]])
    for k, (text, role) in enumerate(corpus.planted(verbatim=200, edited=200)):
        uuid = f"b{k:07d}"
        rows.append((uuid, text))
        roles[uuid] = f"planted:{role}"
        answer[uuid] = str(answer_rng.randrange(10**6))
    for k, (text, gold, family) in enumerate(templated_problems(corpus, n_templated, SEED + 4)):
        uuid = f"t{k:07d}"
        rows.append((uuid, text))
        roles[uuid] = f"templated:{family}"
        answer[uuid] = gold
    order = list(range(len(rows)))
    rng.shuffle(order)  # duplicates are not next to their originals, as in a real merge of sources
    # Corpus labels from their own generator, so the texts are the same whatever the labels.
    source_rng = random.Random(SEED + 2)
    source = {u: source_rng.randrange(len(CORPORA)) for u in uuids}
    for uuid, role in roles.items():
        if role.startswith(("exact_of:", "near_of:")):
            source[uuid] = (source[role.rsplit(":", 1)[1]] + source_rng.randrange(1, len(CORPORA))) % len(CORPORA)
        elif role.startswith(("planted:", "templated:")):
            source[uuid] = source_rng.randrange(len(CORPORA))
    problems = pl.DataFrame(
        {
            "uuid": [rows[i][0] for i in order],
            "problem": [rows[i][1] for i in order],
            "answer": [answer[rows[i][0]] for i in order],
            "source": [CORPORA[source[rows[i][0]]] for i in order],
        },
    )
    paths = work / "problems.parquet", work / "judged.parquet", work / "roles.parquet"
    problems.write_parquet(paths[0])
    pl.DataFrame(schema={"uuid": pl.String, "correctness_math_verify": pl.Boolean, "correctness_llama": pl.Boolean}).write_parquet(paths[1])
    pl.DataFrame({"uuid": list(roles), "role": list(roles.values())}).write_parquet(paths[2])
    return paths


# --- children: one measurement each -----------------------------------------------------------------


# The near-duplicate settings shipped before this benchmark existed: every shingle counts, 0.7.
BEFORE = {"threshold": 0.7, "boilerplate_share": 1.0, "min_shingles": 1}


def _vm_hwm_mb() -> float:
    """This process's peak resident memory since start or since the last reset (VmHWM), in MB."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def _reset_vm_hwm() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0). It lowers ru_maxrss too, so the caller keeps
    the overall peak itself."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def child_stage(work: Path, variant: str) -> dict:
    """variant: now (this code), before (this code, the settings shipped before), baseline (the code
    of --baseline-src, today's settings as far as it has them)."""
    near = dict(BEFORE) if variant == "before" else {}
    from distillery.config import NearDedupeConfig

    if variant == "before" and "keep_different_answers" in NearDedupeConfig.model_fields:
        near["keep_different_answers"] = False  # not a setting before
    cfg = DedupeConfig.model_validate({"benchmarks": list(BENCHMARKS), "near": near})
    out = work / variant
    out.mkdir(exist_ok=True)
    steps: dict[str, float] = {}
    # Peak RSS per step (its own when VmHWM can be reset, else the peak so far); "other" is the rest
    # of the stage (reading, ranking, building the index, clusters' details, writing).
    steps_rss: dict[str, float] = {}
    overall = [0.0]

    def segment_peak(label: str) -> None:
        peak = _vm_hwm_mb()
        overall[0] = max(overall[0], peak)
        steps_rss[label] = max(steps_rss.get(label, 0.0), peak)

    # The stage's steps, timed where run() calls them (near-dup: the pairing after the streamed pass).
    steps_of = {
        "contamination": (dedupe, "contamination"),
        "exact_duplicates": (dedupe, "exact_duplicates"),
        "near_duplicate_pairs": (dedupe.NearDuplicates, "pairs"),
        "clusters": (dedupe, "clusters"),
    }
    for name, (owner, attr) in steps_of.items():
        original = getattr(owner, attr)

        def wrapper(*a, _f=original, _n=name, **k):
            segment_peak("other")
            _reset_vm_hwm()
            t = time.perf_counter()
            out = _f(*a, **k)
            steps[_n] = steps.get(_n, 0) + time.perf_counter() - t
            segment_peak(_n)
            _reset_vm_hwm()
            return out

        setattr(owner, attr, wrapper)
    # Candidate pairs: every pair whose signatures are compared (once each, in either code).
    candidates = [0]
    similarities = dedupe._similarities

    def counted(signatures, num_perm, pairs, _f=similarities):
        candidates[0] += len(pairs)
        return _f(signatures, num_perm, pairs)

    dedupe._similarities = counted
    t, cpu = time.perf_counter(), _cpu_s()
    dedupe.run(
        cfg,
        BENCHMARKS,
        dedupe.Paths(
            problems=work / "problems.parquet",
            judged=work / "judged.parquet",
            kept=out / "kept.parquet",
            rejected=out / "rejected.parquet",
            contamination=out / "contamination.parquet",
            metrics=out / "metrics.json",
            near_duplicates=out / "near.parquet",
        ),
        seed=SEED,
    )
    wall, cpu = time.perf_counter() - t, _cpu_s() - cpu
    segment_peak("other")
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "candidate_pairs": candidates[0],
        "settings": cfg.near.model_dump(mode="json"),
        "steps_s": steps,
        "steps_peak_rss_mb": steps_rss,
        "steps_peak_rss_own": _reset_vm_hwm(),
        "peak_rss_mb": overall[0],
    }


def exact_deduped(work: Path) -> pl.DataFrame:
    problems = pl.read_parquet(work / "problems.parquet").sort("uuid")
    representative = dedupe.exact_duplicates(dedupe.text_digests(problems["problem"]))
    return problems.filter(pl.Series(representative == np.arange(problems.height)))


def child_rensa(work: Path) -> dict:
    texts = exact_deduped(work)["problem"]
    cfg = DedupeConfig().near
    t = time.perf_counter()
    pairs = dedupe.near_duplicate_pairs(texts, cfg, SEED)
    return {"wall_s": time.perf_counter() - t, "rows": texts.len(), "pairs": pairs.height}


def child_datasketch(work: Path) -> dict:
    from datasketch import MinHash, MinHashLSH

    texts = exact_deduped(work)["problem"]
    cfg = DedupeConfig().near
    t = time.perf_counter()
    table = dedupe.TokenTable.of(texts, keep_tokens=False)
    flat, offsets = dedupe.shingle_hashes(table, cfg.shingle_size)
    flat32 = (flat & np.uint64(0xFFFFFFFF)).tolist()  # datasketch hashes to 32 bits; pass them pre-hashed
    offs = offsets.astype(np.int64).tolist()
    docs = [flat32[offs[i] : offs[i + 1]] for i in range(len(offs) - 1)]
    rows = [i for i, d in enumerate(docs) if d]
    sigs = MinHash.bulk([docs[i] for i in rows], num_perm=cfg.num_perm, seed=SEED, hashfunc=lambda x: x)
    lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm, params=(cfg.bands, cfg.num_perm // cfg.bands))
    with lsh.insertion_session() as session:
        for i, m in zip(rows, sigs):
            session.insert(i, m, check_duplication=False)
    by_row = dict(zip(rows, sigs))
    pairs = 0
    for i, m in zip(rows, sigs):
        for j in lsh.query(m):
            if j > i and m.jaccard(by_row[j]) >= cfg.threshold:
                pairs += 1
    return {"wall_s": time.perf_counter() - t, "rows": len(rows), "pairs": pairs}


def _cpu_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def start_datatrove(work: Path, python: str, config: str) -> subprocess.Popen:
    """datatrove's MinHash on the same rows, in the Python that has it (benchmarks/dedupe_scale_datatrove.py)."""
    script = str(Path(__file__).with_name("dedupe_scale_datatrove.py"))
    where = work / f"datatrove-{config}"
    return subprocess.Popen(
        [python, script, str(work / "problems.parquet"), str(where), config, "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def datatrove_result(proc: subprocess.Popen, work: Path, config: str) -> dict | None:
    """Its figures, or None when it was stopped (a signal: on a shared machine the side-by-side run
    may be cut short; the stage's figures are written all the same)."""
    stdout, stderr = proc.communicate()
    if proc.returncode < 0:
        print(f"datatrove was stopped (signal {-proc.returncode}) before it finished: its comparison is left out", flush=True)
        return None
    if proc.returncode != 0:
        raise SystemExit(f"datatrove failed:\n{stderr[-3000:]}")
    where = work / f"datatrove-{config}"
    result = json.loads(stdout.strip().splitlines()[-1])
    removed = Path(result.pop("removed")).read_text().split()
    # As the stage's outputs, for recall(): what datatrove removed is a near duplicate.
    everyone = pl.read_parquet(work / "problems.parquet", columns=["uuid"])["uuid"]
    gone = set(removed)
    pl.DataFrame({"uuid": [u for u in everyone.to_list() if u not in gone]}).write_parquet(where / "kept.parquet")
    pl.DataFrame({"uuid": removed, "reason": ["near_duplicate"] * len(removed), "detail": [""] * len(removed)}).write_parquet(
        where / "rejected.parquet"
    )
    return result


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _start_child(mode: str, work: Path, src: Path | None = None) -> subprocess.Popen:
    """One measurement in its own process; `src`: another checkout's src/ to import distillery from."""
    env = {**os.environ, "PYTHONPATH": str(src)} if src else None
    return subprocess.Popen(
        [sys.executable, __file__, "--child", mode, "--work", str(work)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def _child_result(proc: subprocess.Popen, mode: str) -> dict:
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{stderr[-3000:]}")
    return json.loads(stdout.strip().splitlines()[-1])


def _run_child(mode: str, work: Path, src: Path | None = None) -> dict:
    return _child_result(_start_child(mode, work, src), mode)


def recall(work: Path, variant: str) -> dict:
    roles = dict(pl.read_parquet(work / "roles.parquet").iter_rows())
    kept = set(pl.read_parquet(work / variant / "kept.parquet")["uuid"].to_list())
    rejected = dict(pl.read_parquet(work / variant / "rejected.parquet").select("uuid", "reason").iter_rows())
    pairs: dict[str, list[bool]] = {}  # kind -> per copy: did exactly one of (original, copy) stay?
    origins = set()
    for uuid, role in roles.items():
        if role.startswith(("exact_of:", "near_of:")):
            *kind, original = role.split(":")
            origins.add(original)
            pairs.setdefault(":".join(kind), []).append(len({uuid, original} & kept) == 1)
    planted = [u for u, r in roles.items() if r.startswith("planted:")]
    unrelated = [u for u, r in roles.items() if r == "unique" and u not in origins]
    # Templated problems: each is its own problem (its own numbers, its own answer); any one removed is
    # a false merge of two problems with different gold answers (a family's answers are all distinct).
    templated = [u for u, r in roles.items() if r.startswith("templated:")]
    return {
        "templated_rows": len(templated),
        "templated_rows_removed": sum(u not in kept for u in templated),
        "pairs_left_with_one": {kind: round(sum(v) / len(v), 4) for kind, v in sorted(pairs.items())},
        "pairs": {kind: len(v) for kind, v in sorted(pairs.items())},
        "planted_verbatim_flagged": _share(rejected, [u for u in planted if ":verbatim:" in roles[u]]),
        "planted_edited_flagged": _share(rejected, [u for u in planted if ":edited:" in roles[u]]),
        "unrelated_rows_removed": sum(u not in kept for u in unrelated),
        "unrelated_rows_flagged_contaminated": sum(rejected.get(u) == "contaminated" for u in unrelated),
        "unrelated_rows": len(unrelated),
    }


def _share(rejected: dict, uuids: list[str]) -> float:
    return round(sum(rejected.get(u) == "contaminated" for u in uuids) / max(1, len(uuids)), 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=DEFAULT_PROBLEMS, help="clean problems (copies and planted rows come on top)")
    ap.add_argument(
        "--duplicate-share",
        type=float,
        default=DEFAULT_DUPLICATE_SHARE,
        help="share of the clean problems that get a copy from another corpus, half exact, half near (default 0.1)",
    )
    ap.add_argument(
        "--templated-share",
        type=float,
        default=0.0,
        help="share of --problems that are templated: families of problems with the same sentences and other numbers "
        "and names, each with its own gold answer (default 0)",
    )
    ap.add_argument("--only", choices=["stage"], help="measure only the stage (no settings-before, rensa or datasketch runs)")
    ap.add_argument("--baseline-src", type=Path, help="another checkout's src/ (e.g. main's): its stage run on the same rows, side by side")
    ap.add_argument("--datatrove-python", help="a Python with datatrove installed: its MinHash run on the same rows, side by side")
    ap.add_argument(
        "--parallel",
        action="store_true",
        help="start the stage, --baseline-src and datatrove at once (on a shared machine: their CPU-s compare, wall times less)",
    )
    ap.add_argument("--corpus", type=Path, help="write the corpus to this folder and keep it; a folder holding one is reused")
    ap.add_argument(
        "--datatrove-config",
        choices=["default", "ours"],
        default="default",
        help="datatrove's own MinhashConfig, or the stage's shingles and bands",
    )
    ap.add_argument("--child")
    ap.add_argument("--work", type=Path)
    args = ap.parse_args()
    if not 0 <= args.duplicate_share <= 1:
        ap.error("--duplicate-share is a share of the clean problems, 0 to 1")
    if not 0 <= args.templated_share < 1:
        ap.error("--templated-share is a share of --problems, 0 to below 1")
    if args.child:
        if args.child == "corpus":
            make_corpus(args.problems, args.work, args.duplicate_share, args.templated_share)
            print(json.dumps({}))
            return
        children = {
            "stage": lambda work: child_stage(work, "now"),
            "stage_before": lambda work: child_stage(work, "before"),
            "stage_baseline": lambda work: child_stage(work, "baseline"),
            "rensa": child_rensa,
            "datasketch": child_datasketch,
        }
        result = children[args.child](args.work)
        result["peak_rss_mb"] = max(result.get("peak_rss_mb", 0.0), _peak_rss_mb())
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory() as tmp:
        work = args.corpus or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        # In another process: Linux carries a process's peak RSS across fork and exec, so the
        # measured children must come from a parent that never held the corpus.
        reuse = args.corpus is not None and (work / "roles.parquet").exists()
        out = subprocess.run(
            ["true"]
            if reuse
            else [
                sys.executable,
                __file__,
                "--child",
                "corpus",
                "--problems",
                str(args.problems),
                "--duplicate-share",
                repr(args.duplicate_share),
                "--templated-share",
                repr(args.templated_share),
                "--work",
                str(work),
            ],
            capture_output=True,
            text=True,
        )
        if out.returncode:
            raise SystemExit(out.stderr[-3000:])
        rows = pl.scan_parquet(work / "problems.parquet").select(pl.len()).collect().item()
        made = f"written in {time.perf_counter() - t:.1f} s"
        made = f"reused from {work} (an earlier run with the same arguments wrote it)" if reuse else made
        print(f"corpus: {args.problems:,} problems, {rows:,} rows {made}", flush=True)
        # The side-by-side runs: one after the other, or (--parallel) all at once, each in its own process.
        starts = {"stage": lambda: _start_child("stage", work)}
        if args.baseline_src:
            starts["baseline"] = lambda: _start_child("stage_baseline", work, args.baseline_src.resolve())
        if args.datatrove_python:
            starts["datatrove"] = lambda: start_datatrove(work, args.datatrove_python, args.datatrove_config)
        procs = {name: start() for name, start in starts.items()} if args.parallel else {}
        results = {}
        for name, start in starts.items():
            proc = procs.get(name) or start()
            print(f"waiting for {name} (process {proc.pid})", flush=True)
            if name == "datatrove":
                results[name] = datatrove_result(proc, work, args.datatrove_config)
            else:
                results[name] = _child_result(proc, name)
        stage, rec = results["stage"], recall(work, "now")
        baseline = results.get("baseline")
        rec_baseline = recall(work, "baseline") if baseline else None
        datatrove = results.get("datatrove")
        rec_datatrove = recall(work, f"datatrove-{args.datatrove_config}") if datatrove else None
        if args.only != "stage":
            before = _run_child("stage_before", work)
            rec_before = recall(work, "before")
            rensa = _run_child("rensa", work)
            ds = _run_child("datasketch", work) if importlib.util.find_spec("datasketch") else None
            if ds is None:
                print("datasketch is not installed (pip install '.[benchmarks]'): its comparison is left out")
    report = {
        "problems": args.problems,
        "rows": rows,
        "duplicate_share": args.duplicate_share,
        "cores": len(os.sched_getaffinity(0)),
        "stage": stage,
        "stage_peak_rss_bytes_per_row": round(stage["peak_rss_mb"] * 2**20 / rows),
        "recall": rec,
        "templated_share": args.templated_share,
        # Other work on the machine: the 1-minute load average at the end (wall times stretch with it; CPU-s do not).
        "load_average_at_end": os.getloadavg()[0],
    }
    if baseline:
        report |= {"stage_baseline": {**baseline, "src": str(args.baseline_src)}, "recall_baseline": rec_baseline}
    if datatrove:
        report |= {"datatrove": datatrove, "recall_datatrove": rec_datatrove}
    elif args.datatrove_python:
        report["datatrove"] = "stopped before it finished (the machine was shared: see load_average_at_end)"
    if args.only != "stage":
        report |= {
            "stage_with_settings_before": {**before, "near": BEFORE},
            "recall_with_settings_before": rec_before,
            "near_dup_rensa": rensa,
            "near_dup_datasketch": ds,
            "datasketch_over_rensa_wall": ds["wall_s"] / rensa["wall_s"] if ds else None,
        }
    print(json.dumps(report, indent=2))
    s, m = stage["steps_s"], stage["steps_peak_rss_mb"]
    print(
        f"\nstage, {args.problems:,} problems ({rows:,} rows) on {report['cores']} cores: "
        f"{stage['wall_s']:.1f} s wall (decontamination {s.get('contamination', 0):.1f} s, exact {s.get('exact_duplicates', 0):.1f} s, "
        f"near-dup {s.get('near_duplicate_pairs', 0):.1f} s, clusters {s.get('clusters', 0):.1f} s), "
        f"peak {stage['peak_rss_mb']:.0f} MB ({report['stage_peak_rss_bytes_per_row']:,} bytes a row)"
    )
    print(
        f"peak per step{'' if stage['steps_peak_rss_own'] else ' (so far: VmHWM could not be reset)'}: "
        + ", ".join(f"{step} {mb:.0f} MB" for step, mb in m.items())
    )
    runs = [("now", rec, stage)] + ([(f"before {BEFORE}", rec_before, before)] if args.only != "stage" else [])
    runs += [("baseline code", rec_baseline, baseline)] if baseline else []
    runs += [(f"datatrove {args.datatrove_config}", rec_datatrove, datatrove)] if datatrove else []
    for label, r, run in runs:
        left = ", ".join(f"{kind} {share:.4f}" for kind, share in r["pairs_left_with_one"].items())
        print(
            f"[{label}] {run['wall_s']:.1f} s wall, {run.get('cpu_s', float('nan')):.1f} CPU-s, peak {run['peak_rss_mb']:.0f} MB, "
            f"{run.get('candidate_pairs', 'n/a')} candidate pairs; duplicate pairs left with one row: {left}"
        )
        if r["templated_rows"]:
            removed = f"{r['templated_rows_removed']:,} of {r['templated_rows']:,}"
            print(f"[{label}] templated rows removed (false merges, different gold answers): {removed}")
        print(
            f"[{label}] planted benchmark copies flagged: verbatim {r['planted_verbatim_flagged']:.4f}, "
            f"edited {r['planted_edited_flagged']:.4f}; unrelated rows removed {r['unrelated_rows_removed']:,} of "
            f"{r['unrelated_rows']:,} ({100 * r['unrelated_rows_removed'] / r['unrelated_rows']:.3f}%; "
            f"{r['unrelated_rows_flagged_contaminated']} as contaminated)"
        )
    print(f"pairs per kind: {rec['pairs']}")
    if args.only != "stage":
        _print_comparison(rensa, ds, report)
    default = (args.problems, args.duplicate_share, args.only, args.templated_share) == (DEFAULT_PROBLEMS, DEFAULT_DUPLICATE_SHARE, None, 0)
    name = "dedupe_scale" if default else f"dedupe_scale_{args.problems}"
    if not default:
        name += "_stage" if args.only == "stage" else ""
        name += f"_dup{args.duplicate_share:g}" if args.duplicate_share != DEFAULT_DUPLICATE_SHARE else ""
        name += f"_tpl{args.templated_share:g}" if args.templated_share else ""
    out = REPO / "benchmarks" / "results" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {out.relative_to(REPO)}")


def _print_comparison(rensa: dict, ds: dict | None, report: dict) -> None:
    print(f"near-dup step: rensa {rensa['wall_s']:.1f} s / {rensa['peak_rss_mb']:.0f} MB, {rensa['pairs']} pairs", end="")
    if ds:
        print(
            f"; datasketch {ds['wall_s']:.1f} s / {ds['peak_rss_mb']:.0f} MB, {ds['pairs']} pairs; "
            f"datasketch/rensa wall = {report['datasketch_over_rensa_wall']:.1f}x",
            end="",
        )
    print()


if __name__ == "__main__":
    main()
