"""The counts README.md and docs/ quote from the pipeline's artifacts agree with the committed
artifacts: dvc.lock, metrics/*.json, the labelled verification set, the bundled benchmark files.
The oracle is the artifact, read here with json/yaml, never the code that wrote it.

When the artifacts are regenerated (a new dvc.lock, new metrics), a failure prints what the doc must
say now: paste it in."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from conftest import REPO

README = (REPO / "README.md").read_text()
MEASUREMENTS = (REPO / "docs" / "measurements.md").read_text()
VERIFY_DOC = (REPO / "docs" / "verify.md").read_text()


def metrics(stage: str) -> dict:
    return json.loads((REPO / "metrics" / f"{stage}.json").read_text())


def lock_outputs() -> tuple[int, int]:
    """(outputs, stages) in the committed dvc.lock."""
    stages = yaml.safe_load((REPO / "dvc.lock").read_text())["stages"]
    return sum(len(s.get("outs", [])) for s in stages.values()), len(stages)


def test_quoted_dvc_lock_size_is_the_committed_one():
    outs, stages = lock_outputs()
    quoted = re.findall(r"(\d+) outputs of (\d+) stages", README + MEASUREMENTS)
    assert len(quoted) >= 2, "README.md and docs/measurements.md each quote `N outputs of M stages`"
    assert {(int(o), int(s)) for o, s in quoted} == {(outs, stages)}, f"dvc.lock holds {outs} outputs of {stages} stages"


def test_every_tracked_metrics_and_plots_file_is_a_stage_output():
    """A file under metrics/ or plots/ that no stage writes any more is stale: nothing updates it."""
    stages = yaml.safe_load((REPO / "dvc.lock").read_text())["stages"]
    outputs = {o["path"] for s in stages.values() for o in s.get("outs", [])}
    tracked = subprocess.run(["git", "ls-files", "metrics", "plots"], cwd=REPO, check=True, capture_output=True, text=True).stdout.split()
    assert tracked and [f for f in tracked if f not in outputs] == []


def test_labelled_set_size_quoted_in_the_docs():
    cases = sum(1 for line in (REPO / "tests/data/labelled_verify.jsonl").read_text().splitlines() if line.strip())
    assert re.findall(r"our (\d+)-case\s+hand-labelled set", README) == [str(cases)]
    assert re.findall(r"still gets wrong \(\d+ of (\d+)\)", VERIFY_DOC) == [str(cases)]
    assert re.findall(r"`tests/data/labelled_verify.jsonl` holds (\d+) hand-labelled", VERIFY_DOC) == [str(cases)]
    assert re.findall(r"The verifier agrees with \*\*\d+ of (\d+)", MEASUREMENTS) == [str(cases)]


def test_bundled_benchmark_rows_are_the_files_rows():
    bench = REPO / "data" / "bundled" / "benchmarks"
    table = re.findall(r"^\| (\w+\.jsonl) \| (\d+) \|", (bench / "README.md").read_text(), flags=re.M)
    assert table and {name: int(n) for name, n in table} == {
        f.name: sum(1 for line in f.read_text().splitlines() if line.strip()) for f in sorted(bench.glob("*.jsonl"))
    }


# --- docs/measurements.md "Rows per stage, default run" ------------------------------------------


def listed(counts: dict, skip_zero: bool = False) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if v or not skip_zero)


def rejected(counts: dict) -> str:
    return f"{counts['rejected']}: {listed(counts['rejected_by_reason'])}" if counts["rejected"] else "0"


def rows_per_stage() -> list[str]:
    """The table's rows, from metrics/*.json."""
    rows = []
    m = metrics("sample")
    rows.append(["sample", f"{m['counts']['rows_in']} rows", f"{m['counts']['kept']} problems", rejected(m["counts"])])
    m = metrics("ingest")
    corpora = m["corpora"]
    rows.append(
        [
            "ingest",
            f"{m['counts']['rows_in']} corpus rows ({listed({k: c['rows_in'] for k, c in corpora.items()})})",
            f"{m['counts']['kept']} problems, {sum(c['generations'] for c in corpora.values())} generations",
            rejected(m["counts"]),
        ]
    )
    m = metrics("generate")
    shards = " + ".join(str(n) for _, n in sorted(m["shards"].items()))
    rows.append(
        [
            "generate",
            f"{m['problems']} problems",
            f"{m['requests']} requests ({len(m['shards'])} shards: {shards}), finish {listed(m['finish_reasons'])}",
            f"{m['rejected_requests']} requests",
        ]
    )
    m = metrics("mix")
    rows.append(
        [
            "mix",
            f"{m['counts']['rows_in']} problems ({listed(m['problems_in_by_source'])})",
            f"{m['counts']['kept']} problems ({listed(m['problems_kept_by_source'])}), "
            f"{sum(m['generations_by_source'].values())} generations ({listed(m['generations_by_source'])})",
            rejected(m["counts"]),
        ]
    )
    m = metrics("verify")
    solved, problems = m["problems_with_correct_generation"], m["problems"]
    rows.append(
        [
            "verify",
            f"{m['generations']} generations of {problems} problems",
            listed(m["generations_by_status"], skip_zero=True),
            f"{solved} / {problems} problems ({solved / problems:.1%}) have a correct complete generation",
        ]
    )
    m = metrics("judge")
    verdicts = {k: v for k, v in m["verdicts"].items() if k != "not_judged"}
    rows.append(
        [
            "judge",
            f"{m['judged']} generations judged",
            f"{listed(verdicts)}; recovered {m['recovered_generations']} generations of {m['recovered_problems']} problems",
            "",
        ]
    )
    # Round 2 (generate.rounds): its own rows, and its tables, which hold both rounds.
    m = metrics("generate_round_2")
    shards = " + ".join(str(n) for _, n in sorted(m["shards"].items()))
    rows.append(
        [
            "generate_round_2",
            f"{m['problems_by_round']['2']} problems sampled again",
            f"{m['requests_by_round']['2']} requests ({len(m['shards'])} shards: {shards}); both rounds: {m['requests']} requests",
            f"{m['rejected_requests']} requests",
        ]
    )
    m = metrics("verify_round_2")
    solved, problems = m["problems_with_correct_generation"], m["problems"]
    rows.append(
        [
            "verify_round_2",
            f"{m['generations_by_round']['2']} new generations ({m['generations']} in both rounds)",
            f"correct generations by round: {listed(m['correct_by_round'])}",
            f"{solved} / {problems} problems ({solved / problems:.1%}) have a correct complete generation",
        ]
    )
    m = metrics("judge_round_2")
    rows.append(
        [
            "judge_round_2",
            f"{m['judged_by_round']['2']} new generations judged ({m['judged']} in both rounds)",
            f"problems first solved in round {listed(m['problems_first_solved_in_round'])}",
            "",
        ]
    )
    m = metrics("dedupe")
    rows.append(
        [
            "dedupe",
            f"{m['counts']['rows_in']} problems",
            str(m["counts"]["kept"]),
            f"{rejected(m['counts'])}; contaminated by benchmark: {listed(m['contaminated_by_benchmark'])}; "
            f"near-duplicate pairs {m['near_duplicates']['pairs']}",
        ]
    )
    m = metrics("build")
    rows.append(
        ["build", f"{m['counts']['rows_in']} problems", f"{m['counts']['kept']} rows ({listed(m['rows_by_split'])})", rejected(m["counts"])]
    )
    m = metrics("curate")
    rows.append(["curate", f"{m['counts']['rows_in']} rows (method {m['method']})", f"{m['counts']['kept']} rows", rejected(m["counts"])])
    m = metrics("sft")
    rows.append(["sft", f"{m['rows']} rows", f"{m['steps']} steps, loss {m['first_logged_loss']:.2f} → {m['last_logged_loss']:.2f}", ""])
    m = metrics("preferences")
    rows.append(
        [
            "preferences",
            f"{m['problems']['rows_in']} problems",
            f"{m['pairs']} pairs (rejected side: {listed(m['pairs_by_rejected_kind'])})",
            rejected(m["problems"]),
        ]
    )
    m = metrics("dpo")
    rows.append(
        [
            "dpo",
            f"{m['pairs']} pairs",
            f"{m['steps']} steps, loss {m['first_logged_loss']:.3f} → {m['last_logged_loss']:.3f}, "
            f"reward margin {m['last_reward_margin']:.2f}, reward accuracy {m['last_reward_accuracy']}",
            "",
        ]
    )
    m = metrics("difficulty")
    rows.append(
        [
            "difficulty",
            f"{m['counts']['rows_in']} dataset problems, {m['samples_per_problem']} samples each from {m['model']}",
            f"{m['counts']['kept']} problems with a pass rate in {m['pass_rate_range']} "
            f"(correct of samples: {listed(m['correct_of_samples'], skip_zero=True)}); {m['requests']} requests",
            rejected(m["counts"]),
        ]
    )
    m = metrics("grpo")
    steps = m["per_step"]
    clipped = [s["clipped_share"] for s in steps]
    rows.append(
        [
            "grpo",
            f"{m['problems']['rows_in']} problems",
            f"{m['problems']['kept']} with a usable gold; {m['steps']} steps, {m['num_generations']} completions each; "
            f"mean reward {steps[0]['reward']:.2f} → {steps[-1]['reward']:.2f}, clipped share {min(clipped):.2f}-{max(clipped):.2f}, "
            f"correct share at most {max(s['correct_share'] for s in steps):.2f}, "
            f"groups with zero reward variance {m['mean_zero_std_share']:.2f} of each step's on average",
            rejected(m["problems"]),
        ]
    )
    m = metrics("evaluate")
    results = m["results"]
    rows.append(
        [
            "evaluate",
            "; ".join(
                f"{p}: " + ", ".join(f"{b} {r['problems']} × {r['samples_per_problem']}" for b, r in sorted(results[p].items()))
                for p in sorted(results)
            ),
            "pass@1 "
            + "; ".join(f"{p}: " + ", ".join(f"{b} {r['pass@1']}" for b, r in sorted(results[p].items())) for p in sorted(results)),
            "",
        ]
    )
    return ["| " + " | ".join(r) + " |" for r in rows]


def doc_table(text: str, heading: str) -> list[str]:
    """The rows of the first table under `heading`, header and rule left out."""
    after = text.split(heading, 1)[1]
    lines = [line for line in after.splitlines() if line.startswith("|")]
    first = after.splitlines().index(lines[0])
    block = []
    for line in after.splitlines()[first:]:
        if not line.startswith("|"):
            break
        block.append(line)
    return block[2:]


def test_rows_per_stage_table_is_the_metrics():
    heading = "## Rows per stage, default run"
    assert heading in MEASUREMENTS
    expected = rows_per_stage()
    assert doc_table(MEASUREMENTS, heading) == expected, "docs/measurements.md must say, from metrics/*.json:\n" + "\n".join(expected)


def test_rows_per_stage_covers_every_stage_with_counts():
    """A new stage with a metrics file is a new row (models, report and check_params count no rows)."""
    stages = set(yaml.safe_load((REPO / "dvc.lock").read_text())["stages"]) - {"models", "report", "check_params"}
    in_table = {line.split("|")[1].strip() for line in rows_per_stage()}
    assert in_table == stages
    assert {p.stem for p in Path(REPO / "metrics").glob("*.json")} - {"models"} == stages
