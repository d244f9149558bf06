"""Faithfulness of the splitter: the reference outputs of the spec (hat-splitter's docs), and the
official implementation (the ``hat-splitter`` package, Rust, Aleph Alpha) on many texts, exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repmix_hat.splitter import Segmenter, limit_word, smiles_tokens, split, split_with_limit

TEXTS = [
    "hello world",
    "hello   world",
    "hello\tworld",
    "hello\nworld",
    "hello \n\nworld",
    "thisIsCamelCase and this is not",
    "punctuation!",
    "here! is some, more punctuation. I h0p3 thi$ isn't too 'much'.",
    "e.g., IL-6 (p<0.05) and TNF-α rose 3.5-fold [12].",
    "héllo wörld 😀 naïve café",
    "   ",
    "\n\n",
    " leading space and trailing ",
    "a \u00a0b",
    "foo_bar baz.qux",
    "Um Kimchi-Jjigae zuzubereiten, erhitzen Sie 1 Esslöffel Pflanzenöl in einem großen Topf.",
]


def test_spec_reference_outputs() -> None:
    """tokenizers-encoders.md §3 (from the hat-splitter docs), exactly."""
    assert split("Hello, world!") == ["Hello,", " world!"]
    assert split_with_limit("Hello, world!", 4) == [b"Hell", b"o,", b" wor", b"ld!"]


def test_split_is_lossless() -> None:
    for text in TEXTS:
        assert "".join(split(text)) == text
        assert b"".join(split_with_limit(text, 5)) == text.encode()


def test_limit_never_cuts_a_character_that_fits() -> None:
    assert limit_word("héllo", 2) == [b"h", "é".encode(), b"ll", b"o"]
    assert limit_word("😀", 3) == [b"\xf0\x9f\x98", b"\x80"]  # longer than the limit: byte pieces


def _scifact(shared: str | None, n: int) -> list[str]:
    if not shared:
        return []
    path = Path(shared) / "scifact" / "corpus.jsonl"
    if not path.is_file():
        return []
    out = []
    with path.open() as fh:
        for line in fh:
            doc = json.loads(line)
            out.append(doc["title"] + "\n" + doc["text"])
            if len(out) >= n:
                break
    return out


def test_matches_the_official_splitter(shared_data_dir) -> None:  # type: ignore[no-untyped-def]
    """Equal to ``hat_splitter.HATSplitter`` (split and split_with_limit) on hand cases and SciFact abstracts."""
    official = pytest.importorskip("hat_splitter").HATSplitter()
    texts = TEXTS + _scifact(shared_data_dir, 60)
    for text in texts:
        assert split(text) == official.split(text), text[:60]
        for limit in (4, 7, 64):
            assert split_with_limit(text, limit) == official.split_with_limit(text, limit), (limit, text[:60])


def _online_words(data: bytes, segmenter: Segmenter) -> list[bytes]:
    seg = segmenter.segment(list(data))
    words: dict[int, list[int]] = {}
    for byte, w in zip(data, seg.words):
        words.setdefault(w, []).append(byte)
    return [bytes(words[k]) for k in sorted(words)]


def test_online_segmentation_equals_offline_split(shared_data_dir) -> None:  # type: ignore[no-untyped-def]
    """Reading left to right (as HAT generates) gives the offline split_with_limit on these texts."""
    segmenter = Segmenter("text", 16)
    for text in TEXTS[:10] + _scifact(shared_data_dir, 20):
        assert _online_words(text.encode(), segmenter) == split_with_limit(text, 16), text[:60]


def test_online_segmentation_is_prefix_stable() -> None:
    """Words finalised while reading a prefix never change when more bytes follow."""
    segmenter = Segmenter("text", 8)
    data = "Hello, world! thisIsCamel  and 3.14 naïve 😀 verylongwordindeed".encode()
    full = segmenter.segment(list(data))
    for t in range(1, len(data)):
        part = segmenter.segment(list(data[:t]))
        assert part.known == full.known[:t]
        closed = [p for p in range(t) if full.words[p] < part.known[-1]]
        assert all(part.words[p] == full.words[p] for p in closed)


SMILES = ["CC(=O)OC(CC(=O)[O-])C[N+](C)(C)C", "C1=CC(=C(C=C1[N+](=O)[O-])[N+](=O)[O-])Cl", "BrC%12CCl.[nH]1cccc1"]


def test_smiles_atom_regex() -> None:
    """One word per SMILES token of the Schwaller et al. (2019) regex; lossless; online == offline."""
    assert split("CC(=O)[O-]Br%12c1Cl", "smiles") == ["C", "C", "(", "=", "O", ")", "[O-]", "Br", "%12", "c", "1", "Cl"]
    assert split("[nH+]", "smiles") == ["[nH+]"]
    for smi in SMILES:
        assert "".join(split(smi, "smiles")) == smi
        assert _online_words(smi.encode(), Segmenter("smiles", 64)) == split_with_limit(smi, 64, "smiles")
    assert [t for t, other in smiles_tokens("CC X") if other] == [" ", "X"]
