"""End to end on the bundled sample: a Snakemake run, the DVC repro behaviours, and the messages a
user sees for an invalid params.yaml or a missing input. Real Snakemake, git and DVC in temp copies."""

import json
import re

import datasets
import polars as pl
import pytest
import yaml

from distillery.corpora import Mapped, map_row
from distillery.workflow import SNAKEMAKE

from conftest import REPO, copy_built, sh

pytestmark = pytest.mark.e2e


def ran_stages(dvc_output: str) -> list[str]:
    return re.findall(r"Running stage '([a-z_0-9]+)'", dvc_output)


def test_the_local_profile_plans_the_whole_dag(repo_copy):
    """The laptop profile parses and plans every rule. The whole DAG runs through Snakemake in
    tests/test_slurm.py (the same Snakefile, the Slurm executor; check_whole_dag_outputs below) and
    through DVC here and in test_lineage.py: a second full Snakemake run here cost 4 min of CI."""
    r = sh(["snakemake", "--profile", "profiles/local", "-n"], repo_copy)
    assert r.returncode == 0, r.stderr[-3000:]
    planned = set(re.findall(r"^rule (\w+):", r.stdout + r.stderr, re.M))
    assert {
        "check_params",
        "models",
        "generate_shard",
        "judge_gather",
        "dedupe",
        "build",
        "sft",
        "difficulty",
        "grpo",
        "evaluate",
        "report",
    } <= planned


def check_whole_dag_outputs(repo_copy) -> None:
    """What a whole-DAG Snakemake run must leave behind (tests/test_slurm.py runs it)."""
    ds = datasets.load_dataset("parquet", data_files=str(repo_copy / "data/build/dataset/*/train-*.parquet"), split="train")
    assert len(ds) > 0
    assert list(ds.features)[:3] == ["problem", "solution", "answer"] and "messages" in ds.features
    verify = json.loads((repo_copy / "metrics/verify.json").read_text())["generations_by_status"]
    assert verify["ok"] > 0 and verify["mismatch"] + verify["no_answer"] > 0  # accepted and rejected generations
    judge = json.loads((repo_copy / "metrics/judge.json").read_text())["verdicts"]
    assert sum(judge.get(v, 0) for v in ("EQUIVALENT", "DIFFERENT", "AMBIGUOUS")) > 0
    dedupe = json.loads((repo_copy / "metrics/dedupe.json").read_text())["counts"]
    assert dedupe["rejected_by_reason"]["exact_duplicate"] >= 1 and dedupe["rejected_by_reason"]["contaminated"] >= 2
    evaluated = json.loads((repo_copy / "metrics/evaluate.json").read_text())
    evaluate = evaluated["results"]
    budgets = yaml.safe_load((repo_copy / "params.yaml").read_text())["evaluate"]["budget_forcing"]["budgets"]
    assert set(evaluate) == {"sampled", "greedy", *(f"budget_forcing_{b}" for b in budgets)}
    assert all(set(per) == {"math500", "aime2024", "aime2025"} for per in evaluate.values())
    # The scaling curve: a point per benchmark and budget, never more thinking than the budget.
    curve = evaluated["scaling_curve"]
    assert sorted((p["budget"], p["benchmark"]) for p in curve) == sorted(
        (b, n) for b in budgets for n in ("math500", "aime2024", "aime2025")
    )
    assert all(p["mean_thinking_tokens"] <= p["budget"] for p in curve)
    grpo = json.loads((repo_copy / "metrics/grpo.json").read_text())
    assert len(grpo["per_step"]) == grpo["steps"] > 0 and all("clipped_share" in s for s in grpo["per_step"])
    prefs = json.loads((repo_copy / "metrics/preferences.json").read_text())["problems"]
    assert prefs["rows_in"] == prefs["kept"] + sum(prefs["rejected_by_reason"].values())
    assert (repo_copy / "data/evaluate/model_card.md").read_text().count("## Evaluation") == 1
    near = json.loads((repo_copy / "metrics/dedupe.json").read_text())["near_duplicates"]
    shipped = yaml.safe_load((repo_copy / "params.yaml").read_text())["dedupe"]["near"]
    assert {k: near[k] for k in ("threshold", "boilerplate_share", "min_shingles")} == {
        k: shipped[k] for k in ("threshold", "boilerplate_share", "min_shingles")
    }
    assert (repo_copy / "data/dedupe/near_duplicates.parquet").exists()
    card = (repo_copy / "data/build/dataset/README.md").read_text()
    assert "## Rounds of generation" in card and re.search(r"^\| 2 \| \d+ \| \d+ \| \d+ \| \d+ \|$", card, re.M)  # round 2's row
    assert "## Decontamination" in card and "| dedupe |" in card and '"code"' in card and not re.search(r"\bgit\b", card)
    assert (repo_copy / "data/sft/model/model.safetensors").exists()
    # Every filtering stage accounts for every row.
    for stage in ("sample", "ingest", "mix", "dedupe", "build", "curate"):
        c = json.loads((repo_copy / f"metrics/{stage}.json").read_text())["counts"]
        assert c["rows_in"] == c["kept"] + c["rejected"] == c["kept"] + sum(c["rejected_by_reason"].values())
    check_row_provenance(repo_copy)


