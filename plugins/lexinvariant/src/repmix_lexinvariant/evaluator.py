"""``lexinvariant.position-nll``: next-token loss by position in the context.

A lexinvariant LM knows nothing about a token until it has seen it, so its loss should fall
with the position in the sequence (the paper's in-context deciphering): this evaluator
measures that curve for any causal tower. Each document long enough to fill the window is
cut to its first ``context - 1`` tokens, scored after the beginning-of-text token, and the
per-position losses are averaged over documents and reported in ``buckets`` equal ranges
of positions (``nll_1`` = the first range). With ``cipher_seed``, every non-special token id
is first replaced through a seeded random permutation of the vocabulary (a substitution
cipher): a lexinvariant model's numbers do not change at all, an ordinary LM's collapse.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field
from repmix.sdk import AssembledModel, ComponentConfig, Evaluator, Examples, InputError

from repmix_lexinvariant.model import CITATION


def _causal_tower(model: AssembledModel, tower: str | None) -> tuple[Any, Any]:
    for name in [tower] if tower is not None else model.tower_names:
        t = model.tower(name)
        if callable(getattr(t.encoder, "next_logprobs", None)) and getattr(t.encoder, "causal", True) is not False:
            return t.tokenizer, t.encoder
    raise InputError(f"{'tower ' + repr(tower) if tower else 'no tower'} is a causal LM: position-nll needs next_logprobs")


class PositionNLLEvaluator(Evaluator):
    """Mean next-token NLL (nats) by position range in the context, optionally under a substitution cipher."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``position-nll``."""

        tower: str | None = Field(None, description="causal tower (default: the first causal one)")
        context: int | None = Field(None, ge=3, description="window in tokens, [BOS] included (default: the model's)")
        buckets: int = Field(4, ge=1, le=64, description="equal ranges of positions to report")
        limit: int | None = Field(None, ge=1, description="score at most this many (long enough) documents")
        batch_size: int = Field(8, ge=1, description="windows per forward pass")
        cipher_seed: int | None = Field(None, description="apply a seeded random permutation of the non-special ids first")

    config: Config

    def evaluate(self, model: AssembledModel, data: Examples) -> dict[str, float]:
        c = self.config
        tok, enc = _causal_tower(model, c.tower)
        bos = getattr(tok, "bos_token_id", None)
        if bos is None:
            raise InputError("the tokenizer has no beginning-of-text token")
        limits = [v for v in (c.context, getattr(enc, "context_length", None), getattr(tok, "max_length", None)) if v]
        width = min(limits) if limits else 128
        if width < 3:
            raise InputError(f"position-nll needs a window of at least 3 tokens, got {width}")
        texts = next(iter(data.columns.values()))
        windows: list[list[int]] = []
        for text in texts:
            if not isinstance(text, str):
                raise InputError("position-nll reads documents as text: use a text-corpus without block_size")
            ids = tok.encode_plain(text)
            if len(ids) >= width - 1:
                windows.append(ids[: width - 1])
            if c.limit is not None and len(windows) >= c.limit:
                break
        if not windows:
            raise InputError(f"no document holds the {width - 1} tokens a window needs", hint="lower context:")
        if c.cipher_seed is not None:
            specials = set(getattr(tok, "special_ids", []) or [])
            vocab = int(tok.vocab_size)
            plain = [i for i in range(vocab) if i not in specials]
            perm = torch.randperm(len(plain), generator=torch.Generator().manual_seed(c.cipher_seed)).tolist()
            table = {p: plain[q] for p, q in zip(plain, perm)}
            windows = [[table.get(i, i) for i in w] for w in windows]
        total = torch.zeros(width - 1, dtype=torch.float64)
        was = model.training
        model.eval()
        try:
            for s in range(0, len(windows), c.batch_size):
                ids = torch.tensor([[bos, *w] for w in windows[s : s + c.batch_size]], device=model.device)
                logprobs, _ = enc.next_logprobs(ids, None, attention_mask=torch.ones_like(ids))
                lp = logprobs[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1)
                total -= lp.double().sum(0).cpu()
        finally:
            model.train(was)
        per_pos = total / len(windows)
        edges = torch.linspace(0, width - 1, c.buckets + 1).round().long().tolist()
        out = {f"nll_{k + 1}": float(per_pos[edges[k] : edges[k + 1]].mean()) for k in range(c.buckets)}
        out["nll_drop"] = out["nll_1"] - out[f"nll_{c.buckets}"]
        out["nll"] = float(per_pos.mean())
        out["documents"] = float(len(windows))
        return out
