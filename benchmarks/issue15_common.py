"""Shared by the issue-15 result scripts: SciFact subsets, IR metrics, device timing, JSON in, markdown out.

Every result script (``bench_vdr_index.py``, ``bench_binary_pv.py``, ``bench_pitome.py``,
``bench_m2bert_scifact.py``) takes ``--device cpu|cuda``, ``--out DIR`` (its numbers as JSON),
a small-scale switch (``--limit N``: N queries and a corpus cut to about 10·N documents, every
judged document of the chosen queries kept) and ``--render JSON...`` (write the markdown of
result files into docs/results and exit), so the full-scale runs can happen on a GPU machine
and the documents be rendered here from the JSON they wrote. ``benchmarks/issue15_render.py``
renders a whole folder of them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import report

SCIFACT = report.shared_data_dir() / "scifact"
RESULTS_DIR = report.REPO / "docs" / "results"
DOCS_PER_QUERY = 10  # --limit N keeps about DOCS_PER_QUERY * N documents


def add_common_args(ap: argparse.ArgumentParser, limit_help: str) -> None:
    """``--device``, ``--out``, ``--limit``, ``--render`` and ``--docs``."""
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the models run")
    ap.add_argument("--out", type=Path, help="write the numbers as JSON into this folder")
    ap.add_argument("--limit", type=int, default=0, help=limit_help)
    ap.add_argument("--render", type=Path, nargs="+", metavar="JSON", help="write the markdown of these result files and exit")
    ap.add_argument("--docs", type=Path, default=RESULTS_DIR, help="folder of the results pages --render writes (docs/results)")
    ap.add_argument("--allow-small", action="store_true", help="let --render write small-scale results into docs/results")


def check_device(device: str) -> None:
    """Fail early, in one line, when CUDA is asked for and absent."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")


def machine(device: str) -> str:
    """``report.machine()`` plus the GPU when the device is CUDA."""
    import torch

    line = report.machine()
    if device == "cuda":
        line += f", GPU {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    return line


def sync(device: str) -> None:
    """Wait for queued GPU work, so wall-clock timers measure it."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: str) -> tuple[Any, float]:
    """``fn()`` and its wall-clock seconds (GPU work included)."""
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


# --------------------------------------------------------------------------- SciFact
@dataclass
class Retrieval:
    """Queries, a corpus and judgments; ``subset`` says what was cut (empty: the whole split)."""

    corpus_ids: list[str]
    corpus_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, float]]
    subset: str = ""
    notes: list[str] = field(default_factory=list)

    def describe(self, what: str = "SciFact train claims") -> str:
        base = f"{len(self.query_ids)} {what}, {len(self.corpus_ids)} abstracts"
        return base + (f" ({self.subset})" if self.subset else " (the full corpus)")


def load_beir(block: dict[str, Any], split: str | None = None) -> Retrieval:
    """Load a std ``beir`` dataset block's split (queries chosen by its holdout / limit; full corpus)."""
    from repmix.sdk import LocatedConfig, build_component

    block = dict(block)
    ds = build_component(LocatedConfig({"data": block}), "dataset", block, ("data",))
    ex = ds.load(split).extras
    return Retrieval(
        list(ex["corpus_ids"]), list(ex["corpus_texts"]), list(ex["query_ids"]), list(ex["query_texts"]),
        dict(ex["qrels"]),
    )


def scifact(limit: int = 0, *, block: dict[str, Any] | None = None, split: str | None = None, seed: int = 0) -> Retrieval:
    """SciFact train claims (or ``block``'s split) against the corpus; ``limit`` > 0 cuts both (labelled).

    ``limit`` N keeps N queries (the first N of std ``beir``'s seeded permutation) and a corpus of
    about ``DOCS_PER_QUERY``·N abstracts: every abstract judged for those queries, then a seeded
    sample of the others, in corpus order.
    """
    block = dict(block or {"type": "std.beir", "path": str(SCIFACT), "split": "train"})
    if limit:
        block["limit"] = limit
    data = load_beir(block, split)
    if not limit:
        return data
    judged = {d for q in data.query_ids for d in data.qrels.get(q, {})}
    rng = np.random.default_rng(seed)
    others = [i for i, d in enumerate(data.corpus_ids) if d not in judged]
    want = max(0, DOCS_PER_QUERY * limit - len(judged))
    keep = {i for i, d in enumerate(data.corpus_ids) if d in judged}
    keep |= {int(i) for i in rng.permutation(others)[:want]}
    idx = sorted(keep)
    data.corpus_ids = [data.corpus_ids[i] for i in idx]
    data.corpus_texts = [data.corpus_texts[i] for i in idx]
    data.subset = f"small-scale subset: {len(data.query_ids)} queries, {len(idx)} abstracts"
    return data