def check_row_provenance(repo):
    """Every dataset row traces back to its source row, its requests, the generation its messages
    came from, and the settings and code of every stage that shaped it."""
    prov = pl.read_parquet(repo / "data/build/provenance.parquet")
    dataset = read_dataset(repo)
    assert sorted(prov.select("split", "uuid").rows()) == sorted(dataset.select("split", "uuid").rows())
    judged = pl.read_parquet(repo / "data/judge/round-2/judged.parquet")  # every round's (params.yaml runs two)
    # The bundled run mixes published corpora in (params.yaml ingest, mix): a row's source is the
    # file of its corpus, read through that corpus's adapter.
    mixed = pl.read_parquet(repo / "data/mix/problems.parquet")
    problems = {r["uuid"]: r for r in mixed.iter_rows(named=True)}
    params = yaml.safe_load((repo / "params.yaml").read_text())

    def lines(path):
        return [json.loads(line) for line in (repo / path).read_text().splitlines() if line.strip()]

    sources = {"own": [r["problem"] for r in lines("data/bundled/numina_sample.jsonl")]}
    for name, c in params["ingest"]["corpora"].items():
        sources[name] = [m.problem if isinstance(m := map_row(c["layout"], r), Mapped) else None for r in lines(c["path"])]
    rows = prov.join(dataset.select("split", "uuid", "messages"), on=["split", "uuid"])
    for row in rows.iter_rows(named=True):
        gens = judged.filter(pl.col("uuid") == row["uuid"]).sort("sample_index")
        assert row["request_keys"] == gens["request_key"].to_list()
        assert row["rounds"] == gens["round"].to_list()
        assert row["judge_request_keys"] == gens["judge_request_key"].to_list()
        chosen = gens.filter(pl.col("sample_index") == row["messages_sample_index"])["generation"][0]
        assert row["messages"][1]["content"] == chosen
        problem = problems[row["uuid"]]
        assert sources[problem["corpus"]][row["source_row"]] == problem["problem"]
    from distillery.provenance import code_version

    prov = prov.join(mixed.select("uuid", "corpus"), on="uuid")
    own, corpora = prov.filter(pl.col("corpus") == "own"), prov.filter(pl.col("corpus") != "own")
    assert own.height and corpora.height  # the dataset holds both
    for stage in ("sample", "generate", "verify", "judge", "dedupe", "build"):
        assert prov[f"{stage}_params"].null_count() == 0 and own[f"{stage}_params"].n_unique() == 1
    for stage in ("verify", "dedupe", "build"):  # the code by its content, never a git commit
        assert prov[f"{stage}_code"].unique().to_list() == [code_version(stage)]
    # A corpus row was read by ingest, not sampled or generated: its sample_* and generate_* say so.
    assert own["sample_code"].unique().to_list() == [code_version("sample")]
    assert corpora["sample_code"].unique().to_list() == [code_version("ingest")]
    assert {c for codes in own["generate_codes"] for c in codes} == {code_version("generate")}
    assert {c for codes in corpora["generate_codes"] for c in codes} == {code_version("ingest")}
    assert prov["verifier"][0].startswith("math-verify 0.") and prov["teacher_fingerprint"].null_count() == 0
    assert prov["source_version"][0].startswith("md5 ")


