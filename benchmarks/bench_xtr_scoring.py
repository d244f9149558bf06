"""XTR vs ColBERT MaxSim on SciFact: quality (nDCG@10, Recall@100) and the cost of the scoring stage.

The towers of ``examples/scifact-colbert.yaml`` (all-MiniLM-L6-v2 last-layer token states, no
training; documents truncated to 128 word pieces) encode the SciFact corpus once (cached under
``--cache``) and the SciFact train queries. Then, on the same token vectors:

* **MaxSim, brute force**: std's ``maxsim`` aligner of that config scores every document for every
  query (what ``repmix evaluate examples/scifact-colbert.yaml`` computes);
* **XTR**: the ``xtr`` aligner (``index: exact`` and ``faiss``) retrieves the top-k' document tokens
  per query token and scores from those only (``repmix evaluate examples/scifact-xtr.yaml``);
* **ColBERT re-ranking of the same retrieval**: the documents of the retrieved tokens are gathered
  whole and scored by MaxSim (ColBERT v1's gather + score stages), the baseline of XTR's claim
  that its scoring stage is orders of magnitude cheaper.

Metrics are std's ``ir_metrics`` (as the ``beir`` evaluator computes them). Cost: wall time of each
stage, and document-token similarities read per query (MaxSim: |Q| x tokens of every scored
document; XTR scoring: |Q| x k'). Results: docs/results/retrieval.md ("XTR vs MaxSim on SciFact")
and docs/benchmarks.md.

    .venv/bin/python benchmarks/bench_xtr_scoring.py                 # all 809 train queries, k'=1000
    .venv/bin/python benchmarks/bench_xtr_scoring.py --queries 100 --k 100 1000 --no-write
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import report
import torch

RESULTS_MD = report.REPO / "docs" / "results" / "retrieval.md"
RESULTS_HEADER = "# Retrieval results\n\nProduced by the scripts in `benchmarks/`; each section names its command.\n"


def write_results(key: str, markdown: str) -> None:
    """Write the section to docs/benchmarks.md and to docs/results/retrieval.md (same markers)."""
    report.write_section(key, markdown)
    report.write_section(key, markdown, path=RESULTS_MD, header=RESULTS_HEADER)


def load_scifact(root: Path) -> tuple[list[str], list[str], list[str], list[str], dict[str, dict[str, int]]]:
    """Corpus ids/texts (title + " " + text, as the beir dataset joins them), train query ids/texts, qrels."""
    ids, texts = [], []
    for line in (root / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        title, text = (r.get("title") or "").strip(), (r.get("text") or "").strip()
        ids.append(str(r["_id"]))
        texts.append((title + " " + text).strip() if title else text)
    qrels: dict[str, dict[str, int]] = {}
    for line in (root / "qrels" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, did, score = line.split("\t")
        if int(score) > 0:
            qrels.setdefault(qid, {})[did] = int(score)
    queries = {}
    for line in (root / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        queries[str(r["_id"])] = r["text"]
    qids = [q for q in qrels if q in queries]
    return ids, texts, qids, [queries[q] for q in qids], qrels


def encode(model, tower: str, items: list[str], batch: int = 64) -> list[torch.Tensor]:  # type: ignore[no-untyped-def]
    """Real-token vectors [L_i, D] of every item (longest first in batches, returned in input order)."""
    order = sorted(range(len(items)), key=lambda i: -len(items[i]))
    out: list[torch.Tensor | None] = [None] * len(items)
    with torch.inference_mode():
        for s in range(0, len(order), batch):
            idx = order[s : s + batch]
            g = model.encode_batch(tower, [items[i] for i in idx])["token"]
            mask = g.full_mask()
            for j, i in enumerate(idx):
                out[i] = g.hidden[j][mask[j]].float().clone()
    return [t for t in out if t is not None]


def pad(seqs: list[torch.Tensor]):  # type: ignore[no-untyped-def]
    from repmix.core.dataflow import Granularity

    lengths = torch.tensor([len(t) for t in seqs])
    hidden = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True)
    return Granularity(hidden, torch.arange(hidden.shape[1]).unsqueeze(0) < lengths.unsqueeze(1))


def metrics(scores: torch.Tensor, relevance: torch.Tensor) -> dict[str, float]:
    from repmix_std.evaluators import ir_metrics

    return {m: float(v.mean()) for m, v in ir_metrics(scores, relevance, ["ndcg@10", "recall@100"]).items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(report.REPO / "examples" / "scifact-colbert.yaml"))
    ap.add_argument("--queries", type=int, default=None, help="first N train queries (default: all)")
    ap.add_argument("--k", type=int, nargs="+", default=[1000], help="k' values of XTR")
    ap.add_argument("--rerank-queries", type=int, default=50, help="queries timed for ColBERT re-ranking")
    ap.add_argument("--cache", default="/tmp/repmix-scifact-minilm-tokens.pt", help="encoded corpus cache")
    ap.add_argument("--docs", type=int, default=None, help="first N documents only (a smoke test)")
    ap.add_argument(
        "--subcorpus", type=int, default=None,
        help="N documents: every document judged relevant for the selected queries plus a seeded random "
        "sample of the others (cheaper encoding; default: the whole corpus)",
    )
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()

    import repmix
    from repmix_xtr.aligner import (
        TokenIndex,
        XTRAligner,
        faiss_available,
        xtr_scores_from_retrieval,
    )

    root = report.shared_data_dir() / "scifact"
    doc_ids, doc_texts, qids, qtexts, qrels = load_scifact(root)
    if args.docs:
        doc_ids, doc_texts = doc_ids[: args.docs], doc_texts[: args.docs]
        args.cache = f"{args.cache}.{args.docs}"
    if args.queries:
        qids, qtexts = qids[: args.queries], qtexts[: args.queries]
    n_corpus = len(doc_ids)
    n_relevant = len({d for q in qids for d in qrels[q]} & set(doc_ids))
    if args.subcorpus and args.subcorpus < len(doc_ids):
        relevant = {d for q in qids for d in qrels[q]}
        keep = [i for i, d in enumerate(doc_ids) if d in relevant]
        others = [i for i, d in enumerate(doc_ids) if d not in relevant]
        draw = torch.randperm(len(others), generator=torch.Generator().manual_seed(0)).tolist()
        keep = sorted(keep + [others[j] for j in draw[: max(0, args.subcorpus - len(keep))]])
        doc_ids, doc_texts = [doc_ids[i] for i in keep], [doc_texts[i] for i in keep]
        args.cache = f"{args.cache}.q{len(qids)}-sub{args.subcorpus}"
    model = repmix.load(args.config)
    cache = Path(args.cache)
    if cache.exists():
        docs = torch.load(cache)
    else:
        t0 = time.perf_counter()
        docs = encode(model, "document", doc_texts)
        print(f"encoded corpus in {time.perf_counter() - t0:.0f} s")
        torch.save(docs, cache)
    queries = encode(model, "query", qtexts)
    n_doc_tokens = sum(len(t) for t in docs)
    relevance = torch.zeros(len(qids), len(doc_ids), dtype=torch.float64)
    col = {d: i for i, d in enumerate(doc_ids)}
    for r, q in enumerate(qids):
        for d, s in qrels[q].items():
            if d in col:
                relevance[r, col[d]] = s
    corpus = pad(docs)
    q_tokens = [len(t) for t in queries]
    rows: list[list[object]] = []
    summary: dict[str, dict[str, float]] = {}

    # MaxSim, brute force over the corpus (std.maxsim from the YAML)
    maxsim = model.aligners["late"]
    t0 = time.perf_counter()
    with torch.inference_mode():
        full = torch.cat([maxsim(pad(queries[s : s + 64]), corpus).scores for s in range(0, len(queries), 64)])
    t_maxsim = time.perf_counter() - t0
    touched_maxsim = sum(q_tokens) * n_doc_tokens / len(queries)
    summary["maxsim"] = metrics(full, relevance)
    rows.append(["MaxSim (brute force)", "-", f"{summary['maxsim']['ndcg@10']:.4f}",
                 f"{summary['maxsim']['recall@100']:.4f}", f"{1000 * t_maxsim / len(queries):.1f}", "-",
                 f"{touched_maxsim:,.0f}"])

    for k in args.k:
        for kind in ["exact", "faiss"] if faiss_available() else ["exact"]:
            config = XTRAligner.Config(k=k, index=kind)
            d_n = torch.nn.functional.normalize(corpus.hidden, dim=-1)
            index = TokenIndex.build(d_n, corpus.mask, kind, config.block_elements)
            t_search = t_score = 0.0
            blocks, retrieved_docs = [], []
            with torch.inference_mode():
                for s in range(0, len(queries), 64):
                    qg = pad(queries[s : s + 64])
                    qv = torch.nn.functional.normalize(qg.hidden, dim=-1)
                    t0 = time.perf_counter()
                    scores, ids = index.search(qv[qg.mask], min(k, n_doc_tokens))
                    t1 = time.perf_counter()
                    block, _ = xtr_scores_from_retrieval(qg.mask, scores, ids, index, "mean")
                    t_score += time.perf_counter() - t1
                    t_search += t1 - t0
                    blocks.append(block)
                    if kind == "exact":
                        owners = index.token_doc[ids]
                        starts = qg.mask.sum(1).cumsum(0)
                        prev = 0
                        for end in starts.tolist():
                            retrieved_docs.append(torch.unique(owners[prev:end]))
                            prev = end
            scores_all = torch.cat(blocks)
            m = metrics(scores_all, relevance)
            summary[f"xtr-{kind}-k{k}"] = m
            touched = sum(q_tokens) * min(k, n_doc_tokens) / len(queries)
            rows.append([f"XTR, index {kind}", k, f"{m['ndcg@10']:.4f}", f"{m['recall@100']:.4f}",
                         f"{1000 * t_score / len(queries):.2f}", f"{1000 * t_search / len(queries):.1f}",
                         f"{touched:,.0f}"])
            if kind == "exact":
                # ColBERT re-ranking of the same candidates: gather every token of each retrieved document
                n_r = min(args.rerank_queries, len(queries))
                touched_r, t_r = 0.0, 0.0
                with torch.inference_mode():
                    maxsim(pad([queries[0]]), pad([docs[int(j)] for j in retrieved_docs[0]]))  # warm-up
                    for i in range(n_r):
                        cand = retrieved_docs[i]
                        t0 = time.perf_counter()
                        cg = pad([docs[int(j)] for j in cand])
                        maxsim(pad([queries[i]]), cg)
                        t_r += time.perf_counter() - t0
                        touched_r += q_tokens[i] * int(cg.mask.sum())
                rows.append([f"ColBERT gather + MaxSim of XTR's candidates ({n_r} queries)", k, "-", "-",
                             f"{1000 * t_r / n_r:.1f}", "-", f"{touched_r / n_r:,.0f}"])
                summary[f"colbert-rerank-k{k}"] = {"ms_per_query": 1000 * t_r / n_r, "tokens": touched_r / n_r,
                                                   "xtr_ms_per_query": 1000 * t_score / len(queries),
                                                   "xtr_tokens": touched}
    table = report.markdown_table(
        ["scoring", "k'", "nDCG@10", "Recall@100", "scoring ms/query", "retrieval ms/query",
         "doc-token similarities read / query"], rows)
    ratios = []
    for k in args.k:
        r = summary.get(f"colbert-rerank-k{k}")
        if r:
            ratios.append(
                f"- k'={k}: ColBERT's gather + score of the same candidates reads "
                f"{r['tokens'] / r['xtr_tokens']:.0f}x more document-token similarities than XTR's scoring "
                f"stage and takes {r['ms_per_query'] / max(r['xtr_ms_per_query'], 1e-9):.0f}x its time."
            )
    md = (
        "## XTR vs MaxSim on SciFact\n\n"
        f"`python benchmarks/bench_xtr_scoring.py --k {' '.join(str(k) for k in args.k)}"
        f"{' --queries ' + str(args.queries) if args.queries else ''}"
        f"{' --subcorpus ' + str(args.subcorpus) if args.subcorpus else ''}"
        f" --rerank-queries {args.rerank_queries}` — all-MiniLM-L6-v2 token states "
        f"(last layer, L2-normalised, no training; documents truncated to 128 word pieces) of "
        f"{len(doc_ids):,} SciFact documents ({n_doc_tokens:,} tokens"
        + (f": the {n_relevant} documents judged relevant to these queries plus {len(doc_ids) - n_relevant:,} "
           f"drawn at random (seed 0) from the other {n_corpus - n_relevant:,} — a sub-corpus, not the full "
           f"{n_corpus:,} documents" if len(doc_ids) < n_corpus else "")
        + f") and the first {len(qids)} train queries "
        f"(mean {sum(q_tokens) / len(q_tokens):.1f} tokens). Machine: {report.machine()}.\n\n"
        f"{table}\n\n"
        "XTR's scoring stage reads only the k' retrieved similarities per query token (imputing the rest); "
        "ColBERT must gather every token of every candidate document. Ratios on this machine:\n\n"
        + "\n".join(ratios)
        + "\n\nReading: the document-token counts are machine-independent; the times depend on the machine, "
        "and the ColBERT re-ranking is timed one query at a time (gathering and padding its candidates) while "
        "brute-force MaxSim is batched 64 queries at a time, so its time ratio overstates the gap. XTR's "
        "retrieval stage (exact top-k' over all token vectors) is itself a brute-force pass here; an approximate "
        "index (ScaNN in the paper) is what makes it cheap at scale. The full corpus through the engine "
        "(`repmix evaluate examples/scifact-colbert.yaml` and `examples/scifact-xtr.yaml`): the next section."
    )
    print(md)
    print(json.dumps(summary, indent=1))
    if not args.no_write:
        write_results("xtr-scifact", md)


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
