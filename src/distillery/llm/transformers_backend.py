"""In-process generation with transformers: CPU for the tiny smoke-test models, GPU otherwise."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from distillery.config import LLM, Sampling
from distillery.keys import derive_seed
from distillery.llm import Completion, Request
from distillery.llm.loading import load_causal_lm, load_tokenizer

log = logging.getLogger(__name__)


class TransformersBackend:
    def __init__(self, cfg: LLM):
        self.cfg = cfg
        self.tokenizer = load_tokenizer(cfg.model, cfg.revision)
        self.tokenizer.padding_side = "left"  # decoder-only batches pad on the left
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = load_causal_lm(cfg.model, cfg.revision, cfg.dtype, cfg.device)
        self.context = int(getattr(self.model.config, "max_position_embeddings", 0) or 1 << 30)
        self.stop_ids = _stop_token_ids(self.model, self.tokenizer)

    def close(self) -> None:
        del self.model

    def generate(self, requests: Iterable[Request], sampling: Sampling) -> Iterator[Completion]:
        ready: list[tuple[Request, list[int]]] = []
        for req in requests:
            text = self.tokenizer.apply_chat_template(req.chat(), tokenize=False, add_generation_prompt=True)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if not any(c.strip() for _, c in req.messages):
                yield Completion(req.key, None, "error", len(ids), 0, "empty prompt")
            elif len(ids) >= self.context:
                yield Completion(
                    req.key, None, "error", len(ids), 0, f"prompt of {len(ids)} tokens does not fit the model's context of {self.context}"
                )
            else:
                ready.append((req, ids))
        # Similar lengths together: less padding per batch.
        ready.sort(key=lambda item: len(item[1]))
        for start in range(0, len(ready), self.cfg.batch_size):
            yield from self._batch(ready[start : start + self.cfg.batch_size], sampling)

    def _batch(self, batch: list[tuple[Request, list[int]]], sampling: Sampling) -> Iterator[Completion]:
        import torch

        longest = max(len(ids) for _, ids in batch)
        max_new = min(sampling.max_new_tokens, self.context - longest)
        enc = self.tokenizer.pad({"input_ids": [ids for _, ids in batch]}, return_tensors="pt").to(self.model.device)
        # One seed per batch, derived from its requests: the same batch always samples the same tokens.
        torch.manual_seed(derive_seed(batch[0][0].seed, *[r.key for r, _ in batch]))
        greedy = sampling.temperature == 0
        with torch.no_grad():
            out = self.model.generate(
                **enc,
                max_new_tokens=max_new,
                do_sample=not greedy,
                temperature=None if greedy else sampling.temperature,
                top_p=None if greedy else sampling.top_p,
                top_k=None if greedy else 0,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.stop_ids,
            )
        new_tokens = out[:, enc["input_ids"].shape[1] :].tolist()
        for (req, ids), toks in zip(batch, new_tokens):
            stop_at = next((i for i, t in enumerate(toks) if t in self.stop_ids), None)
            used = toks if stop_at is None else toks[:stop_at]
            # Trailing pads after a stop are not generated tokens.
            text = self.tokenizer.decode(used, skip_special_tokens=True)
            yield Completion(
                key=req.key,
                text=text,
                finish_reason="stop" if stop_at is not None else "length",
                prompt_tokens=len(ids),
                completion_tokens=len(used) + (1 if stop_at is not None else 0),
            )


def _stop_token_ids(model, tokenizer) -> list[int]:
    ids = set()
    gen_eos = getattr(model.generation_config, "eos_token_id", None)
    for value in (gen_eos, tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif value:
            ids.update(value)
    return sorted(ids)
