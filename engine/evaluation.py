"""Running the ``evaluate:`` blocks, and ``repmix evaluate`` on a run, a saved model or a config.

Metric names are the evaluator's own (``spearman``, ``mrr``, ...) when the
config declares one evaluator, and ``<name>/<metric>`` when it declares
several (``name:`` defaults to the evaluator's type).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from repmix.core.assembly import instantiate_component
from repmix.core.config import LocatedConfig, apply_overrides, dotted, load_config
from repmix.engine.settings import EvaluationSpec, evaluate_blocks, plan_evaluations
from repmix.engine.runs import (
    CONFIG_FILE,
    EVALUATION_REPORT,
    EVALUATIONS_DIR,
    METRICS_FILE,
    MODEL_DIR,
    is_run,
)
from repmix.core.errors import ArtifactError, ConfigError, InputError


def run_evaluations(
    model: Any,
    cfg: LocatedConfig,
    specs: list[EvaluationSpec],
    *,
    run_dir: str | Path | None = None,
) -> dict[str, float]:
    """Evaluate ``model`` with every spec; returns flat metrics and calls ``repmix_evaluate_end``.

    Datasets are built and loaded once per (data block, split), however many
    evaluators read them. The model is put in eval mode and restored after.
    """
    import torch

    from repmix.registry.hooks import get_hooks

    metrics: dict[str, float] = {}
    loaded: dict[tuple[str, str | None], Any] = {}
    was_training = model.training
    model.eval()
    try:
        for spec in specs:
            key = (spec.dataset.where, spec.split)
            if key not in loaded:
                dataset = instantiate_component(cfg, spec.dataset)
                loaded[key] = dataset.load(spec.split)
            examples = loaded[key]
            if len(examples) == 0:
                raise InputError(
                    f"{spec.where}: the {spec.split or 'default'} split of {spec.dataset.where} "
                    f"({spec.dataset.type_name}) has no examples to evaluate on"
                )
            evaluator = instantiate_component(cfg, spec.evaluator)
            with torch.no_grad():
                result = evaluator.evaluate(model, examples)
            for name, value in result.items():
                metrics[f"{spec.name}/{name}" if len(specs) > 1 else str(name)] = float(value)
    finally:
        model.train(was_training)
    get_hooks().repmix_evaluate_end(metrics=dict(metrics), run_dir=None if run_dir is None else str(run_dir))
    return metrics


def metrics_table(metrics: dict[str, float]) -> str:
    """A markdown table of metrics (``(none)`` when empty)."""
    if not metrics:
        return "_(no metrics: the config has no evaluate block)_\n"
    rows = ["| metric | value |", "| --- | ---: |"]
    rows += [f"| {name} | {value:.6g} |" for name, value in metrics.items()]
    return "\n".join(rows) + "\n"


def describe_specs(specs: list[EvaluationSpec], cfg: LocatedConfig) -> str:
    """One markdown bullet per evaluator: its type, data block and split."""
    lines = []
    for s in specs:
        block = cfg.get(s.dataset.path) or {}
        where = f", path {block.get('path')}" if isinstance(block, dict) and block.get("path") else ""
        lines.append(
            f"- `{s.name}`: evaluator `{s.evaluator.entry.qualified_name}` on data "
            f"`{s.dataset.entry.qualified_name}`{where}, split `{s.split or '(default)'}`"
        )
    return "\n".join(lines) + "\n"


def apply_data_args(cfg: LocatedConfig, data_args: list[str]) -> LocatedConfig:
    """Apply ``repmix evaluate --data`` to a config, returning a modified copy.

    Each argument is either a YAML file holding a dataset block (or a mapping
    with a ``data:`` block), which replaces the data of every evaluator, or a
    ``KEY=VALUE`` override applied to every data block evaluators read.
    """
    from repmix.core.config import parse_yaml

    out = cfg.copy()
    for arg in data_args:
        if "=" in arg and not Path(arg).exists():
            targets = [("data",)] if "data" in out.data else []
            targets += [
                path + ("data",) for path, block in evaluate_blocks(out) if isinstance(block, dict) and "data" in block
            ]
            if not targets:
                raise InputError("--data KEY=VALUE needs a data block to modify; the config has none")
            apply_overrides(out, [f"{dotted(t)}.{arg}" for t in targets])
            continue
        p = Path(arg)
        if not p.is_file():
            raise InputError(f"--data {arg!r} is neither a dataset YAML file nor KEY=VALUE")
        try:
            block, lines = parse_yaml(p.read_text(encoding="utf-8"), str(p))
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read --data file {arg!r}: {exc}") from None
        if isinstance(block, dict) and isinstance(block.get("data"), dict):
            block = block["data"]
            lines = {k[1:]: v for k, v in lines.items() if k[:1] == ("data",)}
        if not isinstance(block, dict) or "type" not in block:
            raise InputError(f"--data file {arg!r} must hold a dataset block with 'type:' (or a 'data:' block)")
        out.data["data"] = block
        out.lines.update({("data", *k): v for k, v in lines.items()})
        for _, eblock in evaluate_blocks(out):
            if isinstance(eblock, dict):
                eblock.pop("data", None)
    return out


def write_evaluation(
    out_dir: Path,
    metrics: dict[str, float],
    *,
    source: str,
    cfg: LocatedConfig,
    specs: list[EvaluationSpec],
    changes: list[str] | None = None,
) -> None:
    """Write ``metrics.json`` and ``evaluation.md`` into ``out_dir`` (atomically).

    ``changes`` lists the command-line overrides and ``--data`` arguments, if any.
    """
    from repmix.core.artifacts import atomic_write_text

    changed = "".join(f"- changed: `{c}`\n" for c in changes or [])
    text = (
        "# Evaluation\n\n"
        f"- model: `{source}`\n"
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S')}\n" + changed + "\n"
        "## Data\n\n" + describe_specs(specs, cfg) + "\n"
        "## Metrics\n\n" + metrics_table(metrics)
    )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out_dir / EVALUATION_REPORT, text)
        atomic_write_text(out_dir / METRICS_FILE, json.dumps(metrics, indent=2) + "\n")
    except OSError as exc:
        raise ArtifactError(f"cannot write evaluation results to {str(out_dir)!r}: {exc.strerror or exc}") from None


def _evaluations_or_error(cfg: LocatedConfig, data_args: list[str]) -> list[Any]:
    """Plan the evaluate blocks (after ``--data``) before any weights are loaded."""
    specs = plan_evaluations(apply_data_args(cfg, data_args) if data_args else cfg)
    if not specs:
        raise ConfigError(
            "nothing to evaluate: the config has no evaluate block",
            path="evaluate",
            hint="add one, e.g. as overrides: evaluate.type=sts evaluate.split=dev",
        )
    return specs


def evaluate_source(
    source: str,
    overrides: list[str] | None = None,
    data_args: list[str] | None = None,
    output: str | None = None,
    device: str = "cpu",
) -> tuple[dict[str, float], Path | None]:
    """``repmix evaluate``: evaluate a run directory, a saved model or a config.

    Returns the metrics and the directory they were written to (``None`` when
    nothing was written: a config or saved model without ``-o``). A run
    directory gets ``metrics.json`` and ``evaluation.md`` itself, unless
    ``--data`` or overrides change what is evaluated: those results go to
    ``evaluations/<timestamp>/`` inside the run, so the run's own metrics stay.
    """
    from repmix.core.artifacts import find_model_dir, load_model

    overrides = list(overrides or [])
    data_args = list(data_args or [])
    src = Path(source)
    out_dir: Path | None = Path(output) if output else None
    if src.is_dir():
        if is_run(src) and not (src / MODEL_DIR / "repmix.json").is_file():
            raise ArtifactError(
                f"run {str(src)!r} has not finished training: it has no saved model yet",
                hint=f"resume it first: repmix train --resume {source}",
            )
        model_dir = find_model_dir(src)
        cfg_file = src / CONFIG_FILE if is_run(src) else model_dir / CONFIG_FILE
        cfg = load_config(cfg_file, overrides)
        for text in overrides:
            if text.strip().startswith("model.") or text.strip().startswith("model="):
                raise ConfigError(
                    f"override {text!r} changes the model, which is loaded from {str(model_dir)!r}",
                    hint="overrides of a saved model may change evaluate.* and data.* keys only",
                )
        specs = _evaluations_or_error(cfg, data_args)
        model = load_model(model_dir, device=device)
        if out_dir is None and is_run(src):
            out_dir = src
            if overrides or data_args:
                stamp = src / EVALUATIONS_DIR / time.strftime("%Y%m%d-%H%M%S")
                out_dir, k = stamp, 1
                while out_dir.exists():
                    k += 1
                    out_dir = stamp.with_name(f"{stamp.name}-{k}")
    else:
        from repmix.core.assembly import build_model, plan_model

        cfg = load_config(source, overrides)
        plan = plan_model(cfg)
        specs = _evaluations_or_error(cfg, data_args)
        model = build_model(plan).to(device)
    if data_args:
        cfg = apply_data_args(cfg, data_args)
    metrics = run_evaluations(model, cfg, specs, run_dir=out_dir)
    if out_dir is not None:
        write_evaluation(
            out_dir, metrics, source=source, cfg=cfg, specs=specs,
            changes=overrides + [f"--data {d}" for d in data_args],
        )
    return metrics, out_dir
