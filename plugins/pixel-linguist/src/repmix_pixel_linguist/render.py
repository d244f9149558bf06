"""Pixel Linguist: text rendered to a pixel strip, cut into patches, encoded by a ViT.

Xiao et al. (2024), *Pixel Sentence Representation Learning*; official code
``gowitheflow-1998/Pixel-Linguist`` (PIXEL backbone, PangoCairo renderer, symmetric InfoNCE with
tau = 0.05 in ``PIXELTrainerForContrastiveWithEval.compute_loss``).

* ``render-text`` (tokenizer): any string (a sentence, a SMILES string, ...) -> a 16-pixel-high
  grey strip drawn with DejaVu Sans Mono, the font file shipped inside matplotlib (identical on
  every machine), cut into 16x16 patches: ``{"patches": [B, N, 256], "mask": [B, N]}``; N covers the
  inked width plus one blank patch (PIXEL's end-of-text patch), at most ``max_patches``.
* ``pixel-vit`` (encoder): linear patch embedding + positions + CLS + pre-LN blocks with a
  key-padding mask: ``token`` [B, N, D] (+ mask), ``cls`` [B, D]. Mean pooling (std ``mean``) gives
  the sentence vector, as the paper's mean pooling.
* ``typo-pairs`` (dataset): the unsupervised "visual alignment" stage (unsup-c): each sentence of
  a file paired with a copy carrying seeded character-level typos.
* The loss is std's ``info-nce`` with ``temperature: 0.05`` (symmetric by default).

Deviation: the paper renders with PangoCairo and fallback fonts; a fixed-advance font makes a
one-character substitution change only the patches under that character (tested).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from repmix.sdk import (
    ComponentConfig,
    ConfigError,
    Dataset,
    Encoded,
    Encoder,
    EncoderSignature,
    Examples,
    Granularity,
    GranularitySpec,
    InputError,
    Runtime,
    Tokenizer,
    read_table,
)
from torch import Tensor

from repmix.sdk.vit import PatchViT

CITATION = (
    "Xiao, Huang, Chen, Al Moubayed (2024). Pixel Sentence Representation Learning. arXiv:2402.08183. "
    "Code: gowitheflow-1998/Pixel-Linguist. PIXEL: Rust et al. (2023), Language Modelling with Pixels, ICLR."
)


@lru_cache(maxsize=8)
def _font(size: int) -> Any:
    import matplotlib
    from PIL import ImageFont

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSansMono.ttf"
    return ImageFont.truetype(str(path), size)


def render(text: str, *, height: int = 16, max_patches: int = 64, font_size: int = 13, margin: int = 2) -> tuple[np.ndarray, int]:
    """(strip float32 [height, max_patches·height] with ink = 1, patches that hold text + 1 end patch)."""
    from PIL import Image, ImageDraw

    width = max_patches * height
    image = Image.new("L", (width, height), 0)
    font = _font(font_size)
    ImageDraw.Draw(image).text((margin, 0), text, fill=255, font=font)
    used = margin + font.getlength(text)
    real = min(max_patches, max(1, math.ceil(used / height) + 1))
    return np.asarray(image, dtype=np.float32) / 255.0, real


class RenderTextTokenizer(Tokenizer):
    """Strings -> rendered 16x16 patches ``[B, N, 256]`` and a mask of the patches that carry text."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``render-text``."""

        height: int = Field(16, ge=4, description="strip height = patch side in pixels")
        max_patches: int = Field(64, ge=1, description="patches per item at most (paper: 64); longer text is cut")
        font_size: int = Field(13, ge=4, description="DejaVu Sans Mono size in pixels")

        @model_validator(mode="after")
        def _fits(self) -> RenderTextTokenizer.Config:
            if self.font_size > self.height:
                raise ValueError(f"font_size {self.font_size} does not fit the strip height {self.height}")
            return self

    config: Config

    @property
    def patch_dim(self) -> int:
        return self.config.height**2

    def render(self, text: str) -> tuple[np.ndarray, int]:
        c = self.config
        return render(text, height=c.height, max_patches=c.max_patches, font_size=c.font_size)

    def patches(self, text: str) -> tuple[Tensor, int]:
        """``[max_patches, h·h]`` patches of one item and how many are real."""
        strip, real = self.render(text)
        h = self.config.height
        p = torch.from_numpy(strip).reshape(h, -1, h).permute(1, 0, 2).reshape(-1, h * h)
        return p, real

    def __call__(self, items: Sequence[Any]) -> dict[str, Tensor]:
        rendered = [self.patches(str(t)) for t in items]
        n = max([1, *(r for _, r in rendered)])
        patches = torch.stack([p[:n] for p, _ in rendered]) if rendered else torch.zeros(0, n, self.patch_dim)
        mask = torch.arange(n)[None, :] < torch.tensor([r for _, r in rendered] or [0])[:, None]
        return {"patches": patches * mask[..., None], "mask": mask}

    def check_item(self, item: Any) -> str | None:
        if not isinstance(item, str):
            return f"expected a string, got {type(item).__name__}"
        return None if item.strip() else "empty string"

    def sort_key(self, item: Any) -> int:
        return len(item) if isinstance(item, str) else 0


