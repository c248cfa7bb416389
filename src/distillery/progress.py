"""How far along a long job is: a progress bar on a terminal, plain log lines elsewhere.

Under Snakemake or Slurm, stderr is a log file, so a bar would be thousands of carriage returns;
there a line is logged every $DISTILLERY_PROGRESS_INTERVAL seconds (default 60) instead.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from datetime import timedelta

log = logging.getLogger(__name__)


def _interval() -> float:
    try:
        return max(0.1, float(os.environ.get("DISTILLERY_PROGRESS_INTERVAL", "60")))
    except ValueError:
        return 60.0


class Progress:
    def __init__(self, label: str, total: int, already_done: int = 0, tty: bool | None = None):
        self.label = label
        self.total = total
        self.done = already_done  # reused from a journal: counted as done, not in the rates
        self.new = 0
        self.tokens = 0
        self.started = time.monotonic()
        self.interval = _interval()
        self._last_log = self.started
        self._bar = None
        if tty if tty is not None else sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=already_done, desc=label, unit="req", dynamic_ncols=True)

    def update(self, tokens: int | None) -> None:
        self.done += 1
        self.new += 1
        self.tokens += tokens or 0
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix_str(f"{self.tokens_per_s:,.0f} tok/s", refresh=False)
        elif time.monotonic() - self._last_log >= self.interval:
            self._last_log = time.monotonic()
            log.info("%s", self.line())

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.elapsed if self.elapsed > 0 else 0.0

    def eta(self) -> str:
        left = self.total - self.done
        if not self.new or left <= 0:
            return "0:00:00" if left <= 0 else "unknown"
        return str(timedelta(seconds=round(left * self.elapsed / self.new)))

    def line(self) -> str:
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return f"{self.label}: {self.done}/{self.total} requests ({pct:.1f}%), {self.tokens_per_s:,.0f} generated tok/s, ETA {self.eta()}"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        log.info("%s", self.line())
