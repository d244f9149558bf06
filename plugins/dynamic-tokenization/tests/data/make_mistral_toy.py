"""Write tests/data/mistral-toy/tokenizer.json: a toy copy of the Mistral-7B-v0.1 tokenizer.

The spec (shared/papers/tokenizers-encoders.md §5) checks the official README's example, "36 tokens
to 20 with 10 merges", which needs the Mistral tokenizer "or a toy copy of it". This script makes
the copy from the real SentencePiece model, ``tokenizer.model.v1`` as shipped inside the PyPI
wheel ``mistral_common`` (sha256 dadfd56d766715c61d2ef780a525ab43b8e6da4de6865bda3d95fdef5e134055,
the file Mistral-7B-v0.1 ships as ``tokenizer.model``):

* every piece of the model that is a substring of the README's two sentences (in SentencePiece
  form: a leading "▁" and "▁" for each space), with its score order, plus ``<unk>``, ``<s>``, ``</s>``;
* merges in the order SentencePiece's BPE applies them (the merged piece's score, highest first),
  as transformers' SentencePiece converter writes them;
* the Llama/Mistral layout of a Hugging Face ``tokenizer.json`` (Prepend "▁", Replace " " -> "▁",
  byte fallback) with a ``<s> $A </s>`` post-processor: the framing the official
  ``Dynamic_BPE.tokenize_batch(mlm=True)`` uses in that example.

BPE merges only ever build substrings of the input, so on these two sentences the copy
tokenizes exactly as the full model. Reads the protobuf with the standard library (no
sentencepiece needed)::

    python plugins/dynamic-tokenization/tests/data/make_mistral_toy.py PATH/TO/tokenizer.model.v1
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

SHA256 = "dadfd56d766715c61d2ef780a525ab43b8e6da4de6865bda3d95fdef5e134055"
TEXTS = (
    "Ribonucleoprotein particles regulate mRNA stability.",
    "mRNA stability is modulated by ribonucleoprotein factors.",
)
SPECIALS = ("<unk>", "<s>", "</s>")


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _fields(data: bytes):
    """(field number, wire type, value) of one protobuf message (varint, 64-bit, bytes, 32-bit)."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 1:
            value, i = data[i : i + 8], i + 8
        elif wire == 2:
            length, i = _varint(data, i)
            value, i = data[i : i + length], i + length
        elif wire == 5:
            value, i = data[i : i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def read_pieces(path: Path) -> list[tuple[str, float, int]]:
    """(piece, score, type) of every SentencePiece in a ModelProto (field 1, repeated)."""
    import struct

    pieces = []
    for field, wire, value in _fields(path.read_bytes()):
        if field != 1 or wire != 2:
            continue
        piece, score, kind = "", 0.0, 1
        for f, w, v in _fields(value):
            if f == 1:
                piece = v.decode("utf-8")
            elif f == 2:
                score = struct.unpack("<f", v)[0]
            elif f == 3:
                kind = v
        pieces.append((piece, score, kind))
    return pieces


def toy_tokenizer(pieces: list[tuple[str, float, int]]) -> dict:
    """The tokenizer.json of the pieces the README's sentences can reach."""
    forms = ["▁" + t.replace(" ", "▁") for t in TEXTS]
    keep = [(i, p, s) for i, (p, s, k) in enumerate(pieces)
            if p in SPECIALS or (k == 1 and any(p in f for f in forms))]
    vocab = {p: n for n, (_, p, _) in enumerate(keep)}
    rank = {p: i for i, p, _ in keep}  # original id: SentencePiece BPE score order (score = -id)
    merges = []
    for _, piece, _ in keep:
        if piece in SPECIALS:
            continue
        splits = [(piece[:k], piece[k:]) for k in range(1, len(piece))
                  if piece[:k] in vocab and piece[k:] in vocab]
        merges.extend((rank[piece], rank[a], rank[b], a, b) for a, b in splits)
    merges.sort()
    added = [{"id": vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for t in SPECIALS]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "</s>", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 0}},
                     {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "special_tokens": {t: {"id": t, "ids": [vocab[t]], "tokens": [t]} for t in ("<s>", "</s>")},
        },
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": [[a, b] for *_, a, b in merges]},
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    path = Path(argv[0])
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SHA256:
        print(f"warning: {path} has sha256 {digest}, not Mistral-7B-v0.1's {SHA256}", file=sys.stderr)
    out = Path(__file__).parent / "mistral-toy" / "tokenizer.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(toy_tokenizer(read_pieces(path)), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
