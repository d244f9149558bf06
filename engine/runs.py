"""Run directories: layout, state tests, config comparison, ``metrics.jsonl``.

Layout of a run directory::

    run.json              marks the directory as a repmix run (format, repmix version, world size)
    config.yaml           the resolved config (extends and overrides applied)
    plugins.lock          plugin distributions and versions of every component
    metrics.jsonl         one JSON object per logged step, epoch and evaluation
    checkpoints/step-N/   model.safetensors, optimizer.pt, state.json, config.yaml, plugins.lock
    model/                the final model (repmix.core.artifacts.save_model)
    plots/loss.png        the loss curve
    report.md             config summary, final metrics, sections from plugins
    metrics.json          final evaluation metrics ({} without an evaluate block), written last
    evaluation.md         written by ``repmix evaluate RUN_DIR``
    evaluations/<time>/   ``repmix evaluate`` results with other data or overrides
    .repmix.lock          held (flock) by the one process writing the directory;
    .repmix.lock.json     that process's pid, command and start time

A run is *finished* when both ``model/repmix.json`` and ``metrics.json``
exist; every file is written atomically, so a run killed at any point never
looks finished.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from repmix.core.artifacts import CONFIG_FILE, LOCK_FILE, MANIFEST_FILE
from repmix.core.errors import ArtifactError

RUN_FILE = "run.json"
METRICS_LOG = "metrics.jsonl"
METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
MODEL_DIR = "model"
CHECKPOINTS_DIR = "checkpoints"
PLOTS_DIR = "plots"
LOSS_PLOT = "plots/loss.png"
EVALUATION_REPORT = "evaluation.md"
EVALUATIONS_DIR = "evaluations"
RUN_FORMAT = 1
#: The exclusive lock of a run or output directory, and who holds it.
DIR_LOCK = ".repmix.lock"
DIR_LOCK_HOLDER = ".repmix.lock.json"

#: Directories this process holds, with how many nested holds (a lock is re-entrant per process).
_HELD: dict[Path, list[Any]] = {}

#: Everything a run writes at its top level (what ``--force`` clears before starting over).
RUN_ENTRIES = (
    RUN_FILE,
    CONFIG_FILE,
    LOCK_FILE,
    METRICS_LOG,
    METRICS_FILE,
    REPORT_FILE,
    MODEL_DIR,
    CHECKPOINTS_DIR,
    PLOTS_DIR,
    EVALUATION_REPORT,
    EVALUATIONS_DIR,
)


def lock_holder(directory: str | Path) -> dict[str, Any]:
    """What the holder of ``directory``'s lock recorded (pid, command, started, host); ``{}`` if unknown."""
    try:
        data = json.loads((Path(directory) / DIR_LOCK_HOLDER).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


@contextmanager
def locked_dir(directory: str | Path, *, what: str = "run directory") -> Iterator[Path]:
    """Hold the exclusive lock of ``directory`` (created if needed) for the block.

    The lock is an OS file lock (``filelock``: ``flock`` on POSIX) on
    ``.repmix.lock``: the kernel releases it when its process ends, however it
    ends, so the lock of a process that died is taken over at once and safely
    (no guessing from pids, which are reused). The holder's pid, command and
    start time are written to ``.repmix.lock.json`` for the message another
    process gets. Re-entrant within one process.
    """
    from filelock import FileLock, Timeout

    from repmix.core.artifacts import atomic_write_text

    d = Path(directory)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArtifactError(
            f"cannot write the {what} {str(d)!r}: {exc.strerror or exc}"
            + (" (a file has that name)" if d.exists() and not d.is_dir() else ""),
            hint="choose another output directory, or remove what is in the way",
        ) from None
    key = d.resolve()
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield d
        finally:
            _HELD[key][1] -= 1
        return
    lock = FileLock(str(d / DIR_LOCK), timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        holder = lock_holder(d)
        who = f"pid {holder['pid']}" if "pid" in holder else "another process"
        detail = [str(holder[k]) for k in ("command", "host") if holder.get(k)]
        if holder.get("started"):
            detail.append(f"since {holder['started']}")
        raise ArtifactError(
            f"{what} {str(d)!r} is in use by {who}" + (f" ({', '.join(detail)})" if detail else ""),
            hint="wait for that process to finish, or use another output directory; "
            "the lock of a process that has ended is released by the system",
        ) from None
    except OSError as exc:  # a read-only directory cannot hold the lock file
        raise ArtifactError(f"cannot write the {what} {str(d)!r}: {exc.strerror or exc}") from None
    _HELD[key] = [lock, 1]
    try:
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": " ".join(["repmix", *sys.argv[1:]])[:300],
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        atomic_write_text(d / DIR_LOCK_HOLDER, json.dumps(info) + "\n")
        yield d
    finally:
        del _HELD[key]
        try:
            (d / DIR_LOCK_HOLDER).unlink(missing_ok=True)  # before releasing: never remove a successor's record
        except OSError:
            pass
        lock.release()


def is_finished(run_dir: str | Path) -> bool:
    """True when the run in ``run_dir`` completed: ``model/repmix.json`` and ``metrics.json`` exist."""
    p = Path(run_dir)
    return (p / MODEL_DIR / MANIFEST_FILE).is_file() and (p / METRICS_FILE).is_file()


def is_run(run_dir: str | Path) -> bool:
    """True when ``run_dir`` was created by ``repmix train`` (it holds ``run.json``)."""
    return (Path(run_dir) / RUN_FILE).is_file()


def numeric_metrics(raw: Any) -> dict[str, float]:
    """The numeric entries of a metrics mapping (booleans and non-numbers are dropped)."""
    if not isinstance(raw, dict):
        return {}
    return {
        str(k): float(v) for k, v in raw.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def read_metrics(run_dir: str | Path, *, missing_ok: bool = False) -> dict[str, float]:
    """The final metrics of a run (``metrics.json``), numeric entries only.

    A missing or unreadable file is an :class:`ArtifactError`, or ``{}`` with
    ``missing_ok`` (what ``runs compare`` wants for unfinished runs).
    """
    path = Path(run_dir) / METRICS_FILE
    try:
        return numeric_metrics(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        if missing_ok:
            return {}
        raise ArtifactError(f"cannot read the metrics of run {str(run_dir)!r}: {exc}") from None


def checkpoint_dirs(run_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run as (step, path), oldest first.

    A checkpoint directory is complete once renamed from its temporary name,
    which happens only after every file in it was written.
    """
    root = Path(run_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    out = []
    for child in root.iterdir():
        name = child.name
        if child.is_dir() and name.startswith("step-") and name[5:].isdigit() and (child / "state.json").is_file():
            out.append((int(name[5:]), child))
    return sorted(out)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The most recent complete checkpoint, or ``None``."""
    found = checkpoint_dirs(run_dir)
    return found[-1][1] if found else None


def config_differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two resolved configs (plain data)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in list(old) + [k for k in new if k not in old]:
            sub = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                out.append(sub)
            else:
                out.extend(config_differences(old[key], new[key], sub))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new)):
            out.extend(config_differences(a, b, f"{prefix}.{i}" if prefix else str(i)))
        return out
    numbers = (int, float)
    if (
        isinstance(old, numbers) and isinstance(new, numbers)
        and not isinstance(old, bool) and not isinstance(new, bool)
    ):
        return [] if float(old) == float(new) else [prefix]
    return [] if type(old) is type(new) and old == new else [prefix or "(the whole config)"]


def read_metrics_log(path: Path) -> list[dict[str, Any]]:
    """Records of a ``metrics.jsonl``; a torn last line (a killed writer) is skipped."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            records.append(rec)
    return records


class MetricsLog:
    """Appends one JSON object per line to ``metrics.jsonl``.

    Each record is written with a single ``write`` and flushed, so a killed
    process leaves at most one torn last line, which readers skip and
    :meth:`truncate_after` removes when a run resumes.
    """

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` as one line."""
        if not self.enabled:
            return
        line = json.dumps(record, sort_keys=False, allow_nan=True) + "\n"
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)

    def truncate_after(self, step: int) -> None:
        """Keep only records up to optimizer step ``step`` (atomically), e.g. before resuming from it.

        The final evaluation's record goes too: a resumed run evaluates again.
        """
        from repmix.core.artifacts import atomic_write_text

        if not self.enabled:
            return
        kept = [
            r for r in read_metrics_log(self.path) if int(r.get("step", 0)) <= step and not r.get("final")
        ]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
