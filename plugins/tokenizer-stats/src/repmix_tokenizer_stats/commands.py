"""Hooks of repmix-tokenizer-stats: ``repmix tokenizer-stats markov`` (the closed-form Markov diagnostic)."""

from __future__ import annotations

import argparse

from repmix.sdk import hookimpl


@hookimpl
def repmix_add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``repmix tokenizer-stats``."""
    p = subparsers.add_parser(
        "tokenizer-stats",
        help="Markov-source tokenization diagnostic (Rajaraman et al.): unigram-over-BPE bits per character",
        description="Sample the binary switching chain P(1|0)=p, P(0|1)=q, learn BPE dictionaries of growing size on "
        "it and report held-out unigram-over-tokens bits per character against H(pi) and the entropy rate. "
        "Per-tokenizer corpus statistics run as the tokenizer-stats evaluator (repmix evaluate CONFIG).",
    )
    sub = p.add_subparsers(dest="action", required=True)
    m = sub.add_parser("markov", help="the Markov-source table")
    m.add_argument("--p", type=float, default=0.1)
    m.add_argument("--q", type=float, default=0.1)
    m.add_argument("--train-chars", type=int, default=200_000)
    m.add_argument("--test-chars", type=int, default=50_000)
    m.add_argument("--merges", type=int, nargs="+", default=[0, 1, 3, 7, 15, 31, 63, 127])
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("-o", "--output", help="also write the table as markdown to this file")
    m.set_defaults(func=run_markov)


def markov_table(args: argparse.Namespace) -> str:
    from repmix_tokenizer_stats import markov

    h_pi, h_inf = markov.unigram_entropy(args.p, args.q), markov.entropy_rate(args.p, args.q)
    rows = markov.diagnostic(args.p, args.q, train_chars=args.train_chars, test_chars=args.test_chars,
                             merges=args.merges, seed=args.seed)
    lines = [
        f"Switching chain p = {args.p}, q = {args.q}: H(pi) = {h_pi:.3f} bit, entropy rate H_inf = {h_inf:.3f} bit "
        f"(closed forms); {args.train_chars:,} training and {args.test_chars:,} held-out characters, seed {args.seed}.",
        "",
        "| BPE merges | vocabulary | chars / token | unigram bits / char (held out) | excess over H_inf |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(f"| {int(r['merges'])} | {int(r['vocab'])} | {r['chars_per_token']:.2f} | "
                     f"{r['bits_per_char']:.4f} | {r['bits_per_char'] - h_inf:+.4f} |")
    return "\n".join(lines) + "\n"


def run_markov(args: argparse.Namespace) -> int:
    from pathlib import Path

    from repmix.sdk import InputError

    if not (0 < args.p <= 1 and 0 < args.q <= 1):
        raise InputError(f"p and q must be in (0, 1], got p={args.p}, q={args.q}")
    if args.train_chars < 2 or args.test_chars < 1 or min(args.merges) < 0:
        raise InputError("--train-chars must be >= 2, --test-chars >= 1 and --merges >= 0")
    table = markov_table(args)
    print(table, end="")
    if args.output:
        Path(args.output).write_text(table, encoding="utf-8")
    return 0
