"""``repmix check``, ``repmix build`` and ``repmix encode``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from repmix.core.errors import InputError
from repmix.registry.hooks import hookimpl


@hookimpl
def repmix_add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the model commands (a ``repmix_add_commands`` hook, like any plugin's)."""
    sub = subparsers
    c = sub.add_parser(
        "check",
        help="validate a config and its pipeline without loading weights",
        description="Resolve every component, validate every block against its component's config, "
        "and check that the pipeline can work (granularities, per-layer states, dimensions). "
        "The train:, data: and evaluate: blocks are validated as repmix train would, without reading data. "
        "An ablation grid file (base:, grid:, seeds:) is checked variant by variant, as "
        "repmix ablate --dry-run does. Nothing is built or computed.",
    )
    c.add_argument("config", help="YAML config file (or ablation grid file)")
    c.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides, e.g. train.lr=1e-4")
    c.set_defaults(func=cmd_check)

    b = sub.add_parser(
        "build",
        help="assemble a model from a config and save it (no training)",
        description="Build the model a config describes (pretrained weights where components load them) "
        "and save it as a directory: config.yaml, model.safetensors, plugins.lock, repmix.json.",
    )
    b.add_argument("config", help="YAML config file")
    b.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides")
    b.add_argument("-o", "--output", required=True, help="directory to save the model to")
    b.set_defaults(func=cmd_build)

    e = sub.add_parser(
        "encode",
        help="write one embedding per input line to a .npy file",
        description="Encode a text file (one item per line) with a tower of a model and write a float32 "
        ".npy array with one row per line. SOURCE is a config file, a saved model or a run directory.",
    )
    e.add_argument("source", metavar="CONFIG_OR_SAVED_MODEL", help="YAML config, saved-model or run directory")
    e.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides (config source only)")
    e.add_argument("--tower", required=True, help="tower to encode with (e.g. text)")
    e.add_argument("--input", required=True, help="input file, one item per line")
    e.add_argument("--output", required=True, help="output .npy file")
    e.add_argument("--granularity", default=None, help="pooled granularity to write (default: the tower's last pooler)")
    e.add_argument("--batch-size", type=int, default=32, help="items per forward pass (default 32)")
    e.add_argument("--device", default="cpu", help="torch device (default cpu)")
    e.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    e.add_argument("--allow-plugin-mismatch", action="store_true",
                   help="load a saved model whose plugin versions differ from its plugins.lock (or that has none)")
    e.set_defaults(func=cmd_encode)


def cmd_check(args: argparse.Namespace) -> int:
    """Validate a config; print a summary of the pipeline."""
    from repmix.core.assembly import plan_model
    from repmix.core.config import load_config

    if _is_grid_file(args.config):
        return _check_grid(args.config, args.overrides)
    cfg = load_config(args.config, args.overrides)
    plan = plan_model(cfg)
    # the blocks repmix train / evaluate read: validated (components resolved, keys checked), data not read
    from repmix.engine.settings import plan_evaluations, plan_training_data, train_config

    if "train" in cfg.data:
        train_config(cfg)
    data = plan_training_data(cfg) if "data" in cfg.data else None
    specs = plan_evaluations(cfg)
    from repmix.engine.generation import plan_generation

    generation = plan_generation(cfg, plan)
    print(f"{args.config}: OK")
    for name, tower in plan.towers.items():
        if tower.shared_with:
            print(f"  tower {name}: shares the components of {tower.shared_with}")
            continue
        assert tower.tokenizer is not None and tower.encoder is not None
        grans = ", ".join(f"{g} ({s.shape}, dim {s.dim})" for g, s in tower.granularities.items())
        print(f"  tower {name}: {tower.tokenizer.entry.qualified_name} -> {tower.encoder.entry.qualified_name}"
              + (f" -> {', '.join(p.entry.qualified_name for p in tower.poolers.values())}" if tower.poolers else ""))
        print(f"    granularities: {grans}")
        if tower.corruptor is not None:
            print(f"    corruption (training only): {tower.corruptor.entry.qualified_name}")
    for name, a in plan.alignments.items():
        (ta, ga), (tb, gb) = a.between
        print(f"  alignment {name}: {a.component.entry.qualified_name} between {ta}.{ga} and {tb}.{gb}")
    for lp in plan.losses:
        reads = f"on {', '.join(lp.on)}" if lp.on else "on tower outputs"
        print(f"  loss {lp.component.entry.qualified_name} {reads} (weight {lp.weight:g})")
    if data is not None:
        print(f"  data {data.entry.qualified_name}")
    for s in specs:
        split = f", split {s.split}" if s.split else ""
        print(f"  evaluate {s.name}: {s.evaluator.entry.qualified_name} on data {s.dataset.entry.qualified_name}{split}")
    if generation is not None:
        print(f"  generate: {generation.entry.qualified_name}")
    return 0


