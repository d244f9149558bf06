"""Conformance checks for the language-modelling kinds: corruptors and decoding strategies.

The main kit (:mod:`repmix.sdk.conformance`) covers tokenizers, encoders, poolers, aligners
and losses; these checks cover the two kinds added for language modelling. Each takes a
component class (or a registered name) and a config mapping, and raises
:class:`~repmix.sdk.conformance.ConformanceError` on the first failure::

    from repmix.sdk.conformance_lm import check_corruptor, check_decoding

    def test_my_masking_conforms():
        check_corruptor(MyMasking, {"rate": 0.2})

    def test_my_strategy_conforms():
        check_decoding(MyStrategy, {})

``check_corruptor`` runs the corruptor on batches of :class:`LMByteTokenizer` (a byte
tokenizer with ``[PAD] [BOS] [EOS] [MASK]``) and checks: the declaration (kind, citation,
``Config``, ``signature`` returns ids granularities), that ``forward`` returns exactly the
declared granularities with ``[B, N]`` ids and bool masks, never touches special or padding
positions, does not modify its input batch, is reproducible under a seeded generator and
differs across seeds. ``check_decoding`` runs the strategy on :class:`BigramLM` (a
deterministic toy :class:`~repmix.core.components.CausalLM`) and checks: ``max_new_tokens``
is respected, a stop id ends generation (and is kept), every id is in the vocabulary, and a
seeded generator gives the same ids twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from repmix.core.components import CausalLM, ComponentConfig, Corruptor, DecodingStrategy, Runtime, Tokenizer
from repmix.core.dataflow import EncoderSignature, GranularitySpec
from repmix.sdk.conformance import ConformanceError

__all__ = ["BigramLM", "LMByteTokenizer", "check_corruptor", "check_decoding"]


class LMByteTokenizer(Tokenizer):
    """UTF-8 bytes as ids 0..255, ``[PAD]`` 256, ``[BOS]`` 257, ``[EOS]`` 258, ``[MASK]`` 259; the LM API."""

    def __init__(self, config: ComponentConfig | None = None, runtime: Runtime | None = None) -> None:
        super().__init__(config or ComponentConfig(), runtime or Runtime())
        self.vocab_size, self.pad_token_id, self.bos_token_id, self.eos_token_id, self.mask_token_id = 260, 256, 257, 258, 259
        self.special_ids = [256, 257, 258, 259]
        self.max_length = 64

    def encode_plain(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: Sequence[int]) -> str:
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")

    def __call__(self, items: Sequence[Any]) -> dict[str, Tensor]:
        rows = [[257, *self.encode_plain(t)[:62], 258] for t in items]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), 256, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        words = torch.full((len(rows), width), -1, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
            w, prev_space = -1, True
            for k, b in enumerate(r):
                if b >= 256:
                    prev_space = True
                    continue
                if b == 32:
                    prev_space = True
                    continue
                if prev_space:
                    w += 1
                words[i, k], prev_space = w, False
        special = (ids >= 256) & (mask == 1)
        return {"input_ids": ids, "attention_mask": mask, "special_tokens_mask": special, "word_ids": words}


class BigramLM(torch.nn.Module):
    """A fixed random bigram model over ``vocab`` ids: a :class:`CausalLM` with a trivial cache."""

    def __init__(self, vocab: int = 260, seed: int = 0, context_length: int | None = 64) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.table = torch.nn.Parameter(torch.randn(vocab, vocab, generator=g) * 3, requires_grad=False)
        self.context_length = context_length

    def next_logprobs(self, ids: Tensor, cache: Any = None, attention_mask: Tensor | None = None) -> tuple[Tensor, Any]:
        seen = ids.shape[1] + (0 if cache is None else int(cache))
        return torch.log_softmax(self.table[ids], dim=-1), seen


def _fail(message: str) -> None:
    raise ConformanceError(message)


def _build(cls: type, kind_base: type, config: Mapping[str, Any], runtime: Runtime) -> Any:
    if not (isinstance(cls, type) and issubclass(cls, kind_base)):
        _fail(f"{cls!r} does not subclass repmix.core.components.{kind_base.__name__}")
    if not getattr(cls, "citation", ""):
        _fail(f"{cls.__name__} has no citation")
    try:
        cfg = cls.Config.model_validate(dict(config))
    except Exception as exc:  # pydantic's ValidationError
        _fail(f"{cls.__name__}.Config rejects the case's config: {exc}")
    return cls(cfg, runtime)


def _resolve(component: type | str, kind: str) -> type:
    if isinstance(component, str):
        from repmix.core.assembly import load_component_class

        return load_component_class(kind, component)
    return component


def check_corruptor(component: type | str, config: Mapping[str, Any] | None = None,
                    items: Sequence[str] | None = None) -> None:
    """Run every corruptor check on ``component`` under ``config`` (see the module docs)."""
    cls = _resolve(component, "corruptor")
    tok = LMByteTokenizer()
    sig = EncoderSignature({"token": GranularitySpec("sequence", 8)}, num_layers=None, causal=False)
    corr = _build(cls, Corruptor, config or {}, Runtime(tokenizer=tok, encoder=sig))
    declared = cls.signature(corr.config, sig)
    if not isinstance(declared, dict) or not declared:
        _fail("signature() must return a non-empty mapping name -> GranularitySpec")
    texts = list(items or ["masked language modelling corrupts some tokens", "a short one",
                           "the quick brown fox jumps over the lazy dog " * 2])
    batch = tok(texts)
    before = {k: v.clone() for k, v in batch.items()}
    out_batch, targets = corr(batch, torch.Generator().manual_seed(0))
    for k, v in before.items():
        if not torch.equal(batch[k], v):
            _fail(f"forward modified the input batch's {k!r} in place")
    if set(targets) != set(declared):
        _fail(f"forward returned granularities {sorted(targets)}, signature() declared {sorted(declared)}")
    ids = batch["input_ids"]
    protected = (batch["attention_mask"] == 0) | batch["special_tokens_mask"]
    if not torch.equal(out_batch["input_ids"][protected], ids[protected]):
        _fail("special or padding positions were corrupted")
    for name, g in targets.items():
        spec = declared[name]
        if spec.values == "ids":
            if tuple(g.hidden.shape) != tuple(ids.shape) or g.hidden.is_floating_point():
                _fail(f"ids granularity {name!r} must be integer [B, N] like input_ids, got {tuple(g.hidden.shape)}")
            if g.mask is None or g.mask.dtype != torch.bool or bool((g.mask & protected).any()):
                _fail(f"granularity {name!r} needs a bool mask that is False at special and padding positions")
    again_batch, again = corr(tok(texts), torch.Generator().manual_seed(0))
    if not torch.equal(again_batch["input_ids"], out_batch["input_ids"]):
        _fail("the same seeded generator gave a different corruption")
    for name in targets:
        if not torch.equal(again[name].hidden, targets[name].hidden):
            _fail(f"the same seeded generator gave different {name!r}")
    other = [corr(tok(texts), torch.Generator().manual_seed(s))[0]["input_ids"] for s in range(1, 6)]
    if all(torch.equal(o, out_batch["input_ids"]) for o in other):
        _fail("six seeds gave the same corruption: the generator is ignored")


def check_decoding(component: type | str, config: Mapping[str, Any] | None = None) -> None:
    """Run every decoding-strategy check on ``component`` under ``config`` (see the module docs)."""
    cls = _resolve(component, "decoding")
    strategy = _build(cls, DecodingStrategy, config or {}, Runtime())
    lm = BigramLM()
    if not isinstance(lm, CausalLM):
        _fail("BigramLM does not satisfy CausalLM (the kit is broken)")
    prompt = [257, *b"conformance"]
    out = strategy.generate(lm, prompt, max_new_tokens=7, generator=torch.Generator().manual_seed(0))
    if not isinstance(out, list) or not all(isinstance(i, int) for i in out):
        _fail(f"generate must return a list of ints, got {type(out).__name__}")
    if not 1 <= len(out) <= 7:
        _fail(f"generate returned {len(out)} ids for max_new_tokens 7")
    if any(not 0 <= i < 260 for i in out):
        _fail("generate returned ids outside the vocabulary")
    again = strategy.generate(lm, prompt, max_new_tokens=7, generator=torch.Generator().manual_seed(0))
    if again != out:
        _fail("the same seeded generator gave different ids")
    stop = out[0]
    stopped = strategy.generate(lm, prompt, max_new_tokens=7, stop_ids=[stop],
                                generator=torch.Generator().manual_seed(0))
    if stopped != [stop]:
        _fail(f"a stop id must end generation and be kept: got {stopped} with stop id {stop}")
