"""Word-level byte models: the flat word layout and a pre-LN block with per-example masks.

Shared by the word-pooled byte language models (``learn-your-tokens``, ``byte2word``), after
eTok's ``_make_mask`` / ``_get_cls_indx``. Each word gets ``n`` prefix (CLS) slots in front of
its bytes, in one flat sequence per row; attention is block-diagonal (a slot sees only its own
word's slots), and for the decoder also causal inside the block. A row of ``T`` bytes and ``W``
words becomes ``T + n·W`` slots, plus one trailing padding slot that padding bytes point at.
(:class:`repmix.sdk.vit.Block` takes one mask for the whole batch; :class:`Block` here takes one
per example.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class WordLayout:
    """Where every byte and prefix slot of a batch goes (all tensors on the batch's device)."""

    word: Tensor        #: [B, T] word index of each byte (-1 at padding)
    offset: Tensor      #: [B, T] position of each byte inside its word (0 at padding)
    word_mask: Tensor   #: [B, W] bool, real words
    start: Tensor       #: [B, W] byte position where each word starts (0 for padding words)
    source: Tensor      #: [B, N] index into cat(bytes [T], prefix slots [W·n], padding [1]) of each flat slot
    group: Tensor       #: [B, N] word of each flat slot (-1 padding)
    slot: Tensor        #: [B, N] position inside the word's block (prefix i -> i, byte k -> n + k)
    byte_at: Tensor     #: [B, T] flat slot of each byte (N - 1, the padding slot, for padding)
    prefix_at: Tensor   #: [B, W, n] flat slot of each prefix slot (N - 1 for padding words)

    @property
    def num_words(self) -> int:
        return int(self.word_mask.shape[1])

    def attention(self, causal: bool) -> Tensor:
        """``[B, N, N]`` bool: a slot may attend to the slots of its own word (and, causal, only earlier ones).

        Padding slots attend to themselves only, so no row of the softmax is empty.
        """
        g = self.group
        allowed = (g[:, :, None] == g[:, None, :]) & (g[:, None, :] >= 0)
        n = g.shape[1]
        if causal:
            allowed = allowed & torch.ones(n, n, dtype=torch.bool, device=g.device).tril()
        return allowed | torch.eye(n, dtype=torch.bool, device=g.device)

    def gather(self, bytes_in: Tensor, prefix_in: Tensor) -> Tensor:
        """The flat sequence ``[B, N, D]`` from byte inputs ``[B, T, D]`` and prefix inputs ``[B, W, n, D]``."""
        b, _, d = bytes_in.shape
        src = torch.cat([bytes_in, prefix_in.reshape(b, -1, d), bytes_in.new_zeros(b, 1, d)], dim=1)
        return src.gather(1, self.source.unsqueeze(-1).expand(-1, -1, d))


def word_layout(starts: Tensor, mask: Tensor, num_prefix: int) -> WordLayout:
    """The layout of right-padded rows whose words start where ``starts`` is True (``mask``: real bytes)."""
    mask = mask.bool()
    starts = starts.bool() & mask
    b, t = starts.shape
    dev = starts.device
    n = num_prefix
    pos = torch.arange(t, device=dev).expand(b, t)
    word = torch.where(mask, torch.cumsum(starts.long(), 1) - 1, torch.full_like(pos, -1))
    last_start = torch.cummax(torch.where(starts, pos, torch.zeros_like(pos)), 1).values
    offset = torch.where(mask, pos - last_start, torch.zeros_like(pos))
    n_words = starts.sum(1)
    w = max(int(n_words.max()) if b else 0, 1)
    word_mask = torch.arange(w, device=dev)[None, :] < n_words[:, None]
    start = torch.zeros(b, w + 1, dtype=torch.long, device=dev)
    start.scatter_(1, torch.where(starts, word, torch.full_like(word, w)), pos)
    start = torch.where(word_mask, start[:, :w], torch.zeros_like(start[:, :w]))
    flat = int((mask.sum(1) + n * n_words).max()) + 1 if b else 1
    pad = flat - 1
    byte_at = torch.where(mask, pos + n * (word + 1), torch.full_like(pos, pad))
    j = torch.arange(w, device=dev)
    prefix_at = start[:, :, None] + n * j[None, :, None] + torch.arange(n, device=dev)[None, None, :]
    prefix_at = torch.where(word_mask[:, :, None], prefix_at, torch.full_like(prefix_at, pad))
    pad_source = t + w * n
    source = torch.full((b, flat), pad_source, dtype=torch.long, device=dev)
    group = torch.full((b, flat), -1, dtype=torch.long, device=dev)
    slot = torch.zeros((b, flat), dtype=torch.long, device=dev)
    flat_prefix = prefix_at.reshape(b, -1)
    source.scatter_(1, byte_at, pos)
    source.scatter_(1, flat_prefix, t + torch.arange(w * n, device=dev).expand(b, -1))
    group.scatter_(1, byte_at, word)
    group.scatter_(1, flat_prefix, j[None, :, None].expand(b, w, n).reshape(b, -1))
    slot.scatter_(1, byte_at, offset + n)
    slot.scatter_(1, flat_prefix, torch.arange(n, device=dev).repeat(w).expand(b, -1))
    source[:, pad], group[:, pad], slot[:, pad] = pad_source, -1, 0
    return WordLayout(word, offset, word_mask, start, source, group, slot, byte_at, prefix_at)


class Block(nn.Module):
    """Pre-LN transformer block (GPT-2's layout) whose attention mask differs per example."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, mlp_ratio * dim)
        self.out = nn.Linear(mlp_ratio * dim, dim)
        self.act = nn.GELU(approximate="tanh")
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, allowed: Tensor) -> Tensor:
        """``x`` [B, N, D]; ``allowed`` [B, N, N] bool (True: the query may attend to the key)."""
        b, n, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q, k, v = (z.view(b, n, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed[:, None],
                                           dropout_p=self.dropout if self.training else 0.0)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.out(self.act(self.fc(self.ln2(x)))))


def causal_word_attention(word_mask: Tensor) -> Tensor:
    """``[B, W, W]`` bool: word i attends to real words j <= i (padding words to themselves)."""
    w = word_mask.shape[1]
    tril = torch.ones(w, w, dtype=torch.bool, device=word_mask.device).tril()
    return (tril[None] & word_mask[:, None, :]) | torch.eye(w, dtype=torch.bool, device=word_mask.device)


def init_gpt2(module: nn.Module) -> None:
    """GPT-2's initialisation: N(0, 0.02) weights, zero biases, unit LayerNorms."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def rerun_next_logprobs(
    ids: Tensor,
    cache: list[list[int]] | None,
    attention_mask: Tensor | None,
    context_length: int | None,
    logits: Callable[[Tensor, Tensor], Tensor],
) -> tuple[Tensor, list[list[int]]]:
    """``CausalLM.next_logprobs`` for a model that re-reads its prefix at every call.

    A word-pooled model has no key/value cache (a word's vector changes until the word is
    complete), so the cache is the ids read so far and each call runs ``logits(ids, mask)``
    (``[B, T, V]`` for ``[B, T]`` ids and a bool mask) over prefix + new ids. A call gives at
    most ``context_length`` new ids per row; when prefix + new ids are longer, the last
    ``context_length`` are read (a sliding window, for long generations). Returns log-probs
    ``[B, T, V]`` at the new ids' positions (zeros at masked ones) and the new cache.
    """
    from repmix.core.errors import InputError

    mask = torch.ones_like(ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    given = [ids[i][mask[i]].tolist() for i in range(ids.shape[0])]
    if context_length is not None and max((len(g) for g in given), default=0) > context_length:
        raise InputError(f"{max(len(g) for g in given)} new ids in one call, more than the model's "
                         f"{context_length} positions", hint=f"score windows of at most {context_length} ids")
    if cache is not None and len(cache) != ids.shape[0]:
        raise InputError(f"the cache holds {len(cache)} rows but {ids.shape[0]} new rows were given")
    rows = given if cache is None else [list(cache[i]) + given[i] for i in range(ids.shape[0])]
    window = [r[-context_length:] if context_length else r for r in rows]
    width = max(max(len(r) for r in window), 1)
    x = torch.zeros((len(window), width), dtype=torch.long, device=ids.device)
    m = torch.zeros((len(window), width), dtype=torch.bool, device=ids.device)
    for i, r in enumerate(window):
        if r:
            x[i, : len(r)] = torch.tensor(r, dtype=torch.long)
            m[i, : len(r)] = True
    logprobs = torch.log_softmax(logits(x, m).float(), dim=-1)
    out = logprobs.new_zeros(ids.shape[0], ids.shape[1], logprobs.shape[-1])
    for i, r in enumerate(window):
        k = len(given[i])
        if k:
            out[i, torch.nonzero(mask[i]).flatten()] = logprobs[i, len(r) - k : len(r)]
    return out, rows
