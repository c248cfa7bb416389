"""preferences: chosen/rejected pairs for DPO from the judged generations of the problems dedupe kept.

OpenR1 made two to four generations per problem so that the data would serve preference
optimisation as well as SFT. chosen = a correct (under `selection`, as build decides) and complete
generation; rejected = a wrong one (complete, not correct) or a truncated one (stopped by the
length limit), as `rejected_kinds` allows. Failed requests are neither. The pairs are in TRL's
conversational preference format (`prompt`, `chosen`, `rejected`) with the request keys of both
sides, and every problem of the judged table either has pairs or is counted by why it has none.

The judged generations (sorted by uuid, as the judge stage writes them) are read a batch of whole
problems at a time, their kept problems met in the same order (`tables.KeptProblems`), and the pairs
written as they are made: memory does not grow with the table.
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from distillery.config.preferences import STAGE, PreferencesConfig
from distillery.keys import derive_seed
from distillery.metrics import FilterCounts, write_metrics
from distillery.provenance import stamp
from distillery.rounds import by_round, round_label
from distillery.stages.build import is_correct
from distillery.tables import (
    BATCH_ROWS,
    JUDGED,
    KEPT,
    PREFERENCE_PAIRS,
    PREFERENCES_UNPAIRED,
    PROBLEMS,
    KeptProblems,
    TableWriter,
    check_table,
    iter_groups,
    iter_table,
    write_table,
)

UNPAIRED_COLUMNS = {"uuid": pl.String, "reason": pl.String, "detail": pl.String}


@dataclass(frozen=True)
class Side:
    """One generation that may take a side of a pair."""

    sample_index: int
    text: str
    request_key: str
    completion_tokens: int
    kind: str  # correct | wrong | truncated
    judged_correct: bool = False  # correct by the judge's verdict alone (math-verify rejected it)
    round: int | None = 1  # the round of generation that made it (None: a corpus's)


def sides(g: dict[str, list], selection: str) -> list[Side]:
    """A problem's generations that can be chosen or rejected (failed requests are neither)."""
    out = []
    for i, text in enumerate(g["generation"]):
        if g["error"][i] is not None or text is None:
            continue
        complete = bool(g["is_reasoning_complete"][i]) and g["finish_reason"][i] == "stop"
        if g["finish_reason"][i] == "length":
            kind = "truncated"
        elif is_correct(g["correctness_math_verify"][i], g["correctness_llama"][i], complete, selection):
            kind = "correct"
        elif complete:
            kind = "wrong"
        else:
            continue  # stopped without finishing its reasoning, for another reason: no clear label
        by_judge = kind == "correct" and not g["correctness_math_verify"][i]
        made_in = g["round"][i] if "round" in g else 1
        out.append(Side(g["sample_index"][i], text, g["request_key"][i], g["completion_tokens"][i] or 0, kind, by_judge, made_in))
    return out


def pair_up(chosen: list[Side], rejected: list[Side], cfg: PreferencesConfig, rng: random.Random) -> list[tuple[Side, Side]]:
    if cfg.pairing == "all_pairs":
        pairs = [(c, r) for c in chosen for r in rejected]
        if cfg.max_pairs_per_problem is not None and len(pairs) > cfg.max_pairs_per_problem:
            picked = sorted(rng.sample(range(len(pairs)), cfg.max_pairs_per_problem))
            pairs = [pairs[i] for i in picked]
        return pairs
    c = rng.choice(chosen)
    if cfg.pairing == "hardest_negative":
        # The most plausible wrong answer: a finished one before a truncated one, then the one whose
        # length is nearest the chosen's, so that length is not what tells the two apart.
        r = min(rejected, key=lambda r: (r.kind != "wrong", abs(r.completion_tokens - c.completion_tokens), r.sample_index))
        return [(c, r)]
    return [(c, rng.choice(rejected))]


def first_pairing_round(chosen: list[Side], rejected: list[Side]) -> str:
    """The first round after which the problem had both a chosen and a rejected side (round_label)."""

    def rank(side: Side) -> int:
        return 0 if side.round is None else side.round  # a corpus's rows came before any round

    needed = max(min(map(rank, chosen)), min(map(rank, rejected)))
    return round_label(needed or None)


Paths = STAGE.paths_record()  # its files, by the names its declaration gives them


# Judged rows per batch (~100 MB of R1-length traces), whatever the total.
JUDGED_BATCH_ROWS = BATCH_ROWS
# The judged columns a problem's sides are made of.
GENERATION_COLUMNS = [
    "uuid",
    "sample_index",
    "round",
    "request_key",
    "generation",
    "finish_reason",
    "completion_tokens",
    "error",
    "is_reasoning_complete",
    "correctness_math_verify",
    "correctness_llama",
]


