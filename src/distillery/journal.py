"""Item-level journals: every finished request, appended and flushed the moment it finishes.

A shard's journal outlives the stage's outputs (DVC and Snakemake delete those before a re-run),
so a killed shard redoes only the requests that were in flight, and a later run with a grown
sample or a changed stage reuses every request whose key is unchanged. A key covers model,
revision, rendered prompt, sampling and sample index, so a changed temperature or prompt never
picks up a stale answer.

Layout, under $DISTILLERY_JOURNAL_DIR (default .distillery/journal, relative to the working
directory, which is the repository root for Snakemake and DVC):

    <stage>/shard-<k>-of-<K>.jsonl   one JSON object per line, "key" first
    <stage>/shard-<k>-of-<K>.lock    held (flock) by the process writing that journal

One writer per file, append-only, one write() per line: a SIGKILL loses at most a torn last line,
which the reader skips. Shard k of K reads its own file and, after a change of K, every other
layout's file that can hold its problems. Deleting the directory is always safe: it only costs
regeneration. `distillery journal stats|prune` inspects and compacts it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import math
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from distillery.errors import DistilleryError

log = logging.getLogger(__name__)

JOURNAL_ENV = "DISTILLERY_JOURNAL_DIR"
_NAME = re.compile(r"^shard-(\d+)-of-(\d+)\.jsonl$")
_KEY_PREFIX = b'{"key":"'
FSYNC_INTERVAL_S = 1.0


def journal_root() -> Path:
    return Path(os.environ.get(JOURNAL_ENV) or ".distillery/journal")


def journal_dir(stage: str) -> Path:
    return journal_root() / stage


def is_final(record: dict) -> bool:
    """An answer, to be reused. A failure never is, whatever it was: errors after exhausted retries,
    a request's own rejection (an empty prompt, one longer than the context: cheap to ask again, and
    a larger context may take it), and the refusals that journals written before they stopped the
    stage hold (a 401 from a wrong key, a 404 from a missing model) are all asked again."""
    return not record.get("retryable", False) and record.get("error") is None and record.get("finish_reason") != "error"


def shares_problems(shard: int, num_shards: int, other: int, other_num: int) -> bool:
    """Whether shard `other` of `other_num` can hold a problem of shard `shard` of `num_shards`:
    a hash h has h % K == k and h % K' == k' for some h iff k and k' agree modulo gcd(K, K')."""
    g = math.gcd(num_shards, other_num)
    return shard % g == other % g


@dataclass
class LoadReport:
    files: int = 0
    lines: int = 0
    reused: int = 0
    torn: int = 0
    retryable_errors: int = 0  # failed requests read (is_final: all are asked again)
    sources: list[str] = field(default_factory=list)


def _read_lines(path: Path) -> Iterator[tuple[bytes, bool]]:
    """(line, complete) pairs; the last line is incomplete when a write was cut off."""
    with open(path, "rb") as fh:
        data = fh.read()
    if not data:
        return
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    for line in lines:
        if line:
            yield line, True
    if tail:
        yield tail, False


def _line_key(line: bytes) -> str | None:
    # Records are written with "key" first, so membership is checked before parsing the JSON.
    if line.startswith(_KEY_PREFIX):
        end = line.find(b'"', len(_KEY_PREFIX))
        if end > 0:
            return line[len(_KEY_PREFIX) : end].decode("ascii", "replace")
    return None


def read_records(path: Path, wanted: set[str] | None, report: LoadReport) -> dict[str, dict]:
    """Final records of `path` whose key is in `wanted` (all when None); later lines win."""
    found: dict[str, dict] = {}
    failed: set[str] = set()
    for line, complete in _read_lines(path):
        report.lines += 1
        key = _line_key(line)
        if key is None or (wanted is not None and key not in wanted):
            if key is None:
                report.torn += 1
            continue
        try:
            record = json.loads(line)
        except ValueError:
            report.torn += 1
            continue
        if not complete:
            report.torn += 1  # parsed, but its newline never reached the disk: trust it anyway
        if is_final(record):
            found[key] = record
        else:
            failed.add(key)
    report.retryable_errors += len(failed - found.keys())  # failed, and not answered since
    return found


class ShardJournal:
    """The journal of one shard of one stage; a context manager that holds its lock."""

    def __init__(self, directory: Path, shard: int, num_shards: int):
        self.directory = Path(directory)
        self.shard, self.num_shards = shard, num_shards
        self.path = self.directory / f"shard-{shard}-of-{num_shards}.jsonl"
        self._lock_fh: IO[str] | None = None
        self._fh: IO[bytes] | None = None
        self._last_sync = 0.0

    # -- lifecycle --------------------------------------------------------------------------------

    def __enter__(self) -> ShardJournal:
        self.directory.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_suffix(".lock")
        self._lock_fh = open(lock_path, "a+")
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_fh.seek(0)
            holder = self._lock_fh.read().strip() or "unknown"
            self._lock_fh.close()
            raise DistilleryError(
                f"journal {self.path} is in use by another running process ({holder}); two runs of the same "
                "shard would duplicate requests. Wait for it, or cancel it."
            ) from None
        except OSError as exc:
            # Some network filesystems have no flock; one writer per shard is then on the user.
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
            log.warning("journal %s: this filesystem has no file locks (%s); do not run the same shard twice at once", self.path, exc)
        self._lock_fh.seek(0)
        self._lock_fh.truncate()
        self._lock_fh.write(f"pid {os.getpid()} on {os.uname().nodename}\n")
        self._lock_fh.flush()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._fh is not None:
            fh, self._fh = self._fh, None
            try:
                fh.flush()
                os.fsync(fh.fileno())
                fh.close()
            except OSError:
                # The disk filled up: append() has already said so; what could not be flushed is at
                # most the torn last line, which reading skips.
                try:
                    fh.close()
                except OSError:
                    pass
        if self._lock_fh is not None:
            self._lock_fh.close()  # releases the flock
            self._lock_fh = None

    # -- reading ----------------------------------------------------------------------------------

    def layout_files(self) -> list[Path]:
        """This shard's file first, then other layouts' files that can hold its problems."""
        files = [self.path] if self.path.exists() else []
        for p in sorted(self.directory.glob("shard-*-of-*.jsonl")):
            m = _NAME.match(p.name)
            if not m or p == self.path:
                continue
            other, other_num = int(m.group(1)), int(m.group(2))
            if shares_problems(self.shard, self.num_shards, other, other_num):
                files.append(p)
        return files

    def load(self, wanted: Iterable[str]) -> tuple[dict[str, dict], LoadReport]:
        wanted = set(wanted)
        report = LoadReport()
        found: dict[str, dict] = {}
        for path in self.layout_files():
            report.files += 1
            got = read_records(path, wanted - found.keys(), report)
            if got:
                report.sources.append(path.name)
            found.update(got)
        report.reused = len(found)
        if report.torn:
            log.warning("journal %s: %d unreadable line(s) skipped (a write cut off by a kill)", self.directory, report.torn)
        if report.retryable_errors:
            log.info("journal %s: %d failed request(s) of earlier runs are asked again", self.directory, report.retryable_errors)
        return found, report

    # -- writing ----------------------------------------------------------------------------------

    def append(self, record: dict) -> None:
        """One line, written with one call and flushed to the OS: a SIGKILL cannot lose it. fsync
        (for node crashes) at most once a second, so a fast stream is not bound by the disk."""
        line = json.dumps({"key": record["key"], **record}, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
        try:
            if self._fh is None:
                self._fh = open(self.path, "ab")
                size = self._fh.tell()
                if size and _last_byte(self.path) != b"\n":
                    self._fh.write(b"\n")  # end a torn line so the next record starts clean
            self._fh.write(line + b"\n")
            self._fh.flush()
            now = time.monotonic()
            if now - self._last_sync >= FSYNC_INTERVAL_S:
                os.fsync(self._fh.fileno())
                self._last_sync = now
        except OSError as exc:
            # A full disk or quota: the answers journaled so far are safe (a torn last line is skipped
            # on reading); say where, and what to do, instead of a traceback.
            raise DistilleryError(
                f"cannot write the request journal {self.path} ({exc.strerror or exc}): free space there, or set "
                "DISTILLERY_JOURNAL_DIR to a filesystem with room, then re-run; every answer journaled before this one is kept"
            ) from None


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1)


# -- maintenance (distillery journal ...) ------------------------------------------------------------


def stats(directory: Path) -> dict:
    out: dict = {"directory": str(directory), "files": {}, "records": 0, "bytes": 0}
    for p in sorted(Path(directory).glob("shard-*-of-*.jsonl")):
        report = LoadReport()
        records = read_records(p, None, report)
        out["files"][p.name] = {
            "records": len(records),
            "lines": report.lines,
            "retryable_errors": report.retryable_errors,
            "unreadable_lines": report.torn,
            "bytes": p.stat().st_size,
        }
        out["records"] += len(records)
        out["bytes"] += p.stat().st_size
    return out


def prune(directory: Path, keep_keys: set[str]) -> dict:
    """Rewrite every journal of `directory` keeping only final records whose key is in
    `keep_keys` (e.g. the request keys of the outputs a team still uses). Takes each file's lock."""
    kept = dropped = 0
    for p in sorted(Path(directory).glob("shard-*-of-*.jsonl")):
        m = _NAME.match(p.name)
        if not m:
            continue
        with ShardJournal(directory, int(m.group(1)), int(m.group(2))) as journal:
            report = LoadReport()
            records = read_records(p, None, report)
            keep = {k: r for k, r in records.items() if k in keep_keys}
            tmp = p.with_suffix(".jsonl.tmp")
            with open(tmp, "wb") as fh:
                for r in keep.values():
                    fh.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass") + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, journal.path)
            kept += len(keep)
            dropped += report.lines - len(keep)
    return {"kept": kept, "dropped_lines": dropped}
