"""Tests for `distillery publish`: everything up to the network (dataset checks, dry run, token from
the environment, errors), and the first request itself against local endpoints: a closed port and a
server that refuses the token (fault injection; the real hub is not reachable from tests)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from test_build import run_build

TOKEN = "hf_test_secret_0123456789"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    _, _, _, _, dataset = run_build(tmp_path_factory.mktemp("publish"))
    return dataset


def publish(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"HF_TOKEN", "HF_HUB_OFFLINE", "HF_ENDPOINT"}}
    return subprocess.run(
        [sys.executable, "-m", "distillery", "publish", *args], env={**base, **env}, capture_output=True, text=True, timeout=120
    )


def test_dry_run_checks_and_lists_without_network_or_token(dataset):
    r = publish(
        "--dataset-dir", str(dataset), "--repo-id", "my-org/math-distill", "--dry-run", HF_ENDPOINT="http://127.0.0.1:9", HF_HUB_OFFLINE="1"
    )
    assert r.returncode == 0, r.stderr
    assert "nothing uploaded" in r.stdout
    assert "dataset repo my-org/math-distill: 3 rows default 2, extended 1" in r.stdout
    for path in ("README.md", "default/train-00000-of-00001.parquet", "extended/train-00000-of-00001.parquet"):
        assert path in r.stdout


def test_missing_token_is_named(dataset):
    r = publish("--dataset-dir", str(dataset), "--repo-id", "my-org/math-distill")
    assert r.returncode == 2
    assert "$HF_TOKEN is not set" in r.stderr and "nothing was uploaded" in r.stderr
    assert "Traceback" not in r.stderr
    r = publish("--dataset-dir", str(dataset), "--repo-id", "my-org/math-distill", "--token-env", "MY_HUB_TOKEN")
    assert "$MY_HUB_TOKEN is not set" in r.stderr


def test_offline_mode_refuses(dataset):
    r = publish("--dataset-dir", str(dataset), "--repo-id", "my-org/x", HF_TOKEN=TOKEN, HF_HUB_OFFLINE="1")
    assert r.returncode == 2 and "HF_HUB_OFFLINE is set" in r.stderr


@pytest.mark.parametrize("repo_id", ["no-namespace", "bad/repo/id", "my org/x"])
def test_bad_repo_id(dataset, repo_id):
    r = publish("--dataset-dir", str(dataset), "--repo-id", repo_id, "--dry-run")
    assert r.returncode == 2 and "--repo-id" in r.stderr and "namespace/name" in r.stderr


def test_incomplete_dataset_is_refused_before_any_request(tmp_path, dataset):
    import shutil

    broken = tmp_path / "dataset"
    shutil.copytree(dataset, broken)
    (broken / "extended" / "train-00000-of-00001.parquet").unlink()
    r = publish("--dataset-dir", str(broken), "--repo-id", "my-org/x", HF_TOKEN=TOKEN, HF_ENDPOINT="http://127.0.0.1:9")
    assert r.returncode == 2 and "extended" in r.stderr and "dvc repro build" in r.stderr
    r = publish("--dataset-dir", str(tmp_path / "nothing"), "--repo-id", "my-org/x", "--dry-run")
    assert r.returncode == 2 and "is not a built dataset" in r.stderr


def test_unreachable_hub_is_one_message_without_the_token(dataset):
    r = publish("--dataset-dir", str(dataset), "--repo-id", "my-org/x", HF_TOKEN=TOKEN, HF_ENDPOINT="http://127.0.0.1:9")
    assert r.returncode == 2
    assert "could not publish to http://127.0.0.1:9/datasets/my-org/x" in r.stderr
    assert "Traceback" not in r.stderr and TOKEN not in r.stderr + r.stdout


class _RefusingHub(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, str | None]] = []

    def _refuse(self) -> None:
        _RefusingHub.seen.append((self.command, self.path, self.headers.get("Authorization")))
        body = b'{"error": "Invalid credentials in Authorization header"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_HEAD = _refuse

    def log_message(self, *args) -> None:
        pass


def test_token_goes_only_in_the_authorization_header(dataset):
    server = HTTPServer(("127.0.0.1", 0), _RefusingHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        r = publish("--dataset-dir", str(dataset), "--repo-id", "my-org/x", HF_TOKEN=TOKEN, HF_ENDPOINT=endpoint)
    finally:
        server.shutdown()
    assert r.returncode == 2 and f"could not publish to {endpoint}/datasets/my-org/x" in r.stderr
    assert TOKEN not in r.stderr + r.stdout
    assert ("POST", "/api/repos/create", f"Bearer {TOKEN}") in _RefusingHub.seen
    assert {auth for _, _, auth in _RefusingHub.seen} <= {f"Bearer {TOKEN}", None}
    assert not any(TOKEN in path for _, path, _ in _RefusingHub.seen)


def test_a_dataset_with_no_rows_is_refused_even_in_a_dry_run(tmp_path, dataset):
    import shutil

    import pyarrow.parquet as pq

    empty = tmp_path / "dataset"
    shutil.copytree(dataset, empty)
    for split in ("default", "extended"):
        path = empty / split / "train-00000-of-00001.parquet"
        pq.write_table(pq.read_table(path).slice(0, 0), path)
    r = publish("--dataset-dir", str(empty), "--repo-id", "my-org/x", "--dry-run")
    assert r.returncode == 2 and "has no rows in any config" in r.stderr and "Traceback" not in r.stderr
