"""``repmix matryoshka2d-grid``: (layer x dim) STS Spearman heat-maps of trained runs or a whole ablation.

    repmix matryoshka2d-grid runs/ablate-sentence-embeddings -o docs/results/grid [--limit 500]
    repmix matryoshka2d-grid runs/my-run another/run -o out/
    repmix matryoshka2d-grid -o out/ --from-csv          # redraw from out/grid.csv

The command is added to ``repmix`` by this plugin's ``repmix_add_commands`` hook
(:mod:`repmix_matryoshka2d.commands`).

Each argument is a run directory (with ``model/``) or an ablation directory (with
``variants/*/model``). Every finished run's saved model is loaded and scored with
``matryoshka2d.sts-grid`` on the data of its config's first ``evaluate:`` block (its
``data:`` or the top-level one, at its ``split``). Runs of the same variant
(directory name without ``__seed=N``) are averaged. Writes ``grid.csv`` (one row per
run and cell), ``grid.md`` (one table per variant, mean over seeds) and ``grid.png``
(one heat-map per variant; needs matplotlib).
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Any

from repmix.sdk import InputError

SEED_SUFFIX = re.compile(r"__seed=[^_]+$")
#: The sub-command of ``repmix`` that runs :func:`run`.
COMMAND = "matryoshka2d-grid"


def find_runs(paths: list[Path]) -> list[Path]:
    """Finished run directories under the given run or ablation directories."""
    runs: list[Path] = []
    for p in paths:
        if (p / "model").is_dir():
            runs.append(p)
        elif (p / "variants").is_dir():
            runs += sorted(r for r in (p / "variants").iterdir() if (r / "model").is_dir())
        else:
            raise InputError(f"{p} is neither a run directory (with model/) nor an ablation (with variants/)")
    return runs


def _evaluation_data(config: dict[str, Any]) -> tuple[dict[str, Any], str | None, dict[str, Any]]:
    """(dataset block, split, evaluate block) of the config's first evaluate block."""
    blocks = config.get("evaluate")
    if isinstance(blocks, dict):
        blocks = [blocks]
    if not blocks:
        raise InputError("the run's config has no evaluate: block naming the STS data")
    block = dict(blocks[0])
    data = dict(block.get("data") or config.get("data") or {})
    if not data:
        raise InputError("the run's config has no data block for its evaluation")
    return data, block.get("split"), block


def score_run(run: Path, layers: list[int] | None, dims: list[int] | None, limit: int | None, batch_size: int) -> dict[str, float]:
    """The grid metrics of one run's saved model."""
    from repmix.sdk import (
        LocatedConfig,
        Runtime,
        build_component,
        load_config,
        load_model,
    )

    from repmix_matryoshka2d.evaluator import StsGridEvaluator

    model = load_model(run)
    config = load_config(run / "model" / "config.yaml").data
    data_block, split, eval_block = _evaluation_data(config)
    if limit is not None:
        data_block["limit"] = limit
    dataset = build_component(LocatedConfig({"data": data_block}), "dataset", data_block, ("data",))
    examples = dataset.load(split)
    evaluator = StsGridEvaluator(
        StsGridEvaluator.Config(on=eval_block.get("on"), layers=layers, dims=dims, batch_size=batch_size), Runtime()
    )
    return evaluator.evaluate(model, examples)


def read_csv(path: Path) -> dict[str, dict[tuple[int, int], float]]:
    """The per-run cells of a grid.csv written earlier."""
    if not path.is_file():
        raise InputError(f"{path} does not exist; score the runs first (without --from-csv)")
    per_run: dict[str, dict[tuple[int, int], float]] = defaultdict(dict)
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            per_run[row["run"]][(int(row["layer"]), int(row["dim"]))] = float(row["spearman"])
    return dict(per_run)


def parse_cells(metrics: dict[str, float]) -> dict[tuple[int, int], float]:
    """{(layer, dim): spearman} from ``spearman_L{l}_d{d}`` metrics."""
    cells = {}
    for key, value in metrics.items():
        m = re.fullmatch(r"spearman_L(\d+)_d(\d+)", key)
        if m:
            cells[(int(m.group(1)), int(m.group(2)))] = value
    return cells


def short_title(variant: str, width: int = 44) -> str:
    """A variant name wrapped for a plot title: one ``label=value`` part per line, long values cut."""
    lines = []
    for part in variant.split("__"):
        lines += textwrap.wrap(part, width) or [part]
    return "\n".join(lines)


