"""ORMA result tables for docs/results/orma.md, read from finished runs (nothing is trained here).

Run after the commands of docs/results/orma.md:

    python benchmarks/orma_results.py --ablation runs/ablate-orma \
        --extra "all three + whole-molecule motif for motif-less molecules=runs/orma-demo-whole-molecule-motif-seed*" \
        --chebi20 runs/orma-chebi20 --chebi20-sentence runs/orma-chebi20/evaluations/<timestamp>

Writes the "orma-ablation" and "orma-chebi20" sections of docs/results/orma.md and prints them.
Each ablation row is the mean ± sample standard deviation over the seeds found.
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
from pathlib import Path

from report import markdown_table, write_section

RESULTS_MD = Path(__file__).resolve().parent.parent / "docs" / "results" / "orma.md"
HEADER = "# ORMA results\n"
#: Short descriptions of the ablate-orma.yaml combinations (keyed by the varied settings).
DESCRIBE = {
    ("1.0", "0.0", "0.0", "ipot", "argmin", "brics"): "sentence–molecule level alone",
    ("0.5", "0.5", "0.0", "ipot", "argmin", "brics"): "+ token–atom",
    ("0.5", "0.0", "0.5", "ipot", "argmin", "brics"): "+ multi-token–motif",
    ("0.5", "0.25", "0.25", "ipot", "argmin", "brics"): "all three levels (ORMA)",
    ("0.5", "0.25", "0.25", "sinkhorn", "argmin", "brics"): "all three, entropic Sinkhorn instead of IPOT",
    ("0.5", "0.25", "0.25", "ipot", "argmax", "brics"): "all three, arg-max instead of arg-min",
    ("0.5", "0.5", "0.0", "ipot", "argmin", "none"): "no motif nodes (sentence + token–atom)",
}
COLUMNS = [
    ("orma/text->molecule/hits@1", "t→m Hits@1"),
    ("orma/text->molecule/mrr", "t→m MRR"),
    ("orma/text->molecule/mean_rank", "t→m mean rank"),
    ("orma/molecule->text/hits@1", "m→t Hits@1"),
    ("orma/molecule->text/mrr", "m→t MRR"),
    ("global/text->molecule/hits@1", "sentence level alone: t→m Hits@1"),
]


def read_metrics(run_dir: Path) -> dict[str, float]:
    """The final metrics of a finished run directory."""
    return json.loads((run_dir / "metrics.json").read_text())


def mean_std(values: list[float], digits: int = 3) -> str:
    """``mean ± std`` (sample std; the value alone for one run)."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def describe(group: str) -> str:
    """Readable description of an ablate-orma.yaml combination name."""
    settings = dict(part.split("=", 1) for part in group.split("__"))
    key = tuple(settings.get(k, "") for k in ("global", "local", "mid", "solver", "assignment", "motifs"))
    return DESCRIBE.get(key, group)


def ablation_rows(ablation: Path, extras: list[str]) -> list[list[object]]:
    """One row per combination (and per ``label=glob`` extra), metrics averaged over seeds."""
    groups: dict[str, list[dict[str, float]]] = {}
    for run in sorted((ablation / "variants").iterdir()):
        if (run / "metrics.json").exists():
            groups.setdefault(describe(run.name.rsplit("__seed=", 1)[0]), []).append(read_metrics(run))
    order = list(DESCRIBE.values())
    groups = dict(sorted(groups.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
    for extra in extras:
        label, pattern = extra.split("=", 1)
        runs = [Path(p) for p in sorted(glob.glob(pattern)) if (Path(p) / "metrics.json").exists()]
        if runs:
            groups[label] = [read_metrics(r) for r in runs]
    rows = []
    for i, (label, runs) in enumerate(groups.items(), 1):
        cells = [mean_std([r[key] for r in runs], 2 if "rank" in key else 3) for key, _ in COLUMNS]
        rows.append([i, label, len(runs), *cells])
    return rows


def chebi20_rows(run_dir: Path, sentence_eval: Path | None) -> list[list[object]]:
    """Our ChEBI-20 numbers in both evaluation protocols, both directions.

    ``run_dir``: the training run (``split``: ORMA's weighted sum on the held-out pairs;
    ``with-train-molecules``: sentence level, extra molecules as text→molecule candidates).
    ``sentence_eval``: a ``repmix evaluate RUN evaluate.0.on=global`` output directory (the
    sentence level alone on the held-out pairs).
    """
    sources = [(read_metrics(run_dir), "split", "ORMA weighted sum")]
    if sentence_eval is not None:
        sources.append((read_metrics(sentence_eval), "split", "sentence level alone"))
    sources.append((read_metrics(run_dir), "with-train-molecules", "sentence level alone"))
    pools = {
        ("split", "text->molecule"): "658 held-out molecules",
        ("split", "molecule->text"): "658 held-out texts",
        ("with-train-molecules", "text->molecule"): "26,945 molecules: held-out + 26,287 undescribed train",
    }
    rows = []
    for m, name, score in sources:
        for direction in ("text->molecule", "molecule->text"):
            prefix = f"{name}/{direction}/"
            if (name, direction) not in pools or prefix + "mrr" not in m:
                continue
            rows.append([pools[name, direction], score, direction.replace("->", "→"),
                         f"{100 * m[prefix + 'hits@1']:.1f}", f"{100 * m[prefix + 'hits@10']:.1f}",
                         f"{100 * m[prefix + 'mrr']:.1f}", f"{m[prefix + 'mean_rank']:.1f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ablation", type=Path, help="output directory of repmix ablate ablate-orma.yaml")
    parser.add_argument("--extra", action="append", default=[], help="'label=glob' of extra run directories")
    parser.add_argument("--chebi20", type=Path, help="run directory of orma-chebi20.yaml")
    parser.add_argument("--chebi20-sentence", type=Path,
                        help="output of 'repmix evaluate RUN evaluate.0.on=global' (sentence level alone)")
    args = parser.parse_args()
    if args.ablation:
        headers = ["#", "variant", "seeds", *[title for _, title in COLUMNS]]
        table = markdown_table(headers, ablation_rows(args.ablation, args.extra))
        print(table)
        write_section("orma-ablation", table, RESULTS_MD, HEADER)
    if args.chebi20:
        headers = ["candidates", "score", "direction", "Hits@1 %", "Hits@10 %", "MRR %", "mean rank"]
        table = markdown_table(headers, chebi20_rows(args.chebi20, args.chebi20_sentence))
        print(table)
        write_section("orma-chebi20", table, RESULTS_MD, HEADER)


if __name__ == "__main__":
    main()
