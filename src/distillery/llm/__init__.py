"""Generation backends behind one interface.

    backend = make_backend(llm_config)
    for completion in backend.generate(requests, sampling): ...

Completions come back as they finish, in any order, one per request and never dropped: a request
that fails is a Completion with its error. The caller journals each one before asking for the next.

`transformers` runs a local or hub model in-process (CPU or GPU); `openai` talks to any
OpenAI-compatible server (vLLM serve, SGLang, a router); `vllm` runs vLLM's offline engine and is
imported only when selected. Model ids and local paths go through the same loading call.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from distillery.config.base import LLM, Sampling


@dataclass(frozen=True)
class Request:
    key: str  # request key (see keys.request_key)
    messages: tuple[tuple[str, str], ...]  # ((role, content), ...)
    seed: int
    # Raw continuation (budget forcing): these token ids are the whole prompt, sent as they are
    # (no chat template), and the reply continues them. None: `messages` through the chat template.
    prompt_ids: tuple[int, ...] | None = None
    stop: tuple[str, ...] = ()  # strings that end the reply (not part of its text)
    min_tokens: int = 0
    max_tokens: int | None = None  # this request's limit; None: the sampling's max_new_tokens

    def chat(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]

    @property
    def prompt(self) -> tuple:
        """What makes two requests samples of one prompt (one native request with n can ask for all)."""
        return (self.messages, self.prompt_ids, self.stop, self.min_tokens, self.max_tokens)

    def limit(self, sampling: Sampling) -> int:
        return self.max_tokens if self.max_tokens is not None else sampling.max_new_tokens


def request_problem(req: Request, sampling: Sampling) -> str | None:
    """Why no engine could serve this request, in one line, or None. Checked before a request is
    sent, so it comes back as a Completion with this error, never an engine's traceback."""
    limit = req.limit(sampling)
    if limit < 1:
        return f"max_tokens must be at least 1, not {limit}: a request for no tokens has nothing to generate"
    if req.min_tokens < 0 or req.min_tokens > limit:
        return f"min_tokens must be between 0 and max_tokens ({limit}), not {req.min_tokens}"
    return None


@dataclass(frozen=True)
class Completion:
    key: str
    text: str | None
    finish_reason: str  # stop | length | error; "missing" when the server gave none
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None
    # True for failures that a later attempt may not repeat (retries exhausted on a connection
    # error, a timeout, a 5xx): they fail the shard. False: this request's own rejection (an empty
    # prompt, one longer than the context), a row with its reason. Neither is ever reused from the
    # journal: a failure is not an answer (journal.is_final).
    retryable: bool = False
    latency_s: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


class Backend(Protocol):
    def generate(self, requests: Iterable[Request], sampling: Sampling) -> Iterator[Completion]: ...

    def close(self) -> None: ...


def make_backend(cfg: LLM, where: str = "llm") -> Backend:
    """`where` is the params key of `cfg` (`judge.llm`), for the messages that name keys to fix."""
    if cfg.backend == "transformers":
        from distillery.llm.transformers_backend import TransformersBackend

        return TransformersBackend(cfg)
    if cfg.backend == "openai":
        from distillery.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(cfg, where)
    if cfg.backend == "vllm":
        from distillery.llm.vllm_backend import VLLMBackend

        return VLLMBackend(cfg)
    raise ValueError(f"unknown backend {cfg.backend!r}")


@contextmanager
def backend_session(cfg: LLM, server_logs: Path, *, where: str) -> Iterator[Backend]:
    """The backend for `cfg`, with its server started first when `serve.engine` asks for one
    (across the job's Slurm allocation) and stopped afterwards, whatever happens in between.
    `where` is the params key of `cfg` (`judge.llm`): every serving error names its own stage's keys."""
    if cfg.serve.engine == "none":
        backend = make_backend(cfg, where)
        try:
            yield backend
        finally:
            backend.close()
        return
    from distillery.llm.serving import serve, with_base_url

    with serve(cfg, server_logs, where=where) as base_url:
        # The job's own server is reached directly, never through a site's HTTP proxy.
        host = base_url.split("//", 1)[1].split(":", 1)[0]
        for var in ("NO_PROXY", "no_proxy"):
            os.environ[var] = ",".join(filter(None, [os.environ.get(var), host]))
        backend = make_backend(with_base_url(cfg, base_url), where)
        try:
            yield backend
        finally:
            backend.close()
