"""``hat.hat``: a Hierarchical Autoregressive Transformer, a causal next-byte LM over HAT words.

The pipeline of Neitemeier et al. (ICLR 2025), as in the released modelling code
(``Aleph-Alpha/vllm``, ``vllm/model_executor/models/hat.py``):

1. **byte encoder**: byte embeddings, then Llama layers (RMSNorm, RoPE, SwiGLU) with causal
   self-attention over all bytes (optionally a sliding window, as in the release);
2. **encoder connector**: one learned latent query per word cross-attends to the encoder
   states of *that word's bytes only* (multi-head, softmax restricted to the word) -> one
   embedding per word;
3. **backbone**: causal Llama layers over the word embeddings;
4. **decoder connector**: the backbone outputs shifted right by one word, a learned
   ``first_word_embedding`` in slot 0: the predictive embedding of word ``i`` depends on
   words ``< i`` only;
5. **byte decoder**: layers that start from the encoder's byte states; in each, a byte
   cross-attends to the predictive embedding of its word (one key per byte, so the softmax
   weight is exactly 1 and the cross-attention is ``o_proj(v_proj(kv_norm(p)))``: the query
   and key projections, which could not change the output, are not built), then a Llama
   layer (causal byte self-attention + SwiGLU); final RMSNorm and a head over the byte
   vocabulary (256 bytes + special tokens).

Words come from :class:`repmix_hat.splitter.Segmenter`, applied to the ids inside the
encoder (``next_logprobs`` gets ids only), reading bytes left to right: byte ``t`` uses the
predictive embedding of word ``known[t]``, which depends only on words finalised by then,
all made of bytes ``<= t``. The logits at byte ``t`` therefore depend on bytes ``0..t`` only
(tested: changing later bytes or words leaves them unchanged).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
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
from repmix.sdk.lm import LazyGranularity
from torch import Tensor, nn

from repmix_hat.splitter import Segmenter
from repmix_hat.tokenizer import HAT_CITATION


# ------------------------------------------------------------------------------ building blocks
class RMSNorm(nn.Module):
    """Root-mean-square layer norm (Llama)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def rope_tables(length: int, dim: int, theta: float, device: torch.device) -> tuple[Tensor, Tensor]:
    """cos and sin [T, dh] of rotary position embedding at positions 0..length-1 (rotate-half / NeoX layout)."""
    inv = 1.0 / (theta ** (torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim))
    ang = torch.arange(length, device=device, dtype=torch.float32)[:, None] * inv
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos(), ang.sin()


