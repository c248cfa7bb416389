"""build: assemble the dataset in the OpenR1-Math-220k schema, with its default, extended and all
configs and a dataset card (YAML `configs` and `dataset_info`, as the Hub writes them), from the
judged generations of the problems that survived dedupe.

A problem is kept when at least one generation is correct under `selection` (math_verify, judge,
or either — OpenR1's recommended union). `messages` pairs the problem with one correct generation
chosen by `choice`; the seeded random choice depends only on the seed and the problem key.

Nothing is held whole. The judged generations (sorted by uuid, sample_index, as the judge stage writes
them) are streamed a batch at a time and the dataset written as they come. The kept problems are
met in the same uuid order: the problems table is spread over bucket files by uuid range, and a
bucket at a time is read back and sorted (`tables.KeptProblems`). The row provenance is written a batch at
a time to one spool file per split, then the two are put end to end.
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from distillery.config.build import STAGE, BuildConfig
from distillery.errors import DistilleryError
from distillery.io import file_md5
from distillery.keys import derive_seed
from distillery.metrics import FilterCounts, write_metrics
from distillery.provenance import code_version, library_version, stamp
from distillery.rounds import by_round, round_label
from distillery.tables import (
    BUILD_REJECTED,
    JUDGED,
    KEPT,
    PROBLEMS,
    ROW_PROVENANCE,
    KeptProblems,
    Table,
    TableWriter,
    check_table,
    iter_table,
    read_table,
    write_table,
)

log = logging.getLogger(__name__)

MESSAGE = pa.struct([("content", pa.string()), ("role", pa.string())])
# OpenR1-Math-220k's columns, in its order.
DATASET_SCHEMA = pa.schema(
    [
        ("problem", pa.string()),
        ("solution", pa.string()),
        ("answer", pa.string()),
        ("problem_type", pa.string()),
        ("question_type", pa.string()),
        ("source", pa.string()),
        ("uuid", pa.string()),
        ("is_reasoning_complete", pa.list_(pa.bool_())),
        ("generations", pa.list_(pa.string())),
        ("correctness_math_verify", pa.list_(pa.bool_())),
        ("correctness_llama", pa.list_(pa.bool_())),
        ("finish_reasons", pa.list_(pa.string())),
        ("correctness_count", pa.int64()),
        ("messages", pa.list_(MESSAGE)),
    ]
)
SPLITS = ("default", "extended")
# OpenR1-Math-220k's configs: default, extended, and all (both). `all` names the other two's files,
# so no byte is stored twice and `datasets.load_dataset(dir, "all")` reads the union.
CONFIGS: dict[str, tuple[str, ...]] = {"default": ("default",), "extended": ("extended",), "all": SPLITS}
REJECTED_COLUMNS = {"uuid": pl.String, "reason": pl.String, "detail": pl.String}  # stamp() adds provenance


def split_file(dataset_dir: Path, split: str) -> Path:
    return dataset_dir / split / "train-00000-of-00001.parquet"


def is_correct(mv: bool | None, llama: bool | None, complete: bool, selection: str) -> bool:
    if not complete:
        return False
    if selection == "math_verify":
        return bool(mv)
    if selection == "judge":
        return bool(llama)
    return bool(mv) or bool(llama)


def choose(candidates: list[tuple[int, str]], how: str, seed: int, key: str, scores: dict[int, float] | None = None) -> tuple[int, str]:
    """(sample_index, text) of the generation that becomes the assistant message."""
    if how == "first":
        return candidates[0]
    if how == "shortest":
        return min(candidates, key=lambda c: (len(c[1]), c[0]))
    if how == "reward_model":
        assert scores is not None
        return max(candidates, key=lambda c: (scores[c[0]], -c[0]))  # the best score; the first of equals
    return random.Random(derive_seed(seed, key)).choice(candidates)


def reward_scores(cfg: BuildConfig, problems: pl.DataFrame, grouped: dict[str, dict]) -> dict[str, dict[int, float]]:
    """uuid -> {position of a correct generation: its reward-model score} (choice reward_model only)."""
    from distillery.reward_model import scores

    pairs, where = [], []
    for p in problems.iter_rows(named=True):
        g = grouped.get(p["uuid"])
        if g is None:
            continue
        for i, (text, mv, ll, c) in enumerate(
            zip(g["generation"], g["correctness_math_verify"], g["correctness_llama"], g["is_reasoning_complete"])
        ):
            if is_correct(mv, ll, c, cfg.selection):
                pairs.append((p["problem"], text or ""))
                where.append((p["uuid"], i))
    out: dict[str, dict[int, float]] = {}
    for (uuid, i), score in zip(where, scores(cfg.reward_model, pairs)):
        out.setdefault(uuid, {})[i] = score
    return out


Paths = STAGE.paths_record()  # its files, by the names its declaration gives them


# The judged columns each problem's row is made of (streamed), and the short ones its row provenance takes.
GENERATION_COLUMNS = [
    "uuid",
    "sample_index",
    "round",
    "generation",
    "finish_reason",
    "error",
    "is_reasoning_complete",
    "correctness_math_verify",
    "correctness_llama",
    "judge_verdict",
]
PROVENANCE_PER_ROW = ["request_key", "round", "judge_request_key", "generate_code", "judge_code"]
PROVENANCE_CONSTANT = [
    "teacher_model",
    "teacher_revision",
    "teacher_fingerprint",
    "generate_params",
    "verifier",
    "verify_params",
    "verify_code",
    "judge_model",
    "judge_revision",
    "judge_fingerprint",
    "judge_params",
]
PROVENANCE_COLUMNS = ["uuid", "sample_index", *PROVENANCE_PER_ROW, *PROVENANCE_CONSTANT]
PROBLEM_PROVENANCE = ["uuid", "source_row", "source_version", "sample_params", "sample_code"]


def _check_columns(path: Path, table: Table, columns: list[str]) -> None:
    """`path` holds `columns` of `table` with their declared types; else read_table's message, which
    it gives before reading any data (so this reads the footer only, never the texts)."""
    try:
        found = pl.read_parquet_schema(path)
        ok = all(found.get(c) == table.schema[c] for c in columns)
    except Exception:  # a missing or unreadable file: read_table says which
        ok = False
    if not ok:
        read_table(path, table, columns)


# Rows per pyarrow read: its reader grows a buffer per column by doubling, so a read of `batch_rows`
# texts of 25 KB costs several times their size; small reads, put together, cost them once.
READ_ROWS = 256


def _batches(path: Path, columns: list[str], batch_rows: int) -> Iterator[pl.DataFrame]:
    """The judged file's `columns`, `batch_rows` rows at a time (the last batch shorter)."""
    pending: list[pl.DataFrame] = []
    rows = 0
    try:
        reader = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
        batches = reader.iter_batches(batch_size=min(batch_rows, READ_ROWS), columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(path, exc) from None
    while True:
        try:
            batch = next(batches, None)
        except (pa.ArrowException, OSError) as exc:  # a file cut short or corrupt past its footer
            raise _unreadable(path, exc) from None
        if batch is None:
            break
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        pending.append(frame)
        rows += frame.height
        if rows >= batch_rows:
            yield pl.concat(pending)
            pending, rows = [], 0
    if pending:
        yield pl.concat(pending)


def _unreadable(path: Path, exc: Exception) -> DistilleryError:
    return DistilleryError(f"{JUDGED.name} {path} is not a readable parquet file ({exc}); re-run the {JUDGED.stage} stage")


def _judged_in_order(path: Path, columns: list[str], batch_rows: int) -> Iterator[pl.DataFrame]:
    """The judged rows, a problem's generations always together, in pieces of about `batch_rows`
    generations: each batch, less the rows of its last uuid, which go with the next one (the file
    is sorted by uuid, sample_index; a file that is not is an error, not a wrong dataset)."""
    carry: pl.DataFrame | None = None
    for frame in _batches(path, columns, batch_rows):
        frame = frame.filter(pl.col("uuid").is_not_null())  # no problem has a null uuid
        if carry is not None:
            frame = pl.concat([carry, frame])
        if frame.height == 0:
            continue
        _require_sorted(frame, path)
        cut = frame["uuid"].search_sorted(frame["uuid"][-1], side="left")
        carry = frame.slice(cut)
        if cut:
            yield frame.slice(0, cut)
    if carry is not None and carry.height:
        yield carry


def _require_sorted(frame: pl.DataFrame, path: Path) -> None:
    uuid, index = pl.col("uuid"), pl.col("sample_index")
    before = (uuid < uuid.shift(1)) | ((uuid == uuid.shift(1)) & (index < index.shift(1)))
    bad = frame.select("uuid", "sample_index").with_row_index("_i").filter(before.fill_null(False)).head(1)
    if bad.height:
        i = bad["_i"][0]
        raise DistilleryError(
            f"{path} is not sorted by uuid, sample_index (uuid {frame['uuid'][i]} sample {frame['sample_index'][i]} comes after "
            f"uuid {frame['uuid'][i - 1]} sample {frame['sample_index'][i - 1]}), as the judge stage writes it; "
            "re-run the judge stage (`dvc repro judge`)"
        )


class _InOrder:
    """A batch's generations grouped by problem (lists per column), looked up in uuid order without
    holding the batch's texts as Python strings: the groups are read as the lookups reach them."""

    def __init__(self, gens: pl.DataFrame | None, grouped: dict[str, dict] | None = None):
        self._grouped = grouped
        self._rows: Iterator[dict] = iter(())
        if gens is not None:
            self._rows = gens.group_by("uuid", maintain_order=True).agg(pl.all()).iter_rows(named=True, buffer_size=64)
        self._current = next(self._rows, None)

    def get(self, uuid: str) -> dict | None:
        """The group of `uuid`; each call's uuid is larger than the one before."""
        if self._grouped is not None:
            return self._grouped.get(uuid)
        while self._current is not None and self._current["uuid"] < uuid:
            self._current = next(self._rows, None)
        return self._current if self._current is not None and self._current["uuid"] == uuid else None

    def rest(self) -> Iterator[dict]:
        if self._current is not None:
            yield self._current
            yield from self._rows


# Rows of each row group of the row provenance file.
PROVENANCE_GROUP_ROWS = 16384


class _ProvenanceSpool:
    """The row provenance, written a batch at a time to one spool file per split, then the splits end
    to end (default first) in row groups of PROVENANCE_GROUP_ROWS, whatever the batches were."""

    def __init__(self, spool: Path):
        self.writers = {s: TableWriter(spool / f"provenance-{s}.parquet", ROW_PROVENANCE) for s in SPLITS}

    def add(self, rows: pl.DataFrame) -> None:
        for s in SPLITS:
            part = rows.filter(pl.col("split") == s)
            if part.height:
                self.writers[s].write(part)

    def write(self, out: Path) -> None:
        for w in self.writers.values():
            w.close()
        with TableWriter(out, ROW_PROVENANCE) as writer:
            pending: list[pl.DataFrame] = []
            held = 0
            for s in SPLITS:
                for batch in iter_table(self.writers[s].path, ROW_PROVENANCE, batch_rows=PROVENANCE_GROUP_ROWS):
                    pending.append(batch)
                    held += batch.height
                    while held >= PROVENANCE_GROUP_ROWS:
                        rows = pl.concat(pending)
                        writer.write(rows.slice(0, PROVENANCE_GROUP_ROWS))
                        pending, held = [rows.slice(PROVENANCE_GROUP_ROWS)], rows.height - PROVENANCE_GROUP_ROWS
            if held:
                writer.write(pl.concat(pending))


class _SplitWriters:
    """One parquet file per split, in DATASET_SCHEMA, written a batch of generations at a time (a row
    group) under a temporary name; on `commit` each appears at once (os.replace), on an error none is
    left behind. Rows become Arrow a few at a time, so their texts are not held twice."""

    ROWS_PER_CHUNK = 64

    def __init__(self, dataset_dir: Path):
        self.targets = {s: split_file(dataset_dir, s) for s in SPLITS}
        self.tmps = {s: t.with_name(t.name + ".tmp") for s, t in self.targets.items()}
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.rows: dict[str, list[dict]] = {s: [] for s in SPLITS}
        self.chunks: dict[str, list[pa.RecordBatch]] = {s: [] for s in SPLITS}
        try:
            for s, tmp in self.tmps.items():
                tmp.parent.mkdir(parents=True, exist_ok=True)
                self.writers[s] = pq.ParquetWriter(tmp, DATASET_SCHEMA, compression="zstd")
        except BaseException:
            self.abort()
            raise

    def add(self, split: str, row: dict) -> None:
        self.rows[split].append(row)
        if len(self.rows[split]) >= self.ROWS_PER_CHUNK:
            self._chunk(split)

    def _chunk(self, split: str) -> None:
        if self.rows[split]:
            self.chunks[split].append(pa.RecordBatch.from_pylist(self.rows[split], schema=DATASET_SCHEMA))
            self.rows[split] = []

    def flush(self) -> None:
        """The rows added since the last flush, written: one row group per split."""
        for split in SPLITS:
            self._chunk(split)
            if self.chunks[split]:
                self.writers[split].write_table(pa.Table.from_batches(self.chunks[split], schema=DATASET_SCHEMA))
                self.chunks[split] = []

    def commit(self) -> None:
        for w in self.writers.values():
            w.close()
        for s in SPLITS:
            os.replace(self.tmps[s], self.targets[s])

    def abort(self) -> None:
        for w in self.writers.values():
            w.close()
        for tmp in self.tmps.values():
            tmp.unlink(missing_ok=True)


def main(cfg: BuildConfig, seed: int, card_settings: dict[str, Any], paths: Paths) -> FilterCounts:
    """The command's entry (`distillery build`): the card's context from the files (the earlier
    stages' counts, the inputs' revision) and the rule's settings, then `run`."""
    context = {
        "stage_metrics": {p.stem: json.loads(p.read_text()) for p in paths.stage_metrics},
        "settings": card_settings,
        "revision": revision({"problems": paths.problems, "judged": paths.judged, "kept": paths.kept}),
    }
    return run(cfg, seed, context, paths)


def run(cfg: BuildConfig, seed: int, card_context: dict[str, Any], paths: Paths, *, batch_rows: int = 4096) -> FilterCounts:
    """The dataset from the judged generations, streamed a problem at a time in batches of about
    `batch_rows` generations. Memory holds one batch of generations and their problems, whatever
    the totals."""
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, not {batch_rows}")
    _check_columns(paths.judged, JUDGED, JUDGED.columns)  # the file as a whole: the checks read_table makes
    check_table(paths.kept, KEPT)
    check_table(paths.problems, PROBLEMS)
    paths.rejected.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-spool-", dir=paths.rejected.parent) as spool:
        return _build(cfg, seed, card_context, paths, batch_rows, Path(spool))


def _build(cfg: BuildConfig, seed: int, card_context: dict[str, Any], paths: Paths, batch_rows: int, spool: Path) -> FilterCounts:
    problems = KeptProblems(paths.problems, paths.kept, spool)
    provenance = _ProvenanceSpool(spool) if paths.provenance is not None else None
    settings = {**cfg.model_dump(mode="json"), "seed": seed}
    counts = FilterCounts()
    rows_by_split = dict.fromkeys(SPLITS, 0)
    by_source: dict[str, int] = {}
    rows_by_messages_round: dict[str, int] = {}
    generations_by_round: dict[str, int] = {}
    scored_count = 0  # reward_model: generations scored
    best: list[float] = []  # reward_model: the chosen generation's score, per row, in uuid order

    def handle(gens: pl.DataFrame | None) -> None:
        """The problems up to the last uuid of `gens` (all that are left when None), with their generations."""
        nonlocal scored_count
        part = problems.upto(None if gens is None else gens["uuid"][-1])
        if part.height == 0:
            return
        groups = _InOrder(None if gens is None else gens.select(GENERATION_COLUMNS))
        if cfg.choice == "reward_model":  # the scores of the part's correct generations, in one call
            grouped = {g["uuid"]: g for g in groups.rest()}
            part_scored = reward_scores(cfg, part, grouped) if grouped else {}
            groups = _InOrder(None, grouped)
        else:
            part_scored = {}
        scored_count += sum(len(v) for v in part_scored.values())
        index: list[tuple[str, str]] = []  # (split, uuid) of each row written, in order
        chosen: dict[str, int] = {}  # uuid -> sample_index of the assistant message
        for p in part.iter_rows(named=True):
            g = groups.get(p["uuid"])
            if g is None:
                counts.reject("no_generations", uuid=p["uuid"], detail="no generation rows for this problem")
                continue
            flags = [
                is_correct(mv, ll, c, cfg.selection)
                for mv, ll, c in zip(g["correctness_math_verify"], g["correctness_llama"], g["is_reasoning_complete"])
            ]
            if not any(flags):
                failed = sum(e is not None for e in g["error"])
                detail = f"{len(flags)} generations, {failed} failed requests, selection={cfg.selection}"
                counts.reject("no_correct_generation", uuid=p["uuid"], detail=detail)
                continue
            candidates = [(i, text) for i, (text, ok) in enumerate(zip(g["generation"], flags)) if ok]
            chosen_index, chosen_text = choose(candidates, cfg.choice, seed, p["uuid"], part_scored.get(p["uuid"]))
            chosen[p["uuid"]] = g["sample_index"][chosen_index]
            messages_round = round_label(g["round"][chosen_index])
            rows_by_messages_round[messages_round] = rows_by_messages_round.get(messages_round, 0) + 1
            for r in g["round"]:
                generations_by_round[round_label(r)] = generations_by_round.get(round_label(r), 0) + 1
            if part_scored:
                best.append(part_scored[p["uuid"]][_position(g, chosen[p["uuid"]])])
            judged_any = any(v != "not_judged" for v in g["judge_verdict"])
            split = "default" if p["source"] in cfg.splits.default_sources else "extended"
            writers.add(
                split,
                {
                    "problem": p["problem"],
                    "solution": p["solution"],
                    "answer": p["answer"],
                    "problem_type": p["problem_type"],
                    "question_type": p["question_type"],
                    "source": p["source"],
                    "uuid": p["uuid"],
                    "is_reasoning_complete": list(g["is_reasoning_complete"]),
                    "generations": [t if t is not None else "" for t in g["generation"]],
                    "correctness_math_verify": list(g["correctness_math_verify"]),
                    "correctness_llama": list(g["correctness_llama"]) if judged_any else None,
                    "finish_reasons": list(g["finish_reason"]),
                    "correctness_count": sum(flags),
                    "messages": [
                        {"content": p["problem"], "role": "user"},
                        {"content": chosen_text, "role": "assistant"},
                    ],
                },
            )
            index.append((split, p["uuid"]))
            rows_by_split[split] += 1
            by_source[p["source"]] = by_source.get(p["source"], 0) + 1
            counts.keep()
        writers.flush()
        if provenance is not None and index and gens is not None:
            rows = pl.DataFrame(index, schema={"split": pl.String, "uuid": pl.String}, orient="row")
            ids = gens.select(PROVENANCE_COLUMNS)
            kept = part.select(KEPT.columns)
            provenance.add(stamp(row_provenance(rows, part, ids, kept, chosen, part_scored, presorted=True), "build", settings))

    writers = _SplitWriters(paths.dataset_dir)
    try:
        for gens in _judged_in_order(paths.judged, list(dict.fromkeys(GENERATION_COLUMNS + PROVENANCE_COLUMNS)), batch_rows):
            handle(gens)
        handle(None)  # the kept problems after the last judged uuid: no generations
        counts.rows_in = problems.taken
        counts.check("build")
        if provenance is not None:
            provenance.write(paths.provenance)
    except BaseException:
        writers.abort()
        raise
    writers.commit()

    write_table(stamp(counts.rejected_rows(REJECTED_COLUMNS), "build", settings), paths.rejected, BUILD_REJECTED)
    report = {
        "counts": counts.as_dict(),
        "rows_by_split": rows_by_split,
        "rows_by_source": dict(sorted(by_source.items())),
        # Rounds of generation (generate.rounds): which round wrote each row's `messages`, and the
        # rounds of the generations the rows hold.
        "rows_by_messages_round": by_round(rows_by_messages_round),
        "generations_by_round": by_round(generations_by_round),
        "selection": cfg.selection,
        "choice": cfg.choice,
    }
    if scored_count:
        report["reward_model"] = {
            "model": cfg.reward_model.model,
            "transformers": library_version("transformers"),
            "generations_scored": scored_count,
            "mean_chosen_score": round(sum(best) / len(best), 6) if best else None,
        }
    write_metrics(paths.metrics, "build", **report)
    (paths.dataset_dir / "README.md").write_text(dataset_card(report, cfg, card_context, split_sizes(paths.dataset_dir)))
    return counts


def split_sizes(dataset_dir: Path) -> dict[str, dict[str, int]]:
    """Per split file, from its parquet footer (nothing read): rows, uncompressed bytes, bytes on disk."""
    out = {}
    for split in SPLITS:
        path = split_file(dataset_dir, split)
        meta = pq.read_metadata(path)
        out[split] = {
            "num_examples": meta.num_rows,
            "num_bytes": sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)),
            "download_size": path.stat().st_size,
        }
    return out


