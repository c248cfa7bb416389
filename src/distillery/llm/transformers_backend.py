"""In-process generation with transformers: CPU for the tiny smoke-test models, GPU otherwise."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from distillery.config.base import LLM, Sampling
from distillery.keys import derive_seed
from distillery.llm import Completion, Request, request_problem
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
            if req.prompt_ids is not None:
                ids = list(req.prompt_ids)  # raw continuation: the ids are the prompt
            else:
                text = self.tokenizer.apply_chat_template(req.chat(), tokenize=False, add_generation_prompt=True)
                ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            problem = request_problem(req, sampling)
            if problem is not None:
                yield Completion(req.key, None, "error", len(ids), 0, problem)
            elif not any(c.strip() for _, c in req.messages):
                yield Completion(req.key, None, "error", len(ids), 0, "empty prompt")
            elif len(ids) >= self.context:
                yield Completion(
                    req.key, None, "error", len(ids), 0, f"prompt of {len(ids)} tokens does not fit the model's context of {self.context}"
                )
            else:
                ready.append((req, ids))
        # Similar lengths together: less padding per batch; one stop rule per batch.
        ready.sort(key=lambda item: (item[0].stop, item[0].min_tokens, len(item[1])))
        batches: list[list[tuple[Request, list[int]]]] = []
        for item in ready:
            last = batches[-1] if batches else None
            if last and len(last) < self.cfg.batch_size and (last[0][0].stop, last[0][0].min_tokens) == (item[0].stop, item[0].min_tokens):
                last.append(item)
            else:
                batches.append([item])
        for batch in batches:
            yield from self._batch(batch, sampling)

    def _batch(self, batch: list[tuple[Request, list[int]]], sampling: Sampling) -> Iterator[Completion]:
        import torch

        longest = max(len(ids) for _, ids in batch)
        max_new = min(max(r.limit(sampling) for r, _ in batch), self.context - longest)
        first = batch[0][0]
        stops = {"stop_strings": list(first.stop), "tokenizer": self.tokenizer} if first.stop else {}
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
                min_new_tokens=first.min_tokens or None,
                **stops,
            )
        new_tokens = out[:, enc["input_ids"].shape[1] :].tolist()
        for (req, ids), toks in zip(batch, new_tokens):
            toks = toks[: req.limit(sampling)]  # a batch generates to its longest limit; each keeps its own
            stop_at = next((i for i, t in enumerate(toks) if t in self.stop_ids), None)
            used = toks if stop_at is None else toks[:stop_at]
            # Trailing pads after a stop are not generated tokens.
            text = self.tokenizer.decode(used, skip_special_tokens=True)
            tokens = len(used) + (1 if stop_at is not None else 0)
            if req.stop:
                cut = self._first_stop(used, req.stop)
                if cut is not None:  # the reply ends before its stop string, as servers return it
                    text, tokens, stop_at = cut[0], cut[1], cut[1]
            yield Completion(
                key=req.key,
                text=text,
                finish_reason="stop" if stop_at is not None else "length",
                prompt_tokens=len(ids),
                completion_tokens=tokens,
            )

    def _first_stop(self, toks: list[int], stop: tuple[str, ...]) -> tuple[str, int] | None:
        """(text before the first stop string, tokens generated up to the one that completed it)."""
        text = self.tokenizer.decode(toks, skip_special_tokens=True)
        at = min((i for i in (text.find(s) for s in stop) if i >= 0), default=None)
        if at is None:
            return None
        lo, hi = 1, len(toks)  # the fewest tokens whose text contains a stop string (binary search: it only grows)
        while lo < hi:
            mid = (lo + hi) // 2
            if any(s in self.tokenizer.decode(toks[:mid], skip_special_tokens=True) for s in stop):
                hi = mid
            else:
                lo = mid + 1
        return text[:at], lo


def _stop_token_ids(model, tokenizer) -> list[int]:
    ids = set()
    gen_eos = getattr(model.generation_config, "eos_token_id", None)
    for value in (gen_eos, tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif value:
            ids.update(value)
    return sorted(ids)
