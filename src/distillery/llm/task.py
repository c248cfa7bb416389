"""One journaled LLM stage, after NeMo-Skills' GenerationTask: a stage says what to ask about an item
(`messages`, `samples`) and turns the answers into rows; the task does everything else, the same way
for every stage that talks to a model:

- requests: each chat gets a request key (model, revision, model contents, rendered prompt,
  sampling, sample index; distillery.keys) and a seed derived from it; a key asked twice is sent once;
- the journal: finished requests are read back instead of being sent again, and every new one is on
  disk the moment it finishes (distillery.journal), with the code that asked it;
- serving: a server for this stage when `<stage>.llm.serve` asks for one, started only when
  something is left to send, with every error naming `<stage>.llm.serve...`;
- progress, this run's figures, one failure message after exhausted retries; a failure or a
  rejection is never an answer: never reused from the journal, and a run that got no answer at all
  stops with one message (a refused key or a missing model stops it at the first reply);
- provenance: the model's contents and the stage's settings hash, for the stage's rows.

generate, judge and evaluate are subclasses of a few lines each; so is any new LLM stage.
"""

from __future__ import annotations

import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from distillery.config.base import LLM, Sampling, Section
from distillery.errors import DistilleryError, EndpointRefused
from distillery.journal import ShardJournal, journal_dir
from distillery.keys import derive_seed, model_fingerprint, request_key, stable_hash
from distillery.llm import Completion, Request, backend_session
from distillery.progress import Progress
from distillery.provenance import code_version, params_hash
from distillery.secrets import scrub, scrub_secrets, secret_values

log = logging.getLogger(__name__)

Item = TypeVar("Item")


@dataclass(frozen=True)
class TaskDirs:
    """Where a task keeps what outlives a run. None: the defaults, `$DISTILLERY_JOURNAL_DIR/<stage>`
    and `logs/<stage>/servers`; a rule passes its own (`--journal`, `--server-logs`)."""

    journal: Path | None = None
    server_logs: Path | None = None


@dataclass(frozen=True)
class Answer:
    """A finished request as the journal keeps it: the reply, or a final (non-retryable) error."""

    text: str | None
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    error: str | None
    code: str | None  # the code that asked (provenance); None in journals older than that record

    @classmethod
    def from_record(cls, rec: dict) -> Answer:
        return cls(*(rec.get(k) for k in ("text", "finish_reason", "prompt_tokens", "completion_tokens", "error", "code")))


@dataclass(frozen=True)
class Asked(Generic[Item]):
    item: Item
    sample_index: int
    request: Request
    answer: Answer


@dataclass
class RunStats:
    """This run's figures (a log, never a hashed output: they differ between runs with the same rows)."""

    requests: int = 0
    reused_from_journal: int = 0
    generated: int = 0
    failed_after_retries: int = 0
    backend_requests_sent: int = 0
    generated_tokens: int = 0
    generate_s: float = 0.0
    journal_unreadable_lines: int = 0
    journal_sources: list[str] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return round(self.generated_tokens / self.generate_s, 1) if self.generate_s else 0.0


def journal_record(c: Completion, stage: str, secrets: tuple[str, ...] = ()) -> dict:
    """What the journal keeps: the answer, when it came, and the code that asked (its provenance).
    Never a secret: the error loses anything shaped like a credential, every text the key itself
    (backends scrub already; this is the last gate before the disk)."""
    rec = {"key": c.key, **{k: v for k, v in c.as_dict().items() if k != "key"}, "t": round(time.time(), 3), "code": code_version(stage)}
    if rec["error"] is not None:
        rec["error"] = scrub(rec["error"], secrets)
    if rec["text"] is not None and secrets:
        rec["text"] = scrub_secrets(rec["text"], secrets)
    return rec


