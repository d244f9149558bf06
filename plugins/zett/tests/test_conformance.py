"""The SDK conformance kit over zett's tokenizers and encoders (tiny random BERT as the source)."""

from __future__ import annotations

from repmix.sdk.conformance import Case, conformance_cases, fixture

TINY = fixture("tiny_bert_dir")
TARGET = fixture("tiny_target")
TEXTS = [
    "the man is riding a horse in the park",
    "a woman is eating food with a child and a dog",
    "hello world",
    "the benzene ring carries a chloro group",
]
SURFACES = ["riding", "##ing", "benzene", "[CLS]", "horse", "chlorobenzene"]
HN = {"type": "zett.hypernetwork", "model": TINY, "layers": 1, "hidden": 32, "heads": 2, "surface_maxlen": 7}

CASES = [
    Case(
        "tokenizer", "zett.surfaces", {"model": TINY},
        items=SURFACES, bad_items=["", " ", "two words", 3],
        bad_configs=[{"surface_maxlen": 0}, {"model": "/no/such/model"}],
    ),
    Case(
        "encoder", "zett.hypernetwork", {k: v for k, v in HN.items() if k != "type"},
        tokenizer={"type": "zett.surfaces", "model": TINY}, items=SURFACES,
        bad_configs=[{"layers": 0}, {"weights": "/no/such/checkpoint"}, {"heads": 0}, {"surface_maxlen": 0}],
    ),
    Case(
        "tokenizer", "zett.target-tokenizer", {"tokenizer": TARGET, "model": TINY, "max_length": 32},
        items=TEXTS, bad_items=[3, None],
        bad_configs=[{"tokenizer": "/no/such/tokenizer.json"}, {"max_length": 1}],
    ),
    Case(
        "encoder", "zett.transferred-transformer", {"model": TINY, "embeddings": "mean"},
        tokenizer={"type": "zett.target-tokenizer", "tokenizer": TARGET, "model": TINY, "max_length": 32},
        items=TEXTS,
        bad_configs=[{"embeddings": "hypernetwork"}, {"embeddings": "nearest"}, {"model": "/no/such/model"}],
    ),
    Case(
        "encoder", "zett.transferred-transformer", {"model": TINY, "embeddings": "hypernetwork", "hypernetwork": HN},
        tokenizer={"type": "zett.target-tokenizer", "tokenizer": TARGET, "model": TINY, "max_length": 32},
        items=TEXTS, id="encoder-transferred-hypernetwork",
    ),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
