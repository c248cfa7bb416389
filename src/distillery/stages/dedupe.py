"""dedupe: decontamination against benchmark files, then exact and near-duplicate dedupe.

1. Decontamination, judged per benchmark item. Tokens are the lowercased runs of letters and digits
   after LaTeX spacing is dropped and LaTeX and number respellings are made one (\\dfrac is \\frac,
   1,000 is 1000), so case, spacing, punctuation and respelling do not hide a copy. A problem is a
   candidate for an item when it shares one of the item's retrieval n-grams (n tokens, shorter for
   short items, none that three or more items share); it is `contaminated` when it also holds
   `min_item_coverage` of the item's token bigrams, each weighted by how rare it is among the
   items. open-r1's rule (one shared word 8-gram) flags clean problems that end like a benchmark
   item ("... Express your answer as a common fraction."); benchmarks/decontamination.py measures
   both on the same rows.
2. Exact dedupe on normalized text (case, whitespace, LaTeX spacing): one representative per text.
3. Near-duplicate dedupe: MinHash over token shingles (rensa), LSH banding for candidates, each
   candidate pair confirmed by its estimated Jaccard similarity; clusters are the connected
   components of confirmed pairs, and every confirmed pair is written out for audit.

Decontamination runs first so the report lists every contaminated row, duplicates included. The
representative of a duplicate group is chosen by `keep`: the smallest uuid, or the problem with the
most correct generations (ties: smallest uuid). Every problem in comes out kept or rejected with a
reason and a detail.

Hashing is vectorized (polars + numpy); only the few n-grams that hash-match a benchmark are compared
as text. The problems are read in batches (PROBLEM_BATCH_ROWS) and never held all at once: what the
stage keeps per problem is its uuid, a 16-byte digest of its normalized text and its place in
representative order; shingles, MinHash signatures and band keys are spooled to disk per batch
(`NearDuplicates`), so memory does not grow with the texts.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from distillery.config.base import BenchmarkFile
from distillery.config.dedupe import STAGE, DedupeConfig, NearDedupeConfig
from distillery.errors import DistilleryError
from distillery.io import load_rows
from distillery.metrics import FilterCounts, write_metrics
from distillery.provenance import stamp
from distillery.tables import (
    CONTAMINATION,
    DEDUPE_REJECTED,
    JUDGED,
    KEPT,
    NEAR_DUPLICATES,
    PROBLEMS,
    TableWriter,
    UuidCursor,
    UuidOrder,
    iter_groups,
    iter_table,
    read_table,
    write_table,
)

log = logging.getLogger(__name__)

# The tables' own columns; stamp() adds the provenance ones (distillery.tables declares them all).
REJECTED_COLUMNS = {"uuid": pl.String, "reason": pl.String, "detail": pl.String}
CONTAMINATION_SCHEMA = {c: t for c, t in CONTAMINATION.schema.items() if c not in ("dedupe_params", "dedupe_code")}
NEAR_DUPLICATE_SCHEMA = {c: t for c, t in NEAR_DUPLICATES.schema.items() if c not in ("dedupe_params", "dedupe_code")}

# Same spacing rule as keys.normalize_text, in polars' (Rust) regex syntax.
_LATEX_SPACING = r"\\[,;:!]|\\ "
_TOKEN = r"[^\W_]+"
# Odd 64-bit multiplier for rolling n-gram hashes (wraps mod 2**64 by design).
_MIX = np.uint64(0x9E3779B97F4A7C15)
# A band bucket larger than this is compared against its first members only (templated problems
# can fill one bucket with thousands of rows; all pairs would be quadratic).
_MAX_BUCKET_PAIRS_WITH = 200
# Problems per batch when the stage reads the problems table (~10 MB of problem text, whatever the total).
PROBLEM_BATCH_ROWS = 8192
# Shingle hashes per partition when boilerplate is counted (8 MB of them, sorted in place; the rest
# wait on disk). Partitions of the most it takes keep the count's memory the same whatever the total.
PARTITION_HASHES = 1 << 19
# Rows MinHashed at once (rensa hands each signature back as Python ints: 2,048 rows are ~10 MB of them).
SIGNATURE_CHUNK_ROWS = 2048


def normalized(texts: pl.Expr) -> pl.Expr:
    """keys.normalize_text as a polars expression: drop LaTeX spacing, collapse whitespace, lowercase."""
    return texts.str.replace_all(_LATEX_SPACING, " ").str.replace_all(r"\s+", " ").str.strip_chars().str.to_lowercase()


# Spellings that change tokens but not the problem, each to one form (polars' regex syntax):
# LaTeX synonyms and sizing, and number formatting (1,000 and 1000; .5 and 0.5).
_RESPELLINGS = [
    (r"\\[dt](frac|binom)\b", r"\\$1"),
    (r"\\(left|right|displaystyle|bigl|bigr)\b", " "),
    (r"\\times\b", r"\\cdot"),
    (r"\\(le|ge)\b", r"\\${1}q"),
    (r"(\d),(\d{3})\b", "$1$2"),
    (r"(\d),(\d{3})\b", "$1$2"),  # twice: 1,000,000
    (r"(^|[^\d.])0\.(\d)", "$1.$2"),
]


def tokenize(texts: pl.Series) -> pl.Series:
    """Each text's tokens: lowercased runs of letters and digits, after LaTeX spacing is dropped and
    LaTeX and number respellings are made one (\\dfrac is \\frac, 1,000 is 1000)."""
    texts = texts.str.replace_all(_LATEX_SPACING, " ").str.to_lowercase()  # first: \\FRAC is \\frac too
    for pattern, replacement in _RESPELLINGS:
        texts = texts.str.replace_all(pattern, replacement)
    return texts.str.extract_all(_TOKEN).fill_null([])


def tokens(text: str) -> list[str]:
    return tokenize(pl.Series([text])).to_list()[0]


@dataclass
class TokenTable:
    """Every text's tokens laid end to end: tokens[offsets[i]:offsets[i+1]] belong to text i."""

    tokens: pl.Series | None  # None when only hashes are needed (near-dup)
    hashes: np.ndarray  # uint64 per token
    offsets: np.ndarray  # int64, len = texts + 1

    @classmethod
    def of(cls, texts: pl.Series, keep_tokens: bool = True) -> TokenTable:
        lists = tokenize(texts)
        lengths = lists.list.len().to_numpy().astype(np.int64)
        flat = lists.explode().drop_nulls()  # an empty list explodes to one null
        del lists
        hashes = flat.hash(seed=0).to_numpy().astype(np.uint64) if flat.len() else np.zeros(0, np.uint64)
        return cls(flat if keep_tokens else None, hashes, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def grams(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(start position, hash) of every token n-gram that lies inside one text."""
        return next(self.grams_by_length([n]))[1:]

    def grams_by_length(self, lengths: list[int]):
        """(m, start positions, hashes) of the token m-grams inside one text, for each m in lengths,
        from one rolling pass: the (m+1)-gram hash extends the m-gram hash by one token."""
        wanted = sorted(set(lengths))
        if not wanted:
            return
        text_end = np.repeat(self.offsets[1:], self.lengths)  # per token: where its text ends
        g = self.hashes.copy()
        for m in range(1, wanted[-1] + 1):
            if m > 1:
                g = g[:-1] * _MIX + self.hashes[m - 1 :]
            if m in wanted:
                starts = np.arange(len(g), dtype=np.int64)
                inside = starts + m <= text_end[: len(g)]
                yield m, starts[inside], g[inside]
            if len(g) <= 1:
                for rest in (w for w in wanted if w > m):
                    yield rest, np.zeros(0, np.int64), np.zeros(0, np.uint64)
                return

    def text_of(self, start: int, n: int) -> str:
        return " ".join(self.tokens.slice(start, n).to_list())

    def row_of(self, positions: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.offsets, positions, side="right") - 1


# --- decontamination -----------------------------------------------------------------------------


@dataclass
class BenchmarkIndex:
    """What decontamination looks for in each benchmark item.

    - Retrieval grams: the item's token k-grams, k = n for items of 3n tokens or more, shorter for
      shorter items (a third of their length, at least 3; the whole item below that), so a light
      edit cannot break every one of them. A gram found in `BOILERPLATE_ITEMS` items or more
      ("express your answer as") retrieves nothing on its own.
    - Bigram weights: each of the item's token bigrams, weighted by how rare it is among the items
      (inverse document frequency), so "your answer" and "common fraction" weigh little and the
      item's own mathematics weighs most."""

    n: int
    items: list[tuple[str, str, str]]  # (benchmark, item id, benchmark problem)
    grams: dict[int, dict[str, list[int]]]  # gram length -> {gram text -> items}
    hashes: dict[int, np.ndarray]  # gram length -> sorted unique hashes
    retrieval_grams: list[int]  # per item: how many distinct retrieval grams it has
    bigram_weights: list[dict[tuple[str, str], float]]

    @classmethod
    def build(cls, benchmarks: dict[str, BenchmarkFile], n: int) -> BenchmarkIndex:
        texts, items = [], []
        for name, bench in benchmarks.items():
            rows = load_rows(bench.path, bench.split, bench.revision, f"base.benchmarks.{name}.path")
            if not rows:
                raise DistilleryError(
                    f"benchmark {name} ({bench.path}) has no rows, so decontamination against it would check "
                    f"nothing; point base.benchmarks.{name}.path at the benchmark, or remove {name} from dedupe.benchmarks"
                )
            for i, row in enumerate(rows):
                text = row.get(bench.problem_field)
                if not isinstance(text, str):
                    raise DistilleryError(
                        f"benchmark {name} ({bench.path}) row {i} has no string field {bench.problem_field!r}; "
                        f"set base.benchmarks.{name}.problem_field to the field that holds the problem"
                    )
                texts.append(text)
                items.append((name, str(row.get(bench.id_field)) if bench.id_field else str(i), text))
        table = TokenTable.of(pl.Series(texts, dtype=pl.String))
        lengths = table.lengths.tolist()
        k_of = [retrieval_length(length, n) for length in lengths]
        found: dict[int, dict[str, set[int]]] = {}
        hashes: dict[int, dict[str, int]] = {}
        for k, starts, g in table.grams_by_length(sorted({k for k in k_of if k})):
            for s, h, r in zip(starts.tolist(), g.tolist(), table.row_of(starts).tolist()):
                if k_of[r] == k:
                    text = table.text_of(s, k)
                    found.setdefault(k, {}).setdefault(text, set()).add(r)
                    hashes.setdefault(k, {})[text] = h
        grams: dict[int, dict[str, list[int]]] = {}
        per_item = [0] * len(items)
        for k, by_text in found.items():
            for text, owners in by_text.items():
                if len(owners) < BOILERPLATE_ITEMS:
                    grams.setdefault(k, {})[text] = sorted(owners)
                    for r in owners:
                        per_item[r] += 1
        tokens = [table.tokens.slice(int(a), int(b - a)).to_list() for a, b in zip(table.offsets[:-1], table.offsets[1:])]
        bigrams = [set(zip(t, t[1:])) for t in tokens]
        df: dict[tuple[str, str], int] = {}
        for bs in bigrams:
            for b in bs:
                df[b] = df.get(b, 0) + 1
        weights = [{b: math.log(len(items) / df[b]) + 1e-6 for b in bs} for bs in bigrams]
        return cls(
            n,
            items,
            grams,
            {k: np.unique(np.array([hashes[k][t] for t in by_text], dtype=np.uint64)) for k, by_text in grams.items()},
            per_item,
            weights,
        )

    def coverage(self, item: int, problem_bigrams: set[tuple[str, str]]) -> float:
        """The weighted share of the item's bigrams that the problem holds (1.0 for a one-token item)."""
        weights = self.bigram_weights[item]
        total = sum(weights.values())
        return sum(w for b, w in weights.items() if b in problem_bigrams) / total if total else 1.0


# A retrieval gram found in this many benchmark items is boilerplate: it retrieves nothing.
BOILERPLATE_ITEMS = 3


def retrieval_length(tokens: int, n: int) -> int:
    """The k of an item's retrieval k-grams: n from 3n tokens up, a third of the length below that
    (at least 3), the whole item when it has 3 tokens or fewer; 0 for an item without tokens."""
    return min(n, max(3, tokens // 3)) if tokens > 3 else tokens


def contamination(
    problems: pl.DataFrame, index: BenchmarkIndex, min_matching: int = 1, min_coverage: float = 0.0, table: TokenTable | None = None
) -> pl.DataFrame:
    """One row per contaminated problem, with the benchmark item it matches best. A candidate shares
    a retrieval gram with an item; it is contaminated by the item when it holds at least
    `min_coverage` of the item's weighted bigrams (`item_coverage`) and at least `min_matching` of
    its retrieval grams (all, when the item has fewer). A shared closing sentence is a large share
    of nothing: its bigrams weigh little; a copy, edited or not, holds nearly all of the rest.
    `table`: the problems' tokens, when the caller has them already."""
    table = table if table is not None else TokenTable.of(problems["problem"])
    found: dict[int, dict[int, list]] = {}  # problem row -> item -> [matched grams, first position, first gram]
    for k, starts, g in table.grams_by_length(list(index.hashes)):
        bench_hashes = index.hashes[k]  # sorted, unique
        at = np.minimum(np.searchsorted(bench_hashes, g), len(bench_hashes) - 1)
        hit = starts[bench_hashes[at] == g]
        for s, r in zip(hit.tolist(), table.row_of(hit).tolist()):
            text = table.text_of(s, k)
            for item in index.grams[k].get(text, ()):  # none: a hash collision, not a match
                match = found.setdefault(r, {}).setdefault(item, [set(), s, text])
                match[0].add(text)
                if s < match[1]:
                    match[1], match[2] = s, text
    rows = []
    uuids, sources, texts = problems["uuid"].to_list(), problems["source"].to_list(), problems["problem"].to_list()
    for r in sorted(found):
        words = table.tokens.slice(int(table.offsets[r]), int(table.offsets[r + 1] - table.offsets[r])).to_list()
        bigrams = set(zip(words, words[1:]))
        flagged = []
        for item, (grams, first_at, first) in found[r].items():
            coverage = index.coverage(item, bigrams)
            if coverage >= min_coverage and len(grams) >= min(min_matching, index.retrieval_grams[item]):
                flagged.append((coverage, len(grams), -first_at, item, first))
        if not flagged:
            continue
        coverage, matching, _, item, first = max(flagged)
        bench, item_id, bench_text = index.items[item]
        rows.append(
            {
                "uuid": uuids[r],
                "source": sources[r],
                "benchmark": bench,
                "benchmark_item": item_id,
                "ngram": first,
                "matching_ngrams": matching,
                "item_coverage": round(coverage, 4),
                "problem": texts[r],
                "benchmark_problem": bench_text,
            }
        )
    return pl.DataFrame(rows, schema=CONTAMINATION_SCHEMA)


# --- exact and near-duplicate dedupe ------------------------------------------------------------


def text_digests(texts: pl.Series) -> np.ndarray:
    """A 16-byte digest of each normalized text (case, whitespace, LaTeX spacing), as two uint64 per
    text: exact dedupe groups problems by these instead of holding their texts."""
    norm = texts.fill_null("").to_frame("t").select(normalized(pl.col("t")))["t"].to_list()
    return np.frombuffer(b"".join(hashlib.blake2b(t.encode(), digest_size=16).digest() for t in norm), dtype=np.uint64).reshape(-1, 2)


# What a gold answer's spelling may change without changing the answer: $...$, \boxed{...}, spacing
# (LaTeX's too), \dfrac and \tfrac, \left and \right, a closing period. Nothing else: "1/2" and
# "\frac{1}{2}" stay two answers, so their problems are both kept (a kept duplicate costs a row; a
# merged pair of different problems loses one).
_ANSWER_RESPELLINGS = [
    (r"\\[,;:!]|\\ |\s+|\$", ""),
    (r"^\\boxed\{(.*)\}$", "$1"),
    (r"\\[dt]frac\b", "\\frac"),
    (r"\\(left|right)\b", ""),
    (r"\.$", ""),
]


def answer_keys(answers: pl.Series) -> np.ndarray:
    """A 64-bit key of each gold answer as its normalized string (_ANSWER_RESPELLINGS), 0 where none is
    given (null, or empty once normalized): equal keys, equal answers (but for a 2**-64 collision)."""
    texts = answers.cast(pl.String)
    for pattern, replacement in _ANSWER_RESPELLINGS:
        texts = texts.str.replace_all(pattern, replacement)
    keys = texts.hash(seed=0).to_numpy().astype(np.uint64)
    keys[keys == 0] = 1
    keys[(texts.is_null() | (texts == "")).fill_null(True).to_numpy()] = 0
    return keys


def exact_duplicates(digests: np.ndarray) -> np.ndarray:
    """For rows in representative order, given their text digests: the position of each row's
    representative, the first row with its digest (itself when it is the first)."""
    k = len(digests)
    if not k:
        return np.zeros(0, np.int64)
    by_text = np.lexsort((np.arange(k), digests[:, 1], digests[:, 0]))  # equal texts together, earliest first
    ordered = digests[by_text]
    starts = np.ones(k, dtype=bool)
    starts[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    first = by_text[np.maximum.accumulate(np.where(starts, np.arange(k), 0))]
    representative = np.empty(k, np.int64)
    representative[by_text] = first
    return representative


def shingle_hashes(table: TokenTable, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat shingle hashes and row offsets; a text shorter than k tokens is one shingle."""
    starts, g = table.grams(k)
    rows = table.row_of(starts)
    short = np.nonzero((table.lengths > 0) & (table.lengths < k))[0]
    if len(short):
        extra_rows, extra = [], []
        for r in short.tolist():
            a, b = int(table.offsets[r]), int(table.offsets[r + 1])
            sub = TokenTable(table.tokens, table.hashes[a:b], np.array([0, b - a]))
            extra_rows.append(r)
            extra.append(sub.grams(b - a)[1][0])
        rows = np.concatenate([rows, np.array(extra_rows, dtype=rows.dtype)])
        g = np.concatenate([g, np.array(extra, dtype=np.uint64)])
        order = np.argsort(rows, kind="stable")
        rows, g = rows[order], g[order]
    counts = np.bincount(rows, minlength=len(table.offsets) - 1)
    return g, np.concatenate([[0], np.cumsum(counts)]).astype(np.uint64)


def _subset(flat: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    starts, ends = offsets[rows].astype(np.int64), offsets[rows + 1].astype(np.int64)
    lengths = ends - starts
    idx = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths) + np.arange(lengths.sum())
    return flat[idx], np.concatenate([[0], np.cumsum(lengths)]).astype(np.uint64)


def _bucket_pairs(keys: np.ndarray) -> np.ndarray:
    """Pairs (i, j), i < j, of rows with equal band keys: in a bucket, every row with each of the
    bucket's first _MAX_BUCKET_PAIRS_WITH rows before it. Made for all buckets at once (a bucket is a
    run of the sorted keys; row t of its run pairs with the run's first min(t, cap) rows)."""
    order = np.argsort(keys, kind="stable")  # stable: each bucket's rows ascending
    sorted_keys = keys[order]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = sorted_keys[1:] != sorted_keys[:-1]
    run_start = np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))
    heads = np.minimum(np.arange(len(order)) - run_start, _MAX_BUCKET_PAIRS_WITH)  # pairs of each row with rows before it
    total = int(heads.sum())
    if not total:
        return np.zeros((0, 2), np.int64)
    second = np.repeat(np.arange(len(order)), heads)
    first = np.repeat(run_start, heads) + (np.arange(total) - np.repeat(np.cumsum(heads) - heads, heads))
    return np.stack([order[first], order[second]], axis=1).astype(np.int64)


# A shingle found more often than boilerplate_share of the rows (and than this) is a closing such as
# "express your answer as a common fraction", which unrelated problems share and near duplicates do
# not need. On small inputs a shingle in a handful of rows is a coincidence, not boilerplate.
BOILERPLATE_MIN_ROWS = 50


EMPTY_PAIRS = {"a": pl.Int64, "b": pl.Int64, "similarity": pl.Float64}


def _found_more_than(hashes: np.ndarray, over: float) -> np.ndarray:
    """The values found more than `over` times in `hashes`, sorted (`hashes` is sorted in place).
    Sorted, a value found k times or more is one equal to the value k - 1 places on: no counts are
    made, so the memory is the hashes' own and a flag each."""
    hashes.sort()
    k = math.floor(over) + 1
    if len(hashes) < k:
        return np.zeros(0, hashes.dtype)
    return np.unique(hashes[k - 1 :][hashes[k - 1 :] == hashes[: len(hashes) - k + 1]])


# Band rows read at a time from a band's spool file (4 values of 4 bytes each by default: 1 MB).
BAND_BLOCK_ROWS = 65536


def _band_hashes(path: Path, m: int, r: int) -> np.ndarray:
    """A 32-bit hash of each of the m spooled rows' band of r values, read a block at a time. Rows
    whose hashes collide without equal bands only cost a look: buckets are made of the exact bands."""
    hashed = np.empty(m, np.uint32)
    with path.open("rb") as f:
        for lo in range(0, m, BAND_BLOCK_ROWS):
            block = np.fromfile(f, dtype=np.uint32, count=min(BAND_BLOCK_ROWS, m - lo) * r).reshape(-1, r)
            h = block[:, 0].astype(np.uint64)
            for j in range(1, r):
                h = h * _MIX + block[:, j]
            hashed[lo : lo + len(block)] = h >> np.uint64(32)  # the high bits: the best mixed
    return hashed


def _sharing_rows(hashed: np.ndarray) -> np.ndarray:
    """The rows, ascending, whose hash another row shares (looked up a block of rows at a time)."""
    ordered = np.sort(hashed)
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    del ordered
    if not len(repeated):
        return np.zeros(0, np.int64)
    found = [np.zeros(0, np.int64)]
    for lo in range(0, len(hashed), BAND_BLOCK_ROWS):
        block = hashed[lo : lo + BAND_BLOCK_ROWS]
        at = np.minimum(np.searchsorted(repeated, block), len(repeated) - 1)
        found.append(lo + np.nonzero(repeated[at] == block)[0])
    return np.concatenate(found)


def _band_rows(path: Path, m: int, r: int, rows: np.ndarray) -> np.ndarray:
    """The bands of `rows` (ascending), read a block at a time."""
    out = np.empty((len(rows), r), np.uint32)
    with path.open("rb") as f:
        for lo in range(0, m, BAND_BLOCK_ROWS):
            a, b = np.searchsorted(rows, [lo, lo + BAND_BLOCK_ROWS])
            block = np.fromfile(f, dtype=np.uint32, count=min(BAND_BLOCK_ROWS, m - lo) * r).reshape(-1, r)
            out[a:b] = block[rows[a:b] - lo]
    return out


# Candidate pairs confirmed at a time: the signatures of their rows alone are read (8,192 pairs: at
# most 16,384 signatures, 8 MB at 128 permutations).
CONFIRM_PAIRS = 8192


def _similarities(signatures: Path, num_perm: int, pairs: np.ndarray) -> np.ndarray:
    """Each pair's estimated Jaccard, the share of equal MinHash values, a chunk of pairs at a time;
    each row's signature is read from the spool where it lies."""
    similarity = np.empty(len(pairs))
    row_bytes = num_perm * 4
    with signatures.open("rb") as f:
        for lo in range(0, len(pairs), CONFIRM_PAIRS):
            chunk = pairs[lo : lo + CONFIRM_PAIRS]
            rows, local = np.unique(chunk, return_inverse=True)
            local = local.reshape(chunk.shape)
            sig = np.empty((len(rows), num_perm), np.uint32)
            for i, row in enumerate(rows.tolist()):
                f.seek(row * row_bytes)
                f.readinto(sig[i])
            similarity[lo : lo + len(chunk)] = (sig[local[:, 0]] == sig[local[:, 1]]).mean(axis=1)
    return similarity


class NearDuplicates:
    """Near-duplicate pairs among rows that come in batches, without holding more than a batch of
    them: `add` spools each batch's shingle hashes to disk; `pairs` then
    1. counts every shingle among the rows still in, a hash partition at a time (PARTITION_HASHES),
       to find the boilerplate ones (BOILERPLATE_MIN_ROWS);
    2. MinHashes the rows with enough other shingles (rensa), batch by batch, spooling the
       signatures and each band's slice of them;
    3. buckets the rows band by band (what it holds per row is the band's 32-bit hash and a sort of
       it, read a block at a time), and confirms each candidate pair by the estimated Jaccard of the
       two signatures, read back from disk."""

    def __init__(self, cfg: NearDedupeConfig, seed: int, spool: Path):
        self.cfg, self.seed, self.spool = cfg, seed, spool
        self.batches: list[tuple[Path, int]] = []  # (spooled shingles, first row)
        self.rows = 0
        self.shingles = 0

    def add(self, table: TokenTable) -> None:
        """The next rows (row numbers continue from the last batch's)."""
        flat, offsets = shingle_hashes(table, self.cfg.shingle_size)
        path = self.spool / f"shingles-{len(self.batches)}.npz"
        np.savez(path, flat=flat, offsets=offsets)
        self.batches.append((path, self.rows))
        self.rows += len(offsets) - 1
        self.shingles += len(flat)

    def _rows_in(self, position: np.ndarray):
        """Each batch's rows that are still in: (flat shingles, offsets, their positions)."""
        for path, first in self.batches:
            with np.load(path) as spooled:
                flat, offsets = spooled["flat"], spooled["offsets"]
            positions = position[first : first + len(offsets) - 1]
            inside = np.nonzero(positions >= 0)[0]
            if len(inside):
                yield (*_subset(flat, offsets, inside), positions[inside])

    def _boilerplate(self, position: np.ndarray, over: float) -> np.ndarray:
        """The shingles found more than `over` times among the rows still in, sorted; counted exactly,
        one hash partition at a time."""
        parts = max(1, -(-self.shingles // PARTITION_HASHES))
        files = [(self.spool / f"count-{p}.u64").open("wb") for p in range(parts)]
        for flat, _, _ in self._rows_in(position):
            part = flat % np.uint64(parts)
            for p, f in enumerate(files):
                flat[part == p].tofile(f)
        found = [np.zeros(0, np.uint64)]
        for f in files:
            f.close()
            found.append(_found_more_than(np.fromfile(f.name, dtype=np.uint64), over))
            Path(f.name).unlink()
        return np.sort(np.concatenate(found))

    def pairs(self, position: np.ndarray) -> pl.DataFrame:
        """Confirmed pairs (a, b, estimated Jaccard >= threshold), a < b, by position: position[row] is
        the row's place in representative order, -1 for a row no longer in (contaminated, an exact
        duplicate). A bucket's first rows in that order are the ones it is compared against."""
        from rensa import RMinHash

        cfg = self.cfg
        boilerplate = self._boilerplate(position, max(BOILERPLATE_MIN_ROWS, cfg.boilerplate_share * int((position >= 0).sum())))
        r = cfg.num_perm // cfg.bands
        signatures = self.spool / "signatures.u32"
        bands = [self.spool / f"band-{b}.u32" for b in range(cfg.bands)]
        band_files = [b.open("wb") for b in bands]
        eligible = [np.zeros(0, np.int64)]
        with signatures.open("wb") as signature_file:
            for flat, offsets, positions in self._rows_in(position):
                keep = ~np.isin(flat, boilerplate)
                owner = np.repeat(np.arange(len(positions)), np.diff(offsets.astype(np.int64)))
                counts = np.bincount(owner[keep], minlength=len(positions))
                # Too few distinctive shingles is too little to compare: two 4-word texts share most of theirs by chance.
                ok = np.nonzero(counts >= cfg.min_shingles)[0]
                if not len(ok):
                    continue
                kept_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.uint64)
                kept_flat = flat[keep]
                for chunk in np.array_split(ok, -(-len(ok) // SIGNATURE_CHUNK_ROWS)):  # rensa's rows are Python ints: a few at a time
                    sub_flat, sub_offsets = _subset(kept_flat, kept_offsets, chunk)
                    digests = RMinHash.digest_matrix_from_flat_token_hashes(sub_flat, sub_offsets, cfg.num_perm, self.seed)
                    sig = np.array(digests.to_rows(), dtype=np.uint32)
                    sig.tofile(signature_file)
                    for b, f in enumerate(band_files):
                        np.ascontiguousarray(sig[:, b * r : (b + 1) * r]).tofile(f)
                eligible.append(positions[ok].astype(np.int64))
        for f in band_files:
            f.close()
        spooled_positions = np.concatenate(eligible)
        m = len(spooled_positions)
        if m < 2:
            return pl.DataFrame(schema=EMPTY_PAIRS)
        # Each pair (i, j) of spooled rows, i before j in representative order, as one 64-bit id
        # i * m + j: a band's pairs are sorted into a run of ids on disk, and the runs are merged a
        # block at a time, so each candidate pair is confirmed once, whatever the bands it shares.
        runs = []
        for band_path in bands:
            # First the rows whose band's 32-bit hash another row shares (a sort of integers: fast),
            # then the buckets of their exact bands (a sort of bytes: slow, so on those rows only).
            shared = _sharing_rows(_band_hashes(band_path, m, r))
            if len(shared) < 2:
                band_path.unlink()
                continue
            sub = _band_rows(band_path, m, r, shared)
            band_path.unlink()
            in_order = np.argsort(spooled_positions[shared], kind="stable")  # representative order: the bucket's first rows keep
            shared, sub = shared[in_order], np.ascontiguousarray(sub[in_order])
            keys = np.unique(sub.view(np.dtype((np.void, sub.dtype.itemsize * r))).ravel(), return_inverse=True)[1]
            del sub
            found = shared[_bucket_pairs(keys.ravel())].astype(np.uint64)
            run = band_path.with_suffix(".pairs")
            np.unique(found[:, 0] * np.uint64(m) + found[:, 1]).tofile(run)  # pairs in a bucket of a band: distinct already
            runs.append(run)
            del shared, keys, found
        a, b, similarity = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
        for ids in _merged_unique(runs, PAIR_RUN_BLOCK):
            pairs = np.stack([ids // np.uint64(m), ids % np.uint64(m)], axis=1).astype(np.int64)
            estimated = _similarities(signatures, cfg.num_perm, pairs)
            confirmed = estimated >= cfg.threshold
            a.append(spooled_positions[pairs[confirmed, 0]].astype(np.int64))
            b.append(spooled_positions[pairs[confirmed, 1]].astype(np.int64))
            similarity.append(estimated[confirmed].astype(np.float64))
        for run in runs:
            run.unlink()
        return pl.DataFrame({"a": np.concatenate(a), "b": np.concatenate(b), "similarity": np.concatenate(similarity)}).sort("a", "b")


# Pair ids read at a time from each band's run when the runs are merged (32 bands: 16 MB at most).
PAIR_RUN_BLOCK = 1 << 16


def _merged_unique(runs: list[Path], block: int) -> Iterator[np.ndarray]:
    """The distinct values of sorted runs of distinct uint64 (files), ascending, a piece at a time:
    `block` values are read from each run, and every value up to the least of the runs' last values
    read is complete (a run's later values are larger), so that much is merged and handed out."""
    files = [path.open("rb") for path in runs]
    try:
        buffers = [np.fromfile(f, dtype=np.uint64, count=block) for f in files]
        while any(len(buf) for buf in buffers):
            cut = min(buf[-1] for buf in buffers if len(buf))
            taken = []
            for k, buf in enumerate(buffers):
                if not len(buf):
                    continue
                upto = int(np.searchsorted(buf, cut, side="right"))
                taken.append(buf[:upto])
                buffers[k] = buf[upto:] if upto < len(buf) else np.fromfile(files[k], dtype=np.uint64, count=block)
            yield np.unique(np.concatenate(taken))
    finally:
        for f in files:
            f.close()


def near_duplicate_pairs(texts: pl.Series, cfg: NearDedupeConfig, seed: int) -> pl.DataFrame:
    """Confirmed pairs (a, b, estimated Jaccard >= threshold) among the texts, by row index."""
    with tempfile.TemporaryDirectory(prefix="near-dedupe-") as spool:
        finder = NearDuplicates(cfg, seed, Path(spool))
        finder.add(TokenTable.of(texts, keep_tokens=False))
        return finder.pairs(np.arange(texts.len()))


def clusters(n: int, pairs: pl.DataFrame, answers: np.ndarray | None = None) -> np.ndarray:
    """Connected components of the pair graph: each row's component root, the lowest row index.

    `answers`: each row's gold-answer key (0: none given). Two rows with different given answers are
    never put in one component, not even through rows without an answer: a component whose rows
    hold two answers is made again from its pairs one at a time (lowest pairs first), and a pair
    that would join two answers is left out."""
    a, b = pairs["a"].to_numpy(), pairs["b"].to_numpy()
    root = _components(n, a, b)
    if answers is None or not len(a):
        return root
    given = answers != 0
    lowest, highest = np.full(n, np.iinfo(np.uint64).max, np.uint64), np.zeros(n, np.uint64)
    np.minimum.at(lowest, root[given], answers[given])
    np.maximum.at(highest, root[given], answers[given])
    mixed = np.nonzero((highest > 0) & (lowest != highest))[0]  # roots of components with two answers
    if not len(mixed):
        return root
    redo = np.isin(root[a], mixed)
    rows = np.nonzero(np.isin(root, mixed))[0]
    parent = {int(r): int(r) for r in rows}
    answer = {int(r): int(answers[r]) for r in rows}  # a component's answer, at its root (0: none yet)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for x, y in zip(a[redo].tolist(), b[redo].tolist()):
        rx, ry = find(x), find(y)
        if rx == ry or (answer[rx] and answer[ry] and answer[rx] != answer[ry]):
            continue
        low, high = min(rx, ry), max(rx, ry)
        parent[high] = low
        answer[low] = answer[low] or answer[high]
    root = root.copy()
    root[rows] = [find(int(r)) for r in rows]
    return root


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Each row's lowest connected row, over edges (a, b): every edge hooks the higher of its two
    roots to the lower, then the roots are followed to their ends, until no edge joins two roots
    (a handful of rounds: each at least halves the roots an edge can still join)."""
    parent = np.arange(n)
    while True:
        ra, rb = parent[a], parent[b]
        joins = ra != rb
        if not joins.any():
            return parent
        np.minimum.at(parent, np.maximum(ra, rb)[joins], np.minimum(ra, rb)[joins])
        while True:  # every row's parent is at or below it: follow the parents to their roots
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand


# --- the stage ------------------------------------------------------------------------------------


Paths = STAGE.paths_record()  # its files, by the names its declaration gives them


# Rows of the merged uuid order per block (a uuid and a number each: under 1 MB; 65,536 grew the merge's
# memory with the number of runs, measured).
UUID_MERGE_ROWS = 8192
CORRECT_COLUMNS = ["uuid", "correctness_math_verify", "correctness_llama"]


class _CorrectCounts:
    """Each problem's correct generations (math-verify or the judge), from the judged table in uuid
    order, for the uuids of blocks that come in uuid order too (a merge join)."""

    def __init__(self, judged: Path, spool: Path):
        if not _sorted_by_uuid(judged):  # a table made by hand: its three short columns, sorted, once
            copy = spool / "judged-sorted.parquet"
            read_table(judged, JUDGED, CORRECT_COLUMNS).sort("uuid").write_parquet(copy)
            judged = copy
        correct = pl.col("correctness_math_verify").fill_null(False) | pl.col("correctness_llama").fill_null(False)
        counted = (
            batch.group_by("uuid", maintain_order=True).agg(correct.sum().cast(pl.UInt32).alias("n_correct"))
            for batch in iter_groups(iter_table(judged, JUDGED, CORRECT_COLUMNS), "uuid", str(judged))
        )
        self._counts = UuidCursor(counted, {"uuid": pl.String, "n_correct": pl.UInt32})

    def of(self, uuids: pl.Series) -> np.ndarray:
        """The counts for `uuids` (sorted; each after the last call's), 0 for a uuid without generations."""
        found = self._counts.upto(uuids[-1])
        joined = uuids.to_frame("uuid").join(found, on="uuid", how="left", maintain_order="left")
        return joined["n_correct"].fill_null(0).to_numpy().astype(np.int64)


def _sorted_by_uuid(path: Path) -> bool:
    last = None
    for batch in iter_table(path, JUDGED, ["uuid"], UUID_MERGE_ROWS):
        uuids = batch["uuid"].drop_nulls()
        if uuids.len() and (not uuids.is_sorted() or (last is not None and uuids[0] < last)):
            return False
        last = uuids[-1] if uuids.len() else last
    return True


def _return_freed_memory() -> None:
    """glibc keeps freed heap for reuse; give it back to the system (malloc_trim), where there is glibc.
    Measured: dedupe's peak at 400,000 problems 345 -> 319 MB, at 100,000 279 -> 267 MB."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to give back this way
        pass


# Spool files open at once in `_in_order` (one per group of chunks; its file handles and writers).
IN_ORDER_SPOOLS = 256


def _in_order(path: Path, columns: list[str], rows: np.ndarray, chunk: int, spool: Path) -> Iterator[pl.DataFrame]:
    """The problems table's `columns` at file rows `rows` (any order, repeats allowed), `chunk` rows
    at a time in that order, from one pass over the table: each batch's wanted rows go to the spool
    file of the chunks they belong to (Arrow IPC; at most IN_ORDER_SPOOLS files, so a file holds
    several chunks past IN_ORDER_SPOOLS chunks), and each file is read back and put in order alone.
    Memory: a batch and a spool file's rows, not the rows' whole text."""
    import pyarrow as pa

    if not len(rows):
        return
    chunks = -(-len(rows) // chunk)
    per_spool = -(-chunks // IN_ORDER_SPOOLS) * chunk  # rows of `rows` per spool file
    by_row = np.argsort(rows, kind="stable")
    sorted_rows = rows[by_row]
    paths = [spool / f"in-order-{k}.arrow" for k in range(-(-len(rows) // per_spool))]
    writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}
    try:
        start = 0
        for batch in iter_table(path, PROBLEMS, columns, PROBLEM_BATCH_ROWS):
            lo, hi = np.searchsorted(sorted_rows, [start, start + batch.height])
            if lo < hi:
                places = by_row[lo:hi]  # where in `rows` these batch rows are wanted
                grouped = np.argsort(places // per_spool, kind="stable")
                places, at = places[grouped], sorted_rows[lo:hi][grouped] - start
                found = batch[at].with_columns(pl.Series("_place", places))
                bounds = np.flatnonzero(np.diff(places // per_spool)) + 1
                for piece in np.split(np.arange(len(places)), bounds):
                    k = int(places[piece[0]] // per_spool)
                    # Arrow's plain strings: a copy of these rows' text alone (polars' string views
                    # would keep the whole batch's buffers alive).
                    table = found[piece].to_arrow(compat_level=pl.CompatLevel.oldest())
                    if k not in writers:
                        writers[k] = pa.ipc.new_stream(paths[k], table.schema)
                    writers[k].write_table(table)
            start += batch.height
    finally:
        for writer in writers.values():
            writer.close()
    for k, spooled in enumerate(paths):
        with pa.ipc.open_stream(spooled) as reader:
            found = pl.from_arrow(reader.read_all()).sort("_place").drop("_place")
        spooled.unlink()
        if found.height != min(per_spool, len(rows) - k * per_spool):
            raise DistilleryError(f"bug: rows {rows[k * per_spool : (k + 1) * per_spool][:5].tolist()}... are not all in {path}")
        for lo in range(0, found.height, chunk):
            yield found.slice(lo, chunk)


# Rejected rows written at a time: their uuids and those of the rows they refer to are read back for
# them alone (two 64-character uuids and a detail each: a few MB at 16,384, whatever the total).
REJECTED_CHUNK_ROWS = 16384


@dataclass
class Rejection:
    """Rows rejected for one reason, each referring to another row (the one kept in its place):
    detail = prefix + the referred row's uuid, and for a near duplicate paired with it directly,
    their estimated Jaccard similarity (NaN: through other near duplicates)."""

    reason: str
    rows: np.ndarray
    referred: np.ndarray
    prefix: str
    similarity: np.ndarray | None = None

    def frames(self, problems: Path, spool: Path) -> Iterator[pl.DataFrame]:
        """(uuid, detail) of the rows, REJECTED_CHUNK_ROWS at a time; the uuids of each row and of the
        row it refers to are read in one pass over the table (`_in_order`)."""
        both = np.column_stack([self.rows, self.referred]).ravel()  # row, referred, row, referred, ...
        for k, found in enumerate(_in_order(problems, ["uuid"], both, 2 * REJECTED_CHUNK_ROWS, spool)):
            lo = k * REJECTED_CHUNK_ROWS
            uuids = found["uuid"]
            detail = [pl.lit(self.prefix), uuids.gather_every(2, offset=1)]
            if self.similarity is not None:
                similarity = self.similarity[lo : lo + REJECTED_CHUNK_ROWS].tolist()
                detail.append(
                    pl.Series(
                        [
                            " (through other near-duplicates of it)" if math.isnan(s) else f" (estimated Jaccard {s:.3f})"
                            for s in similarity
                        ],
                        dtype=pl.String,
                    )
                )
            yield pl.DataFrame({"uuid": uuids.gather_every(2)}).select("uuid", pl.concat_str(detail).alias("detail"))


def _uuid_ranks(by_uuid: UuidOrder, rows: np.ndarray) -> np.ndarray:
    """Each of `rows`' place in uuid order, from the merged uuid order read a block at a time."""
    wanted = np.unique(rows)
    rank, done = np.zeros(len(wanted), np.int64), 0
    for block in by_uuid.blocks():
        in_block = block["sample_index"].to_numpy()
        hit = np.nonzero(np.isin(in_block, wanted))[0]
        rank[np.searchsorted(wanted, in_block[hit])] = done + hit
        done += len(in_block)
    return rank[np.searchsorted(wanted, rows)]


# Digest rows per partition when exact duplicates are grouped (~6 MB of work, whatever the total).
EXACT_PARTITION_ROWS = 1 << 16


def _exact_duplicates_spooled(digests: Path, position: np.ndarray, spool: Path) -> tuple[np.ndarray, np.ndarray]:
    """exact_duplicates for the rows still in, from their digests spooled in file-row order: each
    row's (digest, position) goes to a partition by digest, and each partition is grouped alone.
    Returns the positions of the duplicates, ascending, and of their representatives."""
    n, still_in = len(position), int((position >= 0).sum())
    parts = max(1, -(-still_in // EXACT_PARTITION_ROWS))
    files = [(spool / f"exact-{p}.u64").open("wb") for p in range(parts)]
    with digests.open("rb") as f:
        for lo in range(0, n, PROBLEM_BATCH_ROWS):
            block = np.fromfile(f, dtype=np.uint64, count=min(PROBLEM_BATCH_ROWS, n - lo) * 2).reshape(-1, 2)
            at = position[lo : lo + len(block)]
            records = np.column_stack([block, at.astype(np.uint64)])[at >= 0]  # (digest high, low, position)
            part = records[:, 0] % np.uint64(parts)
            for p, out in enumerate(files):
                records[part == p].tofile(out)
    duplicates, representatives = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for out in files:
        out.close()
        records = np.fromfile(out.name, dtype=np.uint64).reshape(-1, 3)
        Path(out.name).unlink()
        records = records[np.argsort(records[:, 2])]  # representative order within the partition
        representative = exact_duplicates(records[:, :2])
        dup = representative != np.arange(len(records))
        duplicates.append(records[dup, 2].astype(np.int64))
        representatives.append(records[representative[dup], 2].astype(np.int64))
    duplicates, representatives = np.concatenate(duplicates), np.concatenate(representatives)
    order = np.argsort(duplicates)
    return duplicates[order], representatives[order]


def main(cfg: DedupeConfig, seed: int, benchmark_files: dict[str, BenchmarkFile], paths: Paths) -> FilterCounts:
    """The command's call (distillery.declaration: `extras`, then the paths): `run` with the
    benchmarks the section names, of the files the rule passes."""
    return run(cfg, {k: v for k, v in benchmark_files.items() if k in cfg.benchmarks}, paths, seed=seed)


def run(cfg: DedupeConfig, benchmarks: dict[str, BenchmarkFile], paths: Paths, seed: int = 0) -> FilterCounts:
    index = BenchmarkIndex.build(benchmarks, cfg.ngram) if cfg.decontaminate and benchmarks else None
    paths.kept.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".dedupe-spool-", dir=paths.kept.parent) as spool:
        return _dedupe(cfg, benchmarks, paths, seed, index, Path(spool))


# Near-duplicate pairs written at a time: their texts are read back for them alone (two problems
# each: ~7 MB of text at 8,192 pairs, whatever the total).
PAIR_TEXT_ROWS = 2048


def _write_near_pairs(pairs: pl.DataFrame, by_uuid: UuidOrder, problems: Path, out: Path, settings: dict, spool: Path) -> None:
    """The audit table of the near-duplicate pairs (file rows a and b, similarity): most similar
    first, then by the two uuids, each pair with its uuids and texts, read in one pass over the
    table and written PAIR_TEXT_ROWS pairs at a time (`_in_order`). The uuid order is the rows' ranks
    in the merged uuid order: numbers, not the uuids."""
    a, b, similarity = pairs["a"].to_numpy(), pairs["b"].to_numpy(), pairs["similarity"].to_numpy()
    ranks = _uuid_ranks(by_uuid, np.concatenate([a, b]))
    order = np.lexsort((ranks[len(a) :], ranks[: len(a)], -similarity))
    a, b, similarity = a[order], b[order], similarity[order]
    both = np.column_stack([a, b]).ravel()  # a, b, a, b, ...
    with TableWriter(out, NEAR_DUPLICATES) as writer:
        for k, found in enumerate(_in_order(problems, ["uuid", "problem"], both, 2 * PAIR_TEXT_ROWS, spool)):
            first, second = found.gather_every(2), found.gather_every(2, offset=1)
            frame = pl.DataFrame(
                {
                    "uuid_a": first["uuid"],
                    "uuid_b": second["uuid"],
                    "similarity": similarity[k * PAIR_TEXT_ROWS : (k + 1) * PAIR_TEXT_ROWS],
                    "problem_a": first["problem"],
                    "problem_b": second["problem"],
                }
            )
            writer.write(stamp(frame.cast(NEAR_DUPLICATE_SCHEMA), "dedupe", settings))


def _dedupe(
    cfg: DedupeConfig, benchmarks: dict[str, BenchmarkFile], paths: Paths, seed: int, index: BenchmarkIndex | None, spool: Path
) -> FilterCounts:
    """The stage on arrays indexed by the problems' file rows: what it holds per problem is a few
    numbers (its place in representative order, a flag), never its uuid, text or digest."""
    finder = NearDuplicates(cfg.near, seed, spool) if cfg.near.enabled else None
    by_uuid = UuidOrder(spool, UUID_MERGE_ROWS)
    digests = spool / "digests.u64"  # two uint64 per problem, in file-row order
    # Gold answers: only near dedupe looks at them (exact duplicates are one problem whatever their
    # golds say, and a benchmark copy is a copy whatever its gold).
    by_answer = finder is not None and cfg.near.keep_different_answers
    answers = spool / "answers.u64"  # a key of each problem's normalized gold answer (0: none), in file-row order
    columns = ["uuid", "problem", "source"] + (["answer"] if by_answer else [])
    contaminated_rows, contaminated = [np.zeros(0, np.int64)], [pl.DataFrame(schema=CONTAMINATION_SCHEMA)]
    # One pass over the problems, a batch at a time: what each later step needs of them.
    with digests.open("wb") as digest_file, answers.open("wb") as answer_file:
        for batch in iter_table(paths.problems, PROBLEMS, columns, PROBLEM_BATCH_ROWS):
            table = TokenTable.of(batch["problem"], keep_tokens=index is not None)
            if index is not None:
                found = contamination(batch, index, cfg.min_matching_ngrams, cfg.min_item_coverage, table=table)
                contaminated.append(found)
                hit = batch["uuid"].is_in(found["uuid"].implode()).to_numpy()
                contaminated_rows.append(by_uuid.rows + np.nonzero(hit)[0])
            if cfg.exact:
                text_digests(batch["problem"]).tofile(digest_file)
            if finder is not None:
                finder.add(table)
            if by_answer:
                answer_keys(batch["answer"]).tofile(answer_file)
            by_uuid.add(batch["uuid"])
    n = by_uuid.rows
    counts = FilterCounts(rows_in=n)
    contam = pl.concat(contaminated)
    out = np.zeros(n, dtype=bool)
    out[np.concatenate(contaminated_rows)] = True

    # Representative order: by uuid (first_by_key), or most correct generations first, then uuid.
    order = np.empty(n, np.int64)  # file rows in uuid order
    n_correct = np.zeros(n, np.int64) if cfg.keep == "most_correct" else None
    correct = _CorrectCounts(paths.judged, spool) if n_correct is not None else None
    done = 0
    for block in by_uuid.merge():
        rows = block["sample_index"].to_numpy()
        order[done : done + len(rows)] = rows
        done += len(rows)
        if correct is not None:
            n_correct[rows] = correct.of(block["uuid"])
    if n_correct is not None:
        order = order[np.argsort(-n_correct[order], kind="stable")]  # stable: uuid order among equals
        del n_correct
    ranked = order[~out[order]]  # file rows still in, in representative order
    del order
    position = np.full(n, -1, dtype=np.int64)  # each file row's place in `ranked`; -1 once it is out
    position[ranked] = np.arange(len(ranked))
    rejections: list[Rejection] = []

    exact = {"groups_with_duplicates": 0}
    if cfg.exact:
        dup, representative = _exact_duplicates_spooled(digests, position, spool)
        referred = ranked[representative]
        exact["groups_with_duplicates"] = len(np.unique(referred))
        rejections.append(Rejection("exact_duplicate", ranked[dup], referred, "duplicate of "))
        still_in = np.ones(len(ranked), dtype=bool)
        still_in[dup] = False
        ranked = ranked[still_in]
        del still_in
        position.fill(-1)
        position[ranked] = np.arange(len(ranked))
    digests.unlink()

    near = {"pairs": 0, "clusters": 0}
    pair_rows = pl.DataFrame(schema={"a": pl.Int64, "b": pl.Int64, "similarity": pl.Float64})
    if finder is not None:
        pairs = finder.pairs(position)
        answer_of = np.fromfile(answers, dtype=np.uint64)[ranked] if by_answer else None  # by position
        kept_apart = {}
        if answer_of is not None:
            # A pair whose two problems both give a gold answer, and not the same one, is two problems.
            a, b = answer_of[pairs["a"].to_numpy()], answer_of[pairs["b"].to_numpy()]
            differ = (a != 0) & (b != 0) & (a != b)
            kept_apart = {"pairs_with_different_answers": int(differ.sum())}
            pairs = pairs.filter(pl.Series(~differ))
            del a, b, differ
        # Rows are in representative order, so each component's root (lowest index) is its keeper.
        root = clusters(len(ranked), pairs, answer_of)
        members = np.nonzero(root != np.arange(len(ranked)))[0]
        # A member paired with its root directly has that pair's similarity (a < b, and a root is the
        # lowest of its component: only (root, member) pairs name one); NaN: through others.
        a, b, similarity = pairs["a"].to_numpy(), pairs["b"].to_numpy(), pairs["similarity"].to_numpy()
        direct = root[b] == a
        to_root = np.full(len(members), np.nan)
        to_root[np.searchsorted(members, b[direct])] = similarity[direct]
        rejections.append(Rejection("near_duplicate", ranked[members], ranked[root[members]], "near-duplicate of ", to_root))
        near = {"pairs": pairs.height, "clusters": len(np.unique(root[members])), **kept_apart}
        pair_rows = pairs.with_columns(pl.Series("a", ranked[a]), pl.Series("b", ranked[b]))
        ranked = ranked[root == np.arange(len(ranked))]
        del pairs, root, members, a, b, similarity, direct
    del position
    _return_freed_memory()  # the bucketing's freed arrays, before the outputs are read and written

    # Provenance: the dedupe settings and benchmarks that decided each row, and the code.
    settings = {
        **cfg.model_dump(mode="json"),
        "seed": seed,
        "benchmarks": {k: v.model_dump(mode="json") for k, v in sorted(benchmarks.items())},
    }
    # Each rejected row counted and written in one call, a chunk at a time (their uuids read back then).
    with TableWriter(paths.rejected, DEDUPE_REJECTED) as rejected:
        counts.exclusions = lambda frame: rejected.write(stamp(frame.select(list(REJECTED_COLUMNS)), "dedupe", settings))
        counts.reject_all("contaminated", contam.select("uuid", pl.format("{} item {}", "benchmark", "benchmark_item").alias("detail")))
        for rejection in rejections:
            for frame in rejection.frames(paths.problems, spool):
                counts.reject_all(rejection.reason, frame)
        counts.keep(len(ranked))
        counts.check("dedupe")
    # The kept problems' uuids in uuid order: the merged order again, less the rows that went.
    kept = np.zeros(n, dtype=bool)
    kept[ranked] = True
    with TableWriter(paths.kept, KEPT) as writer:
        for block in by_uuid.blocks():
            writer.write(stamp(block.filter(pl.Series(kept[block["sample_index"].to_numpy()])).select("uuid"), "dedupe", settings))
    _write_near_pairs(pair_rows, by_uuid, paths.problems, paths.near_duplicates, settings, spool)
    write_table(stamp(contam, "dedupe", settings), paths.contamination, CONTAMINATION)
    per_bench = {name: int((contam["benchmark"] == name).sum()) for name in benchmarks} if cfg.decontaminate else {}
    write_metrics(
        paths.metrics,
        "dedupe",
        counts=counts.as_dict(),
        contaminated_by_benchmark=per_bench,
        ngram=cfg.ngram,
        min_matching_ngrams=cfg.min_matching_ngrams,
        min_item_coverage=cfg.min_item_coverage,
        exact=exact,
        near_duplicates={
            **near,
            **cfg.near.model_dump(include={"shingle_size", "threshold", "boilerplate_share", "min_shingles", "keep_different_answers"}),
        }
        if cfg.near.enabled
        else {},
    )
    return counts
