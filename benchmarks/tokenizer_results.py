"""Collect the tokenizer ablations (examples/ablate-tokenizers*.yaml) into docs/results/tokenizers.md.

Reads two ablation output directories (run them first, from the repository root):

* ``runs/ablate-tokenizers`` — BPE, bytes, learn-your-tokens, byte2word, HAT and dynamic
  tokenization on the SciFact abstracts, the same small decoder budget each (2 seeds);
* ``runs/ablate-tokenizers-smiles`` — the same rows (no dynamic tokenization) on ChEBI-20 SMILES;

and writes, per data set, a table between the ``tokenizers-scifact`` / ``tokenizers-smiles`` markers
of docs/results/tokenizers.md, plus docs/results/tokenizers.png and docs/results/tokenizers-results.csv.

Columns (mean of the seeds, both seeds where they matter):

* held-out bits per byte (``heldout/bits_per_byte``) and the increase under 5 % character typos
  (``typos/bits_per_byte_increase``);
* characters per token of the row's tokenizer (the ``tokenizer-stats`` evaluator of the grid, on the
  held-out documents: BPE pieces, bytes, merged words) and backbone positions per byte (the units the
  expensive middle of the model runs over: tokens for GPT-2, words for the word-level rows — counted
  here with the row's own tokenizer on 200 held-out documents);
* training throughput: bytes of training text per CPU second of the training process (optimizer
  steps × prediction targets per step × the held-out bytes per target ÷ training CPU time);
* optimizer steps inside the budget, and parameters of the input layer (what turns ids or bytes
  into backbone-width vectors; see INPUT_LAYER) beside all parameters.

Usage: python benchmarks/tokenizer_results.py [--runs DIR] [--no-params]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
from pathlib import Path

from report import REPO, markdown_table, report_number, train_records, write_section

DOC = REPO / "docs" / "results" / "tokenizers.md"
ROWS = ["bpe", "bytes", "learn-your-tokens", "byte2word", "hat", "dynamic"]
LABELS = {"bpe": "BPE 4,096 + GPT-2", "bytes": "bytes + GPT-2", "learn-your-tokens": "learn-your-tokens (word-pooled)",
          "byte2word": "byte2word embedder", "hat": "HAT (hierarchical)", "dynamic": "dynamic tokenization (BPE + words)"}
# Parameter-name prefixes (of the text tower's encoder) that make up the input layer of each model:
# everything between the raw ids / bytes and the first backbone layer, without the backbone's positions.
# GPT-2's table is tied to its output layer (counted once, here).
INPUT_LAYER = {
    "gpt2": ("lm.transformer.wte.",),
    "gpt2-dynamic": ("lm.transformer.wte.",),
    "word-pooled": ("cls", "byte_embedding.", "encoder_positions.", "encoder_blocks.", "encoder_norm."),
    "byte2word": ("embedder.",),
    "hat": ("embed.", "encoder_layers.", "connector."),
}
HEADER = ("# Tokenizers at one decoder budget\n\n"
          "Tables between markers are written by `python benchmarks/tokenizer_results.py` from the ablation runs.\n")
DATASETS = {"scifact": ("ablate-tokenizers", "SciFact abstracts"), "smiles": ("ablate-tokenizers-smiles", "ChEBI-20 SMILES")}


def variant_key(name: str) -> tuple[str, str, int] | None:
    """(tokenizer label, model label, seed) of a variant directory name."""
    m = re.match(r"tokenizer=([^_]+(?:_[^_]+)*?)__model=([^_]+)__.*__seed=(\d+)$", name)
    return (m.group(1), m.group(2), int(m.group(3))) if m else None


WORD_LEVEL = {"word-pooled", "byte2word", "hat"}


def model_facts(run: Path, texts: list[str]) -> dict[str, float]:
    """Input-layer and all parameters of a trained run's encoder, and for a word-level model its words per byte.

    Words are counted with the run's own tokenizer (distinct ``word_ids`` per row) on ``texts`` cut into
    pieces of six whitespace words, so that no piece is truncated by the tokenizer's length limit.
    """
    import repmix

    tower = repmix.load(run).tower("text")
    label = run.name.split("__model=")[1].split("__")[0]
    prefixes = INPUT_LAYER.get(label, ())
    facts = {"input": float(sum(p.numel() for n, p in tower.encoder.named_parameters() if n.startswith(prefixes))),
             "total": float(sum(p.numel() for p in tower.encoder.parameters()))}
    if label in WORD_LEVEL:
        pieces = [" ".join(w[i:i + 6]) for w in (t.split() for t in texts) for i in range(0, len(w), 6)]
        words = 0
        for i in range(0, len(pieces), 256):
            ids = tower.tokenizer(pieces[i:i + 256])["word_ids"]
            words += sum(len(set(row.tolist()) - {-1}) for row in ids)
        facts["positions"] = words / sum(len(p.encode("utf-8")) for p in pieces)
    return facts


def collect(root: Path) -> dict[str, list[dict]]:
    """Tokenizer label -> one dict per finished seed."""
    out: dict[str, list[dict]] = {}
    for run in sorted((root / "variants").glob("tokenizer=*")):
        key = variant_key(run.name)
        if key is None or not (run / "metrics.json").is_file():
            continue
        metrics = json.loads((run / "metrics.json").read_text())
        recs = train_records(run)
        targets = [v for r in recs for k, v in r.items() if k.endswith(".targets")]
        steps = report_number(run, "optimizer steps")
        cpu = report_number(run, "training CPU time")
        bytes_per_target = metrics["heldout/bytes"] / metrics["heldout/tokens"]
        throughput = (steps * (sum(targets) / len(targets)) * bytes_per_target / cpu) if (targets and steps and cpu) else math.nan
        out.setdefault(key[0], []).append({
            "run": run, "model": key[1], "seed": key[2], "steps": steps, "cpu_s": cpu,
            "bits_per_byte": metrics["heldout/bits_per_byte"],
            "typo_increase": metrics["typos/bits_per_byte_increase"],
            "typo_bits_per_byte": metrics["typos/bits_per_byte_typos"],
            "units_per_byte": metrics["heldout/tokens"] / metrics["heldout/bytes"],
            "chars_per_token": metrics.get("stats/text/chars_per_token", math.nan),
            "throughput": throughput,
        })
    return out


def mean(xs: list[float]) -> float:
    xs = [x for x in xs if not math.isnan(x)]
    return sum(xs) / len(xs) if xs else math.nan


def table(rows: dict[str, list[dict]], params: dict[str, dict]) -> str:
    """The markdown table of one data set."""
    lines = []
    for label in [r for r in ROWS if r in rows]:
        seeds = sorted(rows[label], key=lambda s: s["seed"])
        bpb = [s["bits_per_byte"] for s in seeds]
        p = params.get(label, {})
        lines.append([
            LABELS[label],
            f"**{mean(bpb):.3f}** ({' / '.join(f'{x:.3f}' for x in bpb)})",
            f"+{mean([s['typo_increase'] for s in seeds]):.3f}",
            f"{mean([s['typo_bits_per_byte'] for s in seeds]):.3f}",
            f"{mean([s['chars_per_token'] for s in seeds]):.2f}",
            "—" if math.isnan(p.get("positions", math.nan)) else f"{p['positions']:.3f}",
            f"{mean([s['throughput'] for s in seeds]):,.0f}",
            f"{mean([s['steps'] for s in seeds]):,.0f}",
            f"{p['input']:,.0f}" if "input" in p else "—",
            f"{p['total']:,.0f}" if "total" in p else "—",
        ])
    return markdown_table(["tokenizer", "held-out bits/byte (seeds)", "Δ with 5 % typos", "bits/byte with typos",
                           "chars / token (tokenizer-stats)", "backbone positions / byte", "training bytes / CPU s",
                           "steps in budget", "input-layer params", "all params"], lines)


def heldout_texts(run: Path, limit: int) -> list[str]:
    """The first ``limit`` documents of the held-out split the run's ``heldout`` evaluator scores."""
    import repmix.sdk as rx
    import yaml

    config = yaml.safe_load((run / "config.yaml").read_text())
    block = next(e for e in config["evaluate"] if e.get("name") == "heldout")
    data = rx.build_component(rx.LocatedConfig({}), "dataset", {**block["data"], "split": block.get("split", "test")},
                              ("data",)).load()
    texts = [t for t in next(iter(data.columns.values())) if isinstance(t, str) and t.strip()]
    return texts[:limit]


