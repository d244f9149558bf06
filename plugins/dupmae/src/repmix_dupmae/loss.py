"""``dupmae.duplex``: DupMAE's pre-training objective ``L = L_dec + 0.1 L_bow + L_enc``.

For every text of the towers it covers (encoded by ``dupmae.encoder``, which masked the input
in training mode):

* ``L_enc`` — MLM cross-entropy at the encoder's whole-word-masked positions (p = 0.3);
* ``L_dec`` — [CLS]-conditioned reconstruction ("enhanced decoding"): the encoder's
  ``h_cls`` (from the masked text) and the embeddings of the **original** text go through the
  one-layer decoder under per-row whole-word masks (p = 0.5, row i never sees position i); every
  original token except the special ones is predicted through the tied MLM head (cross-entropy);
* ``L_bow`` — the ordinary-token vector ``e_ot = max_{t>=1} Z_t`` of the encoder's MLM logits
  ``Z`` predicts the text's bag of words:
  ``L_bow = mean_b [ -sum_v w_v log_softmax(e_ot)_v ]`` with ``w_v = 1/L`` for every distinct
  token v of the text (L = its number of non-special tokens; a repeated token counts once, so
  ``sum_v w_v = #distinct / L <= 1``).

The loss reads no alignment (``on: []``). It reaches the encoder of each tower through
``LossInputs.towers`` for the decoder and the head (both share the encoder's embeddings).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from repmix.sdk import (
    ComponentConfig,
    InputError,
    Loss,
    LossInputs,
    LossOutput,
    Runtime,
)
from torch import Tensor

from repmix_dupmae import CITATION
from repmix_dupmae.encoder import EXTRA_INPUT_IDS, EXTRA_MLM_LABELS, DupMAEEncoder
from repmix_dupmae.poolers import ordinary_token_vector


def bag_of_words_weights(input_ids: Tensor, content: Tensor, vocab_size: int) -> Tensor:
    """w [B, V]: 1/L at every distinct token of a text (L = its number of content tokens), 0 elsewhere.

    A repeated token gets 1/L once (max-scatter), as the official collator's ``weight[t] = 1/len``.
    """
    lengths = content.sum(dim=1, keepdim=True).clamp(min=1).to(torch.float32)
    values = content.to(torch.float32) / lengths
    weights = torch.zeros(input_ids.shape[0], vocab_size, device=input_ids.device)
    return weights.scatter_reduce(1, input_ids, values, reduce="amax", include_self=True)


def bag_of_words_loss(ot: Tensor, weights: Tensor) -> Tensor:
    """``mean_b [ -sum_v w_v log_softmax(e_ot)_v ]`` (the official ``decoder_ot_loss``)."""
    return torch.mean(-torch.sum(weights * F.log_softmax(ot, dim=-1), dim=1))


class DuplexLoss(Loss):
    """DupMAE: CLS-conditioned reconstruction + bag-of-words on ordinary tokens + encoder MLM."""

    citation: ClassVar[str] = CITATION
    num_alignments: ClassVar[int | None] = 0

    class Config(ComponentConfig):
        """Options of ``dupmae.duplex``."""

        towers: list[str] | None = Field(
            None, description="towers whose texts are reconstructed (default: every tower encoded by dupmae.encoder)"
        )
        decoder_mask_prob: float = Field(0.5, gt=0, lt=1, description="whole-word masking rate of the decoder rows (0.5)")
        decoder_weight: float = Field(1.0, ge=0, description="weight of L_dec (1)")
        bow_weight: float = Field(0.1, ge=0, description="weight of L_bow (0.1, bow_loss_weight)")
        encoder_weight: float = Field(1.0, ge=0, description="weight of L_enc, the encoder's MLM loss (1)")
        vocab_source: str = Field("vocab", description="the encoder's vocabulary-logit granularity")

    config: Config

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)

    def _towers(self, inputs: LossInputs) -> list[str]:
        if self.config.towers is not None:
            missing = [t for t in self.config.towers if t not in inputs.outputs]
            if missing:
                raise InputError(f"dupmae.duplex: towers {missing} were not encoded in this batch")
            return list(self.config.towers)
        names = [t for t in inputs.outputs if isinstance(inputs.towers[t].encoder, DupMAEEncoder)]
        if not names:
            raise InputError("dupmae.duplex found no tower encoded by dupmae.encoder in this batch")
        return names

    def tower_terms(self, inputs: LossInputs, tower: str) -> dict[str, Tensor]:
        """The three terms for one tower's texts."""
        encoder = inputs.towers[tower].encoder
        if not isinstance(encoder, DupMAEEncoder):
            raise InputError(
                f"dupmae.duplex needs tower {tower!r} encoded by dupmae.encoder, got {type(encoder).__name__}"
            )
        encoded = inputs.outputs[tower]
        if self.config.vocab_source not in encoded:
            raise InputError(f"dupmae.duplex needs the {self.config.vocab_source!r} logits: set vocab_logits: true")
        input_ids = encoded.extras[EXTRA_INPUT_IDS]
        tokens, logits = encoded["token"], encoded[self.config.vocab_source]
        mask = tokens.full_mask()
        if not bool(mask[:, 0].all()):
            raise InputError("dupmae.duplex expects right-padded input ([CLS] at position 0), as BERT tokenizers give")
        content = mask & ~encoder.special_ids[input_ids]
        terms: dict[str, Tensor] = {}
        labels = encoded.extras.get(EXTRA_MLM_LABELS)
        if labels is not None and bool((labels != -100).any()):
            terms["encoder_mlm"] = F.cross_entropy(logits.hidden.flatten(0, 1), labels.flatten(), ignore_index=-100)
        allowed = encoder.decoder_attention(input_ids, mask, self.config.decoder_mask_prob)
        decoded = encoder.decode(tokens.hidden[:, 0], input_ids, allowed)
        targets = input_ids.masked_fill(~content, -100)
        terms["decoder"] = F.cross_entropy(decoded.flatten(0, 1), targets.flatten(), ignore_index=-100)
        weights = bag_of_words_weights(input_ids, content, logits.dim)
        terms["bow"] = bag_of_words_loss(ordinary_token_vector(logits.hidden, mask), weights)
        return terms

    def forward(self, inputs: LossInputs) -> LossOutput:
        """``decoder_weight * L_dec + bow_weight * L_bow + encoder_weight * L_enc``, averaged over towers."""
        if not inputs.towers:
            raise InputError("dupmae.duplex needs LossInputs.towers to reach the encoder's decoder and head")
        towers = self._towers(inputs)
        weights = {"decoder": self.config.decoder_weight, "bow": self.config.bow_weight,
                   "encoder_mlm": self.config.encoder_weight}
        total: Tensor | None = None
        logs: dict[str, float] = {}
        for tower in towers:
            for name, value in self.tower_terms(inputs, tower).items():
                term = weights[name] * value / len(towers)
                total = term if total is None else total + term
                logs[name] = logs.get(name, 0.0) + float(value.detach()) / len(towers)
        assert total is not None
        return LossOutput(total, logs)
