"""Per-stage counts that become DVC metrics. A filtering stage accounts for every row:
rows in = rows kept + rows rejected (by reason)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distillery.io import write_json


@dataclass
class FilterCounts:
    rows_in: int = 0
    kept: int = 0
    rejected: Counter = field(default_factory=Counter)

    def keep(self, n: int = 1) -> None:
        self.kept += n

    def reject(self, reason: str, n: int = 1) -> None:
        self.rejected[reason] += n

    def check(self, stage: str) -> None:
        total = self.kept + sum(self.rejected.values())
        if total != self.rows_in:
            raise AssertionError(f"{stage}: {self.rows_in} rows in but {self.kept} kept + {total - self.kept} rejected")

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "kept": self.kept,
            "rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(sorted(self.rejected.items())),
        }


def write_metrics(path: str | Path, stage: str, **sections: Any) -> None:
    write_json({"stage": stage, **sections}, path)
