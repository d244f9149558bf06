"""Per-tokenizer statistics: a byte tokenizer gives 1.0 byte per token; order invariance; self-ratio 1.0; the configs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from repmix.sdk import InputError, Runtime, load_component_class
from repmix.sdk.conformance import ByteTokenizer
from repmix.sdk.testing import run_cli

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TEXTS = ["The quick brown fox jumps over the lazy dog.", "CC(=O)Oc1ccccc1C(=O)O", "a b c", "hello   world\n",
         "Tokens from different tokenizers should not be directly compared."]


def evaluator(**cfg):  # type: ignore[no-untyped-def]
    cls = load_component_class("evaluator", "tokenizer-stats")
    return cls(cls.Config(**cfg), Runtime())


def byte_tokenizer() -> ByteTokenizer:
    return ByteTokenizer(ByteTokenizer.Config(max_length=10_000), Runtime())


def test_byte_tokenizer_gives_one_byte_per_token_on_ascii() -> None:
    m = evaluator().measure({"bytes": byte_tokenizer()}, TEXTS)
    assert m["bytes/bytes_per_token"] == 1.0
    assert m["bytes/chars_per_token"] == 1.0
    assert m["bytes/tokens_per_1k_chars"] == 1000.0
    assert m["bytes/ratio_to_reference"] == 1.0
    assert m["bytes/context_chars"] == 8192.0


def test_lm_byte_tokenizer_through_encode_plain() -> None:
    pytest.importorskip("repmix_std")
    cls = load_component_class("tokenizer", "lm-tokenizer")
    tok = cls(cls.Config(algorithm="bytes"), Runtime())
    m = evaluator().measure({"lm-bytes": tok}, ["naïve café"])
    assert m["lm-bytes/bytes_per_token"] == 1.0
    assert m["lm-bytes/chars_per_token"] == pytest.approx(10 / 12)
    assert m["lm-bytes/single_byte_share"] == 1.0


def test_chars_per_token_is_invariant_to_corpus_order_and_self_ratio_is_one() -> None:
    ev = evaluator(unigram=False)
    toks = {"a": byte_tokenizer(), "b": byte_tokenizer()}
    shuffled = TEXTS[:]
    random.Random(0).shuffle(shuffled)
    m1, m2 = ev.measure(toks, TEXTS), ev.measure(toks, shuffled)
    assert m1["a/chars_per_token"] == m2["a/chars_per_token"]
    assert m1["b/ratio_to_reference"] == 1.0


def test_wordpiece_vs_bytes(tiny_bert_dir: str) -> None:
    pytest.importorskip("repmix_std")
    cls = load_component_class("tokenizer", "hf-tokenizer")
    wp = cls(cls.Config(model=tiny_bert_dir, max_length=32), Runtime())
    m = evaluator(reference="bytes").measure({"bytes": byte_tokenizer(), "wordpiece": wp}, TEXTS * 3)
    assert m["wordpiece/chars_per_token"] > 1.0
    assert m["wordpiece/ratio_to_reference"] == pytest.approx(m["wordpiece/chars_per_token"])
    assert m["wordpiece/fertility"] > 0
    assert "wordpiece/truncated_documents" not in m  # hf path: no truncation


def test_bad_input() -> None:
    ev = evaluator()
    with pytest.raises(InputError, match="non-empty"):
        ev.measure({"b": byte_tokenizer()}, ["", "   "])
    with pytest.raises(InputError, match="reference"):
        evaluator(reference="nope").measure({"b": byte_tokenizer()}, TEXTS)
    with pytest.raises(InputError, match="text documents"):
        ev.measure({"b": byte_tokenizer()}, [b"bytes"])  # type: ignore[list-item]
    with pytest.raises(InputError, match="no tokenizer"):
        ev.measure({}, TEXTS)


def test_markov_dataset_and_source_extras() -> None:
    cls = load_component_class("dataset", "markov-source")
    ds = cls(cls.Config(documents=3, length=100), Runtime())
    ex = ds.load("test")
    assert len(ex) == 3 and all(len(d) == 100 and set(d) <= {"a", "b"} for d in ex.columns["text"])
    assert ex.extras["source/unigram_entropy"] == pytest.approx(1.0)
    assert ds.load("train").columns["text"] != ex.columns["text"]
    with pytest.raises(InputError):
        ds.load("dev")


def test_markov_command(tmp_path: Path) -> None:
    out = tmp_path / "markov.md"
    assert run_cli(["tokenizer-stats", "markov", "--train-chars", "5000", "--test-chars", "2000",
                    "--merges", "0", "3", "-o", str(out)]) == 0
    assert "H(pi) = 1.000 bit, entropy rate H_inf = 0.469 bit" in out.read_text()
    assert run_cli(["tokenizer-stats", "markov", "--p", "0"]) == 2


@pytest.mark.parametrize("name", ["tokenizer-stats-scifact.yaml", "tokenizer-stats-markov.yaml"])
def test_configs_check(name: str) -> None:
    pytest.importorskip("repmix_std")
    assert run_cli(["check", str(CONFIGS / name)]) == 0


def test_markov_config_evaluates(minilm_dir: str, tmp_path: Path) -> None:
    pytest.importorskip("repmix_std")
    code = run_cli(["evaluate", str(CONFIGS / "tokenizer-stats-markov.yaml"), "-o", str(tmp_path / "r"), "--no-progress",
                    "data.documents=6", "data.length=500"])
    assert code == 0
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["source/entropy_rate"] == pytest.approx(0.469, abs=5e-4)
    assert m["char_unigram_bits_per_char"] == pytest.approx(1.0, abs=0.05)
    assert m["bpe-256/chars_per_token"] > 1.0
