"""Speed and memory of retrieval evaluation: 3,300 × 3,300 random embeddings (D = 384), both directions.

The size of ChEBI-20's test split. Encoding is left out: the cases start from
precomputed scores or embeddings, so they measure what the ``retrieval``
evaluator adds on top of the model.

Cases:

* ``ranks + metrics, score matrix given``: :func:`ranks_from_scores` and
  :func:`rank_metrics` on a precomputed 3,300 × 3,300 score matrix and its
  transpose (both directions).
* ``cosine_retrieval_metrics``: from embeddings, cosine computed in chunks of
  1,024 queries, both directions.
* ``evaluator path, std cosine aligner``: :func:`aligned_retrieval_metrics`,
  the retrieval evaluator's own scoring loop after encoding: query chunks of
  256 × all candidates through the ``cosine`` aligner module, both directions.

Each case runs in a fresh process: one cold run gives the peak memory (growth
of the process's peak resident set, ``resource.getrusage(...).ru_maxrss``,
over its value once the inputs exist; torch's CPU allocations are invisible to
tracemalloc), then ``--repeats`` timed runs give the median and minimum.

Usage: ``python benchmarks/bench_retrieval_eval.py [--n 3300] [--dim 384] [--repeats 5] [--no-write]``.
Prints a Markdown table and writes it to docs/benchmarks.md between the
markers ``<!-- retrieval-eval:start -->`` and ``<!-- retrieval-eval:end -->``
(creating the file, or appending the section, where absent).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- retrieval-eval:start -->", "<!-- retrieval-eval:end -->"

CASES = {
    "scores": "ranks + metrics, score matrix given",
    "cosine": "cosine_retrieval_metrics (embeddings given)",
    "aligner": "evaluator path, std cosine aligner (embeddings given)",
}


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _run_case(case: str, n: int, dim: int, repeats: int, queue: Any) -> None:
    """Child process: build inputs, measure one cold run's memory, then time ``repeats`` runs."""
    import torch
    import torch.nn.functional as F
    from repmix.core.model import AssembledModel
    from repmix_std.aligners import CosineAligner
    from repmix_std.evaluators import (
        aligned_retrieval_metrics,
        cosine_retrieval_metrics,
        rank_metrics,
        ranks_from_scores,
    )

    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, dim, generator=g)
    b = a + 6 * torch.randn(n, dim, generator=g)  # noisy copies: MRR about 0.5, not 1
    diag = torch.arange(n)
    if case == "scores":
        s = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T

        def run() -> dict[str, float]:
            out = {f"a->b/{k}": v for k, v in rank_metrics(ranks_from_scores(s, diag)).items()}
            out.update({f"b->a/{k}": v for k, v in rank_metrics(ranks_from_scores(s.T, diag)).items()})
            return out
    elif case == "cosine":

        def run() -> dict[str, float]:
            return cosine_retrieval_metrics(a, b, names=("a", "b"))
    else:
        model = AssembledModel(
            towers={},
            tower_alias={},
            aligners={"coarse": CosineAligner(CosineAligner.Config(), None)},  # type: ignore[arg-type]
            alignment_between={"coarse": (("a", "sentence"), ("b", "sentence"))},
            losses=[],
            loss_on=[],
            loss_weights=[],
            granularity_shapes={},
            config={},
        )

        def run() -> dict[str, float]:
            return aligned_retrieval_metrics(model, "coarse", {"sentence": a}, {"sentence": b})

    before = _maxrss_mib()
    t0 = time.perf_counter()
    metrics = run()
    cold = time.perf_counter() - t0
    peak = _maxrss_mib() - before
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    queue.put(
        {
            "case": case,
            "cold": cold,
            "median": statistics.median(times),
            "min": min(times),
            "peak_mib": peak,
            "mrr": metrics["a->b/mrr"],
            "threads": torch.get_num_threads(),
        }
    )


def measure(n: int, dim: int, repeats: int) -> list[dict[str, Any]]:
    """Run every case in its own spawned process and collect the results."""
    ctx = mp.get_context("spawn")
    results = []
    for case in CASES:
        queue = ctx.Queue()
        proc = ctx.Process(target=_run_case, args=(case, n, dim, repeats, queue))
        proc.start()
        results.append(queue.get())
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"case {case!r} failed with exit code {proc.exitcode}")
    return results


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def table(results: list[dict[str, Any]], n: int, dim: int, repeats: int) -> str:
    """The Markdown section (without markers)."""
    import torch

    full = n * n * 4 / 2**20
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        "## Retrieval evaluation",
        "",
        f"Command: `python benchmarks/bench_retrieval_eval.py --n {n} --dim {dim} --repeats {repeats}`; "
        f"{cpu_name()}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, torch {torch.__version__} "
        f"({results[0]['threads']} threads), CPU only; load average when done: {load}.",
        "",
        f"{n:,} × {n:,} random embeddings (D = {dim}; side b = a + 6 × noise, so ranks are not trivial), "
        f"both directions ({n:,} queries × {n:,} candidates each way), MRR, Hits@1/5/10, mean and median rank. "
        "Encoding is excluded. Time: median and minimum of the timed runs after one cold run. Peak memory: "
        f"growth of the process's peak RSS during the cold run (one {n:,} × {n:,} float32 score matrix "
        f"is {full:.1f} MiB).",
        "",
        "| case | median (s) | min (s) | cold run (s) | peak memory growth (MiB) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {CASES[r['case']]} | {r['median']:.3f} | {r['min']:.3f} | {r['cold']:.3f} | {r['peak_mib']:.1f} |"
        )
    mrrs = {round(r["mrr"], 9) for r in results}
    lines += [
        "",
        f"All cases agree on the metrics (a→b MRR {results[0]['mrr']:.4f})."
        if len(mrrs) == 1
        else f"Cases disagree on a→b MRR: {sorted(mrrs)}.",
    ]
    return "\n".join(lines)


def write_section(section: str, path: Path = DOCS) -> None:
    """Put ``section`` between the markers in ``path``, leaving the rest of the file alone."""
    block = f"{START}\n{section}\n{END}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# Benchmarks\n\n{block}\n", encoding="utf-8")
        return
    text = path.read_text(encoding="utf-8")
    if START in text and END in text and text.index(START) < text.index(END):
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        new = head + block + tail
    else:
        new = text.rstrip("\n") + "\n\n" + block + "\n"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=3300)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = p.parse_args(argv)
    results = measure(args.n, args.dim, args.repeats)
    section = table(results, args.n, args.dim, args.repeats)
    print(section)
    if not args.no_write:
        write_section(section)
        print(f"\nwritten to {DOCS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
