"""Pure adapters from one row of a published reasoning corpus to one record (`Mapped`) or one
rejection (`Rejected`). No I/O: the ingest stage reads the files and calls `map_row` per row.

Every trace comes out in this project's generation format (DeepSeek-R1 style):
`<think>\\n{reasoning}\\n</think>\\n\\n{final solution}`, so verify reads its answer from the text
after `</think>` exactly as it does for the project's own generations.

Rules shared by every adapter:
- Rows are untrusted data: nothing in them is executed or eval'd (s1K's `metadata` is a Python repr
  string and is ignored, never parsed).
- A bad row is a `Rejected`, never an exception; `map_row` raises only for an unknown layout.
- A model's own final answer (OpenThoughts' solution block, Dolphin's `answer`, s1K's `attempt`) is
  never the gold: checking a trace against itself would accept everything.
- Gold where the corpus has no gold column: the last `\\boxed{}` (braces matched) of the corpus's
  reference solution, else the whole reference solution when it is short (<= 64 characters after
  strip, one line: s1K's AIME-style "128"); origin `reference_solution`. Otherwise no gold.
- Corpora that publish only finished traces (a closed thought and a final solution) get
  finish_reason "stop": verify treats only "stop" as complete, and these traces are complete.

What each adapter cannot map (the row is kept without it, or rejected where said):
- openr1_math: NuminaMath-1.5's placeholder answers "proof" and "notfound" are not golds ("proof": no
  gold at all; "notfound"/empty: the reference-solution fallback). `correctness_*`,
  `is_reasoning_complete`, `correctness_count`, `messages` and `uuid` are not carried (verify
  re-checks the traces itself). Generations are kept verbatim, so one without `</think>` stays
  unanswerable; an empty generation is kept (verify says no_answer) unless all are empty (no_trace).
- openthoughts (`default` config): no gold, no reference solution, no source, no problem type: every
  row maps with answer None (ingest then rejects it as no_gold). The `metadata` config's
  `ground_truth_solution` is a different layout, not read here. Code and science rows have no boxed
  answer. The `system` prompt is dropped; the user turn keeps its "Return your final response
  within \\boxed{}." prefix.
- bespoke_stratos: as openthoughts (no gold column; code rows have no boxed answer).
- dolphin_r1: no gold (`answer` is the teacher's final response); no source or problem type; the
  teacher is only known where a row has a `model` column (not confirmed in the published files),
  else None. Only the first user message becomes the problem (multi-turn context is dropped).
- limo: `solution` is the trace itself (reasoning and final answer in one text), so it is not a
  reference solution (`solution` None). It is split at its last "**Final Answer**" heading, else
  before the paragraph holding its last `\\boxed{}`; a solution with neither is malformed. The teacher
  is not recorded per row (model None). No source or problem type.
- s1k: the only trace is `thinking_trajectories[0]` + `attempt` (Gemini); `cot` is always null and
  ignored. Science and crossword rows usually have a long reference solution without a box: no gold.
- s1k_1_1: the DeepSeek-R1 trace only; the Gemini trace and both `*_grade*` columns are not carried.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LAYOUTS: tuple[str, ...] = ("openr1_math", "openthoughts", "bespoke_stratos", "dolphin_r1", "limo", "s1k", "s1k_1_1")
GOLD_ORIGINS = ("gold", "reference_solution", "none")
# missing_problem: no usable problem text (absent, not a string, or blank).
# no_trace: no usable reasoning (absent, or blank; for OpenR1: no generation or all blank).
# malformed_trace: a trace is there but cannot be put in the think format (delimiters missing or
#   out of order, no final solution, stray think tags, wrong types, mismatched OpenR1 columns).
# not_a_row: the row is not a JSON object.
REJECT_REASONS = ("missing_problem", "no_trace", "malformed_trace", "not_a_row")

DEEPSEEK_R1 = "deepseek-ai/DeepSeek-R1"
GEMINI_FLASH_THINKING = "google/gemini-2.0-flash-thinking-exp"
SHORT_REFERENCE_CHARS = 64  # a reference solution this short (one line) is its own answer
NUMINA_PLACEHOLDERS = ("proof", "notfound")  # NuminaMath-1.5 `answer` values that are not answers


@dataclass(frozen=True)
class Trace:
    text: str  # "<think>\n{reasoning}\n</think>\n\n{final solution}"
    finish_reason: str | None  # "stop" / "length" where the corpus records it; "stop" for finished-only corpora
    model: str | None  # the teacher, where the corpus or its card says; None if unknown


@dataclass(frozen=True)
class Mapped:
    problem: str
    answer: str | None  # the gold verify compares with (None: no gold)
    answer_origin: str  # one of GOLD_ORIGINS
    solution: str | None  # the corpus's reference solution (never a model trace)
    problem_type: str | None
    question_type: str | None
    source: str | None  # the corpus's own per-row source label
    traces: tuple[Trace, ...]


@dataclass(frozen=True)
class Rejected:
    reason: str  # one of REJECT_REASONS
    detail: str  # which field, what was wrong


# --- small helpers -------------------------------------------------------------------------------

_BOXED = re.compile(r"\\boxed\s*\{")
_ESCAPED = re.compile(r"\\[{}\\]")  # \{ \} are literal set braces and \\ a line break: not grouping


def _closing(text: str, start: int) -> int | None:
    """Index of the `}` closing the group opened just before `start`, or None if it never closes."""
    depth, i = 1, start
    while i < len(text):
        if _ESCAPED.match(text, i):
            i += 2
            continue
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def boxed_spans(text: str) -> list[tuple[int, str]]:
    """(start, stripped contents) of every complete `\\boxed{...}`, braces matched, in order."""
    found = []
    for m in _BOXED.finditer(text):
        end = _closing(text, m.end())
        if end is not None:
            found.append((m.start(), text[m.end() : end].strip()))
    return found


def last_boxed(text: str) -> str | None:
    """Contents of the last complete `\\boxed{...}`, or None."""
    spans = boxed_spans(text)
    return spans[-1][1] if spans else None


def think_text(reasoning: str, final: str) -> str:
    return f"<think>\n{reasoning.strip()}\n</think>\n\n{final.strip()}"


def _text(value: Any) -> str | None:
    """A non-blank string, else None."""
    return value if isinstance(value, str) and value.strip() else None


def _label(value: Any) -> str | None:
    """An optional string column: None unless a non-blank string."""
    return value.strip() if isinstance(value, str) and value.strip() else None


def _problem(row: dict, column: str) -> str | Rejected:
    value = row.get(column)
    if _text(value) is None:
        what = "missing" if value is None else f"a {type(value).__name__}" if not isinstance(value, str) else "blank"
        return Rejected("missing_problem", f"`{column}` is {what}")
    return value  # kept as published: the problem text is the dedupe and sampling key downstream


def reference_gold(solution: str | None) -> tuple[str | None, str]:
    """(answer, origin) from a reference solution: its last box, else the whole of a short one-line
    solution, else no gold."""
    if solution is None:
        return None, "none"
    spans = boxed_spans(solution)
    if spans:  # a solution that boxes its answer has no other: an empty last box is no gold
        return (spans[-1][1], "reference_solution") if spans[-1][1] else (None, "none")
    short = solution.strip()
    if short and len(short) <= SHORT_REFERENCE_CHARS and "\n" not in short:
        return short, "reference_solution"
    return None, "none"


def _stray_tag(*parts: str) -> bool:
    return any("<think>" in p or "</think>" in p for p in parts)


def _single_trace(reasoning: Any, final: Any, field_r: str, field_f: str, model: str | None) -> Trace | Rejected:
    """A trace from separate reasoning and final-solution columns (a finished trace: "stop")."""
    if reasoning is not None and not isinstance(reasoning, str):
        return Rejected("malformed_trace", f"`{field_r}` is a {type(reasoning).__name__}, not a string")
    if _text(reasoning) is None:
        return Rejected("no_trace", f"`{field_r}` is {'missing' if reasoning is None else 'blank'}")
    if _text(final) is None:
        what = "missing" if final is None else "blank" if isinstance(final, str) else f"a {type(final).__name__}"
        return Rejected("malformed_trace", f"`{field_f}` (the final solution) is {what}")
    if _stray_tag(reasoning, final):
        return Rejected("malformed_trace", f"`{field_r}` or `{field_f}` already holds a <think> tag")
    return Trace(think_text(reasoning, final), "stop", model)


# --- open-r1/OpenR1-Math-220k ----------------------------------------------------------------------
# Confirmed (dataset card YAML, huggingface.co/datasets/open-r1/OpenR1-Math-220k README at 075afe0,
# configs default/extended/all): problem, solution, answer, problem_type, question_type, source, uuid
# (strings); is_reasoning_complete, correctness_math_verify, correctness_llama (sequence bool);
# generations, finish_reasons (sequence string); correctness_count (int64); messages (list of
# {content, role}). Card: "two to four reasoning traces generated by DeepSeek R1" for NuminaMath 1.5
# problems; correctness_llama is null where the Llama judge was not run. Generations hold the full
# R1 output, <think> included. "proof"/"notfound" answers: NuminaMath-1.5's placeholders
# (huggingface.co/datasets/yentinglin/NuminaMath-1.5-Verifiable card; AI-MO/NuminaMath-1.5
# discussion #1).


def openr1_math(row: dict) -> Mapped | Rejected:
    problem = _problem(row, "problem")
    if isinstance(problem, Rejected):
        return problem
    generations, reasons = row.get("generations"), row.get("finish_reasons")
    if generations is None or generations == []:
        return Rejected("no_trace", "`generations` is missing or empty")
    if not isinstance(generations, list) or not all(isinstance(g, str) for g in generations):
        return Rejected("malformed_trace", "`generations` is not a list of strings")
    if reasons is None:
        reasons = [None] * len(generations)  # no finish reasons published: unknown, not "stop"
    if not isinstance(reasons, list) or len(reasons) != len(generations):
        return Rejected("malformed_trace", f"`finish_reasons` does not pair with the {len(generations)} generations")
    if not all(r is None or isinstance(r, str) for r in reasons):
        return Rejected("malformed_trace", "`finish_reasons` holds a value that is neither a string nor null")
    if not any(g.strip() for g in generations):
        return Rejected("no_trace", f"all {len(generations)} generations are blank")
    solution = _label(row.get("solution"))
    gold = _label(row.get("answer"))
    if gold == "proof":
        answer, origin = None, "none"  # a proof has no final answer to compare, whatever the solution boxes
    elif gold is not None and gold not in NUMINA_PLACEHOLDERS:
        answer, origin = gold, "gold"
    else:
        answer, origin = reference_gold(solution)
    return Mapped(
        problem=problem,
        answer=answer,
        answer_origin=origin,
        solution=solution,
        problem_type=_label(row.get("problem_type")),
        question_type=_label(row.get("question_type")),
        source=_label(row.get("source")),
        traces=tuple(Trace(g, r, DEEPSEEK_R1) for g, r in zip(generations, reasons)),  # verbatim: they hold <think>
    )


# --- open-thoughts/OpenThoughts-114k and bespokelabs/Bespoke-Stratos-17k --------------------------
# Confirmed: OpenThoughts-114k `default` has only `system` and `conversations` (open-r1/OpenThoughts-
# 114k-math card: "only 2 fields: system and conversations ... does not contain the original solution
# label"; math prompts are prefixed "Return your final response within \boxed{}."). Turns are
# {from: "user"/"assistant", value}; the assistant value is built as
# "<|begin_of_thought|>\n\n{reasoning}\n\n<|end_of_thought|>\n\n<|begin_of_solution|>\n\n{solution}
# \n\n<|end_of_solution|>" (open-thoughts generation code, e.g. map_numina_conversations, found with
# the code index). Bespoke-Stratos-17k: the same pipeline (card: "replicated and improved the
# Berkeley Sky-T1 data pipeline ... with DeepSeek-R1"; loaders read conversations[from=user/
# assistant].value and system). Both: teacher DeepSeek-R1 per their cards. "human"/"gpt" (ShareGPT
# names used by some re-uploads) are accepted as well.

_USER_FROM = ("user", "human")
_ASSISTANT_FROM = ("assistant", "gpt")
_THOUGHT = ("<|begin_of_thought|>", "<|end_of_thought|>")
_SOLUTION = ("<|begin_of_solution|>", "<|end_of_solution|>")


def _turn(turns: list, names: tuple[str, ...]) -> dict | None:
    return next((t for t in turns if isinstance(t, dict) and t.get("from") in names), None)


def split_delimited(value: str) -> tuple[str, str] | str:
    """(thought, solution) from a Sky-T1-style assistant value, or why it cannot be split."""
    begin_t, end_t = value.find(_THOUGHT[0]), value.find(_THOUGHT[1])
    begin_s, end_s = value.find(_SOLUTION[0]), value.rfind(_SOLUTION[1])
    missing = [d for d, at in zip((*_THOUGHT, *_SOLUTION), (begin_t, end_t, begin_s, end_s)) if at < 0]
    if missing:
        return f"missing {', '.join(missing)}"
    if not begin_t < end_t < begin_s < end_s:
        return "thought/solution delimiters out of order"
    thought = value[begin_t + len(_THOUGHT[0]) : end_t]
    solution = value[begin_s + len(_SOLUTION[0]) : end_s]
    return thought.strip(), solution.strip()


def _sharegpt(row: dict) -> Mapped | Rejected:
    turns = row.get("conversations")
    turns = turns if isinstance(turns, list) else []
    user = _turn(turns, _USER_FROM)
    if user is None:
        return Rejected("missing_problem", "`conversations` has no user turn")
    problem = _problem(user, "value")
    if isinstance(problem, Rejected):
        return Rejected("missing_problem", f"the user turn's {problem.detail}")
    assistant = _turn(turns, _ASSISTANT_FROM)
    if assistant is None:
        return Rejected("no_trace", "`conversations` has no assistant turn")
    value = assistant.get("value")
    if not isinstance(value, str) or not value.strip():
        return Rejected("no_trace", "the assistant turn's `value` is missing or blank")
    parts = split_delimited(value)
    if isinstance(parts, str):
        return Rejected("malformed_trace", f"assistant turn: {parts}")
    thought, solution = parts
    if not thought:
        return Rejected("no_trace", "the thought block is empty")
    if not solution:
        return Rejected("malformed_trace", "the solution block is empty")
    if _stray_tag(thought, solution):
        return Rejected("malformed_trace", "the assistant turn already holds a <think> tag")
    # The solution block is the teacher's own answer: never a gold. These configs have no gold column.
    return Mapped(problem, None, "none", None, None, None, None, (Trace(think_text(thought, solution), "stop", DEEPSEEK_R1),))


def openthoughts(row: dict) -> Mapped | Rejected:
    return _sharegpt(row)


def bespoke_stratos(row: dict) -> Mapped | Rejected:
    return _sharegpt(row)


# --- cognitivecomputations/dolphin-r1 (reasoning-deepseek, reasoning-flash) -----------------------
# Confirmed (card: configs reasoning-deepseek -> dolphin-r1-reasoning-deepseek.jsonl, reasoning-flash
# -> dolphin-r1-reasoning-flash.jsonl; "300k reasoning samples from DeepSeek-R1, 300k ... from Gemini
# 2.0 flash thinking"; readers in the code index use row["messages"] (role/content, a "system" role
# possible, first "user" message is the question), row["reasoning"] and row["answer"], the latter
# being the teacher's response, not a gold). A `model` column could not be confirmed from stored
# sources: used when a row has one, else None (the config, not the row, says which teacher).


def dolphin_r1(row: dict) -> Mapped | Rejected:
    messages = row.get("messages")
    messages = messages if isinstance(messages, list) else []
    user = next((m for m in messages if isinstance(m, dict) and m.get("role") == "user"), None)
    if user is None:
        return Rejected("missing_problem", "`messages` has no user message")
    problem = _problem(user, "content")
    if isinstance(problem, Rejected):
        return Rejected("missing_problem", f"the first user message's {problem.detail}")
    trace = _single_trace(row.get("reasoning"), row.get("answer"), "reasoning", "answer", _label(row.get("model")))
    if isinstance(trace, Rejected):
        return trace
    # `answer` is the teacher's final response: never a gold.
    return Mapped(problem, None, "none", None, None, None, None, (trace,))


# --- GAIR/LIMO -----------------------------------------------------------------------------------
# Confirmed: one file limo.jsonl (huggingface.co/datasets/GAIR/LIMO tree), 817 rows with features
# ['question', 'solution', 'answer'] (load_dataset("GAIR/LIMO") as printed in public conversion
# scripts; re-uploads' cards list all three as strings). `solution` is the long reasoning written by
# a model, `answer` the gold. The "**Final Answer**" heading R1-style solutions end with could not be
# confirmed for every row: hence the box fallback.

_FINAL_HEADING = re.compile(r"\*\*\s*Final Answer\s*\*\*", re.IGNORECASE)


def split_final(solution: str) -> tuple[str, str] | None:
    """(reasoning, final) of a one-text solution: at the last "**Final Answer**" heading, else before
    the paragraph holding the last box. None when the text has neither."""
    headings = list(_FINAL_HEADING.finditer(solution))
    if headings:
        at = headings[-1].start()
    else:
        spans = boxed_spans(solution)
        if not spans:
            return None
        at = solution.rfind("\n\n", 0, spans[-1][0])
        at = 0 if at < 0 else at
    reasoning, final = solution[:at].strip(), solution[at:].strip()
    return (reasoning, final) if reasoning and final else None


def limo(row: dict) -> Mapped | Rejected:
    problem = _problem(row, "question")
    if isinstance(problem, Rejected):
        return problem
    solution = row.get("solution")
    if solution is not None and not isinstance(solution, str):
        return Rejected("malformed_trace", f"`solution` is a {type(solution).__name__}, not a string")
    if _text(solution) is None:
        return Rejected("no_trace", f"`solution` is {'missing' if solution is None else 'blank'}")
    parts = split_final(solution)
    if parts is None:
        return Rejected("malformed_trace", "`solution` has no **Final Answer** heading and no \\boxed{} to split reasoning from answer")
    trace = _single_trace(*parts, "solution", "solution", None)
    if isinstance(trace, Rejected):
        return trace
    gold = row.get("answer")
    # A JSON reader may type an all-integer answer column as numbers.
    gold = str(gold) if isinstance(gold, int | float) and not isinstance(gold, bool) else _label(gold)
    origin = "gold" if gold else "none"
    return Mapped(problem, gold or None, origin, None, None, None, None, (trace,))


# --- simplescaling/s1K and simplescaling/s1K-1.1 -------------------------------------------------
# Confirmed s1K (dataset_info of simplescaling/data_ablation_* and s1K re-uploads, same schema):
# solution, question, cot_type, source_type, metadata (string), cot ('null' dtype),
# thinking_trajectories (sequence string), attempt. Traces: "Google Gemini Flash Thinking API"
# (s1 paper, arXiv 2501.19393; the API's model id is gemini-2.0-flash-thinking-exp).
# Confirmed s1K-1.1 (code index: Infini-AI-Lab/Multiverse data/collect_1k.py reads
# deepseek_thinking_trajectory/deepseek_attempt/gemini_*; column lists in several readers):
# solution, question, cot_type, source_type, metadata, gemini_thinking_trajectory, gemini_attempt,
# deepseek_thinking_trajectory, deepseek_attempt, gemini_grade, gemini_grade_reason, deepseek_grade,
# deepseek_grade_reason, all strings (one early revision typed the deepseek columns as sequences:
# a one-element list is accepted). cot_type is math/science/crossword: a subject, so it goes to
# problem_type (OpenR1's problem_type is a subject too); question_type stays None.


def _first(value: Any) -> Any:
    """The first element of a list column, or the value itself."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _s1(row: dict, reasoning_column: str, attempt_column: str, model: str) -> Mapped | Rejected:
    problem = _problem(row, "question")
    if isinstance(problem, Rejected):
        return problem
    reasoning = row.get(reasoning_column)
    if reasoning == []:
        return Rejected("no_trace", f"`{reasoning_column}` is an empty list")
    trace = _single_trace(_first(reasoning), row.get(attempt_column), reasoning_column, attempt_column, model)
    if isinstance(trace, Rejected):
        return trace
    solution = _label(row.get("solution"))
    answer, origin = reference_gold(solution)  # never from the attempt: that is the teacher's answer
    return Mapped(problem, answer, origin, solution, _label(row.get("cot_type")), None, _label(row.get("source_type")), (trace,))


def s1k(row: dict) -> Mapped | Rejected:
    return _s1(row, "thinking_trajectories", "attempt", GEMINI_FLASH_THINKING)


def s1k_1_1(row: dict) -> Mapped | Rejected:
    return _s1(row, "deepseek_thinking_trajectory", "deepseek_attempt", DEEPSEEK_R1)


ADAPTERS: dict[str, Callable[[dict], Mapped | Rejected]] = {
    "openr1_math": openr1_math,
    "openthoughts": openthoughts,
    "bespoke_stratos": bespoke_stratos,
    "dolphin_r1": dolphin_r1,
    "limo": limo,
    "s1k": s1k,
    "s1k_1_1": s1k_1_1,
}


def map_row(layout: str, row: dict) -> Mapped | Rejected:
    """Raise ValueError only for an unknown layout (naming LAYOUTS); a bad row is a Rejected, never an exception."""
    adapter = ADAPTERS.get(layout) if isinstance(layout, str) else None
    if adapter is None:
        raise ValueError(f"unknown corpus layout {layout!r}; known layouts: {', '.join(LAYOUTS)}")
    if not isinstance(row, dict):
        return Rejected("not_a_row", f"a {type(row).__name__}, not an object")
    return adapter(row)
