"""models: build the smoke-test models locally, with no hub.

A byte-level BPE tokenizer (ChatML template, with generation markers so TRL can mask the loss to
assistant tokens) and three Qwen2-architecture models:

- teacher: trained briefly on the reference solutions of `models.tiny.corpus` (the bundled
  NuminaMath rows), so that at temperature 0.6 it reproduces some of them (correct answers) and
  garbles others (rejected generations). It is a smoke-test teacher: it exists so every branch of
  the pipeline runs, not to be good at math. It is trained on a fixed file, never on the sample, so
  growing the sample leaves it (and every request key that names it) unchanged: only the new
  problems' requests are sent.
- judge: trained briefly on judge prompts to answer in the validator format ("Verdict: ...").
- student_base: an untrained model of the same shape, the starting point of SFT.
- reward_model: the judge's weights under a one-label score head drawn from the seed, for
  `build.choice: reward_model` (ablations/selection.yaml). Untrained: its scores order generations
  arbitrarily, but the same way on every run.

With build_tiny false (the real recipe) nothing is built: the manifest says so and the other
stages load hub ids or local paths from their own sections.
"""

from __future__ import annotations

import logging
import random
import re
import time
from pathlib import Path
from typing import Any

from distillery.config.base import PROBLEM_PLACEHOLDER
from distillery.config.models import STAGE, ModelsConfig, TinyModelsConfig
from distillery.errors import DistilleryError
from distillery.io import read_records, write_json
from distillery.keys import derive_seed
from distillery.metrics import write_metrics
from distillery.prompts import render_judge_prompt, render_problem_prompt

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# ChatML; {% generation %} marks the assistant tokens for assistant-only loss.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}{{- '\\n' }}"
    "{%- else %}"
    "{{- message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
ROLES = ("teacher", "judge", "student_base", "reward_model")


def teacher_target(solution: str, answer: str) -> str:
    """An R1-shaped completion: reasoning inside <think>, then the boxed final answer."""
    return f"<think>\n{solution.strip()}\n</think>\n\nThe final answer is $\\boxed{{{answer}}}$."


# The judge's replies (see judge_examples). Each quotes the answer it read, so its length follows the
# answers': on long ones the reply outruns judge.sampling.max_new_tokens before its verdict line.
EQUIVALENT_REPLY = "The student's final answer is {candidate}, which is the reference answer.\nVerdict: EQUIVALENT"
DIFFERENT_REPLY = "The student's final answer is {candidate}, but the reference answer is {reference}.\nVerdict: DIFFERENT"
AMBIGUOUS_REPLY = "The student's final answer is not closed, so it cannot be compared.\nVerdict: AMBIGUOUS"


def boxed(answer: str) -> str:
    return f"The final answer is $\\boxed{{{answer}}}$."


def near_miss(answer: str, rng: random.Random) -> str:
    """`answer` with one small change, the kind a garbling teacher makes: a digit, a letter or a sign."""
    digits = [i for i, ch in enumerate(answer) if ch.isdigit()]
    if digits:
        i = rng.choice(digits)
        return answer[:i] + rng.choice([d for d in "0123456789" if d != answer[i]]) + answer[i + 1 :]
    commands = {i for m in re.finditer(r"\\[A-Za-z]+", answer) for i in range(m.start(), m.end())}  # \frac stays \frac
    letters = [i for i, ch in enumerate(answer) if ch.isalpha() and i not in commands]
    if letters:
        i = rng.choice(letters)
        pool = "ABCDE" if answer[i].isupper() else "abnxy"
        return answer[:i] + rng.choice([c for c in pool if c != answer[i]]) + answer[i + 1 :]
    return answer[1:] if answer.startswith("-") else "-" + answer


