"""``dupmae.encoder``: a BERT with a tied MLM head and RetroMAE's one-layer enhanced decoder.

How DupMAE's masked-input pre-training fits repmix
--------------------------------------------------
DupMAE encodes a *masked* copy of each text and reconstructs the original. In repmix the
tokenizer runs the same way at training and at encode time (it is not a module and knows
no mode), so the masking lives in this encoder, which does:

* in **training mode** (with ``mask_prob > 0``): whole-word mask its own input (p = 0.3,
  BERT's 80/10/10 corruption, torch's seeded generator) and encode the masked copy; the
  original ids and the MLM labels go to ``Encoded.extras`` for the loss;
* in **eval mode** (and with ``mask_prob: 0``, e.g. for fine-tuning): encode the input as is.

So ``repmix encode`` / evaluation always see clean text, and one checkpoint serves both.

The encoder also owns the two pieces the loss needs besides the backbone, because both share
the backbone's embeddings and are sized by it (a loss receives no runtime sizes in repmix):

* the MLM head (dense -> activation -> LayerNorm -> decoder), whose decoder weight **is** the
  word-embedding matrix (tied: one ``Parameter``, one storage) plus a bias. all-MiniLM-L6-v2
  ships no MLM head, so the transform is newly initialised (BERT init, std 0.02);
* the enhanced decoder: one post-LayerNorm BERT layer whose queries are
  ``Emb(inputs_embeds = h_cls)`` at every position and whose keys/values are
  ``[h_cls ; Emb(x)[1:]]`` (``Emb`` = the backbone's embedding module, as the official code).
  ``pretraining_decoder: false`` leaves it out (a plain encoder + head for fine-tuning).

Granularities: ``token`` [B, L, d] and, with ``vocab_logits``, ``vocab`` [B, L, V] (the MLM
head at every position, the input of the ordinary-token vector).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
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
    load_hf_config,
    load_hf_model,
    model_files,
    model_input_keys,
    resolve_model_dir,
    validate_model_dir,
)
from torch import Tensor, nn

from repmix_dupmae import CITATION
from repmix_dupmae.masking import corrupt, decoder_attention, encoder_mask

#: Keys of ``Encoded.extras`` written by this encoder.
EXTRA_INPUT_IDS = "dupmae.input_ids"
EXTRA_MLM_LABELS = "dupmae.mlm_labels"


def _activation(name: str) -> Any:
    from transformers.activations import ACT2FN

    return ACT2FN[name]


def _bert_init(module: nn.Module, std: float) -> None:
    """BERT's initialisation of new modules: N(0, std) weights, zero biases, unit LayerNorms."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class MLMHead(nn.Module):
    """BERT's MLM head: dense -> activation -> LayerNorm -> decoder (tied to the word embeddings) + bias."""

    def __init__(self, hidden: int, embeddings: nn.Embedding, eps: float, activation: str, std: float) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.act = _activation(activation)
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.decoder = nn.Linear(hidden, embeddings.num_embeddings, bias=False)
        _bert_init(self, std)
        self.decoder.weight = embeddings.weight  # tied: the same Parameter (one storage) as the embeddings
        self.bias = nn.Parameter(torch.zeros(embeddings.num_embeddings))

    def forward(self, hidden: Tensor) -> Tensor:
        """Logits over the vocabulary at every position."""
        return self.decoder(self.norm(self.act(self.dense(hidden)))) + self.bias


