"""A small GPT with landmark attention (``lm_benchmark/models/landmark.py``), its KV cache and top-k block retrieval.

Token stream. Real tokens are cut into blocks of ``block_size``; a landmark token follows every
complete block (``add_mem_tokens`` / ``auto_insert_landmarks`` of the official code). Stream position
``s`` holds block ``s // (block_size + 1)``; it is a landmark when ``s % (block_size + 1) == block_size``.
Outputs at landmark positions are dropped (``get_final_logits``), so the hidden state of a real token
predicts the next real token and the model reads and returns real tokens only.

Attention. Pre-LN blocks (GPT-2), rotary positions at stream indices, and in every layer the grouped
softmax of :func:`~repmix_landmark_attention.attention.landmark_grouped_softmax`:

* **full** (training, and inference with ``top_k: null``): every query sees its own block and every
  earlier block through that block's landmark (what the model is trained with);
* **retrieval** (inference with ``top_k: k``, the paper's random-access mode): per query and per head,
  the ``k`` earlier blocks whose landmarks score highest (``q · k_landmark``) are fetched whole from the
  cache and attended together with the query's own block, again through the grouped softmax. Their
  positions are re-based as in ``llama/llama_mem.py``: the retrieved blocks, in their original order,
  take the ``k`` block slots right before the query's own block, so no distance exceeds
  ``(k + 1) · (block_size + 1)`` whatever the context length; candidate landmarks are all scored at
  the position of the first slot. Each query's memory depends only on its position, so feeding a
  sequence at once or token by token gives the same result. With ``k`` ≥ the number of earlier blocks
  the retrieval mode equals the full mode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from repmix_landmark_attention.attention import (
    Rotary,
    landmark_attention_blocks,
    landmark_grouped_softmax,
)


@dataclass
class LandmarkCache:
    """Keys (before rotation) and values of every stream position, per layer; counts of real and stream tokens."""

    keys: list[Tensor] = field(default_factory=list)  # [B, H, S, hd] per layer
    values: list[Tensor] = field(default_factory=list)
    real: int = 0
    stream: int = 0


def stream_layout(start_real: int, n: int, block_size: int | None) -> tuple[Tensor, Tensor]:
    """For ``n`` real tokens after ``start_real`` earlier ones: the stream offset of each real token
    (relative to the stream position of the first one) and the flags of the new stream (True = landmark).

    A landmark follows every real token that completes a block.
    """
    if block_size is None:
        return torch.arange(n), torch.zeros(n, dtype=torch.bool)
    g = torch.arange(start_real, start_real + n)
    completes = (g + 1) % block_size == 0
    landmarks_before = torch.cumsum(completes.long(), 0) - completes.long()
    offsets = torch.arange(n) + landmarks_before
    flags = torch.zeros(n + int(completes.sum()), dtype=torch.bool)
    flags[offsets[completes] + 1] = True
    return offsets, flags


class Attention(nn.Module):
    """Multi-head attention with rotary positions and the landmark grouped softmax."""

    def __init__(self, dim: int, heads: int, dropout: float, rope_base: float) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)
        self.rotary = Rotary(self.head_dim, rope_base)

    def split(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return q, k, v  # [B, H, T, hd] each

    def merge(self, y: Tensor) -> Tensor:
        b, h, t, d = y.shape
        return self.dropout(self.proj(y.transpose(1, 2).reshape(b, t, h * d)))


class Block(nn.Module):
    """Pre-LN transformer block."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int, dropout: float, rope_base: float) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout, rope_base)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim),
                                 nn.Dropout(dropout))


