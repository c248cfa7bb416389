"""The contract between stages: every table a stage writes, its columns and their types, and who makes it.

Writers go through `write_table`, which casts to the declared types and refuses an undeclared or
missing column (a bug in the stage, caught before anything downstream reads it). Readers go through
`read_table`, asking for the producer's columns: a file without them, or with another type, is one
message that names the file, the column, the stage that makes it and the fix, and says which
table the file looks like when a path was swapped. New stages declare their tables here.

The published dataset's schema (OpenR1-Math-220k's columns) is `distillery.stages.build.DATASET_SCHEMA`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from distillery.errors import DistilleryError
from distillery.io import require, write_parquet

S, I64, F64, B = pl.String, pl.Int64, pl.Float64, pl.Boolean


def provenance(stage: str) -> dict[str, pl.DataType]:
    """The settings hash and code version every stage stamps on its rows (distillery.provenance)."""
    return {f"{stage}_params": S, f"{stage}_code": S}


@dataclass(frozen=True)
class Table:
    name: str  # what the readers call it
    stage: str  # the stage (and the `dvc repro` / Snakemake target) that writes it
    path: str  # where the workflow keeps it
    schema: dict[str, pl.DataType]

    @property
    def columns(self) -> list[str]:
        return list(self.schema)

    def extend(self, name: str, stage: str, path: str, columns: dict[str, pl.DataType]) -> Table:
        """A table that keeps this one's columns and adds `columns` (verify and judge add to generations)."""
        return Table(name, stage, path, {**self.schema, **columns})


