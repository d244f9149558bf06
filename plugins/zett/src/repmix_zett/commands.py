"""``repmix zett train-hypernetwork`` and ``repmix zett train-tokenizer``."""

from __future__ import annotations

import argparse

from repmix.sdk import hookimpl


@hookimpl
def repmix_add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``repmix zett``."""
    p = subparsers.add_parser(
        "zett",
        help="Zero-shot tokenizer transfer: train the hypernetwork, train target tokenizers",
        description="ZeTT (Minixhofer et al., NeurIPS 2024). Train the hypernetwork that predicts embeddings of any "
        "token from its decomposition into the source vocabulary, or a target tokenizer in the source's conventions. "
        "Apply them with repmix evaluate/encode and the zett.target-tokenizer + zett.transferred-transformer components.",
    )
    sub = p.add_subparsers(dest="action", required=True)
    h = sub.add_parser("train-hypernetwork", help="train a hypernetwork (YAML config) and write its checkpoint")
    h.add_argument("config", help="YAML, e.g. plugins/zett/configs/hypernetwork-minilm.yaml")
    h.add_argument("-o", "--output", required=True, help="checkpoint folder to write")
    h.add_argument("overrides", nargs="*", help="dotted overrides, e.g. steps=20")
    h.set_defaults(func=run_train_hypernetwork)
    t = sub.add_parser("train-tokenizer", help="train a target tokenizer with the source model's conventions")
    t.add_argument("--corpus", required=True, nargs="+", help="JSONL/TSV/CSV files")
    t.add_argument("--columns", nargs="+", default=["title", "text"], help="text columns (default: title text)")
    t.add_argument("--like", default="all-MiniLM-L6-v2", help="the source model whose conventions it keeps")
    t.add_argument("--vocab-size", type=int, default=30522, help="vocabulary size (default: MiniLM's 30522)")
    t.add_argument("--algorithm", choices=["bpe", "wordpiece"], default="bpe")
    t.add_argument("--min-frequency", type=int, default=2)
    t.add_argument("-o", "--output", required=True, help="folder to write tokenizer.json into")
    t.set_defaults(func=run_train_tokenizer)


def run_train_hypernetwork(args: argparse.Namespace) -> int:
    """Validate the YAML (errors located at file:line), train, write the checkpoint."""
    from pathlib import Path

    from pydantic import ValidationError
    from repmix.sdk import load_config, pydantic_error

    from .training import HypernetTrainConfig, train_hypernetwork

    cfg = load_config(args.config, list(args.overrides))
    try:
        config = HypernetTrainConfig.model_validate(cfg.data)
    except ValidationError as exc:
        raise pydantic_error(exc, HypernetTrainConfig, cfg.data, cfg, (), what="zett train-hypernetwork") from None
    train_hypernetwork(config, Path(args.output))
    return 0


def run_train_tokenizer(args: argparse.Namespace) -> int:
    """Read the corpus columns, train, write ``tokenizer.json`` and print tokens per text."""
    import json
    from pathlib import Path

    from repmix.sdk import InputError, read_table, resolve_model_dir

    from .targets import count_tokens, train_like_source
    from .vocabulary import SourceVocabulary, load_backend

    if args.vocab_size < 100:
        raise InputError(f"--vocab-size must be at least 100, got {args.vocab_size}")
    folder = resolve_model_dir(args.like)
    SourceVocabulary.from_model(folder, name=repr(args.like))  # a WordPiece source, or one clear error
    source = load_backend(folder, "source")
    texts: list[str] = []
    for file in args.corpus:
        if not Path(file).is_file():
            raise InputError(f"corpus file {file!r} not found")
        table = read_table(file, args.columns, on_error="skip", what="corpus file")
        texts.extend(" ".join(str(r.values[c]) for c in args.columns) for r in table.rows)
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise InputError(f"no text in columns {args.columns} of {args.corpus}")
    tok = train_like_source(texts, source, args.vocab_size, algorithm=args.algorithm, min_frequency=args.min_frequency)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    before, after = sum(count_tokens(source, texts)), sum(count_tokens(tok, texts))
    info = {"corpus": args.corpus, "columns": args.columns, "texts": len(texts), "like": args.like,
            "algorithm": args.algorithm, "vocab_size": tok.get_vocab_size(),
            "tokens_per_text_source": before / len(texts), "tokens_per_text_target": after / len(texts)}
    (out / "tokenizer-info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out / 'tokenizer.json'}: {info['vocab_size']} tokens; on its {len(texts)} training texts "
          f"{info['tokens_per_text_source']:.1f} -> {info['tokens_per_text_target']:.1f} tokens per text")
    return 0
