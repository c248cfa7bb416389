"""Any OpenAI-compatible endpoint (vLLM serve, SGLang, a router) through the official client.

Requests run concurrently up to `max_concurrency`; the client's own retry support handles
connection errors, 5xx and timeouts with backoff. A request that still fails is returned with its
error (finish_reason "error"), never dropped.
"""

from __future__ import annotations

import asyncio
import os
from typing import Iterable, Iterator

from distillery.config import LLM, Sampling
from distillery.llm import Completion, Request


class OpenAIBackend:
    def __init__(self, cfg: LLM):
        self.cfg = cfg
        # The key comes from the environment only; servers without auth accept any value.
        self.api_key = os.environ.get(cfg.openai.api_key_env) or "EMPTY"

    def close(self) -> None:
        pass

    def generate(self, requests: Iterable[Request], sampling: Sampling) -> Iterator[Completion]:
        reqs = list(requests)
        yield from asyncio.run(self._run(reqs, sampling))

    async def _run(self, reqs: list[Request], sampling: Sampling) -> list[Completion]:
        from openai import AsyncOpenAI

        ep = self.cfg.openai
        client = AsyncOpenAI(base_url=ep.base_url, api_key=self.api_key, max_retries=ep.max_retries, timeout=ep.timeout_s)
        gate = asyncio.Semaphore(ep.max_concurrency)
        try:
            return await asyncio.gather(*(self._one(client, gate, r, sampling) for r in reqs))
        finally:
            await client.close()

    async def _one(self, client, gate: asyncio.Semaphore, req: Request, sampling: Sampling) -> Completion:
        import openai

        if not any(c.strip() for _, c in req.messages):
            return Completion(req.key, None, "error", 0, 0, "empty prompt")
        async with gate:
            try:
                resp = await client.chat.completions.create(
                    model=self.cfg.model,
                    messages=req.chat(),
                    temperature=sampling.temperature,
                    top_p=sampling.top_p,
                    max_tokens=sampling.max_new_tokens,
                    seed=req.seed,
                    n=1,
                )
            except openai.APIError as exc:
                return Completion(req.key, None, "error", None, None, f"{type(exc).__name__}: {exc}"[:500])
        choice = resp.choices[0] if resp.choices else None
        usage = resp.usage
        finish = choice.finish_reason if choice and choice.finish_reason else "missing"
        return Completion(
            key=req.key,
            text=message_text(choice.message, finish) if choice else None,
            finish_reason=finish,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
        )


def message_text(message, finish_reason: str) -> str:
    """The generation as one R1-style text. Servers with a reasoning parser (vLLM, SGLang,
    transformers serve) return the thinking apart, in `reasoning_content` or `reasoning`; it is put
    back inside <think>, left unclosed when the generation was cut off mid-thought."""
    extra = message.model_extra or {}
    reasoning = extra.get("reasoning_content") or extra.get("reasoning")
    content = message.content or ""
    if not reasoning:
        return content
    if finish_reason == "length" and not content:
        return f"<think>\n{reasoning}"
    return f"<think>\n{reasoning}\n</think>\n{content}"
