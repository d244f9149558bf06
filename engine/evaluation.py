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
from repmix.engine.settings import EvaluationSpec, data_runtime, evaluate_blocks, plan_evaluations
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
    progress: bool = False,
    skipped: dict[str, dict[str, Any]] | None = None,
    sizes: dict[str, int] | None = None,
) -> dict[str, float]:
    """Evaluate ``model`` with every spec; returns flat metrics and calls ``repmix_evaluate_end``.

    Datasets are built and loaded once per (data block, split), however many
    evaluators read them. The model is put in eval mode and restored after.
    ``progress`` shows a bar (stderr) over the data loads and evaluators;
    ``skipped`` (a dict) receives the rows each data split skipped, ``sizes``
    the number of examples each block evaluated (key: its metric prefix, "" for one block).
    """
    import sys

    import torch
    from tqdm.auto import tqdm

    from repmix.registry.hooks import get_hooks

    metrics: dict[str, float] = {}
    loaded: dict[tuple[str, str | None], Any] = {}
    was_training = model.training
    model.eval()
    keys = {(spec.dataset.where, spec.split) for spec in specs}
    bar = tqdm(total=len(keys) + len(specs), desc="evaluate", unit="task", disable=not progress,
               dynamic_ncols=True, file=sys.stderr)
    try:
        for spec in specs:
            key = (spec.dataset.where, spec.split)
            if key not in loaded:
                bar.set_postfix_str(f"loading {spec.dataset.type_name} {spec.split or ''}".rstrip())
                dataset = instantiate_component(cfg, spec.dataset, data_runtime(model))
                loaded[key] = dataset.load(spec.split)
                bar.update(1)
                info = skipped_rows(loaded[key])
                if info is not None and skipped is not None:
                    skipped[f"{spec.dataset.where} ({spec.dataset.type_name}, split {spec.split or 'default'})"] = info
            examples = loaded[key]
            if len(examples) == 0:
                raise InputError(
                    f"{spec.where}: the {spec.split or 'default'} split of {spec.dataset.where} "
                    f"({spec.dataset.type_name}) has no examples to evaluate on"
                )
            evaluator = instantiate_component(cfg, spec.evaluator)
            bar.set_postfix_str(f"{spec.name} on {len(examples)} examples")
            if sizes is not None:
                sizes[spec.name if len(specs) > 1 else ""] = len(examples)
            with torch.no_grad():
                result = evaluator.evaluate(model, examples)
            bar.update(1)
            for name, value in result.items():
                metrics[f"{spec.name}/{name}" if len(specs) > 1 else str(name)] = float(value)
    finally:
        bar.close()
        model.train(was_training)
    get_hooks().repmix_evaluate_end(metrics=dict(metrics), run_dir=None if run_dir is None else str(run_dir))
    return metrics


def skipped_rows(examples: Any) -> dict[str, Any] | None:
    """How many rows a dataset skipped (``on_error: skip`` or its own filter) and its notes; ``None`` if none."""
    count = int(getattr(examples, "skipped", 0) or 0)
    if not count:
        return None
    return {"rows": count, "notes": [str(n) for n in getattr(examples, "notes", [])][:8]}


def skipped_markdown(skipped: dict[str, dict[str, Any]]) -> str:
    """A markdown list of the rows each data split skipped (empty when none)."""
    lines = []
    for label, info in skipped.items():
        lines.append(f"- {label}: {info['rows']} row(s) skipped")
        lines += [f"  - {n}" for n in info["notes"]]
    return "\n".join(lines) + ("\n" if lines else "")


def print_skipped(skipped: dict[str, dict[str, Any]]) -> None:
    """Say on stdout which rows were skipped, with the first reasons and line numbers."""
    for label, info in skipped.items():
        print(f"note: {label}: skipped {info['rows']} row(s)")
        for n in info["notes"][:4]:
            print(f"  {n}")


