"""VDR retrieval through an inverted index: index size, query latency, nDCG@10 via the index vs the dense product.

A trained VDR run (``repmix train plugins/vdr/configs/vdr-stsb.yaml -o RUN``) encodes the SciFact
train claims and the 5,183 abstracts into vocabulary vectors (one weight per word piece,
V' = 29,523). As VDR serves them, the abstracts keep their top ``k`` entries (768) and the
claims their top ``k`` ∪ their own words (bag of words); ``repmix_vdr.index.InvertedIndex``
indexes the abstracts' non-zero entries as posting lists and scores every claim by walking the
posting lists of its non-zero terms. The same sparse vectors are also scored by a dense matrix
product: the two score matrices, hence nDCG@10, must agree (the table shows both, the largest
score difference and the share of identical top-10 lists). The dense, unsparsified vectors
(what the training run's own ``beir`` evaluation scores) are shown for reference.

Latency = mean seconds per claim of ``InvertedIndex.search`` (top 10, NumPy on the CPU, one
claim at a time) and of the dense product over the same sparse vectors (claims in batches of 64,
top 10 by ``torch.topk``) on the CPU and, with ``--device cuda``, on the GPU. Index bytes = the CSR arrays (int64 offsets,
int32 document ids, float32 weights); a dense float32 matrix of the corpus is N × V' × 4.

    python benchmarks/bench_vdr_index.py RUN --device cuda --out OUT      # full scale
    python benchmarks/bench_vdr_index.py RUN --limit 20 --out /tmp/o      # small scale (CPU)
    python benchmarks/bench_vdr_index.py --render OUT/vdr-index.json      # -> docs/results/embedding-objectives.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import issue15_common as common
import numpy as np
import report

NAME = "vdr-index.json"


def sparsify(v: Any, k: int, keep: Any = None) -> Any:
    """Keep each row's ``k`` largest entries (and every entry where ``keep`` > 0); torch tensors."""
    import torch

    mask = torch.zeros_like(v, dtype=torch.bool).scatter_(1, v.topk(min(k, v.shape[1]), dim=1).indices, True)
    if keep is not None:
        mask |= keep > 0
    return v.masked_fill(~mask, 0.0)


def dense_search(q: Any, d: Any, k: int, device: str, batch: int = 64) -> tuple[np.ndarray, float]:
    """Top-``k`` by a dense product (torch on ``device``); (indexes, seconds per query)."""
    import torch

    out = []
    common.sync(device)
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, q.shape[0], batch):
            out.append(torch.topk(q[i : i + batch] @ d.T, min(k, d.shape[0]), dim=1).indices.cpu())
    common.sync(device)
    seconds = (time.perf_counter() - start) / max(1, q.shape[0])
    return torch.cat(out).numpy(), seconds


def run(args: argparse.Namespace) -> dict[str, Any]:
    import repmix
    import torch
    from repmix_vdr.index import InvertedIndex

    common.check_device(args.device)
    data = common.scifact(args.limit)
    model = repmix.load(args.run, device=args.device)
    qt, dt = "query", "document"
    for t in (qt, dt):
        model.tower(t)
    gran = args.granularity or model.default_granularity(qt)
    bow = "bow" if "bow" in model.granularities(qt) else None
    print(f"encoding {len(data.query_ids)} claims and {len(data.corpus_ids)} abstracts ({gran}) ...", flush=True)
    docs, enc_docs_s = common.timed(lambda: common.encode(model, dt, data.corpus_texts, [gran], args.batch)[gran], args.device)
    queries = common.encode(model, qt, data.query_texts, [gran] + ([bow] if bow else []), args.batch)
    vocab = int(docs.shape[1])
    dev = torch.device(args.device)
    D = torch.from_numpy(docs).to(dev)
    Q = torch.from_numpy(queries[gran]).to(dev)
    Qbow = torch.from_numpy(queries[bow]).to(dev) if bow else None
    with torch.inference_mode():
        full = (Q @ D.T).float().cpu().numpy()
    dense_full = common.ir(full, data)
    rows = []
    for k in args.doc_topk:
        with torch.inference_mode():
            Ds = sparsify(D, k)
            Qs = sparsify(Q, args.query_topk, Qbow if args.query_bow else None)
            dense_scores = (Qs @ Ds.T).float().cpu().numpy()
        ds_np, qs_np = Ds.float().cpu().numpy(), Qs.float().cpu().numpy()
        index, build_s = common.timed(lambda ds_np=ds_np: InvertedIndex.build(ds_np), "cpu")
        index_scores = np.stack([index.scores(row) for row in qs_np])
        top_idx, _, latency = index.search(qs_np, k=10)
        dense_top, dense_latency = dense_search(Qs, Ds, 10, args.device)
        cpu_latency = dense_latency if args.device == "cpu" else dense_search(Qs.cpu(), Ds.cpu(), 10, "cpu")[1]
        m_index, m_dense = common.ir(index_scores, data), common.ir(dense_scores, data)
        diff = float(np.abs(index_scores - dense_scores).max())
        scale = float(np.abs(dense_scores).max()) or 1.0
        same_top = float(np.mean([set(a) == set(b) for a, b in zip(top_idx.tolist(), dense_top.tolist())]))
        row = {
            "doc_topk": k,
            "query_terms": f"top {args.query_topk}" + (" ∪ bag of words" if args.query_bow and bow else ""),
            "mean_query_nonzeros": float((qs_np > 0).sum(1).mean()),
            "mean_doc_nonzeros": float((ds_np > 0).sum(1).mean()),
            "postings": index.postings,
            "index_bytes": index.nbytes,
            "dense_bytes": int(ds_np.shape[0]) * vocab * 4,
            "build_s": build_s,
            "index_latency_ms": 1000 * latency,
            "dense_latency_ms": 1000 * dense_latency,
            "dense_cpu_latency_ms": 1000 * cpu_latency,
            "ndcg@10_index": m_index["ndcg@10"],
            "ndcg@10_dense": m_dense["ndcg@10"],
            "recall@100_index": m_index["recall@100"],
            "recall@100_dense": m_dense["recall@100"],
            "max_abs_score_diff": diff,
            "max_rel_score_diff": diff / scale,
            "top10_sets_identical": same_top,
        }
        rows.append(row)
        print({k2: (round(v, 6) if isinstance(v, float) else v) for k2, v in row.items()}, flush=True)
    command = " ".join(["python", "benchmarks/bench_vdr_index.py", *sys.argv[1:]])
    payload = common.base_payload("vdr-index", args, command)
    payload.update(
        run=str(args.run), granularity=gran, vocab=vocab, data=data.describe(), n_queries=len(data.query_ids),
        n_docs=len(data.corpus_ids), encode_docs_s=enc_docs_s, dense_unsparsified=dense_full, rows=rows,
    )
    return payload


