"""Hooks of repmix-base-lcm: ``repmix base-lcm scifact`` (the SciFact next-sentence-embedding experiment)."""

from __future__ import annotations

import argparse

from repmix.sdk import hookimpl


@hookimpl
def repmix_add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``repmix base-lcm``."""
    p = subparsers.add_parser(
        "base-lcm",
        help="Base-LCM next-sentence-embedding prediction on SciFact abstracts vs copy-last-sentence",
        description="Split SciFact abstracts into sentences, embed them with all-MiniLM-L6-v2, train a Base-LCM on "
        "the training documents and report held-out MSE and cosine of the predicted next sentence embedding against "
        "the copy-last-sentence and context-mean baselines.",
    )
    sub = p.add_subparsers(dest="action", required=True)
    s = sub.add_parser("scifact", help="run the SciFact experiment")
    s.add_argument("--corpus", default="../shared/data/scifact/corpus.jsonl")
    s.add_argument("--docs", type=int, default=1500, help="first N abstracts of the corpus (file order)")
    s.add_argument("--holdout", type=float, default=0.2, help="fraction of documents held out (by id hash)")
    s.add_argument("--epochs", type=int, default=20)
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--lr", type=float, default=5e-4)
    s.add_argument("--model-dim", type=int, default=256)
    s.add_argument("--layers", type=int, default=2)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--cache", default=None, help="npz file caching the sentence embeddings (default: none)")
    s.add_argument("-o", "--output", help="also write the result table as markdown to this file")
    s.set_defaults(func=run_scifact)


def run_scifact(args: argparse.Namespace) -> int:
    from repmix_base_lcm.experiment import scifact_experiment

    from pathlib import Path

    table = scifact_experiment(args)
    print(table, end="")
    if args.output:
        Path(args.output).write_text(table, encoding="utf-8")
    return 0
