"""Binary codes on SciFact: nDCG@10 with Hamming ranking vs the real vectors, and Hamming vs float cosine search speed.

Each run is ``plugins/binary-pv/configs/binary-pv-scifact.yaml`` trained at some code length
(``model.towers.query.poolers.code.bits=64`` for 64 bits): all-MiniLM-L6-v2 with a binary
code ``round(σ(W x + b))`` and the mean-pooled real vector, both trained with MNRL on the
STS-B positives. For every run the SciFact train claims and the 5,183 abstracts are encoded
once (both granularities in one pass) and ranked

* by Hamming distance of the codes (ties in corpus order, as ``repmix_binary_pv.search``), and
* by cosine of the real 384-dimensional vectors (what the config's ``real`` evaluation scores).

Speed, over the same corpus and claims, both on the CPU with NumPy, claims in chunks of 64,
top 10 by ``argpartition`` then a sort of those 10: ``repmix_binary_pv.search.search`` (packed
codes, XOR + popcount over 64-bit words, ``bitwise_count``) against float32 cosine search over
the normalised real vectors (a BLAS matrix product). Median of ``--repeats``, the two alternating.

    python benchmarks/bench_binary_pv.py RUN64 RUN128 --device cuda --out OUT     # full scale
    python benchmarks/bench_binary_pv.py RUN64 RUN128 --limit 10 --out /tmp/o     # small scale (CPU)
    python benchmarks/bench_binary_pv.py --render OUT/binary-pv.json              # -> docs/results/embedding-objectives.md
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

NAME = "binary-pv.json"


def float_search(q: np.ndarray, d: np.ndarray, k: int = 10, chunk: int = 64) -> tuple[np.ndarray, float]:
    """Top-``k`` by cosine of L2-normalised float32 vectors (argpartition, then the k sorted); seconds per query."""
    k = min(k, d.shape[0])
    out = np.zeros((q.shape[0], k), dtype=np.int64)
    start = time.perf_counter()
    for i in range(0, q.shape[0], chunk):
        s = -(q[i : i + chunk] @ d.T)
        part = np.argpartition(s, k - 1, axis=1)[:, :k] if k < d.shape[0] else np.argsort(s, axis=1)
        out[i : i + chunk] = np.take_along_axis(part, np.argsort(np.take_along_axis(s, part, axis=1), axis=1, kind="stable"), axis=1)
    return out, (time.perf_counter() - start) / max(1, q.shape[0])


def normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def baseline_codes(rd: np.ndarray, rq: np.ndarray, bits: int, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Unsupervised b-bit codes of the real vectors, the baselines a learned code must beat (0/1, docs and queries).

    * ``pca-sign``: the sign of the corpus-centred vector's projection on the corpus's top-``bits``
      principal directions (PCA hashing; for ``bits`` above the width, the extra bits are SimHash's);
    * ``simhash``: the sign of ``bits`` seeded Gaussian random projections (Charikar's random hyperplanes).
    """
    mean = rd.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(rd - mean, full_matrices=False)
    rng = np.random.default_rng(seed)
    random = rng.standard_normal((rd.shape[1], bits)).astype(np.float32)
    top = vt[: min(bits, vt.shape[0])].T
    pca = top if top.shape[1] == bits else np.concatenate([top, random[:, top.shape[1]:]], axis=1)
    return {
        "pca-sign": (((rd - mean) @ pca > 0).astype(np.uint8), ((rq - mean) @ pca > 0).astype(np.uint8)),
        "simhash": ((rd @ random > 0).astype(np.uint8), (rq @ random > 0).astype(np.uint8)),
    }


