"""The landmark transformer: cache and chunking consistency, retrieval, and the encoder as a repmix component."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from repmix.sdk import InputError, Runtime, build_model, load_config, plan_model
from repmix_landmark_attention import LandmarkTransformer
from torch import nn


def tiny(block: int | None, layers: int = 2, seed: int = 0) -> LandmarkTransformer:
    torch.manual_seed(seed)
    return LandmarkTransformer(nn.Embedding(50, 16), layers, 2, 4, block).eval()


@pytest.mark.parametrize("block", [4, 3, None])
def test_cache_token_by_token_and_chunks_equal_one_pass(block: int | None) -> None:
    m = tiny(block)
    ids = torch.randint(0, 50, (2, 23), generator=torch.Generator().manual_seed(1))
    full, _, _ = m.run(ids)
    steps, cache = [], None
    for t in range(ids.shape[1]):
        h, cache, _ = m.run(ids[:, t : t + 1], cache=cache, use_cache=True)
        steps.append(h)
    assert torch.allclose(torch.cat(steps, 1), full, atol=1e-5)
    a, cache, _ = m.run(ids[:, :9], use_cache=True)
    b, _, _ = m.run(ids[:, 9:], cache=cache, use_cache=True)
    assert torch.allclose(torch.cat([a, b], 1), full, atol=1e-5)


def test_retrieval_of_every_earlier_block_equals_full_attention() -> None:
    m = tiny(4)
    ids = torch.randint(0, 50, (2, 23), generator=torch.Generator().manual_seed(2))
    full, _, _ = m.run(ids)
    assert torch.allclose(m.run(ids, top_k=5)[0], full, atol=1e-5)  # 23 tokens: at most 5 earlier blocks
    assert not torch.allclose(m.run(ids, top_k=2)[0], full, atol=1e-3)  # fewer blocks: another computation


def test_retrieval_depends_only_on_the_position_not_on_chunking() -> None:
    m = tiny(4, layers=1)  # one layer: no near-ties between landmark scores from float noise
    ids = torch.randint(0, 50, (1, 30), generator=torch.Generator().manual_seed(3))
    batch, _, _ = m.run(ids, top_k=2)
    steps, cache = [], None
    for t in range(ids.shape[1]):
        h, cache, _ = m.run(ids[:, t : t + 1], cache=cache, top_k=2, use_cache=True)
        steps.append(h)
    assert torch.allclose(torch.cat(steps, 1), batch, atol=1e-5)


def test_far_blocks_are_reachable_only_through_retrieval() -> None:
    """A query's memory is its own block + k retrieved blocks: changing a block that is not retrieved changes nothing."""
    m = tiny(4, layers=1)
    ids = torch.randint(0, 50, (1, 30), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        m.blocks[0].attn.qkv.weight[16:32].zero_()  # keys 0: every landmark ties, the k most recent blocks win
        m.blocks[0].attn.qkv.bias[16:32].zero_()
    base, _, _ = m.run(ids, top_k=2)
    changed = ids.clone()
    changed[0, 0:4] = (changed[0, 0:4] + 1) % 50  # block 0
    out, _, _ = m.run(changed, top_k=2)
    assert torch.allclose(out[0, 12:], base[0, 12:], atol=1e-6)  # tokens of block 3+ retrieve blocks 1-2 or later
    assert not torch.allclose(m.run(changed)[0][0, 12:], m.run(ids)[0][0, 12:], atol=1e-4)  # full attention sees it


def build(tmp_path: Path, encoder: str) -> Any:
    cfg = tmp_path / "lm.yaml"
    cfg.write_text(f"""
model:
  towers:
    text:
      tokenizer: {{type: std.lm-tokenizer, algorithm: bytes, max_length: 64}}
      encoder: {encoder}
  losses: [{{type: std.causal-lm}}]
""")
    return build_model(plan_model(load_config(cfg)))


def test_next_logprobs_matches_the_training_forward_and_rejects_bad_input(tmp_path: Path) -> None:
    model = build(tmp_path, "{type: landmark-lm, n_layer: 2, n_embd: 16, n_head: 2, mem_freq: 4}")
    tok, enc = model.tower("text").tokenizer, model.tower("text").encoder
    model.eval()
    batch = tok(["hello landmark attention", "hi"])
    with torch.no_grad():
        logits = enc(batch)["logits"].hidden
    lp, cache = enc.next_logprobs(batch["input_ids"], attention_mask=batch["attention_mask"])
    mask = batch["attention_mask"].bool()
    assert torch.allclose(lp[mask], torch.log_softmax(logits, -1)[mask], atol=1e-5)
    assert cache.real == batch["input_ids"].shape[1]
    with pytest.raises(InputError, match="right-padded"):
        enc.next_logprobs(batch["input_ids"], attention_mask=batch["attention_mask"].flip(-1))
    with pytest.raises(InputError, match="without padding"):
        enc.next_logprobs(batch["input_ids"][:, :2], cache, attention_mask=torch.tensor([[1, 0], [1, 1]]))
    with pytest.raises(InputError, match="LandmarkCache"):
        enc.next_logprobs(batch["input_ids"], cache=(1, 2))


def test_std_greedy_and_bits_per_byte_run_on_it(tmp_path: Path) -> None:
    from repmix.sdk import load_component_class

    model = build(tmp_path, "{type: landmark-lm, n_layer: 1, n_embd: 16, n_head: 2, mem_freq: 4, top_k: 2}")
    tok, enc = model.tower("text").tokenizer, model.tower("text").encoder
    greedy = load_component_class("decoding", "std.greedy")
    out = greedy(greedy.Config(), Runtime()).generate(enc, [tok.bos_token_id, *tok.encode_plain("abc")], max_new_tokens=40)
    assert len(out) == 40  # no position limit: 44 > 4 blocks of 4, retrieval is used
    bpb = load_component_class("evaluator", "std.bits-per-byte")
    from repmix.sdk import Examples

    m = bpb(bpb.Config(), Runtime()).evaluate(model, Examples({"text": ["some text to score", "more"]}))
    assert 7.0 < m["bits_per_byte"] < 9.5  # an untrained model is close to uniform over 261 ids (8.03 bits)
