"""check_params: the whole params file validated before any stage runs or is declared up to date.

DVC decides staleness from the params sections each stage lists and answers from its run cache
without running anything, so a key no stage lists (a misspelt top-level section) or a value only
the config models reject would pass `dvc repro` silently. This stage tracks the whole file, and
every other DVC stage depends on its stamp, so DVC runs it first whenever any key changes (its
Snakemake run also regenerates a dvc.yaml that no longer tracks the files params.yaml names, as
rules/common.smk does for any stage). The stamp holds the same bytes for every valid file: what
follows re-runs on its own params only. The stamp is a persistent output, which keeps DVC's run
cache out of this stage: a params file is checked every time it changes, never restored as valid.

It also writes each stage's code record (distillery.code_identity), the one code dep of that stage
in dvc.yaml. DVC runs check_params whenever a module file changes; a record's bytes change only
when what decides the stage's outputs does, so a comment edit re-runs this stage and no other.
Snakemake writes the records when it starts (rules/common.smk), as this stage's rule does not run
while its stamp exists.
"""

from __future__ import annotations

from pathlib import Path

from distillery.code_identity import code_record
from distillery.config.params import load_params
from distillery.workflow import STAGES, code_record_path, unpinned_hub_ids, unversioned_inputs

STAMP = "data/check_params/valid.txt"
STAMP_TEXT = "params.yaml passed `distillery check-params`\n"


def run(params_path: Path, stamp: Path | None = None) -> list[str]:
    """Validate `params_path` (one ConfigError naming every bad key); write `stamp` when valid.
    Returns the warnings (unpinned hub ids, files no commit versions) for the console."""
    params = load_params(params_path)
    warnings = [*unpinned_hub_ids(params), *unversioned_inputs(params, root=params_path.parent)]
    if stamp is not None:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(STAMP_TEXT)
    return warnings


def write_code_records(root: Path = Path(".")) -> list[str]:
    """Write each stage's code record under `root` where its bytes differ (an unchanged record keeps
    its mtime, so Snakemake re-runs nothing for it). Returns the stages whose record was written."""
    written = []
    for stage in (s for s, spec in STAGES.items() if s != "check_params" and spec.code_of is None):
        path, text = root / code_record_path(stage), code_record(stage)
        if not (path.is_file() and path.read_text() == text):
            path.parent.mkdir(parents=True, exist_ok=True)
            # A new file replaces the old: DVC may have linked the old one to its cache.
            path.with_suffix(".tmp").write_text(text)
            path.with_suffix(".tmp").replace(path)
            written.append(stage)
    return written
