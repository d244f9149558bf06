"""M2-BERT trained briefly as a long-document retrieval encoder vs all-MiniLM-L6-v2 truncated at 256 tokens, on SciFact.

The run is ``plugins/m2-bert/configs/m2-bert-scifact.yaml`` trained with
``repmix train ... -o RUN``: M2-BERT from scratch (no pretrained weights exist for it here),
whole abstracts up to 2,048 tokens, trained with the paper's single-sample loss (MSE of
cos(q, d) against 1 for a relevant abstract and 0 for a BM25 negative) on the claims the config
does not hold out. Evaluated here on the held-out claims (the run's ``data.beir`` block and its
``holdout_split``; SciFact's own test claims are not in the shared data) against the full corpus:

* ``BM25`` (``repmix_m2_bert.bm25``, k1 1.2, b 0.75, lowercased alphanumeric tokens): the
  lexical baseline that also supplied the training negatives;
* ``all-MiniLM-L6-v2`` pretrained, no fine-tuning, mean pooling, cosine, inputs truncated at
  256 tokens (and at the ``--minilm-lengths`` given);
* ``M2-BERT, untrained``: the run's config with its seeded random initialisation (a floor);
* ``M2-BERT, trained``: the run's model.

Also reported: how many abstracts exceed 256 tokens (what truncation cuts), the corpus encode
time of each model on ``--device``, and the run's training steps and time.

    python benchmarks/bench_m2bert_scifact.py RUN --device cuda --out OUT      # full scale
    python benchmarks/bench_m2bert_scifact.py RUN --limit 10 --out /tmp/o      # small scale (CPU)
    python benchmarks/bench_m2bert_scifact.py --render OUT/m2bert-scifact.json # -> docs/results/efficient-encoders.md
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import issue15_common as common
import numpy as np
import report

NAME = "m2bert-scifact.json"
MINILM_YAML = """\
name: minilm-{length}
model:
  towers:
    query:
      tokenizer: {{type: std.hf-tokenizer, model: all-MiniLM-L6-v2, max_length: {length}}}
      encoder:   {{type: std.hf-transformer, model: all-MiniLM-L6-v2}}
      poolers:
        sentence: {{type: std.mean, normalize: true}}
    document: {{shared_with: query}}
  alignments:
    similarity: {{type: std.cosine, between: [query.sentence, document.sentence]}}
"""


def run_config(run: Path) -> dict[str, Any]:
    from repmix.sdk import parse_yaml

    for path in (run / "config.yaml", run / "model" / "config.yaml"):
        if path.is_file():
            data, _ = parse_yaml(path.read_text(encoding="utf-8"), str(path))
            return data
    raise SystemExit(f"{run}: no config.yaml (expected a run directory from repmix train)")


def held_out(cfg: dict[str, Any], limit: int) -> tuple[common.Retrieval, str]:
    """The run's held-out claims: its ``data.beir`` block, split ``holdout_split``."""
    block = dict((cfg.get("data") or {}).get("beir") or {})
    if not block or block.get("holdout") is None:
        raise SystemExit("the run's data block has no beir: {..., holdout: ...}; cannot find its held-out claims")
    split = block.get("holdout_split", "test")
    block.pop("limit", None)
    block.pop("fraction", None)
    return common.scifact(limit, block=block, split=split), split


def dense_scores(model: Any, data: common.Retrieval, device: str, batch: int) -> tuple[np.ndarray, float]:
    gran = model.default_granularity("query")
    docs, seconds = common.timed(lambda: common.encode(model, "document", data.corpus_texts, [gran], batch)[gran], device)
    queries = common.encode(model, "query", data.query_texts, [gran], batch)[gran]
    return queries @ docs.T, seconds