def card_metadata(sizes: dict[str, dict[str, int]]) -> str:
    """The card's YAML header: `configs` (default, extended, all) and `dataset_info` (features, the
    train split's rows and sizes per config), written by `datasets`/`huggingface_hub` as push_to_hub
    writes them. num_bytes is the parquet data's uncompressed size (the Hub's is Arrow's); `datasets`
    checks num_examples against the rows it reads."""
    from datasets import DatasetInfo, Features, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCardData

    features = Features.from_arrow_schema(DATASET_SCHEMA)
    infos = {}
    for name, splits in CONFIGS.items():
        total = {k: sum(sizes[s][k] for s in splits) for k in ("num_examples", "num_bytes", "download_size")}
        split_dict = SplitDict()
        split_dict.add(SplitInfo(name="train", num_bytes=total["num_bytes"], num_examples=total["num_examples"]))
        infos[name] = DatasetInfo(
            config_name=name,
            features=features,
            splits=split_dict,
            download_size=total["download_size"],
            dataset_size=total["num_bytes"],
        )
    configs = [
        {
            "config_name": name,
            "data_files": [
                {"split": "train", "path": [f"{s}/train-*.parquet" for s in splits] if len(splits) > 1 else f"{splits[0]}/train-*.parquet"}
            ],
        }
        for name, splits in CONFIGS.items()
    ]
    card_data = DatasetCardData(configs=configs)
    DatasetInfosDict(infos).to_dataset_card_data(card_data)
    return card_data.to_yaml()


