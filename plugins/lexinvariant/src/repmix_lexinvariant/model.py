"""``lexinvariant.lexinvariant``: a lexinvariant causal LM (Huang et al., NeurIPS 2023).

No token has a fixed embedding. For each sequence a random Gaussian matrix ``G`` (entries
``N(0, sigma^2)``) is drawn; a token's input embedding is its row of ``G`` (the same vector
everywhere in the sequence, a new one in the next sequence), and the output logits are the
last hidden state times the same rows (tied output layer). The model has to work out what a
token is from its co-occurrences in the context.

Rows are indexed by *order of first occurrence* in the sequence: the k-th distinct token of
a sequence gets row k. The rows are i.i.d. Gaussian, so this is the paper's distribution
over embeddings (which token gets which i.i.d. row does not change the law), and it makes the
model exactly equivariant: permuting the vocabulary ids of the input gives the same hidden
states and permutes the output distribution by the same permutation, bit for bit.

Tokens that have not occurred yet at position ``t`` share one more random row ``u`` (the
"unseen" bucket): their logits are all ``h_t . u``, so the model can only say "some new
token" and spreads that mass uniformly over the unseen vocabulary — the lexinvariant ideal,
and causal (the logits at ``t`` depend on tokens ``<= t`` only; a row for a token that occurs
later would tell which tokens are coming).

Randomness: in training, ``G`` is drawn per sequence from torch's global generator (seeded
by ``train.seed``, checkpointed with the run); in evaluation (eval mode, ``next_logprobs``) it
is drawn from ``eval_seed``, so scores are reproducible, and ``eval_draws > 1`` averages the
next-token probabilities over that many draws.

The transformer is any transformers decoder built from ``architecture:`` (as ``std.hf-lm``)
and fed ``inputs_embeds``; its own token-embedding table is reduced to one frozen row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
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
from repmix.sdk.hf import config_from_architecture
from repmix.sdk.lm import LazyGranularity, extend_prefix
from torch import Tensor

CITATION = (
    "Huang, Zelikman, Chen, Wu, Valiant, Liang (2023). Lexinvariant Language Models. NeurIPS 2023. "
    "arXiv:2305.16349."
)


def first_occurrence_ranks(ids: Tensor, valid: Tensor, pad_id: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per position the rank of its token by first occurrence, and the seen counts.

    Returns ``rank`` [B, T] (the k of the k-th distinct token; 0 at padding), ``seen`` [B, T]
    (distinct tokens among positions ``<= t``) and ``vocab_of_rank`` [B, T] (the id of the
    k-th distinct token; ``pad_id`` past the row's distinct count).
    """
    b, t = ids.shape
    same = (ids[:, :, None] == ids[:, None, :]) & valid[:, None, :] & valid[:, :, None]  # [B, T, T]
    pos = torch.arange(t, device=ids.device)
    earlier = same & (pos[None, None, :] < pos[None, :, None])
    is_first = valid & ~earlier.any(-1)
    seen = torch.cumsum(is_first.long(), 1)  # distinct tokens so far
    first_pos = torch.where(same, pos[None, None, :], t).amin(-1).clamp_max(t - 1)  # [B, T]
    rank = (seen.gather(1, first_pos) - 1).clamp_min(0) * valid
    vocab_of_rank = torch.full_like(ids, pad_id)
    src_rank = torch.where(is_first, seen - 1, torch.full_like(seen, t))  # out-of-range for non-first
    keep = src_rank < t
    vocab_of_rank[keep.nonzero(as_tuple=True)[0], src_rank[keep]] = ids[keep]
    return rank, seen, vocab_of_rank


