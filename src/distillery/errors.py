"""User-facing errors: each names the thing that is wrong and how to fix it.

The CLI prints these as one message and exits 2; any other exception is a bug and keeps its traceback.
"""


class DistilleryError(Exception):
    """An error the user can fix (bad config, missing input, malformed file)."""


class ConfigError(DistilleryError):
    """params.yaml (or a stage's config) does not validate."""


class MissingInputError(DistilleryError):
    """A stage's input file does not exist."""


class EndpointRefused(DistilleryError):
    """An LLM server refused the endpoint itself (the key, a permission, the model, the route): no
    request can succeed, so the stage stops at the first such reply and keeps none as an answer."""
