"""A reward model's score for (problem, generation): a sequence-classification model with one label
(transformers' AutoModelForSequenceClassification), run in batches, each score journaled under its
own key (the model and its contents, the conversation, the length limit), so a re-build or a grown
sample scores only what is new. OpenR1 tried such a choice among correct generations and found it no
better than random; `build.choice: reward_model` against `random` is that ablation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from distillery.config.build import RewardModel
from distillery.errors import DistilleryError
from distillery.journal import ShardJournal, journal_dir
from distillery.keys import model_fingerprint, stable_hash

log = logging.getLogger(__name__)


def score_key(cfg: RewardModel, problem: str, generation: str) -> str:
    ident = {
        "reward_model": cfg.model,
        "revision": cfg.revision,
        "fingerprint": model_fingerprint(cfg.model or ""),
        "max_length": cfg.max_length,
        "messages": [{"role": "user", "content": problem}, {"role": "assistant", "content": generation}],
    }
    return stable_hash(ident)


class Scorer:
    def __init__(self, cfg: RewardModel):
        import torch
        from transformers import AutoModelForSequenceClassification

        from distillery.llm.loading import _require_local, load_tokenizer

        if not cfg.model:
            raise DistilleryError("build.choice: reward_model needs build.reward_model.model (a hub id or a local directory)")
        _require_local(cfg.model)
        self.cfg = cfg
        self.tokenizer = load_tokenizer(cfg.model, cfg.revision)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "right"
        try:
            self.model = AutoModelForSequenceClassification.from_pretrained(cfg.model, revision=cfg.revision, num_labels=1)
        except (OSError, ValueError) as exc:
            raise DistilleryError(f"build.reward_model.model {cfg.model!r} is not a sequence-classification model: {exc}") from None
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.device = "cuda" if cfg.device == "auto" and torch.cuda.is_available() else "cpu"
        self.model.to(self.device).eval()

    def text(self, problem: str, generation: str) -> str:
        chat = [{"role": "user", "content": problem}, {"role": "assistant", "content": generation}]
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(chat, tokenize=False)
        return f"{problem}\n\n{generation}"

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        import torch

        out: list[float] = []
        for start in range(0, len(pairs), self.cfg.batch_size):
            batch = [self.text(p, g) for p, g in pairs[start : start + self.cfg.batch_size]]
            enc = self.tokenizer(batch, return_tensors="pt", padding=True, truncation=True, max_length=self.cfg.max_length)
            with torch.no_grad():
                logits = self.model(**{k: v.to(self.device) for k, v in enc.items()}).logits
            out += [round(float(x), 6) for x in logits[:, 0].float().cpu()]
        return out


# The loaded model, per configuration: build calls `scores` once per batch of generations, and a
# model loaded once a batch would cost more than the scoring.
_SCORERS: dict[str, Scorer] = {}


def scorer(cfg: RewardModel) -> Scorer:
    key = f"{cfg.model_dump_json()} {model_fingerprint(cfg.model or '')}"  # a model rebuilt in place is another model
    if key not in _SCORERS:
        _SCORERS.clear()  # one model at a time
        _SCORERS[key] = Scorer(cfg)
    return _SCORERS[key]


def scores(cfg: RewardModel, pairs: Sequence[tuple[str, str]]) -> list[float]:
    """The score of each (problem, generation): from the journal when it is there, else computed
    (and journaled at once)."""
    keys = [score_key(cfg, p, g) for p, g in pairs]
    with ShardJournal(journal_dir("reward_model"), 0, 1) as jn:
        done, _ = jn.load(keys)
        todo, seen = [], set(done)
        for i, k in enumerate(keys):  # each distinct pair scored once
            if k not in seen:
                seen.add(k)
                todo.append(i)
        log.info("reward model: %d scores, %d from the journal, %d to compute", len(set(keys)), len(done), len(todo))
        if todo:
            model = scorer(cfg)
            for start in range(0, len(todo), cfg.batch_size):
                part = todo[start : start + cfg.batch_size]
                for i, s in zip(part, model([pairs[i] for i in part])):
                    rec = {"key": keys[i], "score": s}
                    jn.append(rec)
                    done[keys[i]] = rec
    return [done[k]["score"] for k in keys]
