"""PiToMe token merging in all-MiniLM-L6-v2: encode speed-up, STS-B dev Spearman and SciFact nDCG@10 per merge ratio.

The packaged all-MiniLM-L6-v2 run by the ``pitome`` encoder (``repmix_pitome``), no fine-tuning,
size-weighted mean pooling of the merged tokens (``pitome.size-mean``), cosine similarity.
Merge ratios 0 / 0.25 / 0.5 in the official layer schedule (the last three of six layers,
margin 0.9 − 0.25·l/L), and the same ratios in every layer. Ratio 0 is exactly BertModel (tested);
every configuration runs the same layer-by-layer code (explicit attention), so the speed-ups
compare like with like.

* STS-B: Spearman of the cosines against the gold scores of the first ``--pairs`` dev pairs
  (0 = all 1,500), sentences sorted by length, batches of ``--batch``, max 128 tokens;
* SciFact: the 809 train claims against the 5,183 abstracts (``--limit N``: N claims and about
  10·N abstracts), max 256 tokens (MiniLM's sentence-transformers setting), nDCG@10 and
  Recall@100 as std's ``beir`` evaluator computes them.

Inputs are tokenised and moved to ``--device`` before timing; the time of a configuration is the
median of ``--repeats`` full passes after one warm-up pass, the configurations alternating
(GPU work synchronised). The paper's claim: a large speed-up for a small loss.

    python benchmarks/bench_pitome.py --device cuda --out OUT                   # full scale
    OMP_NUM_THREADS=1 python benchmarks/bench_pitome.py --pairs 500 --repeats 3 --write   # CPU, renders at once
    python benchmarks/bench_pitome.py --pairs 60 --limit 10 --repeats 1 --out /tmp/o     # small scale
    python benchmarks/bench_pitome.py --render OUT/pitome.json    # -> docs/results/efficient-encoders.md
"""

from __future__ import annotations

import argparse
import csv
import sys
from typing import Any

import issue15_common as common
import report

RESULTS = report.REPO / "docs" / "results" / "efficient-encoders.md"
HEADER = (
    "# Efficient encoders: PiToMe token merging and M2-BERT\n\n"
    "Produced by `benchmarks/bench_pitome.py`, `benchmarks/bench_m2bert.py` and `benchmarks/bench_m2bert_scifact.py`; "
    "each section names the\ncommand that wrote it. Subsets are labelled; machines are noisy (configurations alternate).\n"
)
NAME = "pitome.json"
BASE = "ratio 0 (plain MiniLM)"
CONFIGS: dict[str, dict[str, Any]] = {
    BASE: {"merge_ratio": 0.0},
    "ratio 0.25, last 3 layers": {"merge_ratio": 0.25},
    "ratio 0.5, last 3 layers": {"merge_ratio": 0.5},
    "ratio 0.25, all 6 layers": {"merge_ratio": 0.25, "merge_layers": [0, 1, 2, 3, 4, 5]},
    "ratio 0.5, all 6 layers": {"merge_ratio": 0.5, "merge_layers": [0, 1, 2, 3, 4, 5]},
}


def read_dev(n: int) -> tuple[list[str], list[str], list[float]]:
    path = report.shared_data_dir() / "stsb" / "dev.tsv"
    if not path.is_file():
        raise SystemExit(f"STS-B dev not found at {path} (set REPMIX_SHARED_DATA)")
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1 : n + 1]
    return [r[1] for r in rows], [r[2] for r in rows], [float(r[0]) for r in rows]


