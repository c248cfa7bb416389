"""Scrubbing secrets out of text that came from a server before it is kept anywhere.

A server's error message can echo what it was sent: a gateway answering 401 with "Incorrect API
key provided: sk-...", a proxy quoting the request's `Authorization` header. Such text reaches the
journal, the stage's rows, logs and the console, so it goes through `scrub` first: the key itself
(the value of the variable `<stage>.llm.openai.api_key_env` names) and anything shaped like a
credential (a bearer token, an `Authorization:` value, an `sk-...` or `hf_...` key) become
`[redacted]`. Generated answers are scrubbed of the key itself only: the patterns are for error
messages, and a model's text that merely looks like a key is data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[redacted]"
# Shorter values are not plausible keys ("EMPTY", the default for servers without auth), and
# replacing them would mangle ordinary text.
MIN_SECRET_CHARS = 8

# Each leaves an earlier "[redacted]" alone: scrubbing twice (a backend, then the journal) changes nothing.
_CREDENTIAL_SHAPES = (
    # An Authorization header's value, quoted or not, with or without its scheme.
    re.compile(
        r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?)(?!(?:(?:bearer|basic|token)\s+)?\[redacted\])(?:(?:bearer|basic|token)\s+)?[^\s\"',;})\]]+"
    ),
    # A bearer token anywhere.
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    # OpenAI-style (sk-..., sk-proj-...) and Hugging Face (hf_...) keys.
    re.compile(r"()\b(?:sk-[A-Za-z0-9_-]{8,}|hf_[A-Za-z0-9]{16,})"),
    # api_key=..., "api_key": "...", x-api-key: ...
    re.compile(r"(?i)(\b(?:x-)?api[_-]?key[\"']?\s*[:=]\s*[\"']?)(?!\[redacted\])[^\s\"',;})\]]{8,}"),
)


def secret_values(values: Iterable[str | None]) -> tuple[str, ...]:
    """The values worth scrubbing: set and long enough to be a key, longest first."""
    return tuple(sorted({v for v in values if v and len(v) >= MIN_SECRET_CHARS}, key=len, reverse=True))


def scrub_secrets(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each of `secrets` replaced."""
    for s in secrets:
        if s in text:
            text = text.replace(s, REDACTED)
    return text


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without `secrets` and without anything shaped like a credential."""
    # Shapes first: a header whose value is then the known key would otherwise half-match "[redacted]".
    for pattern in _CREDENTIAL_SHAPES:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return scrub_secrets(text, secrets)