class LLMTask(ABC, Generic[Item]):
    """Subclasses set `stage` (their params section) and implement `messages`; `samples` defaults to one."""

    stage: ClassVar[str]

    def __init__(self, llm: LLM, seed: int, dirs: TaskDirs | None = None, *, shard: int = 0, num_shards: int = 1, label: str = ""):
        dirs = dirs or TaskDirs()
        self.llm, self.seed, self.shard, self.num_shards = llm, seed, shard, num_shards
        self.journal = dirs.journal or journal_dir(self.stage)
        self.server_logs = dirs.server_logs or Path("logs") / self.stage / "servers"
        self.label = label or self.stage
        self.stats = RunStats()

    # --- hooks ---------------------------------------------------------------------------------
    @abstractmethod
    def messages(self, item: Item) -> Sequence[tuple[str, str]]:
        """The chat for one item: ((role, content), ...)."""

    def samples(self, item: Item) -> int:
        """How many answers to ask for (each its own request key, through its sample index)."""
        return 1

    def first_sample_index(self, item: Item) -> int:
        """The sample index of the first answer (a later round of generation continues the indices)."""
        return 0

    # --- the task ------------------------------------------------------------------------------
    def request(self, messages: Sequence[tuple[str, str]], sampling: Sampling, sample_index: int = 0) -> Request:
        chat = [{"role": r, "content": c} for r, c in messages]
        key = request_key(self.llm.model, self.llm.revision, chat, sampling.model_dump(), sample_index)
        return Request(key=key, messages=tuple(messages), seed=derive_seed(self.seed, key))

    def raw_request(
        self, prompt_ids: Sequence[int], sampling: Sampling, sample_index: int = 0, *, max_tokens: int, stop: Sequence[str], min_tokens: int
    ) -> Request:
        """A raw continuation of `prompt_ids` (no chat template): budget forcing's rounds."""
        ids = tuple(prompt_ids)
        shape = {**sampling.model_dump(), "max_tokens": max_tokens, "stop": list(stop), "min_tokens": min_tokens}
        key = request_key(self.llm.model, self.llm.revision, [{"role": "raw", "content": stable_hash(list(ids))}], shape, sample_index)
        return Request(
            key=key,
            messages=(("raw", f"{len(ids)} token ids"),),
            seed=derive_seed(self.seed, key),
            prompt_ids=ids,
            stop=tuple(stop),
            min_tokens=min_tokens,
            max_tokens=max_tokens,
        )

    def ask(self, items: Sequence[Item], sampling: Sampling) -> list[Asked[Item]]:
        """Every item's answers, in item then sample order."""
        plan = []
        for item in items:
            messages = self.messages(item)
            first = self.first_sample_index(item)
            plan += [(item, i, self.request(messages, sampling, i)) for i in range(first, first + self.samples(item))]
        answers = self.answer([req for _, _, req in plan], sampling)
        return [Asked(item, i, req, answers[req.key]) for item, i, req in plan]

    def answer(self, requests: Sequence[Request], sampling: Sampling) -> dict[str, Answer]:
        """Each distinct request answered once: from the journal if it is there, else by the backend.
        Raises, naming the journal, when some failed after exhausted retries; they are retried on
        the next run, and nothing finished is asked again."""
        unique = list({r.key: r for r in requests}.values())
        done, failed = self._run(unique, sampling)
        missing = [r.key for r in unique if r.key not in done and r.key not in failed]
        if missing:
            raise DistilleryError(
                f"{self.label}: the backend returned no answer for {len(missing)} request(s); this is a bug, please report it"
            )
        if failed:
            example = next(iter(failed.values()))["error"]
            raise DistilleryError(
                f"{self.label}: {len(failed)} of {len(unique)} requests failed after {self.llm.openai.max_retries} retries "
                f"(e.g. {example}). They are recorded in {self.journal_path}; every finished request is kept there, so "
                "re-running retries only these."
            )
        rejected = [rec for rec in done.values() if rec.get("error") is not None]
        if rejected and len(rejected) == len(unique):
            # Not one answer: the endpoint or a setting is wrong, not the data; rows of errors are no result.
            raise DistilleryError(
                f"{self.label}: all {len(unique)} requests were rejected (e.g. {rejected[0]['error']}); that is a setting, "
                f"not the data: check {self.stage}.llm (model, backend, context length), {self.stage}.sampling.max_new_tokens "
                f"and {self.stage}'s prompt, then re-run (a rejection is never kept as an answer)"
            )
        if rejected:
            log.warning(
                "%s: %d of %d requests were rejected (e.g. %s); they are rows with that error, never answers, and are "
                "asked again on the next run",
                self.label,
                len(rejected),
                len(unique),
                rejected[0]["error"],
            )
        return {k: Answer.from_record(rec) for k, rec in done.items()}

    def _run(self, requests: list[Request], sampling: Sampling) -> tuple[dict[str, dict], dict[str, dict]]:
        st = self.stats
        st.requests += len(requests)
        failed: dict[str, dict] = {}
        with ShardJournal(self.journal, self.shard, self.num_shards) as jn:
            self.journal_path = jn.path
            done, report = jn.load(r.key for r in requests)
            todo = [r for r in requests if r.key not in done]
            st.reused_from_journal += len(done)
            st.journal_unreadable_lines += report.torn
            st.journal_sources = sorted({*st.journal_sources, *report.sources})
            sources = ", ".join(report.sources) or "none"
            log.info(
                "%s: %d requests: %d reused from the journal (%s), %d to send", self.label, len(requests), len(done), sources, len(todo)
            )
            if todo:
                progress = Progress(self.label, total=len(requests), already_done=len(done))
                started = time.monotonic()
                with backend_session(self.llm, self.server_logs, where=f"{self.stage}.llm") as backend:
                    try:
                        secrets = secret_values([os.environ.get(self.llm.openai.api_key_env)])
                        for c in backend.generate(todo, sampling):
                            rec = journal_record(c, self.stage, secrets)
                            jn.append(rec)  # on disk before anything else happens
                            if c.retryable:
                                failed[c.key] = rec
                            else:
                                done[c.key] = rec
                                failed.pop(c.key, None)
                            st.generated_tokens += c.completion_tokens or 0
                            progress.update(c.completion_tokens)
                    except EndpointRefused as exc:
                        raise EndpointRefused(f"{self.label}: {exc}") from None
                    finally:
                        st.backend_requests_sent += getattr(backend, "requests_sent", len(todo))
                        progress.close()
                st.generate_s = round(st.generate_s + time.monotonic() - started, 3)
        st.failed_after_retries += len(failed)
        st.generated += sum(1 for r in todo if r.key in done)
        return done, failed

    # --- provenance ----------------------------------------------------------------------------
    def model_fingerprint(self) -> str | None:
        """The model's contents when it is a local directory (None for a hub id: its revision says)."""
        return model_fingerprint(self.llm.model)

    def settings_hash(self, cfg: Section, **extra: Any) -> str:
        """`<stage>_params`: the stage's settings that shape its rows, with the seed."""
        return params_hash(self.stage, {**cfg.model_dump(mode="json"), "seed": self.seed, **extra})
