"""``repmix ablate`` and ``repmix runs compare``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from repmix.core.errors import InputError
from repmix.registry.hooks import hookimpl


@hookimpl
def repmix_add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ablate`` and ``runs`` commands (a ``repmix_add_commands`` hook, like any plugin's)."""
    sub = subparsers
    a = sub.add_parser(
        "ablate",
        help="train every variant of a grid of config overrides and compare them",
        usage="repmix ablate GRID.yaml [KEY=VALUE ...] [-j N] [-o OUT_DIR] [--dry-run]",
        description="Expand GRID.yaml (a base config, a grid: of dotted keys -> value lists, an optional zip: "
        "of keys varied together, and seeds:) into variants, validate all of them, then train each with "
        "'repmix train' as a separate process. Finished variants are skipped and interrupted ones resumed "
        "when run again. Writes OUT_DIR/variants/<variant>/ run directories, results.csv, results.md and "
        "results.png. See docs/ablations.md.",
        epilog="KEY=VALUE overrides must directly follow GRID.yaml, e.g. "
        "'repmix ablate grid.yaml train.epochs=1 --jobs 2'. Exit status: 0 when every variant finished, "
        "1 when any failed, 2 for an invalid grid or variant (nothing is run then).",
    )
    a.add_argument("grid", metavar="GRID.yaml", help="the ablation file (base:, grid:, zip:, seeds:, name:)")
    a.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE",
        help="dotted overrides applied to the base config of every variant (e.g. train.epochs=1); "
        "a key the grid varies cannot be overridden",
    )
    a.add_argument(
        "-j", "--jobs", type=int, default=1, metavar="N",
        help="variants trained at the same time, each in its own process with cores/N torch threads (default 1)",
    )
    a.add_argument(
        "-o", "--output", metavar="OUT_DIR", default=None,
        help="output directory (default: runs/ablate-<grid file name without .yaml>, without a doubled 'ablate-')",
    )
    a.add_argument(
        "--dry-run", action="store_true",
        help="validate every variant and list what would be trained, resumed or skipped; write nothing",
    )
    a.set_defaults(func=cmd_ablate)

    r = sub.add_parser(
        "runs",
        help="inspect and compare run directories",
        description="Commands that read run directories written by 'repmix train' or 'repmix ablate'.",
    )
    rsub = r.add_subparsers(dest="runs_command", metavar="SUBCOMMAND")
    c = rsub.add_parser(
        "compare",
        help="tabulate runs side by side: status, differing config keys, final metrics",
        description="Print one row per run: its status (finished, unfinished, not started), the config keys "
        "whose values differ between the runs, and the metrics of metrics.json. A directory holding runs "
        "(such as an ablation's output directory) stands for all of them. In Markdown the best value of each "
        "metric is bold (higher is better, lower for metrics named *rank* or *loss*).",
    )
    c.add_argument("dirs", nargs="+", metavar="DIR", help="run directories (or directories holding runs)")
    c.add_argument(
        "--metrics", default=None, metavar="M1,M2",
        help="comma-separated metrics to show, in this order (default: every metric of any run)",
    )
    c.add_argument(
        "--format", choices=("md", "csv"), default="md",
        help="md: a Markdown table (default); csv: comma-separated values with full-precision metrics",
    )
    c.set_defaults(func=cmd_runs_compare)
    r.set_defaults(func=_print_help(r))


def _print_help(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """A command function that prints ``parser``'s help and fails (a sub-command is required)."""

    def show(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    return show


def _echo(text: str) -> None:
    print(text, flush=True)


def cmd_ablate(args: argparse.Namespace) -> int:
    """Validate every variant of a grid, then train them and write the results."""
    from repmix.engine import ablate as ab

    if args.jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {args.jobs}")
    ablation = ab.prepare(args.grid, args.overrides)
    out = Path(args.output) if args.output else ab.default_out_dir(args.grid)
    seeds = len({v.seed for v in ablation.variants})
    _echo(
        f"ablation {ablation.spec.name!r}: {len(ablation.groups)} combination(s) x {seeds} seed(s) = "
        f"{len(ablation.variants)} run(s), all valid; output: {out}"
    )
    if args.dry_run:
        ab.check_previous(ablation, out)
        for line in ab.describe(ablation, out):
            _echo(line)
        _echo("dry run: nothing was trained or written")
        return 0
    jobs = min(args.jobs, len(ablation.variants))
    threads = ab.job_env(jobs)["OMP_NUM_THREADS"]
    _echo(f"{jobs} job(s) at a time, {threads} torch thread(s) each; logs in {out / ab.LOGS_DIR}")
    if out.exists() and not out.is_dir():
        raise InputError(f"output {str(out)!r} is a file, not a directory")
    from repmix.engine.runs import locked_dir

    with locked_dir(out, what="ablation output directory"):  # one ablation per output directory
        outcomes = ab.run_ablation(ablation, out, jobs=args.jobs, echo=_echo)
        written = ab.write_results(ablation, out, outcomes)
    _echo("")
    _echo(written["md"].read_text(encoding="utf-8").rstrip("\n"))
    _echo("")
    _echo("wrote " + ", ".join(str(p) for p in written.values()))
    failed = [o for o in outcomes if o.status == "failed"]
    done = sum(1 for o in outcomes if o.status == "finished")
    skipped = sum(1 for o in outcomes if o.status == "skipped")
    _echo(f"{done} trained, {skipped} skipped (finished earlier), {len(failed)} failed")
    if failed:
        print(f"error: {len(failed)} of {len(outcomes)} variant(s) failed:", file=sys.stderr)
        for o in failed:
            print(f"  {o.variant.name}: {o.reason}\n    log: {o.log}", file=sys.stderr)
        print("  fix the cause and run the same command again: finished variants are skipped", file=sys.stderr)
        return 1
    return 0


def cmd_runs_compare(args: argparse.Namespace) -> int:
    """Print a comparison table of run directories."""
    from repmix.engine.compare import compare_runs, expand_run_dirs, read_run

    runs = [read_run(path, label) for path, label in expand_run_dirs(args.dirs)]
    sys.stdout.write(compare_runs(runs, args.metrics, args.format))
    return 0