def check_items(model: Any, examples: Any, towers: list[str], what: str) -> None:
    """Every item a tower will read must pass its tokenizer's ``check_item``: fail up front, naming file and line.

    Only tokenizers that override :meth:`Tokenizer.check_item` (e.g. a SMILES
    parser) are asked; the base check (is it a string) is cheap and done anyway.
    """
    lines = None
    source = examples.extras.get("source_lines") if isinstance(getattr(examples, "extras", None), dict) else None
    if isinstance(source, tuple) and len(source) == 2 and len(source[1]) == len(examples):
        lines = source
    for tower in towers:
        tokenizer = model.tower(tower).tokenizer
        for i, item in enumerate(examples.columns[tower]):
            problem = tokenizer.check_item(item)
            if problem:
                where = f"{lines[0]}:{lines[1][i]}" if lines else f"example {i + 1}"
                raise InputError(
                    f"{what}: {where}: the {tower!r} tower cannot read {str(item)[:80]!r}: {problem}",
                    hint="fix or remove the row (or set on_error: skip in the data block, where the dataset has it)",
                )


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
        from repmix.core.config import read_config_text

        block, lines = parse_yaml(read_config_text(p, what="--data"), str(p))
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
    skipped: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Write ``metrics.json`` and ``evaluation.md`` into ``out_dir`` (atomically).

    ``changes`` lists the command-line overrides and ``--data`` arguments, if
    any; ``skipped`` the rows each data split skipped (also in ``metrics.json``
    under ``skipped_rows``, which readers of numeric metrics ignore).
    """
    from repmix.core.artifacts import atomic_write_text

    changed = "".join(f"- changed: `{c}`\n" for c in changes or [])
    text = (
        "# Evaluation\n\n"
        f"- model: `{source}`\n"
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S')}\n" + changed + "\n"
        "## Data\n\n" + describe_specs(specs, cfg) + "\n"
        "## Metrics\n\n" + metrics_table(metrics)
        + (f"\n## Skipped rows\n\n{skipped_markdown(skipped)}" if skipped else "")
    )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out_dir / EVALUATION_REPORT, text)
        record: dict[str, Any] = {**metrics, "skipped_rows": skipped} if skipped else dict(metrics)
        atomic_write_text(out_dir / METRICS_FILE, json.dumps(record, indent=2) + "\n")
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
    *,
    progress: bool = False,
    allow_mismatch: bool | None = None,
) -> tuple[dict[str, float], Path | None]:
    """``repmix evaluate``: evaluate a run directory, a saved model or a config.

    Returns the metrics and the directory they were written to (``None`` when
    nothing was written: a config or saved model without ``-o``). A run
    directory gets ``metrics.json`` and ``evaluation.md`` itself, unless
    ``--data`` or overrides change what is evaluated: those results go to
    ``evaluations/<timestamp>/`` inside the run, so the run's own metrics stay.
    The output directory is locked while it is written (one writer at a time).
    """
    from repmix.core.artifacts import find_model_dir, load_model

    overrides = list(overrides or [])
    data_args = list(data_args or [])
    src = Path(source)
    out_dir: Path | None = Path(output) if output else None
    if not src.exists():
        raise InputError(
            f"{source!r} does not exist",
            hint="repmix evaluate takes a run directory, a saved-model directory or a config file",
        )
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
        model = load_model(model_dir, device=device, allow_mismatch=allow_mismatch)
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
    skipped: dict[str, dict[str, Any]] = {}
    if out_dir is None:
        metrics = run_evaluations(model, cfg, specs, run_dir=None, progress=progress, skipped=skipped)
        print_skipped(skipped)
        return metrics, None
    from repmix.engine.runs import locked_dir

    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output {str(out_dir)!r} is a file, not a directory")
    with locked_dir(out_dir, what="evaluation output directory" if out_dir != src else "run directory"):
        metrics = run_evaluations(model, cfg, specs, run_dir=out_dir, progress=progress, skipped=skipped)
        print_skipped(skipped)
        write_evaluation(
            out_dir, metrics, source=source, cfg=cfg, specs=specs,
            changes=overrides + [f"--data {d}" for d in data_args], skipped=skipped,
        )
    return metrics, out_dir
