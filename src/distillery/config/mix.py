"""The params of stage mix (`params.yaml`'s `mix` section)."""

from __future__ import annotations

from pydantic import Field, field_validator

from distillery.config.base import Section


class MixConfig(Section):
    """How the ingested corpora and the project's own generations are combined before verify (only
    when ingest.corpora names one)."""

    own: bool = Field(True, description="Include the project's own problems and generations (sample, generate). false: only the corpora.")
    caps: dict[str, int] = Field(
        {},
        description="At most this many problems from a source (`own` or an ingest.corpora name): a seeded draw, nested like "
        "sample.n (a larger cap keeps the smaller cap's problems). A source not named: all its problems.",
    )

    @field_validator("caps")
    @classmethod
    def _positive(cls, caps: dict[str, int]) -> dict[str, int]:
        bad = {k: v for k, v in caps.items() if v < 1}
        if bad:
            raise ValueError(f"caps must be at least 1 (got {bad}); leave a source out to keep all of it, or set own: false")
        return caps


# The stage's params model (distillery.provenance finds the stage's execution-only keys through it).
MODEL = MixConfig