class EnhancedDecoderLayer(nn.Module):
    """One post-LayerNorm BERT layer with separate query and key/value inputs and a per-row attention mask."""

    def __init__(self, hidden: int, heads: int, intermediate: int, eps: float, activation: str,
                 dropout: float, attention_dropout: float, std: float) -> None:
        super().__init__()
        if hidden % heads:
            raise ConfigError(f"hidden size {hidden} is not divisible by {heads} attention heads")
        self.heads = heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.attention_output = nn.Linear(hidden, hidden)
        self.attention_norm = nn.LayerNorm(hidden, eps=eps)
        self.intermediate = nn.Linear(hidden, intermediate)
        self.act = _activation(activation)
        self.output = nn.Linear(intermediate, hidden)
        self.output_norm = nn.LayerNorm(hidden, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.attention_dropout = attention_dropout
        _bert_init(self, std)

    def _split(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, query: Tensor, keys: Tensor, allowed: Tensor) -> Tensor:
        """``query`` [B, L, d] attends to ``keys`` [B, L, d] where ``allowed`` [B, L, L] is True."""
        q, k, v = self._split(self.query(query)), self._split(self.key(keys)), self._split(self.value(keys))
        p = self.attention_dropout if self.training else 0.0
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed[:, None], dropout_p=p)
        ctx = ctx.transpose(1, 2).reshape(query.shape)
        attended = self.attention_norm(self.dropout(self.attention_output(ctx)) + query)
        return self.output_norm(self.dropout(self.output(self.act(self.intermediate(attended)))) + attended)


