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
from repmix.engine.evaluation import describe_specs, metrics_table, skipped_markdown
from repmix.engine.optim import GroupInfo
from repmix.engine.runs import LOSS_PLOT


def plot_loss(records: list[dict[str, Any]], path: Path) -> bool:
    """Draw training loss per logged step (and per-epoch means) to a PNG; False when there is nothing to plot.

    Uses matplotlib's object API with the Agg canvas, so no GUI backend and no
    global ``pyplot`` state is touched.
    """
    train = [r for r in records if r.get("type") == "train" and "loss" in r]
    steps = [r["step"] for r in train]
    losses = [r["loss"] for r in train]
    if not steps:
        return False
    standard = {"type", "step", "epoch", "loss", "lr", "items_per_s", "elapsed", "cpu_elapsed"}
    terms = sorted({k for r in train for k, v in r.items() if k not in standard and isinstance(v, (int, float))})
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(steps, losses, color="tab:blue", linewidth=1.6, label="total loss (logged steps)")
    for term in terms[:8]:  # each loss term and logged value of the objective
        pts = [(r["step"], r[term]) for r in train if isinstance(r.get(term), (int, float))]
        ax.plot(*zip(*pts), linewidth=0.9, alpha=0.8, label=term)
    epochs = [(r["step"], r["loss"]) for r in records if r.get("type") == "epoch" and "loss" in r]
    if epochs:
        ax.plot(*zip(*epochs), "o", color="tab:orange", label="epoch mean")
    evals = [r for r in records if r.get("type") == "eval" and isinstance(r.get("metrics"), dict) and r["metrics"]]
    if evals:
        name = next(iter(evals[-1]["metrics"]))
        pts = [(r["step"], r["metrics"][name]) for r in evals if isinstance(r["metrics"].get(name), (int, float))]
        if pts:
            ax2 = ax.twinx()
            ax2.plot(*zip(*pts), "s--", color="tab:green", label=f"evaluation: {name}")
            ax2.set_ylabel(name)
            ax2.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title("training loss" + (" and its terms" if terms else ""))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return True


def _components_table(model: Any) -> str:
    rows = ["| component | type | plugin | trainable | lr | parameters |", "| --- | --- | --- | --- | --- | ---: |"]
    for where, (instance, pc) in getattr(model, "components", {}).items():
        params = sum(p.numel() for p in instance.parameters()) if hasattr(instance, "parameters") else 0
        trainable = ("yes" if pc.trainable else "no (frozen)") if params else "— (no parameters)"
        lr = ("train.lr" if pc.lr is None else f"{pc.lr:g}") if params else "—"
        rows.append(
            f"| `{where}` | `{pc.entry.qualified_name}` | {pc.entry.plugin.distribution} {pc.entry.plugin.version} "
            f"| {trainable} | {lr} | {params:,} |"
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


def chance_levels(metrics: dict[str, float], sizes: dict[str, int]) -> str:
    """A sentence giving chance levels of ranking metrics (hits@K, mrr, mean_rank) for N candidates.

    ``sizes`` maps an evaluate block's name ("" when there is one block) to
    the number of examples it evaluated; the candidates are assumed to be
    those examples, as for in-split retrieval.
    """
    import re

    out = []
    for name in metrics:
        head, _, metric = name.rpartition("/")
        block = head.split("/", 1)[0] if head else ""
        n = sizes.get(block, sizes.get("", 0))
        if n < 2:
            continue
        hits = re.fullmatch(r"hits@(\d+)", metric)
        if hits:
            out.append(f"`{name}` {min(1.0, int(hits.group(1)) / n):.4f}")
        elif metric == "mrr":
            out.append(f"`{name}` {sum(1 / k for k in range(1, n + 1)) / n:.4f}")
        elif metric in ("mean_rank", "median_rank"):
            out.append(f"`{name}` {(n + 1) / 2:.1f}")
    if not out:
        return ""
    shown = ", ".join(f"{k or 'evaluation'}: {v}" for k, v in sizes.items())
    return ("Chance level, for a random ranking when every evaluated example is a candidate "
            f"({shown} examples): " + ", ".join(out) + ".")


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
    skipped: dict[str, dict[str, Any]] | None = None,
    sizes: dict[str, int] | None = None,
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
    lines += ["## Final metrics", ""]
    if len(specs) > 1:
        names = ", ".join(f"`{s.name}/`" for s in specs)
        lines += [
            f"Several evaluate blocks are declared, so each metric is prefixed with its block's name ({names}): "
            "the name given with `name:` in that block, or its evaluator type. Each block evaluates its own "
            "data and candidates (see Data above).",
            "",
        ]
    lines += [metrics_table(metrics).rstrip(), ""]
    chance = chance_levels(metrics, sizes or {})
    if chance:
        lines += [chance, ""]
    if skipped:
        lines += ["## Skipped rows", "", skipped_markdown(skipped).rstrip(), ""]
    for title, body in hook_sections(run_dir, metrics):
        lines += [f"## {title}", "", body.rstrip(), ""]
    atomic_write_text(run_dir / "report.md", "\n".join(lines).rstrip() + "\n")
