"""Target tokenizers: new BPE (or WordPiece) vocabularies in the source model's conventions.

ZeTT transfers a model to a tokenizer it was never trained with. For a BERT source the target
tokenizer keeps the source's normaliser (lower case, accents stripped), pre-tokenizer (split on
whitespace and punctuation), special tokens and ``[CLS] $A [SEP]`` framing, and changes only the
vocabulary: BPE (or WordPiece) merges learned on a new corpus, word-internal pieces marked with
``##`` as in the source. That is what :func:`train_like_source` builds, with Hugging Face
``tokenizers``; ``repmix zett train-tokenizer`` writes one to a ``tokenizer.json``, and the
hypernetwork training samples many of them (random sizes, random text batches).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from repmix.sdk import ConfigError

Algorithm = Literal["bpe", "wordpiece"]


def special_tokens_in_order(source: Any) -> list[str]:
    """The source tokenizer's special tokens, by id."""
    decoder = source.get_added_tokens_decoder()
    return [decoder[i].content for i in sorted(decoder) if decoder[i].special]


def _remapped_post_processor(source: Any, target: Any) -> Any:
    """The source's post-processor (e.g. ``[CLS] $A [SEP]``) with the target's ids for its special tokens."""
    from tokenizers import Tokenizer

    data = json.loads(source.to_str())
    post = data.get("post_processor")
    if post is None:
        return None

    def remap(node: Any) -> None:
        if isinstance(node, dict):
            if "ids" in node and "tokens" in node and isinstance(node["tokens"], list):
                node["ids"] = [int(target.token_to_id(t)) for t in node["tokens"]]
            if node.get("type") == "BertProcessing" or node.get("type") == "RobertaProcessing":
                for key in ("sep", "cls"):
                    if key in node:
                        node[key] = [node[key][0], int(target.token_to_id(node[key][0]))]
            for v in node.values():
                remap(v)
        elif isinstance(node, list):
            for v in node:
                remap(v)

    remap(post)
    probe = json.loads(target.to_str())
    probe["post_processor"] = post
    return Tokenizer.from_str(json.dumps(probe)).post_processor


def train_like_source(
    texts: Iterable[str],
    source: Any,
    vocab_size: int,
    *,
    algorithm: Algorithm = "bpe",
    min_frequency: int = 2,
    length: int | None = None,
) -> Any:
    """A ``tokenizers.Tokenizer`` trained on ``texts`` with the source's normaliser, pre-tokenizer and specials."""
    from tokenizers import Tokenizer, decoders, models, trainers

    unk = source.model.unk_token
    specials = special_tokens_in_order(source)
    if unk not in specials:
        specials.insert(0, unk)
    if algorithm == "bpe":
        model = models.BPE(unk_token=unk, continuing_subword_prefix="##")
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
                                      continuing_subword_prefix="##", show_progress=False)
    elif algorithm == "wordpiece":
        model = models.WordPiece(unk_token=unk, continuing_subword_prefix="##")
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                            special_tokens=specials, continuing_subword_prefix="##", show_progress=False)
    else:
        raise ConfigError(f"unknown target tokenizer algorithm {algorithm!r}", allowed=["bpe", "wordpiece"])
    tok = Tokenizer(model)
    tok.normalizer = source.normalizer
    tok.pre_tokenizer = source.pre_tokenizer
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.train_from_iterator(texts, trainer=trainer, length=length)
    tok.post_processor = _remapped_post_processor(source, tok)
    return tok


def continuation_prefix(backend: Any) -> str | None:
    """The ``##``-style mark of word-internal tokens of a BPE or WordPiece model (``None``: no such mark)."""
    model = backend.model
    if type(model).__name__ not in ("BPE", "WordPiece"):
        return None
    prefix = getattr(model, "continuing_subword_prefix", None)
    return prefix or None


def token_strings(backend: Any) -> list[str]:
    """Every token string of a tokenizer, by id (added tokens included)."""
    vocab = backend.get_vocab(with_added_tokens=True)
    out = [""] * (max(vocab.values()) + 1)
    for tok, i in vocab.items():
        out[i] = tok
    return out


def count_tokens(backend: Any, texts: Sequence[str]) -> list[int]:
    """Tokens per text without special tokens and without truncation."""
    from tokenizers import Tokenizer

    plain = Tokenizer.from_str(backend.to_str())  # a copy: the caller's truncation and padding stay
    plain.no_truncation()
    plain.no_padding()
    return [len(e.ids) for e in plain.encode_batch(list(texts), add_special_tokens=False)]
