"""The adapter to repmix causal LMs (CausalLM.next_logprobs + the LM tokenizer API) and the byte-bits evaluator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from repmix.sdk import CausalLM, InputError
from repmix.sdk.testing import run_cli
from repmix_exact_byte_probs import ByteLM
from repmix_exact_byte_probs.adapters import causal_token_lm, check_lossless

from test_btr import END_ID, INIT, TRANS, VOCAB, A, B, exact_token_lm

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "byte-bits-scifact.yaml"
BOS = 4


class OracleCausalLM(torch.nn.Module):
    """The exact {A, B, AA} token model behind the CausalLM protocol (ids: A, B, AA, end, bos)."""

    context_length = None

    def __init__(self) -> None:
        super().__init__()
        self.table = exact_token_lm()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def next_logprobs(self, ids: torch.Tensor, cache: Any = None, attention_mask: Any = None) -> tuple[torch.Tensor, Any]:
        assert cache is None and int(ids[0, 0]) == BOS
        rows = []
        for t in range(ids.shape[1]):
            lp = self.table(tuple(int(i) for i in ids[0, 1 : t + 1]))
            rows.append(np.concatenate([lp, [-np.inf]]))  # never bos again
        return torch.tensor(np.array(rows))[None].float(), None


class ToyTokenizer:
    vocab_size = 5
    bos_token_id = BOS
    eos_token_id = END_ID

    def token_bytes(self, i: int) -> bytes:
        return VOCAB[i] if i < 4 else b""


def test_adapter_recovers_the_transitions_through_the_causal_lm_protocol() -> None:
    enc = OracleCausalLM()
    assert isinstance(enc, CausalLM)
    lm, vocab, end = causal_token_lm(enc, ToyTokenizer())
    assert vocab == [b"A", b"B", b"AA", b"", b""] and end == END_ID
    blm = ByteLM(lm, vocab, end)
    for x, prev in ((b"", None), (b"A", A), (b"AAB", B), (b"BAA", A)):
        dist = blm.next_byte_distribution(x)
        truth = INIT if prev is None else TRANS[prev]
        assert dist[A] == pytest.approx(truth[A], abs=1e-6)  # float32 through the protocol
        assert dist[B] == pytest.approx(truth[B], abs=1e-6)


def test_adapter_rejects_what_it_cannot_use() -> None:
    with pytest.raises(InputError, match="causal LM"):
        causal_token_lm(object(), ToyTokenizer())
    with pytest.raises(InputError, match="token_bytes"):
        causal_token_lm(OracleCausalLM(), object())


class Lossy:
    def encode_plain(self, text: str) -> list[int]:
        return [1]

    def token_bytes(self, i: int) -> bytes:
        return b" x"


def test_lossy_tokenizer_is_one_clear_error() -> None:
    with pytest.raises(InputError, match="lossless"):
        check_lossless(Lossy(), ["x"])


def test_config_checks() -> None:
    pytest.importorskip("repmix_std")
    assert run_cli(["check", str(CONFIG)]) == 0


def test_byte_tokenizer_exact_equals_token_level_bits_per_byte(tmp_path: Path) -> None:
    """std's hf-lm (random gpt2) + byte tokenizer: one encoding per string, so exact = canonical = std's number."""
    pytest.importorskip("repmix_std")
    docs = tmp_path / "docs.txt"
    docs.write_text("Vitamin D and bone density.\nA small trial of aspirin in mice.\nnaïve café\n", encoding="utf-8")
    data = f"{{type: std.text-corpus, path: {docs}, split: all}}"
    code = run_cli(["evaluate", str(CONFIG), "-o", str(tmp_path / "r"), "--no-progress",
                    f"evaluate.0.data={data}", f"evaluate.1.data={data}", "evaluate.0.split=all", "evaluate.1.split=all"])
    assert code == 0
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["exact/bytes"] == m["token-level/bytes"]
    assert m["exact/bits_per_byte"] == pytest.approx(m["token-level/bits_per_byte"], rel=1e-5)
    assert m["exact/gap_bits_per_byte"] == pytest.approx(0.0, abs=1e-5)


def test_byte_bits_needs_a_fitting_context(tmp_path: Path) -> None:
    pytest.importorskip("repmix_std")
    code = run_cli(["evaluate", str(CONFIG), "-o", str(tmp_path / "r"), "--no-progress", "evaluate.1.max_bytes=1000"])
    assert code == 2