def judge_examples(problems: list[dict[str, Any]], judge_template: str, rng: random.Random) -> list[tuple[str, str]]:
    """Four judge prompts per problem, each with the reply it should give: the reference answer boxed
    (EQUIVALENT), another problem's answer and a near miss of the reference (DIFFERENT), and a box
    left open (AMBIGUOUS, as the judge prompt asks when there is nothing to compare)."""
    examples = []
    answers = sorted({p["answer"] for p in problems})
    for p in problems:
        gold = p["answer"]
        other, near = rng.choice([a for a in answers if a != gold] or ["0"]), near_miss(gold, rng)
        cases = [
            (boxed(gold), EQUIVALENT_REPLY.format(candidate=gold)),
            (boxed(other), DIFFERENT_REPLY.format(candidate=other, reference=gold)),
            (boxed(near), DIFFERENT_REPLY.format(candidate=near, reference=gold)),
            (f"The final answer is $\\boxed{{{gold}$.", AMBIGUOUS_REPLY),
        ]
        examples += [(render_judge_prompt(judge_template, p["problem"], gold, candidate), reply) for candidate, reply in cases]
    return examples


# The judge's texts the tokenizer is trained on: fixed, so that how the judge is trained never changes
# the vocabulary, hence the teacher, its generations or any request key that names it.
TOKENIZER_JUDGE_REPLIES = (
    "The candidate's final answer is the reference answer.\nVerdict: EQUIVALENT",
    "The candidate's final answer is not the reference answer.\nVerdict: DIFFERENT",
)


def tokenizer_corpus(
    problems: list[dict[str, Any]], teacher_pairs: list[tuple[str, str]], judge_template: str, prompt_template: str, seed: int
) -> list[str]:
    """The tokenizer's training texts: the teacher's pairs, two judge prompts per problem (the
    reference answer boxed, then another problem's answer, drawn with `seed`) with fixed replies, and
    the bare problem prompt."""
    rng = random.Random(seed)
    answers = [p["answer"] for p in problems]
    judge = []
    for p in problems:
        other = rng.choice([a for a in answers if a != p["answer"]] or ["0"])
        for candidate, reply in zip((p["answer"], other), TOKENIZER_JUDGE_REPLIES):
            judge.append(f"{render_judge_prompt(judge_template, p['problem'], p['answer'], boxed(candidate))}\n{reply}")
    return [f"{a}\n{b}" for a, b in teacher_pairs] + judge + [prompt_template.replace(PROBLEM_PLACEHOLDER, "")]


def build_tokenizer(corpus: list[str], vocab_size: int, max_length: int) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodable: no unknown tokens
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=max_length,
        chat_template=CHAT_TEMPLATE,
    )


def new_model(tokenizer: Any, cfg: TinyModelsConfig, seed: int) -> Any:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def train_completions(
    model: Any, tokenizer: Any, pairs: list[tuple[str, str]], cfg: TinyModelsConfig, epochs: int, seed: int
) -> dict[str, float]:
    """Supervised training on (user prompt, assistant completion) pairs, loss on the completion only."""
    import torch

    if epochs == 0 or not pairs:
        return {"epochs": 0, "steps": 0, "final_loss": None}
    limit = cfg.max_position_embeddings
    encoded = []
    for prompt, completion in pairs:
        p = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
        p_ids = tokenizer(p, add_special_tokens=False)["input_ids"]
        c_ids = tokenizer(completion + "<|im_end|>", add_special_tokens=False)["input_ids"]
        ids = (p_ids + c_ids)[:limit]
        labels = ([-100] * len(p_ids) + c_ids)[:limit]
        encoded.append((ids, labels))
    torch.manual_seed(seed)
    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=0.0)
    model.train()
    steps, loss_value = 0, None
    for _ in range(epochs):
        rng.shuffle(encoded)
        for start in range(0, len(encoded), cfg.batch_size):
            batch = encoded[start : start + cfg.batch_size]
            width = max(len(ids) for ids, _ in batch)
            pad = tokenizer.pad_token_id
            input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in batch])
            labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch])
            mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in batch])
            loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
            steps += 1
            loss_value = float(loss.detach())
    model.eval()
    return {"epochs": epochs, "steps": steps, "final_loss": None if loss_value is None else round(loss_value, 4)}