def test_dvc_repro_builds_once_then_reruns_only_what_a_param_touches(built_repo, tmp_path):
    first = built_repo[1]
    repo_copy = copy_built(built_repo, tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    every = [
        "check_params",
        "sample",
        "ingest",
        "mix",
        "curate",
        "models",
        "generate",
        "verify",
        "judge",
        "generate_round_2",
        "verify_round_2",
        "judge_round_2",
        "dedupe",
        "build",
        "sft",
        "preferences",
        "dpo",
        "difficulty",
        "grpo",
        "evaluate",
        "report",
    ]
    assert sorted(ran_stages(first.stdout)) == sorted(every)  # DVC orders independent stages as it likes
    # Byte for byte the committed version: every output's md5 is the one in the repository's dvc.lock
    # (this copy is another directory and another commit), and nothing git tracks changed.
    assert out_md5s(repo_copy) == out_md5s(REPO) != {}
    assert sh(["git", "status", "--porcelain"], repo_copy).stdout == ""
    # A commit that changes only documentation changes no output: re-run sample and verify by force.
    (repo_copy / "README.md").write_text((repo_copy / "README.md").read_text() + "\nA note.\n")
    commit(repo_copy, "docs only")
    forced = sh(["dvc", "repro", "-f", "-s", "sample", "verify"], repo_copy)
    assert forced.returncode == 0 and ran_stages(forced.stdout) == ["sample", "verify"], forced.stdout[-2000:]
    assert sh(["git", "status", "--porcelain"], repo_copy).stdout == "" and out_md5s(repo_copy) == out_md5s(REPO)

    second = sh(["dvc", "repro"], repo_copy)
    assert second.returncode == 0 and ran_stages(second.stdout) == []
    assert "up to date" in second.stdout

    # A changed param re-runs its stage, never answered from the run cache with the old value's
    # outputs (DVC's run cache ignored a param named `size`: curate kept 4 rows, dvc.lock said 3).
    committed_params = (repo_copy / "params.yaml").read_text()
    smaller = committed_params.replace("s1k: {subset_rows: 4,", "s1k: {subset_rows: 3,")
    assert smaller != committed_params
    (repo_copy / "params.yaml").write_text(smaller)
    cut = sh(["dvc", "repro"], repo_copy)
    assert cut.returncode == 0 and "curate" in ran_stages(cut.stdout), cut.stdout[-2000:]
    assert "Stage 'curate' is cached" not in cut.stdout
    assert pl.read_parquet(repo_copy / "data/curate/subset/train-00000-of-00001.parquet").height == 3
    # What only the config models reject stops `dvc repro` before any stage runs or is declared up
    # to date: an unknown section no stage lists, and the old name of a renamed key.
    for bad, message in (
        (committed_params + "sampel: {n: 3}\n", "sampel: unknown key"),
        (committed_params.replace("s1k: {subset_rows:", "s1k: {size:"), "curate.s1k.size: renamed to curate.s1k.subset_rows"),
    ):
        (repo_copy / "params.yaml").write_text(bad)
        stopped = sh(["dvc", "repro"], repo_copy)
        assert stopped.returncode != 0 and message in stopped.stdout + stopped.stderr, stopped.stdout[-2000:]
        assert ran_stages(stopped.stdout) == ["check_params"] and "up to date" not in stopped.stdout
    (repo_copy / "params.yaml").write_text(committed_params)
    back_to_four = sh(["dvc", "repro"], repo_copy)
    assert back_to_four.returncode == 0, back_to_four.stdout[-2000:]
    assert out_md5s(repo_copy) == out_md5s(REPO) and sh(["git", "status", "--porcelain"], repo_copy).stdout == ""
    remote = repo_copy.parent / "dvc-remote"  # a directory remote, as docs/remotes.md sets up
    assert sh(["dvc", "remote", "add", "-d", "storage", str(remote)], repo_copy).returncode == 0
    commit(repo_copy, "version A")
    judged_a = pl.read_parquet(repo_copy / "data/judge/judged.parquet")
    dataset_a = read_dataset(repo_copy)

    params = yaml.safe_load((repo_copy / "params.yaml").read_text())
    old_tokens = params["judge"]["sampling"]["max_new_tokens"]
    params["judge"]["sampling"]["max_new_tokens"] = 12  # cut the judge's replies short: verdicts change
    (repo_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # Up to the dataset: the trainings after it would re-run too (test_lineage.py runs them after a
    # kill), but this version is about the judged rows and the dataset, and they cost 2 min of CI.
    third = sh(["dvc", "repro", "build"], repo_copy)
    assert third.returncode == 0, third.stdout[-3000:]
    ran = ran_stages(third.stdout)
    # Any params edit is validated first; round 2 samples the problems unsolved by the new verdicts.
    assert ran == ["check_params", "judge", "generate_round_2", "verify_round_2", "judge_round_2", "dedupe", "build"]
    stale = sh(["dvc", "status"], repo_copy).stdout
    assert "curate:" in stale and "sft:" in stale  # what reads the dataset is named, not skipped
    commit(repo_copy, "version B")

    # distillery diff A B reports exactly what a direct comparison of the two versions finds.
    judged_b = pl.read_parquet(repo_copy / "data/judge/judged.parquet")
    r = sh(["distillery", "diff", "HEAD~1", "HEAD", "--path", "data/judge/judged.parquet", "--format", "json"], repo_copy)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout)
    expected, remade = split_remade(direct_changes(judged_a, judged_b, ["uuid", "sample_index"]))
    assert got["rows"]["changed"] == len(expected) > 0 and got["rows"]["added"] == got["rows"]["removed"] == 0
    assert got["changed_by_column"] == column_counts(expected)
    assert got["rows"]["remade"] == len(remade) and got["remade_by_column"] == column_counts(remade)
    assert "judge_verdict" in got["changed_by_column"]
    # Why: every row carries the judge settings' hash, and it changed; the generations did not.
    assert judged_a["judge_params"].n_unique() == judged_b["judge_params"].n_unique() == 1
    assert judged_a["judge_params"][0] != judged_b["judge_params"][0]
    assert judged_a.select("request_key", "generate_params", "generate_code").equals(
        judged_b.select("request_key", "generate_params", "generate_code")
    )
    assert got["params"] == {"judge.sampling.max_new_tokens": {"a": old_tokens, "b": 12}}
    dvc_params = json.loads(sh(["dvc", "params", "diff", "HEAD~1", "HEAD", "--json"], repo_copy).stdout)
    assert {k: (v["old"], v["new"]) for k, v in dvc_params["params.yaml"].items()} == {"judge.sampling.max_new_tokens": (old_tokens, 12)}
    r = sh(["distillery", "diff", "HEAD~1", "HEAD", "--format", "json"], repo_copy)
    got = json.loads(r.stdout)
    dataset_b = read_dataset(repo_copy)
    exp = direct_changes(dataset_a, dataset_b, ["uuid"])
    assert got["rows"]["changed"] == len(exp)
    assert got["rows"]["added"] == len(set(dataset_b["uuid"]) - set(dataset_a["uuid"]))
    assert got["rows"]["removed"] == len(set(dataset_a["uuid"]) - set(dataset_b["uuid"]))
    assert got["aggregates"]["rows"] == {"a": dataset_a.height, "b": dataset_b.height}
    plots = json.loads(sh(["dvc", "plots", "diff", "HEAD~1", "HEAD", "--json"], repo_copy).stdout)["data"]
    [agreement] = plots["plots/report/verify_vs_judge.json"]  # both versions, side by side in one plot
    assert set(agreement["revisions"]) == {"HEAD~1", "HEAD"}
    assert {row["rev"] for row in agreement["content"]["data"]["values"]} == {"HEAD~1", "HEAD"}
    metrics_diff = json.loads(sh(["dvc", "metrics", "diff", "HEAD~1", "HEAD", "--json"], repo_copy).stdout)
    assert metrics_diff["metrics/headline/judge.json"]  # the verdicts changed, and DVC's metrics say so too
    kept = metrics_diff.get("metrics/headline/build.json", {}).get("kept")
    assert (kept["new"], kept["old"]) == (dataset_b.height, dataset_a.height) if kept else dataset_a.height == dataset_b.height

    # Both versions pushed; a fresh clone pulls each of them byte for byte.
    push = sh(["dvc", "push", "--all-commits"], repo_copy)
    assert push.returncode == 0, push.stdout[-2000:] + push.stderr[-2000:]
    clone = repo_copy.parent / "clone"
    assert sh(["git", "clone", "-q", str(repo_copy), str(clone)], repo_copy.parent).returncode == 0
    pull = sh(["dvc", "pull"], clone)
    assert pull.returncode == 0, pull.stdout[-2000:] + pull.stderr[-2000:]
    assert tracked_bytes(clone) == tracked_bytes(repo_copy) != {}
    assert sh(["git", "checkout", "-q", "HEAD~1"], clone).returncode == 0 and sh(["dvc", "pull"], clone).returncode == 0
    assert pl.read_parquet(clone / "data/judge/judged.parquet").equals(judged_a)
    assert sh(["dvc", "status"], clone).stdout.strip() == "Data and pipelines are up to date."

    # Back to A: git checkout + dvc checkout restore it, and DVC re-runs nothing.
    assert sh(["git", "checkout", "-q", "HEAD~1"], repo_copy).returncode == 0
    assert sh(["dvc", "checkout"], repo_copy).returncode == 0
    assert pl.read_parquet(repo_copy / "data/judge/judged.parquet").equals(judged_a)
    back = sh(["dvc", "repro"], repo_copy)
    assert back.returncode == 0 and ran_stages(back.stdout) == [], back.stdout[-2000:]
    # Snakemake's own records still describe B (params, modification times), so it would re-run the
    # judge and everything after; `distillery checkout` checks DVC agrees and syncs them.
    stale = sh(["snakemake", "--profile", "profiles/local", "-n"], repo_copy)
    assert "params have changed since last execution" in stale.stdout + stale.stderr
    synced = sh(["distillery", "checkout"], repo_copy)
    assert synced.returncode == 0, synced.stderr[-2000:]
    now = sh(["snakemake", "--profile", "profiles/local", "-n"], repo_copy)
    assert "Nothing to be done" in now.stdout + now.stderr, now.stdout[-2000:]
    assert ran_stages(sh(["dvc", "repro"], repo_copy).stdout) == []
    assert pl.read_parquet(repo_copy / "data/judge/judged.parquet").equals(judged_a)


def out_md5s(repo):
    """DVC output path -> md5, from the repository's dvc.lock."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return {o["path"]: o["md5"] for spec in lock.values() for o in spec.get("outs", [])}


def tracked_bytes(repo):
    """Every file of every DVC-tracked output: path -> bytes."""
    # The cached outputs (a `cache: false` one, the full metrics, is in git like the metrics).
    outs = [
        o for spec in yaml.safe_load((repo / "dvc.yaml").read_text())["stages"].values() for o in spec.get("outs", []) if isinstance(o, str)
    ]
    files = {}
    for out in outs:
        root = repo / out
        for f in [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()):
            files[str(f.relative_to(repo))] = f.read_bytes()
    return files


def commit(repo, message):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    assert sh(git + ["add", "-A"], repo).returncode == 0
    r = sh(git + ["commit", "-qm", message], repo)
    assert r.returncode == 0, r.stderr


def read_dataset(repo):
    return pl.concat(
        [
            pl.read_parquet(p).with_columns(pl.lit(p.parent.name).alias("split"))
            for p in sorted((repo / "data/build/dataset").glob("*/train-*.parquet"))
        ]
    )


def direct_changes(a, b, key):
    """key -> changed columns, by plain Python comparison of the rows."""
    before = {tuple(r[k] for k in key): r for r in a.to_dicts()}
    after = {tuple(r[k] for k in key): r for r in b.to_dicts()}
    return {
        k: [c for c in a.columns if c not in key and before[k][c] != after[k][c]]
        for k in before.keys() & after.keys()
        if before[k] != after[k]
    }


def split_remade(changes):
    """(rows with a changed content column, rows where only provenance columns changed)."""
    from distillery.provenance import is_provenance_column

    content = {k: v for k, v in changes.items() if not all(is_provenance_column(c) for c in v)}
    return content, {k: v for k, v in changes.items() if k not in content}


def column_counts(changes):
    counts = {}
    for cols in changes.values():
        for c in cols:
            counts[c] = counts.get(c, 0) + 1
    return counts


def test_invalid_params_stop_snakemake_with_one_message(repo_copy):
    params = (repo_copy / "params.yaml").read_text().replace("  policy: unsolved_problems", "  policy: everything")
    (repo_copy / "params.yaml").write_text(params)
    r = sh(["snakemake", "--profile", "profiles/local", "-n"], repo_copy)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "judge.policy = 'everything'" in out and "unsolved_problems" in out
    assert "Traceback" not in out


def test_missing_input_names_the_stage_that_makes_it(repo_copy):
    from distillery.config import VerifyConfig, stage_config

    cfg = stage_config("verify", VerifyConfig(), seed=1)
    r = sh(
        [
            "distillery",
            "verify",
            "--config",
            cfg,
            "--generations",
            "data/generate/generations.parquet",
            "--problems",
            "data/sample/problems.parquet",
            "--verified",
            "x.parquet",
            "--metrics",
            "m.json",
        ],
        repo_copy,
    )
    assert r.returncode == 2
    assert "data/generate/generations.parquet does not exist: it is made by the `generate` stage" in r.stderr
    assert "Traceback" not in r.stderr


def round_of(name: str) -> tuple[str, bool]:
    """(the stage whose rules and code a DVC stage runs, whether it is a later round's)."""
    stage = re.sub(r"_round_\d+$", "", name)
    return stage, stage != name


def test_dvc_stages_mirror_the_snakemake_rules():
    """Every rule belongs to exactly one DVC stage, each stage's outputs are its command's targets,
    and each stage tracks its own params section."""
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    rules_by_file = {p.stem: re.findall(r"^rule (\w+):", p.read_text(), re.M) for p in (REPO / "rules").glob("*.smk")}
    rules_by_file.pop("common")
    rules_by_file.pop("lighteval")  # opt-in and in its own environment: not a DVC stage (tests/test_lighteval.py)
    # A later round of generation (generate_round_2, ...) runs the `_round_` rules of its stage's file.
    assert {round_of(stage)[0] for stage in dvc} == set(rules_by_file)
    for name, spec in dvc.items():
        stage, later = round_of(name)
        assert spec["cmd"].startswith(SNAKEMAKE + " "), name
        allowed, targets = re.search(r"--allowed-rules ([\w ]+?) -- (.+)$", spec["cmd"]).groups()
        assert set(allowed.split()) == {r for r in rules_by_file[stage] if ("_round_" in r) == later}, name
        declared = {next(iter(m)) if isinstance(m, dict) else m for m in spec["outs"] + spec.get("metrics", []) + spec.get("plots", [])}
        for target in targets.split():  # a target is a declared output or inside a declared directory
            assert any(target == d or target.startswith(d + "/") for d in declared), (stage, target)
        # check_params tracks the whole file (it validates every key); each other stage its section (or its keys)
        own = [p for p in spec["params"] if isinstance(p, str) and (p == stage or p.startswith(stage + "."))]
        assert (spec["params"] == [{"params.yaml": None}]) if stage == "check_params" else bool(own), name
        # its code: the stage module itself for check_params, the record check_params writes of it for the others
        code = f"src/distillery/stages/{stage}.py" if stage == "check_params" else f"data/check_params/code/{stage}.txt"
        assert f"rules/{stage}.smk" in spec["deps"] and code in spec["deps"], stage
        # Snakemake re-runs each of the stage's rules when that record changes, as DVC does (a declared
        # stage's inputs hold it: declared_inputs, rules/common.smk)
        blocks = re.split(r"^rule ", (REPO / f"rules/{stage}.smk").read_text(), flags=re.M)[1:]
        code_input = (f'code=code_record("{stage}")', f'**declared_inputs("{stage}")')
        assert stage == "check_params" or all(any(c in b.split("output:")[0] for c in code_input) for b in blocks), stage


def rule_files():
    """rule -> (input files, output files) over every job of the DAG, from `snakemake --detailed-summary`."""
    r = sh(["snakemake", "--detailed-summary"], REPO, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.splitlines()
    header = lines[0].split("\t")
    files: dict[str, tuple[set, set]] = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split("\t")))
        ins, outs = files.setdefault(row["rule"], (set(), set()))
        outs.add(row["output_file"])
        ins.update(f for f in row["input-file(s)"].split(",") if f and f != "-")
    return files


def test_dvc_stages_declare_the_files_their_rules_read_and_write():
    """The other half of keeping dvc.yaml and the Snakefile in step: every file a stage's rules read
    (from another stage or the repository) is a DVC dep, and every file they write is a DVC output."""
    files = rule_files()
    for stage, spec in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].items():
        rules = re.search(r"--allowed-rules ([\w ]+?) --", spec["cmd"]).group(1).split()
        written = set().union(*(files[r][1] for r in rules))
        read = set().union(*(files[r][0] for r in rules)) - written
        declared = [next(iter(m)) if isinstance(m, dict) else m for m in spec["outs"] + spec.get("metrics", []) + spec.get("plots", [])]

        def covered(path, entries):
            return any(path == e or path.startswith(e.rstrip("/") + "/") for e in entries)

        assert not [f for f in sorted(read) if not covered(f, spec["deps"])], f"{stage}: rules read files dvc.yaml does not list as deps"
        assert not [f for f in sorted(written) if not covered(f, declared)], f"{stage}: rules write files dvc.yaml does not declare"


