"""ORMA's fine-tuned text tower: one padded pass vs length-sorted chunks through the top layers.

Run: python benchmarks/bench_orma_top_layers.py [--batch-size 128] [--batches 4] [--repeats 3]
Needs ../shared/data/chebi20/validation_text2mol_names.tsv and repmix-orma installed.
Writes the "orma-top-layers" section of docs/benchmarks.md.

``orma.frozen-cached`` with ``train_top_layers: 2`` (all-MiniLM-L6-v2, the set-up of
``orma-finetuned-chebi20.yaml``) runs the top two layers forward and backward at every step over
cached lower layers. A random batch is padded to its longest description; with ``chunk: c`` the
rows run in length-sorted chunks of ``c``, each trimmed to its own longest row (the same outputs at
real positions: tests/test_fingerprints.py). ``chunk`` = the batch size is the single padded pass.
Each case encodes the same random batches (cache filled beforehand, so only the top layers run),
timed in process CPU seconds (robust to other jobs on the machine), alternating cases, median
over repeats; the ratio is against the single padded pass.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from report import machine, markdown_table, median, shared_data_dir, write_section


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunks", type=int, nargs="*", default=[16, 32, 64])
    args = ap.parse_args()

    import torch
    from repmix.sdk import LocatedConfig, build_model, plan_model

    path = shared_data_dir() / "chebi20" / "validation_text2mol_names.tsv"
    if not path.is_file():
        raise SystemExit(f"needs {path} (ChEBI-20 from ../shared/data)")
    with path.open(newline="", encoding="utf-8") as handle:
        texts = [row["description"] for row in csv.DictReader(handle, delimiter="\t")]
    rng = random.Random(0)
    batches = [rng.sample(texts, args.batch_size) for _ in range(args.batches)]

    grans = {"last": -1, "token-base": -3, "multitoken-base": -2}
    cases = [args.batch_size, *[c for c in args.chunks if c < args.batch_size]]
    models = {}
    for chunk in cases:
        encoder = {"type": "orma.frozen-cached", "train_top_layers": 2, "chunk": chunk,
                   "encoder": {"type": "std.hf-transformer", "model": "all-MiniLM-L6-v2", "granularities": grans}}
        tower = {"tokenizer": {"type": "std.hf-tokenizer", "model": "all-MiniLM-L6-v2", "max_length": 256},
                 "encoder": encoder, "poolers": {"mean": {"type": "std.mean", "source": "last"}}}
        model = build_model(plan_model(LocatedConfig({"model": {"towers": {"text": tower}}})), seed=0).train()
        models[chunk] = model
    tokenized = [models[cases[0]].tower("text").tokenizer(b) for b in batches]
    real = sum(int(t["attention_mask"].sum()) for t in tokenized)
    padded = sum(int(t["attention_mask"].numel()) for t in tokenized)

    def step(chunk: int) -> None:
        encoder = models[chunk].tower("text").encoder
        for batch in tokenized:
            out = encoder(batch)
            (out["last"].hidden.sum() + out["multitoken-base"].hidden.sum()).backward()

    for chunk in cases:  # fill each model's cache (lower four layers), not timed
        step(chunk)
    seconds: dict[int, list[float]] = {c: [] for c in cases}
    for _ in range(args.repeats):
        for chunk in cases:
            start = time.process_time()
            step(chunk)
            seconds[chunk].append((time.process_time() - start) / len(tokenized))
    one = median(seconds[args.batch_size])
    rows = []
    for chunk in cases:
        s = median(seconds[chunk])
        label = "one padded pass" if chunk == args.batch_size else f"chunks of {chunk}"
        rows.append([label, f"{s:.2f}", f"{one / s:.2f}×"])
    table = markdown_table(["top two layers, forward + backward", "CPU s per batch", "speed-up"], rows)
    text = (
        "## ORMA's fine-tuned text tower: length-sorted chunks (`orma.frozen-cached` `chunk`)\n\n"
        f"Command: `python benchmarks/bench_orma_top_layers.py --batch-size {args.batch_size} "
        f"--batches {args.batches} --repeats {args.repeats} --chunks {' '.join(map(str, args.chunks))}`; "
        f"{machine()}. {args.batches} random batches of "
        f"{args.batch_size} ChEBI-20 descriptions (all-MiniLM-L6-v2, max 256 tokens): {real:,} real tokens "
        f"padded to {padded:,} ({padded / real:.2f}×) in one pass. Process CPU seconds per batch, median of "
        f"{args.repeats}, cases alternating.\n\n" + table + "\n"
    )
    print(text)
    print(f"wrote {write_section('orma-top-layers', text)}")


if __name__ == "__main__":
    main()
