"""Per-stage counts that become DVC metrics. A filtering stage accounts for every row:
rows in = rows kept + rows rejected (by reason), and every rejected row is written, with its reason,
to the stage's rejected table: one call (`reject`, `reject_all`) both counts a row and records it,
as datatrove's filters do, so the count and the table cannot disagree."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl

from distillery.io import write_json


@dataclass
class FilterCounts:
    rows_in: int = 0
    kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    _parts: list[pl.DataFrame | list[dict]] = field(default_factory=list, repr=False)
    # Where reject_all's rows go as they come, for a stage whose rejected rows are too many to hold
    # (dedupe): a writer of (uuid, reason, detail, ...) frames. None: they are held for rejected_rows.
    exclusions: Callable[[pl.DataFrame], None] | None = field(default=None, repr=False)

    def keep(self, n: int = 1) -> None:
        self.kept += n

    def reject(self, reason: str, **row: Any) -> None:
        """One row rejected for `reason`: counted, and recorded (its id and detail columns) for the table."""
        self.rejected[reason] += 1
        if not self._parts or not isinstance(self._parts[-1], list):
            self._parts.append([])
        self._parts[-1].append({**row, "reason": reason})

    def reject_all(self, reason: str, rows: pl.DataFrame) -> None:
        """Every row of `rows` rejected for `reason`, counted and recorded in one call."""
        if rows.height:
            self.rejected[reason] += rows.height
            rows = rows.with_columns(pl.lit(reason, dtype=pl.String).alias("reason"))
            if self.exclusions is not None:
                self.exclusions(rows)
            else:
                self._parts.append(rows)

    def rejected_rows(self, schema: dict[str, pl.DataType]) -> pl.DataFrame:
        """The recorded rows, in the order they were rejected, as a frame of `schema`'s columns."""
        frames = [pl.DataFrame(p, schema=schema) if isinstance(p, list) else p.select(list(schema)).cast(schema) for p in self._parts]
        return pl.concat([pl.DataFrame(schema=schema), *frames])

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


# The libraries whose versions decide what each stage makes (nf-core records them beside every
# step's outputs). A library that is not installed is left out: the stage did not run it.
STAGE_LIBRARIES: dict[str, tuple[str, ...]] = {
    "sample": ("polars", "datasets"),
    "ingest": ("polars", "datasets"),
    "mix": ("polars",),
    "models": ("torch", "transformers", "tokenizers"),
    "generate": ("torch", "transformers", "vllm", "openai"),
    "verify": ("math-verify", "latex2sympy2_extended", "sympy"),
    "judge": ("torch", "transformers", "vllm", "openai"),
    "dedupe": ("polars", "rensa", "numpy"),
    "build": ("polars", "pyarrow"),
    "curate": ("polars", "pyarrow"),
    "sft": ("torch", "transformers", "trl", "accelerate", "datasets", "liger-kernel", "deepspeed"),
    "preferences": ("polars",),
    "dpo": ("torch", "transformers", "trl", "accelerate", "datasets", "liger-kernel", "deepspeed"),
    "difficulty": ("torch", "transformers", "vllm", "openai", "math-verify", "latex2sympy2_extended", "sympy"),
    "grpo": ("torch", "transformers", "trl", "accelerate", "datasets", "vllm", "math-verify", "latex2sympy2_extended", "sympy"),
    "evaluate": ("torch", "transformers", "vllm", "openai", "math-verify", "datasets"),
    "report": ("polars", "vl-convert-python"),
    "lighteval": ("lighteval",),
}


def library_versions(stage: str) -> dict[str, str]:
    found = {}
    for name in STAGE_LIBRARIES.get(stage, ()):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