PROBLEMS = Table(
    "sampled problems",
    "sample",
    "data/sample/problems.parquet",
    {
        "uuid": S,
        "problem": S,
        "solution": S,
        "answer": S,
        "problem_type": S,
        "question_type": S,
        "source": S,
        "synthetic": B,
        "source_row": I64,
        **provenance("sample"),
        "source_version": S,
    },
)
SAMPLE_REJECTED = Table(
    "sample rejections",
    "sample",
    "data/sample/rejected.parquet",
    {"source_row": I64, "reason": S, "detail": S, "preview": S, **provenance("sample"), "source_version": S},
)
GENERATIONS = Table(
    "generations",
    "generate",
    "data/generate/generations.parquet",
    {
        "uuid": S,
        "sample_index": I64,
        "round": I64,  # the round of generation that made it (distillery.rounds); null: a corpus's
        "request_key": S,
        "generation": S,
        "finish_reason": S,
        "status": S,
        "prompt_tokens": I64,
        "completion_tokens": I64,
        "error": S,
        "teacher_backend": S,
        "teacher_model": S,
        "teacher_revision": S,
        "sampling": S,
        # The teacher's contents when it is a local directory, the settings, the code that answered.
        "teacher_fingerprint": S,
        **provenance("generate"),
    },
)
GENERATION_SHARD = Table("a generation shard", "generate", "data/generate/shards/shard-<k>.parquet", GENERATIONS.schema)
# A published corpus read by ingest, and what mix combines: the sample's and generate's columns, so
# verify, judge, dedupe and build read them unchanged. On a corpus row the sample_* and generate_*
# provenance columns name the ingest stage that read it; teacher_backend is "corpus".
CORPUS_COLUMNS = {"corpus": S, "answer_origin": S, "licence": S}
INGESTED_PROBLEMS = PROBLEMS.extend("ingested problems", "ingest", "data/ingest/problems.parquet", CORPUS_COLUMNS)
INGESTED_GENERATIONS = Table("ingested generations", "ingest", "data/ingest/generations.parquet", GENERATIONS.schema)
INGEST_REJECTED = Table(
    "ingest rejections",
    "ingest",
    "data/ingest/rejected.parquet",
    {"corpus": S, "source_row": I64, "reason": S, "detail": S, "preview": S, **provenance("ingest")},
)
MIXED_PROBLEMS = PROBLEMS.extend("mixed problems", "mix", "data/mix/problems.parquet", CORPUS_COLUMNS)
MIXED_GENERATIONS = Table("mixed generations", "mix", "data/mix/generations.parquet", GENERATIONS.schema)
MIX_LEFT_OUT = Table(
    "problems left out of the mix",
    "mix",
    "data/mix/left_out.parquet",
    {"uuid": S, "corpus": S, "reason": S, "detail": S, **provenance("mix")},
)
VERIFIED = GENERATIONS.extend(
    "verified generations",
    "verify",
    "data/verify/verified.parquet",
    {
        "extracted_answer": S,
        "is_reasoning_complete": B,
        "correctness_math_verify": B,
        "verify_status": S,
        **provenance("verify"),
        "verifier": S,
    },
)
JUDGED = VERIFIED.extend(
    "judged generations",
    "judge",
    "data/judge/judged.parquet",
    {
        "judge_verdict": S,
        "correctness_llama": B,
        "judge_reply": S,
        "judge_request_key": S,
        "judge_model": S,
        "judge_revision": S,
        "judge_fingerprint": S,
        **provenance("judge"),
    },
)
KEPT = Table("dedupe's kept problems", "dedupe", "data/dedupe/kept.parquet", {"uuid": S, **provenance("dedupe")})
DEDUPE_REJECTED = Table(
    "dedupe rejections", "dedupe", "data/dedupe/rejected.parquet", {"uuid": S, "reason": S, "detail": S, **provenance("dedupe")}
)
CONTAMINATION = Table(
    "contamination matches",
    "dedupe",
    "data/dedupe/contamination.parquet",
    {
        "uuid": S,
        "source": S,
        "benchmark": S,
        "benchmark_item": S,
        "ngram": S,
        "matching_ngrams": I64,
        "item_coverage": F64,
        "problem": S,
        "benchmark_problem": S,
        **provenance("dedupe"),
    },
)
NEAR_DUPLICATES = Table(
    "near-duplicate pairs",
    "dedupe",
    "data/dedupe/near_duplicates.parquet",
    {"uuid_a": S, "uuid_b": S, "similarity": F64, "problem_a": S, "problem_b": S, **provenance("dedupe")},
)
BUILD_REJECTED = Table(
    "build rejections", "build", "data/build/rejected.parquet", {"uuid": S, "reason": S, "detail": S, **provenance("build")}
)
ROW_PROVENANCE = Table(
    "row provenance",
    "build",
    "data/build/provenance.parquet",
    {
        "split": S,
        "uuid": S,
        "source_row": I64,
        "source_version": S,
        **provenance("sample"),
        "request_keys": pl.List(S),
        "rounds": pl.List(I64),  # the round of generation of each (distillery.rounds); null: a corpus's
        "judge_request_keys": pl.List(S),
        "generate_codes": pl.List(S),
        "judge_codes": pl.List(S),
        "teacher_model": S,
        "teacher_revision": S,
        "teacher_fingerprint": S,
        "generate_params": S,
        "verifier": S,
        **provenance("verify"),
        "judge_model": S,
        "judge_revision": S,
        "judge_fingerprint": S,
        "judge_params": S,
        "messages_sample_index": I64,
        "reward_scores": pl.List(F64),  # build.choice reward_model: each generation's score (null otherwise)
        **provenance("dedupe"),
        **provenance("build"),
    },
)
MESSAGES = pl.List(pl.Struct({"content": S, "role": S}))
PREFERENCE_PAIRS = Table(
    "preference pairs",
    "preferences",
    "data/preferences/pairs.parquet",
    {
        "uuid": S,
        "pair_index": I64,
        # TRL's conversational preference format: the prompt, then one assistant message each.
        "prompt": MESSAGES,
        "chosen": MESSAGES,
        "rejected": MESSAGES,
        "rejected_kind": S,  # wrong | truncated
        "chosen_sample_index": I64,
        "rejected_sample_index": I64,
        "chosen_request_key": S,
        "rejected_request_key": S,
        "chosen_completion_tokens": I64,
        "rejected_completion_tokens": I64,
        **provenance("preferences"),
    },
)
PREFERENCES_UNPAIRED = Table(
    "problems without a preference pair",
    "preferences",
    "data/preferences/unpaired.parquet",
    {"uuid": S, "reason": S, "detail": S, **provenance("preferences")},
)
CURATE_SELECTION = Table(
    "curation choices",
    "curate",
    "data/curate/selection.parquet",
    {
        "uuid": S,
        "selected": B,
        "reason": S,  # selected, or the first filter the problem failed (distillery.curation)
        "domain": S,
        "trace_words": I64,
        "pass_rate": F64,
        "correct": I64,
        "generations": I64,
        "score": F64,  # limo's quality score (null for s1k)
        "draw_order": I64,  # 1-based order of selection (null: not selected)
        "phase": S,  # s1k: how the row's domain was drawn, uniform or weighted (null: not drawn; limo)
        **provenance("curate"),
    },
)
EVALUATION_SAMPLES = Table(
    "evaluation samples",
    "evaluate",
    "data/evaluate/samples.parquet",
    {
        "benchmark": S,
        "mode": S,
        "item": S,
        "sample_index": I64,
        "request_key": S,
        "generation": S,
        "finish_reason": S,
        "extracted_answer": S,
        "gold": S,
        "correct": B,
        "verify_status": S,
        # budget_forcing modes (null in the others): thinking tokens used, "Wait"s appended, whether
        # the budget ended the thinking, requests (rounds + the answer).
        "thinking_tokens": I64,
        "ignores_appended": I64,
        "thinking_capped": B,
        "requests": I64,
        "evaluate_code": S,
        # The model's contents (local directory), the verifier, the settings that shape an answer.
        "model_fingerprint": S,
        "verifier": S,
        "evaluate_params": S,
    },
)