def render(p: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The markdown section of one result file."""
    rows = []
    gpu = p["device"] != "cpu"
    for r in p["rows"]:
        rows.append([
            r["doc_topk"], r["query_terms"], f"{r['mean_query_nonzeros']:.0f}", f"{r['postings']:,}",
            f"{r['index_bytes'] / 2**20:.1f} MiB", f"{r['dense_bytes'] / 2**20:.0f} MiB",
            f"{r['index_latency_ms']:.2f}", f"{r['dense_cpu_latency_ms']:.2f}",
            *([f"{r['dense_latency_ms']:.3f}"] if gpu else []),
            f"{r['ndcg@10_index']:.4f}", f"{r['ndcg@10_dense']:.4f}",
            f"{r['max_rel_score_diff']:.1e}", f"{100 * r['top10_sets_identical']:.1f} %",
        ])
    table = report.markdown_table(
        ["abstract top-k", "claim terms", "claim non-zeros", "postings", "index size", "dense matrix",
         "index ms / claim (CPU)", "dense product ms / claim (CPU)",
         *([f"dense product ms / claim ({p['device']})"] if gpu else []), "nDCG@10 via index", "nDCG@10 dense product",
         "max score diff (rel.)", "same top-10"], rows,
    )
    d = p["dense_unsparsified"]
    md = (
        "## VDR: retrieval through an inverted index on SciFact\n\n"
        f"{common.scale_note(p)}`{p['command']}` — run `{p['run']}` (vdr-stsb: all-MiniLM-L6-v2 + VDR head, "
        f"trained on STS-B positives), {p['data']}, vocabulary vectors of V' = {p['vocab']:,} word pieces "
        f"(`{p['granularity']}`). Encoding the abstracts took {p['encode_docs_s']:.1f} s on {p['device']}. "
        f"Machine: {p['machine']}; {p['date']}.\n\n{table}\n\n"
        "The index (`repmix_vdr.index.InvertedIndex`, CSR posting lists, NumPy, one claim at a time on the CPU) "
        "and the dense product (torch, claims in batches of 64, top 10 by `torch.topk`; on the CPU, and on the "
        "GPU where there is one) score the *same* sparse vectors: "
        "their nDCG@10 must agree, and the score difference is float rounding. "
        f"Dense, unsparsified vectors (every entry of ELU+1 is > 0): nDCG@10 **{d['ndcg@10']:.4f}**, "
        f"Recall@100 {d['recall@100']:.4f}."
    )
    return [("embedding-objectives.md", "vdr-index", common.EMBEDDING_OBJECTIVES_HEADER, md)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", nargs="?", type=Path, help="a trained VDR run (or saved model) directory")
    common.add_common_args(ap, "small scale: N SciFact claims and about 10·N abstracts (0 = all 809 / 5,183)")
    ap.add_argument("--doc-topk", type=int, nargs="+", default=[768, 256], help="entries kept per abstract (VDR: 768)")
    ap.add_argument("--query-topk", type=int, default=768, help="entries kept per claim (VDR: 768)")
    ap.add_argument("--no-query-bow", dest="query_bow", action="store_false", help="do not add the claim's own words")
    ap.add_argument("--granularity", help="pooled vocabulary granularity (default: the tower's last pooled one)")
    ap.add_argument("--batch", type=int, default=32, help="encoding batch (the [B, L, V'] vocabulary states are large)")
    args = ap.parse_args()
    if args.render:
        common.render_files(args.render, render, args.docs, args.allow_small)
        return
    if args.run is None:
        ap.error("give a run directory (or --render JSON)")
    payload = run(args)
    common.write_json(args.out, NAME, payload)
    print(render(payload)[0][3])


if __name__ == "__main__":
    main()
