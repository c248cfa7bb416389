"""Generation backends behind one interface.

    backend = make_backend(llm_config)
    for completion in backend.generate(requests, sampling): ...

`transformers` runs a local or hub model in-process (CPU or GPU); `openai` talks to any
OpenAI-compatible server (vLLM serve, SGLang, a router); `vllm` runs vLLM's offline engine and is
imported only when selected. Model ids and local paths go through the same loading call.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Iterator, Protocol

from distillery.config import LLM, Sampling


@dataclass(frozen=True)
class Request:
    key: str  # request key (see keys.request_key)
    messages: tuple[tuple[str, str], ...]  # ((role, content), ...)
    seed: int

    def chat(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]


@dataclass(frozen=True)
class Completion:
    key: str
    text: str | None
    finish_reason: str  # stop | length | error
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


class Backend(Protocol):
    def generate(self, requests: Iterable[Request], sampling: Sampling) -> Iterator[Completion]: ...

    def close(self) -> None: ...


def make_backend(cfg: LLM) -> Backend:
    if cfg.backend == "transformers":
        from distillery.llm.transformers_backend import TransformersBackend

        return TransformersBackend(cfg)
    if cfg.backend == "openai":
        from distillery.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(cfg)
    if cfg.backend == "vllm":
        from distillery.llm.vllm_backend import VLLMBackend

        return VLLMBackend(cfg)
    raise ValueError(f"unknown backend {cfg.backend!r}")


def model_identity(cfg: LLM) -> dict[str, str | None]:
    return {"backend": cfg.backend, "model": cfg.model, "revision": cfg.revision}