def _position(g: dict[str, list], sample_index: int) -> int:
    return list(g["sample_index"]).index(sample_index)


def row_provenance(
    index: pl.DataFrame,
    problems: pl.DataFrame,
    gens: pl.DataFrame,
    kept: pl.DataFrame,
    chosen: dict[str, int],
    scored: dict[str, dict[int, float]] | None = None,
    *,
    presorted: bool = False,
) -> pl.DataFrame:
    """One row per dataset row (split, uuid): where the problem came from, the request keys of its
    generations and judge calls, which generation became `messages`, and each earlier stage's
    settings hash and code version. Ids and hashes only: the published schema stays OpenR1's.
    `gens` needs only PROVENANCE_COLUMNS (never the texts); `presorted`: it is sorted by uuid,
    sample_index already (a sort would copy it)."""

    by_problem = (
        (gens if presorted else gens.sort("uuid", "sample_index"))
        .group_by("uuid", maintain_order=True)
        .agg(
            *(pl.col(c).alias(f"{c}s") for c in PROVENANCE_PER_ROW),
            *(pl.col(c).drop_nulls().first() for c in PROVENANCE_CONSTANT),
        )
    )
    counts = gens.group_by("uuid").len()
    n_of = dict(zip(counts["uuid"], counts["len"]))
    scored = scored or {}
    messages_from = pl.DataFrame(
        {
            "uuid": list(chosen),
            "messages_sample_index": list(chosen.values()),
            # per generation of the problem: the reward model's score (correct ones only), when it chose
            "reward_scores": [[scored[u].get(i) for i in range(n_of[u])] if u in scored else None for u in chosen],
        },
        schema={"uuid": pl.String, "messages_sample_index": pl.Int64, "reward_scores": pl.List(pl.Float64)},
    )
    return (
        index.join(problems.select(PROBLEM_PROVENANCE), on="uuid", how="left")
        .join(by_problem, on="uuid", how="left")
        .join(messages_from, on="uuid", how="left")
        .join(kept, on="uuid", how="left")
    )


