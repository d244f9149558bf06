"""The sdk conformance kit over the chemistry-side orma components (resolved by entry-point name).

The alignment side (``ot-multitoken``, ``weighted-pooling``, ``info-nce-exp``) runs the kit
in its own test files.
"""

from __future__ import annotations

from repmix.sdk.conformance import Case, conformance_cases

#: Molecules that all have motifs (the kit wants at least one real element per item in every sequence).
MOLECULES = ["CC(=O)Oc1ccccc1C(=O)O", "COc1ccc2ccccc2c1C", "CCN(CC)CC", "CCOC(C)=O", "CC(C)Cc1ccc(cc1)C(C)C(=O)O"]
#: Molecules of which some have no motif (14 % of ChEBI-20): their motif rows are all padding.
WITHOUT_MOTIFS = ["c1ccccc1", "C", "CC(=O)Oc1ccccc1C(=O)O", "c1ccc2ccccc2c1"]
NO_MOTIF_ROWS = (
    "ORMA gives molecules without motifs an all-padding motif row (the molecule node then pools the atoms); "
    "the kit requires a real element in every row. tests/test_gnn.py and test_graph.py check this fallback"
)
SEQUENCE_OUT = (
    "orma.project keeps the shape of its source, and the kit assumes poolers return pooled [B, D] "
    "outputs of the same size whatever the padding; tests/test_project.py checks shapes and padding"
)
GRAPH = {"type": "orma.molecule-graph", "max_atoms": 10, "max_motifs": 3}

CASES = [
    Case(
        "tokenizer",
        "orma.molecule-graph",
        {"max_atoms": 10, "max_motifs": 3},
        items=MOLECULES,
        bad_items=["", "C1CC", "C(C)(C)(C)(C)C", 3, None],
        bad_configs=[{"max_atoms": 0}, {"motifs": "rings"}, {"morgan_bits": -1}, {"ring_split": "keep"}],
    ),
    Case(
        "tokenizer",
        "orma.molecule-graph",
        {"motifs": "none", "morgan_bits": 32},
        items=MOLECULES,
        id="tokenizer-molecule-graph-morgan-no-motifs",
    ),
    Case(
        "encoder",
        "orma.hierarchical-gnn",
        {"dim": 16, "layers": 3, "dropout": 0.1},
        tokenizer=GRAPH,
        items=MOLECULES,
        bad_configs=[{"dim": 0}, {"layers": 0}, {"dropout": 1.5}, {"backend": "dgl"}],
    ),
    Case(
        "encoder",
        "orma.hierarchical-gnn",
        {"dim": 8, "layers": 1, "level_projection": False},
        tokenizer={"type": "orma.molecule-graph", "morgan_bits": 16},
        items=WITHOUT_MOTIFS,
        id="encoder-hierarchical-gnn-molecules-without-motifs",
        expected_failures={"shapes": NO_MOTIF_ROWS},
    ),
    Case(
        "tokenizer",
        "orma.morgan-fingerprint",
        {"radius": 2, "size": 256},
        items=MOLECULES,
        bad_items=["", "C1CC", 3, None],
        bad_configs=[{"size": 0}, {"radius": -1}, {"counts": "maybe"}],
    ),
    Case(
        "encoder",
        "orma.mlp",
        {"hidden": [16], "dim": 8, "dropout": 0.1},
        tokenizer={"type": "orma.morgan-fingerprint", "size": 64, "counts": True},
        items=MOLECULES,
        bad_configs=[{"dim": 0}, {"activation": "swish"}, {"dropout": 1.0}],
    ),
    Case(
        "pooler",
        "orma.project",
        {"dim": 12},
        bad_configs=[{"dim": 0}, {"layer_norm": "sometimes"}],
        expected_failures={"shapes": SEQUENCE_OUT, "padding_invariance": SEQUENCE_OUT},
    ),
    Case(
        "pooler",
        "orma.project",
        {"layer_norm": True, "normalize": True},
        id="pooler-project-layer-norm",
        expected_failures={"shapes": SEQUENCE_OUT, "padding_invariance": SEQUENCE_OUT},
    ),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
