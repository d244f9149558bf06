"""Collect the pre-training ablation (examples/ablate-pretraining*.yaml) into docs/results/pretraining.md.

Reads three ablation output directories (run them first, from the repository root):

* ``runs/ablate-pretraining`` — each objective pre-trained for the same CPU budget (2 seeds);
* ``runs/ablate-pretraining-finetune-stsb`` — each pre-trained encoder fine-tuned on STS-B train;
* ``runs/ablate-pretraining-finetune-scifact`` — the same for SciFact retrieval;

and writes into docs/results/pretraining.md a table (objective | steps in the budget | CPU s/step |
tokens seen | STS-B dev Spearman | SciFact nDCG@10, each mean and both seeds, Δ vs no pre-training)
between the ``pretraining-results`` markers and a sentence-geometry table (zero-shot STS-B Spearman
of each pre-trained encoder; mean cosine between different sentences before and after fine-tuning)
between the ``pretraining-geometry`` markers; plus docs/results/pretraining.png (both metrics per
objective, one dot per pre-training seed) and docs/results/pretraining-results.csv.

Usage: python benchmarks/pretraining_results.py [--runs DIR] [--no-geometry]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

from report import REPO, report_number, shared_data_dir, write_section

OBJECTIVES = ["mlm", "electra", "ernie-gram", "lem", "tokenunify"]
LABELS = {"none": "no pre-training (random init)", "mlm": "MLM (BERT 80/10/10)",
          "electra": "ELECTRA (replaced-token detection)", "ernie-gram": "ERNIE-Gram (explicit n-grams)",
          "lem": "LEM (linguistic entity masking)", "tokenunify": "TokenUnify (mixture prediction)"}
MARK = "pretraining-results"
GEOMETRY_MARK = "pretraining-geometry"


def pretraining_runs(root: Path) -> dict[tuple[str, int], dict]:
    """(objective, seed) -> steps, CPU seconds and the masked-token count of each pre-training run."""
    out: dict[tuple[str, int], dict] = {}
    for run in sorted((root / "variants").glob("objective=*")):
        m = re.match(r"objective=([^_]+)__.*__seed=(\d+)$", run.name)
        if not m or not (run / "report.md").is_file():
            continue
        records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
        train = [r for r in records if r.get("type") == "train"]
        out[(m.group(1), int(m.group(2)))] = {
            "steps": report_number(run, "optimizer steps"),
            "cpu_s": report_number(run, "training CPU time"),
            "final_loss": train[-1]["loss"] if train else None,
            "budget_stop": "time budget" in (run / "report.md").read_text(),
        }
    return out


def finetune_results(root: Path, metric: str) -> dict[str, float]:
    """Pre-trained label (``none``, ``mlm-s0``, ...) -> the fine-tuned run's metric."""
    path = root / "results.csv"
    if not path.is_file():
        return {}
    out: dict[str, float] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            m = re.match(r"pretrained=([^_]+)__", row["run"])
            if m and row.get("status") == "finished" and row.get(metric):
                out[m.group(1)] = float(row[metric])
    return out


def sentence_geometry(finetuned: Path, pretrained: Path | None, pairs: list[tuple[float, str, str]]) -> dict[str, float]:
    """Zero-shot STS-B dev Spearman and the mean cosine between different sentences, before and after fine-tuning.

    "Before" is the fine-tuned run's model with its encoder reset to the pre-trained weights
    (``init_weights_from``; mean pooling has no parameters), or, for no pre-training, the random
    initialisation of the fine-tuning seed (the model saved by a 1-step run at lr 1e-12 would be the
    same; here the fine-tuning run's own config is rebuilt untrained). The mean cosine over 400
    different sentences measures how far the sentence vectors have collapsed onto one direction.
    """
    import numpy as np
    import repmix
    from repmix.core.artifacts import init_weights_from
    from scipy.stats import spearmanr

    def unit(model, texts: list[str]):  # type: ignore[no-untyped-def]
        v = model.encode(texts, tower="text")
        return v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-12)

    def mean_cosine(v) -> float:  # type: ignore[no-untyped-def]
        sims = v @ v.T
        return float(sims[~np.eye(len(v), dtype=bool)].mean())

    def measure(model, spearman: bool = True) -> dict[str, float]:  # type: ignore[no-untyped-def]
        if not spearman:
            return {"mean_cosine": mean_cosine(unit(model, [p[1] for p in pairs[:400]]))}
        a, b = unit(model, [p[1] for p in pairs]), unit(model, [p[2] for p in pairs])
        rho = float(spearmanr((a * b).sum(1), [p[0] for p in pairs]).statistic)
        return {"spearman": rho, "mean_cosine": mean_cosine(a[:400])}

    after = measure(repmix.load(finetuned), spearman=False)
    model = repmix.load(finetuned)
    if pretrained is not None:
        init_weights_from(model, pretrained)
    else:
        model = repmix.load(finetuned / "config.yaml")  # the config rebuilt: untrained weights of its seed
    before = measure(model)
    return {"zero_shot_spearman": before["spearman"], "cosine_before": before["mean_cosine"],
            "cosine_after": after["mean_cosine"]}


def mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def fmt(x: float | None, digits: int = 4) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def one_dir(pattern: str, root: Path) -> Path | None:
    found = sorted((root / "variants").glob(pattern))
    return found[0] if found else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=REPO / "runs", help="folder holding the three ablation outputs")
    ap.add_argument("--no-geometry", action="store_true",
                    help="skip the sentence-geometry table (it encodes STS-B dev with 22 models: minutes)")
    args = ap.parse_args()
    pre_root, sts_root = args.runs / "ablate-pretraining", args.runs / "ablate-pretraining-finetune-stsb"
    pre = pretraining_runs(pre_root)
    sts = finetune_results(sts_root, "spearman_cosine")
    sci = finetune_results(args.runs / "ablate-pretraining-finetune-scifact", "ndcg@10")
    if not pre or not sts or not sci:
        raise SystemExit("error: missing ablation results under " + str(args.runs)
                         + " (run examples/ablate-pretraining.yaml and its two fine-tuning grids first)")

    rows = []
    for obj in ["none"] + OBJECTIVES:
        keys = ["none"] if obj == "none" else [f"{obj}-s{s}" for s in (0, 1)]
        runs = [] if obj == "none" else [pre.get((obj, s)) for s in (0, 1)]
        runs = [r for r in runs if r]
        steps = [r["steps"] for r in runs if r["steps"]]
        cpu = [r["cpu_s"] for r in runs if r["cpu_s"]]
        rows.append({
            "objective": obj, "keys": keys,
            "steps": mean(steps), "cpu_s_per_step": mean([c / s for c, s in zip(cpu, steps, strict=False)]),
            "tokens_seen": None if not steps else mean(steps) * 32 * 128,
            "stsb": [sts[k] for k in keys if k in sts], "scifact": [sci[k] for k in keys if k in sci],
        })
    base = rows[0]

    def cell(vals: list[float]) -> str:
        return "—" if not vals else f"**{mean(vals):.4f}** ({', '.join(f'{v:.4f}' for v in vals)})"

    def delta(vals: list[float], ref: list[float]) -> str:
        return "—" if not vals or not ref else f"{mean(vals) - mean(ref):+.4f}"

    lines = [("| pre-training | steps in 6 CPU min | CPU s / step | tokens seen | STS-B dev Spearman (seeds) "
              "| Δ vs none | SciFact nDCG@10 (seeds) | Δ vs none |"),
             "| --- | ---: | ---: | ---: | --- | ---: | --- | ---: |"]
    for r in rows:
        tokens = "—" if r["tokens_seen"] is None else f"{r['tokens_seen'] / 1e6:.2f} M"
        lines.append(
            f"| {LABELS[r['objective']]} | {fmt(r['steps'], 0)} | {fmt(r['cpu_s_per_step'], 2)} | {tokens} | "
            f"{cell(r['stsb'])} | {'—' if r is base else delta(r['stsb'], base['stsb'])} | {cell(r['scifact'])} | "
            f"{'—' if r is base else delta(r['scifact'], base['scifact'])} |")
    doc = REPO / "docs" / "results" / "pretraining.md"
    write_section(MARK, "\n".join(lines), path=doc)

    if not args.no_geometry:
        stsb = [ln.rstrip("\n").split("\t") for ln in (shared_data_dir() / "stsb" / "dev.tsv").open()][1:]
        pairs = [(float(x[0]), x[1], x[2]) for x in stsb]
        glines = [("| pre-training | zero-shot STS-B dev Spearman of the pre-trained encoder (seeds) | mean cosine of "
                   "different sentences, before fine-tuning | after fine-tuning |"), "| --- | --- | ---: | ---: |"]
        for r in rows:
            geo = []
            for k in r["keys"]:
                ft = one_dir(f"pretrained={k}__*", sts_root)
                obj, _, seed = k.rpartition("-s")
                src = None if k == "none" else one_dir(f"objective={obj}__*__seed={seed}", pre_root)
                if ft is not None and (k == "none" or src is not None):
                    geo.append(sentence_geometry(ft, src, pairs))
            r["geometry"] = geo
            glines.append(f"| {LABELS[r['objective']]} | {cell([g['zero_shot_spearman'] for g in geo])} | "
                          f"{fmt(mean([g['cosine_before'] for g in geo]), 3)} | "
                          f"{fmt(mean([g['cosine_after'] for g in geo]), 3)} |")
        write_section(GEOMETRY_MARK, "\n".join(glines), path=doc)

    with (REPO / "docs" / "results" / "pretraining-results.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["objective", "steps", "cpu_s_per_step", "stsb_spearman_mean", "stsb_seeds",
                    "scifact_ndcg10_mean", "scifact_seeds", "zero_shot_spearman_mean", "cosine_before_mean",
                    "cosine_after_mean"])
        for r in rows:
            geo = r.get("geometry") or []
            w.writerow([r["objective"], r["steps"], r["cpu_s_per_step"], mean(r["stsb"]),
                        " ".join(f"{v:.6f}" for v in r["stsb"]), mean(r["scifact"]),
                        " ".join(f"{v:.6f}" for v in r["scifact"]),
                        mean([g["zero_shot_spearman"] for g in geo]), mean([g["cosine_before"] for g in geo]),
                        mean([g["cosine_after"] for g in geo])])
    print("\n".join(lines))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    names = [r["objective"] for r in rows]
    for ax, key, title in ((axes[0], "stsb", "STS-B dev Spearman"), (axes[1], "scifact", "SciFact nDCG@10 (held out)")):
        means = [mean(r[key]) or 0.0 for r in rows]
        ax.bar(range(len(rows)), means, color=["0.7"] + ["tab:blue"] * (len(rows) - 1))
        for i, r in enumerate(rows):
            ax.scatter([i] * len(r[key]), r[key], color="black", s=12, zorder=3)
        ax.set_xticks(range(len(rows)), names, rotation=20)
        values = [v for r in rows for v in r[key]]
        ax.set_ylim(min(0.0, min(values)) - 0.02, max(values) * 1.05)
        ax.axhline(0, color="0.5", lw=0.6)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Small BERT pre-trained 6 CPU min per objective, then the same fine-tuning (dots: pre-training seeds)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(REPO / "docs" / "results" / "pretraining.png", dpi=120)


if __name__ == "__main__":
    main()
