"""``byte-bits``: bits per byte of a causal tower from exact byte-level probabilities.

For each document x (UTF-8 bytes), the chain rule over the exact next-byte distributions gives
log P(x) = sum_i log P(x_i | x_<i) where P sums over *every* token encoding of x (the Byte-Token
Representation Lemma), not only the canonical one. So ``bits_per_byte`` here is at most the
token-level bits per byte of std's ``bits-per-byte`` (equal for a byte tokenizer, whose encoding is
unique). ``gap_bits_per_byte`` = token-level minus exact: the mass of non-canonical encodings.
"""

from __future__ import annotations

import math
from typing import ClassVar

from pydantic import Field
from repmix.sdk import AssembledModel, ComponentConfig, Evaluator, Examples, InputError

from repmix_exact_byte_probs.adapters import causal_token_lm, check_lossless, space_boundary
from repmix_exact_byte_probs.btr import ByteLM

CITATION = (
    "Phan, Amos, Gat, Havasi, Muckley & Ullrich (2025). Exact Byte-Level Probabilities from Tokenized Language "
    "Models for FIM-Tasks and Model Ensembles. ICLR 2025."
)


class ExactByteBitsEvaluator(Evaluator):
    """Exact byte-level bits per byte of a causal tower (and the canonical-encoding bits for comparison)."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``byte-bits``."""

        tower: str | None = Field(None, description="causal tower (default: the first with next_logprobs)")
        column: str | None = Field(None, description="column of the documents (default: the first)")
        limit: int | None = Field(20, ge=1, description="score at most this many documents (the walk is costly)")
        max_bytes: int = Field(
            120, ge=1, description="score the leading bytes of each document, at most this many (fits the context)"
        )
        score_end: bool = Field(False, description="also score the end of text (std's bits-per-byte does not)")
        renormalize: bool = Field(
            False, description="condition each step on the next symbol being a byte or the end (true), or keep the "
            "mass the model gives other special tokens, as token-level scoring does (false: comparable with bits-per-byte)",
        )
        commit_at_spaces: bool = Field(
            True, description="condition on the canonical tokens before each space that follows a non-space "
            "(a boundary a GPT-2 style pretokenizer guarantees); false enumerates every encoding from the start",
        )

    config: Config

    def _tower(self, model: AssembledModel) -> tuple[object, object]:
        names = [self.config.tower] if self.config.tower else model.tower_names
        for name in names:
            if name not in model.tower_names:
                raise InputError(f"byte-bits: the model has no tower {name!r}")
            t = model.tower(name)
            if callable(getattr(t.encoder, "next_logprobs", None)) and getattr(t.encoder, "causal", True) is not False:
                return t.encoder, t.tokenizer
        raise InputError("byte-bits needs a causal tower (e.g. hf-lm with a gpt2 architecture)")

    def evaluate(self, model: AssembledModel, data: Examples) -> dict[str, float]:
        c = self.config
        col = data.columns.get(c.column) if c.column else next(iter(data.columns.values()), None)
        if col is None:
            raise InputError(f"byte-bits: no column {c.column!r}; columns: {', '.join(data.columns)}")
        texts = []
        for t in list(col)[: c.limit]:
            if not isinstance(t, str):
                raise InputError(f"byte-bits scores text documents, got {type(t).__name__}")
            cut = t.encode("utf-8")[: c.max_bytes].decode("utf-8", errors="ignore")
            if cut:
                texts.append(cut)
        if not texts:
            raise InputError("byte-bits: no non-empty documents to score")
        encoder, tokenizer = self._tower(model)
        ctx = getattr(encoder, "context_length", None)
        if isinstance(ctx, int) and c.max_bytes + 1 > ctx:
            raise InputError(
                f"byte-bits: max_bytes {c.max_bytes} does not fit the model's context of {ctx} positions "
                "(the beginning-of-text token and every byte of the scored prefix must fit)",
                hint=f"set max_bytes to at most {ctx - 1}",
            )
        check_lossless(tokenizer, texts)
        lm, vocab, end_id = causal_token_lm(encoder, tokenizer)
        was_training = model.training
        model.eval()
        exact = canonical = 0.0
        n_bytes = 0
        try:
            for text in texts:
                byte_lm = ByteLM(lm, vocab, end_id)
                x = text.encode("utf-8")

                def encode(prefix: bytes) -> list[int]:
                    return list(tokenizer.encode_plain(prefix.decode("utf-8")))

                lp = byte_lm.byte_logprobs(x, boundaries=space_boundary if c.commit_at_spaces else None,
                                           encode=encode if c.commit_at_spaces else None,
                                           renormalize=c.renormalize)
                exact -= float(lp.sum() if c.score_end else lp[:-1].sum())
                ids = tuple(encode(x))
                for k in range(len(ids) + (1 if c.score_end else 0)):
                    nxt = ids[k] if k < len(ids) else end_id
                    canonical -= float(byte_lm._cached(ids[:k])[nxt])
                n_bytes += len(x)
        finally:
            model.train(was_training)
        exact_bpb = exact / math.log(2) / n_bytes
        canon_bpb = canonical / math.log(2) / n_bytes
        return {"bits_per_byte": exact_bpb, "canonical_bits_per_byte": canon_bpb,
                "gap_bits_per_byte": canon_bpb - exact_bpb, "bytes": float(n_bytes), "documents": float(len(texts))}