def revision(inputs: dict[str, Path]) -> dict[str, Any]:
    """What made this build: the code of each stage that shaped its rows (a hash of the modules it
    runs, never a git commit: a documentation commit changes no byte of the dataset), and the md5 of
    each input file, the hash DVC records for it in dvc.lock."""
    stages = ("sample", "generate", "verify", "judge", "dedupe", "build")
    return {"code": {s: code_version(s) for s in stages}, "inputs_md5": {name: file_md5(p) for name, p in inputs.items()}}


def _filters_table(stage_metrics: dict[str, Any]) -> str:
    lines = ["| stage | in | kept | rejected, by reason |", "| --- | --- | --- | --- |"]
    for stage, m in stage_metrics.items():
        c = m.get("counts") if isinstance(m, dict) else None
        if isinstance(c, dict) and "rows_in" in c:
            reasons = ", ".join(f"{k} {v}" for k, v in c.get("rejected_by_reason", {}).items()) or "none"
            lines.append(f"| {stage} | {c['rows_in']} | {c['kept']} | {reasons} |")
    return "\n".join(lines)


def _rounds_table(stage_metrics: dict[str, Any], report: dict) -> str:
    """Per round of generation: the problems sampled and requests made (generate), the problems it
    solved first (judge: a later round's are the problems it recovered), and the rows whose
    `messages` it wrote. From the last round's metrics, which count every round."""

    def last_round(stage: str) -> dict:  # its latest round's metrics, which count every round
        found = [
            (1 if k == stage else int(k.rpartition("_")[2]), k) for k in stage_metrics if k == stage or k.startswith(f"{stage}_round_")
        ]
        return stage_metrics[max(found)[1]] if found else {}

    generated, judged = last_round("generate"), last_round("judge")
    rounds = [r for r in generated.get("requests_by_round", {}) if r != "corpus"]
    if not rounds:
        return "Not recorded for this build."
    lines = [
        "Round 1 samples every problem; each later round (generate.rounds) only the problems its condition selected "
        "from the verdicts of the rounds before.",
        "",
        "| round | problems sampled | requests | problems first solved | rows whose messages it wrote |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rounds:
        solved = judged.get("problems_first_solved_in_round", {}).get(r, 0)
        lines.append(
            f"| {r} | {generated['problems_by_round'].get(r, 0)} | {generated['requests_by_round'][r]} | {solved} | "
            f"{report.get('rows_by_messages_round', {}).get(r, 0)} |"
        )
    return "\n".join(lines)


def _decontamination(stage_metrics: dict[str, Any]) -> str:
    d = stage_metrics.get("dedupe")
    if not isinstance(d, dict):
        return "Not recorded for this build."
    per = d.get("contaminated_by_benchmark", {})
    n, matching, coverage = d.get("ngram"), d.get("min_matching_ngrams", 1), d.get("min_item_coverage", 0.0)
    lines = [
        f"Against {', '.join(per) or 'no benchmark'}, judged per benchmark item. Tokens are lowercased runs of letters and "
        "numerals, with LaTeX and number respellings made one (\\dfrac is \\frac, 1,000 is 1000). A problem is a candidate "
        f"for an item when it shares at least {matching} of the item's token {n}-grams (shorter ones for short items; none "
        "that three or more items share)"
        + (
            f", and it is flagged when it also holds {coverage:.0%} of the item's token bigrams, weighted by their rarity among the items"
            if coverage
            else ", and every candidate is flagged"
        )
        + ". Every flagged problem is listed, with the item, the first shared n-gram and the share, in "
        "data/dedupe/contamination.parquet.",
        "",
        "| benchmark | problems removed |",
        "| --- | --- |",
    ]
    lines += [f"| {name} | {n} |" for name, n in per.items()]
    near = d.get("near_duplicates") or {}
    if near:
        lines += [
            "",
            f"Near duplicates (MinHash LSH over {near.get('shingle_size')}-token shingles, estimated Jaccard >= "
            f"{near.get('threshold')}; a shingle in more than {near.get('boilerplate_share')} of the rows (and 50) is "
            f"boilerplate and does not count; a text with fewer than {near.get('min_shingles')} other shingles is only "
            f"exact-deduped): {near.get('pairs')} pairs in {near.get('clusters')} clusters; pairs in "
            "data/dedupe/near_duplicates.parquet."
            + (
                f" Two problems whose gold answers differ are never merged: {near.get('pairs_with_different_answers', 0)} "
                "such pairs were kept apart (templated problems with other numbers)."
                if near.get("keep_different_answers")
                else " Gold answers were not compared (keep_different_answers: false): the texts alone decided."
                if "keep_different_answers" in near
                else ""
            ),
        ]
    return "\n".join(lines)


def _sources(settings: dict[str, Any]) -> str:
    """The published corpora mixed in (ingest, mix), with their licences: a dataset built from them
    is bound by every one of them."""
    corpora = settings.get("corpora") or {}
    if not corpora:
        return "Only the project's own generations (no published corpus was mixed in)."
    own = "and the project's own generations" if settings.get("own_generations") else "without the project's own generations"
    lines = [
        f"Published corpora mixed in (re-verified and judged here like the own generations), {own}. "
        "Each licence applies to the rows that come from its corpus:",
        "",
        "| corpus | layout | read from | revision | licence | problems cap |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, c in sorted(corpora.items()):
        where = c["path"] + (f" ({c['config']})" if c.get("config") else "")
        lines.append(f"| {name} | {c['layout']} | {where} | {c.get('revision') or 'unpinned'} | {c['licence']} | {c.get('cap') or 'all'} |")
    return "\n".join(lines)


def dataset_card(report: dict, cfg: BuildConfig, context: dict[str, Any], sizes: dict[str, dict[str, int]]) -> str:
    stage_metrics = context.get("stage_metrics", {})
    stage_counts = json.dumps(stage_metrics, indent=2, sort_keys=True)
    settings = json.dumps(context.get("settings", {}), indent=2, sort_keys=True)
    made_by = json.dumps(context.get("revision", {}), indent=2, sort_keys=True)
    return f"""---
{card_metadata(sizes)}
---
# Distilled math reasoning dataset

Built by distillery from the sampled problems' teacher generations,
verified with Math-Verify and re-checked by an LLM judge, in the OpenR1-Math-220k schema.

Load a config (default, extended or all) with:

```python
from datasets import load_dataset
ds = load_dataset("{{this directory}}", "all", split="train")
```

## Rows

| config | rows |
| --- | --- |
| default | {report["rows_by_split"]["default"]} |
| extended | {report["rows_by_split"]["extended"]} |
| all | {report["rows_by_split"]["default"] + report["rows_by_split"]["extended"]} |

`default` holds the sources {cfg.splits.default_sources}; `extended` every other source; `all`
both (its files are theirs, as OpenR1-Math-220k's `all` is the union of the other two).
A problem is kept when at least one complete generation is correct by `{cfg.selection}`;
`messages` holds one correct generation chosen by `{cfg.choice}`.

Rows per source: {json.dumps(report["rows_by_source"], sort_keys=True)}

## Rounds of generation

{_rounds_table(stage_metrics, report)}

## Sources and licences

{_sources(context.get("settings", {}))}

Build filter: {json.dumps(report["counts"], sort_keys=True)}

## Filters

Rows in = kept + rejected at every stage; each rejected row is kept, with its reason, in the
stage's `rejected.parquet`.

{_filters_table({**stage_metrics, "build": report})}

## Decontamination

{_decontamination(stage_metrics)}

## Counts per stage

```json
{stage_counts}
```

## Settings that made it

```json
{settings}
```

## Revision

```json
{made_by}
```
"""
