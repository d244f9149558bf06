"""The sdk conformance kit over the xtr aligner (resolved by entry-point name), and the XTR loss decomposition."""

from __future__ import annotations

from repmix.sdk.conformance import Case, conformance_cases
from repmix_xtr.aligner import faiss_available

CASES = [
    Case("aligner", "xtr", bad_configs=[{"k": 0}, {"k_train": 0}, {"index": "hnsw"}, {"aggregate": "max"}]),
    Case("aligner", "xtr", {"k": 3, "k_train": 4, "aggregate": "sum", "z": "positive"}, id="aligner-xtr-small-k"),
    Case("aligner", "xtr.xtr", {"k_train": None, "normalize": False, "block_elements": 7}, id="aligner-xtr-blocks"),
    # the XTR objective: cross-entropy over in-batch documents of the training-mode scores
    Case("loss", "info-nce", {"symmetric": False, "temperature": 0.05}, aligner={"type": "xtr", "k_train": 5},
         id="loss-info-nce-on-xtr"),
]
if faiss_available():
    CASES.append(Case("aligner", "xtr", {"index": "faiss", "k": 4}, id="aligner-xtr-faiss"))


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
