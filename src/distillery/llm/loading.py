"""Loading a model and tokenizer from a hub id or a local directory: one code path for both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distillery.errors import DistilleryError


def looks_local(model: str) -> bool:
    return model.startswith((".", "/")) or Path(model).exists() or model.startswith("data/")


def load_tokenizer(model: str, revision: str | None = None) -> Any:
    from transformers import AutoTokenizer

    _require_local(model)
    try:
        return AutoTokenizer.from_pretrained(model, revision=revision)
    except OSError as exc:
        raise DistilleryError(f"could not load the tokenizer of {model!r} (revision {revision}): {exc}") from None


def load_causal_lm(
    model: str,
    revision: str | None = None,
    dtype: str = "auto",
    device: str = "cpu",
    config: Any = None,
    attn_implementation: str | None = None,
) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    _require_local(model)
    torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
    kwargs: dict[str, Any] = {"revision": revision, "dtype": torch_dtype}
    if config is not None:
        kwargs["config"] = config
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    try:
        lm = AutoModelForCausalLM.from_pretrained(model, **kwargs)
    except OSError as exc:
        raise DistilleryError(f"could not load model {model!r} (revision {revision}): {exc}") from None
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return lm.to(device).eval()


def _require_local(model: str) -> None:
    if looks_local(model) and not Path(model).exists():
        from distillery.io import require

        require(model, "model")
