"""Collect the language-modelling reference runs into docs/results/language-modeling.md's figures.

Reads (each one a ``repmix train`` / ``repmix evaluate`` output directory under runs/):

* ``lm20-bpe``, ``lm20-bytes`` — examples/lm-scifact.yaml at the reference budget of 20 minutes on
  2 cores (``train.max_cpu_minutes=40``), BPE and byte-level;
* ``lm-scifact-bpe``, ``lm-scifact-bytes`` — the same model and data at 300 optimizer steps each;
* ``mlm-scifact-before``, ``mlm-scifact-head``, ``mlm-scifact`` — examples/mlm-scifact.yaml
  evaluated untrained, its head warm-up (examples/mlm-scifact-head.yaml) and the continued MLM
  from it;

and writes

* docs/results/lm-scifact-loss.png — training loss of the budget runs in bits per byte (nats per
  token ÷ ln 2 ÷ the tokenizer's held-out bytes per token, so the curves share a unit) against CPU
  minutes of training, with the held-out bits per byte at the end as points;
* docs/results/lm-scifact-results.json — the final metrics of every run found;
* the tables between the ``lm-budget`` and ``mlm-results`` markers of
  docs/results/language-modeling.md.

Usage: python benchmarks/lm_results.py [--runs DIR]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from report import REPO, report_value, write_section
from report import train_records as records

DOC = REPO / "docs" / "results" / "language-modeling.md"
NAMES = {"bpe-20min": "lm20-bpe", "bytes-20min": "lm20-bytes", "bpe-300": "lm-scifact-bpe",
         "bytes-300": "lm-scifact-bytes", "mlm-before": "mlm-scifact-before", "mlm-head": "mlm-scifact-head",
         "mlm": "mlm-scifact"}


def cpu_minutes(run: Path, recs: list[dict]) -> list[float]:
    """CPU minutes at each record: logged (``cpu_elapsed``), or the run's CPU time spread evenly over its steps."""
    if recs and all("cpu_elapsed" in r for r in recs):
        return [r["cpu_elapsed"] / 60 for r in recs]
    total = report_value(run, "training CPU time")
    if not total or not recs:
        return [r["elapsed"] / 60 for r in recs]
    per_step = float(total.split()[0].replace(",", "")) / recs[-1]["step"]
    return [r["step"] * per_step / 60 for r in recs]


def budget_table(runs: Path, out: dict[str, dict]) -> str:
    lines = [("| tokenizer | held-out bits/byte | perplexity (per token) | bytes/token | bits/byte with 5 % typos "
              "(100 docs) | increase | optimizer steps | tokens seen | CPU time | wall time | stopped by |"),
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name, label in (("bpe-20min", "BPE 4096"), ("bytes-20min", "bytes")):
        m, run = out.get(name), runs / NAMES[name]
        if not m:
            continue
        steps = report_value(run, "optimizer steps") or "?"
        n = int(steps.split()[0]) if steps[0].isdigit() else 0
        lines.append(
            f"| {label} | **{m['heldout/bits_per_byte']:.3f}** | {m['heldout/perplexity']:.1f} | "
            f"{m['heldout/bytes_per_token']:.2f} | {m['typos/bits_per_byte_typos']:.3f} (clean "
            f"{m['typos/bits_per_byte']:.3f}) | +{m['typos/bits_per_byte_increase']:.3f} | {steps} | "
            f"{n * 16 * 128 / 1e6:.2f} M | {report_value(run, 'training CPU time')} | "
            f"{report_value(run, 'training time')} | {report_value(run, 'stopped by') or 'the step limit'} |")
    return "\n".join(lines)


def mlm_table(out: dict[str, dict]) -> str:
    before, after = out.get("mlm-before"), out.get("mlm")
    if not before or not after:
        return "(runs/mlm-scifact-before and runs/mlm-scifact are needed)"
    rows = [("SciFact nDCG@10", "scifact/ndcg@10"), ("SciFact Recall@100", "scifact/recall@100"),
            ("SciFact MRR@10", "scifact/mrr@10"), ("STS-B dev Spearman", "stsb/spearman_cosine"),
            ("STS-B dev Pearson", "stsb/pearson_cosine")]
    lines = ["| metric | before (packaged all-MiniLM-L6-v2) | after head warm-up + continued MLM | change |",
             "| --- | ---: | ---: | ---: |"]
    for label, key in rows:
        if key in before and key in after:
            lines.append(f"| {label} | {before[key]:.4f} | {after[key]:.4f} | {after[key] - before[key]:+.4f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=REPO / "runs", help="folder holding the run directories")
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, dict] = {}
    for name, folder in NAMES.items():
        f = args.runs / folder / "metrics.json"
        if f.is_file():
            out[name] = json.loads(f.read_text())
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, color in (("bpe-20min", "tab:blue"), ("bytes-20min", "tab:orange")):
        m, run = out.get(name), args.runs / NAMES[name]
        recs = records(run)
        if not m or not recs:
            continue
        bpt = m["heldout/bytes_per_token"]
        x = cpu_minutes(run, recs)
        ax.plot(x, [r["loss"] / math.log(2) / bpt for r in recs], color=color, lw=0.8,
                label=f"{name.split('-')[0]}: training loss (bits/byte at {bpt:.2f} bytes/token)")
        ax.scatter([x[-1]], [m["heldout/bits_per_byte"]], color=color, marker="o", zorder=3,
                   label=f"{name.split('-')[0]}: held-out {m['heldout/bits_per_byte']:.3f} bits/byte")
    ax.set_xlabel("training CPU minutes (budget 40 = 20 min on 2 cores)")
    ax.set_ylabel("bits per byte")
    ax.set_ylim(top=8)
    ax.set_title("SciFact GPT-style LM from scratch: BPE vs bytes at the same CPU budget")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    target = REPO / "docs" / "results" / "lm-scifact-loss.png"
    fig.savefig(target, dpi=120)
    (REPO / "docs" / "results" / "lm-scifact-results.json").write_text(json.dumps(out, indent=2) + "\n")
    write_section("lm-budget", budget_table(args.runs, out), path=DOC)
    write_section("mlm-results", mlm_table(out), path=DOC)
    print(f"wrote {target}, docs/results/lm-scifact-results.json and the tables of {DOC.relative_to(REPO)}")


if __name__ == "__main__":
    main()
