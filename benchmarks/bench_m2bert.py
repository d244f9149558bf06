"""M2-BERT (Monarch Mixer) layer vs a self-attention layer at the MiniLM width: time and memory against T.

One M2 layer (``repmix_m2_bert``: in-projection, short conv, gated bidirectional implicit long
convolution by FFT, out-projection, then the Monarch GLU MLP with 4 blocks) beside
``torch.nn.TransformerEncoderLayer`` (PyTorch's fused self-attention, which does not keep the
T × T matrix) at all-MiniLM-L6-v2's width: D = 384, 12 heads, FFN 1536. Batch 1, eval mode,
``torch.inference_mode``, one thread. Each (model, T) runs in a fresh subprocess: time = median
of ``--repeats`` forwards after a warm-up; memory = the growth of the process's peak resident
set during the forwards (ru_maxrss, so it includes the activations and temporaries). Slopes are
least-squares over log T: 1 is linear, 2 quadratic; the paper's claim for M2 is O(T log T).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_m2bert.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_m2bert.py --lengths 512 1024 2048 --no-write
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time

import report

D, HEADS, FFN = 384, 12, 1536


def slope(xs: list[int], ys: list[float]) -> float:
    """Least-squares slope of log(y) against log(x)."""
    lx, ly = [math.log(x) for x in xs], [math.log(max(y, 1e-12)) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def child(model: str, t: int, repeats: int) -> None:
    """Measure one (model, T) and print a JSON line: median seconds, peak RSS growth in MiB."""
    import torch

    torch.manual_seed(0)
    x = torch.randn(1, t, D)
    mask = torch.ones(1, t, dtype=torch.bool)
    if model == "m2":
        from repmix_m2_bert.mixer import MonarchGLU, MonarchMixerSequenceMixing

        mixer = MonarchMixerSequenceMixing(D, t, order=16).eval()
        mlp = MonarchGLU(D, FFN, 4, 0.0).eval()

        def fwd() -> None:
            with torch.inference_mode():
                mlp(mixer(x, mask))
    else:
        layer = torch.nn.TransformerEncoderLayer(
            D, HEADS, dim_feedforward=FFN, dropout=0.0, activation="gelu", batch_first=True
        ).eval()

        def fwd() -> None:
            with torch.inference_mode():
                layer(x, src_key_padding_mask=~mask)

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fwd()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fwd()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": report.median(times), "mib": (peak - before) / 1024}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", type=int, nargs="+", default=[512, 1024, 2048, 4096, 8192])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--child", nargs=2, metavar=("MODEL", "T"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.repeats)
        return

    results: dict[str, list[dict[str, float]]] = {"m2": [], "attention": []}
    rows = []
    for t in args.lengths:
        for model in ("m2", "attention"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", model, str(t), "--repeats", str(args.repeats)],
                check=True, capture_output=True, text=True,
            ).stdout.strip().splitlines()[-1]
            results[model].append(json.loads(out))
        m, a = results["m2"][-1], results["attention"][-1]
        rows.append([t, f"{1000 * m['seconds']:.1f}", f"{1000 * a['seconds']:.1f}", f"{a['seconds'] / m['seconds']:.2f}",
                     f"{m['mib']:.0f}", f"{a['mib']:.0f}"])
        print(rows[-1], flush=True)
    ts = args.lengths
    st = {k: slope(ts, [r["seconds"] for r in v]) for k, v in results.items()}
    sm = {k: slope(ts, [max(r["mib"], 1.0) for r in v]) for k, v in results.items()}
    table = report.markdown_table(
        ["T", "M2 layer ms", "self-attention layer ms", "attention / M2", "M2 peak MiB", "attention peak MiB"], rows
    )
    nlogn = slope(ts, [t * math.log(t) for t in ts])
    md = (
        "## M2-BERT vs self-attention at the MiniLM width: time and memory against T\n\n"
        f"`OMP_NUM_THREADS=1 python benchmarks/bench_m2bert.py --lengths {' '.join(map(str, ts))} --repeats {args.repeats}` "
        f"— one layer each, D = {D}, FFN {FFN} (M2: Monarch GLU, 4 blocks, filter order 16, bidirectional; "
        f"attention: `torch.nn.TransformerEncoderLayer`, {HEADS} heads, PyTorch's fused attention), batch 1, "
        f"forward in eval mode, median of {args.repeats} after a warm-up, each point in a fresh process. "
        f"Memory = growth of the peak resident set during the forwards. Machine: {report.machine()}.\n\n"
        f"{table}\n\n"
        f"Log-log slopes over T = {ts[0]}..{ts[-1]}: time — M2 **{st['m2']:.2f}**, self-attention "
        f"**{st['attention']:.2f}** (T log T alone gives {nlogn:.2f}); memory — M2 **{sm['m2']:.2f}**, "
        f"self-attention **{sm['attention']:.2f}** (1 = linear, 2 = quadratic)."
    )
    print(md)
    if not args.no_write:
        from bench_pitome import HEADER, RESULTS

        report.write_section("m2bert-scaling", md, path=RESULTS, header=HEADER)


if __name__ == "__main__":
    main()
