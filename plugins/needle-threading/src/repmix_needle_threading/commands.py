"""Hooks of repmix-needle-threading: ``repmix needle-threading generate`` (tasks as JSON lines)."""

from __future__ import annotations

import argparse

from repmix.sdk import hookimpl

TASK_NAMES = ("single_needle", "multi_needle", "conditional_needle", "single_thread", "multi_thread")


@hookimpl
def repmix_add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``repmix needle-threading``."""
    p = subparsers.add_parser(
        "needle-threading",
        help="generate Needle Threading tasks (UUID key-value haystacks) as JSON lines",
        description="Write one JSON object per task with the official dataset's fields (id, haystack, keys, values, "
        "question, context_length, num_kv_pairs, needle_depth, ...). Seed 0 reproduces the official haystack's first pair.",
    )
    p.add_argument("--task", choices=TASK_NAMES, default="single_needle")
    p.add_argument("--context-length", type=int, nargs="+", default=[2000], help="haystack sizes in characters")
    p.add_argument("--depth", type=float, nargs="+", default=[0.5], help="needle depths (single needle / thread start)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-needles", type=int, default=3)
    p.add_argument("--character", default="*")
    p.add_argument("--thread-length", type=int, default=3)
    p.add_argument("--direction", choices=("forward", "backward", "random"), default="forward")
    p.add_argument("--num-threads", type=int, default=2)
    p.add_argument("-o", "--output", default="-", help="JSON-lines file (default: standard output)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from repmix.sdk import InputError

    from repmix_needle_threading.generator import TaskError, generate

    records = []
    for length in args.context_length:
        for repeat in range(args.repeats):
            for depth in args.depth:
                try:
                    task = generate(args.task, length, seed=args.seed + repeat, repeat=repeat, depth=depth,
                                    num_needles=args.num_needles, character=args.character,
                                    thread_length=args.thread_length, direction=args.direction,
                                    num_threads=args.num_threads)
                except TaskError as exc:
                    raise InputError(str(exc)) from None
                records.append(task.record())
    out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")  # noqa: SIM115
    try:
        for r in records:
            out.write(json.dumps(r, ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if out is not sys.stdout:
        print(f"wrote {len(records)} tasks to {args.output}", file=sys.stderr)
    return 0
