"""Molecule search on ChEBI-20's 26,944-molecule pool: index build time, query latency, t->m retrieval.

The pool is the held-out molecules of ``orma.chebi20`` (holdout 0.2, seed 0) plus the undescribed
train molecules (``split: extra``); the queries are the held-out descriptions. For each query the
index is searched (faiss flat, exact) and, with ``--rerank N``, the top N are re-scored with the
model's levels (``repmix search --rerank N``). A query whose molecule is not in the re-ranked N keeps
its first-stage rank.

    python benchmarks/bench_orma_search.py runs/orma-frozen --rerank 0 20 --out docs/results/orma-search.json

Writes nothing into the repository except ``--out`` (the library and index go to a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="run directory or saved model")
    parser.add_argument("--data", default="../shared/data/chebi20", help="ChEBI-20 folder")
    parser.add_argument("--rerank", type=int, nargs="+", default=[0], help="re-rank depths (0 = none)")
    parser.add_argument("--score", nargs="+", default=["weighted"], help="re-rank combinations (weighted, zscore, ...)")
    parser.add_argument("--queries", type=int, default=None, help="only the first N queries (latency checks)")
    parser.add_argument("--out", default=None, help="JSON file for the results")
    args = parser.parse_args()

    import repmix.sdk as rx
    from repmix_orma.search import MoleculeIndex, build_index

    cfg = rx.LocatedConfig({})
    common = {"type": "orma.chebi20", "path": args.data, "descriptions": "text2mol"}
    test = rx.build_component(cfg, "dataset", {**common, "split": "test"}, ("data",)).load()
    extra = rx.build_component(cfg, "dataset", {**common, "split": "extra"}, ("data",)).load()
    pool = list(test.columns["molecule"]) + list(extra.columns["molecule"])
    queries = list(test.columns["text"])[: args.queries]
    model = rx.load(args.model)
    results: dict[str, object] = {"model": args.model, "pool": len(pool), "queries": len(queries)}
    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / "pool.tsv"
        lib.write_text("row\tsmiles\n" + "".join(f"{i}\t{s}\n" for i, s in enumerate(pool)), encoding="utf-8")
        info = build_index(model, lib, Path(tmp) / "index", source=args.model)
        results["index_seconds"] = info["seconds"]
        index = MoleculeIndex.open(Path(tmp) / "index", model)
        # first stage: every query against the whole pool (exact), ranks of the gold molecule
        t0 = time.perf_counter()
        vecs = index.encode_queries(queries)
        _, order = index.index.search(vecs, index.index.ntotal)
        results["encode_and_search_all_seconds"] = round(time.perf_counter() - t0, 3)
        first_rank = np.array([int(np.flatnonzero(order[i] == i)[0]) + 1 for i in range(len(queries))])
        latencies = []
        for q in queries[:100]:
            t = time.perf_counter()
            index.search(q, k=10)
            latencies.append(time.perf_counter() - t)
        results["median_query_seconds"] = statistics.median(latencies)
        for depth in args.rerank:
            for how in args.score if depth else ["first-stage"]:
                ranks = first_rank.copy()
                lat = []
                if depth:
                    for i, q in enumerate(queries):
                        if first_rank[i] > depth:
                            continue
                        t = time.perf_counter()
                        rows = [int(r) for r in order[i][:depth]]
                        s = np.asarray(index.rescore(q, rows, how))
                        lat.append(time.perf_counter() - t)
                        ranks[i] = int((s > s[rows.index(i)]).sum()) + 1
                results[f"rerank={depth}/{how}"] = {
                    "hits@1": float((ranks <= 1).mean()),
                    "hits@10": float((ranks <= 10).mean()),
                    "mrr": float((1.0 / ranks).mean()),
                    "mean_rank": float(ranks.mean()),
                    "median_rerank_seconds": statistics.median(lat) if lat else 0.0,
                    "reranked_queries": len(lat),
                }
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