TABLES = (
    PROBLEMS,
    SAMPLE_REJECTED,
    INGESTED_PROBLEMS,
    INGEST_REJECTED,
    MIXED_PROBLEMS,
    MIX_LEFT_OUT,
    GENERATIONS,
    VERIFIED,
    JUDGED,
    KEPT,
    DEDUPE_REJECTED,
    CONTAMINATION,
    NEAR_DUPLICATES,
    BUILD_REJECTED,
    ROW_PROVENANCE,
    PREFERENCE_PAIRS,
    PREFERENCES_UNPAIRED,
    CURATE_SELECTION,
    EVALUATION_SAMPLES,
)


def looks_like(columns: dict[str, pl.DataType]) -> Table | None:
    """The declared table whose columns these are exactly, if any (to name a swapped path)."""
    return next((t for t in TABLES if list(columns) == t.columns), None)


def read_table(path: str | Path, table: Table, columns: list[str] | None = None) -> pl.DataFrame:
    """`columns` (default: all the declared ones) of `table` read from `path`, with their declared types."""
    path, wanted = check_table(path, table, columns)
    try:
        return pl.read_parquet(path, columns=wanted)
    except Exception as exc:
        raise DistilleryError(f"{table.name} {path} is not a readable parquet file ({exc}); re-run the {table.stage} stage") from None


def check_table(path: str | Path, table: Table, columns: list[str] | None = None) -> tuple[Path, list[str]]:
    """(path, columns) once `path` is known to hold `columns` (default: all) of `table` with their
    declared types; otherwise the one message read_table gives."""
    path = require(path, table.name)
    wanted = columns or table.columns
    undeclared = [c for c in wanted if c not in table.schema]
    if undeclared:
        raise DistilleryError(f"bug: {undeclared} are not columns of the {table.stage} stage's {table.name} (distillery.tables)")
    try:
        found = pl.read_parquet_schema(path)
    except Exception as exc:  # polars raises several types for corrupt files
        raise DistilleryError(f"{table.name} {path} is not a readable parquet file ({exc}); re-run the {table.stage} stage") from None
    missing = [c for c in wanted if c not in found]
    mistyped = [f"{c} is {found[c]}, not {table.schema[c]}" for c in wanted if c in found and found[c] != table.schema[c]]
    if missing or mistyped:
        problem = f"has no column(s) {missing}" if missing else f"has the wrong type: {'; '.join(mistyped)}"
        other = looks_like(found)
        hint = f" It looks like the {other.stage} stage's {other.name} ({other.path}): check the path." if other else ""
        raise DistilleryError(
            f"{path} {problem}; the {table.stage} stage writes them, as its {table.name} ({table.path}).{hint} "
            f"Pass the {table.name} file, or re-run `dvc repro {table.stage}` if it is an old one."
        )
    return Path(path), wanted


