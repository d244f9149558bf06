"""The sdk conformance kit over every vse component (resolved by entry-point name)."""

from __future__ import annotations

from repmix.sdk.conformance import Case, conformance_cases

TEXTS = ["a man riding a horse", "CC(=O)Oc1ccccc1C(=O)O", "x", "the molecule is an acid and a base"]
WORDS = {"type": "vse-ngrams", "ngram_range": [1, 2], "buckets": 1024}
CHARS = {"type": "vse-ngrams", "analyzer": "char", "ngram_range": [1, 3], "buckets": 512, "lowercase": False}

CASES = [
    Case(
        "tokenizer",
        "vse-ngrams",
        {"ngram_range": [1, 3], "skip_grams": True, "buckets": 4096},
        items=TEXTS,
        bad_items=[3, None],
        bad_configs=[{"buckets": 1}, {"ngram_range": [2, 1]}, {"analyzer": "char", "skip_grams": True}],
    ),
    Case("tokenizer", "vse-ngrams", {k: v for k, v in CHARS.items() if k != "type"} | {"binary": True}, items=TEXTS, bad_items=[[1]], id="tokenizer-char"),
    Case(
        "encoder",
        "vse-mlp",
        {"dim": 8, "hidden": [16]},
        tokenizer=WORDS,
        items=TEXTS,
        bad_configs=[{"dim": 0}, {"hidden": [0]}, {"activation": "gelu"}],
    ),
    Case("encoder", "vse.vse-mlp", {"dim": 8, "hidden": [], "activation": "tanh"}, tokenizer=CHARS, items=TEXTS,
         id="encoder-linear-char"),
    Case("loss", "vse-hinge", bad_configs=[{"margin": -1}, {"reduction": "max"}]),
    Case("loss", "vse-hinge", {"max_violation": True, "margin": 0.5, "reduction": "mean"}, id="loss-vse-hinge-vsepp"),
    Case("loss", "vse-hinge", {"margin": 1.0}, aligner={"type": "dot"}, id="loss-vse-hinge-dot"),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