def plot(results: dict[str, dict[str, list[dict]]], path: Path) -> None:
    """Held-out bits per byte, clean and with typos, per tokenizer and data set (one dot per seed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4), squeeze=False)
    for ax, (name, rows) in zip(axes[0], results.items()):
        labels = [r for r in ROWS if r in rows]
        xs = range(len(labels))
        for offset, key, colour, legend in ((-0.18, "bits_per_byte", "C0", "held out"),
                                            (0.18, "typo_bits_per_byte", "C3", "held out, 5 % typos")):
            ax.bar([x + offset for x in xs], [mean([s[key] for s in rows[r]]) for r in labels], 0.36,
                   color=colour, alpha=0.6, label=legend)
            for x, r in zip(xs, labels):
                ax.plot([x + offset] * len(rows[r]), [s[key] for s in rows[r]], "k.", ms=4)
        ax.set_xticks(list(xs), labels, rotation=20)
        ax.set_ylabel("bits per byte (lower is better)")
        ax.set_title(DATASETS[name][1])
        ax.set_ylim(0, 1.25 * max(s["typo_bits_per_byte"] for r in labels for s in rows[r]))
        ax.legend(loc="upper left", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=REPO / "runs", help="folder holding the ablation outputs")
    ap.add_argument("--no-params", action="store_true", help="skip loading the models (parameters, backbone positions)")
    ap.add_argument("--position-docs", type=int, default=200, help="held-out documents for backbone positions per byte")
    args = ap.parse_args()
    results = {name: collect(args.runs / folder) for name, (folder, _) in DATASETS.items()}
    results = {k: v for k, v in results.items() if v}
    if not results:
        raise SystemExit(f"error: no finished tokenizer ablation under {args.runs} (run examples/ablate-tokenizers*.yaml first)")
    csv_rows = []
    for name, rows in results.items():
        params: dict[str, dict] = {}
        if not args.no_params:
            texts = heldout_texts(next(iter(rows.values()))[0]["run"], args.position_docs)
            for label, seeds in rows.items():
                params[label] = model_facts(seeds[0]["run"], texts)
                params[label].setdefault("positions", mean([s["units_per_byte"] for s in seeds]))
        write_section(f"tokenizers-{name}", table(rows, params), DOC, HEADER)
        for label, seeds in rows.items():
            for s in seeds:
                csv_rows.append({"data": name, "tokenizer": label, "model": s["model"], "seed": s["seed"],
                                 **{k: s[k] for k in ("bits_per_byte", "typo_increase", "typo_bits_per_byte",
                                                      "units_per_byte", "chars_per_token", "throughput", "steps", "cpu_s")},
                                 **{k: params.get(label, {}).get(k) for k in ("positions", "input", "total")}})
    with (DOC.parent / "tokenizers-results.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(csv_rows[0]))
        w.writeheader()
        w.writerows(csv_rows)
    plot(results, DOC.parent / "tokenizers.png")
    print(f"wrote {DOC}, docs/results/tokenizers.png and docs/results/tokenizers-results.csv")


if __name__ == "__main__":
    main()
