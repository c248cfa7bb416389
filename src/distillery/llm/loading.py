"""Loading a model and tokenizer from a hub id or a local directory: one code path for both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distillery.errors import DistilleryError


def looks_local(model: str) -> bool:
    return model.startswith((".", "/")) or Path(model).exists() or model.startswith("data/")


# What the shell told the loader, not part of the tokenizer: transformers keeps it among the
# tokenizer's init kwargs (HF_HUB_OFFLINE=1 becomes local_files_only: true) and save_pretrained
# writes it, so a trained model's bytes would depend on whether `make demo` or a bare `dvc repro` ran.
LOADER_ONLY_KWARGS = ("local_files_only",)


def load_tokenizer(model: str, revision: str | None = None) -> Any:
    from transformers import AutoTokenizer

    _require_local(model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(model, revision=revision)
    except OSError as exc:
        raise DistilleryError(f"could not load the tokenizer of {model!r} (revision {revision}): {exc}") from None
    for key in LOADER_ONLY_KWARGS:
        tokenizer.init_kwargs.pop(key, None)
    return tokenizer


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