def read_rows_of(path: str | Path, table: Table, columns: list[str], uuids: Iterable[str]) -> pl.DataFrame:
    """`read_table` of the rows whose uuid is in `uuids` only, filtered while the file is scanned: a
    shard's problems without the whole problems table in memory."""
    path, wanted = check_table(path, table, columns)
    keys = pl.Series("uuid", list(uuids), dtype=pl.String)
    try:
        return pl.scan_parquet(path).select(wanted).filter(pl.col("uuid").is_in(keys.implode())).collect(engine="streaming")
    except Exception as exc:
        raise DistilleryError(f"{table.name} {path} is not a readable parquet file ({exc}); re-run the {table.stage} stage") from None


# Generation rows per batch when a stage streams a table: ~30 MB of R1-length traces, whatever the total.
BATCH_ROWS = 1024
# Rows per parquet row group of a table written in batches. A reader streams a row group's pages
# (READ_BUFFER_BYTES at a time), so the size bounds no reader's memory; but every row group costs
# ~20 KB of footer in each process that opens the file, so groups must not shrink as tables grow.
GROUP_ROWS = BATCH_ROWS
READ_BUFFER_BYTES = 256 * 1024
PAGE_VALUES = 64  # values per parquet page at most (TableWriter): a page is what a streaming reader holds
# Shards a gather merges at once: each open reader holds its footer and a page per column (~10 MB).
# A gather of more merges them GATHER_FAN_IN at a time into temporary files first.
GATHER_FAN_IN = 8


def iter_table(path: str | Path, table: Table, columns: list[str] | None = None, batch_rows: int = BATCH_ROWS) -> Iterator[pl.DataFrame]:
    """`read_table` in batches of at most `batch_rows` rows, in file order, for a table too large to hold."""
    import pyarrow.parquet as pq

    path, wanted = check_table(path, table, columns)
    try:
        # pre_buffer off: on, pyarrow reads ahead across row groups and its memory grows with the file.
        # buffer_size on: off, it reads a row group's whole column at once (a GROUP_ROWS of traces).
        # use_threads off: each decoding thread keeps its own allocator heap, and peak memory went up
        # and down by 40 MB from run to run (measured, reading problems; no slower on row groups this small).
        reader = pq.ParquetFile(path, pre_buffer=False, buffer_size=READ_BUFFER_BYTES)
        for batch in reader.iter_batches(batch_size=batch_rows, columns=wanted, use_threads=False):
            if batch.num_rows:
                yield pl.from_arrow(batch).cast({c: table.schema[c] for c in wanted})
    except DistilleryError:
        raise
    except Exception as exc:  # pyarrow raises several types for a truncated or corrupt file
        raise DistilleryError(f"{table.name} {path} is not a readable parquet file ({exc}); re-run the {table.stage} stage") from None


def iter_groups(batches: Iterable[pl.DataFrame], key: str, where: str) -> Iterator[pl.DataFrame]:
    """The batches again, cut so that the rows of one `key` value are always in the same batch: the
    rows of the last key of a batch wait for the next one. The input must be sorted by `key`, as the
    gathered and per-shard tables are (else a DistilleryError naming `where`)."""
    held: pl.DataFrame | None = None
    last: str | None = None
    for batch in batches:
        keys = batch[key]
        if (last is not None and keys[0] < last) or not keys.is_sorted():
            raise DistilleryError(f"{where} is not sorted by {key}; it was not written by this version's stage: re-run it")
        last = keys[-1]
        batch = batch if held is None else pl.concat([held, batch])
        # Sorted, so the last key's rows are the tail: slices, which copy no text.
        complete = int(batch[key].search_sorted(last, side="left"))
        if complete:
            yield batch.slice(0, complete)
        held = batch.slice(complete)
    if held is not None and held.height:
        yield held


