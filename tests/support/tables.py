"""Stage tables for unit tests: the columns a test cares about, the rest of the declared table null."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from distillery.tables import Table


def table_frame(table: Table, columns: dict[str, list]) -> pl.DataFrame:
    """A frame of `table`'s declared columns and types holding `columns`; every other column null."""
    undeclared = set(columns) - set(table.schema)
    assert not undeclared, f"{sorted(undeclared)} are not columns of {table.name}"
    height = len(next(iter(columns.values())))
    return pl.DataFrame({c: columns.get(c, [None] * height) for c in table.schema}, schema=table.schema)


def write_table_file(path: Path, table: Table, columns: dict[str, list]) -> Path:
    table_frame(table, columns).write_parquet(path)
    return path
