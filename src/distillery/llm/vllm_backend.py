"""vLLM's offline engine, for teachers that fit one node. Imported only when selected, because
vLLM lives in its own environment (envs/generate.yaml).

Prompts go to the engine `batch_size` at a time and each batch's completions are yielded before
the next starts, so a killed job loses at most one batch. The samples of one prompt share one
`SamplingParams(n=...)`, so the engine computes their prompt once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from distillery.config.base import LLM, Sampling
from distillery.errors import DistilleryError
from distillery.llm import Completion, Request, request_problem
from distillery.llm.openai_backend import group_by_prompt

log = logging.getLogger(__name__)


class VLLMBackend:
    def __init__(self, cfg: LLM):
        try:
            from vllm import LLM as Engine
        except ImportError:
            raise DistilleryError(
                "backend `vllm` needs vLLM, which is not installed in this environment; run the stage in "
                "envs/generate.yaml (snakemake --use-conda) or choose backend `transformers` or `openai`"
            ) from None
        v = cfg.vllm
        self.cfg = cfg
        self.engine = Engine(
            model=cfg.model,
            revision=cfg.revision,
            tokenizer_revision=cfg.revision,
            dtype=cfg.dtype,
            tensor_parallel_size=v.tensor_parallel_size,
            pipeline_parallel_size=v.pipeline_parallel_size,
            gpu_memory_utilization=v.gpu_memory_utilization,
            max_model_len=v.max_model_len,
            enforce_eager=v.enforce_eager,
            **v.engine_args,
        )
        self.tokenizer = self.engine.get_tokenizer()
        self.context = self.engine.llm_engine.model_config.max_model_len

    def close(self) -> None:
        del self.engine

    def generate(self, requests: Iterable[Request], sampling: Sampling) -> Iterator[Completion]:
        groups: list[tuple[list[Request], list[int]]] = []
        for unit in group_by_prompt(list(requests)):
            first = unit[0]
            problem = request_problem(first, sampling)
            if problem is not None:
                yield from (Completion(r.key, None, "error", 0, 0, problem) for r in unit)
                continue
            if not any(c.strip() for _, c in first.messages):
                yield from (Completion(r.key, None, "error", 0, 0, "empty prompt") for r in unit)
                continue
            if first.prompt_ids is not None:
                ids = list(first.prompt_ids)  # raw continuation: the ids are the prompt
            else:
                # Rendered to text, then tokenized: the same two steps as the transformers backend.
                text = self.tokenizer.apply_chat_template(first.chat(), tokenize=False, add_generation_prompt=True)
                ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(ids) >= self.context:
                error = f"prompt of {len(ids)} tokens does not fit the model's context of {self.context}"
                yield from (Completion(r.key, None, "error", len(ids), 0, error) for r in unit)
                continue
            groups.append((unit, ids))
        batch: list[tuple[list[Request], list[int]]] = []
        size = 0
        for group in groups:
            batch.append(group)
            size += len(group[0])
            if size >= self.cfg.batch_size:
                yield from self._batch(batch, sampling)
                batch, size = [], 0
        if batch:
            yield from self._batch(batch, sampling)

    def _batch(self, batch: list[tuple[list[Request], list[int]]], sampling: Sampling) -> Iterator[Completion]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        # The sampling parameters are built one unit at a time inside the error handling: vLLM
        # validates them in SamplingParams' constructor, and a unit it rejects is that unit's clear
        # error (its requests fail, final), never a traceback that stops the stage.
        ready: list[tuple[list[Request], list[int], SamplingParams]] = []
        for unit, ids in batch:
            first = unit[0]
            try:
                params = SamplingParams(
                    n=len(unit),
                    seed=first.seed,
                    temperature=sampling.temperature,
                    top_p=sampling.top_p,
                    max_tokens=first.limit(sampling),
                    min_tokens=first.min_tokens,
                    stop=list(first.stop) or None,
                )
            except Exception as exc:
                error = f"vLLM rejected the sampling parameters (max_tokens {first.limit(sampling)}, min_tokens {first.min_tokens}): "
                error += f"{type(exc).__name__}: {exc}"
                yield from (Completion(r.key, None, "error", len(ids), 0, error[:500]) for r in unit)
                continue
            ready.append((unit, ids, params))
        if not ready:
            return
        batch = [(unit, ids) for unit, ids, _ in ready]
        prompts = [TokensPrompt(prompt_token_ids=ids) for _, ids in batch]
        params = [p for _, _, p in ready]
        try:
            outputs = self.engine.generate(prompts, params, use_tqdm=False)
        except Exception as exc:  # the engine failed this batch: record it, let a re-run retry it
            log.exception("vLLM engine failed a batch of %d prompts", len(batch))
            for unit, ids in batch:
                yield from (
                    Completion(r.key, None, "error", len(ids), 0, f"{type(exc).__name__}: {exc}"[:500], retryable=True) for r in unit
                )
            return
        for (unit, ids), out in zip(batch, outputs):
            samples = sorted(out.outputs, key=lambda o: o.index)
            for j, req in enumerate(unit):
                if j >= len(samples):
                    yield Completion(req.key, None, "error", len(ids), 0, "engine returned no output", retryable=True)
                    continue
                o = samples[j]
                yield Completion(
                    key=req.key,
                    text=o.text,
                    finish_reason=o.finish_reason or "missing",
                    prompt_tokens=len(ids),
                    completion_tokens=len(o.token_ids),
                )