class PixelViT(Encoder):
    """A ViT over rendered-text patches with a key-padding mask (PIXEL, from scratch)."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``pixel-vit``."""

        hidden_size: int = Field(64, ge=1, description="width D (PIXEL: 768)")
        layers: int = Field(2, ge=1, description="blocks (PIXEL: 12)")
        heads: int = Field(4, ge=1, description="attention heads (must divide hidden_size)")

        @model_validator(mode="after")
        def _heads(self) -> PixelViT.Config:
            if self.hidden_size % self.heads:
                raise ValueError(f"heads {self.heads} must divide hidden_size {self.hidden_size}")
            return self

    config: Config

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:
        d = config.hidden_size
        return EncoderSignature({"token": GranularitySpec("sequence", d), "cls": GranularitySpec("pooled", d)})

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        cfg = getattr(runtime.tokenizer, "config", None)
        try:
            height, max_patches = int(cfg.height), int(cfg.max_patches)  # type: ignore[union-attr]
        except (AttributeError, TypeError):
            raise ConfigError("pixel-vit reads height and max_patches from the tower's tokenizer",
                              hint="use the render-text tokenizer in this tower") from None
        self.vit = PatchViT(height * height, max_patches, config.hidden_size, config.layers, config.heads)

    def forward(self, batch: dict[str, Tensor], output_layers: bool = False) -> Encoded:
        mask = batch["mask"].bool()
        x, _ = self.vit(batch["patches"], mask)
        return Encoded({"token": Granularity(x[:, 1:], mask), "cls": Granularity(x[:, 0])})


# --------------------------------------------------------------------------- augmentation
def typo(text: str, rng: random.Random, edits: int = 1, kinds: Sequence[str] = ("substitute", "delete", "insert", "swap")) -> str:
    """``text`` with ``edits`` character-level typos (letters only are replaced or inserted)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    chars = list(text)
    for _ in range(edits):
        positions = [i for i, ch in enumerate(chars) if ch.isalpha()]
        if not positions:
            break
        i = rng.choice(positions)
        kind = rng.choice(list(kinds))
        if kind == "substitute":
            chars[i] = rng.choice([c for c in letters if c != chars[i].lower()])
        elif kind == "delete" and len(chars) > 1:
            del chars[i]
        elif kind == "insert":
            chars.insert(i, rng.choice(letters))
        elif kind == "swap" and i + 1 < len(chars):
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


class TypoPairsConfig(ComponentConfig):
    """Options of ``typo-pairs``."""

    path: str = Field(description="a TSV/CSV/JSONL file with sentence columns (relative to the working directory)")
    columns: list[str] = Field(default_factory=lambda: ["sentence1", "sentence2"], min_length=1, description="columns read")
    fields: dict[str, str] = Field(
        default_factory=lambda: {"query": "clean", "document": "noisy"},
        description="tower name -> 'clean' (the sentence) or 'noisy' (its typo copy)",
    )
    edits: int = Field(1, ge=0, description="character typos per noisy copy")
    kinds: list[Literal["substitute", "delete", "insert", "swap"]] = Field(
        default_factory=lambda: ["substitute", "delete", "insert", "swap"], min_length=1, description="typo kinds drawn from"
    )
    seed: int = Field(0, description="seed of the typos")
    limit: int | None = Field(None, ge=1, description="keep the first N distinct sentences")
    split: str = Field("train", description="the split name (the file is one split)")


class TypoPairsDataset(Dataset):
    """Distinct sentences of a file, each paired with a seeded typo copy (unsup-c visual alignment)."""

    Config: ClassVar[type[ComponentConfig]] = TypoPairsConfig
    citation: ClassVar[str] = CITATION
    config: TypoPairsConfig

    def load(self, split: str | None = None) -> Examples:
        c = self.config
        if not Path(c.path).is_file():
            raise InputError(f"file {c.path!r} does not exist", hint="relative to the working directory")
        fmt = "tsv" if c.path.endswith(".tsv") else "auto"
        table = read_table(Path(c.path), c.columns, fmt=fmt, quoting="none" if fmt == "tsv" else "auto")
        seen: dict[str, None] = {}
        for row in table.rows:
            for col in c.columns:
                seen.setdefault(str(row.values[col]).strip(), None)
        sentences = [s for s in seen if s]
        if c.limit is not None:
            sentences = sentences[: c.limit]
        rng = random.Random(c.seed)
        noisy = [typo(s, rng, c.edits, c.kinds) for s in sentences]
        cols = {tower: list(sentences) if what == "clean" else list(noisy) for tower, what in c.fields.items()}
        return Examples(cols, notes=[f"{len(sentences)} distinct sentences from {c.path}, {c.edits} typo(s) each"])
