"""distillery ablate: the statistics on fixed outcomes (hand-computed), the file's bad inputs, and
one ablation end to end on the bundled default (real git, DVC experiments, Snakemake)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess

import numpy as np
import polars as pl
import pytest

from distillery.ablation import load_ablation, set_param
from distillery.ablation_report import bootstrap_interval, item_outcomes, mcnemar_exact, paired
from distillery.cli import main
from distillery.errors import DistilleryError

from conftest import REPO, copy_built, run_env, sh

# --- statistics, on outcomes whose answers are worked out by hand ------------------------------------


def test_mcnemar_exact_p_values():
    # Two-sided: 2 * P(X <= min(b, c)) for X ~ Binomial(b + c, 1/2), capped at 1.
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(2, 1) == 1.0  # 2 * (1 + 3) / 8 = 1
    assert mcnemar_exact(3, 1) == 0.625  # 2 * (1 + 4) / 16
    assert mcnemar_exact(5, 0) == 0.0625  # 2 / 32
    assert mcnemar_exact(0, 6) == 0.03125  # 2 / 64


def test_paired_difference_flips_and_mcnemar_over_the_same_items():
    base = {"a": 1.0, "b": 0.0, "c": 1.0, "d": 1.0, "e": 0.0}
    arm = {"a": 1.0, "b": 1.0, "c": 0.0, "d": 1.0, "e": 1.0}
    p = paired(base, arm, seed=0)
    assert (p.items, p.base, p.arm) == (5, 0.6, 0.8)
    assert p.difference == pytest.approx(0.2)  # (0 + 1 - 1 + 0 + 1) / 5
    assert (p.gained, p.lost) == (["b", "e"], ["c"])
    assert p.mcnemar_p == 1.0
    # Per-item differences are -1, 0 or 1, so every resampled mean is a multiple of 1/5 in [-1, 1].
    assert -1 <= p.low <= p.difference <= p.high <= 1
    assert round(p.low * 5, 9) == round(p.low * 5) and round(p.high * 5, 9) == round(p.high * 5)
    assert p.within_noise  # one item lost against two gained, of five


def test_bootstrap_interval_of_known_distributions():
    # Every item the same: every resample has that mean.
    assert bootstrap_interval(np.array([0.25] * 7), seed=1) == (0.25, 0.25)
    # Two items, 0 and 1: a resample's mean is 0, 1/2 or 1 with chances 1/4, 1/2, 1/4, so the
    # 2.5th and 97.5th percentiles of 10,000 resamples are 0 and 1.
    assert bootstrap_interval(np.array([0.0, 1.0]), seed=2) == (0.0, 1.0)
    # A difference on every item is no noise: all gained.
    p = paired({str(i): 0.0 for i in range(8)}, {str(i): 1.0 for i in range(8)}, seed=3)
    assert (p.low, p.high, p.within_noise, p.mcnemar_p) == (1.0, 1.0, False, 2 / 2**8)


def test_item_outcomes_average_a_modes_samples_and_flips_need_half_correct():
    samples = pl.DataFrame(
        {
            "benchmark": ["m"] * 6 + ["m"] * 2,
            "mode": ["sampled"] * 6 + ["greedy"] * 2,
            "item": ["x", "x", "y", "y", "z", "z", "x", "y"],
            "correct": [True, False, True, True, False, False, True, False],
        }
    )
    assert item_outcomes(samples, "sampled") == {"m": {"x": 0.5, "y": 1.0, "z": 0.0}}
    assert item_outcomes(samples, "greedy") == {"m": {"x": 1.0, "y": 0.0}}
    with pytest.raises(DistilleryError, match="mode 'budget' is not in the arms' samples .*greedy, sampled"):
        item_outcomes(samples, "budget")
    p = paired({"x": 0.0, "y": 0.5, "z": 1.0}, {"x": 0.5, "y": 0.0, "z": 1.0}, seed=0)
    assert (p.gained, p.lost, p.difference) == (["x"], ["y"], 0.0)
    with pytest.raises(DistilleryError, match="evaluated on different items"):
        paired({"x": 0.0}, {"y": 0.0}, seed=0)


def test_overrides_reach_dvc_in_hydras_grammar():
    assert set_param("build.choice", "shortest") == "++build.choice=shortest"
    assert set_param("sft.max_steps", None) == "++sft.max_steps=null"
    assert set_param("a.b", "true") == "++a.b='true'"  # the string, not the boolean
    assert set_param("a.b", [1, "x y"]) == "++a.b=[1,'x y']"
    assert set_param("a.b", "it's \\boxed{}") == "++a.b='it\\'s \\boxed{}'"


def test_dvcs_lines_say_which_stages_ran_were_restored_or_unchanged_and_for_how_long():
    from distillery.ablation import Attempt, follow

    lines = [
        "Reproducing experiment 'abl-x'",
        "Stage 'sample' didn't change, skipping",
        "Running stage 'build':",
        "> snakemake --cores all ... build",
        "Updating lock file 'dvc.lock'",
        "Stage 'sft' is cached - skipping run, checking out outputs",
        "Running stage 'evaluate':",
        "Updating lock file 'dvc.lock'",
    ]
    attempt = Attempt()
    follow(lines, attempt, clock=iter([0, 1, 2, 3, 7.5, 8, 10, 14]).__next__)  # one reading a line
    assert (attempt.ran, attempt.unchanged, attempt.restored) == (["build", "evaluate"], ["sample"], ["sft"])
    assert attempt.stage_seconds == {"build": 5.5, "evaluate": 4.0}


def test_requests_sent_are_the_journal_lines_appended_since_the_mark(tmp_path):
    from distillery.ablation import journal_sizes, requests_since

    (tmp_path / "generate").mkdir()
    (tmp_path / "judge").mkdir()
    (tmp_path / "generate/shard-0-of-2.jsonl").write_text('{"key":"a"}\n{"key":"b"}\n')
    (tmp_path / "judge/shard-0-of-1.jsonl").write_text('{"key":"c"}\n' * 5)
    marks = journal_sizes(tmp_path)
    assert requests_since(tmp_path, marks) == {}
    with open(tmp_path / "generate/shard-0-of-2.jsonl", "a") as f:
        f.write('{"key":"d"}\n')
    (tmp_path / "generate/shard-1-of-2.jsonl").write_text('{"key":"e"}\n{"key":"f"}\n')  # a new shard file
    (tmp_path / "judge/shard-0-of-1.jsonl").write_text('{"key":"c"}\n' * 2)  # compacted: counted whole
    assert requests_since(tmp_path, marks) == {"generate": 3, "judge": 2}


# --- bad input: one clear message each ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("arms: {random: {}, typo: {build.choise: shortest}}\n", "arm 'typo' is invalid:\n  - build.choise: unknown key"),
        ("arms: {random: {}, same: {build.choice: random}}\n", "arm 'same' gives the same params as the base arm 'random'"),
        ("arms:\n  random: {}\n  random: {build.choice: shortest}\n", "key 'random' appears twice in one block (lines 2 and 3)"),
        ("", "is empty: write `arms:`"),
        ("arms: {random: {}, a: {build.choice: first}, b: {build.choice: first}}\n", "arm 'b' gives the same params as arm 'a'"),
        ("arms: {random: {}, x: {build.choice: shortest}}\nbase: other\n", "base 'other' is not one of the arms"),
        ("arms: {random: {}, x/y: {build.choice: shortest}}\n", "arm name 'x/y': use letters, digits"),
    ],
)
def test_bad_ablation_files_stop_with_one_message(tmp_path, capsys, text, message):
    path = tmp_path / "abl.yaml"
    path.write_text(text)
    assert main(["ablate", "--print", str(path), "--repo", str(REPO)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("distillery ablate: error: ") and message in err and "Traceback" not in err, err


def test_a_dirty_workspace_is_refused_before_dvc_runs(tmp_path, capsys):
    repo = tmp_path / "repo"
    (repo / "ablations").mkdir(parents=True)
    (repo / "params.yaml").write_text((REPO / "params.yaml").read_text())
    (repo / "ablations/abl.yaml").write_text("arms: {random: {}, x: {build.choice: shortest}}\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(git + ["add", "-A"], cwd=repo, check=True)
    subprocess.run(git + ["commit", "-qm", "c"], cwd=repo, check=True)
    (repo / "params.yaml").write_text((REPO / "params.yaml").read_text().replace("seed: 42", "seed: 43"))
    assert main(["ablate", str(repo / "ablations/abl.yaml"), "--repo", str(repo)]) == 2
    err = capsys.readouterr().err
    assert "the workspace has uncommitted changes (params.yaml)" in err and "commit them (or `git stash` them)" in err, err
    assert subprocess.run(["git", "for-each-ref", "refs/exps"], cwd=repo, capture_output=True, text=True).stdout == ""


def test_the_example_ablations_are_valid():
    for name in ("selection", "decontamination"):
        ablation = load_ablation(REPO / f"ablations/{name}.yaml", REPO / "params.yaml")
        assert ablation.base.overrides == {} and len(ablation.arms) >= 2


def test_print_gives_dvcs_queue_commands_and_names_the_arm_that_needs_its_own_dvc_yaml(capsys):
    assert main(["ablate", "--print", str(REPO / "ablations/selection.yaml"), "--repo", str(REPO)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "dvc exp run --queue --name selection-random"
    assert lines[1].startswith("# arm reward_model names files dvc.yaml does not track")
    assert lines[2] == (
        "dvc exp run --queue --name selection-reward_model -S ++build.choice=reward_model "
        "-S ++build.reward_model.model=data/models/reward_model"
    )
    assert lines[3] == "dvc exp run --queue --name selection-shortest -S ++build.choice=shortest"


# --- end to end --------------------------------------------------------------------------------------

UPSTREAM_OF_BUILD = {"sample", "ingest", "models", "generate", "mix", "verify", "judge", "dedupe"}


def ran_stages(dvc_output: str) -> list[str]:
    return re.findall(r"Running stage '([a-z_0-9]+)'", dvc_output)


def run_log(repo, arm):
    return json.loads((repo / f".distillery/ablations/abl/{arm}.json").read_text())


def test_an_ablation_runs_its_arms_as_experiments_and_resumes_a_killed_one(built_repo, tmp_path):
    """On the bundled default, built once for the session: two arms (the base, and an evaluate
    setting), then a third that changes only a build setting, killed mid-SFT and resumed."""
    assert built_repo[1].returncode == 0, built_repo[1].stdout[-3000:]
    repo = copy_built(built_repo, tmp_path)
    ablation = repo / "ablations/abl.yaml"
    ablation.write_text("arms:\n  random: {}\n  short_eval: {evaluate.sampling.max_new_tokens: 64}\n")

    two = sh(["distillery", "ablate", str(ablation)], repo)
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    base, short_eval = run_log(repo, "random")["attempts"][-1], run_log(repo, "short_eval")["attempts"][-1]
    assert base["returncode"] == short_eval["returncode"] == 0
    assert base["ran"] == [] and base["requests_sent"] == {}  # the committed version: nothing to do
    assert set(short_eval["ran"]) == {"check_params", "evaluate", "report"}  # params edits are validated first
    assert UPSTREAM_OF_BUILD | {"build", "sft"} <= set(short_eval["unchanged"]) and set(short_eval["requests_sent"]) == {"evaluate"}
    assert sh(["git", "status", "--porcelain", "--untracked-files=no"], repo).stdout == ""
    shown = sh(["dvc", "exp", "show", "--no-pager", "--json"], repo)
    listed = {e["name"]: e["revs"][0]["rev"] for row in json.loads(shown.stdout) for e in (row.get("experiments") or [])}
    assert set(listed) == {"abl-random", "abl-short_eval"}, listed

    # A third arm (a build setting, and a file dvc.yaml must track), killed mid-SFT, then resumed:
    # the arms that ran are kept, nothing before SFT is redone, and nothing is generated or judged.
    with ablation.open("a") as f:
        f.write("  reward_model: {build.choice: reward_model, build.reward_model.model: data/models/reward_model}\n")
    proc = subprocess.Popen(
        ["distillery", "ablate", str(ablation)], cwd=repo, env=run_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("Running stage 'sft'"):
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    assert any(line.startswith("Running stage 'sft'") for line in seen), "".join(seen)[-3000:]
    killed = run_log(repo, "reward_model")["attempts"][-1]
    assert killed["returncode"] == -1 and {"build", "curate"} <= set(killed["ran"]), killed  # recorded as it ran
    assert sh(["git", "status", "--porcelain", "--untracked-files=no"], repo).stdout == ""  # the arm's dvc.yaml is not left behind
    resumed = sh(["distillery", "ablate", str(ablation)], repo)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert resumed.stderr.count("ran on this commit already") == 2
    log = run_log(repo, "reward_model")
    last = log["attempts"][-1]
    assert len(log["attempts"]) == 2 and {"build", "curate"} <= set(last["restored"]) and "build" not in last["ran"], last
    assert "sft" in last["ran"] and UPSTREAM_OF_BUILD <= set(last["unchanged"])
    assert not {"generate", "judge", "verify"} & {s for a in log["attempts"] for s in a["requests_sent"]}

    # An arm re-run from its experiment's commit rebuilds its outputs byte for byte.
    shown = sh(["dvc", "exp", "show", "--no-pager", "--json"], repo)
    listed = {e["name"]: e["revs"][0]["rev"] for row in json.loads(shown.stdout) for e in (row.get("experiments") or [])}
    assert sh(["git", "checkout", "-q", "--detach", listed["abl-reward_model"]], repo).returncode == 0
    assert sh(["dvc", "checkout", "-q"], repo).returncode == 0
    again = sh(["dvc", "repro", "-f", "-s", "build", "sft"], repo)
    assert again.returncode == 0 and ran_stages(again.stdout) == ["build", "sft"], again.stdout[-2000:]
    assert sh(["git", "status", "--porcelain", "--untracked-files=no"], repo).stdout == ""  # dvc.lock: the same md5s
    assert sh(["git", "checkout", "-q", "-"], repo).returncode == 0

    # The report: scores, paired differences and costs of the three arms.
    report = sh(["distillery", "ablate", "report", str(ablation)], repo)
    assert report.returncode == 0, report.stderr[-3000:]
    data = json.loads((repo / "reports/ablations/abl.json").read_text())
    assert [a["arm"] for a in data["arms"]] == ["random", "short_eval", "reward_model"]
    for arm in data["arms"][1:]:
        assert set(arm["paired"]) == {"math500", "aime2024", "aime2025"} and arm["paired"]["math500"]["items"] == 10
        rows = arm["dataset"]["against_base"]
        assert rows["a"] == data["arms"][0]["dataset"]["rows"] and rows["b"] == arm["dataset"]["rows"]
    assert (
        data["arms"][2]["cost"]["attempts"] == 2
        and data["arms"][1]["dataset"]["against_base"]["unchanged"] == data["arms"][0]["dataset"]["rows"]
    )
    markdown = (repo / "reports/ablations/abl.md").read_text()
    assert "| reward_model | math500 | 10 |" in markdown and (repo / "reports/ablations/abl.svg").read_text().startswith("<svg")