class LandmarkTransformer(nn.Module):
    """Token embedding (+ one landmark vector), blocks, final LayerNorm and a tied vocabulary head."""

    def __init__(self, embed: nn.Embedding, layers: int, heads: int, mlp_ratio: int, block_size: int | None,
                 dropout: float = 0.0, rope_base: float = 10000.0, query_chunk: int = 512) -> None:
        super().__init__()
        dim = embed.embedding_dim
        self.embed = embed
        self.landmark = nn.Parameter(torch.zeros(dim)) if block_size is not None else None
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio, dropout, rope_base) for _ in range(layers))
        self.ln_f = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)
        self.block_size = block_size
        self.query_chunk = query_chunk
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith(("proj.weight", "mlp.2.weight")):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * layers))
        if self.landmark is not None:
            nn.init.normal_(self.landmark, 0.0, 0.02)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()

    def head(self, hidden: Tensor) -> Tensor:
        """Vocabulary logits (tied to the token embedding)."""
        return hidden @ self.embed.weight.t()

    # ------------------------------------------------------------------ stream
    def _stream(self, ids: Tensor, mask: Tensor | None, start_real: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Embedded stream ``[B, S, D]``, its landmark flags ``[S]``, key mask ``[B, S]`` and real offsets ``[T]``."""
        b, t = ids.shape
        offsets, flags = stream_layout(start_real, t, self.block_size)
        offsets, flags = offsets.to(ids.device), flags.to(ids.device)
        x = self.embed.weight.new_zeros(b, flags.shape[0], self.embed.embedding_dim)
        x[:, offsets] = self.embed(ids)
        keep = torch.ones(b, flags.shape[0], dtype=torch.bool, device=ids.device)
        if mask is not None:
            keep[:, offsets] = mask.bool()
        if self.landmark is not None and bool(flags.any()):
            x[:, flags] = self.landmark.to(x.dtype)
            keep[:, flags] = keep[:, torch.nonzero(flags).squeeze(-1) - 1]  # a landmark is real when its block is
        return self.drop(x), flags, keep, offsets


    # --------------------------------------------------------------- attention
    def _full(self, attn: Attention, q: Tensor, k: Tensor, v: Tensor, q_pos: Tensor, k_pos: Tensor,
              key_mask: Tensor) -> Tensor:
        """Every query against every earlier key (grouped softmax over all blocks)."""
        qr = attn.rotary(q, q_pos)
        kr = attn.rotary(k, k_pos)
        outs = []
        step = q.shape[2] if torch.is_grad_enabled() else self.query_chunk
        for s in range(0, q.shape[2], step):
            qp = q_pos[s : s + step]
            scores = qr[:, :, s : s + step] @ kr.transpose(-1, -2) / math.sqrt(attn.head_dim)
            if self.block_size is None:
                visible = (k_pos[None, :] <= qp[:, None])[None, None] & key_mask[:, None, None, :]
                w = torch.softmax(scores.masked_fill(~visible, float("-inf")), -1).nan_to_num(0.0)
            else:
                w = landmark_attention_blocks(scores, qp, key_mask, self.block_size)
            outs.append(attn.dropout(w) @ v if self.training else w @ v)
        return torch.cat(outs, dim=2)

    def _retrieval(self, attn: Attention, q: Tensor, k: Tensor, v: Tensor, q_pos: Tensor, top_k: int) -> Tensor:
        """Each query: its own block + the ``top_k`` earlier blocks with the highest landmark scores (per head)."""
        assert self.block_size is not None
        width = self.block_size + 1
        b, h, s_all, hd = k.shape
        n_blocks = s_all // width  # complete blocks (ending in a landmark) in the keys
        outs = []
        for s in range(0, q.shape[2], self.query_chunk):
            qp = q_pos[s : s + self.query_chunk]
            qc = q[:, :, s : s + self.query_chunk]
            nq = qp.shape[0]
            q_block, q_off = qp // width, qp % width
            slot0 = top_k * width  # the own block's first position after re-basing
            qr = attn.rotary(qc, (slot0 + q_off).view(1, 1, -1))
            # own block: keys at block start + j, visible for j <= the query's offset
            j = torch.arange(width, device=q.device)
            own_idx = (q_block * width)[:, None] + j[None, :]  # [Q, width]
            own_ok = (j[None, :] <= q_off[:, None]) & (own_idx < s_all)
            own_idx = own_idx.clamp_max(s_all - 1)
            k_own = attn.rotary(k[:, :, own_idx], (slot0 + j).view(1, 1, 1, -1))  # [B, H, Q, width, hd]
            v_own = v[:, :, own_idx]
            own_scores = (qr.unsqueeze(-2) @ k_own.transpose(-1, -2)).squeeze(-2) / math.sqrt(hd)  # [B, H, Q, width]
            kk = min(top_k, n_blocks)
            if kk > 0:
                lm_keys = k[:, :, width - 1 : n_blocks * width : width]  # [B, H, NB, hd]
                lm_keys = attn.rotary(lm_keys, torch.full((1,), width - 1, device=q.device))  # all at slot 0
                lm_scores = qr @ lm_keys.transpose(-1, -2)  # [B, H, Q, NB]
                earlier = torch.arange(n_blocks, device=q.device)[None, :] < q_block[:, None]  # [Q, NB]
                lm_scores = lm_scores.masked_fill(~earlier, float("-inf"))
                # top-k with ties to the most recent block (layer 1's landmark keys are all equal), so the
                # choice never depends on how many later blocks the tensor holds
                top_scores, rev = lm_scores.flip(-1).sort(dim=-1, descending=True, stable=True)
                top_scores, top_idx = top_scores[..., :kk], n_blocks - 1 - rev[..., :kk]
                valid = torch.isfinite(top_scores)
                # keep the selected blocks in their original order; invalid picks go last
                order_key = torch.where(valid, top_idx, top_idx.new_full((), n_blocks))
                order_key, perm = order_key.sort(dim=-1)
                valid = valid.gather(-1, perm)
                chosen = order_key.clamp_max(n_blocks - 1)  # [B, H, Q, kk]
                count = valid.sum(-1, keepdim=True)  # blocks actually retrieved
                slot = torch.arange(kk, device=q.device) + (top_k - count)  # retrieved blocks right before own
                mem_idx = chosen.unsqueeze(-1) * width + j  # [B, H, Q, kk, width]
                flat = mem_idx.flatten(-2)  # [B, H, Q, kk*width]
                k_mem = torch.gather(k.unsqueeze(2).expand(b, h, nq, s_all, hd), 3,
                                     flat.unsqueeze(-1).expand(*flat.shape, hd))
                v_mem = torch.gather(v.unsqueeze(2).expand(b, h, nq, s_all, hd), 3,
                                     flat.unsqueeze(-1).expand(*flat.shape, hd))
                mem_pos = (slot.unsqueeze(-1) * width + j).flatten(-2)  # [B, H, Q, kk*width]
                k_mem = attn.rotary(k_mem, mem_pos)
                mem_scores = (qr.unsqueeze(-2) @ k_mem.transpose(-1, -2)).squeeze(-2) / math.sqrt(hd)
                mem_ok = valid.unsqueeze(-1).expand(*valid.shape, width).flatten(-2)
                mem_block = torch.arange(kk, device=q.device).repeat_interleave(width).expand_as(mem_ok)
                mem_lm = (j == width - 1).repeat(kk).expand_as(mem_ok)
                scores = torch.cat([mem_scores, own_scores], -1)
                values = torch.cat([v_mem, v_own], -2)
                key_block = torch.cat([mem_block, torch.full_like(own_scores, kk, dtype=torch.long)], -1)
                key_lm = torch.cat([mem_lm, (j == width - 1).expand_as(own_scores)], -1)
                visible = torch.cat([mem_ok, own_ok.expand_as(own_scores)], -1)
            else:
                scores, values = own_scores, v_own
                key_block = torch.zeros_like(own_scores, dtype=torch.long)
                key_lm = (j == width - 1).expand_as(own_scores)
                visible = own_ok.expand_as(own_scores)
            w = landmark_grouped_softmax(scores, key_block, key_lm, torch.tensor(kk, device=q.device).view(1, 1, 1, 1),
                                         visible)
            outs.append((w.unsqueeze(-2) @ values).squeeze(-2))
        return torch.cat(outs, dim=2)

    # ----------------------------------------------------------------- forward
    def run(self, ids: Tensor, mask: Tensor | None = None, cache: LandmarkCache | None = None,
            top_k: int | None = None, output_layers: bool = False,
            use_cache: bool = False) -> tuple[Tensor, LandmarkCache | None, list[Tensor]]:
        """Hidden states ``[B, T, D]`` of the real tokens ``ids`` after ``cache`` (``None``: from the start).

        Returns the final hidden states (after ``ln_f``), the extended cache (with ``use_cache``) and,
        with ``output_layers``, the states of every layer.
        """
        start_real = cache.real if cache is not None else 0
        start_stream = cache.stream if cache is not None else 0
        x, _, keep, offsets = self._stream(ids, mask, start_real)
        n = x.shape[1]
        q_pos = torch.arange(start_stream, start_stream + n, device=ids.device)
        k_pos = torch.arange(0, start_stream + n, device=ids.device)
        key_mask = keep if cache is None else torch.cat(
            [keep.new_ones(keep.shape[0], start_stream), keep], dim=1)
        new_cache = LandmarkCache(real=start_real + ids.shape[1], stream=start_stream + n) if use_cache else None
        states = [x[:, offsets]] if output_layers else []
        for i, block in enumerate(self.blocks):
            h = block.ln1(x)
            q, k, v = block.attn.split(h)
            if cache is not None:
                k = torch.cat([cache.keys[i], k], dim=2)
                v = torch.cat([cache.values[i], v], dim=2)
            if new_cache is not None:
                new_cache.keys.append(k)
                new_cache.values.append(v)
            if top_k is not None and self.block_size is not None:
                y = self._retrieval(block.attn, q, k, v, q_pos, top_k)
            else:
                y = self._full(block.attn, q, k, v, q_pos, k_pos, key_mask)
            x = x + block.attn.merge(y)
            x = x + block.mlp(block.ln2(x))
            if output_layers and i < len(self.blocks) - 1:
                states.append(x[:, offsets])
        out = self.ln_f(x)[:, offsets]
        if output_layers:
            states.append(out)
        return out, new_cache, states
