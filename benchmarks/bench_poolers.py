"""Pooler overhead relative to mean pooling, and 2DMSE's shallow-encoder speed-up, on all-MiniLM-L6-v2.

Run: python benchmarks/bench_poolers.py [--n 512] [--batch-size 32] [--repeats 5]
Needs ../shared/data/stsb (sentences), the packaged all-MiniLM-L6-v2 and the plugins
std, lama, mltp, matryoshka2d and dupmae. Writes the "poolers" section of docs/benchmarks.md.

1. Pooler overhead: every pooler runs on the same precomputed MiniLM output (token states and
   per-layer states of real sentences, batches of ``--batch-size``); the time of the pooler's
   forward alone, per batch, is divided by mean pooling's (runs alternate).
2. Encode time at (layer 2, dim 64) vs (layer 6, dim 384): ``model.embed`` of ``--n`` sentences
   with ``matryoshka2d.early-exit`` (exit_layer 2, blocks 3..6 not run) + ``matryoshka2d.truncate``
   (dim 64), against the full model + ``matryoshka2d.truncate`` (dim 384). Also shown: reading
   layer 2 from a full forward pass (``hf-transformer`` + ``truncate layer: 2``), which saves nothing.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from report import (
    machine,
    markdown_table,
    median,
    shared_data_dir,
    time_alternating,
    write_section,
)


def sentences(n: int) -> list[str]:
    """The first ``n`` distinct STS-B train sentences."""
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


TOWER = """
model:
  towers:
    text:
      tokenizer: {{type: hf-tokenizer, model: all-MiniLM-L6-v2, max_length: 128}}
      encoder: {encoder}
      poolers:
{poolers}
"""

#: label -> pooler block (all read the same MiniLM output).
POOLERS: dict[str, str] = {
    "mean (std)": "{type: mean, normalize: true}",
    "cls (std)": "{type: cls, normalize: true}",
    "last-token (std)": "{type: last-token, normalize: true}",
    "max (std)": "{type: max, normalize: true}",
    "lama (4 heads, concat)": "{type: lama, heads: 4}",
    "lama (4 heads, mean)": "{type: lama, heads: 4, output: mean}",
    "mltp.multi-layer (16 latents, 4x32)": "{type: mltp.multi-layer}",
    "mltp.last-layer (16 latents, 4x32)": "{type: mltp.last-layer}",
    "mltp.eos": "{type: mltp.eos, normalize: true}",
    "matryoshka2d.truncate (layer 2, dim 64)": "{type: matryoshka2d.truncate, layer: 2, dim: 64}",
}


def build(encoder: str, poolers: dict[str, str]):  # type: ignore[no-untyped-def]
    """A one-tower model from blocks (poolers named p0, p1, ...)."""
    from repmix.core.assembly import build_model, plan_model
    from repmix.core.config import LocatedConfig, parse_yaml

    lines = "\n".join(f"        {name}: {block}" for name, block in poolers.items())
    data, where = parse_yaml(TOWER.format(encoder=encoder, poolers=lines), "bench.yaml")
    return build_model(plan_model(LocatedConfig(data, where, "bench.yaml"))).eval()


def pooler_overhead(
    texts: list[str], batch_size: int, repeats: int, inner: int, pooler_threads: int
) -> tuple[list[list[object]], int, float]:
    """Rows of (pooler, min and median ms per batch, ratio to mean pooling, share of an encoder batch).

    Each timing runs the pooler over every batch ``inner`` times; the minimum over the
    alternating repeats is the least disturbed estimate on a shared machine. The poolers run
    with ``pooler_threads`` torch threads: their tensors are small, and on a busy machine
    waiting for a second thread costs more than the work.
    """
    import torch

    names = {f"p{i}": label for i, label in enumerate(POOLERS)}
    model = build("{type: hf-transformer, model: all-MiniLM-L6-v2}", {f"p{i}": b for i, b in enumerate(POOLERS.values())})
    tower = model.tower("text")
    batches = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tower.tokenizer(texts[start : start + batch_size])
            encoded = tower.encoder(batch, output_layers=True)
            batches.append(encoded)

    def run(name: str):  # type: ignore[no-untyped-def]
        pooler = tower.poolers[name]

        def go() -> None:
            with torch.inference_mode():
                for _ in range(inner):
                    for encoded in batches:
                        pooler(encoded)

        return go

    fns = {name: run(name) for name in names}
    threads = torch.get_num_threads()
    torch.set_num_threads(pooler_threads)
    def encoder_batch() -> None:
        with torch.inference_mode():
            tower.encoder(tower.tokenizer(texts[:batch_size]), output_layers=True)

    try:
        for fn in fns.values():
            fn()  # warm-up
        times = time_alternating(fns, repeats)
        encoder_batch()
        encode_ms = min(time_alternating({"encoder": encoder_batch}, repeats)["encoder"]) * 1e3
    finally:
        torch.set_num_threads(threads)
    calls = len(batches) * inner
    best = {name: min(t) / calls for name, t in times.items()}
    typical = {name: median(t) / calls for name, t in times.items()}
    base = best["p0"]
    rows = [
        [names[n], f"{best[n] * 1e3:.3f}", f"{typical[n] * 1e3:.3f}", f"{best[n] / base:.2f}",
         f"{100 * best[n] * 1e3 / encode_ms:.2f} %"]
        for n in names
    ]
    return rows, len(batches), encode_ms


def shallow_speedup(texts: list[str], batch_size: int, repeats: int) -> tuple[list[list[object]], float, float]:
    """Rows of (setting, median s, sentences/s, ratio to full), the shallow/full ratio and the max abs difference."""
    import numpy as np

    full = build("{type: matryoshka2d.early-exit, model: all-MiniLM-L6-v2}",
                 {"s": "{type: matryoshka2d.truncate, layer: -1}"})
    shallow = build("{type: matryoshka2d.early-exit, model: all-MiniLM-L6-v2, exit_layer: 2}",
                    {"s": "{type: matryoshka2d.truncate, layer: -1, dim: 64}"})
    read_only = build("{type: hf-transformer, model: all-MiniLM-L6-v2}",
                      {"s": "{type: matryoshka2d.truncate, layer: 2, dim: 64}"})
    fns = {
        "full": lambda: full.encode(texts, tower="text", batch_size=batch_size),
        "shallow": lambda: shallow.encode(texts, tower="text", batch_size=batch_size),
        "read_only": lambda: read_only.encode(texts, tower="text", batch_size=batch_size),
    }
    diff = float(np.abs(fns["shallow"]() - fns["read_only"]()).max())  # same vectors; also warms up
    fns["full"]()
    times = time_alternating(fns, repeats)
    t = {k: median(v) for k, v in times.items()}
    labels = {
        "full": "(layer 6, dim 384): full encoder + truncate",
        "shallow": "(layer 2, dim 64): early-exit encoder (blocks 3-6 not run) + truncate",
        "read_only": "(layer 2, dim 64) read from a full forward pass (hf-transformer + truncate layer 2)",
    }
    rows = [[labels[k], f"{t[k]:.2f}", f"{len(texts) / t[k]:.0f}", f"{t[k] / t['full']:.2f}"] for k in labels]
    return rows, t["shallow"] / t["full"], diff


def main() -> None:
    """Measure, print and write the docs/benchmarks.md section."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=512, help="sentences")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--inner", type=int, default=10, help="passes over the batches per pooler timing")
    parser.add_argument("--pooler-threads", type=int, default=1, help="torch threads while timing the poolers")
    args = parser.parse_args()

    texts = sentences(args.n)
    pool_rows, n_batches, encode_ms = pooler_overhead(texts, args.batch_size, args.repeats, args.inner, args.pooler_threads)
    speed_rows, ratio, diff = shallow_speedup(texts, args.batch_size, args.repeats)
    md = (
        "## Poolers: overhead vs mean pooling, and 2DMSE's shallow encoder\n\n"
        f"Command: `python benchmarks/bench_poolers.py --n {args.n} --batch-size {args.batch_size} "
        f"--repeats {args.repeats} --inner {args.inner} --pooler-threads {args.pooler_threads}`; "
        f"{args.n} distinct STS-B train sentences, "
        f"all-MiniLM-L6-v2, {machine()}; measured while other jobs shared the 2 cores, so every "
        "comparison alternates its sides.\n\n"
        f"**Pooler forward alone** on the same precomputed MiniLM outputs ({n_batches} batches of "
        f"{args.batch_size}, token and per-layer states; {args.inner} passes per timing, {args.repeats} "
        f"alternating timings, {args.pooler_threads} torch thread(s)), per batch; the ratio compares the "
        "minima (the least disturbed timings):\n\n"
        + markdown_table(["pooler", "min ms / batch", "median ms / batch", "× mean (min)", "of the encoder's batch"],
                         pool_rows)
        + f"\n\nThe last column relates each pooler to the MiniLM forward pass of one batch of {args.batch_size} "
        f"(tokenizer + all 6 layers, same threads: {encode_ms:.0f} ms, minimum of {args.repeats})."
        + "\n\n**Encode time** (`model.embed`, tokenizer + encoder + pooler) at two (layer, dim) points of one "
        f"model, medians of {args.repeats} alternating runs:\n\n"
        + markdown_table(["setting", "median s", "sentences/s", "× full"], speed_rows)
        + f"\n\nThe shallow (layer 2, dim 64) encoder takes **{ratio:.2f}×** the time of the full (layer 6, dim 384) "
        f"one ({1 / ratio:.2f}× faster): only 2 of 6 transformer blocks run. Reading layer 2 out of a full "
        "forward pass saves nothing; the vectors of the two layer-2 settings agree to "
        f"{diff:.1e} (max abs difference).\n"
    )
    print(md)
    write_section("poolers", md)


if __name__ == "__main__":
    main()
