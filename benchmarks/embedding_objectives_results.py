"""Collect the embedding-objective ablation (examples/ablate-embedding-objectives.yaml) into docs/results/embedding-objectives.md.

Reads (run them first, from the repository root):

* ``runs/ablate-embedding-objectives`` — all-MiniLM-L6-v2 fine-tuned for one epoch with MNRL, VDR,
  DefSent+ and BabelBERT's NT-Xent, 3 seeds each
  (``repmix ablate examples/ablate-embedding-objectives.yaml``);
* ``runs/embedding-objectives-pretrained`` — the same evaluations of the packaged model without
  fine-tuning (``repmix evaluate examples/embedding-objectives-base.yaml -o runs/embedding-objectives-pretrained``);

and writes the table between the ``embedding-objectives`` markers of
docs/results/embedding-objectives.md (STS-B dev Spearman of each model's own scores and SciFact
nDCG@10 / Recall@100, mean ± standard deviation over the seeds, each seed listed; optimizer steps
and training CPU time; DefSent's entry-matrix isotropy at its first and last build),
docs/results/embedding-objectives.png and docs/results/embedding-objectives-results.csv.

Usage: python benchmarks/embedding_objectives_results.py [--runs DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
from pathlib import Path

from issue15_common import EMBEDDING_OBJECTIVES_HEADER as HEADER
from report import REPO, markdown_table, report_number, train_records, write_section

DOC = REPO / "docs" / "results" / "embedding-objectives.md"
OBJECTIVES = ["mnrl", "vdr", "defsent", "babelbert"]
LABELS = {"pretrained": "all-MiniLM-L6-v2, no fine-tuning", "mnrl": "MNRL (baseline), STS-B positives",
          "vdr": "VDR (vocabulary space, k = 768), STS-B positives", "defsent": "DefSent+ (WordNet definitions)",
          "babelbert": "BabelBERT NT-Xent (WordNet synonyms)"}
STS, NDCG, RECALL = "std.sts/spearman_similarity", "std.beir/ndcg@10", "std.beir/recall@100"


def collect(root: Path) -> dict[str, list[dict]]:
    """Objective -> one dict per finished seed."""
    out: dict[str, list[dict]] = {}
    for run in sorted((root / "variants").glob("*__objective=*")):
        m = re.search(r"__objective=([^_]+)__.*__seed=(\d+)$", run.name)
        if not m or not (run / "metrics.json").is_file():
            continue
        metrics = json.loads((run / "metrics.json").read_text())
        records = train_records(run)
        isotropy = [v for r in records for k, v in r.items() if k.endswith("entry_mean_cos")]
        out.setdefault(m.group(1), []).append({
            "run": run.name, "seed": int(m.group(2)), "sts": metrics[STS], "ndcg": metrics[NDCG], "recall": metrics[RECALL],
            "steps": report_number(run, "optimizer steps"), "cpu_s": report_number(run, "training CPU time"),
            "isotropy_first": isotropy[0] if isotropy else None, "isotropy_last": isotropy[-1] if isotropy else None,
        })
    for seeds in out.values():
        seeds.sort(key=lambda s: s["seed"])
    return out


def spread(xs: list[float]) -> str:
    """``mean ± sd`` (×100) and the seeds (one seed: its value, marked)."""
    if len(xs) == 1:
        return f"**{100 * xs[0]:.2f}** (1 seed)"
    sd = statistics.stdev(xs)
    return f"**{100 * statistics.mean(xs):.2f}** ± {100 * sd:.2f} ({' / '.join(f'{100 * x:.2f}' for x in xs)})"


def table(results: dict[str, list[dict]], pretrained: dict | None) -> str:
    rows = []
    if pretrained:
        rows.append([LABELS["pretrained"], f"{100 * pretrained[STS]:.2f}", f"{100 * pretrained[NDCG]:.2f}",
                     f"{100 * pretrained[RECALL]:.2f}", "—", "—", "—", "—"])
    base = results.get("mnrl")
    for obj in [o for o in OBJECTIVES if o in results]:
        seeds = results[obj]
        sts, ndcg = [s["sts"] for s in seeds], [s["ndcg"] for s in seeds]
        delta = "—" if not base or obj == "mnrl" else (
            f"{100 * (statistics.mean(sts) - statistics.mean(s['sts'] for s in base)):+.2f} / "
            f"{100 * (statistics.mean(ndcg) - statistics.mean(s['ndcg'] for s in base)):+.2f}")
        iso = [s for s in seeds if s["isotropy_first"] is not None]
        rows.append([LABELS[obj], spread(sts), spread(ndcg), f"{100 * statistics.mean(s['recall'] for s in seeds):.2f}",
                     delta, f"{statistics.mean(s['steps'] for s in seeds):,.0f}",
                     f"{statistics.mean(s['cpu_s'] for s in seeds):,.0f}",
                     (f"{statistics.mean(s['isotropy_first'] for s in iso):.3f} → "
                      f"{statistics.mean(s['isotropy_last'] for s in iso):.3f}") if iso else "—"])
    return markdown_table(["objective (training data)", "STS-B dev Spearman ×100 (seeds)", "SciFact nDCG@10 ×100 (seeds)",
                           "SciFact Recall@100 ×100", "Δ vs MNRL (STS / nDCG)", "steps (1 epoch)", "training CPU s",
                           "entry mean cosine, first → last build"], rows)


def plot(results: dict[str, list[dict]], pretrained: dict | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    objs = [o for o in OBJECTIVES if o in results]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, metric, title in ((axes[0], "sts", STS, "STS-B dev Spearman"), (axes[1], "ndcg", NDCG, "SciFact nDCG@10")):
        for x, obj in enumerate(objs):
            ys = [s[key] for s in results[obj]]
            ax.bar(x, statistics.mean(ys), 0.6, color=f"C{x}", alpha=0.6)
            ax.plot([x] * len(ys), ys, "k.", ms=5)
        if pretrained:
            ax.axhline(pretrained[metric], color="grey", ls="--", label="no fine-tuning")
            ax.legend(loc="lower right")
        ax.set_xticks(range(len(objs)), objs)
        ax.set_title(title + " (one dot per seed)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=REPO / "runs", help="folder holding the ablation output")
    args = ap.parse_args()
    results = collect(args.runs / "ablate-embedding-objectives")
    if not results:
        raise SystemExit(f"error: no finished run under {args.runs / 'ablate-embedding-objectives'} "
                         "(run examples/ablate-embedding-objectives.yaml first)")
    pre_path = args.runs / "embedding-objectives-pretrained" / "metrics.json"
    pretrained = json.loads(pre_path.read_text()) if pre_path.is_file() else None
    write_section("embedding-objectives", table(results, pretrained), DOC, HEADER)
    with (DOC.parent / "embedding-objectives-results.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["objective", *next(iter(results.values()))[0]])
        w.writeheader()
        w.writerows({"objective": obj, **s} for obj, seeds in results.items() for s in seeds)
    plot(results, pretrained, DOC.parent / "embedding-objectives.png")
    print(f"wrote {DOC}, docs/results/embedding-objectives.png and docs/results/embedding-objectives-results.csv")


if __name__ == "__main__":
    main()
