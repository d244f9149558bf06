"""``electra.discriminator``: a transformers encoder with ELECTRA's replaced-token-detection head.

The tower's encoder in ELECTRA pre-training and the model that is fine-tuned afterwards. It
wraps a transformers backbone (``AutoModel``) built from ``architecture:`` (from scratch, e.g.
the same ``model_type: bert`` as a masked-LM baseline, or ``model_type: electra``) or loaded
from ``model:`` (a local folder, or the packaged all-MiniLM-L6-v2), plus the discriminator head
of transformers' ``ElectraDiscriminatorPredictions``: ``D_t = wᵀ·act(W·h_t + b) + c`` (one logit
per token).

Granularities: ``token`` (the backbone's hidden states: what is fine-tuned; more layers through
``granularities:``), ``rtd_logits`` (``[B, N, 1]``, computed only when read, so plain encoding
never pays for the head) and ``ids`` (the ids it read). The backbone's embedding layer is what
``electra.generator`` shares (:attr:`ElectraDiscriminator.shared_embeddings`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

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
)
from repmix.sdk.hf import (
    config_from_architecture,
    load_hf_config,
    load_hf_model,
    model_files,
    model_input_keys,
    resolve_model_dir,
    validate_model_dir,
)
from repmix.sdk.lm import LazyGranularity
from torch import Tensor, nn

ELECTRA_CITATION = (
    "Clark, Luong, Le & Manning (2020). ELECTRA: Pre-training Text Encoders as Discriminators Rather Than "
    "Generators. ICLR 2020. https://github.com/google-research/electra"
)
#: Granularity names the encoder itself emits (not available to ``granularities:``).
RESERVED = ("rtd_logits", "ids")


def drop_pooler(backbone: Any) -> Any:
    """Drop a BERT-style CLS pooler (unused: no gradient, no compute), as ``add_pooling_layer=False`` does."""
    import inspect

    if getattr(backbone, "pooler", None) is not None and (
        "add_pooling_layer" in inspect.signature(type(backbone).__init__).parameters
    ):
        backbone.pooler = None
    return backbone


class ElectraDiscriminator(Encoder):
    """A transformers encoder plus ELECTRA's binary replaced-token head (``ElectraDiscriminatorPredictions``)."""

    citation: ClassVar[str] = ELECTRA_CITATION

    class Config(ComponentConfig):
        """Options of ``electra.discriminator``."""

        architecture: dict[str, Any] | None = Field(
            None,
            description="transformers config to build from scratch: model_type (bert, electra, ...) and its keys "
            "(num_hidden_layers, hidden_size, ...); vocab_size and the padding id come from the tokenizer",
        )
        model: str | None = Field(
            None, description="a pretrained encoder folder or 'all-MiniLM-L6-v2' (its weights; a new RTD head)"
        )
        granularities: dict[str, int] = Field(
            default_factory=lambda: {"token": -1},
            description="hidden-state granularities: name -> layer index (0 = embeddings, -1 = last)",
        )

        _check_model = field_validator("model")(lambda v: v if v is None else validate_model_dir(v))

        @model_validator(mode="after")
        def _one_source(self) -> ElectraDiscriminator.Config:
            if (self.model is None) == (self.architecture is None):
                raise ValueError("give exactly one of model: (pretrained) or architecture: (from scratch)")
            if self.architecture is not None and not isinstance(self.architecture.get("model_type"), str):
                raise ValueError("architecture needs model_type (e.g. bert or electra)")
            if not self.granularities:
                raise ValueError("granularities must name at least one hidden-state granularity (e.g. token: -1)")
            for reserved in RESERVED:
                if reserved in self.granularities:
                    raise ValueError(f"granularity name {reserved!r} is reserved for the discriminator's own output")
            return self

    config: Config

    @classmethod
    def hf_config(cls, config: Config, tokenizer: Any = None) -> Any:
        """The backbone's transformers config (no weights): ``model:``'s, or built from ``architecture:``."""
        if config.model is not None:
            return load_hf_config(config.model)
        hf = config_from_architecture(config.architecture or {})
        vocab = getattr(tokenizer, "vocab_size", None)
        if isinstance(vocab, int):
            hf.vocab_size = vocab
        pad = getattr(tokenizer, "pad_token_id", None)
        if isinstance(pad, int):
            hf.pad_token_id = pad
        return hf

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:
        hf = cls.hf_config(config)
        hidden = getattr(hf, "hidden_size", None)
        layers = getattr(hf, "num_hidden_layers", None)
        if not isinstance(hidden, int) or not isinstance(layers, int):
            raise ConfigError(f"{getattr(hf, 'model_type', '?')} declares no hidden_size / num_hidden_layers")
        n = layers + 1
        for name, index in config.granularities.items():
            if not -n <= index < n:
                raise ConfigError(f"granularity {name!r} reads layer {index}, but the model has {n} hidden states",
                                  found=index)
        specs = {name: GranularitySpec("sequence", hidden) for name in config.granularities}
        specs["rtd_logits"] = GranularitySpec("sequence", 1)
        vocab = getattr(hf, "vocab_size", None) if config.model is not None else None
        specs["ids"] = GranularitySpec("sequence", vocab, values="ids")
        layers_of = "token" if "token" in config.granularities else next(iter(config.granularities))
        return EncoderSignature(specs, num_layers=n, layers_of=layers_of, causal=False)

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        from transformers import AutoModel
        from transformers.models.electra.modeling_electra import (
            ElectraDiscriminatorPredictions,
        )

        tok = runtime.tokenizer
        hf = self.hf_config(config, tok)
        if getattr(hf, "is_decoder", False) or getattr(hf, "model_type", "") in ("gpt2", "llama", "mistral", "qwen2"):
            raise ConfigError(f"electra.discriminator needs a bidirectional encoder, not {hf.model_type!r}",
                              hint="use model_type: bert or electra")
        if not isinstance(getattr(hf, "hidden_act", None), str):
            raise ConfigError(f"model type {hf.model_type!r} declares no hidden_act, which the RTD head uses",
                              hint="use model_type: bert or electra")
        if config.model is not None:
            self.backbone = load_hf_model(config.model, pretrained=runtime.load_pretrained, config=hf)
            self.model_dir = resolve_model_dir(config.model)
        else:
            try:
                self.backbone = drop_pooler(AutoModel.from_config(hf))
            except ValueError as exc:
                raise ConfigError(f"transformers cannot build model type {hf.model_type!r}: "
                                  f"{str(exc).splitlines()[0]}") from None
            self.model_dir = None
        emb = getattr(self.backbone, "embeddings", None)
        if emb is None or not isinstance(getattr(emb, "word_embeddings", None), nn.Embedding):
            raise ConfigError(f"model type {hf.model_type!r} has no BERT-style embedding layer "
                              "(embeddings.word_embeddings) for the generator to share",
                              hint="use model_type: bert or electra")
        rows = emb.word_embeddings.weight.shape[0]
        vocab = getattr(tok, "vocab_size", None)
        if isinstance(vocab, int) and vocab > rows:
            raise ConfigError(f"the tokenizer emits {vocab} token ids but the model embeds only {rows}",
                              hint="use the model's own tokenizer (algorithm: pretrained, model: the same folder)")
        positions = getattr(hf, "max_position_embeddings", None)
        max_len = getattr(tok, "max_length", None)
        if isinstance(positions, int) and isinstance(max_len, int) and max_len > positions:
            raise ConfigError(f"the tokenizer's max_length {max_len} exceeds the model's {positions} positions",
                              hint=f"set the tokenizer's max_length to at most {positions}")
        # ELECTRA's discriminator head (transformers' module, so D_t is exactly ElectraForPreTraining's)
        self.rtd_head = ElectraDiscriminatorPredictions(self.backbone.config)
        std = float(getattr(hf, "initializer_range", 0.02))
        for layer in (self.rtd_head.dense, self.rtd_head.dense_prediction):
            nn.init.normal_(layer.weight, mean=0.0, std=std)
            nn.init.zeros_(layer.bias)
        self.num_layers = int(hf.num_hidden_layers) + 1
        for name, index in config.granularities.items():
            if not -self.num_layers <= index < self.num_layers:
                raise ConfigError(f"granularity {name!r} reads layer {index}, but the model has {self.num_layers} "
                                  "hidden states", found=index)
        self._layer_of = {k: i % self.num_layers for k, i in config.granularities.items()}
        self._input_keys = model_input_keys(self.backbone)

    # -- what the generator shares
    @property
    def shared_embeddings(self) -> nn.Module:
        """The backbone's embedding layer (word, position and token-type embeddings, LayerNorm)."""
        return self.backbone.embeddings

    @property
    def hidden_size(self) -> int:
        return int(self.backbone.config.hidden_size)

    def saved_files(self) -> dict[str, Any]:
        return {"model": model_files(self.model_dir)} if self.model_dir is not None else {}

    def rtd_logits(self, hidden: Tensor) -> Tensor:
        """Replaced-token logits ``[..., 1]`` of hidden states ``[..., H]``."""
        return self.rtd_head(hidden).unsqueeze(-1)

    def forward(self, batch: Mapping[str, Tensor], output_layers: bool = False) -> Encoded:
        if "input_ids" not in batch or "attention_mask" not in batch:
            raise InputError("electra.discriminator reads input_ids and attention_mask from the tokenizer's batch")
        inputs = {k: batch[k] for k in self._input_keys if k in batch}
        want = output_layers or any(i != self.num_layers - 1 for i in self._layer_of.values())
        out = self.backbone(**inputs, output_hidden_states=want, return_dict=True)
        mask = batch["attention_mask"].bool()
        last = out.last_hidden_state
        states = tuple(out.hidden_states) if want else None
        grans: dict[str, Granularity] = {}
        for name, index in self._layer_of.items():
            grans[name] = Granularity(last if index == self.num_layers - 1 or states is None else states[index], mask)
        grans["rtd_logits"] = LazyGranularity(lambda: self.rtd_logits(last), mask)
        grans["ids"] = Granularity(batch["input_ids"], mask)
        layers_of = "token" if "token" in grans else next(iter(self._layer_of))
        return Encoded(grans, layers=states, layers_of=layers_of)
