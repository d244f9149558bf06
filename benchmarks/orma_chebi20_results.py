"""Collect the ChEBI-20 ablation of issue 10 into docs: results.{md,csv,png} and the table in docs/results/orma.md.

    python benchmarks/orma_chebi20_results.py runs/ablate-orma-chebi20 \
        --grid plugins/orma/configs/ablate-orma-frozen-chebi20.yaml \
        --baseline runs/fingerprint-chebi20-seed0 runs/fingerprint-chebi20-seed1 \
        --overrides train.epochs=5 evaluate.0.rerank=20

(the first, frozen-text round; the fine-tuned round: ``--grid plugins/orma/configs/ablate-orma-chebi20.yaml
--block orma-chebi20-finetuned --docs-prefix orma-chebi20-finetuned-ablation``)

* writes the ablation's own ``results.csv``, ``results.md`` and ``results.png`` (``repmix ablate``'s
  writer; variants not run yet are listed as "not started") and copies them to
  ``docs/results/<docs-prefix>-results.*`` (default ``orma-chebi20-ablation``);
* replaces the block between ``<!-- orma-chebi20-issue10:start -->`` and ``:end -->`` in
  docs/results/orma.md with one row per (run, score): Hits@1/10 and MRR in both directions, and the
  run's training time.

    python benchmarks/orma_chebi20_results.py --runs RUN... --block orma-chebi20-gap

writes the rows of single runs (fingerprint models or ORMA level-retrieval runs) into the block
``<!-- orma-chebi20-gap:start -->`` ... ``:end -->`` instead (§4b of docs/results/orma.md).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
from pathlib import Path

DOC = Path("docs/results/orma.md")
SCORES = [
    ("weighted", "ORMA weighted sum"),
    ("zscore", "z-scored levels"),
    ("zscore-fallback", "z-scored, motif-less fallback"),
    ("level:global", "sentence level alone"),
    ("level:local", "token-atom level (re-ranks top N)"),
    ("level:mid", "multi-token-motif level (re-ranks top N)"),
]


def pct(metrics: dict[str, float], key: str) -> str:
    return f"{100 * metrics[key]:.1f}" if key in metrics else "—"


def train_minutes(run: Path) -> str:
    """Training wall time and process CPU time from metrics.jsonl (last 'elapsed' / 'cpu_elapsed'), in minutes."""
    log = run / "metrics.jsonl"
    if not log.is_file():
        return "—"
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    out = []
    for key in ("elapsed", "cpu_elapsed"):
        values = [r[key] for r in records if isinstance(r.get(key), (int, float))]
        out.append(f"{max(values) / 60:.1f}" if values else "—")
    return " / ".join(out)


def rows_for(label: str, run: Path, prefix: str, scores: list[tuple[str, str]]) -> list[str]:
    metrics = json.loads((run / "metrics.json").read_text())
    out = []
    for key, name in scores:
        k = f"{prefix}{key}/" if key else prefix
        if f"{k}text->molecule/hits@1" not in metrics:
            continue
        out.append(
            f"| {label} | {name} | {pct(metrics, k + 'text->molecule/hits@1')} | "
            f"{pct(metrics, k + 'text->molecule/hits@10')} | {pct(metrics, k + 'text->molecule/mrr')} | "
            f"{pct(metrics, k + 'molecule->text/hits@1')} | {pct(metrics, k + 'molecule->text/mrr')} | "
            f"{train_minutes(run)} |"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ablation", nargs="?", help="the ablation's output folder")
    parser.add_argument("--runs", nargs="*", default=[], help="single run directories (instead of an ablation)")
    parser.add_argument("--block", default="orma-chebi20-issue10", help="the marker name of the table's block")
    parser.add_argument("--grid", default="plugins/orma/configs/ablate-orma-chebi20.yaml")
    parser.add_argument("--overrides", nargs="*", default=[], help="the CLI overrides the ablation ran with")
    parser.add_argument(
        "--docs-prefix", default="orma-chebi20-ablation", help="the ablation's files go to docs/results/PREFIX-results.*"
    )
    parser.add_argument("--baseline", nargs="*", default=[], help="fingerprint-chebi20 run directories")
    args = parser.parse_args()
    if args.runs:
        write_block(args.block, table_of_runs([Path(r) for r in args.runs]))
        return
    if not args.ablation:
        parser.error("give the ablation's output folder, or --runs")

    from repmix.engine.ablate import prepare, run_dir_of, write_results

    out = Path(args.ablation)
    ablation = prepare(args.grid, args.overrides)
    paths = write_results(ablation, out)
    for kind, path in paths.items():
        target = Path("docs/results") / f"{args.docs_prefix}-{Path(path).name}"
        shutil.copyfile(path, target)
        print(f"{kind}: {target}")

    lines = [HEADER]
    base_h1 = []
    for run in map(Path, args.baseline):
        if (run / "metrics.json").is_file():
            lines += rows_for(f"fingerprint baseline ({run.name})", run, "split/", [("", "cosine")])
            base_h1.append(json.loads((run / "metrics.json").read_text())["split/text->molecule/hits@1"])
    for v in ablation.variants:
        run = run_dir_of(out, v)
        if not (run / "metrics.json").is_file():
            continue
        label = re.sub(r"__text=orma\.frozen-cached[^_]*", "__text=frozen", v.name)
        label = re.sub(r"__text=std\.hf-transformer[^_]*", "__text=fine-tuned", label)
        label = label.replace("__global_score=std.dot__temp=0.07", "")
        lines += rows_for(label, run, "", SCORES)
    if base_h1:
        lines.append(f"\nBaseline mean t→m Hits@1 over {len(base_h1)} seed(s): {100 * statistics.mean(base_h1):.1f}")
    write_block(args.block, "\n".join(lines))


HEADER = (
    "| run | score | t→m Hits@1 | t→m Hits@10 | t→m MRR | m→t Hits@1 | m→t MRR | training min (wall / CPU) |\n"
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def table_of_runs(runs: list[Path]) -> str:
    """One row per (run, score) of finished single runs: fingerprint models and ORMA level-retrieval runs."""
    lines = [HEADER]
    for run in runs:
        if not (run / "metrics.json").is_file():
            print(f"skipped (not finished): {run}")
            continue
        metrics = json.loads((run / "metrics.json").read_text())
        if "split/text->molecule/hits@1" in metrics:
            lines += rows_for(run.name, run, "split/", [("", "cosine")])
        elif "text->molecule/hits@1" in metrics:  # a run evaluated without an evaluator name
            lines += rows_for(run.name, run, "", [("", "cosine")])
        else:
            lines += rows_for(run.name, run, "", SCORES)
    return "\n".join(lines)


def write_block(block: str, table: str) -> None:
    """Replace the text between the block's start and end markers in docs/results/orma.md."""
    start, end = f"<!-- {block}:start -->", f"<!-- {block}:end -->"
    text = DOC.read_text(encoding="utf-8")
    if start in text:
        text = text[: text.index(start) + len(start)] + "\n" + table + "\n" + text[text.index(end) :]
        DOC.write_text(text, encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()
