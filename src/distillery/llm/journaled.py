"""Run requests through a backend with a journal: finished requests are read back instead of being
sent again, and every new one is on disk the moment it finishes. Shared by generate and judge."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from distillery.config import LLM, Sampling
from distillery.journal import ShardJournal
from distillery.llm import Completion, Request, backend_session
from distillery.progress import Progress
from distillery.provenance import code_version

log = logging.getLogger(__name__)


@dataclass
class RunStats:
    requests: int = 0
    reused_from_journal: int = 0
    generated: int = 0
    failed_after_retries: int = 0
    backend_requests_sent: int = 0
    generated_tokens: int = 0
    generate_s: float = 0.0
    journal_unreadable_lines: int = 0
    journal_sources: list[str] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return round(self.generated_tokens / self.generate_s, 1) if self.generate_s else 0.0


@dataclass
class RunResult:
    done: dict[str, dict]  # key -> journal record: an answer, or a final (non-retryable) failure
    failed: dict[str, dict]  # key -> journal record of a failure after exhausted retries
    stats: RunStats
    journal_path: Path


def journal_record(c: Completion, stage: str) -> dict:
    """What the journal keeps: the answer, when it came, and the code that asked (its provenance)."""
    return {"key": c.key, **{k: v for k, v in c.as_dict().items() if k != "key"}, "t": round(time.time(), 3), "code": code_version(stage)}


def run_journaled(
    llm: LLM,
    sampling: Sampling,
    requests: list[Request],
    journal_dir: Path,
    shard: int,
    num_shards: int,
    label: str,
    server_logs: Path,
    stage: str,
) -> RunResult:
    """Every request answered once: from the journal if it is there, else by the backend (whose
    server, if `llm.serve` asks for one, is started only when something is left to send)."""
    stats = RunStats(requests=len(requests))
    failed: dict[str, dict] = {}
    with ShardJournal(journal_dir, shard, num_shards) as jn:
        done, report = jn.load(r.key for r in requests)
        todo = [r for r in requests if r.key not in done]
        stats.reused_from_journal, stats.journal_unreadable_lines, stats.journal_sources = len(done), report.torn, report.sources
        log.info(
            "%s: %d requests: %d reused from the journal (%s), %d to send",
            label,
            len(requests),
            len(done),
            ", ".join(report.sources) or "none",
            len(todo),
        )
        if todo:
            progress = Progress(label, total=len(requests), already_done=len(done))
            started = time.monotonic()
            with backend_session(llm, server_logs, where=f"{stage}.llm") as backend:
                try:
                    for c in backend.generate(todo, sampling):
                        rec = journal_record(c, stage)
                        jn.append(rec)  # on disk before anything else happens
                        if c.retryable:
                            failed[c.key] = rec
                        else:
                            done[c.key] = rec
                            failed.pop(c.key, None)
                        stats.generated_tokens += c.completion_tokens or 0
                        progress.update(c.completion_tokens)
                finally:
                    stats.backend_requests_sent = getattr(backend, "requests_sent", len(todo))
                    progress.close()
            stats.generate_s = round(time.monotonic() - started, 3)
        stats.failed_after_retries = len(failed)
        stats.generated = sum(1 for r in todo if r.key in done)
        return RunResult(done, failed, stats, jn.path)
