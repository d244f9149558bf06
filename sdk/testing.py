"""Test helpers for plugin authors: a tiny random BERT that loads offline, and running the CLI.

* :func:`write_tiny_bert` writes a tiny random BERT + WordPiece tokenizer (the
  ``tiny_bert_dir`` fixture of :mod:`repmix.sdk.pytest_plugin` is one, written
  once per test session);
* :func:`run_cli` runs ``repmix ARGS...`` in-process and returns its exit status.

Importing this module is cheap; torch, transformers and the CLI are imported
when the helpers run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

__all__ = ["SPECIAL_TOKENS", "TINY_CHARS", "TINY_WORDS", "run_cli", "write_tiny_bert"]

#: WordPiece special tokens, in the order BERT tokenizers expect.
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
#: Default whole words of the tiny vocabulary (everything else falls back to single characters).
TINY_WORDS = tuple(
    "the a an of and or to in on at for with by from is are was were be been "  # noqa: SIM905 - one string reads better
    "it this that these those man woman child dog cat horse bird car train plane boat house street city park water food "
    "is riding playing eating running walking sitting standing dancing talking reading writing "
    "hello world sentence word words text longer short mid length about molecule molecules atom bond "
    "good bad new old big small red blue green black white one two three four five hat hard wearing "
    "query document passage answer question model data test "
    "acid benzene pyridine furan ring group chloro bromo fluoro methyl ethyl hydroxy amino carboxy "
    "compound amine ether alcohol ester ketone position member carrying role class".split()
)
#: Default single characters of the tiny vocabulary (each also as a ``##`` continuation).
TINY_CHARS = tuple("abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"-()[]=#@+/")


def write_tiny_bert(
    directory: Path,
    *,
    words: Sequence[str] = TINY_WORDS,
    chars: Sequence[str] = TINY_CHARS,
    layers: int = 4,
    hidden: int = 32,
    max_positions: int = 128,
    seed: int = 0,
) -> Path:
    """Write a tiny random ``BertModel`` + WordPiece tokenizer to ``directory``.

    The vocabulary is the special tokens, ``words``, ``chars`` and their ``##``
    continuations (defaults: :data:`TINY_WORDS`, :data:`TINY_CHARS`); weights are drawn under ``seed`` without disturbing the
    caller's torch random state. Returns ``directory``.
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    directory.mkdir(parents=True, exist_ok=True)
    vocab: list[str] = []
    for token in [*SPECIAL_TOKENS, *words, *chars, *(f"##{c}" for c in chars)]:
        if token not in vocab:
            vocab.append(token)
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (directory / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 512}),
        encoding="utf-8",
    )
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    if len(tokenizer) != len(vocab):
        raise RuntimeError(f"tiny tokenizer has {len(tokenizer)} tokens, expected {len(vocab)}")
    tokenizer.save_pretrained(str(directory))
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=2 * hidden,
        max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id,
    )
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        BertModel(config).save_pretrained(str(directory))
    finally:
        torch.random.set_rng_state(state)
    return directory


def run_cli(args: Sequence[str]) -> int:
    """Run ``repmix *args`` in this process (plugins' commands included) and return its exit status.

    Output goes to the real stdout / stderr, so pytest's ``capsys`` sees it; a
    user error is printed as the command would print it, not raised.
    """
    from repmix.cli.main import main

    return main(list(args))


#: Graded sentence pairs (gold score 0-5) of a tiny STS set: every test that trains an STS config needs some.
TINY_STS_PAIRS: tuple[tuple[str, str, float], ...] = (
    ("a man is riding a horse in the park", "the man rides a horse", 4.5),
    ("a dog is eating food", "the dog eats food", 4.2),
    ("the car is red", "the red car", 4.8),
    ("two children are playing", "the children play in the park", 4.1),
    ("a woman is reading", "a woman reads a book", 4.6),
    ("one man is walking", "a man is running", 2.6),
)


def write_tiny_sts(directory: Path) -> Path:
    """Write ``train.tsv`` and ``dev.tsv`` of :data:`TINY_STS_PAIRS` in std's ``sts`` format; returns ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["score\tsentence1\tsentence2", *(f"{s}\t{a}\t{b}" for a, b, s in TINY_STS_PAIRS)]
    for split in ("train", "dev"):
        (directory / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory
