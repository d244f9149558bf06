"""The SDK conformance kit over dynamic-tokenization's tokenizer and encoder (tiny random BERT)."""

from __future__ import annotations

import pytest
from repmix.sdk.conformance import Case, check_component, conformance_cases, fixture

TINY = fixture("tiny_bert_dir")
TEXTS = [
    "the horseman is riding a horse in the parkland",
    "a woman is eating seafood with a child and a dog",
    "hello world",
    "the chlorobenzene ring carries a bromo group",
]
TOKENIZER = {"type": "dynamic-tokenization.dynamic-bpe", "model": TINY, "max_length": 64}

CASES = [
    Case(
        "tokenizer", "dynamic-tokenization.dynamic-bpe", {"model": TINY, "max_merges": 3},
        items=TEXTS, bad_items=[3, None, b"bytes"],
        bad_configs=[{"max_merges": -1}, {"model": "/no/such/model"}, {"boundary": "sentence"}, {"max_length": 1}],
    ),
    Case(
        "encoder", "dynamic-tokenization.dynamic-transformer", {"model": TINY, "embeddings": "mean"},
        tokenizer=TOKENIZER, items=TEXTS,
        bad_configs=[{"embeddings": "hypernetwork", "hypernetwork": None}, {"model": "/no/such/model"},
                     {"hypernetwork_for": "all"}],
    ),
    # a merge budget makes the merges depend on the batch: that is the method, not a padding bug
    Case(
        "encoder", "dynamic-tokenization.dynamic-transformer", {"model": TINY, "embeddings": "mean"},
        tokenizer={**TOKENIZER, "max_merges": 2}, items=TEXTS, id="encoder-dynamic-budget",
        expected_failures={"padding_invariance": "with a merge budget, an item alone gets other merges than "
                                                 "inside its batch (batch-level merging, by design)"},
    ),
]


# the decoder side: dynamic-bpe over std's BPE (a nested std.lm-tokenizer block) and dynamic-lm (tiny GPT-2)
BPE = {"type": "std.lm-tokenizer", "algorithm": "bpe", "file": fixture("tiny_bpe"), "max_length": 64}
LM_TOKENIZER = {"type": "dynamic-tokenization.dynamic-bpe", "base": BPE, "max_length": 64}
LM_TEXTS = [
    "Vitamin D deficiency is associated with increased risk of fractures.",
    "The ribonucleoprotein particles regulate mRNA stability.",
    "hello world",
    "Proliferation of tumour cells was reduced.",
]
ARCH = {"model_type": "gpt2", "n_layer": 2, "n_embd": 16, "n_head": 2, "n_positions": 64}
#: the output layer scores the batch's merged tokens: an item alone has another vocabulary (and other ids)
BATCH_VOCABULARY = {"padding_invariance": "the softmax is over V + the batch's merged tokens, so an item alone gets "
                                          "logits of another width and other batch-local ids (by design)"}
CASES += [
    Case(
        "tokenizer", "dynamic-tokenization.dynamic-bpe", {"base": BPE, "max_length": 64}, id="tokenizer-dynamic-bpe-lm",
        items=[*LM_TEXTS, [5, 6, 7]], bad_items=[3, None, [1.5, 2]],
        bad_configs=[{"base": {"algorithm": "bpe"}}, {"base": BPE, "model": "all-MiniLM-L6-v2"},
                     {"base": {**BPE, "algorithm": "bytes"}}],
    ),
    Case(
        "encoder", "dynamic-tokenization.dynamic-lm", {"architecture": ARCH}, tokenizer=LM_TOKENIZER, items=LM_TEXTS,
        expected_failures=BATCH_VOCABULARY,
        bad_configs=[{"architecture": {"n_layer": 2}}, {"architecture": {**ARCH, "vocab_size": 99}},
                     {"architecture": {**ARCH, "n_positions": 32}}, {"embeddings": "zett"}],
    ),
    Case(
        "encoder", "dynamic-tokenization.dynamic-lm",
        {"architecture": ARCH, "embeddings": "hypernetwork", "hypernetwork_heads": 2, "tie_embeddings": False},
        tokenizer=LM_TOKENIZER, items=LM_TEXTS, id="encoder-dynamic-lm-hypernetwork",
        expected_failures=BATCH_VOCABULARY, bad_configs=[{"hypernetwork_heads": 3}],
    ),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)


def test_conformance_with_the_zett_hypernetwork(tiny_bert_dir: str) -> None:
    """New-token embeddings from an (untrained) zett.hypernetwork: the whole kit passes."""
    from repmix.sdk import ConfigError, load_component_class

    try:
        load_component_class("encoder", "zett.hypernetwork")
    except ConfigError:
        pytest.skip("the zett plugin is not installed (pip install 'repmix-dynamic-tokenization[hypernetwork]')")
    hn = {"type": "zett.hypernetwork", "model": tiny_bert_dir, "layers": 1, "hidden": 32, "heads": 2}
    for extra in ({}, {"hypernetwork_for": "all"}):
        report = check_component(Case(
            "encoder", "dynamic-tokenization.dynamic-transformer",
            {"model": tiny_bert_dir, "hypernetwork": hn, **extra},
            tokenizer={**TOKENIZER, "model": tiny_bert_dir}, items=TEXTS,
        ))
        assert all(v == "passed" or v.startswith("skipped") for v in report.values()), report
