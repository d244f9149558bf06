"""``repmix train`` and ``repmix evaluate``."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from repmix.core.errors import InputError
from repmix.registry.hooks import hookimpl


@hookimpl
def repmix_add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the training and evaluation commands (a ``repmix_add_commands`` hook, like any plugin's)."""
    sub = subparsers
    t = sub.add_parser(
        "train",
        help="train a model from a config into a run directory, or resume a run",
        usage="repmix train CONFIG [KEY=VALUE ...] [-o RUN_DIR] [--force] [--no-progress]\n"
        "       repmix train --resume RUN_DIR [--no-progress]",
        description="Train the model a config describes. The run directory receives the resolved config, "
        "plugins.lock, metrics.jsonl, checkpoints, the final model (model/), a loss plot, report.md and, "
        "last, metrics.json. Multi-process: torchrun --nproc_per_node N -m repmix train CONFIG.",
        epilog="examples:\n"
        "  repmix train examples/sts-minilm.yaml -o runs/stsb train.lr=3e-5\n"
        "  repmix train --resume runs/stsb\n"
        "  torchrun --nproc_per_node 2 -m repmix train examples/sts-minilm.yaml -o runs/stsb-ddp",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument(
        "args",
        nargs="*",
        metavar="CONFIG [KEY=VALUE ...]",
        help="YAML config file, then dotted overrides such as train.lr=1e-4 "
        "(with --resume the config is optional: the run's own config.yaml is used)",
    )
    t.add_argument(
        "-o", "--output", metavar="RUN_DIR", default=None,
        help="run directory to create (default: runs/<config name>-<timestamp>)",
    )
    t.add_argument(
        "--resume", metavar="RUN_DIR", default=None,
        help="continue the run in RUN_DIR from its last checkpoint (its config must be unchanged)",
    )
    t.add_argument("--force", action="store_true", help="overwrite a run that already exists in the output directory")
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser(
        "evaluate",
        help="evaluate a run, a saved model or a config with its evaluate block(s)",
        description="Run the evaluate block(s) of a run's config on its final model and write metrics.json and "
        "evaluation.md into the run directory (with --data or overrides: into RUN_DIR/evaluations/<timestamp>/). "
        "SOURCE may also be a saved model or a config file (an untrained model); those write only with -o.",
        epilog="examples:\n"
        "  repmix evaluate runs/stsb\n"
        "  repmix evaluate runs/stsb --data split=test\n"
        "  repmix evaluate runs/stsb --data other-data.yaml\n"
        "  repmix evaluate examples/sts-minilm.yaml -o runs/stsb-untrained",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("source", metavar="RUN_DIR|CONFIG", help="run directory, saved-model directory or YAML config")
    e.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE",
        help="dotted overrides of the config (for a run or saved model: evaluate.* and data.* keys only)",
    )
    e.add_argument(
        "--data", nargs="+", action="extend", default=[], metavar="DATASET_YAML|KEY=VALUE",
        help="evaluate on other data: a YAML file with a dataset block (replaces every evaluator's data), "
        "or KEY=VALUE changes to the data block(s), e.g. --data split=test",
    )
    e.add_argument("-o", "--output", metavar="DIR", default=None, help="directory for metrics.json and evaluation.md")
    e.add_argument("--device", default="cpu", help="torch device to evaluate on (default cpu)")
    e.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    e.add_argument("--allow-plugin-mismatch", action="store_true",
                   help="load a saved model whose plugin versions differ from its plugins.lock (or that has none)")
    e.set_defaults(func=cmd_evaluate)


def _split_args(args: list[str]) -> tuple[str | None, list[str]]:
    """The config file (first argument without '=') and the overrides."""
    config: str | None = None
    overrides: list[str] = []
    for a in args:
        if config is None and not overrides and "=" not in a:
            config = a
        elif "=" in a:
            overrides.append(a)
        else:
            raise InputError(f"unexpected argument {a!r}: give one CONFIG, then KEY=VALUE overrides")
    return config, overrides


def default_run_dir(config: str) -> Path:
    """``runs/<config stem>-<timestamp>`` (with a suffix when that exists already)."""
    stem = Path(config).stem or "run"
    base = Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    candidate, k = base, 1
    while candidate.exists():
        k += 1
        candidate = base.with_name(f"{base.name}-{k}")
    return candidate


def cmd_train(args: argparse.Namespace) -> int:
    """Train (or resume) a run; print where it went and its final metrics."""
    from repmix.core.config import load_config
    from repmix.engine.distributed import torchrun_world_size
    from repmix.engine.runs import CONFIG_FILE, is_run
    from repmix.engine.training import train_run

    config, overrides = _split_args(list(args.args))
    if args.resume:
        run_dir = Path(args.resume)
        if args.output and Path(args.output) != run_dir:
            raise InputError("--resume continues the run where it is; do not combine it with -o")
        if args.force:
            raise InputError("--force starts a run over; it cannot be combined with --resume")
        if config is None:
            if not is_run(run_dir):
                from repmix.core.errors import ArtifactError

                raise ArtifactError(
                    f"cannot resume {args.resume!r}: it is not a repmix run directory",
                    hint="pass the directory that repmix train created",
                )
            cfg = load_config(run_dir / CONFIG_FILE, overrides)
        else:
            cfg = load_config(config, overrides)
        metrics = train_run(cfg, run_dir, resume=True, progress=not args.no_progress, force=False)
    else:
        if config is None:
            raise InputError("repmix train needs a CONFIG file (or --resume RUN_DIR)")
        cfg = load_config(config, overrides)
        if not args.output and torchrun_world_size() > 1:
            raise InputError(
                "under torchrun, give the run directory with -o RUN_DIR",
                hint="a default name holds a timestamp, on which separate processes need not agree",
            )
        run_dir = Path(args.output) if args.output else default_run_dir(config)
        metrics = train_run(cfg, run_dir, resume=False, progress=not args.no_progress, force=args.force)
    if torchrun_world_size() > 1 and os.environ.get("RANK", "0") != "0":
        return 0  # rank 0 reports
    print(f"run finished: {run_dir}")
    for name, value in metrics.items():
        print(f"  {name}: {value:.6g}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a run, saved model or config; print the metrics."""
    from repmix.engine.evaluation import evaluate_source

    from repmix.cli.model_cmds import check_device

    check_device(args.device)
    metrics, out_dir = evaluate_source(
        args.source, list(args.overrides), list(args.data), args.output, device=args.device,
        progress=not args.no_progress, allow_mismatch=args.allow_plugin_mismatch or None,
    )
    for name, value in metrics.items():
        print(f"{name}: {value:.6g}")
    if out_dir is not None:
        print(f"wrote {out_dir / 'metrics.json'} and {out_dir / 'evaluation.md'}")
    return 0