def row_count(path: str | Path) -> int:
    """Rows in a parquet file, from its footer."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def sorted_copy(path: str | Path, table: Table, directory: str | Path) -> Path:
    """`path` if its rows are in key order (uuid, sample_index), else a sorted copy in `directory`:
    for the one-process runs of stages whose jobs stream key-ordered shards (tests, small tables)."""
    keys = read_table(path, table, columns=["uuid", "sample_index"])
    if keys.equals(keys.sort("uuid", "sample_index")):
        return Path(path)
    copy = Path(directory) / f"sorted-{Path(path).name}"
    write_table(read_table(path, table).sort("uuid", "sample_index"), copy, table)
    return copy


def _in_key_order(df: pl.DataFrame) -> bool:
    uuid, index = pl.col("uuid"), pl.col("sample_index")
    after = (uuid > uuid.shift()) | ((uuid == uuid.shift()) & (index > index.shift()))
    return bool(df.select(after.fill_null(True).all()).item())


def gather_sorted(
    shards: Sequence[str | Path], table: Table, out: str | Path, batch_rows: int = BATCH_ROWS, fan_in: int = GATHER_FAN_IN
) -> Iterator[pl.DataFrame]:
    """Merge shards, each sorted by (uuid, sample_index), into `out` sorted the same way, in row
    groups of `batch_rows`: the same bytes for any number of shards. Holds about two batches and at
    most `fan_in` open shards: more are merged `fan_in` at a time into temporary files beside `out`
    first. Yields each batch of `out` as it is written (for the caller's counts); `out` appears when
    the iterator ends."""
    level, out = [Path(p) for p in shards], Path(out)
    if len(level) <= fan_in:
        yield from _merge(level, table, out, batch_rows, fan_in)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.*"):  # a killed gather's (SIGTERM, a Slurm time limit): a copy of the rows
        shutil.rmtree(stale, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as tmp:
        depth = 0
        while len(level) > fan_in:
            merged = []
            for i in range(0, len(level), fan_in):
                merged.append(Path(tmp) / f"merge-{depth}-{i // fan_in}.parquet")
                for _ in _merge(level[i : i + fan_in], table, merged[-1], batch_rows, fan_in):
                    pass
            for p in level:
                if p.parent == Path(tmp):
                    p.unlink()
            level, depth = merged, depth + 1
        yield from _merge(level, table, out, batch_rows, fan_in)


def _rows_upto(df: pl.DataFrame, uuid: str, index: int) -> int:
    """How many of `df`'s leading rows, sorted by (uuid, sample_index), come at or before (uuid, index)."""
    upto = (pl.col("uuid") < uuid) | ((pl.col("uuid") == uuid) & (pl.col("sample_index") <= index))
    return int(df.select(upto.sum()).item())


def _merge(shards: list[Path], table: Table, out: Path, batch_rows: int, fan_in: int) -> Iterator[pl.DataFrame]:
    """gather_sorted's k-way merge of at most `fan_in` shards, all open at once."""
    per_shard = max(min(64, batch_rows), batch_rows // fan_in)  # at most about one batch held, however many shards
    readers = [iter_table(p, table, batch_rows=per_shard) for p in shards]
    loaded_upto: list[tuple[str, int] | None] = [None] * len(readers)

    def last_key(df: pl.DataFrame) -> tuple[str, int]:
        return df["uuid"][-1], df["sample_index"][-1]

    def load(s: int) -> pl.DataFrame | None:
        batch = next(readers[s], None)
        if batch is None:
            return None
        first = (batch["uuid"][0], batch["sample_index"][0])
        if not _in_key_order(batch) or (loaded_upto[s] is not None and first <= loaded_upto[s]):
            raise DistilleryError(
                f"{shards[s]} is not sorted by (uuid, sample_index): it was not written by this version of the "
                f"{table.stage} stage; re-run it"
            )
        loaded_upto[s] = last_key(batch)
        return batch

    held = [load(s) for s in range(len(readers))]
    final: list[pl.DataFrame] = []  # merged rows not yet written: slices of the held batches, copying nothing
    final_rows = 0
    with TableWriter(out, table) as writer:
        while any(h is not None for h in held):
            # Every row up to the smallest of the shards' last held keys is final: no shard can hold a smaller one.
            uuid, index = min(last_key(h) for h in held if h is not None)
            for s, h in enumerate(held):
                if h is None:
                    continue
                n = _rows_upto(h, uuid, index)
                if n:
                    final.append(h.slice(0, n))
                    final_rows += n
                held[s] = h.slice(n) if n < h.height else load(s)
            # Whole batches only, so that the row groups (and the file's bytes) do not depend on the shards.
            last = all(h is None for h in held)
            if final_rows >= batch_rows or (last and final_rows):
                merged = pl.concat(final).sort("uuid", "sample_index")
                final, final_rows = [], 0
                for start in range(0, merged.height, batch_rows):
                    part = merged.slice(start, batch_rows)
                    if part.height < batch_rows and not last:
                        final, final_rows = [part], part.height
                        break
                    writer.write(part)
                    yield part


# Kept problems per bucket file of KeptProblems (~12 MB of problems with NuminaMath's reference solutions).
KEPT_PER_BUCKET = 8192


class KeptProblems:
    """The kept problems with their kept rows (dedupe's provenance), in uuid order, a piece at a time:
    the problems table is spread over bucket files by uuid range, KEPT_PER_BUCKET kept problems to a
    range (kept.parquet is sorted by uuid, so every KEPT_PER_BUCKET-th of its uuids bounds one), and
    `upto` reads a bucket back, sorted and matched with the kept rows, when the generations reach it."""

    def __init__(self, problems_path: Path, kept_path: Path, spool: Path):
        self.kept_path, self.spool = kept_path, spool
        lows = self._bounds()
        if lows is None:  # not as dedupe writes it (a table made by hand): a sorted copy, once
            self.kept_path = spool / "kept-sorted.parquet"
            write_table(read_table(kept_path, KEPT).unique("uuid", keep="first", maintain_order=True).sort("uuid"), self.kept_path, KEPT)
            lows = self._bounds()
        self.lows = pl.Series("low", lows, dtype=pl.String)
        import pyarrow.parquet as pq

        writers: dict[int, pq.ParquetWriter] = {}
        try:
            for problems in iter_table(problems_path, PROBLEMS, batch_rows=KEPT_PER_BUCKET):
                if not lows:
                    break
                bucket = (self.lows.search_sorted(problems["uuid"], side="right") - 1).clip(0, None)
                for (b,), part in problems.with_columns(bucket.alias("_bucket")).partition_by("_bucket", as_dict=True).items():
                    table = part.drop("_bucket").to_arrow()
                    if b not in writers:
                        writers[b] = pq.ParquetWriter(self._bucket(b), table.schema, compression="lz4")
                    writers[b].write_table(table)
        finally:
            for w in writers.values():
                w.close()
        self._buckets = self._read_back()
        self._frame = pl.DataFrame(schema={**PROBLEMS.schema, **KEPT.schema})
        self._done = 0
        self.taken = 0

    def _bounds(self) -> list[str] | None:
        """Every KEPT_PER_BUCKET-th kept uuid; None when the kept table is not sorted by unique uuids."""
        lows, last = [], None
        for kept in iter_table(self.kept_path, KEPT, ["uuid"], KEPT_PER_BUCKET):
            uuids = kept["uuid"]
            if uuids.null_count() or not uuids.is_sorted() or (last is not None and uuids[0] <= last) or uuids.n_unique() < len(uuids):
                return None
            lows.append(uuids[0])
            last = uuids[-1]
        return lows

    def _bucket(self, b: int) -> Path:
        return self.spool / f"problems-{b}.parquet"

    def _read_back(self) -> Iterator[pl.DataFrame]:
        for b, kept in enumerate(iter_table(self.kept_path, KEPT, batch_rows=KEPT_PER_BUCKET)):
            path = self._bucket(b)
            if path.is_file():
                problems = pl.read_parquet(path).cast(PROBLEMS.schema)
                path.unlink()
                yield problems.join(kept, on="uuid", how="inner").sort("uuid", maintain_order=True)

    def upto(self, last: str | None) -> pl.DataFrame:
        """The kept problems after those taken before, up to uuid `last` (all that are left when None)."""
        parts = []
        while True:
            frame = self._frame
            until = frame.height if last is None else frame["uuid"].search_sorted(last, side="right")
            parts.append(frame.slice(self._done, until - self._done))
            self._done = until
            if until < frame.height:
                break
            nxt = next(self._buckets, None)
            if nxt is None:
                break
            self._frame, self._done = nxt, 0
        part = pl.concat(parts)
        self.taken += part.height
        return part


class TableWriter:
    """`write_table` in batches, for a table too large to hold at once: each batch is checked and
    cast as write_table does and appended as row groups; the file appears (atomically) on close."""

    def __init__(self, path: str | Path, table: Table, row_group_rows: int | None = None):
        import pyarrow.parquet as pq

        self.path, self.table, self.rows, self.row_group_rows = Path(path), table, 0, row_group_rows
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        schema = pl.DataFrame(schema=table.schema).to_arrow().schema
        # Pages of at most PAGE_VALUES values: a page is what a streaming reader holds (pyarrow
        # checks a page's size only every write_batch_size values, default 1024: a GROUP_ROWS of traces).
        self._writer = pq.ParquetWriter(self._tmp, schema, compression="zstd", write_batch_size=PAGE_VALUES)

    def write(self, df: pl.DataFrame) -> None:
        if df.columns != self.table.columns:
            raise DistilleryError(
                f"bug: a batch of {self.table.name} has columns {df.columns}, not {self.table.columns} (distillery.tables)"
            )
        self._writer.write_table(df.cast(self.table.schema, strict=True).to_arrow(), row_group_size=self.row_group_rows)
        self.rows += df.height

    def close(self) -> None:
        import os

        self._writer.close()
        os.replace(self._tmp, self.path)

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is None:
            self.close()
        else:
            self._writer.close()
            self._tmp.unlink(missing_ok=True)


def write_table(df: pl.DataFrame, path: str | Path, table: Table) -> pl.DataFrame:
    """`df` cast to `table`'s declared columns and types, written to `path` (atomically); returned."""
    if df.columns != table.columns:
        raise DistilleryError(
            f"bug: the {table.stage} stage made {table.name} with columns {df.columns}, but distillery.tables declares "
            f"{table.columns}; declare the change there (readers rely on it)"
        )
    try:
        df = df.cast(table.schema, strict=True)
    except Exception as exc:
        raise DistilleryError(f"bug: the {table.stage} stage's {table.name} does not cast to its declared types ({exc})") from None
    write_parquet(df, path)
    return df


# (uuid, file row) sorted by uuid: the runs of an external sort of a table's uuids (dedupe, report).
UUID_RUN = Table(
    "problem uuids in key order", "dedupe or report", "<spool>/uuids-<k>.parquet", {"uuid": pl.String, "sample_index": pl.Int64}
)


class UuidOrder:
    """A table's file rows in uuid order, without its uuids in memory: each batch's (uuid, row) is
    sorted into a run file as the table is read (`add`); `merge` merges the runs into one sorted file
    `block_rows` at a time (what it yields), which later passes read again (`blocks`)."""

    def __init__(self, spool: Path, block_rows: int):
        self.spool, self.block_rows, self.runs, self.rows = spool, block_rows, [], 0
        self.merged = spool / "uuids-sorted.parquet"

    def add(self, uuids: pl.Series) -> None:
        rows = pl.int_range(self.rows, self.rows + uuids.len(), eager=True, dtype=pl.Int64)
        run = pl.DataFrame({"uuid": uuids, "sample_index": rows}).sort("uuid", "sample_index")
        path = self.spool / f"uuids-{len(self.runs)}.parquet"
        write_table(run, path, UUID_RUN)
        self.runs.append(path)
        self.rows += uuids.len()

    def merge(self) -> Iterator[pl.DataFrame]:
        if not self.runs:
            write_table(pl.DataFrame(schema=UUID_RUN.schema), self.merged, UUID_RUN)
            return
        yield from gather_sorted(self.runs, UUID_RUN, self.merged, batch_rows=self.block_rows)
        for run in self.runs:
            run.unlink()

    def blocks(self) -> Iterator[pl.DataFrame]:
        return iter_table(self.merged, UUID_RUN, batch_rows=self.block_rows)


class UuidCursor:
    """Frames sorted by uuid, handed out in uuid order: `upto(last)` is the rows after those handed
    out before, up to uuid `last`. One side of a merge join whose other side comes in uuid order too."""

    def __init__(self, frames: Iterator[pl.DataFrame], schema: dict[str, pl.DataType]):
        self._frames, self._held, self._done = frames, pl.DataFrame(schema=schema), False

    def upto(self, last: str) -> pl.DataFrame:
        while not self._done and (not self._held.height or self._held["uuid"][-1] <= last):
            frame = next(self._frames, None)
            if frame is None:
                self._done = True
                break
            self._held = pl.concat([self._held, frame])
        cut = self._held["uuid"].search_sorted(last, side="right")
        found, self._held = self._held.slice(0, cut), self._held.slice(cut)
        return found
