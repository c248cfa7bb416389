"""The request journal: append-only, flushed per record, torn lines skipped, reused across layouts."""

import json
import subprocess
import sys
import textwrap

import pytest

from distillery import journal
from distillery.errors import DistilleryError
from distillery.journal import ShardJournal, shares_problems
from distillery.keys import shard_of


def rec(key, text="x", **kw):
    return {"key": key, "text": text, "finish_reason": "stop", "error": None, "retryable": False, **kw}


def test_records_round_trip_and_later_lines_win(tmp_path):
    with ShardJournal(tmp_path, 0, 1) as j:
        j.append(rec("a", "first"))
        j.append(rec("b"))
        j.append(rec("a", "second"))
    with ShardJournal(tmp_path, 0, 1) as j:
        found, report = j.load({"a", "b", "c"})
    assert found["a"]["text"] == "second" and set(found) == {"a", "b"}
    assert report.reused == 2 and report.torn == 0


def test_failures_are_never_reused_only_answers(tmp_path):
    with ShardJournal(tmp_path, 0, 1) as j:
        j.append(rec("a", None, finish_reason="error", error="APIConnectionError: down", retryable=True))
        j.append(rec("b", None, finish_reason="error", error="empty prompt", retryable=False))
        j.append(rec("c", "an answer"))
        j.append(rec("d", None, finish_reason="error", error="APIConnectionError: down", retryable=True))
        j.append(rec("d", "answered on a later run"))
    with ShardJournal(tmp_path, 0, 1) as j:
        found, report = j.load({"a", "b", "c", "d"})
    assert set(found) == {"c", "d"} and found["d"]["text"] == "answered on a later run"
    assert report.retryable_errors == 2  # a and b: failed, and not answered since


def test_a_journaled_401_from_before_refusals_stopped_the_stage_is_asked_again(tmp_path):
    """Journals written before a 401 stopped the stage hold it as a final record (retryable false):
    the line below is one such record, as it was on disk. It must not be reused as an answer."""
    old = {
        "key": "k1",
        "text": None,
        "finish_reason": "error",
        "prompt_tokens": None,
        "completion_tokens": None,
        "error": "AuthenticationError: Error code: 401 - {'error': {'message': 'Incorrect API key provided'}}",
        "retryable": False,
        "latency_s": None,
        "t": 1765000000.0,
        "code": "abc",
    }
    (tmp_path / "shard-0-of-1.jsonl").write_text(json.dumps(old, separators=(",", ":")) + "\n")
    with ShardJournal(tmp_path, 0, 1) as j:
        found, report = j.load({"k1"})
    assert found == {} and report.retryable_errors == 1
    assert journal.stats(tmp_path)["files"]["shard-0-of-1.jsonl"]["records"] == 0


def test_a_torn_last_line_is_skipped_and_the_next_record_starts_clean(tmp_path):
    with ShardJournal(tmp_path, 0, 1) as j:
        j.append(rec("a"))
    path = tmp_path / "shard-0-of-1.jsonl"
    with open(path, "ab") as fh:
        fh.write(b'{"key":"b","text":"cut off mid-wr')  # what a SIGKILL mid-write leaves
    with ShardJournal(tmp_path, 0, 1) as j:
        found, report = j.load({"a", "b"})
        assert set(found) == {"a"} and report.torn == 1
        j.append(rec("b"))
    with ShardJournal(tmp_path, 0, 1) as j:
        found, _ = j.load({"a", "b"})
    assert set(found) == {"a", "b"}
    assert all(json.loads(line)["key"] for line in path.read_text().splitlines()[-1:])


def test_hostile_text_round_trips(tmp_path):
    nasty = '\x00 NUL, \ud800 lone surrogate, "quotes", \n newlines, {"key":"fake"}'
    with ShardJournal(tmp_path, 0, 1) as j:
        j.append(rec("a", nasty))
    with ShardJournal(tmp_path, 0, 1) as j:
        found, report = j.load({"a", "fake"})
    assert set(found) == {"a"} and found["a"]["text"] == nasty and report.torn == 0


def test_a_second_writer_of_the_same_shard_is_refused(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import sys, time
        from distillery.journal import ShardJournal
        with ShardJournal({str(tmp_path)!r}, 0, 2):
            print("locked", flush=True)
            time.sleep(60)
    """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(DistilleryError, match="in use by another running process"):
            ShardJournal(tmp_path, 0, 2).__enter__()
        with ShardJournal(tmp_path, 1, 2):  # another shard is fine
            pass
    finally:
        holder.kill()
        holder.wait()
    with ShardJournal(tmp_path, 0, 2):  # a killed holder's lock is gone with it
        pass


@pytest.mark.parametrize("k,K,k2,K2", [(0, 2, 0, 4), (1, 3, 2, 6), (0, 5, 3, 7), (2, 4, 1, 6)])
def test_shares_problems_matches_the_hash(k, K, k2, K2):
    keys = [f"problem-{i}" for i in range(3000)]
    both = any(shard_of(x, K) == k and shard_of(x, K2) == k2 for x in keys)
    assert shares_problems(k, K, k2, K2) == both


def test_a_new_shard_count_reuses_the_old_layout(tmp_path):
    keys = [f"p{i}" for i in range(200)]
    for s in range(2):
        with ShardJournal(tmp_path, s, 2) as j:
            for x in keys:
                if shard_of(x, 2) == s:
                    j.append(rec(x))
    for s in range(3):
        mine = {x for x in keys if shard_of(x, 3) == s}
        with ShardJournal(tmp_path, s, 3) as j:
            found, report = j.load(mine)
        assert set(found) == mine and report.files == 2


def test_stats_and_prune(tmp_path):
    with ShardJournal(tmp_path, 0, 1) as j:
        for x in "abcd":
            j.append(rec(x))
    assert journal.stats(tmp_path)["records"] == 4
    assert journal.prune(tmp_path, {"a", "c"}) == {"kept": 2, "dropped_lines": 2}
    with ShardJournal(tmp_path, 0, 1) as j:
        found, _ = j.load(set("abcd"))
    assert set(found) == {"a", "c"}


def test_a_full_disk_is_one_message_naming_the_journal_and_the_fix(tmp_path):
    """/dev/full fails every write with ENOSPC, as a full disk does: the kernel's own fault, no fake."""
    j = ShardJournal(tmp_path, 0, 1)
    with j:
        j.append(rec("a"))  # on the real disk
    j.path.unlink()
    j.path.symlink_to("/dev/full")
    with pytest.raises(DistilleryError) as info, ShardJournal(tmp_path, 0, 1) as full:
        full.append(rec("b"))
    msg = str(info.value)
    assert str(j.path) in msg and "No space left on device" in msg and "DISTILLERY_JOURNAL_DIR" in msg
