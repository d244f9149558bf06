"""A run's human-readable outputs: the loss-curve PNG and ``report.md``."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import repmix
from repmix.core.artifacts import atomic_write_bytes, atomic_write_text
from repmix.core.config import LocatedConfig
from repmix.engine.settings import EvaluationSpec, TrainConfig
from repmix.engine.evaluation import describe_specs, metrics_table
from repmix.engine.optim import GroupInfo
from repmix.engine.runs import LOSS_PLOT


def plot_loss(records: list[dict[str, Any]], path: Path) -> bool:
    """Draw training loss per logged step (and per-epoch means) to a PNG; False when there is nothing to plot.

    Uses matplotlib's object API with the Agg canvas, so no GUI backend and no
    global ``pyplot`` state is touched.
    """
    steps = [r["step"] for r in records if r.get("type") == "train" and "loss" in r]
    losses = [r["loss"] for r in records if r.get("type") == "train" and "loss" in r]
    if not steps:
        return False
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(steps, losses, color="tab:blue", linewidth=1.2, label="training loss (logged steps)")
    epochs = [(r["step"], r["loss"]) for r in records if r.get("type") == "epoch" and "loss" in r]
    if epochs:
        ax.plot(*zip(*epochs), "o", color="tab:orange", label="epoch mean")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title("training loss")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return True


def _components_table(model: Any) -> str:
    rows = ["| component | type | plugin | trainable | lr | parameters |", "| --- | --- | --- | --- | --- | ---: |"]
    for where, (instance, pc) in getattr(model, "components", {}).items():
        params = sum(p.numel() for p in instance.parameters()) if hasattr(instance, "parameters") else 0
        rows.append(
            f"| `{where}` | `{pc.entry.qualified_name}` | {pc.entry.plugin.distribution} {pc.entry.plugin.version} "
            f"| {'yes' if pc.trainable else 'no (frozen)'} | {'train.lr' if pc.lr is None else f'{pc.lr:g}'} "
            f"| {params:,} |"
        )
    return "\n".join(rows) + "\n"


def _groups_table(groups: list[GroupInfo]) -> str:
    rows = ["| parameter group | lr | weight decay | parameters |", "| --- | ---: | ---: | ---: |"]
    rows += [f"| `{g.name}` | {g.lr:g} | {g.weight_decay:g} | {g.num_params:,} |" for g in groups]
    return "\n".join(rows) + "\n"


def _train_table(train: TrainConfig, given: dict[str, Any]) -> str:
    rows = ["| setting | value |", "| --- | --- |"]
    for name in TrainConfig.model_fields:
        value = getattr(train, name)
        mark = "" if name in given else " (default)"
        rows.append(f"| `{name}` | {value}{mark} |")
    return "\n".join(rows) + "\n"


def hook_sections(run_dir: Path, metrics: dict[str, float]) -> list[tuple[str, str]]:
    """``(title, markdown)`` sections contributed by ``repmix_report_sections`` hooks."""
    from repmix.registry.hooks import get_hooks

    out: list[tuple[str, str]] = []
    for result in get_hooks().repmix_report_sections(run_dir=str(run_dir), metrics=dict(metrics)) or []:
        for item in result or []:
            title, body = item
            out.append((str(title), str(body)))
    return out


def write_report(
    run_dir: Path,
    *,
    cfg: LocatedConfig,
    train: TrainConfig,
    model: Any,
    groups: list[GroupInfo],
    specs: list[EvaluationSpec],
    metrics: dict[str, float],
    records: list[dict[str, Any]],
    summary: dict[str, Any],
    has_plot: bool,
) -> None:
    """Write ``report.md``: run summary, config summary, loss curve, final metrics, plugin sections."""
    name = cfg.data.get("name") or (Path(cfg.source).stem if cfg.source else run_dir.name)
    data = cfg.data.get("data") or {}
    last_train = [r for r in records if r.get("type") == "train"]
    lines = [
        f"# Run report: {name}",
        "",
        f"- run directory: `{run_dir}`",
        f"- finished: {time.strftime('%Y-%m-%d %H:%M:%S')} with repmix {repmix.__version__}",
    ]
    lines += [f"- {k}: {v}" for k, v in summary.items()]
    if cfg.data.get("description"):
        lines += ["", str(cfg.data["description"])]
    lines += [
        "",
        "## Configuration",
        "",
        "Resolved config: [`config.yaml`](config.yaml); plugin versions: [`plugins.lock`](plugins.lock).",
        "",
        "### Components",
        "",
        _components_table(model),
        "### Optimizer groups",
        "",
        _groups_table(groups),
        "### Training settings",
        "",
        _train_table(train, dict(cfg.data.get("train") or {})),
        "### Data",
        "",
        f"- training: `{data.get('type', '?')}`"
        + (f", path `{data['path']}`" if isinstance(data, dict) and data.get("path") else "")
        + f", split `{train.split or data.get('split', '(default)')}`",
    ]
    if specs:
        lines += ["", describe_specs(specs, cfg).rstrip()]
    lines += ["", "## Training", ""]
    if last_train:
        lines.append(f"Last logged loss: {last_train[-1]['loss']:.6g} at step {last_train[-1]['step']}.")
        lines.append("")
    if has_plot:
        lines += [f"![training loss]({LOSS_PLOT})", ""]
    lines += ["## Final metrics", "", metrics_table(metrics).rstrip(), ""]
    for title, body in hook_sections(run_dir, metrics):
        lines += [f"## {title}", "", body.rstrip(), ""]
    atomic_write_text(run_dir / "report.md", "\n".join(lines).rstrip() + "\n")
