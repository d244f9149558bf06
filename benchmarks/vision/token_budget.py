"""Accuracy vs patch tokens kept on digits: token-correlation compression and MULTI-LANE.

    repmix train plugins/token-corr-compression/configs/digits-token-corr.yaml -o runs/vision/token-corr-full model.towers.image.encoder.selection=none
    for g in 1 4 16; do repmix train plugins/multi-lane/configs/digits-multi-lane.yaml -o runs/vision/multi-lane-g$g model.towers.image.encoder.selectors=$g train.epochs=3; done
    python benchmarks/vision/token_budget.py
The compression is parameter-free: the ViT trained on all 16 patches is evaluated with each selection
(plug-and-play, as the paper applies it to a frozen model). Writes docs/results/vision/token-budget.{csv,png}
and kept-patches.png.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import OUT, digits_test, load_run  # noqa: E402

ENC = "model.towers.image.encoder."


def accuracy(model, images: list, labels: np.ndarray) -> tuple[float, float, object]:  # type: ignore[no-untyped-def]
    classes = [f"a handwritten digit {n}" for n in ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]]
    scores = model.similarity(images, classes, alignment="image-text", batch_size=128)
    tower = model.tower("image")
    with torch.no_grad():
        enc = tower.encoder.eval()(tower.tokenizer(images))
    kept = enc.extras.get("kept")
    mean_kept = float(kept.sum(1).float().mean()) if kept is not None else 16.0
    return float((scores.argmax(1) == labels).mean()), mean_kept, kept


def main(tc_run: str = "runs/vision/token-corr-full") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images, labels = digits_test()
    rows = []
    settings = [("all 16 patches", ["selection=none"])]
    for t in (0.95, 0.9, 0.8, 0.7, 0.5):
        settings.append((f"correlation, adaptive, threshold {t}", ["selection=correlation", "budget=adaptive", f"threshold={t}"]))
    for r in (0.125, 0.25, 0.5, 0.75):
        settings.append((f"correlation, fixed {r}", ["selection=correlation", "budget=fixed", f"keep_ratio={r}"]))
        settings.append((f"random, fixed {r}", ["selection=random", "budget=fixed", f"keep_ratio={r}"]))
    kept_maps = {}
    for name, ov in settings:
        model = load_run(tc_run, [ENC + o for o in ov])
        acc, k, kept = accuracy(model, images, labels)
        method = "none" if "none" in ov[0] else ov[0].split("=")[1] + ("-adaptive" if "adaptive" in name else "")
        rows.append(("token-corr-compression", name, method, k, acc))
        print(f"{name}: tokens kept {k:.2f}/16, accuracy {acc:.3f}", flush=True)
        if name in ("correlation, adaptive, threshold 0.9", "correlation, fixed 0.25"):
            kept_maps[name] = kept.reshape(-1, 4, 4).numpy()
    for g in (1, 4, 16):
        path = Path(f"runs/vision/multi-lane-g{g}/metrics.json")
        if path.is_file():
            m = json.loads(path.read_text())
            flat = json.dumps(m)
            acc = next(v for k, v in _walk(m) if k.endswith("accuracy") and "knn" not in k)
            rows.append(("multi-lane", f"G = {g} summaries (lane of G + 1 tokens)", "multi-lane", float(g), float(acc)))
            print(f"multi-lane G={g}: accuracy {acc:.3f}", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "token-budget.csv", "w") as f:
        f.write("plugin,setting,method,tokens_kept,test_accuracy\n")
        for r in rows:
            f.write(f"{r[0]},{r[1]},{r[2]},{r[3]:.2f},{r[4]:.4f}\n")
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, marker in (("correlation-adaptive", "o"), ("correlation", "s"), ("random", "x"), ("multi-lane", "^"), ("none", "*")):
        pts = sorted((r[3], r[4]) for r in rows if r[2] == method)
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, label=method.replace("correlation", "corr. (fixed)") if method == "correlation" else method)
    ax.set_xlabel("patch tokens kept (of 16)"); ax.set_ylabel("digits test accuracy"); ax.grid(alpha=0.3); ax.legend(fontsize=8)
    ax.set_title("accuracy vs tokens kept (digits, 450 test images)", fontsize=9)
    fig.tight_layout(); fig.savefig(OUT / "token-budget.png", dpi=120); plt.close(fig)
    if kept_maps:
        pick = [int(np.where(labels == d)[0][0]) for d in range(10)]
        fig, axes = plt.subplots(len(kept_maps), 10, figsize=(9, 1.1 * len(kept_maps) + 0.4))
        for r, (name, km) in enumerate(kept_maps.items()):
            for j, i in enumerate(pick):
                ax = axes[r, j]
                ax.imshow(images[i], cmap="gray_r", vmin=0, vmax=1)
                for (y, x), keep in np.ndenumerate(km[i]):
                    if not keep:
                        ax.add_patch(plt.Rectangle((2 * x - 0.5, 2 * y - 0.5), 2, 2, color="red", alpha=0.35, lw=0))
                ax.set_xticks([]); ax.set_yticks([])
                if j == 0:
                    ax.set_ylabel(name.replace("correlation, ", "").replace("threshold", "thr"), fontsize=6)
        fig.suptitle("kept (clear) vs dropped-and-merged (red) 2x2 patches", fontsize=9)
        fig.tight_layout(); fig.savefig(OUT / "kept-patches.png", dpi=120); plt.close(fig)


def _walk(d, prefix=""):  # type: ignore[no-untyped-def]
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _walk(v, f"{prefix}{k}.")
    elif isinstance(d, (int, float)):
        yield prefix.rstrip("."), d


if __name__ == "__main__":
    main(*sys.argv[1:2])
