"""User-facing errors: each names the thing that is wrong and how to fix it.

The CLI prints these as one message and exits 2; any other exception is a bug and keeps its traceback.
"""


class DistilleryError(Exception):
    """An error the user can fix (bad config, missing input, malformed file)."""


class ConfigError(DistilleryError):
    """params.yaml (or a stage's config) does not validate."""


class MissingInputError(DistilleryError):
    """A stage's input file does not exist."""