class DupMAEEncoder(Encoder):
    """A BERT that masks its own input in training, with a tied MLM head and the enhanced decoder."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``dupmae.encoder``."""

        model: str = Field(
            "all-MiniLM-L6-v2", description="local BERT directory or the packaged name 'all-MiniLM-L6-v2'"
        )
        mask_prob: float = Field(
            0.3, ge=0, lt=1, description="whole-word masking rate of the encoder input in training (DupMAE: 0.3)"
        )
        vocab_logits: bool = Field(True, description="provide the 'vocab' granularity (MLM logits at every position)")
        pretraining_decoder: bool = Field(True, description="include the one-layer enhanced decoder (pre-training)")

        @field_validator("model")
        @classmethod
        def _check_model(cls, value: str) -> str:
            return validate_model_dir(value)

    config: Config

    @classmethod
    def signature(cls, config: ComponentConfig) -> EncoderSignature:
        """``token`` (hidden size) and ``vocab`` (vocabulary size) sequences; per-layer states of ``token``."""
        assert isinstance(config, cls.Config)
        hf = load_hf_config(config.model)
        hidden, layers, vocab = (getattr(hf, k, None) for k in ("hidden_size", "num_hidden_layers", "vocab_size"))
        if not all(isinstance(v, int) for v in (hidden, layers, vocab)):
            raise ConfigError(f"model {config.model!r} declares no hidden_size / num_hidden_layers / vocab_size",
                              found=config.model)
        specs = {"token": GranularitySpec("sequence", hidden)}
        if config.vocab_logits:
            specs["vocab"] = GranularitySpec("sequence", vocab)
        return EncoderSignature(specs, num_layers=int(layers) + 1, layers_of="token")  # type: ignore[arg-type]

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        from transformers import AutoTokenizer

        directory = self.model_dir = resolve_model_dir(self.config.model)
        hf = load_hf_config(self.config.model)
        self.model = load_hf_model(self.config.model, pretrained=runtime.load_pretrained, config=hf)
        embeddings = self.model.get_input_embeddings()
        if not isinstance(embeddings, nn.Embedding):
            raise ConfigError(f"dupmae.encoder needs a model with an nn.Embedding input table, got {type(embeddings).__name__}")
        std = float(getattr(hf, "initializer_range", 0.02))
        eps = float(getattr(hf, "layer_norm_eps", 1e-12))
        act = str(getattr(hf, "hidden_act", "gelu"))
        self.head = MLMHead(hf.hidden_size, embeddings, eps, act, std)
        self.decoder: EnhancedDecoderLayer | None = None
        if self.config.pretraining_decoder:
            self.decoder = EnhancedDecoderLayer(
                hf.hidden_size, hf.num_attention_heads, hf.intermediate_size, eps, act,
                float(getattr(hf, "hidden_dropout_prob", 0.1)), float(getattr(hf, "attention_probs_dropout_prob", 0.1)), std,
            )
        tokenizer = AutoTokenizer.from_pretrained(str(directory))
        self._tokenizer_files = [n for n in getattr(tokenizer, "vocab_files_names", {}).values() if isinstance(n, str)]
        vocab = embeddings.num_embeddings
        tokens = tokenizer.convert_ids_to_tokens(list(range(min(vocab, len(tokenizer)))))
        special = torch.zeros(vocab, dtype=torch.bool)
        special[[i for i in tokenizer.all_special_ids if i < vocab]] = True
        continuation = torch.zeros(vocab, dtype=torch.bool)
        continuation[[i for i, t in enumerate(tokens) if isinstance(t, str) and t.startswith("##")]] = True
        # Vocabulary tables, not weights: not in the state_dict.
        self.register_buffer("special_ids", special, persistent=False)
        self.register_buffer("continuation_ids", continuation, persistent=False)
        if tokenizer.mask_token_id is None:
            raise ConfigError(f"the tokenizer of {self.config.model!r} has no [MASK] token; DupMAE masks its input")
        self.mask_token_id = int(tokenizer.mask_token_id)
        self.vocab_size = vocab
        given = getattr(runtime.tokenizer, "vocab_size", None)
        if isinstance(given, int) and given > vocab:
            raise ConfigError(f"the tokenizer emits {given} token ids but {self.config.model!r} embeds only {vocab}")
        self._input_keys = model_input_keys(self.model)

    def saved_files(self) -> dict[str, Path | list[Path]]:
        """config.json and the tokenizer files of the model folder (it reads the vocabulary to mask whole words)."""
        return {"model": model_files(self.model_dir, tokenizer=True, extra=self._tokenizer_files)}

    # ------------------------------------------------------------------ pieces
    def mask_inputs(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Whole-word masked copy of the input and MLM labels (-100 where not masked)."""
        chosen = encoder_mask(input_ids, attention_mask, self.special_ids.cpu(), self.continuation_ids.cpu(),
                              self.config.mask_prob)
        return corrupt(input_ids, chosen, self.mask_token_id, self.vocab_size)

    def decoder_attention(self, input_ids: Tensor, attention_mask: Tensor, prob: float) -> Tensor:
        """[B, L, L] per-row decoder masks (True = visible) at masking rate ``prob``."""
        return decoder_attention(input_ids, attention_mask, self.special_ids.cpu(), self.continuation_ids.cpu(), prob)

    def decode(self, cls: Tensor, input_ids: Tensor, allowed: Tensor) -> Tensor:
        """Enhanced decoding: vocabulary logits [B, L, V] of every position, from h_cls and the visible embeddings."""
        if self.decoder is None:
            raise InputError("dupmae.encoder was built with pretraining_decoder: false; the duplex loss needs it")
        embeddings = self.model.embeddings
        length = input_ids.shape[1]
        keys = torch.cat([cls.unsqueeze(1), embeddings(input_ids=input_ids)[:, 1:]], dim=1)
        query = embeddings(inputs_embeds=cls.unsqueeze(1).expand(-1, length, -1).contiguous())
        return self.head(self.decoder(query, keys, allowed))

    # ----------------------------------------------------------------- forward
    def forward(self, batch: dict[str, Tensor], output_layers: bool = False) -> Encoded:
        """Encode (a masked copy in training); ``token`` states and ``vocab`` logits."""
        input_ids = batch["input_ids"]
        attention = batch["attention_mask"].bool()
        inputs = {k: batch[k] for k in self._input_keys if k in batch}
        labels: Tensor | None = None
        if self.training and self.config.mask_prob > 0:
            inputs["input_ids"], labels = self.mask_inputs(input_ids, attention)
        out = self.model(**inputs, output_hidden_states=output_layers, return_dict=True)
        hidden = out.last_hidden_state
        grans = {"token": Granularity(hidden, attention)}
        if self.config.vocab_logits:
            grans["vocab"] = Granularity(self.head(hidden), attention)
        extras: dict[str, Any] = {EXTRA_INPUT_IDS: input_ids}
        if labels is not None:
            extras[EXTRA_MLM_LABELS] = labels
        layers = tuple(out.hidden_states) if output_layers else None
        return Encoded(grans, layers=layers, layers_of="token", extras=extras)
