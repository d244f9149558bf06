"""The sdk conformance kit over both moe-embed components, on a tiny random BERT."""

from __future__ import annotations

from repmix.sdk.conformance import Case, conformance_cases, fixture

TINY = fixture("tiny_bert_dir")
ITEMS = [
    "text\thello world",
    "molecule\tCC(=O)O",
    {"domain": "text", "text": "a considerably longer sentence about the molecule and water"},
    "molecule\tC",
]
TOKENIZER = {"type": "moe-embed.domain-tokenizer", "model": TINY, "domains": ["text", "molecule"]}

CASES = [
    Case(
        "tokenizer",
        "moe-embed.domain-tokenizer",
        {"model": TINY, "max_length": 16, "domains": ["text", "molecule"]},
        items=ITEMS,
        bad_items=[3, None, "protein\tMKV", "untagged text", {"domain": "dna", "text": "ACGT"}],
        bad_configs=[
            {"domains": []},
            {"domains": ["text", "text"]},
            {"default_domain": "protein"},
            {"patterns": {"molecule": "("}},
            {"max_length": 0},
        ],
    ),
    Case(
        "tokenizer",
        "moe-embed.domain-tokenizer",
        {"model": TINY, "domains": ["text", "molecule"], "patterns": {"molecule": r"\S+"}, "default_domain": "text"},
        items=["hello world", "CC(=O)O", "text\tone", "a longer sentence about water"],
        id="tokenizer-domain-tokenizer-patterns",
    ),
    Case(
        "encoder",
        "moe-embed.moe-transformer",
        {"model": TINY},
        tokenizer=TOKENIZER,
        items=ITEMS,
        bad_configs=[{"layers": [5]}, {"layers": []}, {"layers": "some"}],
    ),
    Case(
        "encoder",
        "moe-embed.moe-transformer",
        {"model": TINY, "layers": [-1]},
        tokenizer=TOKENIZER,
        items=ITEMS,
        id="encoder-moe-transformer-last-block",
    ),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
