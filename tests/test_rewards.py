"""GRPO's reward functions pinned to known values: the paper's settings, and TRL's own reward helpers
(with the same settings they must agree, value for value)."""

import math
import random
import time

import pytest
from trl.rewards import get_cosine_scaled_reward, get_repetition_penalty_reward, get_soft_overlong_punishment

from distillery.config import CosineReward, GRPOConfig, OverlongReward, RepetitionReward, VerifyConfig
from distillery.rewards import (
    Verdicts,
    accuracy_reward,
    build_rewards,
    cosine_reward,
    cosine_value,
    format_value,
    overlong_value,
    repetition_reward,
    repetition_value,
    word_gold,
)

EOS = 0
STOP = frozenset({EOS})
PAPER = CosineReward()  # the defaults are Yeo et al.'s values
TRL_DEFAULTS = CosineReward(min_correct=0.5, max_correct=1.0, min_wrong=-1.0, max_wrong=-0.5, max_len=100)


def ids(n, finished=True):
    """n completion tokens, ending on EOS unless cut off."""
    return [7] * (n - 1) + [EOS if finished else 7]


def answer(x):
    return [{"role": "assistant", "content": f"<think>\nwork\n</think>\nThe answer is $\\boxed{{{x}}}$."}]


@pytest.fixture(scope="module")
def verdicts():
    v = Verdicts(VerifyConfig(workers=1, timeout_s=2, item_deadline_s=6), 1, STOP)
    yield v
    v.close()


