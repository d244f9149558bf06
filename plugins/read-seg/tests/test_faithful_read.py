"""Faithfulness of read-seg to READ's ``similarity_map_to_points`` / ``Discrete_to_Continuous`` (rui-qian/READ).

No pip reference exists; the official steps are written out independently below. Checked:
- every label agrees with the thresholds on the normalised, padded map (exact);
- at most K points, positives first by decreasing value, then negatives by increasing value (exact);
- points lie inside the image (exact);
- a peaked map puts the first point on the peak cell's centre (exact);
- a synthetic Gaussian peak on a cell is recovered by the soft-argmax (1e-3); one between cells
  is approached (closer than the discrete argmax);
- a flat map gives neutral labels, not NaN (our guard; the official code divides by zero).
"""

from __future__ import annotations

import torch
from repmix.sdk import Granularity
from repmix_read_seg.aligner import (
    ReadSegAligner,
    discrete_to_continuous,
    label_cells,
    normalise_map,
    pad_to_aspect,
    similarity_map_to_points,
)


def _gauss(h: int, w: int, r: float, c: float, s: float = 1.0, scale: float = 8.0) -> torch.Tensor:
    rows, cols = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    return scale * torch.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * s * s))


def test_labels_follow_the_thresholds() -> None:
    g = torch.Generator().manual_seed(0)
    sm = torch.randn(24, 24, generator=g)
    m = pad_to_aspect(normalise_map(sm, 2), (300.0, 400.0))
    assert m.shape == (12, 16) and bool((m[:, 12:] == -1).all())
    labels = label_cells(m, 0.8, 0.2)
    for v, lab in zip(m.flatten().tolist(), labels.flatten().tolist()):
        expected = 1 if v >= 0.8 else 0 if 0 <= v <= 0.2 else -1
        assert lab == expected
    points, labs, values = similarity_map_to_points(sm, (300.0, 400.0), k=30)
    assert len(points) == 30
    n_pos = int((labs == 1).sum())
    assert labs[:n_pos].eq(1).all() and values[:n_pos].tolist() == sorted(values[:n_pos].tolist(), reverse=True)
    neg = values[labs == 0].tolist()
    assert neg == sorted(neg)
    assert bool((points[:, 0] >= 0).all() and (points[:, 0] <= 400).all() and (points[:, 1] >= 0).all() and (points[:, 1] <= 300).all())


def test_a_peaked_map_puts_the_first_point_on_the_peak() -> None:
    sm = torch.zeros(24, 24)
    sm[10:12, 16:18] = 5.0  # after 2x downsampling: cell (row 5, col 8)
    points, labels, _ = similarity_map_to_points(sm, (24.0, 24.0), k=10)
    assert labels[0] == 1 and points[0].tolist() == [(8 + 0.5) * 2, (5 + 0.5) * 2]


def test_soft_argmax_recovers_a_synthetic_peak() -> None:
    # a peak on a cell centre is recovered exactly
    for r, c in [(4.0, 7.0), (8.0, 3.0), (6.0, 6.0)]:  # interior cells
        sm = _gauss(12, 12, r, c, s=0.7, scale=6.0)
        peak = torch.tensor(divmod(int(sm.argmax()), 12), dtype=torch.float32)
        est = discrete_to_continuous(sm, peak)
        torch.testing.assert_close(est, torch.tensor([r, c]), atol=1e-3, rtol=0)
    # a peak between cells: the differentiable point moves from the argmax cell towards it
    # (the exp(-||grid - p||^2) prior of the official formula keeps it near the cell)
    for r, c in [(3.3, 5.6), (10.5, 2.25)]:
        sm = _gauss(12, 12, r, c, s=0.7, scale=6.0)
        peak = torch.tensor(divmod(int(sm.argmax()), 12), dtype=torch.float32)
        est = discrete_to_continuous(sm, peak)
        truth = torch.tensor([r, c])
        assert float((est - truth).norm()) < float((peak - truth).norm())


def test_flat_map_is_guarded() -> None:
    points, labels, values = similarity_map_to_points(torch.full((8, 8), 3.0), (8.0, 8.0), k=5)
    assert torch.isfinite(points).all() and torch.isfinite(values).all() and bool((labels == -1).all())


def test_aligner_scores_and_points() -> None:
    aligner = ReadSegAligner(ReadSegAligner.Config(points=5, downsample=1), None)  # type: ignore[arg-type]
    patches = torch.zeros(2, 16, 3)
    patches[0, 6, 0] = 1.0  # image 0: the SEG direction sits at patch 6 = (row 1, col 2)
    patches[1, 9, 1] = 1.0
    seg = torch.eye(3)[:2] * 4
    out = aligner(Granularity(seg), Granularity(patches, torch.ones(2, 16, dtype=torch.bool)))
    assert out.scores.argmax(1).tolist() == [0, 1]
    assert out.detail["points"].shape == (2, 5, 2)
    assert out.detail["points"][0, 0].tolist() == [2.5, 1.5] and out.detail["labels"][0, 0] == 1
    assert out.detail["soft_points"].shape == (2, 2)
