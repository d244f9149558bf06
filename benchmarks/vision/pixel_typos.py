"""Pixel Linguist vs all-MiniLM-L6-v2 on STS-B dev under the same character noise.

    repmix train plugins/pixel-linguist/configs/stsb-pixel.yaml -o runs/vision/stsb-pixel train.max_steps=80
    python benchmarks/vision/pixel_typos.py runs/vision/stsb-pixel [PAIRS]
For k = 0..3 seeded character typos per sentence (substitute/delete/insert/swap, both sentences):
Spearman of cosine vs gold, and the mean cosine between a sentence and its 1-typo copy.
Writes docs/results/vision/pixel-typos.{csv,png} and rendered-text.png.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import OUT  # noqa: E402

MINILM = """
model:
  towers:
    text:
      tokenizer: {type: hf-tokenizer, model: all-MiniLM-L6-v2, max_length: 128}
      encoder: {type: hf-transformer, model: all-MiniLM-L6-v2}
      poolers: {sentence: {type: mean}}
"""


def main(run: str = "runs/vision/stsb-pixel", pairs: str = "800") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import repmix
    from repmix.sdk import LocatedConfig, build_component
    from repmix_pixel_linguist.render import render, typo
    from scipy.stats import spearmanr

    block = {"type": "sts", "path": "../shared/data/stsb", "split": "dev", "limit": int(pairs)}
    ex = build_component(LocatedConfig({"d": block}), "dataset", block, ("d",)).load("dev")
    s1, s2, gold = ex.columns["query"], ex.columns["document"], np.array(ex.targets)
    cfg = Path("runs/vision/minilm-sts.yaml")
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(MINILM)
    import yaml

    steps = (yaml.safe_load((Path(run) / "config.yaml").read_text()).get("train") or {}).get("max_steps")
    models = {f"pixel-linguist ({steps} steps, CPU)": (repmix.load(Path(run) / "model"), "query"),
              "all-MiniLM-L6-v2": (repmix.load(cfg), "text")}
    rows = []
    for name, (model, tower) in models.items():
        for k in (0, 1, 2, 3):
            rng = random.Random(k)
            a = [typo(s, rng, k) for s in s1] if k else s1
            b = [typo(s, rng, k) for s in s2] if k else s2
            ea = model.encode(a, tower=tower, batch_size=64)
            eb = model.encode(b, tower=tower, batch_size=64)
            cos = (ea * eb).sum(1) / (np.linalg.norm(ea, axis=1) * np.linalg.norm(eb, axis=1))
            rho = float(spearmanr(cos, gold).statistic)
            rows.append((name, k, rho))
            print(f"{name}: {k} typos/sentence, Spearman {rho:.4f}", flush=True)
        rng = random.Random(99)
        clean = model.encode(s1, tower=tower, batch_size=64)
        noisy = model.encode([typo(s, rng, 1) for s in s1], tower=tower, batch_size=64)
        self_cos = float(((clean * noisy).sum(1) / (np.linalg.norm(clean, axis=1) * np.linalg.norm(noisy, axis=1))).mean())
        rows.append((name, "self-cos@1", self_cos))
        print(f"{name}: mean cos(s, 1-typo s) {self_cos:.4f}", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "pixel-typos.csv", "w") as f:
        f.write("model,typos_per_sentence,spearman\n")
        for r in rows:
            f.write(f"{r[0]},{r[1]},{r[2]:.4f}\n")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name in models:
        pts = [(r[1], r[2]) for r in rows if r[0] == name and isinstance(r[1], int)]
        base = pts[0][1]
        ax.plot([p[0] for p in pts], [p[1] / base for p in pts], marker="o", label=f"{name} (clean {base:.3f})")
    ax.set_xlabel("character typos per sentence"); ax.set_ylabel("Spearman / clean Spearman")
    ax.set_title(f"STS-B dev ({len(gold)} pairs): relative robustness to typos", fontsize=9)
    ax.grid(alpha=0.3); ax.legend(fontsize=7)
    fig.tight_layout(); fig.savefig(OUT / "pixel-typos.png", dpi=120); plt.close(fig)
    rng = random.Random(3)
    text = "A man is playing a large flute."
    fig, axes = plt.subplots(3, 1, figsize=(8, 1.6))
    for ax, t in zip(axes, (text, typo(text, rng, 1, ["substitute"]), "CC(=O)Oc1ccccc1C(=O)O")):
        strip, real = render(t, max_patches=24)
        ax.imshow(strip, cmap="gray", aspect="equal")
        for x in range(0, 24 * 16, 16):
            ax.axvline(x - 0.5, color="tab:blue", lw=0.3)
        ax.axvline(real * 16 - 0.5, color="red", lw=1)
        ax.set_xticks([]); ax.set_yticks([]); ax.set_ylabel(t[:12], fontsize=5, rotation=0, ha="right")
    fig.suptitle("rendered text (DejaVu Sans Mono from matplotlib), 16x16 patches; red: end of the mask", fontsize=7)
    fig.tight_layout(); fig.savefig(OUT / "rendered-text.png", dpi=150); plt.close(fig)


if __name__ == "__main__":
    main(*sys.argv[1:3])