def test_cosine_with_the_papers_values():
    assert cosine_value(True, 0, PAPER) == pytest.approx(2.0)
    assert cosine_value(True, PAPER.max_len, PAPER) == pytest.approx(1.0)
    assert cosine_value(False, 0, PAPER) == pytest.approx(-10.0)
    assert cosine_value(False, PAPER.max_len, PAPER) == pytest.approx(0.0)
    assert cosine_value(True, PAPER.max_len // 2, PAPER) == pytest.approx(1.5)
    assert cosine_value(False, PAPER.max_len // 2, PAPER) == pytest.approx(-5.0)
    # Clamped: past L_max the schedule does not climb back (cos is periodic).
    assert cosine_value(True, 3 * PAPER.max_len, PAPER) == pytest.approx(1.0)
    assert cosine_value(False, 2 * PAPER.max_len, PAPER) == pytest.approx(0.0)


def test_cosine_agrees_with_trls_helper():
    # TRL's documented example: max_len 100, 50-token completions give 0.75 correct and -0.75 wrong.
    assert cosine_value(True, 50, TRL_DEFAULTS) == pytest.approx(0.75)
    assert cosine_value(False, 50, TRL_DEFAULTS) == pytest.approx(-0.75)
    theirs = get_cosine_scaled_reward(max_len=100)
    lengths = [1, 10, 33, 50, 99, 100, 150, 400]
    completions = [[{"content": r"\boxed{\frac{1}{3}}"}], [{"content": r"\boxed{\frac{1}{2}}"}]] * len(lengths)
    solution = [r"\frac{1}{3}"] * len(completions)
    token_ids = [[1] * n for n in lengths for _ in range(2)]
    expected = theirs(completions, solution, token_ids)
    ours = [cosine_value(i % 2 == 0, len(t), TRL_DEFAULTS) for i, t in enumerate(token_ids)]
    assert ours == pytest.approx(expected)


def test_repetition_penalty_agrees_with_trls_helper_on_tokens():
    cfg = RepetitionReward(unit="tokens", ngram_size=2, penalty=-1.0)
    assert repetition_value([1, 2, 3, 4], cfg) == 0.0
    assert repetition_value([5, 5, 5, 5, 5], cfg) == pytest.approx(-0.75)  # TRL's documented example
    rng = random.Random(3)
    seqs = [[rng.randrange(6) for _ in range(rng.randrange(0, 40))] for _ in range(50)]
    theirs = get_repetition_penalty_reward(ngram_size=3, max_penalty=-0.5)(seqs)
    ours = repetition_reward(RepetitionReward(unit="tokens", ngram_size=3, penalty=-0.5))(completions=[""] * 50, completion_ids=seqs)
    assert ours == pytest.approx(theirs)


def test_repetition_penalty_on_words_and_per_repeat():
    share = RepetitionReward(unit="words", ngram_size=3, penalty=-1.0)
    clean = "we add the two numbers and divide by three to get the mean"
    looped = "so the answer is so the answer is so the answer is"
    reward = repetition_reward(share)
    assert reward(completions=[clean], completion_ids=[[]]) == [0.0]
    # 10 word trigrams, 4 distinct: (1 - 4/10) * -1
    assert reward(completions=[looped], completion_ids=[[]]) == [pytest.approx(-0.6)]
    assert reward(completions=["Too short"], completion_ids=[[]]) == [0.0]
    dense = RepetitionReward(unit="tokens", ngram_size=40, variant="per_repeat", penalty=-0.05)  # the paper's dense variant
    assert repetition_value(list(range(200)), dense) == 0.0
    loop = list(range(40)) * 3  # 81 40-grams, 40 distinct: 41 repeats
    assert repetition_value(loop, dense) == pytest.approx(-0.05 * 41)


def test_soft_overlong_agrees_with_trls_helper():
    assert overlong_value(90, 100, 20) == pytest.approx(-0.5)  # TRL's documented example
    assert overlong_value(80, 100, 20) == 0.0 and overlong_value(100, 100, 20) == -1.0 and overlong_value(130, 100, 20) == -1.0
    seqs = [[1] * n for n in range(0, 140, 7)]
    assert [overlong_value(len(s), 100, 20) for s in seqs] == pytest.approx(get_soft_overlong_punishment(100, 20)(seqs))


@pytest.mark.parametrize(
    "text,value",
    [
        ("<think>\nreasoning\n</think>\nThe answer is 4.", 1.0),
        ("  <think>r</think> 4", 1.0),
        ("reasoning</think> 4", 0.0),  # not opened
        ("<think>r</think>", 0.0),  # nothing after the thinking
        ("<think>r</think> 4 <think>more</think> 5", 0.0),  # twice
        ("<think>r</think> 4 </think>", 0.0),
        ("<think>r <think> r</think> 4", 0.0),
        ("The answer is 4.", 0.0),
    ],
)
def test_format(text, value):
    assert format_value(text) == value


def test_accuracy_and_cosine_share_one_verdict(verdicts):
    cfg = GRPOConfig.model_validate(
        {
            "model": "m",
            "rewards": {
                "accuracy": {"weight": 1.0},
                "cosine": {"weight": 0.5, "max_len": 100, "exceed_length": -10.0},
                "format": {"weight": 0.0},
            },
        }
    )
    funcs, weights, shared = build_rewards(cfg, verdicts.verify, STOP)
    try:
        assert [f.__name__ for f in funcs] == ["accuracy", "cosine", "format"] and weights == [1.0, 0.5, 0.0]
        completions = [answer("\\frac{1}{2}"), answer("0.5"), answer("3"), answer("\\frac12"), answer("7"), answer("7")]
        gold = ["1/2", "1/2", "1/2", "1/2", "\\frac{1}{2", "not a formula ]["]
        token_ids = [ids(50), ids(100), ids(50), ids(100, finished=False), ids(10), ids(10)]
        kw = {"prompts": [None] * 6, "completions": completions, "gold": gold, "completion_ids": token_ids}
        logged = {}
        acc = funcs[0](**kw, log_metric=lambda name, value: logged.setdefault(name, value))
        # correct, correct, wrong, truncated (never correct), malformed gold (None), unparseable gold (None)
        assert acc == [1.0, 1.0, 0.0, 0.0, None, None]
        assert logged["accuracy/unusable_gold"] == pytest.approx(2 / 6)
        cos = funcs[1](**kw)
        assert cos[:3] == pytest.approx([1.5, 1.0, -5.0])
        assert cos[3] == -10.0 and cos[4:] == [None, None]
        assert shared._last is not None and shared._last[1] == [True, True, False, False, None, None]
    finally:
        shared.close()


def test_cosine_without_an_exceed_value_scores_truncation_as_wrong(verdicts):
    reward = cosine_reward(verdicts, CosineReward(max_len=100, exceed_length=None))
    out = reward(completions=[answer("5")], gold=["5"], completion_ids=[ids(120, finished=False)])
    assert out == [pytest.approx(0.0)]  # a wrong answer at L_max: max_wrong


def test_a_hostile_completion_costs_one_deadline_not_a_stalled_step():
    cfg = VerifyConfig(workers=1, timeout_s=1, item_deadline_s=4, precheck_complexity=False)
    v = Verdicts(cfg, 1, STOP)
    try:
        assert v([answer("2")], ["2"], [ids(5)]) == [True]  # the worker is up
        tower = answer("9^{9^{9^{9^{9^{9}}}}}")
        megabyte = answer("1+" * 500_000 + "1")
        started = time.monotonic()
        out = v([tower, megabyte, answer("4")], ["4", "4", "4"], [ids(5), ids(5), ids(5)])
        took = time.monotonic() - started
        assert out == [False, False, True]
        assert took < cfg.item_deadline_s + 6, f"{took:.1f} s"
        # The pool lives on for the next step: a new batch needs no new start-up.
        again = time.monotonic()
        assert v([answer("4")], ["4"], [ids(5)]) == [True]
        assert time.monotonic() - again < 2
    finally:
        v.close()


def test_every_reward_off_is_a_config_error():
    from pydantic import ValidationError

    off = {name: {"weight": None} for name in ("accuracy", "cosine", "repetition", "overlong", "format")}
    with pytest.raises(ValidationError, match="every reward is off"):
        GRPOConfig.model_validate({"model": "m", "rewards": off})


def test_overlong_defaults_to_the_completion_limit():
    from distillery.rewards import overlong_reward

    reward = overlong_reward(OverlongReward(cache=10), max_completion_length=50)
    assert reward(completion_ids=[[1] * 40, [1] * 45, [1] * 50]) == [0.0, -0.5, -1.0]
    assert not math.isnan(reward(completion_ids=[[]])[0])


def test_every_reward_weight_zero_is_a_config_error():
    from pydantic import ValidationError

    zero = {name: {"weight": 0.0} for name in ("accuracy", "cosine", "repetition", "overlong", "format")}
    with pytest.raises(ValidationError, match="every reward weight is 0 or null"):
        GRPOConfig.model_validate({"model": "m", "rewards": zero})


# --- TRL's accuracy-reward test cases (huggingface/trl tests/test_rewards.py), through ours ----------


def msg(text):
    return [{"role": "assistant", "content": text}]


def accuracy(verdicts, completions, gold, token_ids=None):
    token_ids = token_ids or [ids(20)] * len(completions)
    return accuracy_reward(verdicts)(completions=[msg(c) for c in completions], gold=gold, completion_ids=token_ids)


def test_trls_accuracy_cases(verdicts):
    # test_accuracy_reward_correct_answer / _wrong_answer / _wrong_answer_no_latex
    assert accuracy(verdicts, [r"\boxed{\frac{63}{400}}", r"\boxed{\frac{63}{400}}"], [r"\frac{63}{400}", "63/400"]) == [1.0, 1.0]
    assert accuracy(verdicts, [r"\boxed{\frac{64}{400}}"], [r"\frac{63}{400}"]) == [0.0]
    assert accuracy(verdicts, [r"\boxed{3}"], ["6"]) == [0.0]
    # test_accuracy_reward_unparsable_gold: word golds are None, box or no box.
    assert accuracy(
        verdicts, ["Answer is forty two.", r"Some other content. \boxed{43}."], ["Answer is forty two.", "Answer is forty three."]
    ) == [
        None,
        None,
    ]
    # TestReasoningAccuracyReward: the answer after </think> (an opening tag or none), not a box inside the thinking.
    think = [r"<think> Reasoning content </think> \boxed{\frac{63}{400}}", r"Reasoning content </think> \boxed{\frac{63}{400}}"]
    assert accuracy(verdicts, think, [r"\frac{63}{400}"] * 2) == [1.0, 1.0]
    assert accuracy(verdicts, [r"<think> Reasoning content </think> \boxed{\frac{64}{400}}"], [r"\frac{63}{400}"]) == [0.0]
    in_reasoning = [
        r"<think> My answer is \boxed{42} </think> Some other text.",
        r"<think> The answer is \boxed{42} </think> Here's a wrong answer: \boxed{43}.",
    ]
    assert accuracy(verdicts, in_reasoning, [r"\boxed{42}", r"\boxed{42}"]) == [0.0, 0.0]
    incomplete = [
        r"<think> Incomplete reasoning without closing tag",
        r"Correct answer \frac{63}{400} but completely missing reasoning content",
    ]
    assert accuracy(verdicts, incomplete, [r"\frac{63}{400}"] * 2) == [0.0, 0.0]
    assert accuracy(verdicts, [r"<think> Reasoning content </think> \boxed{42}"], ["forty two"]) == [None]
    # TestCosineScaledReward.test_unparsable_gold_yields_none
    assert cosine_reward(verdicts, TRL_DEFAULTS)(completions=[msg(r"\boxed{42}")], gold=["forty two"], completion_ids=[ids(50)]) == [None]


def test_an_unusable_gold_is_none_whatever_the_completions_hold(verdicts):
    """TRL's contract: None for every completion of a gold that cannot be used. A group with no box,
    or truncated, is not [0.0, 0.0]; the gold is asked of the verifier on its own."""
    unparseable = "not a formula ]["
    assert accuracy(verdicts, ["no box here", "nor here"], [unparseable] * 2) == [None, None]
    assert accuracy(verdicts, [r"\boxed{7}", "nothing"], [unparseable] * 2) == [None, None]
    assert accuracy(verdicts, [r"\boxed{7}", r"\boxed{7}"], [unparseable] * 2, [ids(20, finished=False)] * 2) == [None, None]
    for broken in ("\\frac{1}{2", "", "   ", "$$", None):
        assert accuracy(verdicts, ["no box", r"\boxed{1}"], [broken] * 2) == [None, None]
    # A usable gold next to an unusable one in the same batch keeps its own verdicts.
    assert accuracy(verdicts, ["no box", r"\boxed{2}", r"\boxed{2}"], [unparseable, "2", "x+1"]) == [None, 1.0, 0.0]


@pytest.mark.parametrize(
    "gold, words",
    [
        ("forty two", True),
        ("forty-two", True),
        ("Answer is forty two.", True),
        ("Yes", True),
        ("No", True),  # a capitalised word
        ("Alice, Bob", True),
        ("Evelyn", True),
        ("\\boxed{Yes}", True),
        ("abc", True),  # three letters: words (write a product as $abc$)
        ("x", False),
        ("e", False),
        ("no", False),  # two lowercase letters: a product of two symbols
        ("ab", False),
        ("a b", False),
        ("x-y", False),
        ("XY", False),
        ("B", False),  # option letters
        ("ACD", False),
        ("$xyz$", False),  # delimits its math
        ("\\text{Yes}", False),  # names its text: one symbol, compared as a string
        ("x+1", False),
        ("2x", False),
        ("\\pi", False),
    ],
)
def test_word_golds(gold, words):
    assert word_gold(gold) is words


def test_word_golds_compare_when_asked():
    v = Verdicts(VerifyConfig(workers=1, timeout_s=5, item_deadline_s=30), 1, STOP, word_golds="compare")
    try:
        # Read as math-verify reads "$forty two$": a product of letters, so an anagram is "correct".
        assert v([answer("forty two"), answer("two forty"), answer("42")], ["forty two"] * 3, [ids(20)] * 3) == [True, True, False]
    finally:
        v.close()
    unwrapped = Verdicts(VerifyConfig(workers=1, timeout_s=5, item_deadline_s=30, wrap_gold=False), 1, STOP, word_golds="compare")
    try:
        # Without wrap_gold, math-verify itself finds nothing in a word gold (TRL's case): None.
        assert unwrapped([answer("forty two")], ["forty two"], [ids(20)]) == [None]
    finally:
        unwrapped.close()


def test_documented_differences_from_trl(verdicts):
    """Where ours and TRL's accuracy_reward part, as docs/design.md says: each asserted as a difference."""
    from trl.rewards import accuracy_reward as trl_accuracy
    from trl.rewards import reasoning_accuracy_reward as trl_reasoning

    # 1. A truncated completion is never correct here; TRL scores it.
    cut = [msg(r"<think>x</think> \boxed{5}")]
    assert trl_accuracy(cut, ["5"]) == [1.0]
    assert accuracy(verdicts, [r"<think>x</think> \boxed{5}"], ["5"], [ids(20, finished=False)]) == [0.0]
    # 2. A gold without $...$ is wrapped here (wrap_gold); TRL's parse finds nothing in it: None.
    assert trl_accuracy([msg(r"\boxed{x+1}")], ["x+1"]) == [None]
    assert accuracy(verdicts, [r"\boxed{x+1}"], ["x+1"]) == [1.0]
    # 3. A gold in \text{} is a string compared as one symbol here; TRL: None.
    assert trl_accuracy([msg(r"\boxed{\text{Yes}}")], [r"\text{Yes}"]) == [None]
    assert accuracy(verdicts, [r"\boxed{\text{Yes}}"], [r"\text{Yes}"]) == [1.0]
    # 4. The answer is read after </think> here; TRL's accuracy_reward reads the whole completion, so
    #    a box inside the thinking counts there (its reasoning_accuracy_reward reads as we do).
    inside = [msg(r"<think>\boxed{5}</think> Done.")]
    assert trl_accuracy(inside, ["5"]) == [1.0]
    assert accuracy(verdicts, [r"<think>\boxed{5}</think> Done."], ["5"]) == [0.0]
    # 5. TRL's reasoning_accuracy_reward gives an unfinished thinking 0.0 before it looks at the gold;
    #    here an unusable gold is None whatever the completion holds (accuracy_reward's contract).
    assert trl_reasoning([msg("<think> never closed")], ["forty two"]) == [0.0]
    assert accuracy(verdicts, ["<think> never closed"], ["forty two"]) == [None]
