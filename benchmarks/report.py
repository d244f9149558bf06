"""Shared by the benchmark scripts: timing helpers and writing a section of docs/benchmarks.md."""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = REPO / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\n"
    "Produced by the scripts in `benchmarks/`; each section names the command that wrote it.\n"
    "Machines are noisy: every comparison runs both sides in the same process or the same\n"
    "run, alternating, and reports the ratio.\n"
)


def shared_data_dir() -> Path:
    """``$REPMIX_SHARED_DATA`` or ``../shared/data`` beside the repository."""
    return Path(os.environ.get("REPMIX_SHARED_DATA", REPO.parent / "shared" / "data"))


def machine() -> str:
    """One line describing where the numbers were measured."""
    import torch

    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)"
    )


def time_alternating(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Run each function ``repeats`` times, alternating between them; seconds per run."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def markdown_table(headers: list[str], rows: list[list[object]]) -> str:
    """A GitHub-flavoured markdown table."""
    out = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def write_section(key: str, markdown: str, path: Path = BENCHMARKS_MD, header: str = HEADER) -> Path:
    """Replace (or append) the section between ``<!-- key:start -->`` and ``<!-- key:end -->`` of ``path``."""
    text = path.read_text(encoding="utf-8") if path.exists() else header
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def train_records(run: Path) -> list[dict]:
    """The ``train`` records of a run directory's metrics.jsonl (empty when there is none)."""
    path = run / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = (json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip())
    return [r for r in rows if r.get("type") == "train"]


def report_value(run: Path, key: str) -> str | None:
    """The value of a ``- key: value`` line of a run directory's report.md."""
    path = run / "report.md"
    m = re.search(rf"^- {re.escape(key)}: (.+)$", path.read_text(encoding="utf-8"), re.MULTILINE) if path.is_file() else None
    return m.group(1).strip() if m else None


def report_number(run: Path, key: str) -> float | None:
    """The leading number of a report.md line (``- training CPU time: 1,234.5 s`` -> 1234.5)."""
    value = report_value(run, key)
    m = re.match(r"([0-9][0-9.,]*)", value) if value else None
    return float(m.group(1).replace(",", "")) if m else None
