"""``vdr.vdr-transformer``: a BERT projected onto its own vocabulary (VDR's ``VDREncoder``).

For token states ``h_t`` of the last layer::

    V_t = ELU(LN(h_t) · E'^T) + 1          E' = word-embedding rows [shift:]   (V' = V - shift)

``E'`` *is* the backbone's word-embedding matrix (one parameter, tied, trained with the encoder);
the only new parameter is the LayerNorm. ``shift = 999`` drops BERT's ``[unused*]`` and special
tokens as the official code does (``shift_vocab_num``): MiniLM's V' = 30522 - 999 = 29523.

Granularities:

* ``token`` [B, L, d]: the backbone's last hidden states;
* ``vocab`` [B, L, V']: ``V_t`` at every position (what ``vdr.vocab-max`` pools);
* ``bow`` [B, V']: the input's binary bag of words, 1 at ``id - shift`` of every real token
  (ids below ``shift``, i.e. special tokens, drop out), used by the pooler and the loss.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import torch
from pydantic import Field, field_validator
from torch import Tensor, nn

from repmix.sdk import (
    ConfigError,
    ComponentConfig,
    Encoded,
    Encoder,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    Runtime,
)
from repmix.sdk.hf import load_hf_config, model_files, resolve_model_dir, validate_model_dir
from repmix_vdr import CITATION
from repmix_vdr.sparse import bow_vector, elu1p

_MODEL_INPUTS: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids", "position_ids")


class VdrTransformer(Encoder):
    """BERT + LayerNorm + projection on the tied word embeddings (see the module docstring)."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``vdr.vdr-transformer``."""

        model: str = Field(
            "all-MiniLM-L6-v2",
            description="local BERT-style model folder, or the packaged name 'all-MiniLM-L6-v2'",
        )
        shift: int = Field(
            999, ge=0, description="drop the first `shift` vocabulary rows (BERT's [unused*]/special tokens; VDR: 999)"
        )

        _check_model = field_validator("model")(validate_model_dir)

    config: Config

    @classmethod
    def _sizes(cls, config: Config) -> tuple[int, int, int]:
        hf = load_hf_config(config.model)
        hidden, layers, vocab = (getattr(hf, k, None) for k in ("hidden_size", "num_hidden_layers", "vocab_size"))
        if not all(isinstance(v, int) for v in (hidden, layers, vocab)):
            raise ConfigError(
                f"model {config.model!r} declares no hidden_size / num_hidden_layers / vocab_size; "
                "vdr-transformer needs a BERT-style text encoder",
                found=config.model,
            )
        if config.shift >= vocab:  # type: ignore[operator]
            raise ConfigError(
                f"shift {config.shift} leaves no vocabulary rows: {config.model!r} has {vocab}",
                found=config.shift,
                hint=f"use a shift below {vocab} (999 for BERT's uncased vocabulary)",
            )
        return int(hidden), int(layers), int(vocab)  # type: ignore[arg-type]

    @classmethod
    def signature(cls, config: ComponentConfig) -> EncoderSignature:
        """``token`` (d), ``vocab`` (V', sequence) and ``bow`` (V', pooled), from config.json alone."""
        assert isinstance(config, cls.Config)
        hidden, layers, vocab = cls._sizes(config)
        rows = vocab - config.shift
        return EncoderSignature(
            {
                "token": GranularitySpec("sequence", hidden),
                "vocab": GranularitySpec("sequence", rows),
                "bow": GranularitySpec("pooled", rows),
            },
            num_layers=layers + 1,
            layers_of="token",
        )

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        from transformers import AutoModel

        hidden, _, vocab = self._sizes(config)
        directory = str(resolve_model_dir(config.model))
        if runtime.load_pretrained:
            self.model = AutoModel.from_pretrained(directory)
        else:
            self.model = AutoModel.from_config(load_hf_config(config.model))
        if getattr(self.model, "pooler", None) is not None:
            self.model.pooler = None  # the unused CLS pooler would get no gradient
        tokenizer_vocab = getattr(runtime.tokenizer, "vocab_size", None)
        if isinstance(tokenizer_vocab, int) and tokenizer_vocab > vocab:
            raise ConfigError(
                f"the tokenizer emits {tokenizer_vocab} token ids but {config.model!r} embeds only {vocab}",
                hint="use the same model for the tokenizer and the encoder",
            )
        self.norm = nn.LayerNorm(hidden)
        self.shift = int(config.shift)
        self.vocab_rows = vocab - self.shift
        params = inspect.signature(self.model.forward).parameters
        self._input_keys = tuple(k for k in _MODEL_INPUTS if k in params)
        self._vocabulary: list[str] | None = None

    def saved_files(self) -> dict[str, Any]:
        """A saved model carries config.json and the tokenizer files (for :meth:`vocabulary`)."""
        return {"model": model_files(resolve_model_dir(self.config.model), tokenizer=True)}

    @property
    def projection(self) -> Tensor:
        """``E'`` [V', d]: the backbone's word-embedding rows from ``shift`` on (the same storage)."""
        return self.model.get_input_embeddings().weight[self.shift :]

    def vocab_states(self, hidden: Tensor) -> Tensor:
        """``ELU(LN(h) E'^T) + 1`` for token states ``hidden`` [..., d] -> [..., V']."""
        return elu1p(self.norm(hidden) @ self.projection.T)

    def vocabulary(self) -> list[str]:
        """Token string of every column of the vocabulary vectors (``V'`` entries)."""
        if self._vocabulary is None:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(str(resolve_model_dir(self.config.model)))
            self._vocabulary = list(tok.convert_ids_to_tokens(list(range(self.shift, self.shift + self.vocab_rows))))
        return self._vocabulary

    def forward(self, batch: dict[str, Tensor], output_layers: bool = False) -> Encoded:
        """``token``, ``vocab`` and ``bow`` (with every hidden state when ``output_layers``)."""
        inputs = {k: batch[k] for k in self._input_keys if k in batch}
        out = self.model(**inputs, output_hidden_states=output_layers, return_dict=True)
        mask = batch["attention_mask"].bool()
        hidden = out.last_hidden_state
        grans = {
            "token": Granularity(hidden, mask),
            "vocab": Granularity(self.vocab_states(hidden), mask),
            "bow": Granularity(bow_vector(batch["input_ids"], mask, self.vocab_rows, self.shift).to(hidden.dtype)),
        }
        layers = tuple(out.hidden_states) if output_layers else None
        return Encoded(grans, layers=layers, layers_of="token")
