"""PoNet token mixing vs standard self-attention: forward time against sequence length.

One PoNet layer (``repmix_ponet.encoder.PoNetLayer``: pooling mixer + output dense + FFN, post-LN)
beside ``torch.nn.TransformerEncoderLayer`` of the same width, heads and feed-forward size
(post-LN, GELU, batch-first), both with a padding mask, in eval mode under ``torch.inference_mode``.
Lengths T, 2T, 4T, 8T; the two models alternate at every repeat; medians are reported with the
log-log slope of time against length (least squares over the four points): 1 is linear, 2 quadratic.
The paper's claim: PoNet's mixing is linear in T (the feed-forward is linear in both models, so
the attention layer's slope approaches 2 only once attention dominates).

    .venv/bin/python benchmarks/bench_ponet.py                         # T = 256 .. 2048, D = 128
    .venv/bin/python benchmarks/bench_ponet.py --base 512 --dim 64 --no-write
"""

from __future__ import annotations

import argparse
import math

import report
import torch


def slope(xs: list[int], ys: list[float]) -> float:
    """Least-squares slope of log(y) against log(x)."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=int, default=256, help="T (lengths T, 2T, 4T, 8T)")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    from repmix_ponet.encoder import PoNetLayer

    torch.manual_seed(0)
    d, ffn = args.dim, 4 * args.dim
    ponet = PoNetLayer(d, args.heads, segments=8, kernel=3, ffn=ffn, dropout=0.0).eval()
    attention = torch.nn.TransformerEncoderLayer(
        d, args.heads, dim_feedforward=ffn, dropout=0.0, activation="gelu", batch_first=True
    ).eval()
    lengths = [args.base * m for m in (1, 2, 4, 8)]
    rows, med = [], {"PoNet": [], "self-attention": []}
    for t in lengths:
        x = torch.randn(args.batch, t, d)
        mask = torch.ones(args.batch, t, dtype=torch.bool)
        mask[1:, t - t // 4 :] = False  # padding in every item but the first

        def run_ponet(x: torch.Tensor = x, mask: torch.Tensor = mask) -> None:
            with torch.inference_mode():
                ponet(x, mask)

        def run_attention(x: torch.Tensor = x, mask: torch.Tensor = mask) -> None:
            with torch.inference_mode():
                attention(x, src_key_padding_mask=~mask)

        run_ponet(), run_attention()  # warm-up
        times = report.time_alternating({"PoNet": run_ponet, "self-attention": run_attention}, args.repeats)
        p, a = report.median(times["PoNet"]), report.median(times["self-attention"])
        med["PoNet"].append(p)
        med["self-attention"].append(a)
        rows.append([t, f"{1000 * p:.1f}", f"{1000 * a:.1f}", f"{a / p:.2f}"])
        print(rows[-1], flush=True)
    s_p, s_a = slope(lengths, med["PoNet"]), slope(lengths, med["self-attention"])
    table = report.markdown_table(["T", "PoNet layer ms", "self-attention layer ms", "attention / PoNet"], rows)
    md = (
        "## PoNet vs self-attention: time against sequence length\n\n"
        f"`OMP_NUM_THREADS=1 python benchmarks/bench_ponet.py --base {args.base} --dim {d} --repeats {args.repeats}` — one layer each, width {d}, "
        f"{args.heads} heads, FFN {ffn}, batch {args.batch}, forward in eval mode, median of {args.repeats} "
        f"alternating runs. Machine: {report.machine()}.\n\n{table}\n\n"
        f"Log-log slope of time against T ({lengths[0]}..{lengths[-1]}): PoNet **{s_p:.2f}**, "
        f"self-attention **{s_a:.2f}** (1 = linear, 2 = quadratic). "
        f"t(8T)/t(T): PoNet {med['PoNet'][-1] / med['PoNet'][0]:.1f}, self-attention "
        f"{med['self-attention'][-1] / med['self-attention'][0]:.1f}."
    )
    print(md)
    if not args.no_write:
        report.write_section("ponet-scaling", md)


if __name__ == "__main__":
    main()
