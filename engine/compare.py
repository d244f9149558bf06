"""Reading run directories and tabulating them side by side (``repmix runs compare``).

A run directory (written by :func:`repmix.engine.training.train_run`) holds
``config.yaml`` (the resolved config), ``metrics.jsonl`` (metrics as training
goes) and, once the run is finished, ``model/`` and ``metrics.json`` (a flat
``{metric: value}`` mapping, written last).

This module also holds the helpers the ablation report shares with
``runs compare``: which direction of a metric is better, number formatting,
flattening a config to dotted keys, Markdown and CSV rendering.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repmix.engine.runs import (
    CONFIG_FILE,
    METRICS_FILE,
    METRICS_LOG,
    MODEL_DIR,
    RUN_FILE,
    is_finished,
    read_metrics,
    read_metrics_log,
)
from repmix.core.errors import InputError, did_you_mean

#: Substrings that make a metric "lower is better" (matched case-insensitively).
LOWER_IS_BETTER = ("rank", "loss")
#: Shown for a missing value in Markdown tables.
MISSING = "—"


def lower_is_better(metric: str) -> bool:
    """True when smaller values of ``metric`` are better: its name contains ``rank`` or ``loss``.

    Every other metric (accuracy, MRR, nDCG, recall, Spearman, ...) is better when higher.
    Note that ``mrr`` (mean reciprocal rank) does not contain ``rank`` and so is higher-better.
    """
    name = metric.lower()
    return any(word in name for word in LOWER_IS_BETTER)


def format_number(value: float) -> str:
    """A compact, aligned-looking rendering: 4 decimals in the usual range, scientific outside it."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.4f}"
    return f"{value:.3e}"


def format_value(value: Any) -> str:
    """A config value as table text: scalars as written, mappings and lists as compact JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return str(value)


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings and lists -> ``{dotted.key: leaf}``; list items are keyed by index."""
    out: dict[str, Any] = {}
    if isinstance(data, dict) and data:
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(data, list) and data:
        for i, v in enumerate(data):
            out.update(flatten(v, f"{prefix}.{i}" if prefix else str(i)))
    else:
        out[prefix] = data
    return out


@dataclass
class RunInfo:
    """What ``runs compare`` and the ablation report know about one run directory."""

    path: Path
    label: str
    status: str
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status == "finished"


def run_finished(run_dir: Path) -> bool:
    """Whether the trainer considers ``run_dir`` finished (model saved and final metrics written)."""
    return is_finished(run_dir)


def _last_step(run_dir: Path) -> int | None:
    """The ``step`` of the last record of ``metrics.jsonl`` that has one, if any."""
    try:
        records = read_metrics_log(run_dir / METRICS_LOG)
    except (OSError, UnicodeDecodeError):
        return None
    for record in reversed(records):
        step = record.get("step")
        if isinstance(step, int) and not isinstance(step, bool):
            return step
    return None


def read_config(run_dir: Path) -> dict[str, Any]:
    """The resolved config of a run (``{}`` when absent or unreadable)."""
    from repmix.core.config import parse_yaml
    from repmix.core.errors import ConfigError

    path = run_dir / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        data, _ = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, ConfigError):
        return {}
    return data if isinstance(data, dict) else {}


def read_run(run_dir: str | Path, label: str | None = None) -> RunInfo:
    """Read a run directory, finished or not.

    Status is ``finished``, ``unfinished`` (with the last logged step when
    ``metrics.jsonl`` has one) or ``not started`` (the directory exists but has
    no ``config.yaml`` yet).
    """
    p = Path(run_dir)
    if run_finished(p):
        status = "finished"
    elif (p / CONFIG_FILE).is_file():
        step = _last_step(p)
        status = "unfinished" if step is None else f"unfinished (step {step})"
    else:
        status = "not started"
    metrics = read_metrics(p, missing_ok=True) if status == "finished" else {}
    return RunInfo(p, label if label is not None else str(run_dir), status, read_config(p), metrics)


def _looks_like_run(p: Path) -> bool:
    return any((p / name).is_file() for name in (RUN_FILE, CONFIG_FILE, METRICS_FILE)) or (p / MODEL_DIR).is_dir()