def relevance(data: Retrieval) -> np.ndarray:
    """[Q, N] graded relevance from the qrels."""
    index = {d: i for i, d in enumerate(data.corpus_ids)}
    rel = np.zeros((len(data.query_ids), len(data.corpus_ids)), dtype=np.float64)
    for r, q in enumerate(data.query_ids):
        for d, s in data.qrels.get(q, {}).items():
            if d in index:
                rel[r, index[d]] = s
    return rel


def ir(scores: Any, data: Retrieval, metrics: Sequence[str] = ("ndcg@10", "recall@100")) -> dict[str, float]:
    """Mean IR metrics of a [Q, N] score matrix, as std's ``beir`` evaluator computes them.

    Ranking by descending score, ties in corpus order (``repmix_std.evaluators.ir_metrics``);
    a document whose id equals the query id is left out (BEIR's ``ignore_identical_ids``).
    """
    import torch
    from repmix_std.evaluators import ir_metrics

    s = torch.as_tensor(np.asarray(scores, dtype=np.float64)).clone()
    index = {d: i for i, d in enumerate(data.corpus_ids)}
    for r, q in enumerate(data.query_ids):
        if q in index:
            s[r, index[q]] = -math.inf
    per_query = ir_metrics(s, torch.as_tensor(relevance(data)), list(metrics))
    return {m: float(v.mean()) for m, v in per_query.items()}


# --------------------------------------------------------------------------- encoding
def encode(model: Any, tower: str, texts: Sequence[str], grans: Sequence[str], batch_size: int = 64) -> dict[str, np.ndarray]:
    """Several pooled granularities of ``texts`` in one pass (longest first, returned in input order)."""
    import torch

    t = model.tower(tower)
    order = sorted(range(len(texts)), key=lambda i: -t.tokenizer.sort_key(texts[i]))
    parts: dict[str, list[np.ndarray]] = {g: [] for g in grans}
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = model.encode_batch(tower, [texts[i] for i in idx])
            for g in grans:
                parts[g].append(enc[g].hidden.float().cpu().numpy())
    out = {}
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[np.asarray(order)] = np.arange(len(order))
    for g, p in parts.items():
        out[g] = np.concatenate(p)[inverse]
    return out


# --------------------------------------------------------------------------- JSON and markdown
def write_json(out: Path | None, name: str, payload: dict[str, Any]) -> Path | None:
    """Write ``payload`` to ``out/name`` (nothing without ``out``)."""
    if out is None:
        return None
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    path.write_text(json.dumps(payload, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {path}", flush=True)
    return path


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def base_payload(benchmark: str, args: argparse.Namespace, command: str) -> dict[str, Any]:
    """What every result file starts with: benchmark, device, machine, scale, command, date."""
    return {
        "benchmark": benchmark,
        "device": args.device,
        "machine": machine(args.device),
        "small_scale": bool(args.limit),
        "command": command,
        "date": time.strftime("%Y-%m-%d"),
        "host": platform.node(),
        "threads_env": os.environ.get("OMP_NUM_THREADS"),
    }


def scale_note(payload: dict[str, Any]) -> str:
    """A bold warning for small-scale numbers (they must not pass for results)."""
    return "**Small-scale smoke run — not a result.** " if payload.get("small_scale") else ""


EMBEDDING_OBJECTIVES_HEADER = (
    "# Embedding objectives on all-MiniLM-L6-v2: MNRL, VDR, DefSent+, BabelBERT; sparse vectors and binary codes\n\n"
    "Produced by `benchmarks/embedding_objectives_results.py` (the objective grid), "
    "`benchmarks/bench_vdr_index.py` and `benchmarks/bench_binary_pv.py` from trained runs; each section names "
    "the commands and the machine. SciFact: the 809 train claims (the test claims are not in the shared data) "
    "against the full 5,183-abstract corpus, nDCG@10 as std's `beir` evaluator computes it.\n"
)
EFFICIENT_ENCODERS = RESULTS_DIR / "efficient-encoders.md"
EMBEDDING_OBJECTIVES = RESULTS_DIR / "embedding-objectives.md"


def write_sections(sections: Sequence[tuple[str, str, str, str]], docs: Path) -> None:
    """Write ``(file name, key, header, markdown)`` sections into ``docs`` (between the key's markers)."""
    for name, key, header, md in sections:
        path = report.write_section(key, md, path=docs / name, header=header)
        print(f"rendered section {key!r} into {path}")


def render_files(
    files: Sequence[Path], render: Callable[[dict[str, Any]], Sequence[tuple[str, str, str, str]]], docs: Path,
    allow_small: bool = False,
) -> int:
    """Render result files into ``docs``; small-scale ones go into docs/results only with ``allow_small``."""
    done = 0
    for f in files:
        payload = read_json(f)
        if payload.get("small_scale") and not allow_small and Path(docs).resolve() == RESULTS_DIR.resolve():
            print(f"skipped {f}: small-scale numbers (pass --allow-small, or --docs elsewhere)")
            continue
        write_sections(render(payload), docs)
        done += 1
    return done
