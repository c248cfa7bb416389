"""Progress reporting: plain log lines at an interval where stderr is a log file."""

import logging

from distillery.progress import Progress


def test_plain_lines_report_done_total_rate_and_eta(monkeypatch, caplog):
    monkeypatch.setenv("DISTILLERY_PROGRESS_INTERVAL", "0.1")
    clock = iter(range(0, 1000, 1))
    monkeypatch.setattr("distillery.progress.time.monotonic", lambda: float(next(clock)))
    caplog.set_level(logging.INFO, logger="distillery.progress")
    p = Progress("generate shard 0/2", total=10, already_done=4, tty=False)
    for _ in range(3):
        p.update(50)
    p.close()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4  # one per update past the interval, one at close
    assert lines[-1].startswith("generate shard 0/2: 7/10 requests (70.0%)")
    assert "generated tok/s" in lines[-1] and "ETA 0:00:" in lines[-1]


def test_eta_counts_only_new_work(monkeypatch):
    p = Progress("x", total=100, already_done=90, tty=False)
    assert p.eta() == "unknown"  # nothing new yet: no rate to extrapolate
    p.close()