def expand_run_dirs(paths: Sequence[str | Path]) -> list[tuple[Path, str]]:
    """Run directories named on the command line, each with its display label.

    A directory that is not itself a run but holds runs (an ablation's output
    directory, with ``variants/``, or a folder of runs) stands for all of them.
    """
    out: list[tuple[Path, str]] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise InputError(f"run directory {str(raw)!r} does not exist")
        if not p.is_dir():
            raise InputError(f"{str(raw)!r} is a file, not a run directory")
        if _looks_like_run(p):
            out.append((p, str(raw)))
            continue
        parent = p / "variants" if (p / "variants").is_dir() else p
        children = sorted(c for c in parent.iterdir() if c.is_dir() and _looks_like_run(c))
        if not children:
            raise InputError(
                f"{str(raw)!r} is not a run directory: it has no {CONFIG_FILE}, {METRICS_FILE} or model/, "
                "and holds no run directories",
                hint="pass the directory written by 'repmix train -o DIR' (or an ablation's output directory)",
            )
        out += [(c, str(c)) for c in children]
    return out


def differing_keys(configs: Sequence[dict[str, Any]]) -> list[str]:
    """Dotted config keys whose value is not the same in every config (absent counts as a value)."""
    flats = [flatten(c) for c in configs]
    keys: dict[str, None] = {}
    for f in flats:
        keys.update(dict.fromkeys(f))

    def canonical(f: dict[str, Any], k: str) -> str | None:
        # JSON text tells 1, 1.0 and true apart, which == does not.
        return json.dumps(f[k], sort_keys=True, default=str) if k in f else None

    return [k for k in keys if len({canonical(f, k) for f in flats}) > 1]


def union_metrics(metric_maps: Iterable[dict[str, float]]) -> list[str]:
    """Every metric name, in order of first appearance."""
    names: dict[str, None] = {}
    for m in metric_maps:
        names.update(dict.fromkeys(m))
    return list(names)


def select_metrics(available: list[str], wanted: str | None) -> list[str]:
    """The metric columns to show: all, or the comma-separated ``wanted`` ones (validated)."""
    if wanted is None:
        return available
    chosen = [w.strip() for w in wanted.split(",") if w.strip()]
    if not chosen:
        raise InputError("--metrics is empty: give comma-separated metric names")
    for name in chosen:
        if name not in available:
            if not available:
                raise InputError(f"metric {name!r} is not available: none of the runs has finished metrics")
            guess = did_you_mean(name, available)
            raise InputError(
                f"metric {name!r} is in none of the runs' metrics.json",
                hint=(f"did you mean {guess!r}? " if guess else "") + f"available: {', '.join(available)}",
            )
    return chosen


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, std


def best_index(values: Sequence[float | None], metric: str) -> set[int]:
    """Indices holding the best value of ``metric`` (ties all win; ``None`` and NaN never do)."""
    valid = [(i, v) for i, v in enumerate(values) if v is not None and not math.isnan(v)]
    if not valid:
        return set()
    pick = min if lower_is_better(metric) else max
    best = pick(v for _, v in valid)
    return {i for i, v in valid if v == best}


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]], align_right: set[int] | None = None) -> str:
    """A GitHub-flavoured Markdown table (``|`` in cells escaped)."""
    right = align_right or set()

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |"]
    lines.append("|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|")
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def csv_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """CSV text (RFC 4180 quoting, ``\\n`` line ends)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return buf.getvalue()


def compare_runs(runs: Sequence[RunInfo], metrics: str | None = None, fmt: str = "md") -> str:
    """The ``runs compare`` table: run, status, the config keys that differ, then metrics.

    In Markdown the best value of each metric among finished runs is bold
    (see :func:`lower_is_better` for the direction).
    """
    if fmt not in ("md", "csv"):
        raise InputError(f"unknown format {fmt!r}: expected md or csv")
    available = union_metrics(r.metrics for r in runs)
    shown = select_metrics(available, metrics)
    keys = differing_keys([r.config for r in runs]) if len(runs) > 1 else []
    flats = [flatten(r.config) for r in runs]
    headers = ["run", "status", *keys, *shown]
    if fmt == "csv":
        csv_rows = [
            [r.label, r.status, *(format_value(f[k]) if k in f else "" for k in keys),
             *(repr(r.metrics[m]) if m in r.metrics else "" for m in shown)]
            for r, f in zip(runs, flats, strict=True)
        ]
        return csv_table(headers, csv_rows)
    # Bold marks the best of at least two runs with a value for the metric.
    bold = {
        m: best_index([r.metrics.get(m) for r in runs], m) if sum(m in r.metrics for r in runs) > 1 else set()
        for m in shown
    }
    rows = []
    for i, (r, f) in enumerate(zip(runs, flats, strict=True)):
        cells = [r.label, r.status, *(format_value(f[k]) if k in f else MISSING for k in keys)]
        for m in shown:
            if m not in r.metrics:
                cells.append(MISSING)
            else:
                text = format_number(r.metrics[m])
                cells.append(f"**{text}**" if i in bold[m] else text)
        rows.append(cells)
    right = set(range(2 + len(keys), len(headers)))
    return markdown_table(headers, rows, right)