def run(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import torch
    from repmix.sdk import Runtime, resolve_model_dir
    from repmix_pitome.encoder import PiToMeBertEncoder
    from repmix_pitome.pooler import SizeWeightedMeanPooler
    from scipy.stats import spearmanr
    from transformers import AutoTokenizer

    common.check_device(args.device)
    dev = torch.device(args.device)
    tok = AutoTokenizer.from_pretrained(str(resolve_model_dir("all-MiniLM-L6-v2")))

    def batches(texts: list[str], max_length: int) -> list[dict[str, torch.Tensor]]:
        out = []
        for i in range(0, len(texts), args.batch):
            b = tok(texts[i : i + args.batch], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            out.append({k: v.to(dev) for k, v in b.items()})
        return out

    s1, s2, gold = read_dev(args.pairs or 10**9)
    sentences = sorted(set(s1 + s2), key=len)
    tasks: dict[str, list[dict[str, torch.Tensor]]] = {"stsb": batches(sentences, 128)}
    data = None
    if not args.no_scifact:
        data = common.scifact(args.limit)
        corpus_order = sorted(range(len(data.corpus_texts)), key=lambda i: -len(data.corpus_texts[i]))
        query_order = sorted(range(len(data.query_texts)), key=lambda i: -len(data.query_texts[i]))
        tasks["scifact"] = batches([data.query_texts[i] for i in query_order], 256) + batches(
            [data.corpus_texts[i] for i in corpus_order], 256
        )
    real_tokens = {t: sum(int(b["attention_mask"].sum()) for b in bs) for t, bs in tasks.items()}
    configs = {n: c for n, c in CONFIGS.items() if not (args.official_only and "merge_layers" in c)}
    pooler = SizeWeightedMeanPooler(SizeWeightedMeanPooler.Config(normalize=True), Runtime())
    encoders = {
        name: PiToMeBertEncoder(PiToMeBertEncoder.Config(**cfg), Runtime()).to(dev).eval() for name, cfg in configs.items()
    }
    vectors: dict[tuple[str, str], torch.Tensor] = {}
    kept: dict[tuple[str, str], int] = {}

    def make_run(name: str, task: str):  # type: ignore[no-untyped-def]
        def go() -> None:
            out: list[torch.Tensor] = []
            left = 0
            with torch.inference_mode():
                for b in tasks[task]:
                    enc = encoders[name](b)
                    left += int(enc["token"].mask.sum())
                    out.append(pooler(enc).hidden)
            common.sync(args.device)
            vectors[(name, task)] = torch.cat(out).float().cpu()
            kept[(name, task)] = left

        return go

    runs = {(name, task): make_run(name, task) for task in tasks for name in configs}
    for fn in runs.values():  # warm-up (CUDA kernels, allocator), and the vectors
        fn()
    times = report.time_alternating({f"{n}|{t}": fn for (n, t), fn in runs.items()}, args.repeats)
    results = []
    for name, cfg in configs.items():
        row: dict[str, Any] = {"configuration": name, **cfg}
        for task in tasks:
            t = report.median(times[f"{name}|{task}"])
            base = report.median(times[f"{BASE}|{task}"])
            row[f"{task}_seconds"] = t
            row[f"{task}_speedup"] = base / t
            row[f"{task}_tokens_left"] = kept[(name, task)] / real_tokens[task]
        v = dict(zip(sentences, vectors[(name, "stsb")]))
        row["stsb_spearman"] = float(spearmanr([float(v[a] @ v[b]) for a, b in zip(s1, s2)], gold).statistic)
        if data is not None:
            emb = vectors[(name, "scifact")].numpy()
            nq = len(data.query_texts)
            q, d = np.empty_like(emb[:nq]), np.empty_like(emb[nq:])
            q[np.asarray(query_order)] = emb[:nq]
            d[np.asarray(corpus_order)] = emb[nq:]
            m = common.ir(q @ d.T, data)
            row["scifact_ndcg@10"], row["scifact_recall@100"] = m["ndcg@10"], m["recall@100"]
        results.append(row)
        print({k: (round(x, 4) if isinstance(x, float) else x) for k, x in row.items()}, flush=True)
    command = " ".join(["python", "benchmarks/bench_pitome.py", *sys.argv[1:]])
    payload = common.base_payload("pitome", args, command)
    payload.update(
        stsb=f"the first {len(s1)} STS-B dev pairs" if args.pairs else "all 1,500 STS-B dev pairs",
        stsb_sentences=len(sentences), stsb_tokens=real_tokens["stsb"], batch=args.batch, repeats=args.repeats,
        scifact=None if data is None else data.describe(), scifact_tokens=real_tokens.get("scifact"), rows=results,
    )
    return payload


def render(p: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    sci = p.get("scifact") is not None
    rows = []
    for r in p["rows"]:
        row = [r["configuration"], f"{r['stsb_tokens_left']:.2f}", f"{r['stsb_seconds']:.2f}", f"{r['stsb_speedup']:.2f}",
               f"{100 * r['stsb_spearman']:.2f}"]
        if sci:
            row += [f"{r['scifact_tokens_left']:.2f}", f"{r['scifact_seconds']:.2f}", f"{r['scifact_speedup']:.2f}",
                    f"{r['scifact_ndcg@10']:.4f}", f"{r['scifact_recall@100']:.4f}"]
        rows.append(row)
    headers = ["configuration", "STS-B tokens left", "STS-B encode s", "STS-B speed-up", "STS-B dev Spearman ×100"]
    if sci:
        headers += ["SciFact tokens left", "SciFact encode s", "SciFact speed-up", "SciFact nDCG@10", "SciFact Recall@100"]
    table = report.markdown_table(headers, rows)
    threads = " one thread," if p.get("threads_env") == "1" else ""
    scifact = (
        f"; SciFact: {p['scifact']}, {p['scifact_tokens']:,} tokens, max 256 (claims and abstracts both timed)" if sci else ""
    )
    md = (
        f"## PiToMe in all-MiniLM-L6-v2 ({p['device']}): speed-up, STS-B and SciFact at merge ratios 0 / 0.25 / 0.5\n\n"
        f"{common.scale_note(p)}`{p['command']}` — pretrained MiniLM without fine-tuning, size-weighted mean pooling, "
        f"cosine. STS-B: {p['stsb']} ({p['stsb_sentences']} distinct sentences, {p['stsb_tokens']:,} tokens, max 128)"
        f"{scifact}. Encode time = median of {p['repeats']} full passes after a warm-up (configurations alternate), "
        f"batch {p['batch']}, inputs tokenised beforehand,{threads} on {p['device']}. Machine: {p['machine']}; {p['date']}.\n\n"
        f"{table}\n\n"
        "Ratio = fraction of the mergeable tokens (all but [CLS]) removed in each merging layer; the official "
        "BERT schedule merges in the last three layers with margin 0.9 − 0.25·l/L. Tokens left = real tokens after the "
        "last layer / before the first ([CLS] and [SEP] included). Every configuration, ratio 0 included, runs the "
        "same layer-by-layer encoder (explicit attention), so speed-ups compare like with like."
    )
    key = "pitome-minilm" if p["device"] == "cpu" else f"pitome-minilm-{p['device']}"
    return [("efficient-encoders.md", key, HEADER, md)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=0, help="first N STS-B dev pairs (0 = all 1,500)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-scifact", action="store_true", help="STS-B only")
    ap.add_argument("--official-only", action="store_true", help="only ratios 0 / 0.25 / 0.5 in the official schedule (last 3 layers)")
    ap.add_argument("--write", action="store_true", help="also render the section into docs/results at once")
    common.add_common_args(ap, "small scale: N SciFact claims and about 10·N abstracts (0 = all 809 / 5,183)")
    args = ap.parse_args()
    if args.render:
        common.render_files(args.render, render, args.docs, args.allow_small)
        return
    payload = run(args)
    common.write_json(args.out, NAME, payload)
    sections = render(payload)
    print(sections[0][3])
    if args.write:
        common.write_sections(sections, args.docs)


if __name__ == "__main__":
    main()
