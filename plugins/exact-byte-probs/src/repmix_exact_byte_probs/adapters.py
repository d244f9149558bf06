"""Connect :class:`~repmix_exact_byte_probs.btr.ByteLM` to repmix causal LMs (:class:`repmix.sdk.CausalLM`).

A repmix causal tower offers ``encoder.next_logprobs(ids, cache)`` (log-probabilities ``[B, T, V]`` of
the token after each position) and its tokenizer the LM API: ``token_bytes(id)``, ``encode_plain``,
``bos_token_id`` / ``eos_token_id``, ``vocab_size``. :func:`causal_token_lm` turns the pair into the
three things the lemma needs: ``lm(prefix) -> log-probs`` (the prefix scored after the
beginning-of-text token), the bytes of every token, and the end-of-text id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from repmix.sdk import InputError


def causal_token_lm(encoder: Any, tokenizer: Any) -> tuple[Any, list[bytes], int]:
    """``(lm, vocab_bytes, end_id)`` of a causal encoder and its tokenizer."""
    if not callable(getattr(encoder, "next_logprobs", None)) or getattr(encoder, "causal", True) is False:
        raise InputError("exact byte probabilities need a causal LM (an encoder with next_logprobs, e.g. hf-lm gpt2)")
    if not callable(getattr(tokenizer, "token_bytes", None)):
        raise InputError("exact byte probabilities need the tokenizer's token_bytes(id) (e.g. std's lm-tokenizer)")
    bos = getattr(tokenizer, "bos_token_id", None)
    eos = getattr(tokenizer, "eos_token_id", None)
    if bos is None or eos is None:
        raise InputError("the tokenizer needs beginning- and end-of-text tokens (bos_token_id, eos_token_id)")
    vocab = [bytes(tokenizer.token_bytes(i)) for i in range(int(tokenizer.vocab_size))]

    def lm(prefix: tuple[int, ...]) -> np.ndarray:
        import torch

        param = next(iter(encoder.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
        ids = torch.tensor([[bos, *prefix]], dtype=torch.long, device=device)
        logprobs, _ = encoder.next_logprobs(ids, None)
        return logprobs[0, -1].double().cpu().numpy()

    return lm, vocab, int(eos)


def check_lossless(tokenizer: Any, texts: Sequence[str]) -> None:
    """InputError unless the tokens' bytes spell every text exactly (the lemma models that byte stream)."""
    for i, text in enumerate(texts):
        ids = tokenizer.encode_plain(text)
        spelled = b"".join(tokenizer.token_bytes(t) for t in ids)
        if spelled != text.encode("utf-8"):
            raise InputError(
                f"document {i}: the tokenizer's tokens spell {spelled[:40]!r}..., not the document's bytes "
                f"{text.encode('utf-8')[:40]!r}...: exact byte probabilities need a lossless tokenizer whose "
                "tokens are the text's bytes",
                hint="use lm-tokenizer with algorithm bytes or byte-bpe (bpe/unigram add a leading '▁' space, "
                "wordpiece and lowercasing lose bytes)",
            )


def space_boundary(data: bytes, i: int) -> bool:
    """A token boundary before byte i guaranteed by a GPT-2 style pretokenizer: a space after a non-space."""
    return 0 < i < len(data) and data[i] == 0x20 and data[i - 1] not in (0x20, 0x0A, 0x09, 0x0D)
