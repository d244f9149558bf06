"""The RCNN encoder: bidirectional recurrent contexts around each word embedding, tanh projection, max over time.

For word embeddings e_1..e_n of one item (paper, §"Word Representation Learning")::

    c_l(w_1) = a learned vector,   c_l(w_i) = f(W_l c_l(w_{i−1}) + W_sl e(w_{i−1}))
    c_r(w_n) = a learned vector,   c_r(w_i) = f(W_r c_r(w_{i+1}) + W_sr e(w_{i+1}))
    x_i = [c_l(w_i); e(w_i); c_r(w_i)],   y_i = tanh(W_2 x_i + b_2)
    document = max_i y_i  (element-wise)

The recurrences start at each item's own first / last real word, so padding
(on either side) never reaches a real position.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, field_validator
from repmix.sdk import (
    ComponentConfig,
    Encoded,
    Encoder,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    InputError,
    Runtime,
    masked_max,
)
from repmix.sdk.embedding import token_embedding
from torch import Tensor, nn

_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}


class RCNNEncoder(Encoder):
    """RCNN: ``token`` = y_i [B, T, hidden] (the latent semantic vectors) and a max-over-time pooled granularity.

    The vocabulary size and padding id come from the tower's tokenizer (e.g.
    std's ``hf-tokenizer``). ``pooled`` names the max-pooled granularity
    (``sentence`` by default; null to provide ``token`` only). The softmax
    classification head of the paper is left out: repmix trains the document
    vector with its losses.
    """

    citation: ClassVar[str] = (
        "Lai, Xu, Liu and Zhao (2015). Recurrent Convolutional Neural Networks for Text Classification. AAAI 2015; "
        "Lai (2016). Word and Document Embeddings based on Neural Network Approaches. PhD thesis, arXiv:1611.05962."
    )

    class Config(ComponentConfig):
        """Options of ``rcnn``."""

        embed_dim: int = Field(50, ge=1, description="|e|: word embedding width")
        context_dim: int = Field(50, ge=1, description="|c|: width of the left and right context vectors")
        hidden: int = Field(100, ge=1, description="H: width of y_i (and of the pooled document vector)")
        activation: Literal["tanh", "relu", "sigmoid"] = Field(
            "tanh", description="f, the non-linearity of the context recurrences"
        )
        pooled: str | None = Field(
            "sentence", description="name of the max-over-time granularity the encoder also provides (null: none)"
        )
        dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the word embeddings")

        @field_validator("pooled")
        @classmethod
        def _check_pooled(cls, value: str | None) -> str | None:
            if value is not None and (not value or value == "token"):
                raise ValueError("pooled must be a non-empty name other than 'token' (or null)")
            return value

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        e, c = config.embed_dim, config.context_dim
        self.embeddings = token_embedding(runtime.tokenizer, e, "rcnn")
        self.left = nn.Linear(c, c, bias=False)  # W_l
        self.left_word = nn.Linear(e, c, bias=False)  # W_sl
        self.right = nn.Linear(c, c, bias=False)  # W_r
        self.right_word = nn.Linear(e, c, bias=False)  # W_sr
        self.left_init = nn.Parameter(torch.randn(c) * 0.1)  # c_l(w_1)
        self.right_init = nn.Parameter(torch.randn(c) * 0.1)  # c_r(w_n)
        self.project = nn.Linear(2 * c + e, config.hidden)  # W_2, b_2
        self.drop = nn.Dropout(config.dropout)
        self.f = _ACTIVATIONS[config.activation]

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:
        """``token`` (sequence, ``hidden``) and, unless ``pooled`` is null, that pooled granularity (``hidden``)."""
        grans = {"token": GranularitySpec("sequence", config.hidden)}
        if config.pooled:
            grans[config.pooled] = GranularitySpec("pooled", config.hidden)
        return EncoderSignature(grans, num_layers=None)

    def contexts(self, e: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """c_l, c_r [B, T, c] for embeddings e [B, T, E]; each item's recurrences start at its own ends."""
        b, t, _ = e.shape
        c = self.config.context_dim
        left = [torch.empty(0)] * t
        right = [torch.empty(0)] * t
        init_l = self.left_init.expand(b, c)
        init_r = self.right_init.expand(b, c)
        prev = init_l
        for i in range(t):
            if i == 0:
                cur = init_l
            else:
                step = self.f(self.left(prev) + self.left_word(e[:, i - 1]))
                cur = torch.where(mask[:, i - 1 : i], step, init_l)  # previous position padding -> first word
            left[i] = cur
            prev = cur
        nxt = init_r
        for i in range(t - 1, -1, -1):
            if i == t - 1:
                cur = init_r
            else:
                step = self.f(self.right(nxt) + self.right_word(e[:, i + 1]))
                cur = torch.where(mask[:, i + 1 : i + 2], step, init_r)  # next position padding -> last word
            right[i] = cur
            nxt = cur
        return torch.stack(left, dim=1), torch.stack(right, dim=1)

    def forward(self, batch: Any, output_layers: bool = False) -> Encoded:
        """Encode ``{"input_ids", "attention_mask"}`` into y_i (``token``) and their max over time."""
        if not isinstance(batch, dict) or "input_ids" not in batch:
            raise InputError("rcnn expects a tokenizer batch with input_ids (e.g. from std.hf-tokenizer)")
        ids = batch["input_ids"]
        mask = batch["attention_mask"].bool() if "attention_mask" in batch else torch.ones_like(ids, dtype=torch.bool)
        e = self.drop(self.embeddings(ids)).masked_fill(~mask.unsqueeze(-1), 0.0)
        c_l, c_r = self.contexts(e, mask)
        y = torch.tanh(self.project(torch.cat([c_l, e, c_r], dim=-1))).masked_fill(~mask.unsqueeze(-1), 0.0)
        grans = {"token": Granularity(y, mask)}
        if self.config.pooled:
            grans[self.config.pooled] = Granularity(masked_max(y, mask))
        return Encoded(grans)