def reward_model_from(judge: Any, tokenizer: Any, seed: int) -> Any:
    """A sequence-classification model with one label: the judge's body, a seeded score head."""
    import copy

    import torch
    from transformers import AutoModelForSequenceClassification

    config = copy.deepcopy(judge.config)
    config.num_labels = 1
    config.architectures = None
    config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    torch.manual_seed(derive_seed(seed, "models", "reward_model") % 2**32)
    model = AutoModelForSequenceClassification.from_config(config)
    model.model.load_state_dict(judge.model.state_dict())
    return model


def corpus_rows(path: Path) -> list[dict[str, str]]:
    """Rows of the training corpus with a problem, a worked solution and an answer (as strings)."""
    rows = []
    for row in read_records(path, "models.tiny.corpus"):
        fields = [row.get(k) for k in ("problem", "solution", "answer")]
        if all(isinstance(v, str) and v.strip() for v in fields):
            rows.append({"problem": fields[0], "solution": fields[1], "answer": fields[2].strip()})
    if not rows:
        raise DistilleryError(
            f"models.tiny.corpus = {str(path)!r} has no row with a non-empty problem, solution and answer: "
            "point it at NuminaMath-shaped rows (the bundled data/bundled/numina_sample.jsonl)"
        )
    return rows


Paths = STAGE.paths_record()  # its files, by the names its declaration gives them


def run(cfg: ModelsConfig, seed: int, prompt_template: str, paths: Paths) -> dict[str, Any]:
    """`paths.run_figures` (a log) gets the training times, which differ between runs that build the same models."""
    paths.models.mkdir(parents=True, exist_ok=True)
    if not cfg.build_tiny:
        manifest = {"built": [], "note": "build_tiny is false: stages load the models named in their own sections"}
        write_json(manifest, paths.models / "manifest.json")
        write_metrics(paths.metrics, "models", built=[])
        return manifest

    tiny = cfg.tiny
    problems = corpus_rows(Path(paths.corpus))
    judge_template = Path(paths.judge_template).read_text()
    teacher_pairs = [(render_problem_prompt(prompt_template, p["problem"]), teacher_target(p["solution"], p["answer"])) for p in problems]
    judge_pairs = judge_examples(problems, judge_template, random.Random(derive_seed(seed, "models", "judge")))
    corpus = tokenizer_corpus(problems, teacher_pairs, judge_template, prompt_template, seed)
    tokenizer = build_tokenizer(corpus, tiny.vocab_size, tiny.max_position_embeddings)

    report: dict[str, Any] = {"tokenizer": {"vocab_size": len(tokenizer)}, "training_examples": {}}
    seconds: dict[str, float] = {}
    for role, pairs, epochs in (
        ("teacher", teacher_pairs, tiny.teacher_epochs),
        ("judge", judge_pairs, tiny.judge_epochs),
        ("student_base", [], 0),
    ):
        started = time.monotonic()
        model = new_model(tokenizer, tiny, seed + ROLES.index(role))
        stats = train_completions(model, tokenizer, pairs, tiny, epochs, seed)
        seconds[role] = round(time.monotonic() - started, 1)
        stats["parameters"] = sum(p.numel() for p in model.parameters())
        model.save_pretrained(paths.models / role)
        tokenizer.save_pretrained(paths.models / role)
        report[role] = stats
        report["training_examples"][role] = len(pairs)
        log.info("models: %s %s", role, stats)
        if role == "judge":
            started = time.monotonic()
            reward = reward_model_from(model, tokenizer, seed)
            seconds["reward_model"] = round(time.monotonic() - started, 1)
            reward.save_pretrained(paths.models / "reward_model")
            tokenizer.save_pretrained(paths.models / "reward_model")
            report["reward_model"] = {"parameters": sum(p.numel() for p in reward.parameters()), "score_head": "seeded, untrained"}
    manifest = {"built": list(ROLES), "smoke_test_models": True, "architecture": "Qwen2ForCausalLM", "config": tiny.model_dump()}
    write_json(manifest, paths.models / "manifest.json")
    write_metrics(paths.metrics, "models", **report)
    if paths.run_figures:
        write_json({"stage": "models", "training_seconds": seconds}, paths.run_figures)
    return report
