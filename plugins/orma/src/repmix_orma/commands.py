"""The plugin's commands (a ``repmix_add_commands`` hook): ``repmix orma mol2vec``, ``index``, ``search``, ``explain``.

Heavy imports (torch, RDKit, gensim, faiss) happen inside the command
functions, so ``repmix --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from repmix.sdk import InputError, hookimpl

__all__ = ["repmix_add_commands"]


@hookimpl
def repmix_add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``orma`` (with ``mol2vec``), ``index``, ``search`` and ``explain``."""
    orma = subparsers.add_parser("orma", help="ORMA plugin tools (mol2vec atom embeddings)")
    orma_sub = orma.add_subparsers(dest="orma_command", metavar="COMMAND")
    m = orma_sub.add_parser(
        "mol2vec",
        help="train mol2vec embeddings of Morgan identifiers (for atom_features: mol2vec)",
        description="Train mol2vec (Jaeger et al. 2018): molecules as sentences of their atoms' Morgan "
        "identifiers at radius 0 and 1, rare identifiers as UNK, skip-gram word2vec with gensim. "
        "Writes a .safetensors table (no pickle) that orma.molecule-graph reads with "
        "atom_features: mol2vec, mol2vec: FILE. Deterministic for a seed.",
    )
    m.add_argument("--molecules", nargs="+", required=True, metavar="FILE",
                   help="molecule files: .tsv with a 'smiles' column (ChEBI-20) or .smi")
    m.add_argument("-o", "--output", required=True, help="output .safetensors file")
    m.add_argument("--dim", type=int, default=300, help="vector size (mol2vec: 300)")
    m.add_argument("--window", type=int, default=10, help="context window (mol2vec: 10)")
    m.add_argument("--min-count", type=int, default=3, help="identifiers seen fewer times become UNK (mol2vec: 3)")
    m.add_argument("--epochs", type=int, default=5, help="word2vec epochs (gensim default: 5)")
    m.add_argument("--radius", type=int, default=1, help="largest Morgan radius of the words (mol2vec: 1)")
    m.add_argument("--seed", type=int, default=0, help="random seed")
    m.add_argument("--column", default="smiles", help="SMILES column of .tsv files (default smiles)")
    m.set_defaults(func=cmd_mol2vec)
    orma.set_defaults(func=lambda args: _orma_help(orma))

    ix = subparsers.add_parser(
        "index",
        help="encode a molecule library into a faiss index for text search",
        description="Encode every molecule of a library (.tsv with a 'smiles' column, or .smi) with a model's "
        "molecule tower and store the vectors in a faiss index folder. Invalid SMILES are skipped and "
        "counted, never fatal.",
    )
    ix.add_argument("model", help="run directory, saved model or config")
    ix.add_argument("--input", required=True, help="library file (.tsv/.csv with a smiles column, or .smi)")
    ix.add_argument("-o", "--output", required=True, help="index folder to write")
    ix.add_argument("--tower", default="molecule", help="tower that encodes the molecules (default molecule)")
    ix.add_argument("--alignment", default=None, help="pooled cosine/dot alignment to index (default: the first)")
    ix.add_argument("--kind", choices=["flat", "ivf", "hnsw"], default="flat",
                    help="faiss index: flat (exact, default), ivf or hnsw (approximate, for large libraries)")
    ix.add_argument("--nlist", type=int, default=None, help="ivf: number of lists (default 4 sqrt(n))")
    ix.add_argument("--batch-size", type=int, default=64, help="molecules per forward pass")
    ix.add_argument("--smiles-column", default="smiles", help="SMILES column of a .tsv/.csv library")
    ix.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    ix.set_defaults(func=cmd_index)

    s = subparsers.add_parser(
        "search",
        help="search a molecule index with a text query",
        description="Rank the molecules of an index (repmix index) for a text query. --rerank N re-scores "
        "the top N with every level of the model (ORMA's multi-level score).",
    )
    s.add_argument("index", help="index folder (repmix index)")
    s.add_argument("query", help="the text to search for")
    s.add_argument("-k", type=int, default=10, help="results to show (default 10)")
    s.add_argument("--rerank", type=int, default=None, metavar="N", help="re-score the top N with every level")
    s.add_argument("--score", choices=["weighted", "zscore", "zscore-fallback"], default="weighted",
                   help="how re-ranking combines the levels (default weighted: ORMA's score)")
    s.add_argument("--model", default=None, help="the model (default: the one the index was built with)")
    s.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    s.set_defaults(func=cmd_search)

    e = subparsers.add_parser(
        "explain",
        help="draw a molecule shaded by the text tokens aligned to it (PNG)",
        description="Draw the molecule with RDKit, atoms shaded by ORMA's token-atom weights and motifs "
        "coloured by the tokens the optimal-transport plan assigns to them, with the tokens listed.",
    )
    e.add_argument("model", help="run directory, saved model or config")
    e.add_argument("text", help="the description")
    e.add_argument("smiles", help="the molecule (SMILES)")
    e.add_argument("-o", "--output", required=True, help="output PNG file")
    e.set_defaults(func=cmd_explain)


