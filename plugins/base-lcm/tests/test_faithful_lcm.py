"""Faithfulness: the robust scaler equals scikit-learn's RobustScaler; causality; the loss formula; a learnable toy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from repmix_base_lcm import BaseLCM, RobustScaler, next_concept_loss, split_sentences


def test_robust_scaler_equals_sklearn() -> None:
    sk = pytest.importorskip("sklearn.preprocessing")
    rng = np.random.default_rng(0)
    x = rng.standard_t(3, size=(257, 12)) * rng.uniform(0.1, 5, size=12) + rng.normal(size=12)
    x[:, 3] = 1.5  # a constant column: IQR 0 -> scale 1, as sklearn
    ref = sk.RobustScaler(unit_variance=True).fit(x)
    ours = RobustScaler(12).fit(x)
    np.testing.assert_allclose(ours.center.numpy(), ref.center_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.scale.numpy(), ref.scale_, rtol=1e-12)
    t = torch.from_numpy(x[:20])
    np.testing.assert_allclose(ours.normalize(t).numpy(), ref.transform(x[:20]), atol=1e-10)
    np.testing.assert_allclose(ours.denormalize(ours.normalize(t)).numpy(), x[:20], atol=1e-10)  # denorm(norm(x)) = x


def test_clipping() -> None:
    s = RobustScaler(2, clip=1.0).fit(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]))
    assert s.normalize(torch.tensor([[100.0, -100.0]], dtype=torch.float64)).tolist() == [[1.0, -1.0]]


def test_causality_a_prefix_prediction_ignores_later_sentences() -> None:
    torch.manual_seed(0)
    model = BaseLCM(16, 32, 2, 4, 64, 0.0, max_sentences=10).eval()
    x = torch.randn(2, 8, 16)
    mask = torch.ones(2, 8, dtype=torch.bool)
    y = model(x, mask)
    for t in range(8):
        x2 = x.clone()
        x2[:, t + 1 :] = torch.randn_like(x2[:, t + 1 :]) * 100
        torch.testing.assert_close(model(x2, mask)[:, : t + 1], y[:, : t + 1], rtol=0, atol=1e-5)
    # a shorter document (right padding) gives the same predictions on its real sentences
    short = model(x[:, :5], mask[:, :5])
    torch.testing.assert_close(short, y[:, :5], rtol=0, atol=1e-5)


def test_loss_matches_the_formula() -> None:
    torch.manual_seed(1)
    pred, x = torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    terms = []
    for b in range(2):
        for i in range(3):
            if mask[b, i] and mask[b, i + 1]:
                terms.append(float(torch.sqrt(((pred[b, i] - x[b, i + 1]) ** 2).sum() + 1e-5)))
    assert float(next_concept_loss(pred, x, mask)) == pytest.approx(sum(terms) / len(terms), rel=1e-6)
    mse = [float(((pred[b, i] - x[b, i + 1]) ** 2).mean()) for b in range(2) for i in range(3) if mask[b, i + 1]]
    assert float(next_concept_loss(pred, x, mask, rmse=False)) == pytest.approx(sum(mse) / len(mse), rel=1e-6)


def test_linear_dynamics_are_learnable() -> None:
    torch.manual_seed(0)
    d = 8
    a = torch.linalg.qr(torch.randn(d, d))[0]  # x_{t+1} = A x_t (a rotation)
    x0 = torch.randn(32, d)
    seq = [x0]
    for _ in range(5):
        seq.append(seq[-1] @ a.T)
    x = torch.stack(seq, 1)
    mask = torch.ones(32, 6, dtype=torch.bool)
    model = BaseLCM(d, 32, 1, 4, 64, 0.0, max_sentences=8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = float(next_concept_loss(model(x, mask), x, mask, rmse=False))
    for _ in range(60):
        loss = next_concept_loss(model(x, mask), x, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
    last = float(next_concept_loss(model(x, mask), x, mask, rmse=False))
    assert last < 0.5 * first


def test_sentence_splitter() -> None:
    text = "Vitamin D matters. It was 3.5 mg in e.g. mice! Results (n = 4) differ? 95% did."
    assert split_sentences(text) == ["Vitamin D matters.", "It was 3.5 mg in e.g. mice!", "Results (n = 4) differ?",
                                     "95% did."]
    assert split_sentences("   ") == []