def training_summary(run: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    log = run / "metrics.jsonl"
    if log.is_file():
        records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
        train = [r for r in records if r.get("type") == "train"]
        if train:
            out.update(steps=train[-1]["step"], epochs=train[-1].get("epoch"), final_loss=train[-1]["loss"],
                       train_seconds=train[-1].get("elapsed"),
                       cos_pos=next((v for k, v in train[-1].items() if k.endswith(".cos_pos")), None),
                       cos_neg=next((v for k, v in train[-1].items() if k.endswith(".cos_neg")), None))
    metrics = run / "metrics.json"
    if metrics.is_file():
        m = json.loads(metrics.read_text(encoding="utf-8"))
        out["run_metrics"] = {k: v for k, v in m.items() if isinstance(v, (int, float))}
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    import repmix
    from repmix_m2_bert.bm25 import BM25
    from transformers import AutoTokenizer
    from repmix.sdk import resolve_model_dir

    common.check_device(args.device)
    cfg = run_config(args.run)
    data, split = held_out(cfg, args.limit)
    tok = AutoTokenizer.from_pretrained(str(resolve_model_dir("all-MiniLM-L6-v2")))
    lengths = np.array([len(ids) for ids in tok(data.corpus_texts, truncation=False)["input_ids"]])
    rows: list[dict[str, Any]] = []

    def add(name: str, context: str, scores: np.ndarray, seconds: float | None) -> None:
        m = common.ir(scores, data, ("ndcg@10", "recall@100", "mrr@10"))
        rows.append({"model": name, "context": context, **m, "encode_corpus_s": seconds})
        print(rows[-1], flush=True)

    bm25, bm25_s = common.timed(lambda: BM25(data.corpus_texts), "cpu")
    add("BM25", "whole abstract", np.stack([bm25.scores(q) for q in data.query_texts]), None)
    for length in args.minilm_lengths:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "minilm.yaml"
            path.write_text(MINILM_YAML.format(length=length), encoding="utf-8")
            model = repmix.load(path, device=args.device)
        scores, seconds = dense_scores(model, data, args.device, args.batch)
        add("all-MiniLM-L6-v2 (pretrained)", f"first {length} tokens", scores, seconds)
        del model
    m2_context = f"first {cfg['model']['towers']['query']['tokenizer'].get('max_length', '?')} tokens"
    if not args.no_untrained:
        model = repmix.load(args.run / "config.yaml", device=args.device)  # seeded random initialisation
        scores, seconds = dense_scores(model, data, args.device, args.batch)
        add("M2-BERT, untrained (random init)", m2_context, scores, seconds)
        del model
    model = repmix.load(args.run, device=args.device)
    scores, seconds = dense_scores(model, data, args.device, args.batch)
    add("M2-BERT, trained (single-sample loss)", m2_context, scores, seconds)
    enc = cfg["model"]["towers"]["query"]["encoder"]
    params = sum(p.numel() for p in model.parameters())
    command = " ".join(["python", "benchmarks/bench_m2bert_scifact.py", *sys.argv[1:]])
    payload = common.base_payload("m2bert-scifact", args, command)
    payload.update(
        run=str(args.run), split=split, data=data.describe(f"held-out SciFact claims (split {split!r})"),
        n_queries=len(data.query_ids), n_docs=len(data.corpus_ids),
        abstract_tokens={"mean": float(lengths.mean()), "median": float(np.median(lengths)), "max": int(lengths.max()),
                         "share_over_256": float((lengths > 256).mean()), "share_over_512": float((lengths > 512).mean()),
                         "share_of_tokens_in_first_256": float(np.minimum(lengths, 256).sum() / lengths.sum())},
        m2={k: enc.get(k) for k in ("dim", "layers", "filter_order", "nblocks", "max_length")}, m2_parameters=params,
        train={**(cfg.get("train") or {}), "negatives": (cfg.get("data") or {}).get("negatives")},
        training=training_summary(args.run), bm25_index_s=bm25_s, rows=rows,
    )
    return payload


def render(p: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows = [[r["model"], r["context"], f"{r['ndcg@10']:.4f}", f"{r['recall@100']:.4f}", f"{r['mrr@10']:.4f}",
             "—" if r["encode_corpus_s"] is None else f"{r['encode_corpus_s']:.1f}"] for r in p["rows"]]
    table = report.markdown_table(
        ["model", "reads", "nDCG@10", "Recall@100", "MRR@10", f"encode corpus s ({p['device']})"], rows
    )
    a, m, t, tr = p["abstract_tokens"], p["m2"], p["training"], p["train"]
    trained = (
        f"{t.get('steps', '?')} steps ({t.get('epochs', '?')} epochs) in {t.get('train_seconds') or 0:.0f} s, final loss "
        f"{t.get('final_loss', float('nan')):.4f}" if t else "training log not found"
    )
    if t.get("cos_pos") is not None:
        trained += f" (last logged batch: mean cos {t['cos_pos']:.3f} to relevant, {t['cos_neg']:.3f} to BM25 negatives)"
    md = (
        "## M2-BERT as a long-document retrieval encoder on SciFact vs MiniLM truncated at 256 tokens\n\n"
        f"{common.scale_note(p)}`{p['command']}` — run `{p['run']}` "
        f"(`plugins/m2-bert/configs/m2-bert-scifact.yaml`: M2-BERT from scratch, D = {m['dim']}, layers = {m['layers']}, "
        f"filter order {m['filter_order']}, {m['nblocks']}-block Monarch GLU, up to {m['max_length']} tokens, "
        f"{p['m2_parameters'] / 1e6:.1f} M parameters, MiniLM's WordPiece vocabulary; the single-sample loss "
        f"MSE(cos, 1 | 0) over each training claim's relevant abstracts and {tr.get('negatives')} BM25 negatives, "
        f"batch {tr.get('batch_size')}, lr {tr.get('lr')}; {trained}). "
        f"Evaluated on {p['data']}. Abstracts: {a['mean']:.0f} MiniLM tokens on average (median {a['median']:.0f}, "
        f"max {a['max']:,}); {100 * a['share_over_256']:.0f} % exceed 256 tokens and {100 * a['share_over_512']:.0f} % "
        f"exceed 512; the first 256 tokens hold {100 * a['share_of_tokens_in_first_256']:.0f} % of all tokens. "
        f"Machine: {p['machine']}; {p['date']}.\n\n{table}\n\n"
        "The paper's M2-BERT is pretrained (masked LM, then long-context) before its retrieval fine-tuning; this one "
        "starts from random weights and sees only the training claims for a few minutes at most, so the comparison "
        "shows what the architecture and the single-sample loss do on their own, not the paper's model."
    )
    return [("efficient-encoders.md", "m2bert-scifact", _header(), md)]


def _header() -> str:
    from bench_pitome import HEADER

    return HEADER


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", nargs="?", type=Path, help="the m2-bert-scifact run directory")
    common.add_common_args(ap, "small scale: N held-out claims and about 10·N abstracts (0 = all held-out / 5,183)")
    ap.add_argument("--minilm-lengths", type=int, nargs="+", default=[256], help="MiniLM truncation lengths (256)")
    ap.add_argument("--no-untrained", action="store_true", help="skip the random-initialisation row")
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    if args.render:
        common.render_files(args.render, render, args.docs, args.allow_small)
        return
    if args.run is None:
        ap.error("give the run directory (or --render JSON)")
    payload = run(args)
    common.write_json(args.out, NAME, payload)
    print(render(payload)[0][3])


if __name__ == "__main__":
    main()