def distillery_imports(path):
    """Files of the distillery modules that `path` imports (at any level: imports inside functions count)."""
    import ast

    src = REPO / "src"

    def file_of(module):
        p = src.joinpath(*module.split("."))
        return p / "__init__.py" if (p / "__init__.py").exists() else p.with_suffix(".py") if p.with_suffix(".py").exists() else None

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        found |= {file_of(n) for n in names if n.startswith("distillery")}
    return found - {None}


def test_dvc_stages_track_every_module_their_code_imports():
    """A change to any module a stage runs makes DVC re-run check_params, which rewrites that stage's
    code record: check_params' deps list every stage's module and everything it imports, transitively
    (errors.py and __init__.py change no output), and each other stage depends on its record."""
    exempt = {REPO / "src/distillery/errors.py", REPO / "src/distillery/__init__.py"}
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    checked = stages["check_params"]
    for name, spec in stages.items():
        stage = round_of(name)[0]
        seen, todo = set(), [REPO / f"src/distillery/stages/{stage}.py"]
        while todo:
            f = todo.pop()
            if f not in seen:
                seen.add(f)
                todo += distillery_imports(f)
        untracked = sorted(str(f.relative_to(REPO)) for f in seen - exempt if str(f.relative_to(REPO)) not in checked["deps"])
        assert not untracked, f"dvc.yaml stage check_params does not list {untracked}, which stage {stage} runs, in deps"
        outs = [next(iter(o)) for o in checked["outs"]]
        assert stage == "check_params" or f"data/check_params/code/{stage}.txt" in set(outs) & set(spec["deps"]), stage


