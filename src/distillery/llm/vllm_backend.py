"""vLLM's offline engine, for teachers that fit one node. Imported only when selected, because
vLLM lives in its own environment (envs/generate.yaml)."""

from __future__ import annotations

from typing import Iterable, Iterator

from distillery.config import LLM, Sampling
from distillery.errors import DistilleryError
from distillery.llm import Completion, Request


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
        )

    def close(self) -> None:
        del self.engine

    def generate(self, requests: Iterable[Request], sampling: Sampling) -> Iterator[Completion]:
        from vllm import SamplingParams

        ready = []
        for req in requests:
            if not any(c.strip() for _, c in req.messages):
                yield Completion(req.key, None, "error", 0, 0, "empty prompt")
            else:
                ready.append(req)
        if not ready:
            return
        params = [
            SamplingParams(n=1, seed=r.seed, temperature=sampling.temperature, top_p=sampling.top_p, max_tokens=sampling.max_new_tokens)
            for r in ready
        ]
        outputs = self.engine.chat([r.chat() for r in ready], params, use_tqdm=False)
        for req, out in zip(ready, outputs):
            if not out.outputs:
                yield Completion(req.key, None, "error", len(out.prompt_token_ids or []), 0, "engine returned no output")
                continue
            o = out.outputs[0]
            yield Completion(
                key=req.key,
                text=o.text,
                finish_reason=o.finish_reason or "missing",
                prompt_tokens=len(out.prompt_token_ids or []),
                completion_tokens=len(o.token_ids),
            )
