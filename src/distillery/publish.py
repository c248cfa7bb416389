"""`distillery publish`: push a built dataset (card + default/extended parquet; the card's `all` config
names both, so it needs no files of its own) to a Hugging Face dataset repo, only when the user runs
it. The token comes from the environment ($HF_TOKEN unless --token-env names another variable) and
is never printed; `--dry-run` checks everything and lists what would be uploaded without touching
the network. No pipeline stage calls this.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from distillery.errors import DistilleryError
from distillery.stages.build import DATASET_SCHEMA, SPLITS, split_file

# What a built dataset directory holds; nothing else in it is uploaded.
ALLOW_PATTERNS = ["README.md", *(f"{s}/*.parquet" for s in SPLITS)]


@dataclass
class Plan:
    repo_id: str
    files: list[tuple[str, int]]  # path in repo, bytes
    rows: dict[str, int]

    def describe(self) -> str:
        lines = [f"dataset repo {self.repo_id}: {sum(self.rows.values())} rows " + ", ".join(f"{s} {n}" for s, n in self.rows.items())]
        lines += [f"  {path} ({size:,} bytes)" for path, size in self.files]
        return "\n".join(lines)


def plan(dataset_dir: Path, repo_id: str) -> Plan:
    """Check the dataset is complete and in the OpenR1-Math-220k schema before anything is sent."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise DistilleryError(f"--repo-id {repo_id!r} is not a repo id ({exc}); use namespace/name, e.g. my-org/openr1-math") from None
    if "/" not in repo_id:
        raise DistilleryError(f"--repo-id {repo_id!r} has no namespace; use namespace/name, e.g. my-org/openr1-math")
    card = dataset_dir / "README.md"
    if not card.is_file():
        raise DistilleryError(
            f"{card} is missing: {dataset_dir} is not a built dataset; run `dvc repro build` "
            "(or snakemake data/build/dataset/README.md) first"
        )
    files, rows = [("README.md", card.stat().st_size)], {}
    for split in SPLITS:
        path = split_file(dataset_dir, split)
        if not path.is_file():
            raise DistilleryError(f"{path} is missing: the {split} config of the dataset; rebuild it with `dvc repro build`")
        schema = pq.read_schema(path)
        if not schema.remove_metadata().equals(DATASET_SCHEMA):
            raise DistilleryError(f"{path} is not in the OpenR1-Math-220k schema (got {schema.names}); rebuild it with `dvc repro build`")
        rows[split] = pq.read_metadata(path).num_rows
        files.append((str(path.relative_to(dataset_dir)), path.stat().st_size))
    if not sum(rows.values()):
        raise DistilleryError(
            f"{dataset_dir} has no rows in any config ({', '.join(rows)}): there is nothing to publish; "
            "see data/build/rejected.parquet and metrics/build.json for why problems were dropped"
        )
    return Plan(repo_id, files, rows)


def publish(
    dataset_dir: Path,
    repo_id: str,
    *,
    private: bool = True,
    revision: str | None = None,
    token_env: str = "HF_TOKEN",
    message: str | None = None,
    dry_run: bool = False,
) -> str:
    """Upload the dataset; returns what was (or, with dry_run, would be) published."""
    p = plan(dataset_dir, repo_id)
    if dry_run:
        return "dry run, nothing uploaded; would publish\n" + p.describe()
    token = os.environ.get(token_env)
    if not token:
        raise DistilleryError(
            f"${token_env} is not set: export a Hugging Face token with write access to {repo_id} "
            f"(or pass --token-env NAME); nothing was uploaded"
        )
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        raise DistilleryError("HF_HUB_OFFLINE is set: unset it to publish; nothing was uploaded")

    from huggingface_hub import HfApi, constants

    api = HfApi(token=token)
    where = f"{constants.ENDPOINT}/datasets/{repo_id}"
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id,
            repo_type="dataset",
            folder_path=dataset_dir,
            revision=revision,
            allow_patterns=ALLOW_PATTERNS,
            commit_message=message or f"distillery: {sum(p.rows.values())} rows",
        )
    except Exception as exc:  # network and hub errors alike: one message, the token scrubbed from it
        detail = f"{type(exc).__name__}: {exc}".replace(token, "***")
        raise DistilleryError(f"could not publish to {where}: {detail.splitlines()[0] if detail else ''}") from None
    return f"published {where} at {getattr(info, 'oid', None) or 'the new commit'}\n" + p.describe()
