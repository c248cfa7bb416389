"""The journaled LLM task every model-calling stage is built on (distillery.llm.task), through a
stage written for this test in a dozen lines, the way a new stage would be: it gets keys, seeds,
one request per distinct key, the journal, the failure message and provenance without writing any."""

from __future__ import annotations

import pytest

from distillery.config import LLM, Sampling
from distillery.errors import DistilleryError
from distillery.llm.task import LLMTask, TaskDirs
from distillery.provenance import code_version


class RhymeTask(LLMTask[str]):
    """A new LLM stage: asks for `n` rhymes per word (its whole model-facing code)."""

    # A stage's code identity hashes its module, stages/<stage>.py; this test's stage borrows generate's.
    stage = "generate"

    def __init__(self, llm: LLM, seed: int, dirs: TaskDirs, n: int = 2):
        super().__init__(llm, seed, dirs)
        self.n = n

    def messages(self, word: str) -> list[tuple[str, str]]:
        return [("system", "You rhyme."), ("user", f"A word that rhymes with {word}:")]

    def samples(self, word: str) -> int:
        return self.n


SAMPLING = Sampling(temperature=0.6, top_p=0.95, max_new_tokens=6)


def test_a_new_stage_gets_journaled_deduplicated_answers_with_provenance(tiny_models, tmp_path):
    llm = LLM.model_validate({"model": str(tiny_models / "teacher")})
    dirs = TaskDirs(journal=tmp_path / "rhymes", server_logs=tmp_path / "servers")
    task = RhymeTask(llm, 7, dirs)
    asked = task.ask(["cat", "dog", "cat"], SAMPLING)
    assert [(a.item, a.sample_index) for a in asked] == [("cat", 0), ("cat", 1), ("dog", 0), ("dog", 1), ("cat", 0), ("cat", 1)]
    assert asked[0].request.key == asked[4].request.key != asked[1].request.key  # same chat, same index: one key
    assert task.stats.requests == task.stats.generated == task.stats.backend_requests_sent == 4  # the repeat was not sent
    assert all(a.answer.text is not None and a.answer.code == code_version("generate") for a in asked)
    assert (tmp_path / "rhymes" / "shard-0-of-1.jsonl").read_text().count("\n") == 4

    again = RhymeTask(llm, 7, dirs)
    assert [a.answer for a in again.ask(["dog", "cat"], SAMPLING)] == [a.answer for a in asked[2:4] + asked[:2]]
    assert again.stats.reused_from_journal == 4 and again.stats.backend_requests_sent == 0

    more = RhymeTask(llm, 7, dirs, n=3)  # a third sample per word: only those two are asked
    more.ask(["cat", "dog"], SAMPLING)
    assert more.stats.reused_from_journal == 4 and more.stats.generated == 2
    assert task.settings_hash(llm, n=2) != task.settings_hash(llm, n=3) and task.model_fingerprint()


def test_failures_after_retries_are_one_message_naming_the_stage_and_the_journal(tmp_path):
    llm = LLM.model_validate(
        {
            "backend": "openai",
            "model": "m",
            "openai": {"base_urls": ["http://127.0.0.1:9/v1"], "max_retries": 1, "retry_max_wait_s": 0.1, "timeout_s": 5},
        }
    )
    task = RhymeTask(llm, 7, TaskDirs(journal=tmp_path / "journal", server_logs=tmp_path / "servers"), n=1)
    with pytest.raises(DistilleryError) as info:
        task.ask(["cat", "dog"], SAMPLING)
    msg = str(info.value)
    assert msg.startswith("generate: 2 of 2 requests failed after 1 retries (e.g. ")
    assert f"recorded in {tmp_path / 'journal' / 'shard-0-of-1.jsonl'}" in msg and "re-running retries only these" in msg
    assert task.stats.failed_after_retries == 2


def test_a_stage_that_does_not_say_what_to_ask_cannot_be_made(tmp_path):
    class Silent(LLMTask[str]):
        stage = "generate"

    with pytest.raises(TypeError, match="abstract method messages"):
        Silent(LLM.model_validate({"model": "m"}), 1, TaskDirs(journal=tmp_path))


def test_a_rejected_request_is_a_row_with_its_error_said_on_the_console_and_asked_again(tiny_models, tmp_path, caplog):
    """A prompt past the tiny teacher's 512 positions is that request's rejection: the others are
    answered, the console says how many were rejected, and the next run asks it again (a failure
    is never an answer)."""
    llm = LLM.model_validate({"model": str(tiny_models / "teacher")})
    dirs = TaskDirs(journal=tmp_path / "rhymes", server_logs=tmp_path / "servers")
    huge = "syllable " * 3000
    task = RhymeTask(llm, 7, dirs, n=1)
    with caplog.at_level("WARNING", logger="distillery.llm.task"):
        asked = {a.item: a.answer for a in task.ask(["cat", huge], SAMPLING)}
    assert asked["cat"].error is None and asked["cat"].text is not None
    assert asked[huge].text is None and "does not fit the model's context of 512" in asked[huge].error
    [warning] = [r.getMessage() for r in caplog.records if r.name == "distillery.llm.task" and r.levelname == "WARNING"]
    assert warning.startswith("generate: 1 of 2 requests were rejected (e.g. ") and "never answers" in warning

    again = RhymeTask(llm, 7, dirs, n=1)
    again.ask(["cat", huge], SAMPLING)
    assert again.stats.reused_from_journal == 1 and again.stats.backend_requests_sent == 1  # the rejection, asked again


def test_a_run_where_every_request_is_rejected_fails_with_one_message(tiny_models, tmp_path):
    llm = LLM.model_validate({"model": str(tiny_models / "teacher")})
    task = RhymeTask(llm, 7, TaskDirs(journal=tmp_path / "rhymes", server_logs=tmp_path / "servers"), n=2)
    with pytest.raises(DistilleryError) as info:
        task.ask(["syllable " * 3000], SAMPLING)
    msg = str(info.value)
    assert msg.startswith("generate: all 2 requests were rejected (e.g. ") and "does not fit the model's context of 512" in msg
    assert "check generate.llm (model, backend, context length), generate.sampling.max_new_tokens" in msg
