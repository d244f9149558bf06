"""Stimuli, token alignment on real tokenizers, the evaluator end to end, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from repmix.sdk import InputError, build_model, load_config, plan_model
from repmix.sdk.testing import run_cli
from repmix_repeat_surprisal import NOUNS, make_stimuli, score_stimulus, token_spans
from repmix_repeat_surprisal.stimuli import INTERVENING

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "repeat-surprisal-scifact.yaml"


def test_conditions_share_the_first_list_and_differ_as_specified() -> None:
    stim = make_stimuli(n_lists=6, list_lengths=[3, 7], seed=1)
    assert len(stim) == 2 * 3 * 6
    by = {(s.list_len, s.condition, s.id.rsplit("-", 1)[1]): s for s in stim}
    for (n, cond, i), s in by.items():
        assert s.list1 == by[(n, "repeat", i)].list1 and len(s.list1) == n == len(set(s.list1))
        text = s.text.encode()
        assert [text[a:b].decode() for a, b in s.spans1] == s.list1
        assert [text[a:b].decode() for a, b in s.spans2] == s.list2
        if cond == "repeat":
            assert s.list2 == s.list1
        elif cond == "permute":
            assert sorted(s.list2) == sorted(s.list1) and s.list2 != s.list1
        else:
            assert not set(s.list2) & set(s.list1)
    assert make_stimuli(n_lists=3, seed=4)[5].text == make_stimuli(n_lists=3, seed=4)[5].text
    s = stim[0]
    assert s.text.startswith("Before the meeting, Mary wrote down the following list of words: ")
    assert f"{INTERVENING['short']} When she got back, she read the list again: " in s.text


def test_too_small_noun_pool_and_unknown_text_are_errors() -> None:
    with pytest.raises(ValueError, match="at least 20"):
        make_stimuli(list_lengths=[10], nouns=NOUNS[:15])
    with pytest.raises(ValueError, match="unknown intervening"):
        make_stimuli(intervening=["epic"])


def bpe_tokenizer(tmp_path: Path) -> Any:
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(s.text for s in make_stimuli(n_lists=10)))
    cfg = tmp_path / "tok.yaml"
    cfg.write_text(f"""
model:
  towers:
    text:
      tokenizer: {{type: std.lm-tokenizer, algorithm: bpe, vocab_size: 300, train_on: {{type: std.text-corpus, path: {corpus}, format: txt}}}}
      encoder: {{type: std.hf-lm, architecture: {{model_type: gpt2, n_layer: 1, n_embd: 16, n_head: 2, n_positions: 512}}}}
  losses: [{{type: std.causal-lm}}]
""")
    return build_model(plan_model(load_config(cfg)))


def test_token_spans_on_a_metaspace_bpe_tokenizer(tmp_path: Path) -> None:
    model = bpe_tokenizer(tmp_path)
    tok, enc = model.tower("text").tokenizer, model.tower("text").encoder
    stim = make_stimuli(n_lists=2, list_lengths=[5])
    for s in stim:
        ids = tok.encode_plain(s.text)
        spans = token_spans(tok, ids, s.text)
        assert len(spans) == len(ids) and spans[-1][1] == len(s.text.encode())
        assert all(a < b for a, b in spans)
        scored = score_stimulus(enc, tok, s)
        assert all(x > 0 for x in scored.surprisal1 + scored.surprisal2)


def test_decode_fallback_matches_token_bytes(tmp_path: Path) -> None:
    tok = bpe_tokenizer(tmp_path).tower("text").tokenizer
    text = make_stimuli(n_lists=1, list_lengths=[3])[0].text
    ids = tok.encode_plain(text)

    class DecodeOnly:
        def decode(self, i: list[int]) -> str:
            return tok.decode(i)

    fast, slow = token_spans(tok, ids, text), token_spans(DecodeOnly(), ids, text)
    assert [b for _, b in fast] == [b for _, b in slow]


def test_evaluator_end_to_end_and_config(tmp_path: Path) -> None:
    cfg = tmp_path / "rs.yaml"
    cfg.write_text("""
name: rs-tiny
model:
  towers:
    text:
      tokenizer: {type: std.lm-tokenizer, algorithm: bytes, max_length: 512}
      encoder: {type: std.hf-lm, architecture: {model_type: gpt2, n_layer: 1, n_embd: 16, n_head: 2, n_positions: 512}}
  losses: [{type: std.causal-lm}]
data: {type: repeat-surprisal.noun-lists, list_lengths: [3, 5], n_lists: 3}
evaluate: {type: repeat-surprisal.repeat-surprisal, bootstrap: 50}
""")
    out = tmp_path / "out"
    assert run_cli(["evaluate", str(cfg), "-o", str(out), "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for cond in ("repeat", "permute", "control"):
        assert metrics[f"{cond}/stimuli"] == 6.0
        assert metrics[f"{cond}/ci_low"] <= metrics[f"{cond}/repeat_surprisal"] <= metrics[f"{cond}/ci_high"]
        assert f"{cond}/n5/repeat_surprisal" in metrics


def test_plugin_config_is_accepted() -> None:
    assert run_cli(["check", str(CONFIG)]) == 0


def test_errors_are_one_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = tmp_path / "bad.yaml"
    base = """
model:
  towers:
    text:
      tokenizer: {type: std.lm-tokenizer, algorithm: bytes, max_length: 64}
      encoder: {type: std.hf-lm, architecture: {model_type: gpt2, n_layer: 1, n_embd: 16, n_head: 2, n_positions: 64}}
  losses: [{type: std.causal-lm}]
"""
    cfg.write_text(base + "data: {type: repeat-surprisal.noun-lists, intervening: [epic]}\nevaluate: {type: repeat-surprisal.repeat-surprisal}\n")
    assert run_cli(["check", str(cfg)]) == 2
    assert "unknown intervening text 'epic'" in capsys.readouterr().err
    cfg.write_text(base + "data: {type: repeat-surprisal.noun-lists, list_lengths: [0]}\n")
    assert run_cli(["check", str(cfg)]) == 2
    assert "at least 1" in capsys.readouterr().err
    cfg.write_text(base + "data: {type: repeat-surprisal.noun-lists, list_lengths: [3], n_lists: 1}\n"
                   "evaluate: {type: repeat-surprisal.repeat-surprisal}\n")
    assert run_cli(["evaluate", str(cfg), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "tokens long; the model attends to 64" in err and "use shorter lists" in err
    cfg.write_text(base + "data: {type: std.text-corpus, path: " + str(cfg) + ", format: txt}\n"
                   "evaluate: {type: repeat-surprisal.repeat-surprisal}\n")
    assert run_cli(["evaluate", str(cfg), "--no-progress"]) == 2
    assert "needs generated stimuli" in capsys.readouterr().err


def test_masked_lm_has_no_surprisal(tmp_path: Path) -> None:
    from repmix_repeat_surprisal.components import causal_tower

    cfg = tmp_path / "mlm.yaml"
    cfg.write_text("""
model:
  towers:
    text:
      tokenizer: {type: std.lm-tokenizer, algorithm: bytes, max_length: 64}
      encoder: {type: std.hf-lm, architecture: {model_type: bert, num_hidden_layers: 1, hidden_size: 16, num_attention_heads: 2, intermediate_size: 16, max_position_embeddings: 64}}
""")
    with pytest.raises(InputError, match="pseudo-surprisal|left-to-right"):
        causal_tower(build_model(plan_model(load_config(cfg))), None)
