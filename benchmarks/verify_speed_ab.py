"""Two versions of distillery.verification, and the naive math-verify loop, on one corpus in one
process, in rotation: the check that a change to the verifier did not make it slower.

    git archive <old revision> src | tar -x -C /tmp/old
    .venv/bin/python benchmarks/verify_speed_ab.py --old-src /tmp/old/src [--problems 1000] [--rounds 3]

The corpus is verify_speed.py's (realistic traces, no power towers). "ours" is what one verify
worker does for each problem: plan_checks in the calling process, then one persistent Comparer
(parsed golds cached) for the answers that need sympy; no pool, so no worker start-up, pipes or
child-process CPU accounting (which a loaded machine delays), only the code that differs. Each
round runs old, new and naive in a rotated order; CPU seconds by time.process_time. The machine
this runs on is shared: compare the ratios within a round, and the medians, never single figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import verify_speed as bench  # noqa: E402

from distillery.config import VerifyConfig  # noqa: E402


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def ours(module, items, cfg: VerifyConfig) -> tuple[float, list[bool]]:
    comparer = module.Comparer(cfg)
    started = time.process_time()
    verdicts = []
    for gold, gens in items:
        answers_of, known_of = module.plan_checks(gold, gens, cfg)
        for answers, known in zip(answers_of, known_of):
            statuses = [k if k is not None else comparer.compare_answer(gold, a) for a, k in zip(answers, known)]
            verdicts.append(module.combine(answers, statuses).correct)
    return time.process_time() - started, verdicts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old-src", type=Path, required=True, help="a src/ directory holding the old distillery/verification.py")
    ap.add_argument("--problems", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    old = load("verification_old", args.old_src / "distillery" / "verification.py")
    new = load("verification_new", Path(__file__).resolve().parents[1] / "src" / "distillery" / "verification.py")
    cfg = VerifyConfig()
    items, kinds = bench.make_corpus(args.problems, pathological=0)
    ours(old, items[:50], cfg), ours(new, items[:50], cfg)  # the LaTeX parser loaded before timing
    cpu: dict[str, list[float]] = {"old": [], "new": [], "naive": []}
    verdicts: dict[str, list[bool]] = {}
    runs = {
        "old": lambda: ours(old, items, cfg),
        "new": lambda: ours(new, items, cfg),
        "naive": lambda: _naive(items, kinds, cfg),
    }
    order = ["old", "new", "naive"]
    for r in range(args.rounds):
        for name in order[r % 3 :] + order[: r % 3]:
            seconds, v = runs[name]()
            cpu[name].append(round(seconds, 2))
            verdicts[name] = v
            print(f"round {r + 1}: {name} {seconds:.2f} CPU-s", flush=True)
    n = len(verdicts["old"])
    changed = sum(a != b for a, b in zip(verdicts["old"], verdicts["new"]))
    print(f"\n{n} generations, {args.problems} problems; verdicts old vs new: {changed} differ")
    for name in cpu:
        print(f"{name:>5} CPU-s per round {cpu[name]}, median {statistics.median(cpu[name])}")
    for label in ("old", "new"):
        ratios = [round(a / b, 2) for a, b in zip(cpu["naive"], cpu[label])]
        print(f"naive / {label}: per round {ratios}, median {statistics.median(ratios)}")
    print(f"new / old CPU, median per round: {statistics.median(round(b / a, 3) for a, b in zip(cpu['old'], cpu['new']))}")


def _naive(items, kinds, cfg) -> tuple[float, list[bool]]:
    started = time.process_time()
    out, _, _ = bench.naive(items, kinds, cfg)
    return time.process_time() - started, [v for per in out for v in per]


if __name__ == "__main__":
    main()