def _orma_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def cmd_mol2vec(args: argparse.Namespace) -> int:
    """Train and save a mol2vec table."""
    from repmix_orma.mol2vec import read_smiles_files, train_mol2vec

    out = Path(args.output)
    if out.suffix != ".safetensors":
        raise InputError(f"--output must end in .safetensors, got {args.output!r}")
    for name, value, low in (("--dim", args.dim, 1), ("--window", args.window, 1), ("--min-count", args.min_count, 1),
                             ("--epochs", args.epochs, 1), ("--radius", args.radius, 0)):
        if value < low:
            raise InputError(f"{name} must be at least {low}, got {value}")
    t0 = time.perf_counter()
    smiles, notes = read_smiles_files(args.molecules, column=args.column)
    table, skipped = train_mol2vec(
        smiles, radius=args.radius, dim=args.dim, window=args.window, min_count=args.min_count,
        epochs=args.epochs, seed=args.seed,
    )
    table.save(out)
    for note in (notes + skipped)[:5]:
        print(f"skipped: {note}", file=sys.stderr)
    print(
        f"wrote {out}: {table.vectors.shape[0]} identifiers (UNK included) x {table.dim} from "
        f"{table.metadata['molecules']} molecules ({len(notes) + len(skipped)} skipped) "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    """Build an index folder."""
    from repmix.sdk import load

    from repmix_orma.search import build_index

    model = load(args.model)
    info = build_index(
        model, args.input, args.output, source=args.model, tower=args.tower, alignment=args.alignment,
        kind=args.kind, nlist=args.nlist, batch_size=args.batch_size, smiles_column=args.smiles_column,
        progress=not args.no_progress,
    )
    if info["skipped"]:
        lines = ", ".join(str(n) for n in info["skipped_lines"][:5])
        more = " ..." if info["skipped"] > 5 else ""
        print(f"skipped {info['skipped']} invalid SMILES (lines {lines}{more})", file=sys.stderr)
    print(
        f"indexed {info['count']} molecules ({info['kind']}, {info['metric']}, dim {info['dim']}) into "
        f"{args.output} in {info['seconds']['total']:.1f} s"
    )
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    """Search an index with one query."""
    from repmix_orma.search import MoleculeIndex

    if not args.query.strip():
        raise InputError("empty query: give a description to search for")
    if args.k < 1:
        raise InputError(f"-k must be at least 1, got {args.k}")
    if args.rerank is not None and args.rerank < 1:
        raise InputError(f"--rerank must be at least 1, got {args.rerank}")
    index = MoleculeIndex.open(args.index, args.model)
    hits = index.search(args.query, k=args.k, rerank=args.rerank, score=args.score)
    if args.json:
        for h in hits:
            print(json.dumps(h.as_dict()))
        return 0
    print(f"{'rank':>4}  {'score':>9}  {'id':<12}  smiles")
    for h in hits:
        print(f"{h.rank:>4}  {h.score:>9.4f}  {h.id:<12}  {h.smiles}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    """Explain one pair as a PNG."""
    from repmix.sdk import load

    from repmix_orma.explain import draw_explanation, explain_pair

    if not str(args.output).lower().endswith(".png"):
        raise InputError(f"--output must end in .png, got {args.output!r}")
    model = load(args.model)
    exp = explain_pair(model, args.text, args.smiles)
    path = draw_explanation(exp, args.output)
    for note in exp.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {path}")
    return 0
