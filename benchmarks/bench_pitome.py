"""PiToMe token merging in all-MiniLM-L6-v2: encode speed-up and STS-B dev Spearman at several merge ratios.

The packaged all-MiniLM-L6-v2 run by the ``pitome`` encoder (``repmix_pitome``), no fine-tuning,
size-weighted mean pooling of the merged tokens (``pitome.size-mean``), cosine similarity,
Spearman against the gold scores of the first ``--pairs`` STS-B dev pairs (a labelled subset).
Merge ratios 0 / 0.25 / 0.5 in the official layer schedule (the last three of six layers,
margin 0.9 − 0.25·l/L), and the same ratios in every layer. Ratio 0 is exactly BertModel (tested).
Sentences are sorted by length and encoded in batches of ``--batch``; the time is the
median of ``--repeats`` full passes, the configurations alternating; one thread.
The paper's claim: a large speed-up for a small loss.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_pitome.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_pitome.py --pairs 200 --no-write
"""

from __future__ import annotations

import argparse
import csv

import report
import torch

RESULTS = report.REPO / "docs" / "results" / "efficient-encoders.md"
HEADER = (
    "# Efficient encoders: PiToMe token merging and M2-BERT\n\n"
    "Produced by `benchmarks/bench_pitome.py` and `benchmarks/bench_m2bert.py`; each section names the\n"
    "command that wrote it. Subsets are labelled; machines are noisy (configurations alternate).\n"
)


def read_dev(n: int) -> tuple[list[str], list[str], list[float]]:
    path = report.shared_data_dir() / "stsb" / "dev.tsv"
    if not path.is_file():
        raise SystemExit(f"STS-B dev not found at {path} (set REPMIX_SHARED_DATA)")
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1 : n + 1]
    return [r[1] for r in rows], [r[2] for r in rows], [float(r[0]) for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=500, help="first N STS-B dev pairs (0 = all 1,500)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    from repmix.sdk import Encoded, Runtime, resolve_model_dir
    from repmix_pitome.encoder import PiToMeBertEncoder
    from repmix_pitome.pooler import SizeWeightedMeanPooler
    from scipy.stats import spearmanr
    from transformers import AutoTokenizer

    s1, s2, gold = read_dev(args.pairs or 10**9)
    sentences = sorted(set(s1 + s2), key=len)
    tok = AutoTokenizer.from_pretrained(str(resolve_model_dir("all-MiniLM-L6-v2")))
    batches = [
        dict(tok(sentences[i : i + args.batch], padding=True, truncation=True, max_length=128, return_tensors="pt"))
        for i in range(0, len(sentences), args.batch)
    ]
    real_tokens = sum(int(b["attention_mask"].sum()) for b in batches)
    configs = {
        "ratio 0 (plain MiniLM)": {"merge_ratio": 0.0},
        "ratio 0.25, last 3 layers": {"merge_ratio": 0.25},
        "ratio 0.5, last 3 layers": {"merge_ratio": 0.5},
        "ratio 0.25, all 6 layers": {"merge_ratio": 0.25, "merge_layers": [0, 1, 2, 3, 4, 5]},
        "ratio 0.5, all 6 layers": {"merge_ratio": 0.5, "merge_layers": [0, 1, 2, 3, 4, 5]},
    }
    pooler = SizeWeightedMeanPooler(SizeWeightedMeanPooler.Config(normalize=True), Runtime())
    encoders = {name: PiToMeBertEncoder(PiToMeBertEncoder.Config(**cfg), Runtime()).eval() for name, cfg in configs.items()}
    vectors: dict[str, dict[str, torch.Tensor]] = {}
    final_tokens: dict[str, int] = {}

    def make_run(name: str):  # type: ignore[no-untyped-def]
        def run() -> None:
            out: list[torch.Tensor] = []
            kept = 0
            with torch.inference_mode():
                for b in batches:
                    enc: Encoded = encoders[name](b)
                    kept += int(enc["token"].mask.sum())
                    out.extend(pooler(enc).hidden)
            vectors[name] = dict(zip(sentences, out))
            final_tokens[name] = kept

        return run

    runs = {name: make_run(name) for name in configs}
    times = report.time_alternating(runs, args.repeats)
    rows = []
    base = report.median(times["ratio 0 (plain MiniLM)"])
    for name in configs:
        t = report.median(times[name])
        v = vectors[name]
        cos = [float(v[a] @ v[b]) for a, b in zip(s1, s2)]
        rho = spearmanr(cos, gold).statistic
        rows.append([name, f"{final_tokens[name] / real_tokens:.2f}", f"{t:.2f}", f"{base / t:.2f}", f"{100 * rho:.2f}"])
        print(rows[-1], flush=True)
    table = report.markdown_table(
        ["configuration", "tokens left after the last layer", "encode s", "speed-up", "STS-B dev Spearman ×100"], rows
    )
    subset = f"the first {len(s1)} STS-B dev pairs" if args.pairs else "all 1,500 STS-B dev pairs"
    md = (
        "## PiToMe in all-MiniLM-L6-v2: speed-up and STS-B at merge ratios 0 / 0.25 / 0.5\n\n"
        f"`OMP_NUM_THREADS=1 python benchmarks/bench_pitome.py --pairs {args.pairs} --batch {args.batch} "
        f"--repeats {args.repeats}` — {subset} ({len(sentences)} distinct sentences, {real_tokens} tokens, "
        f"max 128), pretrained MiniLM without fine-tuning, size-weighted mean pooling, cosine; encode time = "
        f"median of {args.repeats} full passes (configurations alternate), batch {args.batch}, one thread. "
        f"Machine: {report.machine()}.\n\n{table}\n\n"
        "Ratio = fraction of the mergeable tokens (all but [CLS]) removed in each merging layer; the official "
        "BERT schedule merges in the last three layers with margin 0.9 − 0.25·l/L. Token counts include [CLS] "
        "and [SEP]."
    )
    print(md)
    if not args.no_write:
        report.write_section("pitome-minilm", md, path=RESULTS, header=HEADER)


if __name__ == "__main__":
    main()
