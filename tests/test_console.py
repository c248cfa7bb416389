"""distillery.console: the lines a Snakemake run ends with (a real run: tests/test_workflow.py)."""

from __future__ import annotations

from pathlib import Path

from distillery.console import summary

SNAKEMAKE_LOG = """\
Select jobs to execute...
[Sun Dec  6 22:47:06 2026]
localrule verify_shard:
    input: data/generate/shards/shard-0.parquet
    output: data/verify/shards/shard-0.parquet
    log: {ok_log}
    jobid: 1
[Sun Dec  6 22:47:06 2026]
rule verify_shard:
    log: {bug_log}
    jobid: 2
Error in rule verify_shard:
    message: None
    jobid: 2
    log: {bug_log} (check log file(s) for error details)
    shell:
        distillery verify-shard ...
        (command exited with non-zero exit code)
Error in rule verify_shard:
    jobid: 1
    log: {ok_log} (check log file(s) for error details)
Shutting down, this might take some time.
"""


def test_failed_jobs_end_with_their_own_message_or_the_last_line_of_a_traceback(tmp_path: Path):
    ok_log, bug_log = tmp_path / "shard-0.log", tmp_path / "shard-1.log"
    ok_log.write_text(
        "2026-12-06 22:47:06,100 INFO distillery.stages.verify: verify: starting\n"
        "2026-12-06 22:47:06,200 WARNING distillery.stages.verify: verify: 2 workers killed at the deadline\n"
        "2026-12-06 22:47:06,300 WARNING transformers.modeling_utils: some library chatter\n"
        "distillery verify-shard: error: data/generate/shards/shard-0.parquet has no column 'uuid'; re-run generate\n"
    )
    bug_log.write_text("Traceback (most recent call last):\n  File \"x.py\", line 1\nKeyError: 'uuid'\n")
    log = tmp_path / "snakemake.log"
    log.write_text(SNAKEMAKE_LOG.format(ok_log=ok_log, bug_log=bug_log))
    assert summary([str(log)], failed=True) == [
        f"distillery: warning: verify: 2 workers killed at the deadline (log: {ok_log})",
        f"rule verify_shard failed: KeyError: 'uuid' (an unexpected error: the traceback is in {bug_log})",
        f"distillery verify-shard: error: data/generate/shards/shard-0.parquet has no column 'uuid'; re-run generate (log: {ok_log})",
    ]
    # A successful run: only the warnings.
    assert summary([str(log)], failed=False) == [f"distillery: warning: verify: 2 workers killed at the deadline (log: {ok_log})"]


def test_a_missing_log_is_said(tmp_path: Path):
    log = tmp_path / "snakemake.log"
    log.write_text("Error in rule sample:\n    jobid: 0\n    log: logs/sample/none.log (check log file(s) for error details)\n")
    assert summary([str(log)], failed=True) == [
        "rule sample failed and its log logs/sample/none.log is empty: see Snakemake's message above"
    ]


def test_the_jobs_snakemake_records_are_used_when_its_log_is_quiet(tmp_path: Path):
    """`--quiet rules` leaves the job blocks out of Snakemake's log: the jobs come from its DAG instead."""
    from types import SimpleNamespace

    from distillery.console import workflow_jobs

    log = tmp_path / "sample.log"
    log.write_text("distillery sample: error: data/x.jsonl is empty: it has no rows; point sample.source at a file of problems\n")

    class Job:  # hashable by identity, as Snakemake's jobs are in its scheduler's set
        def __init__(self, rule: str, log: Path):
            self.rule, self.log = SimpleNamespace(name=rule), [str(log)]

    job, untouched = Job("sample", log), Job("models", tmp_path / "never_written.log")
    workflow = SimpleNamespace(dag=SimpleNamespace(jobs=[job, untouched]), scheduler=SimpleNamespace(failed={job}))
    jobs = workflow_jobs(workflow)
    assert jobs == ([("sample", str(log))], [("sample", str(log))])
    quiet_log = tmp_path / "snakemake.log"
    quiet_log.write_text("")
    assert summary([str(quiet_log)], failed=True, jobs=jobs) == [
        f"distillery sample: error: data/x.jsonl is empty: it has no rows; point sample.source at a file of problems (log: {log})"
    ]