def measure(run: Path, data: common.Retrieval, args: argparse.Namespace) -> dict[str, Any]:
    import repmix
    from repmix_binary_pv.search import hamming, pack, search

    model = repmix.load(run, device=args.device)
    grans = model.granularities("query")
    code, real = args.code, args.real
    for g in (code, real):
        if grans.get(g) != "pooled":
            raise SystemExit(f"{run}: tower 'query' has no pooled granularity {g!r} (it has {', '.join(grans)})")
    (docs, enc_s) = common.timed(lambda: common.encode(model, "document", data.corpus_texts, [code, real], args.batch), args.device)
    queries = common.encode(model, "query", data.query_texts, [code, real], args.batch)
    bits = int(docs[code].shape[1])
    pd, pq = pack(docs[code].round().astype(np.uint8)), pack(queries[code].round().astype(np.uint8))
    ham = hamming(pq, pd)
    rd, rq = normalise(docs[real]), normalise(queries[real])
    m_ham = common.ir(-ham.astype(np.float64), data)
    m_real = common.ir(rq @ rd.T, data)
    baselines = {name: common.ir(-hamming(pack(cq), pack(cd)).astype(np.float64), data)
                 for name, (cd, cq) in baseline_codes(rd, rq, bits).items()}
    ham_times, float_times = [], []
    for _ in range(args.repeats):  # alternate the two
        top_h, t = search(pq, pd, k=10)
        ham_times.append(t)
        top_f, t = float_search(rq, rd, k=10)
        float_times.append(t)
    th, tf = report.median(ham_times), report.median(float_times)
    tiled: dict[str, Any] = {}
    if args.tile > pd.shape[0]:  # the same search over a larger corpus: the abstracts repeated
        reps = -(-args.tile // pd.shape[0])
        tpd, trd = np.tile(pd, (reps, 1))[: args.tile], np.tile(rd, (reps, 1))[: args.tile]
        h_t, f_t = [], []
        for _ in range(args.repeats):
            h_t.append(search(pq, tpd, k=10)[1])
            f_t.append(float_search(rq, trd, k=10)[1])
        tiled = {"tile_docs": int(args.tile), "tile_hamming_ms_per_query": 1000 * report.median(h_t),
                 "tile_float_ms_per_query": 1000 * report.median(f_t),
                 "tile_float_over_hamming": report.median(f_t) / report.median(h_t)}
    overlap = float(np.mean([len(set(a) & set(b)) / len(a) for a, b in zip(top_h.tolist(), top_f.tolist())]))
    ones = float(docs[code].mean())
    row = {
        "run": str(run),
        "bits": bits,
        "real_dim": int(docs[real].shape[1]),
        "encode_docs_s": enc_s,
        "ndcg@10_hamming": m_ham["ndcg@10"],
        "ndcg@10_real": m_real["ndcg@10"],
        "recall@100_hamming": m_ham["recall@100"],
        "recall@100_real": m_real["recall@100"],
        **{f"ndcg@10_{name}": m["ndcg@10"] for name, m in baselines.items()},
        "hamming_ms_per_query": 1000 * th,
        "float_ms_per_query": 1000 * tf,
        "float_over_hamming": tf / th,
        "bytes_per_doc_code": (bits + 7) // 8,
        "bytes_per_doc_real": 4 * int(docs[real].shape[1]),
        "top10_overlap": overlap,
        "share_of_ones": ones,
        "distinct_doc_codes": len({bytes(r) for r in pd}),
        **tiled,
    }
    print({k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    return row


def run(args: argparse.Namespace) -> dict[str, Any]:
    common.check_device(args.device)
    data = common.scifact(args.limit)
    rows = [measure(r, data, args) for r in args.runs]
    command = " ".join(["python", "benchmarks/bench_binary_pv.py", *sys.argv[1:]])
    payload = common.base_payload("binary-pv", args, command)
    payload.update(data=data.describe(), n_queries=len(data.query_ids), n_docs=len(data.corpus_ids),
                   repeats=args.repeats, rows=rows)
    return payload


def render(p: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows = []
    for r in sorted(p["rows"], key=lambda r: r["bits"]):
        rows.append([
            r["bits"], f"{r['ndcg@10_hamming']:.4f}", f"{r['ndcg@10_real']:.4f}",
            *(f"{r[k]:.4f}" if k in r else "—" for k in ("ndcg@10_pca-sign", "ndcg@10_simhash")),
            f"{r['recall@100_hamming']:.4f}", f"{r['recall@100_real']:.4f}", f"{100 * r['top10_overlap']:.0f} %",
            f"{r['hamming_ms_per_query']:.3f}", f"{r['float_ms_per_query']:.3f}", f"**{r['float_over_hamming']:.1f}×**",
            f"{r['bytes_per_doc_code']} / {r['bytes_per_doc_real']}", f"{r['distinct_doc_codes']:,}",
        ])
    table = report.markdown_table(
        ["bits", "nDCG@10 Hamming (learned code)", "nDCG@10 real (cosine)", "nDCG@10 PCA-sign code of the real vectors",
         "nDCG@10 SimHash code of the real vectors", "Recall@100 Hamming", "Recall@100 real",
         "top-10 overlap", "Hamming search ms / claim", "float cosine search ms / claim", "speed ratio (float / Hamming)",
         "bytes per abstract (code / real)", "distinct abstract codes"], rows,
    )
    tiled = [r for r in sorted(p["rows"], key=lambda r: r["bits"]) if "tile_docs" in r]
    if tiled:
        table += "\n\nThe same two searches over the abstracts repeated to a larger corpus (speed only):\n\n" + report.markdown_table(
            ["bits", "documents", "Hamming search ms / claim", "float cosine search ms / claim", "speed ratio (float / Hamming)"],
            [[r["bits"], f"{r['tile_docs']:,}", f"{r['tile_hamming_ms_per_query']:.3f}", f"{r['tile_float_ms_per_query']:.3f}",
              f"**{r['tile_float_over_hamming']:.1f}×**"] for r in tiled],
        )
    runs = ", ".join(f"`{r['run']}`" for r in sorted(p["rows"], key=lambda r: r["bits"]))
    md = (
        "## binary-pv: Hamming ranking vs real vectors on SciFact, and search speed\n\n"
        f"{common.scale_note(p)}`{p['command']}` — runs {runs} (binary-pv-scifact: all-MiniLM-L6-v2, a b-bit code "
        "`round(σ(Wx+b))` beside the mean-pooled real vector, each trained with MNRL on the STS-B positives, "
        f"one epoch), {p['data']}. Machine: {p['machine']}; {p['date']}.\n\n{table}\n\n"
        "Hamming ranking: ties (many, with short codes) in corpus order. Both searches run on the CPU with NumPy "
        f"over the same {p['n_docs']:,} abstracts, claims in chunks of 64, top 10 by `argpartition` and a sort of those "
        f"10; median of {p['repeats']}: XOR + popcount over 64-bit words of the packed codes "
        "(`repmix_binary_pv.search.search`) vs a float32 BLAS product of the 384-d real vectors. The real vectors come from the same encoder, so the gap between the two nDCG columns is "
        "what the binarisation costs. The two baseline codes binarise the same run's real vectors without training "
        "(same number of bits, Hamming ranking): PCA-sign = the sign of the centred vector's projection on the corpus's "
        "top principal directions; SimHash = the sign of seeded Gaussian random projections."
    )
    return [("embedding-objectives.md", "binary-pv", common.EMBEDDING_OBJECTIVES_HEADER, md)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="*", type=Path, help="trained binary-pv runs (e.g. 64- and 128-bit)")
    common.add_common_args(ap, "small scale: N SciFact claims and about 10·N abstracts (0 = all 809 / 5,183)")
    ap.add_argument("--code", default="code", help="the binary-code granularity")
    ap.add_argument("--real", default="sentence", help="the real-vector granularity")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tile", type=int, default=0, help="also time both searches over the corpus repeated to N documents")
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    if args.render:
        common.render_files(args.render, render, args.docs, args.allow_small)
        return
    if not args.runs:
        ap.error("give one or more run directories (or --render JSON)")
    payload = run(args)
    common.write_json(args.out, NAME, payload)
    print(render(payload)[0][3])


if __name__ == "__main__":
    main()