def _is_grid_file(path: str) -> bool:
    """True for an ablation grid file: a mapping with ``base:`` and no ``model:`` (unreadable: False)."""
    from repmix.core.config import parse_yaml, read_config_text
    from repmix.core.errors import RepmixError

    try:
        data, _ = parse_yaml(read_config_text(path), path)
    except (OSError, UnicodeDecodeError, RepmixError):
        return False  # load_config reports the problem
    return isinstance(data, dict) and "base" in data and "model" not in data


def _check_grid(path: str, overrides: list[str]) -> int:
    """``repmix check GRID.yaml``: validate every variant, as ``repmix ablate --dry-run`` does."""
    from repmix.engine import ablate as ab

    ablation = ab.prepare(path, overrides)
    seeds = len({v.seed for v in ablation.variants})
    print(
        f"{path}: OK (ablation grid on {ablation.spec.base}: {len(ablation.groups)} combination(s) x "
        f"{seeds} seed(s) = {len(ablation.variants)} run(s), all valid)"
    )
    for v in ablation.variants:
        print(f"  {v.name}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    """Build a model from a config and save it."""
    from repmix.core.artifacts import save_model
    from repmix.core.loading import load

    model = load(args.config, args.overrides)
    out = save_model(model, args.output)
    print(f"saved model to {out}")
    return 0


def read_lines(path: str) -> list[str]:
    """Read an input file, one item per line (line endings stripped); clear errors when missing or empty."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"input file {path!r} does not exist")
    if p.is_dir():
        raise InputError(f"input {path!r} is a directory, not a file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"input file {path!r} is not UTF-8 text (byte {exc.start})") from None
    lines = text.splitlines()
    if not lines:
        raise InputError(f"input file {path!r} is empty: expected one item per line")
    return lines


def check_device(name: str) -> None:
    """Refuse a torch device name that is malformed or not available here, before any work."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise InputError(f"--device {name!r} is not a torch device", hint="for example: cpu, cuda, cuda:1, mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {name!r}: no CUDA GPU is available to this torch", hint="use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(f"--device {name!r}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    elif device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise InputError(f"--device {name!r}: MPS is not available here", hint="use --device cpu")


def cmd_encode(args: argparse.Namespace) -> int:
    """Encode lines of a file into a float32 .npy array."""
    import io

    import numpy as np

    from repmix.core.artifacts import atomic_write_bytes
    from repmix.core.loading import load

    if args.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {args.batch_size}")
    out_path = Path(args.output)
    if out_path.suffix != ".npy":
        raise InputError(f"--output must end in .npy, got {args.output!r}")
    if out_path.is_dir():
        raise InputError(f"--output {args.output!r} is a directory; give the path of a .npy file")
    if out_path.parent.exists() and not out_path.parent.is_dir():
        raise InputError(f"--output {args.output!r}: {str(out_path.parent)!r} is not a directory")
    check_device(args.device)
    items = read_lines(args.input)
    model = load(args.source, args.overrides, args.device, allow_mismatch=args.allow_plugin_mismatch or None)
    tokenizer = model.tower(args.tower).tokenizer
    for lineno, item in enumerate(items, 1):
        problem = tokenizer.check_item(item)
        if problem:
            raise InputError(f"{args.input}:{lineno}: cannot encode this item: {problem}")
    vectors = model.encode(
        items, tower=args.tower, granularity=args.granularity, batch_size=args.batch_size,
        progress=not args.no_progress,
    ).astype(np.float32, copy=False)
    buf = io.BytesIO()
    np.save(buf, vectors)
    atomic_write_bytes(out_path, buf.getvalue())
    print(f"wrote {vectors.shape[0]} x {vectors.shape[1]} float32 to {out_path}")
    return 0
