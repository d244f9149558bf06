"""Two reference causal LMs with known memory: a unigram model (none) and a copy oracle (perfect verbatim recall).

Both implement :class:`repmix.sdk.CausalLM` (``next_logprobs``), so the evaluator scores them like any
model. They are the paper's sanity checks: a unigram model gives repeat surprisal ≈ 100 in every
condition (exactly 100 when L2 repeats L1), a copy oracle ≪ 100 on repeated lists and ≈ 100 on novel ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor


class UnigramLM(torch.nn.Module):
    """p(next token) = fixed unigram probabilities, whatever the context."""

    context_length: int | None = None

    def __init__(self, probs: Sequence[float] | Tensor) -> None:
        super().__init__()
        p = torch.as_tensor(probs, dtype=torch.float64)
        if p.dim() != 1 or (p < 0).any() or p.sum() <= 0:
            raise ValueError("probs must be a non-negative vector with positive mass")
        self.register_buffer("logp", torch.log(p / p.sum()).float())

    @classmethod
    def from_texts(cls, texts: Sequence[str], tok: Any, smoothing: float = 1.0) -> UnigramLM:
        """Add-``smoothing`` token frequencies of ``texts`` under ``tok``."""
        counts = torch.full((int(tok.vocab_size),), float(smoothing), dtype=torch.float64)
        for t in texts:
            for i in tok.encode_plain(t):
                counts[int(i)] += 1
        return cls(counts)

    def next_logprobs(self, ids: Tensor, cache: Any = None, attention_mask: Tensor | None = None) -> tuple[Tensor, Any]:
        b, t = ids.shape
        return self.logp.expand(b, t, -1).clone(), None


class CopyOracleLM(torch.nn.Module):
    """Copies verbatim: after a context whose last ``min_match``+ tokens occurred before, predict what followed.

    At each position the longest suffix of the context (at least ``min_match`` tokens) that also ends
    earlier in the sequence is found; the token that followed its most recent earlier occurrence gets
    probability ``copy_prob`` + (1 − ``copy_prob``)·unigram, every other token (1 − ``copy_prob``)·unigram.
    Without such a match the prediction is the unigram.
    """

    context_length: int | None = None

    def __init__(self, unigram: UnigramLM, copy_prob: float = 0.95, min_match: int = 3) -> None:
        super().__init__()
        if not 0 < copy_prob < 1:
            raise ValueError("copy_prob must be in (0, 1)")
        self.unigram, self.copy_prob, self.min_match = unigram, copy_prob, min_match

    def _predict(self, seq: list[int], t: int, seen: dict[int, list[int]]) -> int | None:
        """Token after the most recent earlier occurrence of the longest suffix of seq[: t + 1].

        ``seen`` maps a token to the positions before ``t`` where it occurs (candidate match ends).
        """
        best, best_len = None, self.min_match - 1
        for j in reversed(seen.get(seq[t], ())):  # j: end of an earlier occurrence, seq[j + 1] follows it
            n = 0
            while n <= j and seq[j - n] == seq[t - n]:
                n += 1
            if n > best_len:
                best, best_len = seq[j + 1], n
        return best

    def next_logprobs(self, ids: Tensor, cache: Any = None, attention_mask: Tensor | None = None) -> tuple[Tensor, Any]:
        prefix: list[list[int]] = cache if cache is not None else [[] for _ in range(ids.shape[0])]
        base = torch.log1p(torch.tensor(-self.copy_prob)) + self.unigram.logp  # log((1 - c) * p)
        out = base.expand(ids.shape[0], ids.shape[1], -1).clone()
        seqs = []
        for b in range(ids.shape[0]):
            seq = prefix[b] + [int(i) for i in ids[b]]
            seen: dict[int, list[int]] = {}
            for j in range(len(prefix[b])):
                seen.setdefault(seq[j], []).append(j)
            for k in range(ids.shape[1]):
                t = len(prefix[b]) + k
                nxt = self._predict(seq, t, seen)
                seen.setdefault(seq[t], []).append(t)
                if nxt is not None:
                    out[b, k, nxt] = torch.logaddexp(out[b, k, nxt], torch.log(torch.tensor(self.copy_prob)))
            seqs.append(seq)
        return out, seqs
