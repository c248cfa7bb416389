"""Tests for distillery.keys: text normalization, problem and request keys, shards, seeds."""

from __future__ import annotations

import uuid

import pytest

from distillery.keys import PROBLEM_NAMESPACE, derive_seed, normalize_text, problem_key, request_key, shard_of, stable_hash

# --- normalize_text ------------------------------------------------------------------------------


def test_normalize_case_and_whitespace():
    assert normalize_text("  Find   THE\tvalue\n of $X$.  ") == "find the value of $x$."
    assert normalize_text("") == ""


@pytest.mark.parametrize("spacing", ["\\,", "\\;", "\\:", "\\!", "\\ "])
def test_normalize_drops_latex_spacing_between_spaces(spacing):
    assert normalize_text(f"$2 {spacing} x$") == "$2 x$"


@pytest.mark.parametrize("text", ["$\\int_0^1 x\\,dx$", "$\\int_0^1 x \\, dx$", "$\\int_0^1 x dx$"])
def test_normalize_thin_space_before_letter(text):
    # `\,` is LaTeX spacing wherever it stands; `x\,dx` is its most common use.
    assert normalize_text(text) == "$\\int_0^1 x dx$"


def test_normalize_semicolon_space_before_letter():
    assert normalize_text("a\\;b") == normalize_text("a b") == "a b"


def test_normalize_keeps_commands():
    assert normalize_text("\\frac{1}{2}") == "\\frac{1}{2}"
    assert normalize_text("\\cdot") == "\\cdot"


# --- problem_key ---------------------------------------------------------------------------------


def test_problem_key_is_uuid5_in_fixed_namespace():
    key = problem_key("Compute 1 + 1.", "olympiads")
    parsed = uuid.UUID(key)
    assert parsed.version == 5
    assert key == str(uuid.uuid5(PROBLEM_NAMESPACE, "olympiads\x1fcompute 1 + 1."))
    # a literal value, so a change of namespace or normalization is noticed
    assert key == str(uuid.uuid5(uuid.UUID("6f1c0a52-8f0e-4c5e-9b53-7d3c1f0e2a11"), "olympiads\x1fcompute 1 + 1."))


def test_problem_key_stable_for_case_and_space_variants():
    base = problem_key("Find $x$ if $2x = 4$.", "olympiads")
    assert problem_key("find  $X$ if\n$2X = 4$.  ", "olympiads") == base
    assert problem_key("FIND $x$ IF $2x = 4$.", "olympiads") == base
    assert problem_key("Find $x$ if $2x = 4$.", "olympiads") == base  # repeated calls agree


def test_problem_key_differs_by_source_and_text():
    base = problem_key("Find $x$ if $2x = 4$.", "olympiads")
    assert problem_key("Find $x$ if $2x = 4$.", "cn_k12") != base
    assert problem_key("Find $x$ if $2x = 5$.", "olympiads") != base
    # the separator keeps source and text apart
    assert problem_key("b c", "a") != problem_key("c", "a b")


# --- request_key ---------------------------------------------------------------------------------

MSGS = [{"role": "user", "content": "Solve: 1 + 1"}]
SAMPLING = {"temperature": 0.6, "top_p": 0.95, "max_new_tokens": 64}


def base_key(**kw) -> str:
    args = {"model": "m", "revision": "r1", "messages": MSGS, "sampling": SAMPLING, "sample_index": 0, **kw}
    return request_key(**args)


def test_request_key_is_deterministic():
    assert base_key() == base_key()
    assert len(base_key()) == 64
    assert base_key(sampling=dict(reversed(list(SAMPLING.items())))) == base_key()  # key order does not matter


@pytest.mark.parametrize(
    "change",
    [
        {"sampling": {**SAMPLING, "temperature": 0.7}},
        {"sampling": {**SAMPLING, "max_new_tokens": 65}},
        {"messages": [{"role": "user", "content": "Solve: 1 + 2"}]},
        {"messages": [{"role": "system", "content": "be brief"}, *MSGS]},
        {"sample_index": 1},
        {"revision": "r2"},
        {"revision": None},
        {"model": "other"},
    ],
)
def test_request_key_changes(change):
    assert base_key(**change) != base_key()


def test_stable_hash_unicode():
    assert stable_hash({"a": "é"}) == stable_hash({"a": "é"})
    assert stable_hash({"a": 1, "b": 2}) == stable_hash({"b": 2, "a": 1})
    assert stable_hash([1, 2]) != stable_hash([2, 1])


# --- shard_of ------------------------------------------------------------------------------------


def test_shard_of_stable_and_in_range():
    keys = [problem_key(f"Problem number {i}", "olympiads") for i in range(200)]
    for n in (1, 2, 3, 7):
        shards = [shard_of(k, n) for k in keys]
        assert all(0 <= s < n for s in shards)
        assert shards == [shard_of(k, n) for k in keys]
    assert {shard_of(k, 4) for k in keys} == {0, 1, 2, 3}  # 200 keys fill 4 shards
    assert all(shard_of(k, 1) == 0 for k in keys)


def test_shard_of_known_value():
    # sha256("abc") starts with ba7816bf8f01cfe
    assert shard_of("abc", 1000) == int("ba7816bf8f01cfe", 16) % 1000


def test_adding_problems_does_not_move_shards():
    old = [problem_key(f"Old problem {i}", "olympiads") for i in range(50)]
    new = [problem_key(f"New problem {i}", "cn_k12") for i in range(50)]
    before = {k: shard_of(k, 4) for k in old}
    after = {k: shard_of(k, 4) for k in old + new}
    assert all(after[k] == before[k] for k in old)


# --- derive_seed ---------------------------------------------------------------------------------


def test_derive_seed():
    s = derive_seed(42, "abc")
    assert s == derive_seed(42, "abc")
    assert 0 <= s < 2**32
    assert derive_seed(43, "abc") != s
    assert derive_seed(42, "abd") != s


def test_a_local_model_retrained_in_place_makes_new_request_keys(tmp_path):
    from distillery import keys

    model = tmp_path / "teacher"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"weights v1" * 1000)
    args = dict(model=str(model), revision=None, messages=[{"role": "user", "content": "hi"}], sampling={"t": 1}, sample_index=0)
    before = keys.request_key(**args)
    (model / "model.safetensors").write_bytes(b"weights v2" * 1000)
    keys._fingerprints.clear()  # a new process
    assert keys.request_key(**args) != before
    assert keys.model_fingerprint("org/hub-model") is None  # a hub id: its revision names its contents
