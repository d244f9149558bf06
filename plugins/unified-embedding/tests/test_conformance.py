"""The sdk conformance kit over unified-embedding's tokenizer and encoder."""

from __future__ import annotations

from repmix.sdk.conformance import Case, conformance_cases

ITEMS = ["a man riding a horse", "CC(=O)Oc1ccccc1C(=O)O", "xy", "the molecule is an acid"]
FEATURES = [{"name": "words", "extract": "word", "chunks": 2}, {"name": "char3", "extract": "char", "n": 3},
            {"name": "char1", "extract": "char", "lowercase": False}]
TOK = {"type": "unified-features", "features": FEATURES, "buckets": 257}

CASES = [
    Case("tokenizer", "unified-features", {"features": FEATURES, "buckets": 257}, items=ITEMS, bad_items=["", "  ", 3],
         bad_configs=[{"buckets": 1}, {"features": []}, {"features": [{"name": "a"}, {"name": "a"}]},
                      {"features": [{"name": "a", "chunks": 0}]}]),
    Case("encoder", "unified-embedding", {"dim": 8}, tokenizer=TOK, items=ITEMS,
         bad_configs=[{"dim": 0}, {"combiner": "max"}, {"num_tables": 0}]),
    Case("encoder", "unified-embedding", {"dim": 4, "num_tables": 2, "combiner": "sum", "output_dim": 6}, tokenizer=TOK,
         items=ITEMS, id="encoder-unified-embedding-projected"),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
