"""The ZeTT hypernetwork (``hf_hypernet/modeling_hypernet.py``, ``ZettHypernet``), in PyTorch.

For each target token, its decomposition into at most ``surface_maxlen`` source ids (see
:mod:`repmix_zett.vocabulary`) is embedded with the **source** embedding matrix (frozen, an input
of the network, not a weight), rescaled by a fixed affine map (``in_scaler``: every dimension to
mean 0 and standard deviation 0.02, the transformer's initialiser range), projected
(``Linear`` + ``ProjectorBlock``), run through a small RoBERTa-style transformer encoder (post-LN
BERT layers, learned positions 0..S-1, padding masked), and the hidden state at position 0 is
projected back (``ProjectorBlock`` + ``Linear``) and rescaled (``scaler``: fixed per-dimension
affine map chosen at initialisation so the untrained outputs have the source embeddings' mean
and standard deviation, ``Rescaler.scale_to``). As in the official code, special tokens get the
source embedding of the same special token, never a prediction.

There is no attention between different target tokens (``hn_add_inter_token_attention=False``,
the default): a token's embedding depends on its own decomposition only, so it does not change
when other tokens are added to or removed from the target vocabulary.

Left out (see docs/plugins/zett.md): the separate output-embedding head and the bias head (the
source here is an encoder whose input embeddings are its only vocabulary matrix), language-id
embeddings, and the fallback embeddings for ids beyond the source vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: The transformer's initialiser range; ``in_scaler`` maps source embeddings to this standard deviation.
INIT_RANGE = 0.02
EPSILON = 1e-8


class ProjectorBlock(nn.Module):
    """``LayerNorm(x + GELU(W2 GELU(W1 x)))`` (tanh-approximated GELU), as in the official code."""

    def __init__(self, dim: int, intermediate: int) -> None:
        super().__init__()
        self.dense1 = nn.Linear(dim, intermediate)
        self.dense2 = nn.Linear(intermediate, dim)
        self.ln = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: Tensor) -> Tensor:
        h = F.gelu(self.dense2(F.gelu(self.dense1(x), approximate="tanh")), approximate="tanh")
        return self.ln(h + x)


@dataclass(frozen=True)
class HypernetArchitecture:
    """Sizes of a hypernetwork (the JSON of a checkpoint's ``architecture``)."""

    n_embd: int
    source_vocab_size: int
    layers: int = 3
    hidden: int = 768
    intermediate: int = 1536
    heads: int = 12
    surface_maxlen: int = 7

    def to_dict(self) -> dict[str, int]:
        """Plain JSON-able dict."""
        return dict(self.__dict__)


def scale_to(x: Tensor, target_mean: Tensor, target_std: Tensor) -> tuple[Tensor, Tensor]:
    """``Rescaler.scale_to``: per-dimension (w, b) with ``w x + b`` of mean ``target_mean`` and std ``target_std``."""
    w = target_std / (x.std(dim=0) + EPSILON)
    b = target_mean - (x * w).mean(dim=0)
    return w, b


class ZettHypernetModule(nn.Module):
    """Target-token decompositions ``[N, S]`` (source ids) -> predicted input embeddings ``[N, D]``."""

    def __init__(self, arch: HypernetArchitecture) -> None:
        super().__init__()
        from transformers import BertConfig, BertModel

        self.arch = arch
        d, h = arch.n_embd, arch.hidden
        self.register_buffer("source_embeddings", torch.zeros(arch.source_vocab_size, d))
        self.register_buffer("in_w", torch.ones(d))
        self.register_buffer("in_b", torch.zeros(d))
        self.register_buffer("out_w", torch.ones(d))
        self.register_buffer("out_b", torch.zeros(d))
        self.input_projection = nn.Sequential(nn.Linear(d, h), ProjectorBlock(h, arch.intermediate))
        config = BertConfig(
            vocab_size=1,
            hidden_size=h,
            num_hidden_layers=arch.layers,
            num_attention_heads=arch.heads,
            intermediate_size=arch.intermediate,
            max_position_embeddings=arch.surface_maxlen,
            type_vocab_size=1,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            initializer_range=INIT_RANGE,
            pad_token_id=0,
        )
        self.encoder = BertModel(config, add_pooling_layer=False)
        # inputs are always embeddings of source ids: the token table is never read
        self.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
        self.output_projection = nn.Sequential(ProjectorBlock(h, arch.intermediate), nn.Linear(h, d))

    def set_source_embeddings(self, weight: Tensor) -> None:
        """Copy the source model's input embeddings in and set ``in_scaler`` from their statistics."""
        if tuple(weight.shape) != tuple(self.source_embeddings.shape):
            raise ValueError(f"source embeddings of shape {tuple(weight.shape)}, expected {tuple(self.source_embeddings.shape)}")
        with torch.no_grad():
            self.source_embeddings.copy_(weight.detach().float())
            w, b = scale_to(
                self.source_embeddings,
                torch.zeros(weight.shape[1], device=weight.device),
                torch.full((weight.shape[1],), INIT_RANGE, device=weight.device),
            )
            self.in_w.copy_(w)
            self.in_b.copy_(b)

    def raw(self, ids: Tensor, mask: Tensor) -> Tensor:
        """Predictions before ``scaler`` (used to initialise it)."""
        x = F.embedding(ids, self.source_embeddings) * self.in_w + self.in_b
        hidden = self.encoder(inputs_embeds=self.input_projection(x), attention_mask=mask.long()).last_hidden_state
        return self.output_projection(hidden[:, 0])

    def forward(self, ids: Tensor, mask: Tensor, special: Tensor | None = None) -> Tensor:
        """Predicted embeddings; rows flagged ``special`` take the source embedding of their first id."""
        if ids.dim() != 2 or ids.shape != mask.shape:
            raise ValueError(f"ids {tuple(ids.shape)} and mask {tuple(mask.shape)} must both be [N, S]")
        if ids.shape[1] > self.arch.surface_maxlen:
            raise ValueError(f"decompositions of {ids.shape[1]} ids exceed surface_maxlen {self.arch.surface_maxlen}")
        pred = self.raw(ids, mask) * self.out_w + self.out_b
        if special is not None and bool(special.any()):
            pred = torch.where(special[:, None], self.source_embeddings[ids[:, 0]].to(pred.dtype), pred)
        return pred

    @torch.no_grad()
    def init_output_scaler(self, ids: Tensor, mask: Tensor, target: Tensor) -> None:
        """``init_rescaler``: (w, b) so that the current predictions for ``ids`` match ``target``'s mean and std."""
        pred = self.raw(ids, mask)
        w, b = scale_to(pred, target.mean(dim=0), target.std(dim=0))
        self.out_w.copy_(w)
        self.out_b.copy_(b)


def pad_decompositions(decomps: list[list[int]], pad_id: int, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
    """Right-pad decompositions to the longest: ids ``[N, S]`` (padded with ``pad_id``) and a bool mask."""
    width = max((len(d) for d in decomps), default=1) or 1
    ids = torch.full((len(decomps), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(decomps), width), dtype=torch.bool)
    for i, d in enumerate(decomps):
        ids[i, : len(d)] = torch.tensor(d, dtype=torch.long)
        mask[i, : len(d)] = True
    if device is not None:
        ids, mask = ids.to(device), mask.to(device)
    return ids, mask