# --- headline figures: what `dvc metrics show` prints ---------------------------------------------
#
# `dvc metrics show` prints one table: a row per metrics file, a column per flattened key of all of
# them together. With every stage's full counts that was 550 columns and 15,000 characters wide. So
# each stage's DVC metric is `metrics/headline/<stage>.json`, a few figures under column names the
# stages share (rows_in, kept, rejected, steps, loss, ...), which fits a terminal (tests/test_metrics.py
# measures it with DVC); the full counts stay in `metrics/<stage>.json` (git-tracked, read by the
# report, `distillery diff` and the tests).

HEADLINE_DIR = "headline"


def headline_path(path: str | Path) -> Path:
    """Where the headline figures of the metrics file at `path` go."""
    path = Path(path)
    return path.parent / HEADLINE_DIR / path.name


def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def _flow(counts: dict[str, Any] | None) -> dict[str, Any]:
    counts = counts or {}
    return {k: counts[k] for k in ("rows_in", "kept", "rejected") if k in counts}


def _evaluate_headline(m: dict[str, Any]) -> dict[str, Any]:
    """pass@1 per benchmark, of mode sampled (the published protocol), else the first mode."""
    results = m.get("results") or {}
    mode = "sampled" if "sampled" in results else next(iter(sorted(results)), None)
    return {bench: r.get("pass@1") for bench, r in sorted((results.get(mode) or {}).items())}


HEADLINES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "sample": lambda m: _flow(m.get("counts")),
    "ingest": lambda m: _flow(m.get("counts")),
    "mix": lambda m: _flow(m.get("counts")),
    "models": lambda m: {"loss": (m.get("teacher") or {}).get("final_loss")},
    "generate": lambda m: {
        "rows_in": m.get("requests"),
        "kept": (m.get("by_status") or {}).get("ok"),
        "rejected": (m.get("requests") or 0) - (m.get("by_status") or {}).get("ok", 0),
    },
    "verify": lambda m: {
        "rows_in": m.get("generations"),
        "kept": m.get("generations_correct"),
        "rejected": (m.get("generations") or 0) - (m.get("generations_correct") or 0),
        "pass_rate": m.get("problem_pass_rate"),
    },
    "judge": lambda m: {
        "rows_in": m.get("judged"),
        "kept": m.get("recovered_generations"),
        "rejected": (m.get("judged") or 0) - (m.get("recovered_generations") or 0),
    },
    "dedupe": lambda m: _flow(m.get("counts")),
    "build": lambda m: _flow(m.get("counts")),
    "curate": lambda m: _flow(m.get("counts")),
    "sft": lambda m: {"rows_in": m.get("rows"), "steps": m.get("steps"), "loss": m.get("train_loss")},
    "preferences": lambda m: _flow(m.get("problems")),
    "dpo": lambda m: {"rows_in": m.get("pairs"), "steps": m.get("steps"), "loss": m.get("train_loss")},
    "difficulty": lambda m: {**_flow(m.get("counts")), "pass_rate": m.get("mean_pass_rate")},
    "grpo": lambda m: {**_flow(m.get("problems")), "steps": m.get("steps"), "reward": (m.get("last_step") or {}).get("reward")},
    "evaluate": _evaluate_headline,
}


def headline(stage: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """A stage's headline figures from its full metrics (absent figures left out)."""
    figures = HEADLINES[stage](metrics) if stage in HEADLINES else {}
    return {k: _round(v) for k, v in figures.items() if v is not None}


def write_metrics(path: str | Path, stage: str, **sections: Any) -> None:
    """A stage's full metrics at `path`, with the versions of the libraries it ran, and its headline
    figures (its DVC metric) at headline_path(path)."""
    full = {"stage": stage, **sections, "versions": library_versions(stage)}
    write_json(full, path)
    if stage in HEADLINES:
        write_json(headline(stage, full), headline_path(path))


def add_counts(total: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """`total` plus `part`, key by key and into nested dicts: counts made a batch at a time (each
    batch holding whole problems) add up to the counts of the whole table."""
    out = dict(total)
    for key, value in part.items():
        if isinstance(value, dict):
            out[key] = add_counts(out.get(key, {}), value)
        else:
            out[key] = out.get(key, 0) + value
    return out
