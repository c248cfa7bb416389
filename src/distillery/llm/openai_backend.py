"""One or more OpenAI-compatible servers (vLLM serve, SGLang, a router) through the official client.

- Bounded: at most `max_in_flight` requests from this client and `max_in_flight_per_server` per
  server; each request goes to the least busy server, again on every retry, so a dead server's
  work moves to the others.
- Retried with tenacity (exponential backoff with jitter, up to `max_retries`) on connection
  errors, timeouts, 408/409/429 and 5xx. A request that still fails is yielded with its error and
  `retryable=True`; another 4xx (say a prompt longer than the context) is this request's rejection
  and yielded as such.
- Refused: a 401 or 403 (the key), or a 404 (no such model or route), is the endpoint's answer to
  every request, not to one: it raises `EndpointRefused` at once, naming the server and the keys
  to fix, and stops the stage.
- Scrubbed: every text from a server loses the API key and anything shaped like a credential
  (distillery.secrets) before it is yielded.
- Streaming: completions are yielded as they finish, so the caller can journal each one at once;
  a request's slot is freed only after the caller took its answer, so requests sent but not yet
  journaled never exceed `max_in_flight` (what a kill can cost).
- `n`: in native mode the samples of one prompt go in one request (`n`); samples a server leaves
  out are asked for one by one. Split mode sends `n` requests of one sample each.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Iterable, Iterator

from distillery.config.base import LLM, Sampling
from distillery.errors import EndpointRefused
from distillery.llm import Completion, Request
from distillery.secrets import scrub, scrub_secrets, secret_values

log = logging.getLogger(__name__)

_DONE = object()
_STRING_PROMPT_ONLY = re.compile(r"prompt must be a string", re.I)


def is_retryable(exc: BaseException) -> bool:
    import openai

    if isinstance(exc, openai.APIConnectionError):  # includes timeouts
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return False


def error_text(exc: BaseException, secrets: tuple[str, ...] = ()) -> str:
    # Scrubbed before it is cut: a cut could leave part of a key the patterns no longer recognise.
    return scrub(f"{type(exc).__name__}: {exc}", secrets)[:500]


def refusal(exc: BaseException, *, where: str, cfg: LLM, base_url: str, raw: bool, secrets: tuple[str, ...]) -> str | None:
    """The one message for a response that no request to this endpoint can get past, or None."""
    import openai

    ep, said = cfg.openai, error_text(exc, secrets)
    key_env = f"{where}.openai.api_key_env"
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        if not os.environ.get(ep.api_key_env):
            source = f"the environment variable {ep.api_key_env} (named by {key_env}) is not set"
        else:
            source = f"the key is read from the environment variable {ep.api_key_env} (named by {key_env})"
        if isinstance(exc, openai.AuthenticationError):
            return (
                f"the server at {base_url} refused the API key ({said}); {source}: set it to a key this server accepts, "
                "then re-run (a refusal is never kept as an answer)"
            )
        return (
            f"the server at {base_url} refused access to model {cfg.model!r} ({said}); {source}: use a key allowed to use "
            f"it, or set {where}.model to a model this key may use, then re-run (a refusal is never kept as an answer)"
        )
    body = str(getattr(exc, "body", None) or "")  # the server's own words: not always in the message
    string_prompt_only = isinstance(exc, openai.BadRequestError) and _STRING_PROMPT_ONLY.search(f"{body} {exc}")
    if raw and (isinstance(exc, (openai.NotFoundError, openai.UnprocessableEntityError)) or string_prompt_only):
        # 404: no such route; 422, or a 400 saying the prompt must be a string: a completions route
        # that does not take token ids (transformers serve: 422 for vLLM's min_tokens field, 400
        # "prompt must be a string." without it).
        return (
            f"{base_url} has no completions endpoint (/v1/completions) that continues a prompt of "
            "token ids, which raw prompt continuation (evaluate's budget_forcing mode) needs: a chat endpoint "
            "cannot continue a prompt. Serve the model with vLLM or SGLang, or use backend vllm or transformers "
            f"({said})"
        )
    if isinstance(exc, openai.NotFoundError):
        return (
            f"the server at {base_url} has no model {cfg.model!r} or no chat endpoint ({said}): set {where}.model to a "
            f"model it serves (GET {base_url.rstrip('/')}/models lists them), or {where}.openai.base_urls to a server "
            "that serves it, then re-run"
        )
    return None


def group_by_prompt(requests: list[Request]) -> list[list[Request]]:
    """The samples of one prompt, in order: one native request asks for all of them."""
    groups: dict[tuple, list[Request]] = {}
    for r in requests:
        groups.setdefault(r.prompt, []).append(r)
    return list(groups.values())


class OpenAIBackend:
    def __init__(self, cfg: LLM, where: str = "llm"):
        self.cfg, self.where = cfg, where  # where: the params key of cfg (judge.llm), for messages
        # The key comes from the environment only; servers without auth accept any value.
        self.api_key = os.environ.get(cfg.openai.api_key_env) or "EMPTY"
        self.secrets = secret_values([self.api_key])
        self.requests_sent = 0  # HTTP requests, retries included: what the servers were asked
        self._warned_short_n = False

    def close(self) -> None:
        pass

    def generate(self, requests: Iterable[Request], sampling: Sampling) -> Iterator[Completion]:
        reqs = list(requests)
        if not reqs:
            return
        out: queue.Queue = queue.Queue()
        stop = threading.Event()

        def runner() -> None:
            try:
                asyncio.run(self._run(reqs, sampling, out.put, stop))
            except BaseException as exc:  # surfaced in the caller's thread
                out.put(exc)
            finally:
                out.put(_DONE)

        thread = threading.Thread(target=runner, name="openai-client", daemon=True)
        thread.start()
        try:
            while True:
                item = out.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                completions, holds_slot = item
                yield from completions
                # The caller has journaled this unit's completions: only now may its slot take the
                # next request, so a kill loses at most `max_in_flight` requests, answered or not.
                if holds_slot:
                    try:
                        self._loop.call_soon_threadsafe(self._slots.release)
                    except RuntimeError:
                        pass  # the loop has ended: every request was already sent, no one waits for a slot
        finally:
            stop.set()  # the caller stopped early (an error, a signal): cancel what is in flight
            thread.join(timeout=30)

    async def _run(self, reqs: list[Request], sampling: Sampling, emit, stop: threading.Event) -> None:
        from openai import AsyncOpenAI

        ep = self.cfg.openai
        clients = [AsyncOpenAI(base_url=u, api_key=self.api_key, max_retries=0, timeout=ep.timeout_s) for u in ep.base_urls]
        busy = [0] * len(clients)
        sendable = []
        for r in reqs:
            if not any(c.strip() for _, c in r.messages):
                emit(([Completion(r.key, None, "error", 0, 0, "empty prompt")], False))
            else:
                sendable.append(r)
        units = group_by_prompt(sendable) if ep.n_mode == "native" else [[r] for r in sendable]
        pending = iter(units)
        limit = min(ep.max_in_flight, ep.max_in_flight_per_server * len(clients), len(units)) or 1
        # A slot is held from sending a request until the caller has journaled its answer.
        self._loop, self._slots = asyncio.get_running_loop(), asyncio.Semaphore(limit)

        async def worker() -> None:
            while not stop.is_set():
                await self._slots.acquire()
                unit = next(pending, None)  # one shared iterator: each unit is taken by exactly one worker
                if unit is None:
                    self._slots.release()
                    return
                emit((await self._unit(clients, busy, unit, sampling), True))

        workers = [asyncio.create_task(worker()) for _ in range(limit)]

        async def watch_stop() -> None:
            while not stop.is_set():
                await asyncio.sleep(0.2)
            for w in workers:
                w.cancel()

        watcher = asyncio.create_task(watch_stop())
        try:
            await asyncio.gather(*workers)
        except asyncio.CancelledError:
            pass
        finally:
            watcher.cancel()
            for c in clients:
                await c.close()

    async def _unit(self, clients, busy, unit: list[Request], sampling: Sampling) -> list[Completion]:
        """Samples of one prompt: one request for all (native n), the missing ones one by one."""
        done = await self._call(clients, busy, unit, sampling)
        missing = [r for r, c in zip(unit, done) if c is None]
        if missing and len(unit) > 1:
            if not self._warned_short_n:
                log.warning(
                    "a server returned fewer choices than n; asking for the missing samples one by one "
                    "(set openai.n_mode: split for servers that ignore n)"
                )
                self._warned_short_n = True
            for r in missing:
                [c] = await self._call(clients, busy, [r], sampling)
                done[unit.index(r)] = c or Completion(r.key, None, "error", None, None, "the server returned no choices", retryable=True)
        return [
            c or Completion(r.key, None, "error", None, None, "the server returned no choices", retryable=True) for r, c in zip(unit, done)
        ]

    async def _call(self, clients, busy, unit: list[Request], sampling: Sampling) -> list[Completion | None]:
        import openai
        from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

        ep = self.cfg.openai
        started = time.monotonic()
        i = 0
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(is_retryable),
                stop=stop_after_attempt(ep.max_retries + 1),
                wait=wait_exponential_jitter(initial=1, max=ep.retry_max_wait_s),
                reraise=True,
            ):
                with attempt:
                    i = min(range(len(clients)), key=busy.__getitem__)  # least busy server
                    busy[i] += 1
                    self.requests_sent += 1
                    try:
                        resp = await self._create(clients[i], unit, sampling)
                    finally:
                        busy[i] -= 1
        except openai.APIError as exc:
            base_url = str(clients[i].base_url).rstrip("/")
            raw = unit[0].prompt_ids is not None
            message = refusal(exc, where=self.where, cfg=self.cfg, base_url=base_url, raw=raw, secrets=self.secrets)
            if message is not None:
                raise EndpointRefused(message) from None
            retryable = is_retryable(exc)
            return [Completion(r.key, None, "error", None, None, error_text(exc, self.secrets), retryable=retryable) for r in unit]
        latency = time.monotonic() - started
        choices = sorted(resp.choices or [], key=lambda ch: ch.index)[: len(unit)]
        usage = resp.usage
        if unit[0].prompt_ids is not None:
            texts = [ch.text or "" for ch in choices]
        else:
            texts = [message_text(ch.message, ch.finish_reason or "missing") for ch in choices]
        texts = [scrub_secrets(t, self.secrets) for t in texts]
        tokens = split_tokens(usage.completion_tokens if usage else None, texts)
        out: list[Completion | None] = [None] * len(unit)
        for j, ch in enumerate(choices):
            out[j] = Completion(
                key=unit[j].key,
                text=texts[j],
                finish_reason=ch.finish_reason or "missing",
                prompt_tokens=usage.prompt_tokens if usage else None,
                completion_tokens=tokens[j],
                latency_s=round(latency, 3),
            )
        return out

    async def _create(self, client, unit: list[Request], sampling: Sampling):
        first = unit[0]
        common = {
            "model": self.cfg.model,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": first.limit(sampling),
            "seed": first.seed,
            "n": len(unit),
        }
        if first.prompt_ids is None:
            return await client.chat.completions.create(messages=first.chat(), **common)
        # Raw continuation: the token ids are the prompt (the completions endpoint takes them as they
        # are); min_tokens is vLLM's and SGLang's extension, sent only when asked for.
        extra = {"min_tokens": first.min_tokens} if first.min_tokens else None
        return await client.completions.create(prompt=list(first.prompt_ids), stop=list(first.stop) or None, extra_body=extra, **common)


def split_tokens(total: int | None, texts: list[str]) -> list[int | None]:
    """Per-sample completion tokens. Servers report one total for a request with n samples; it is
    split in proportion to each sample's length (exact for n=1; the sum is always exact)."""
    if total is None:
        return [None] * len(texts)
    if len(texts) == 1:
        return [total]
    chars = [len(t) for t in texts]
    whole = sum(chars)
    if not whole:
        share = [total // len(texts)] * len(texts)
    else:
        share = [total * c // whole for c in chars]
    share[-1] += total - sum(share)
    return share


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