def rotary(x: Tensor, rope: tuple[Tensor, Tensor]) -> Tensor:
    """Apply rotary position embedding to ``x`` [B, H, T, dh] with tables from :func:`rope_tables`."""
    cos, sin = rope
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class SelfAttention(nn.Module):
    """Causal multi-head self-attention with RoPE; ``mask`` [B, T, T] (True = may attend) or None for plain causal.

    Batches are right-padded, so plain causal attention never lets a real position see padding.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.o = nn.Linear(dim, dim, bias=False)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor], mask: Tensor | None) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k = rotary(q, rope), rotary(k, rope)
        if mask is None:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None])
        return self.o(out.transpose(1, 2).reshape(b, t, d))


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.gate_up = nn.Linear(dim, 2 * hidden, bias=False)
        self.down = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class LlamaLayer(nn.Module):
    """Pre-norm transformer layer: x + attn(norm x), then x + mlp(norm x)."""

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.attn_norm, self.attn = RMSNorm(dim), SelfAttention(dim, heads)
        self.mlp_norm, self.mlp = RMSNorm(dim), SwiGLU(dim, hidden)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor], mask: Tensor | None) -> Tensor:
        x = x + self.attn(self.attn_norm(x), rope, mask)
        return x + self.mlp(self.mlp_norm(x))


class WordConnector(nn.Module):
    """HAT's encoder connector: a learned latent query attends to the bytes of one word only.

    Because the query is the same for every word, the attention score of a byte does not
    depend on the word, and the per-word softmax is a segment softmax over the word's bytes:
    computed in O(T) with scatter operations (equal to masked attention per word; tested).
    """

    def __init__(self, byte_dim: int, word_dim: int, heads: int) -> None:
        super().__init__()
        if word_dim % heads:
            raise ConfigError(f"hidden_size {word_dim} is not divisible by heads {heads}")
        self.heads = heads
        self.latent = nn.Parameter(torch.randn(word_dim) * 0.02)
        self.kv_norm = RMSNorm(byte_dim)
        self.q = nn.Linear(word_dim, word_dim, bias=False)
        self.kv = nn.Linear(byte_dim, 2 * word_dim, bias=False)
        self.o = nn.Linear(word_dim, word_dim, bias=False)

    def forward(self, states: Tensor, words: Tensor, num_words: int) -> Tensor:
        """``states`` [B, T, De], ``words`` [B, T] (word of each byte, -1 = none) -> [B, W, D]."""
        b, t, _ = states.shape
        d = self.latent.shape[0]
        h, dh = self.heads, d // self.heads
        k, v = self.kv(self.kv_norm(states)).view(b, t, 2, h, dh).unbind(2)  # [B, T, H, dh]
        q = self.q(self.latent).view(h, dh)
        scores = (k * q).sum(-1) / math.sqrt(dh)  # [B, T, H]
        seg = torch.where(words >= 0, words, torch.full_like(words, num_words))  # padding -> a dummy word
        idx = seg[..., None].expand(b, t, h)
        top = scores.new_full((b, num_words + 1, h), float("-inf"))
        top = top.scatter_reduce(1, idx, scores.detach(), reduce="amax", include_self=True)
        weights = torch.exp(scores - top.gather(1, idx))
        den = scores.new_zeros((b, num_words + 1, h)).scatter_add(1, idx, weights)
        num = v.new_zeros((b, num_words + 1, h, dh)).scatter_add(
            1, idx[..., None].expand(b, t, h, dh), weights[..., None] * v)
        pooled = num[:, :num_words] / den[:, :num_words, :, None].clamp_min(1e-30)
        return self.o(pooled.reshape(b, num_words, d))


class DecoderLayer(nn.Module):
    """Byte decoder layer: cross-attention to the byte's predictive word embedding, then a Llama layer."""

    def __init__(self, byte_dim: int, word_dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.kv_norm = RMSNorm(word_dim)
        self.v = nn.Linear(word_dim, byte_dim, bias=False)
        self.o = nn.Linear(byte_dim, byte_dim, bias=False)
        self.layer = LlamaLayer(byte_dim, heads, hidden)

    def forward(self, x: Tensor, predictive: Tensor, rope: tuple[Tensor, Tensor], mask: Tensor | None) -> Tensor:
        # one key per byte query: softmax weight 1, the attention output is the projected value
        x = x + self.o(self.v(self.kv_norm(predictive)))
        return self.layer(x, rope, mask)


def _swiglu_hidden(dim: int, given: int | None) -> int:
    return given if given is not None else 32 * math.ceil(8 * dim / 3 / 32)


def _window_mask(t: int, window: int | None, device: torch.device) -> Tensor | None:
    """[1, T, T] bool: query i may attend key j when j <= i and i - j < window; None = plain causal."""
    if window is None or window >= t:
        return None
    pos = torch.arange(t, device=device)
    return ((pos[None, :] <= pos[:, None]) & ((pos[:, None] - pos[None, :]) < window))[None]


# ------------------------------------------------------------------------------------- encoder
class HATEncoder(Encoder):
    """Hierarchical Autoregressive Transformer: byte encoder -> word backbone -> byte decoder (a causal LM).

    Provides ``token`` (the decoder's byte states), ``word`` (the backbone's word states),
    ``logits`` (next-byte logits, computed when read) and ``ids``; implements
    :class:`repmix.sdk.CausalLM` (``next_logprobs``), so ``std.causal-lm``, ``std.bits-per-byte``,
    ``std.typo-bits-per-byte`` and ``repmix generate`` work unchanged.
    """

    citation: ClassVar[str] = HAT_CITATION

    class Config(ComponentConfig):
        """Options of ``hat``."""

        hidden_size: int = Field(192, ge=8, description="backbone (word-level) width")
        backbone_layers: int = Field(3, ge=1, description="causal transformer layers over words")
        heads: int = Field(4, ge=1, description="attention heads of the backbone and the encoder connector")
        intermediate_size: int | None = Field(None, ge=8, description="backbone SwiGLU width (default 8/3 x hidden_size, rounded up to 32)")
        byte_hidden_size: int = Field(128, ge=8, description="width of the byte encoder and decoder")
        encoder_layers: int = Field(1, ge=1, description="byte encoder layers")
        decoder_layers: int = Field(1, ge=1, description="byte decoder layers")
        byte_heads: int = Field(4, ge=1, description="attention heads of the byte layers")
        byte_intermediate_size: int | None = Field(None, ge=8, description="byte SwiGLU width (default 8/3 x byte_hidden_size, rounded up to 32)")
        window: int | None = Field(None, ge=1, description="sliding window of byte self-attention (None: all earlier bytes)")
        rope_theta: float = Field(10000.0, gt=0, description="RoPE base")

        @model_validator(mode="after")
        def _heads(self) -> HATEncoder.Config:
            if self.hidden_size % self.heads or (self.hidden_size // self.heads) % 2:
                raise ValueError(f"hidden_size {self.hidden_size} must split into {self.heads} heads of even width")
            if self.byte_hidden_size % self.byte_heads or (self.byte_hidden_size // self.byte_heads) % 2:
                raise ValueError(
                    f"byte_hidden_size {self.byte_hidden_size} must split into {self.byte_heads} heads of even width")
            return self

    config: Config
    causal: bool = True

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:
        return EncoderSignature(
            {
                "token": GranularitySpec("sequence", config.byte_hidden_size),
                "word": GranularitySpec("sequence", config.hidden_size),
                "logits": GranularitySpec("sequence", None),
                "ids": GranularitySpec("sequence", None, values="ids"),
            },
            num_layers=None,
            causal=True,
        )

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        tok = runtime.tokenizer
        vocab = getattr(tok, "vocab_size", None)
        if not isinstance(vocab, int) or vocab < 256:
            raise ConfigError("hat reads UTF-8 bytes: give the tower a byte tokenizer",
                              hint="tokenizer: {type: hat.hat-tokenizer} (or std.lm-tokenizer with algorithm: bytes)")
        token_bytes = getattr(tok, "token_bytes", None)
        if callable(token_bytes) and any(token_bytes(i) != bytes([i]) for i in (0, 65, 97, 128, 255)):
            raise ConfigError("hat reads UTF-8 bytes, but this tokenizer's ids 0-255 are not the bytes 0-255",
                              hint="tokenizer: {type: hat.hat-tokenizer} (or std.lm-tokenizer with algorithm: bytes)")
        seg = getattr(tok, "segmenter", None)
        #: the splitting rule: the tokenizer's (hat-tokenizer), else the text rule with 64-byte words
        self.segmenter: Segmenter = seg if isinstance(seg, Segmenter) else Segmenter("text", 64)
        self.vocab_size = vocab
        self.pad_token_id = getattr(tok, "pad_token_id", None)
        self.context_length: int | None = getattr(tok, "max_length", None)
        c = config
        self.embed = nn.Embedding(vocab, c.byte_hidden_size)
        byte_mlp = _swiglu_hidden(c.byte_hidden_size, c.byte_intermediate_size)
        self.encoder_layers = nn.ModuleList(
            LlamaLayer(c.byte_hidden_size, c.byte_heads, byte_mlp) for _ in range(c.encoder_layers))
        self.connector = WordConnector(c.byte_hidden_size, c.hidden_size, c.heads)
        mlp = _swiglu_hidden(c.hidden_size, c.intermediate_size)
        self.backbone = nn.ModuleList(LlamaLayer(c.hidden_size, c.heads, mlp) for _ in range(c.backbone_layers))
        self.first_word_embedding = nn.Parameter(torch.randn(c.hidden_size) * 0.02)
        self.decoder_layers = nn.ModuleList(
            DecoderLayer(c.byte_hidden_size, c.hidden_size, c.byte_heads, byte_mlp)
            for _ in range(c.decoder_layers))
        self.final_norm = RMSNorm(c.byte_hidden_size)
        self.head = nn.Linear(c.byte_hidden_size, vocab, bias=False)
        self.apply(self._init)
        #: fallbacks the segmenter took on the ids this encoder read (invalid_bytes, long_word_cuts)
        self.counts: Counter[str] = Counter()

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)

    # -- segmentation
    def _segment(self, batch: Mapping[str, Tensor], ids: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        if "hat_words" in batch and "hat_known" in batch and batch["hat_words"].shape == ids.shape:
            return batch["hat_words"].to(ids.device), batch["hat_known"].to(ids.device)
        words = torch.full(ids.shape, -1, dtype=torch.long)
        known = torch.zeros(ids.shape, dtype=torch.long)
        rows, lengths = ids.tolist(), valid.sum(1).tolist()
        for i, (row, n) in enumerate(zip(rows, lengths)):
            seg = self.segmenter.segment(row[:n])
            words[i, :n] = torch.tensor(seg.words, dtype=torch.long)
            known[i, :n] = torch.tensor(seg.known, dtype=torch.long)
            self.counts.update({k: v for k, v in seg.counts.items() if k != "special"})
        return words.to(ids.device), known.to(ids.device)

    def _check(self, ids: Tensor, valid: Tensor) -> None:
        if ids.numel() and (int(ids.max()) >= self.vocab_size or int(ids.min()) < 0):
            raise InputError(f"hat read an id outside 0..{self.vocab_size - 1}")
        if valid.shape[1] > 1 and bool((valid[:, 1:] & ~valid[:, :-1]).any()):
            raise InputError("hat expects right-padded batches (real ids first, then padding)")

    # -- forward
    def _run(self, ids: Tensor, valid: Tensor, words: Tensor, known: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Decoder byte states [B, T, De], word states [B, W, D] and the word mask [B, W]."""
        b, t = ids.shape
        c = self.config
        byte_rope = rope_tables(t, c.byte_hidden_size // c.byte_heads, c.rope_theta, ids.device)
        byte_mask = _window_mask(t, c.window, ids.device)
        x = self.embed(ids.masked_fill(~valid, 0))
        for layer in self.encoder_layers:
            x = layer(x, byte_rope, byte_mask)
        words = words.masked_fill(~valid, -1)
        num_words = max(int(words.max()) + 1, 1)
        word_states = self.connector(x, words, num_words)
        counts = words.max(1).values + 1  # words are numbered 0.. in each row
        word_valid = torch.arange(num_words, device=ids.device)[None, :] < counts[:, None]
        word_rope = rope_tables(num_words, c.hidden_size // c.heads, c.rope_theta, ids.device)
        hw = word_states
        for layer in self.backbone:
            hw = layer(hw, word_rope, None)
        predictive = torch.cat([self.first_word_embedding.expand(b, 1, -1), hw[:, :-1]], dim=1)  # [B, W, D]
        per_byte = predictive.gather(1, known.clamp(0, num_words - 1)[..., None].expand(b, t, hw.shape[-1]))
        h = x
        for layer in self.decoder_layers:
            h = layer(h, per_byte, byte_rope, byte_mask)
        return self.final_norm(h), hw, word_valid

    def forward(self, batch: Mapping[str, Tensor], output_layers: bool = False) -> Encoded:
        ids = batch["input_ids"]
        valid = batch["attention_mask"].bool()
        self._check(ids, valid)
        words, known = self._segment(batch, ids, valid)
        states, word_states, word_valid = self._run(ids, valid, words, known)
        grans: dict[str, Granularity] = {
            "token": Granularity(states, valid),
            "word": Granularity(word_states, word_valid),
            "logits": LazyGranularity(lambda: self.head(states), valid),
            "ids": Granularity(ids, valid),
        }
        return Encoded(grans, layers=None, layers_of="token")

    # -- CausalLM
    @torch.no_grad()
    def next_logprobs(self, ids: Tensor, cache: Any = None, attention_mask: Tensor | None = None) -> tuple[Tensor, Any]:
        """Log-probs [B, T, V] of the byte after each of ``ids`` (following the prefix in ``cache``).

        The cache holds the ids read so far (and their mask); each call re-reads the whole
        prefix (no key/value cache: the segmentation of the current word may still change).
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(ids)
        if cache is not None:
            prev_ids, prev_mask = cache
            full_ids, full_mask = torch.cat([prev_ids, ids], 1), torch.cat([prev_mask, attention_mask], 1)
        else:
            full_ids, full_mask = ids, attention_mask
        valid = full_mask.bool()
        self._check(full_ids, valid)
        words, known = self._segment({}, full_ids, valid)
        states, _, _ = self._run(full_ids, valid, words, known)
        logits = self.head(states[:, -ids.shape[1]:])
        return torch.log_softmax(logits.float(), dim=-1), (full_ids, full_mask)
