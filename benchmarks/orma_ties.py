"""How exact ties change retrieval metrics: optimistic (ties rank below), expected (random order), pessimistic.

A Morgan fingerprint without chirality gives stereoisomers identical vectors, so a fingerprint model
scores them exactly alike; the std retrieval evaluator counts only strictly higher scores (optimistic).

    python benchmarks/orma_ties.py RUN [--alignment global]
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--alignment", default="global")
    parser.add_argument("--data", default="../shared/data/chebi20")
    args = parser.parse_args()
    import repmix.sdk as rx

    test = rx.build_component(
        rx.LocatedConfig({}), "dataset",
        {"type": "orma.chebi20", "path": args.data, "descriptions": "text2mol", "split": "test"}, ("data",),
    ).load()
    model = rx.load(args.run)
    s = model.similarity(test.columns["text"], test.columns["molecule"], alignment=args.alignment)
    out = {}
    for name, m in (("text->molecule", s), ("molecule->text", s.T)):
        pos = np.diag(m)[:, None]
        greater = (m > pos).sum(1)
        ties = (m == pos).sum(1) - 1
        for rule, rank in (("optimistic", greater + 1), ("expected", greater + 1 + ties / 2),
                           ("pessimistic", greater + ties + 1)):
            hits1 = np.where(greater == 0, 1.0 / (1 + ties), 0.0) if rule == "expected" else (rank <= 1)
            out[f"{name}/{rule}/hits@1"] = float(np.mean(hits1))
            out[f"{name}/{rule}/mrr"] = float(np.mean(1.0 / rank))
        out[f"{name}/queries_with_tied_positive"] = int((ties > 0).sum())
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
