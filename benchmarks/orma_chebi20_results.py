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


def _elapsed_minutes(run: Path, key: str) -> float | None:
    """The last logged ``elapsed`` (wall) or ``cpu_elapsed`` (process CPU) of a run, in minutes."""
    log = run / "metrics.jsonl"
    if not log.is_file():
        return None
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    values = [r[key] for r in records if isinstance(r.get(key), (int, float))]
    return max(values) / 60 if values else None


def train_minutes(run: Path) -> str:
    """Training wall time and process CPU time from metrics.jsonl, in minutes ("—" where not logged)."""
    if not (run / "metrics.jsonl").is_file():
        return "—"
    minutes = [_elapsed_minutes(run, key) for key in ("elapsed", "cpu_elapsed")]
    return " / ".join("—" if m is None else f"{m:.1f}" for m in minutes)


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
    parser.add_argument(
        "--summary", action="store_true",
        help="one row per grid combination (mean over its seeds, seeds in brackets) instead of one per run and score",
    )
    parser.add_argument(
        "--compare", nargs="*", default=[], metavar="LABEL=RUN[,RUN...]",
        help="with --summary: single-level runs shown beside the grid (e.g. fingerprint baselines), one row per LABEL",
    )
    args = parser.parse_args()
    compare = []  # checked before anything is written
    for item in args.compare:
        label, _, runs = item.partition("=")
        if not label or not runs:
            parser.error(f"--compare takes LABEL=RUN[,RUN...], got {item!r}")
        compare.append((label, [Path(r) for r in runs.split(",")]))
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
    if args.summary:
        table = summary_table(ablation, out, compare, Path("docs/results") / f"{args.docs_prefix}-summary.png")
        write_block(args.block, table)
        return

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


# The summary's columns: (metric key prefix, direction, column title).
SUMMARY_COLUMNS = [
    ("level:global/", "text->molecule", "sentence level t→m"),
    ("level:global/", "molecule->text", "sentence level m→t"),
    ("zscore-fallback/", "text->molecule", "z-scored + fallback t→m"),
    ("zscore-fallback/", "molecule->text", "z-scored + fallback m→t"),
    ("weighted/", "text->molecule", "ORMA weighted t→m"),
]


def _hits1(metrics: dict[str, float], prefix: str, direction: str) -> float | None:
    """Hits@1 ×100 of one score; a single-level run (a fingerprint model) fills the sentence-level columns."""
    keys = [f"{prefix}{direction}/hits@1"]
    if prefix == "level:global/":
        keys += [f"split/{direction}/hits@1", f"{direction}/hits@1"]
    return next((100 * metrics[k] for k in keys if k in metrics), None)


def _cell(values: list[float]) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ({', '.join(f'{v:.1f}' for v in values)})"


def _row(label: str, change: str, runs: list[Path]) -> tuple[str, list[list[float]]]:
    finished = [r for r in runs if (r / "metrics.json").is_file()]
    metrics = [json.loads((r / "metrics.json").read_text()) for r in finished]
    columns = [[v for m in metrics if (v := _hits1(m, prefix, d)) is not None] for prefix, d, _ in SUMMARY_COLUMNS]
    cpu = [c for r in finished if (c := _elapsed_minutes(r, "cpu_elapsed")) is not None]
    cells = " | ".join(_cell(c) for c in columns)
    minutes = f"{statistics.mean(cpu):.0f}" if cpu else "—"
    return f"| {label} | {change} | {len(finished)} / {len(runs)} | {cells} | {minutes} |", columns


def summary_table(ablation, out: Path, compare: list[tuple[str, list[Path]]], png: Path) -> str:
    """One row per grid combination and per compared run group: Hits@1 mean over seeds (each seed in brackets).

    Also draws ``png``: each row's mean sentence-level and z-scored Hits@1, both directions, seeds as dots.
    """
    from repmix.engine.ablate import run_dir_of

    header = (
        "| row | change from the base | seeds done | " + " | ".join(t for _, _, t in SUMMARY_COLUMNS)
        + " | CPU-min a run |\n| --- | --- | ---: | " + " | ".join("---:" for _ in SUMMARY_COLUMNS) + " | ---: |"
    )
    lines = [header]
    plotted: list[tuple[str, list[list[float]]]] = []
    base: dict[str, object] | None = None
    for number, group in enumerate(ablation.groups, start=1):
        variants = [v for v in ablation.variants if v.group == group]
        settings = variants[0].settings
        if base is None:
            base = settings
            change = "— (the base config)"
        else:
            change = ", ".join(
                f"{ablation.labels[k]}={json.dumps(v)}" for k, v in settings.items() if base.get(k) != v
            )
        line, columns = _row(str(number), change, [run_dir_of(out, v) for v in variants])
        lines.append(line)
        plotted.append((f"{number}: {change}"[:48], columns))
    for label, runs in compare:
        line, columns = _row(label, "(no graph: fingerprint MLP)", runs)
        lines.append(line)
        plotted.append((label[:48], columns))
    _plot_summary(plotted, png)
    lines.append(f"\n![summary]({png.name})")
    return "\n".join(lines)


def _plot_summary(rows: list[tuple[str, list[list[float]]]], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [0, 1, 2, 3]  # sentence level and z-scored, both directions
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(rows) + 1.5))
    height = 0.8 / len(shown)
    for j, col in enumerate(shown):
        ys = [i + (j - 1.5) * height for i in range(len(rows))]
        means = [statistics.mean(c[col]) if c[col] else 0.0 for _, c in rows]
        ax.barh(ys, means, height=height, label=SUMMARY_COLUMNS[col][2])
        for y, (_, c) in zip(ys, rows, strict=True):
            ax.plot(c[col], [y] * len(c[col]), "k.", markersize=3)
    ax.set_yticks(range(len(rows)), [r for r, _ in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("Hits@1 (%), 658 held-out ChEBI-20 pairs; dots = seeds")
    ax.axvline(45, color="grey", linestyle=":", linewidth=1)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=4)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
    print(f"plot: {png}")


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