def run(cfg: PreferencesConfig, seed: int, paths: Paths) -> FilterCounts:
    check_table(paths.judged, JUDGED, GENERATION_COLUMNS)
    check_table(paths.kept, KEPT)
    check_table(paths.problems, PROBLEMS, ["uuid", "problem"])
    paths.pairs.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".preferences-spool-", dir=paths.pairs.parent) as spool:
        return _pair(cfg, seed, paths, KeptProblems(paths.problems, paths.kept, Path(spool)))


def _pair(cfg: PreferencesConfig, seed: int, paths: Paths, problems: KeptProblems) -> FilterCounts:
    settings = {**cfg.model_dump(mode="json"), "seed": seed}
    schema = {c: t for c, t in PREFERENCE_PAIRS.schema.items() if c in PREFERENCE_PAIRS.columns[:-2]}
    counts = FilterCounts()  # rows: problems of the judged table
    n_pairs = 0
    kinds = {"wrong": 0, "truncated": 0}
    chosen_by = {"math_verify": 0, "judge": 0}  # who called the chosen side correct
    paired_from_round: dict[str, int] = {}  # problems by the round whose generations first made a pair
    with TableWriter(paths.pairs, PREFERENCE_PAIRS) as writer:
        for gens in iter_groups(iter_table(paths.judged, JUDGED, GENERATION_COLUMNS, JUDGED_BATCH_ROWS), "uuid", str(paths.judged)):
            part = problems.upto(gens["uuid"][-1])  # the kept problems of this batch's uuids (and kept ones without generations)
            text = dict(zip(part["uuid"].to_list(), part["problem"].to_list()))
            pairs: list[dict[str, Any]] = []
            for g in gens.sort("uuid", "sample_index").group_by("uuid", maintain_order=True).agg(pl.all()).iter_rows(named=True):
                counts.rows_in += 1
                uuid = g["uuid"]
                if uuid not in text:
                    counts.reject("removed_by_dedupe", uuid=uuid, detail="dedupe dropped the problem (see data/dedupe/rejected.parquet)")
                    continue
                found = sides(g, cfg.selection)
                chosen = [s for s in found if s.kind == "correct"]
                rejected = [s for s in found if s.kind in cfg.rejected_kinds]
                detail = f"{len(g['generation'])} generations: " + ", ".join(
                    f"{k} {sum(s.kind == k for s in found)}" for k in ("correct", "wrong", "truncated")
                )
                if not chosen:
                    counts.reject("no_correct_generation", uuid=uuid, detail=f"{detail}; selection={cfg.selection}")
                    continue
                if not rejected:
                    counts.reject("no_rejected_generation", uuid=uuid, detail=f"{detail}; rejected_kinds={cfg.rejected_kinds}")
                    continue
                first = first_pairing_round(chosen, rejected)
                paired_from_round[first] = paired_from_round.get(first, 0) + 1
                prompt = [{"content": text[uuid], "role": "user"}]
                for index, (c, r) in enumerate(pair_up(chosen, rejected, cfg, random.Random(derive_seed(seed, "preferences", uuid)))):
                    kinds[r.kind] += 1
                    chosen_by["judge" if c.judged_correct else "math_verify"] += 1
                    pairs.append(
                        {
                            "uuid": uuid,
                            "pair_index": index,
                            "prompt": prompt,
                            "chosen": [{"content": c.text, "role": "assistant"}],
                            "rejected": [{"content": r.text, "role": "assistant"}],
                            "rejected_kind": r.kind,
                            "chosen_sample_index": c.sample_index,
                            "rejected_sample_index": r.sample_index,
                            "chosen_request_key": c.request_key,
                            "rejected_request_key": r.request_key,
                            "chosen_completion_tokens": c.completion_tokens,
                            "rejected_completion_tokens": r.completion_tokens,
                        }
                    )
                counts.keep()
            if pairs:
                writer.write(stamp(pl.DataFrame(pairs, schema=schema), "preferences", settings))
                n_pairs += len(pairs)
        counts.check("preferences")

    write_table(stamp(counts.rejected_rows(UNPAIRED_COLUMNS), "preferences", settings), paths.unpaired, PREFERENCES_UNPAIRED)
    write_metrics(
        paths.metrics,
        "preferences",
        problems=counts.as_dict(),
        pairs=n_pairs,
        pairs_by_rejected_kind=kinds,
        pairs_by_chosen_correct_by=chosen_by,
        # A later round's count: the problems paired only because it ran (generate.rounds).
        problems_paired_from_round=by_round(paired_from_round),
        pairing=cfg.pairing,
        selection=cfg.selection,
    )
    return counts
