"""Faithfulness: Token Recycling's output equals greedy decoding token for token; MAT >= 1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from recycling_helpers import tiny_config
from repmix.sdk import InputError, Runtime, load_component_class
from repmix.sdk.conformance_lm import BigramLM, check_decoding
from repmix.sdk.testing import run_cli
from repmix_token_recycling import TokenRecycling
from repmix_token_recycling.verify import (
    PathVerifier,
    TreeAttentionVerifier,
    pick_verifier,
)

PROMPTS = ["the cat", "a bird sang", "the dog ate the", "on the mat. the", "xyz", "the bone. a bird sang in the tree. the"]


def greedy() -> Any:
    cls = load_component_class("decoding", "std.greedy")
    return cls(cls.Config(), Runtime())


def recycling(**options: Any) -> TokenRecycling:
    return TokenRecycling(TokenRecycling.Config(**options), Runtime())


def ids_of(tok: Any, text: str) -> list[int]:
    return [tok.bos_token_id, *tok.encode_plain(text)]


@pytest.mark.parametrize("options", [{}, {"tree": "small"}, {"tree": "small", "verify": "paths"}, {"topk": 3, "tree": [[0], [1], [2], [0, 0], [0, 0, 0]]}],
                         ids=["2.2.2-tree-attention", "small-tree-attention", "small-paths", "custom"])
def test_output_identical_to_greedy_on_every_prompt(tiny_lm: Any, options: dict) -> None:
    _, tok, enc = tiny_lm
    g, tr = greedy(), recycling(**options)
    accepted = []
    prompts = PROMPTS[:3] if options.get("verify") == "paths" else PROMPTS  # one pass per leaf: slower
    with torch.inference_mode():
        for text in prompts:
            prompt = ids_of(tok, text)
            ref = g.generate(enc, prompt, max_new_tokens=40)
            out = tr.generate(enc, prompt, max_new_tokens=40)
            assert out == ref, text
            assert min(tr.last_stats["accepted_per_step"]) >= 1
            assert sum(tr.last_stats["accepted_per_step"]) >= len(out)
            accepted += tr.last_stats["accepted_per_step"]
    mat = sum(accepted) / len(accepted)
    assert mat >= 1.0
    assert mat > 1.5  # the trained model repeats its text: drafts from recycled candidates are accepted


def test_tree_attention_uses_one_forward_pass_per_step(tiny_lm: Any) -> None:
    _, tok, enc = tiny_lm
    assert isinstance(pick_verifier(enc, "auto"), TreeAttentionVerifier)
    tr = recycling()
    tr.generate(enc, ids_of(tok, "the cat"), max_new_tokens=40)
    stats = tr.last_stats
    assert stats["forward_passes"] == stats["steps"] + 1  # + the prompt prefill
    assert stats["steps"] < stats["tokens"]  # fewer passes than greedy's one per token


def test_stop_ids_and_context_limit_match_greedy(tiny_lm: Any) -> None:
    _, tok, enc = tiny_lm
    g, tr = greedy(), recycling()
    prompt = ids_of(tok, "the cat sat on the mat.")
    ref = g.generate(enc, prompt, max_new_tokens=60)
    stop = ref[5]
    assert tr.generate(enc, prompt, max_new_tokens=60, stop_ids=[stop]) == g.generate(enc, prompt, max_new_tokens=60, stop_ids=[stop])
    long = ids_of(tok, ("the dog ate the bone. " * 5)[:88])  # 89 of 96 positions: the tree is cut to fit
    assert tr.generate(enc, long, max_new_tokens=50) == g.generate(enc, long, max_new_tokens=50)
    assert len(tr.generate(enc, long, max_new_tokens=50)) == enc.context_length - len(long)
    with pytest.raises(InputError, match="attends to 96"):
        tr.generate(enc, [tok.bos_token_id] * 96, max_new_tokens=4)
    with pytest.raises(InputError, match="no tokens"):
        tr.generate(enc, [], max_new_tokens=4)


def test_adjacency_matrix_persists_and_resets(tiny_lm: Any) -> None:
    _, tok, enc = tiny_lm
    tr = recycling(tree="small")
    tr.generate(enc, ids_of(tok, "the cat"), max_new_tokens=20)
    assert tr.matrix is not None and tr.matrix.table.shape == (enc.lm.config.vocab_size, 8)
    before = tr.matrix.table.copy()
    tr.generate(enc, ids_of(tok, "a bird"), max_new_tokens=20)
    assert tr.matrix is not None and (tr.matrix.table != before).any()
    tr.reset()
    assert tr.matrix is None
    fresh = recycling(tree="small", persist=False)
    fresh.generate(enc, ids_of(tok, "the cat"), max_new_tokens=20)
    first = fresh.last_stats["accepted_per_step"][0]
    assert first == 1  # a fresh matrix: the first step verifies the root alone


def test_verify_tree_on_a_plain_causal_lm_is_one_clear_error() -> None:
    with pytest.raises(InputError, match="verify: tree"):
        recycling(verify="tree").generate(BigramLM(), [257, 1, 2], max_new_tokens=3)
    assert isinstance(pick_verifier(BigramLM(), "auto"), PathVerifier)


def test_path_verifier_on_a_plain_causal_lm_equals_greedy() -> None:
    lm = BigramLM(context_length=None)
    prompt = [257, *b"recycling"]
    assert recycling(tree="small").generate(lm, prompt, max_new_tokens=30) == greedy().generate(lm, prompt, max_new_tokens=30)


@pytest.mark.parametrize("config", [{}, {"tree": "small", "topk": 4}, {"persist": False}])
def test_conformance(config: dict) -> None:
    check_decoding("token-recycling", config)


def test_repmix_generate_with_the_strategy(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = tiny_config(tmp_path)
    assert run_cli(["generate", str(cfg), "--prompt", "the cat", "--strategy", "token-recycling", "--max-new-tokens", "8", "--ids"]) == 0
    out = capsys.readouterr().out
    assert run_cli(["generate", str(cfg), "--prompt", "the cat", "--strategy", "greedy", "--max-new-tokens", "8", "--ids"]) == 0
    assert capsys.readouterr().out == out  # same text and ids (untrained weights are seeded)


def test_bad_tree_in_a_config_is_reported_at_its_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = tiny_config(tmp_path)
    cfg.write_text(cfg.read_text() + "generate: {type: token-recycling, tree: [[0], [1, 0]]}\n")
    assert run_cli(["check", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "generate" in err and "no parent" in err
