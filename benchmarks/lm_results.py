"""Collect the language-modelling reference runs into docs/results/language-modeling.md's figures.

Reads runs/lm-scifact-bpe, runs/lm-scifact-bytes (repmix train examples/lm-scifact.yaml, BPE and
byte-level), runs/mlm-scifact and runs/mlm-scifact-before (examples/mlm-scifact.yaml trained and
evaluated untrained), and writes:

* docs/results/lm-scifact-loss.png — training loss of both LMs, converted from nats per token to
  bits per byte with each tokenizer's held-out bytes per token (so the curves share a unit), and
  the held-out bits per byte at the end as points;
* docs/results/lm-scifact-results.json — the final metrics of every run.

Usage: python benchmarks/lm_results.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNS = {"bpe": REPO / "runs" / "lm-scifact-bpe", "bytes": REPO / "runs" / "lm-scifact-bytes",
        "mlm": REPO / "runs" / "mlm-scifact", "mlm-before": REPO / "runs" / "mlm-scifact-before"}


def records(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, dict] = {}
    for name, run in RUNS.items():
        f = run / "metrics.json"
        if f.is_file():
            out[name] = json.loads(f.read_text())
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, color in (("bpe", "tab:blue"), ("bytes", "tab:orange")):
        m = out.get(name)
        recs = [r for r in records(RUNS[name]) if r.get("type") == "train"]
        if not m or not recs:
            continue
        bpt = m["heldout/bytes_per_token"]
        ax.plot([r["elapsed"] / 60 for r in recs], [r["loss"] / math.log(2) / bpt for r in recs], color=color,
                label=f"{name}: training loss (bits/byte, at {bpt:.2f} bytes/token)")
        ax.scatter([recs[-1]["elapsed"] / 60], [m["heldout/bits_per_byte"]], color=color, marker="o", zorder=3,
                   label=f"{name}: held-out {m['heldout/bits_per_byte']:.3f} bits/byte")
    ax.set_xlabel("training time (min, one shared CPU thread)")
    ax.set_ylabel("bits per byte")
    ax.set_title("SciFact GPT-style LM from scratch: BPE vs bytes (300 steps of 16 × 128 tokens)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    target = REPO / "docs" / "results" / "lm-scifact-loss.png"
    fig.savefig(target, dpi=120)
    (REPO / "docs" / "results" / "lm-scifact-results.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {target}")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