def test_recipe_validates_and_sets_every_key():
    from distillery.config import load_params, unset_fields

    recipe = load_params(REPO / "recipes/openr1-math-220k.yaml")
    assert unset_fields(recipe) == []
    assert recipe.sample.n == 400000 and recipe.generate.llm.model == "deepseek-ai/DeepSeek-R1"
    assert (recipe.generate.sampling.temperature, recipe.generate.sampling.top_p, recipe.generate.sampling.max_new_tokens) == (
        0.6,
        0.95,
        16384,
    )
    assert recipe.judge.llm.model == "meta-llama/Llama-3.3-70B-Instruct" and recipe.dedupe.ngram == 8
    assert recipe.sft.rope_theta == 300000 and recipe.sft.max_length == 32768 and recipe.sft.learning_rate == 5e-5
    assert {k: v.n for k, v in recipe.evaluate.benchmarks.items()} == {"math500": 4, "aime2024": 64, "aime2025": 64, "gpqa_diamond": 8}


def test_snakemake_lint_is_clean():
    r = sh(["snakemake", "--lint"], REPO)
    assert r.returncode == 0 and "Congratulations, your workflow is in a good condition!" in r.stdout + r.stderr, r.stdout[-2000:]


def test_the_published_recipe_plans_through_the_slurm_profile(tmp_path):
    """A dry run of recipes/openr1-math-220k.yaml with a site's own GPQA file: the whole DAG plans
    (32 generation shards, no tiny models) and every rule's resources parse."""
    gpqa = tmp_path / "gpqa_diamond.jsonl"
    gpqa.write_text(
        json.dumps(
            {"Question": "q", "Correct Answer": "a", "Incorrect Answer 1": "b", "Incorrect Answer 2": "c", "Incorrect Answer 3": "d"}
        )
        + "\n"
    )
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({"base": {"benchmarks": {"gpqa_diamond": {"path": str(gpqa)}}}}))
    r = sh(
        ["snakemake", "-n", "--profile", "profiles/slurm", "--configfile", "recipes/openr1-math-220k.yaml", str(site)], REPO, timeout=300
    )
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", r.stdout, re.M))
    assert jobs["generate_shard"] == "32" and "models" not in jobs and jobs["evaluate"] == "1"
    # The recipe's hub ids are unpinned: the run says which keys to pin.
    assert "generate.llm.model = 'deepseek-ai/DeepSeek-R1' is a hub id with no pinned revision" in r.stderr
