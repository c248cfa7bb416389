"""What a Snakemake run says last on the console: each failed job's own one-line message with its log
path, and the warnings the stages logged (which the rules send to logs/<stage>/, not the console).

Snakemake ends a failed run with its job dump (the rule, its inputs, outputs and shell command; 60+
lines); the Snakefile's onerror/onsuccess handlers call `summary()` and print it after everything
Snakemake prints (at exit), so the last lines a user sees, under `snakemake` or `dvc repro`, are the
stage's own words.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

# A stage's one-line error (distillery.cli prints it on a DistilleryError) and a distillery logger's
# warning, in the log format distillery.cli sets up.
ERROR_LINE = re.compile(r"^distillery [\w-]+: error: ")
WARNING_LINE = re.compile(r"^\S+ \S+ WARNING distillery[\w.]*: (.*)$")
_JOB = re.compile(r"^(?:local)?(?:rule|checkpoint) (\S+?):$")
_FAILED_JOB = re.compile(r"^Error in rule (\S+?):$")
_LOG = re.compile(r"^\s+log: (.*?)(?: \(check log file\(s\) for error details\))?$")


def _jobs(snakemake_log: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(rule, log file) of the jobs that ran and of those that failed, from Snakemake's own log."""
    ran: list[tuple[str, str]] = []
    failed: list[tuple[str, str]] = []
    current: tuple[str, list] | None = None
    for line in snakemake_log.splitlines():
        started, error = _JOB.match(line), _FAILED_JOB.match(line)
        if started or error:
            current = ((started or error).group(1), failed if error else ran)
            continue
        found = _LOG.match(line)
        if found and current is not None:
            rule, into = current
            into.extend((rule, path.strip()) for path in found.group(1).split(",") if path.strip())
            current = None
        elif not line.startswith(" "):
            current = None
    return list(dict.fromkeys(ran)), list(dict.fromkeys(failed))


def _read(path: str) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def failure_line(rule: str, log: str) -> str:
    """The failed job's own message (the last `distillery <stage>: error:` line of its log), with the log path."""
    lines = _read(log)
    errors = [line for line in lines if ERROR_LINE.match(line)]
    if errors:
        return f"{errors[-1]} (log: {log})"
    last = next((line.strip() for line in reversed(lines) if line.strip()), None)
    if last is None:
        return f"rule {rule} failed and its log {log} is empty: see Snakemake's message above"
    return f"rule {rule} failed: {last} (an unexpected error: the traceback is in {log})"


def warning_lines(log: str) -> list[str]:
    return [f"distillery: warning: {m.group(1)} (log: {log})" for line in _read(log) if (m := WARNING_LINE.match(line))]


# When this process read the Snakefile: a job log written since is one of this run's.
RUN_STARTED = time.time()


def workflow_jobs(workflow: Any) -> tuple[list[tuple[str, str]], list[tuple[str, str]]] | None:
    """(rule, log file) of the jobs this run ran (their logs written since it started) and of those
    that failed, from Snakemake's own records, which a `--quiet` run keeps too; None when this
    Snakemake does not have them where we look."""
    try:
        jobs = list(workflow.dag.jobs)
        failed_jobs = set(workflow.scheduler.failed) if workflow.scheduler is not None else set()
    except Exception:  # Snakemake's internals moved (or a job's own process has no scheduler): read its log instead
        return None

    def logs(job: Any) -> list[tuple[str, str]]:
        return [(job.rule.name, str(f)) for f in job.log]

    def written_now(path: str) -> bool:
        try:
            return os.path.getmtime(path) >= RUN_STARTED - 1
        except OSError:
            return False

    ran = [entry for job in jobs for entry in logs(job) if written_now(entry[1])]
    failures = [entry for job in jobs if job in failed_jobs for entry in logs(job)]
    return list(dict.fromkeys(ran)), list(dict.fromkeys(failures))


def summary(snakemake_logs: list[str], failed: bool, jobs: tuple[list, list] | None = None) -> list[str]:
    """The lines to end the run with: the stages' warnings, then each failed job's message. `jobs`:
    (ran, failed) from workflow_jobs(); else they are read from Snakemake's log."""
    if jobs is None or (failed and not jobs[1]):
        jobs = _jobs("\n".join("\n".join(_read(str(p))) for p in snakemake_logs))
    ran, failures = jobs
    lines: list[str] = []
    for _rule, log in ran:
        lines += warning_lines(log)
    if failed:
        lines += [failure_line(rule, log) for rule, log in failures]
    return list(dict.fromkeys(lines))


def print_at_exit(snakemake_logs: list[str], failed: bool, workflow: Any = None) -> None:
    """Print `summary()` to stderr when the process exits, after Snakemake's own closing lines."""
    lines = summary(snakemake_logs, failed, workflow_jobs(workflow) if workflow is not None else None)
    if lines:
        atexit.register(lambda: print("\n" + "\n".join(lines), file=sys.stderr, flush=True))
