"""Faithfulness of the RCNN encoder to the paper's equations.

* equals a naive per-word loop of c_l(w_i) = f(W_l c_l(w_{i−1}) + W_sl e(w_{i−1})),
  c_r(w_i) = f(W_r c_r(w_{i+1}) + W_sr e(w_{i+1})), y_i = tanh(W_2 [c_l; e; c_r] + b_2) (1e-12, float64);
* c_l(w_1) and c_r(w_n) are the learned initial states, whatever the padding;
* mirror symmetry: reversing the words while swapping the (left, right) weights and the
  c_l / c_r blocks of W_2 reverses y and leaves the max-pooled document vector unchanged (1e-12);
* padding (right or left, any content) does not change the output at real positions.
"""

from __future__ import annotations

import copy

import torch
from repmix.sdk import Runtime
from repmix_rcnn.encoder import RCNNEncoder


class Tok:
    vocab_size = 40
    pad_token_id = 0


def build(**kw) -> RCNNEncoder:  # type: ignore[no-untyped-def]
    torch.manual_seed(kw.pop("seed", 0))
    cfg = RCNNEncoder.Config(**{"embed_dim": 5, "context_dim": 4, "hidden": 6, **kw})
    return RCNNEncoder(cfg, Runtime(tokenizer=Tok())).double().eval()


def run(enc: RCNNEncoder, ids: torch.Tensor, mask: torch.Tensor | None = None):  # type: ignore[no-untyped-def]
    mask = torch.ones_like(ids, dtype=torch.bool) if mask is None else mask
    with torch.no_grad():
        return enc({"input_ids": ids, "attention_mask": mask})


def test_equals_naive_loop() -> None:
    enc = build(activation="tanh")
    ids = torch.tensor([[3, 7, 9, 12, 5]])
    e = enc.embeddings(ids)[0].detach()
    n = ids.shape[1]
    cl = [enc.left_init.detach()]
    for i in range(1, n):
        cl.append(torch.tanh(enc.left.weight @ cl[-1] + enc.left_word.weight @ e[i - 1]))
    cr = [enc.right_init.detach()]
    for i in range(n - 2, -1, -1):
        cr.insert(0, torch.tanh(enc.right.weight @ cr[0] + enc.right_word.weight @ e[i + 1]))
    y = torch.stack([torch.tanh(enc.project(torch.cat([cl[i], e[i], cr[i]]))) for i in range(n)]).detach()
    out = run(enc, ids)
    torch.testing.assert_close(out["token"].hidden[0], y, atol=1e-12, rtol=0)
    torch.testing.assert_close(out["sentence"].hidden[0], y.max(dim=0).values, atol=1e-12, rtol=0)


def test_initial_states_are_learned_vectors() -> None:
    enc = build()
    ids = torch.tensor([[0, 0, 4, 5, 6], [4, 5, 6, 0, 0]])
    mask = ids != 0
    with torch.no_grad():
        c_l, c_r = enc.contexts(enc.embeddings(ids), mask)
    torch.testing.assert_close(c_l[0, 2], enc.left_init.detach())  # first real word of a left-padded item
    torch.testing.assert_close(c_l[1, 0], enc.left_init.detach())
    torch.testing.assert_close(c_r[0, 4], enc.right_init.detach())
    torch.testing.assert_close(c_r[1, 2], enc.right_init.detach())  # last real word of a right-padded item


def mirrored(enc: RCNNEncoder) -> RCNNEncoder:
    m = copy.deepcopy(enc)
    c, e = enc.config.context_dim, enc.config.embed_dim
    with torch.no_grad():
        m.left.weight.copy_(enc.right.weight)
        m.right.weight.copy_(enc.left.weight)
        m.left_word.weight.copy_(enc.right_word.weight)
        m.right_word.weight.copy_(enc.left_word.weight)
        m.left_init.copy_(enc.right_init)
        m.right_init.copy_(enc.left_init)
        w = enc.project.weight
        m.project.weight.copy_(torch.cat([w[:, c + e :], w[:, c : c + e], w[:, :c]], dim=1))
    return m


def test_mirror_symmetry() -> None:
    for activation in ("tanh", "relu", "sigmoid"):
        enc = build(activation=activation, seed=3)
        ids = torch.tensor([[3, 7, 9, 12, 5, 22, 1]])
        a = run(enc, ids)
        b = run(mirrored(enc), ids.flip(1))
        torch.testing.assert_close(b["token"].hidden, a["token"].hidden.flip(1), atol=1e-12, rtol=0)
        torch.testing.assert_close(b["sentence"].hidden, a["sentence"].hidden, atol=1e-12, rtol=0)


def test_padding_does_not_change_the_output() -> None:
    enc = build(seed=5)
    ids = torch.tensor([[3, 7, 9, 12]])
    alone = run(enc, ids)
    right = run(enc, torch.tensor([[3, 7, 9, 12, 31, 17]]), torch.tensor([[1, 1, 1, 1, 0, 0]]).bool())
    left = run(enc, torch.tensor([[8, 3, 7, 9, 12]]), torch.tensor([[0, 1, 1, 1, 1]]).bool())
    torch.testing.assert_close(right["token"].hidden[:, :4], alone["token"].hidden, atol=1e-12, rtol=0)
    torch.testing.assert_close(left["token"].hidden[:, 1:], alone["token"].hidden, atol=1e-12, rtol=0)
    for out in (right, left):
        torch.testing.assert_close(out["sentence"].hidden, alone["sentence"].hidden, atol=1e-12, rtol=0)
