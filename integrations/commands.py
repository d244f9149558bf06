"""``repmix export-st``: the integrations' commands, added through the ``repmix_add_commands`` hook.

Registered with the command manager like every built-in command module
(import path ``repmix.integrations.commands``). sentence-transformers is
imported only when the command runs.
"""

from __future__ import annotations

import argparse

from repmix.registry.hooks import hookimpl


@hookimpl
def repmix_add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``export-st``."""
    p = subparsers.add_parser(
        "export-st",
        help="export a model of std components as a sentence-transformers directory",
        description="Write one tower of a model (std hf-tokenizer + hf-transformer + a mean/cls/max/last-token "
        "pooler, normalize included) as a sentence-transformers directory that SentenceTransformer(DIR) loads "
        "to the same embeddings. MODEL is a config file, a saved model or a run directory. A component with no "
        "sentence-transformers equivalent is refused, naming it. Needs sentence-transformers>=6.",
    )
    p.add_argument("source", metavar="MODEL", help="YAML config, saved-model or run directory")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides (config source only)")
    p.add_argument("-o", "--output", required=True, help="directory to write the sentence-transformers model to")
    p.add_argument("--tower", default=None, help="tower to export (default: the model's first tower)")
    p.add_argument(
        "--granularity", default=None, help="pooled granularity to export (default: the tower's last pooler)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")
    p.set_defaults(func=cmd_export_st)


def cmd_export_st(args: argparse.Namespace) -> int:
    """Load the model, export it, say where it went."""
    from repmix.core.loading import load
    from repmix.integrations.sentence_transformers import export_sentence_transformers, plan_export

    model = load(args.source, args.overrides)
    spec = plan_export(model, args.tower, args.granularity)
    out = export_sentence_transformers(
        model, args.output, tower=spec.tower, granularity=spec.granularity, overwrite=args.overwrite
    )
    modules = f"Transformer + Pooling({spec.pooling_mode})" + (" + Normalize" if spec.normalize else "")
    print(f"exported tower {spec.tower!r} ({spec.granularity}) as {modules} to {out}")
    return 0