def write_outputs(per_run: dict[str, dict[tuple[int, int], float]], out: Path, columns: int = 2) -> list[Path]:
    """grid.csv, grid.md and (with matplotlib) grid.png; returns the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with open(out / "grid.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["run", "variant", "layer", "dim", "spearman"])
        for run, cells in per_run.items():
            for (layer, dim), value in sorted(cells.items()):
                w.writerow([run, SEED_SUFFIX.sub("", run), layer, dim, f"{value:.6f}"])
    written.append(out / "grid.csv")
    variants: dict[str, list[dict[tuple[int, int], float]]] = defaultdict(list)
    for run, cells in per_run.items():
        variants[SEED_SUFFIX.sub("", run)].append(cells)
    means: dict[str, dict[tuple[int, int], float]] = {}
    for variant, runs in variants.items():
        keys = sorted(set().union(*runs))
        means[variant] = {k: sum(r[k] for r in runs if k in r) / sum(1 for r in runs if k in r) for k in keys}
    lines = ["# STS Spearman by (layer, dim)", ""]
    for variant, cells in means.items():
        layers = sorted({layer for layer, _ in cells})
        dims = sorted({dim for _, dim in cells}, reverse=True)
        n = len(variants[variant])
        lines += [f"## {variant} (mean of {n} run{'s' if n != 1 else ''})", ""]
        lines.append("| layer | " + " | ".join(f"d={d}" for d in dims) + " |")
        lines.append("| --- |" + " --- |" * len(dims))
        for layer in layers:
            lines.append(f"| {layer} | " + " | ".join(f"{cells.get((layer, d), float('nan')):.4f}" for d in dims) + " |")
        lines.append("")
    (out / "grid.md").write_text("\n".join(lines), encoding="utf-8")
    written.append(out / "grid.md")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: grid.png not drawn (pip install 'repmix-matryoshka2d[plot]')", file=sys.stderr)
        return written
    n = len(means)
    cols = max(1, min(n, columns))
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.0 * cols, 4.4 * rows), squeeze=False)
    fig.subplots_adjust(hspace=0.75, wspace=0.3)
    values = [v for cells in means.values() for v in cells.values()]
    lo, hi = min(values), max(values)
    for ax, (variant, cells) in zip(axes.flat, means.items()):
        layers = sorted({layer for layer, _ in cells})
        dims = sorted({dim for _, dim in cells}, reverse=True)
        grid = [[cells.get((layer, d), float("nan")) for d in dims] for layer in layers]
        im = ax.imshow(grid, vmin=lo, vmax=hi, cmap="viridis", aspect="auto", origin="lower")
        ax.set_xticks(range(len(dims)), [str(d) for d in dims])
        ax.set_yticks(range(len(layers)), [str(layer) for layer in layers])
        ax.set_xlabel("dim")
        ax.set_ylabel("layer")
        ax.set_title(short_title(variant), fontsize=7)
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < (lo + hi) / 2 else "black")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="Spearman")
    fig.savefig(out / "grid.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    written.append(out / "grid.png")
    return written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``repmix matryoshka2d-grid``."""
    parser.add_argument("paths", nargs="*", type=Path, help="run directories or ablation directories")
    parser.add_argument("-o", "--output", type=Path, required=True, help="directory for grid.csv, grid.md, grid.png")
    parser.add_argument("--layers", type=int, nargs="*", default=None, help="hidden-state layers (default 1..N-1)")
    parser.add_argument("--dims", type=int, nargs="*", default=None, help="widths (default: full width halved to 32)")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N pairs of the data")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--only", default=None, help="regular expression: score only runs whose name matches")
    parser.add_argument("--columns", type=int, default=2, help="heat-maps per row of grid.png")
    parser.add_argument("--from-csv", action="store_true",
                        help="redraw grid.md / grid.png from OUTPUT/grid.csv instead of scoring the runs")


def run(args: argparse.Namespace) -> int:
    """Score the runs (or read ``grid.csv``) and write the grid; returns the exit status."""
    if args.from_csv:
        for path in write_outputs(read_csv(args.output / "grid.csv"), args.output, args.columns):
            print(f"wrote {path}")
        return 0
    if not args.paths:
        raise InputError("give at least one run or ablation directory (or --from-csv)")
    runs = find_runs(args.paths)
    if args.only:
        runs = [r for r in runs if re.search(args.only, r.name)]
    if not runs:
        raise InputError("no finished runs found", hint="a run is finished when it holds model/")
    per_run: dict[str, dict[tuple[int, int], float]] = {}
    for i, run_dir in enumerate(runs, 1):
        metrics = score_run(run_dir, args.layers, args.dims, args.limit, args.batch_size)
        per_run[run_dir.name] = parse_cells(metrics)
        print(f"[{i}/{len(runs)}] {run_dir.name}: spearman_cosine={metrics['spearman_cosine']:.4f}", flush=True)
    for path in write_outputs(per_run, args.output, args.columns):
        print(f"wrote {path}")
    return 0