class LexinvariantLM(Encoder):
    """Decoder-only transformer with per-sequence random Gaussian token embeddings, tied output (a causal LM)."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``lexinvariant``."""

        architecture: dict[str, Any] = Field(
            ..., description="a transformers decoder config: model_type (gpt2, llama, ...) and its keys, as in std.hf-lm")
        sigma: float | None = Field(
            None, gt=0, description="standard deviation of the random embeddings (default 1/sqrt(hidden size): unit-norm rows)")
        eval_seed: int = Field(0, description="seed of the random embeddings in evaluation and scoring")
        eval_draws: int = Field(1, ge=1, le=64, description="evaluation: average next-token probabilities over this many draws")

        @field_validator("architecture")
        @classmethod
        def _arch(cls, v: dict[str, Any]) -> dict[str, Any]:
            if not isinstance(v.get("model_type"), str):
                raise ValueError("architecture needs a model_type (e.g. gpt2 or llama)")
            return v

    config: Config
    causal: bool = True

    @classmethod
    def _hf_config(cls, config: Config) -> Any:
        hf = config_from_architecture(config.architecture)
        hf.vocab_size = 1  # no token table: embeddings come from the random matrix
        return hf

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:
        hf = cls._hf_config(config)
        hidden = getattr(hf, "hidden_size", None)
        if not isinstance(hidden, int):
            raise ConfigError(f"{hf.model_type} declares no hidden_size")
        return EncoderSignature(
            {
                "token": GranularitySpec("sequence", hidden),
                "logits": GranularitySpec("sequence", None),
                "ids": GranularitySpec("sequence", None, values="ids"),
            },
            num_layers=None,
            causal=True,
        )

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        from transformers import AutoModel

        tok = runtime.tokenizer
        vocab = getattr(tok, "vocab_size", None)
        if isinstance(vocab, bool) or not isinstance(vocab, int) or vocab < 2:
            raise ConfigError("lexinvariant needs a tokenizer with a vocab_size (e.g. std.lm-tokenizer)")
        self.vocab_size = vocab
        hf = self._hf_config(config)
        hf.is_decoder = True
        try:
            self.backbone = AutoModel.from_config(hf)
        except ValueError as exc:
            raise ConfigError(f"transformers cannot build model type {hf.model_type!r}: {str(exc).splitlines()[0]}") from None
        self.backbone.get_input_embeddings().weight.requires_grad_(False)
        self.hidden = int(hf.hidden_size)
        self.sigma = config.sigma if config.sigma is not None else 1.0 / math.sqrt(self.hidden)
        self.context_length: int | None = next(
            (int(v) for k in ("n_positions", "max_position_embeddings") if isinstance(v := getattr(hf, k, None), int)), None)
        max_len = getattr(tok, "max_length", None)
        if self.context_length is not None and isinstance(max_len, int) and max_len > self.context_length:
            raise ConfigError(f"the tokenizer's max_length {max_len} exceeds the model's {self.context_length} positions",
                              hint=f"set the tokenizer's max_length to at most {self.context_length}")

    # -- the random embeddings
    def draw(self, batch: int, rows: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
        """``[batch, rows + 1, D]`` Gaussian rows: row 0 the unseen bucket, row k + 1 the k-th distinct token."""
        g = torch.randn((batch, rows + 1, self.hidden), generator=generator, dtype=torch.float32)
        return (g * self.sigma).to(device)

    def _hidden(self, ids: Tensor, valid: Tensor, table: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        rank, seen, vocab_of_rank = first_occurrence_ranks(ids, valid, self.vocab_size)
        emb = table.gather(1, (rank + 1)[..., None].expand(-1, -1, self.hidden))
        emb = emb * valid[..., None]
        out = self.backbone(inputs_embeds=emb, attention_mask=valid.long(), return_dict=True)
        return out.last_hidden_state, seen, vocab_of_rank, table

    def _logits(self, h: Tensor, seen: Tensor, vocab_of_rank: Tensor, table: Tensor) -> Tensor:
        """[B, T, V]: h . G[rank(v)] for tokens seen at or before t, h . u for every other token."""
        b, t, _ = h.shape
        rows = table[:, 1 : t + 1]  # [B, T, D]: rank k -> row k + 1
        unseen = (h * table[:, :1, :]).sum(-1, keepdim=True)  # [B, T, 1]
        by_rank = h @ rows.transpose(1, 2)  # [B, T, K=T]
        k = torch.arange(t, device=h.device)
        known = k[None, None, :] < seen[:, :, None]
        by_rank = torch.where(known, by_rank, unseen)
        logits = unseen.expand(b, t, self.vocab_size + 1).clone()
        # ranks past a row's distinct count point at the extra column vocab_size, dropped below
        logits = logits.scatter(2, vocab_of_rank[:, None, :].expand(b, t, t), by_rank)
        return logits[..., : self.vocab_size]

    def _table(self, b: int, t: int, device: torch.device, draw: int = 0) -> Tensor:
        if self.training:
            return self.draw(b, t, None, device)
        # a fixed-size draw (the context length), so a sequence's rows do not depend on the batch width
        gen = torch.Generator().manual_seed(self.config.eval_seed * 1000 + draw)
        return self.draw(1, max(t, self.context_length or 0), gen, device).expand(b, -1, -1)

    def forward(self, batch: Mapping[str, Tensor], output_layers: bool = False) -> Encoded:
        ids = batch["input_ids"]
        valid = batch["attention_mask"].bool()
        if ids.numel() and (int(ids.max()) >= self.vocab_size or int(ids.min()) < 0):
            raise InputError(f"lexinvariant read an id outside 0..{self.vocab_size - 1}")
        b, t = ids.shape
        h, seen, vocab_of_rank, table = self._hidden(ids, valid, self._table(b, t, ids.device))
        return Encoded(
            {
                "token": Granularity(h, valid),
                "logits": LazyGranularity(lambda: self._logits(h, seen, vocab_of_rank, table), valid),
                "ids": Granularity(ids, valid),
            },
            layers=None,
            layers_of="token",
        )

    # -- CausalLM
    @torch.no_grad()
    def next_logprobs(self, ids: Tensor, cache: Any = None, attention_mask: Tensor | None = None) -> tuple[Tensor, Any]:
        """Log-probs [B, T, V] of the token after each of ``ids`` (after the prefix in ``cache``: the ids so far).

        Uses the evaluation draws (``eval_seed``, ``eval_draws``); the whole prefix is re-read
        each call (token identities are assigned by first occurrence in the prefix).
        """
        full_ids, full_mask = extend_prefix(ids, attention_mask, cache)
        valid = full_mask.bool()
        was = self.training
        self.eval()
        try:
            b, t = full_ids.shape
            draws = []
            for d in range(self.config.eval_draws):
                h, seen, vocab_of_rank, table = self._hidden(full_ids, valid, self._table(b, t, full_ids.device, d))
                draws.append(torch.log_softmax(self._logits(h, seen, vocab_of_rank, table).float(), -1))
        finally:
            self.train(was)
        lp = draws[0] if len(draws) == 1 else torch.logsumexp(torch.stack(draws), 0) - math.log(len(draws))
        return lp[:, -ids.shape[1]:], (full_ids, full_mask)
