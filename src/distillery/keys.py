"""Stable keys: a problem's uuid and a generation request's key.

A problem key survives resampling (it depends only on the problem's normalized text and source);
a request key changes whenever anything that shapes the answer changes (model, revision, rendered
prompt, sampling, sample index), so a cached result is never reused for a different request.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from pathlib import Path
from typing import Any

_WS = re.compile(r"\s+")
# LaTeX spacing commands that do not change the mathematics: \, \; \! \: and "\ ".
_LATEX_SPACING = re.compile(r"\\[,;:!]|\\ ")

# A fixed namespace so problem uuids are the same on every machine and in every run.
PROBLEM_NAMESPACE = uuid.UUID("6f1c0a52-8f0e-4c5e-9b53-7d3c1f0e2a11")


def normalize_text(text: str) -> str:
    """Lowercase, drop LaTeX spacing commands, collapse whitespace."""
    text = _LATEX_SPACING.sub(" ", text)
    return _WS.sub(" ", text).strip().lower()


def problem_key(problem: str, source: str) -> str:
    return str(uuid.uuid5(PROBLEM_NAMESPACE, f"{source}\x1f{normalize_text(problem)}"))


def stable_hash(obj: Any) -> str:
    data = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def request_key(model: str, revision: str | None, messages: list[dict[str, str]], sampling: dict[str, Any], sample_index: int) -> str:
    """`model` is a hub id, or a local directory whose contents are fingerprinted: a model retrained
    in place (data/models/teacher, data/sft/model) makes new keys, so its old answers are not reused."""
    ident: dict[str, Any] = {"model": model, "revision": revision, "messages": messages, "sampling": sampling, "sample_index": sample_index}
    fingerprint = model_fingerprint(model)
    if fingerprint:
        ident["model_fingerprint"] = fingerprint
    return stable_hash(ident)


_SAMPLE = 1 << 20
_fingerprints: dict[str, str | None] = {}


def model_fingerprint(model: str) -> str | None:
    """For a local model directory: a hash of every file's path and size, the whole of files up to
    2 MiB (configs, tokenizers, small weights) and the first and last MiB of larger ones (weights:
    any retraining changes them there too). None for a hub id (its revision names its contents).
    Computed once per process."""
    if model in _fingerprints:
        return _fingerprints[model]
    root = Path(model)
    result = None
    if root.is_dir():
        h = hashlib.sha256()
        for f in sorted(p for p in root.rglob("*") if p.is_file()):
            size = f.stat().st_size
            h.update(f"{f.relative_to(root).as_posix()}\x1f{size}\x1e".encode())
            with open(f, "rb") as fh:
                if size <= 2 * _SAMPLE:
                    h.update(fh.read())
                else:
                    h.update(fh.read(_SAMPLE))
                    fh.seek(-_SAMPLE, 2)
                    h.update(fh.read(_SAMPLE))
        result = h.hexdigest()[:16]
    _fingerprints[model] = result
    return result


def shard_of(key: str, num_shards: int) -> int:
    """Shard by a hash of the problem key: a problem's shard does not move when the sample grows."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:15], 16) % num_shards


def derive_seed(seed: int, *parts: Any) -> int:
    return int(stable_hash([seed, *parts])[:8], 16)
