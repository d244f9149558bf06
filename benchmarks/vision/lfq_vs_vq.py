"""LFQ vs VQ image tokenizers on digits at equal bits: reconstruction error and codebook usage.

    repmix train plugins/magvit-lfq/configs/digits-lfq.yaml -o runs/vision/digits-lfq
    repmix train plugins/magvit-lfq/configs/digits-lfq.yaml -o runs/vision/digits-vq model.towers.image.encoder.quantizer=vq
    python benchmarks/vision/lfq_vs_vq.py runs/vision/digits-lfq runs/vision/digits-vq
Writes docs/results/vision/lfq-vs-vq.{csv,png} and lfq-token-maps.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import OUT, digits_test, load_run  # noqa: E402


def main(lfq_run: str, vq_run: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images, labels = digits_test()
    rows, recons, idmaps = [], {}, {}
    for name, run in (("LFQ", lfq_run), ("VQ", vq_run)):
        model = load_run(run)
        tower = model.tower("image")
        with torch.no_grad():
            batch = tower.tokenizer(images)
            enc = tower.encoder.eval()(batch)
        k = tower.encoder.config.bits
        rec = enc["reconstruction"].hidden.reshape(-1, 8, 8) * 0.5 + 0.5  # back to pixels in [0, 1]
        pix = enc["pixels"].hidden.reshape(-1, 8, 8) * 0.5 + 0.5
        mse = float(((rec.clamp(0, 1) - pix) ** 2).mean())
        ids = enc.extras["ids"].flatten()
        counts = torch.bincount(ids, minlength=2**k).float()
        p = counts / counts.sum()
        perplexity = float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum()))
        rows.append((name, k, 2**k, mse, int((counts > 0).sum()), float((counts > 0).float().mean()), perplexity))
        recons[name] = rec.clamp(0, 1).numpy()
        idmaps[name] = enc.extras["ids"][:, 0].numpy()
        originals = pix.numpy()
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "lfq-vs-vq.csv", "w") as f:
        f.write("quantizer,bits,vocabulary,test_pixel_mse,codes_used,codebook_usage,code_perplexity\n")
        for r in rows:
            f.write(f"{r[0]},{r[1]},{r[2]},{r[3]:.5f},{r[4]},{r[5]:.3f},{r[6]:.1f}\n")
    for r in rows:
        print(f"{r[0]}: bits {r[1]}, pixel MSE {r[3]:.5f}, codes used {r[4]}/{r[2]} ({r[5]:.1%}), perplexity {r[6]:.1f}")
    n = 10
    pick = [int(np.where(labels == d)[0][0]) for d in range(n)]
    fig, axes = plt.subplots(3, n, figsize=(n * 0.9, 3))
    for j, i in enumerate(pick):
        for r, (title, arr) in enumerate((("original", originals), ("LFQ", recons["LFQ"]), ("VQ", recons["VQ"]))):
            axes[r, j].imshow(arr[i], cmap="gray_r", vmin=0, vmax=1)
            axes[r, j].set_xticks([]); axes[r, j].set_yticks([])
            if j == 0:
                axes[r, j].set_ylabel(title, fontsize=8)
    fig.suptitle("digits test: originals and reconstructions at 8 bits/token (4x4 tokens)", fontsize=9)
    fig.tight_layout(); fig.savefig(OUT / "lfq-vs-vq.png", dpi=120); plt.close(fig)
    fig, axes = plt.subplots(2, n, figsize=(n * 0.9, 2))
    for j, i in enumerate(pick):
        axes[0, j].imshow(originals[i], cmap="gray_r"); axes[0, j].axis("off")
        axes[1, j].imshow(idmaps["LFQ"][i], cmap="tab20", vmin=0, vmax=255); axes[1, j].axis("off")
        for (y, x), v in np.ndenumerate(idmaps["LFQ"][i]):
            axes[1, j].text(x, y, str(v), ha="center", va="center", fontsize=4)
    fig.suptitle("LFQ token maps: the 4x4 token ids (of 256) of each digit", fontsize=9)
    fig.tight_layout(); fig.savefig(OUT / "lfq-token-maps.png", dpi=120); plt.close(fig)


if __name__ == "__main__":
    main(*(sys.argv[1:3] or ["runs/vision/digits-lfq", "runs/vision/digits-vq"]))
