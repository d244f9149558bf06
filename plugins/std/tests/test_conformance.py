"""The sdk conformance kit over every std component (resolved by entry-point name).

Tokenizer and encoder cases run on ``tiny_bert_dir`` (a tiny random BERT
from conftest.py); poolers, aligners and losses get the kit's synthetic inputs.
"""

from __future__ import annotations

from repmix.sdk.conformance import Case, conformance_cases, fixture

TINY = fixture("tiny_bert_dir")
TEXTS = ["hello world", "a considerably longer sentence about molecules and words", "x", "mid length text"]
TOKENIZER = {"type": "hf-tokenizer", "model": TINY}
NOT_A_BOOL = [{"normalize": "sometimes"}]

CASES = [
    Case(
        "tokenizer",
        "hf-tokenizer",
        {"model": TINY, "max_length": 16},
        items=TEXTS,
        bad_items=[3, None],
        bad_configs=[{"max_length": 0}, {"padding_side": "middle"}, {"model": ""}],
    ),
    Case(
        "encoder",
        "hf-transformer",
        {"model": TINY},
        tokenizer=TOKENIZER,
        items=TEXTS,
        bad_configs=[{"granularities": {}}, {"granularities": {"token": 99}}, {"dtype": "float64"}],
    ),
    Case(
        "encoder",
        "hf-transformer",
        {"model": TINY, "granularities": {"token": -1, "embedding": 0}},
        tokenizer=TOKENIZER,
        items=TEXTS,
        id="encoder-hf-transformer-two-layers",
    ),
    Case("pooler", "cls", bad_configs=NOT_A_BOOL),
    Case("pooler", "mean", bad_configs=NOT_A_BOOL),
    Case("pooler", "mean", {"normalize": True}, id="pooler-mean-normalized"),
    Case("pooler", "max", bad_configs=NOT_A_BOOL),
    Case("pooler", "max", {"normalize": True}, id="pooler-max-normalized"),
    Case("pooler", "last-token", bad_configs=NOT_A_BOOL),
    Case("pooler", "last-token", {"source": "words"}, id="pooler-last-token-other-source"),
    Case("aligner", "cosine"),
    Case("aligner", "dot"),
    Case("aligner", "maxsim", bad_configs=[{"chunk_elements": 0}]),
    Case("aligner", "maxsim", {"normalize": False, "chunk_elements": 50}, id="aligner-maxsim-chunked"),
    Case("loss", "info-nce", bad_configs=[{"temperature": -1}, {"max_scale": 0.5}]),
    Case("loss", "info-nce", {"learnable_temperature": True, "temperature": 0.05}, id="loss-info-nce-learnable"),
    Case("loss", "info-nce", {"symmetric": False}, aligner={"type": "maxsim"}, id="loss-info-nce-maxsim"),
    Case("loss", "mnrl", bad_configs=[{"scale": 0}]),
    Case("loss", "mnrl", {"symmetric": True, "scale": 10}, aligner={"type": "cosine"}, id="loss-mnrl-symmetric"),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
