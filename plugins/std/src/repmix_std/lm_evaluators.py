"""LM evaluators: ``perplexity``, ``bits-per-byte`` and ``typo-bits-per-byte``.

All three score documents (strings) with a causal tower through :class:`repmix.sdk.CausalLM`
(``next_logprobs``), so they work with any causal encoder and any tokenizer that offers
``encode_plain`` and a beginning-of-text id:

* each document is tokenized without special tokens and cut into windows of at most
  ``context - 1`` tokens; each window is scored after the beginning-of-text token, so every
  token of the document is predicted exactly once (non-overlapping windows; a token's
  context never crosses a window boundary);
* ``nll`` = the total negative log-likelihood (nats) of the documents' tokens, ``tokens`` their
  number, ``bytes`` the total UTF-8 bytes of the documents;
* ``perplexity`` = exp(nll / tokens) (per token: depends on the tokenizer);
  ``bits_per_byte`` = nll / ln 2 / bytes (comparable across tokenizers; exact for lossless
  tokenizers: bytes, byte-bpe, bpe/unigram without lowercasing).

The end-of-text token is not scored, so a uniform model over the 256 byte values scores
exactly 8 bits per byte. ``typo-bits-per-byte`` scores the same documents with seeded
character noise (swap adjacent, drop, insert, flip case) and reports both.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from pydantic import Field, field_validator
from repmix.sdk import AssembledModel, ComponentConfig, Evaluator, Examples, InputError, Runtime
from repmix.sdk.lm import scoring_windows

from repmix_std.lm import is_causal_lm


def causal_tower(model: AssembledModel, tower: str | None) -> tuple[str, Any, Any]:
    """``(name, tokenizer, encoder)`` of the named tower, or of the first causal one; InputError if none."""
    names = [tower] if tower is not None else model.tower_names
    for name in names:
        t = model.tower(name)
        if is_causal_lm(t.encoder):
            return name, t.tokenizer, t.encoder
    which = f"tower {tower!r}" if tower is not None else "no tower"
    raise InputError(
        f"{which} has a causal LM head: scoring and generation need a decoder (e.g. hf-lm with model_type gpt2)",
        hint="a masked-LM encoder cannot give left-to-right probabilities",
    )


def score_documents(
    model: AssembledModel, texts: Sequence[str], *, tower: str | None = None, context: int | None = None,
    batch_size: int = 8,
) -> dict[str, float]:
    """Total NLL (nats), tokens and bytes of ``texts`` under the causal tower (see the module docs)."""
    _, tok, enc = causal_tower(model, tower)
    windows, n_bytes = scoring_windows(tok, enc, texts, context)
    device = model.device
    nll, tokens = 0.0, 0
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(windows), batch_size):
            chunk = windows[i : i + batch_size]
            w = max(len(r) for r in chunk)
            ids = torch.zeros((len(chunk), w), dtype=torch.long)
            mask = torch.zeros((len(chunk), w), dtype=torch.long)
            for k, r in enumerate(chunk):
                ids[k, : len(r)] = torch.tensor(r)
                mask[k, : len(r)] = 1
            ids, mask = ids.to(device), mask.to(device)
            logprobs, _ = enc.next_logprobs(ids, None, attention_mask=mask)
            lp = logprobs[:, :-1].gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
            valid = mask[:, 1:].bool()
            nll -= float(lp[valid].double().sum())
            tokens += int(valid.sum())
    finally:
        model.train(was_training)
    return {"nll": nll, "tokens": float(tokens), "bytes": float(n_bytes)}


def lm_metrics(scored: dict[str, float]) -> dict[str, float]:
    nll, tokens, n_bytes = scored["nll"], scored["tokens"], scored["bytes"]
    return {
        "bits_per_byte": nll / math.log(2) / max(n_bytes, 1.0),
        "perplexity": math.exp(nll / max(tokens, 1.0)),
        "nll_per_token": nll / max(tokens, 1.0),
        "tokens": tokens,
        "bytes": n_bytes,
        "bytes_per_token": n_bytes / max(tokens, 1.0),
    }


class _LMEvalConfig(ComponentConfig):
    tower: str | None = Field(None, description="causal tower to score with (default: the first causal one)")
    context: int | None = Field(None, ge=2, description="window length in tokens (default: the model's context / max_length)")
    batch_size: int = Field(8, ge=1, description="windows per forward pass")
    limit: int | None = Field(None, ge=1, description="score at most this many documents")


class PerplexityEvaluator(Evaluator):
    """Token perplexity (and bits per byte) of a causal tower on documents."""

    citation: ClassVar[str] = "Jelinek et al. (1977). Perplexity — a measure of the difficulty of speech recognition tasks."

    class Config(_LMEvalConfig):
        pass

    config: Config

    def _texts(self, data: Examples) -> list[str]:
        column = data.columns.get(self.config.tower or "", None)
        if column is None:
            column = next(iter(data.columns.values()))
        texts = list(column)
        return texts[: self.config.limit] if self.config.limit else texts

    def evaluate(self, model: AssembledModel, data: Examples) -> dict[str, float]:
        c = self.config
        return lm_metrics(score_documents(model, self._texts(data), tower=c.tower, context=c.context,
                                          batch_size=c.batch_size))


class BitsPerByteEvaluator(PerplexityEvaluator):
    """Bits per UTF-8 byte: total NLL / ln 2 / total bytes — comparable across tokenizers."""

    citation: ClassVar[str] = "Gao et al. (2020). The Pile: An 800GB Dataset of Diverse Text for Language Modeling (bits per byte)."


NOISE_KINDS = ("swap", "drop", "insert", "case")


def add_typos(text: str, rate: float, rng: random.Random, kinds: Sequence[str] = NOISE_KINDS) -> str:
    """Seeded character noise: each character, with probability ``rate``, gets one of ``kinds``."""
    out: list[str] = []
    chars = list(text)
    i = 0
    letters = "abcdefghijklmnopqrstuvwxyz"
    while i < len(chars):
        ch = chars[i]
        if rng.random() >= rate:
            out.append(ch)
            i += 1
            continue
        kind = kinds[rng.randrange(len(kinds))]
        if kind == "swap" and i + 1 < len(chars):
            out.extend([chars[i + 1], ch])
            i += 2
            continue
        if kind == "drop":
            i += 1
            continue
        if kind == "insert":
            out.extend([ch, letters[rng.randrange(26)]])
        elif kind == "case":
            out.append(ch.swapcase())
        else:
            out.append(ch)
        i += 1
    return "".join(out)


class TypoBitsPerByteEvaluator(PerplexityEvaluator):
    """Bits per byte on clean and on seeded-typo text (swap, drop, insert, case)."""

    citation: ClassVar[str] = "repmix std: typo-robustness variant of bits per byte."

    class Config(_LMEvalConfig):
        rate: float = Field(0.05, gt=0, le=1, description="probability that a character is corrupted")
        kinds: list[str] = Field(default_factory=lambda: list(NOISE_KINDS), description="noise kinds: swap, drop, insert, case")
        seed: int = Field(0, description="seed of the noise")

        @field_validator("kinds")
        @classmethod
        def _kinds(cls, v: list[str]) -> list[str]:
            bad = [k for k in v if k not in NOISE_KINDS]
            if bad or not v:
                raise ValueError(f"kinds must be among {', '.join(NOISE_KINDS)}, got {v}")
            return v

    config: Config

    def evaluate(self, model: AssembledModel, data: Examples) -> dict[str, float]:
        c = self.config
        texts = self._texts(data)
        rng = random.Random(c.seed)
        noisy = [add_typos(t, c.rate, rng, c.kinds) for t in texts]
        clean = lm_metrics(score_documents(model, texts, tower=c.tower, context=c.context, batch_size=c.batch_size))
        typo = lm_metrics(score_documents(model, noisy, tower=c.tower, context=c.context, batch_size=c.batch_size))
        return {
            "bits_per_byte": clean["bits_per_byte"],
            "bits_per_byte_typos": typo["bits_per_byte"],
            "bits_per_byte_increase": typo["bits_per_byte"] - clean["bits_per_byte"],
        }
