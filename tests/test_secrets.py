"""distillery.secrets: what a server's text loses before it is kept (hand-written inputs and outputs)."""

import pytest

from distillery.secrets import scrub, scrub_secrets, secret_values


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Incorrect API key provided: sk-proj-AbCdEf0123456789.", "Incorrect API key provided: [redacted]."),
        ("Authorization: Bearer abc.def.ghi-123456", "Authorization: [redacted]"),
        ("fault (Authorization: Bearer abc.def.ghi-123456) here", "fault (Authorization: [redacted]) here"),
        ('{"authorization": "Basic dXNlcjpwYXNzd29yZA=="}', '{"authorization": "[redacted]"}'),
        ("token rejected: bearer eyJhbGciOiJIUzI1NiJ9x", "token rejected: bearer [redacted]"),
        ("hub said: hf_abcdefghijklmnopqrstuv is revoked", "hub said: [redacted] is revoked"),
        ("bad x-api-key: 9f8e7d6c5b4a3210, retry", "bad x-api-key: [redacted], retry"),
        ("Authorization: Bearer [redacted]", "Authorization: Bearer [redacted]"),  # already scrubbed
        # Not credentials: left alone.
        ("BadRequestError: maximum context length is 512 tokens", "BadRequestError: maximum context length is 512 tokens"),
        ("the risk-free rate is 5%", "the risk-free rate is 5%"),
    ],
)
def test_credential_shapes_are_redacted(text, expected):
    assert scrub(text) == expected
    assert scrub(expected) == expected  # idempotent: a backend scrubs, then the journal does again


def test_the_key_itself_is_redacted_whatever_its_shape():
    key = "my-gateway-key-31337"  # no sk- prefix: only knowing the key finds it
    assert scrub(f"key {key} is not valid; {key}", secret_values([key])) == "key [redacted] is not valid; [redacted]"
    assert scrub_secrets(f"answer: {key} 42", secret_values([key])) == "answer: [redacted] 42"


def test_a_known_key_inside_a_credential_shape_is_redacted_once():
    key = "sk-wrong-fedcba9876543210"
    said = f"Incorrect API key provided: {key}. Received header Authorization: Bearer {key}"
    expected = "Incorrect API key provided: [redacted]. Received header Authorization: [redacted]"
    assert scrub(said, secret_values([key])) == expected
    assert scrub(expected, secret_values([key])) == expected


def test_placeholder_and_short_values_are_not_secrets():
    # "EMPTY" is the key sent to servers without auth: scrubbing it would mangle ordinary text.
    assert secret_values(["EMPTY", None, "", "abc"]) == ()
    assert secret_values(["short", "longer-secret-1", "longer-secret-12"]) == ("longer-secret-12", "longer-secret-1")
