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
    build_rewards,
    cosine_reward,
    cosine_value,
    format_value,
    overlong_value,
    repetition_reward,
    repetition_value,
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
