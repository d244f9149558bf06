"""``multi-lane``: per-task lanes that summarise a frozen ViT's patch tokens with learned selectors.

De Min et al. (CoLLAs 2024), *MULTI-LANE: Summarizing Patch Tokens for Multi-Label
Class-Incremental Learning*; official code ``tdemin16/multi-lane`` (``multi_lane/blocks.py``).

A frozen ViT runs once over the N patch tokens (hidden states x^0..x^L). Each task t owns
``selectors`` vectors S_t [G, D], a task CLS token, and prefix prompts for the first
``prompt_layers`` blocks. Lane t:

* summaries s = softmax_n(S_t x_n^T / sqrt(D)) x — G tokens from N patches (x detached:
  the frozen pass);
* lane input [cls_t; s]; block l runs with the frozen q/k/v/MLP weights plus prefix
  key/value prompts of task t (orthogonal init) when l < prompt_layers;
* "drop and replace": after each block the G summary tokens are recomputed from the next
  frozen patch states x^{l+1} with the same selectors; the lane CLS is carried on;
* the lane output is its final CLS (after the frozen final LayerNorm).

A lane attends over G + 1 (+ prompts) tokens instead of N + 1. Lanes never read each other:
adding lane t+1 or changing its parameters leaves lane t's output bit-exact.

Granularities: ``lanes`` [B, T, D] (one CLS per task), ``cls`` [B, T·D] (the heads
concatenated, ``head_mode=concat``), ``summary`` [B, T·G, D] (every lane's last summaries).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from pydantic import Field, model_validator
from repmix.sdk import (
    ComponentConfig,
    Encoded,
    Encoder,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    Runtime,
)
from repmix.sdk.vit import PatchViT, image_geometry, patchify
from torch import Tensor, nn

CITATION = (
    "De Min, Mancini, Lathuilière, Roy, Ricci (2024). MULTI-LANE: Summarizing Patch Tokens for Multi-Label "
    "Class-Incremental Learning. CoLLAs 2024. Code: tdemin16/multi-lane."
)


def summarize(selectors: Tensor, patches: Tensor) -> tuple[Tensor, Tensor]:
    """G summaries of N patches: (softmax_n(S x^T / sqrt(D)) x ``[B, G, D]``, weights ``[B, G, N]``)."""
    logits = torch.einsum("gd,bnd->bgn", selectors, patches) / math.sqrt(patches.shape[-1])
    weights = logits.softmax(dim=-1)
    return weights @ patches, weights


class Lane(nn.Module):
    """One task's parameters: selectors, CLS token, prefix prompts (keys, values) per prompted block."""

    def __init__(self, dim: int, selectors: int, prompts: int, prompt_layers: int) -> None:
        super().__init__()
        self.selectors = nn.Parameter(torch.randn(selectors, dim) * dim**-0.5)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.prompts = nn.ParameterList()
        for _ in range(prompt_layers):
            p = torch.empty(2 * prompts, dim)
            nn.init.orthogonal_(p)
            self.prompts.append(nn.Parameter(p))



class MultiLaneEncoder(Encoder):
    """A frozen ViT plus ``tasks`` lanes of ``selectors`` summary tokens each."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``multi-lane``."""

        hidden_size: int = Field(64, ge=1, description="token width D of the ViT")
        layers: int = Field(2, ge=1, description="ViT blocks")
        heads: int = Field(4, ge=1, description="attention heads (must divide hidden_size)")
        tasks: int = Field(1, ge=1, description="number of lanes (one per task)")
        selectors: int = Field(4, ge=1, description="G: summary tokens per lane (paper: 20)")
        prompts: int = Field(4, ge=0, description="prefix prompts per prompted block (keys and values each; paper: 20)")
        prompt_layers: int = Field(1, ge=0, description="blocks with prefix prompts, from the first (paper: 5)")
        backbone_trainable: bool = Field(False, description="train the ViT too (the paper freezes it)")
        projection_dim: int | None = Field(None, ge=1, description="a learned linear map of each lane CLS to this width")

        @model_validator(mode="after")
        def _check(self) -> MultiLaneEncoder.Config:
            if self.hidden_size % self.heads:
                raise ValueError(f"heads {self.heads} must divide hidden_size {self.hidden_size}")
            if self.prompt_layers > self.layers:
                raise ValueError(f"prompt_layers {self.prompt_layers} exceeds layers {self.layers}")
            return self

    config: Config

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:
        d = config.projection_dim or config.hidden_size
        return EncoderSignature({
            "lanes": GranularitySpec("sequence", d),
            "cls": GranularitySpec("pooled", d * config.tasks),
            "summary": GranularitySpec("sequence", config.hidden_size),
        })

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        image_size, self.patch_size, channels = image_geometry(runtime.tokenizer, "multi-lane")
        n = (image_size // self.patch_size) ** 2
        self.vit = PatchViT(channels * self.patch_size**2, n, config.hidden_size, config.layers, config.heads)
        if not config.backbone_trainable:
            for p in self.vit.parameters():
                p.requires_grad_(False)
        prompts = config.prompt_layers if config.prompts else 0
        self.lanes = nn.ModuleList(Lane(config.hidden_size, config.selectors, config.prompts, prompts) for _ in range(config.tasks))
        self.projection = nn.Linear(config.hidden_size, config.projection_dim) if config.projection_dim else nn.Identity()

    def frozen_states(self, patches: Tensor) -> list[Tensor]:
        """The ViT's patch-token states x^0..x^L (CLS dropped), detached unless the backbone trains."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.config.backbone_trainable):
            _, states = self.vit(patches)
        states = [s[:, 1:] for s in states]
        return states if self.config.backbone_trainable else [s.detach() for s in states]

    def run_lane(self, lane: Lane, states: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Lane CLS ``[B, D]`` and its last summaries ``[B, G, D]``."""
        b = states[0].shape[0]
        cls = lane.cls.expand(b, -1, -1)
        summary, _ = summarize(lane.selectors, states[0])
        for layer, blk in enumerate(self.vit.blocks):
            z = torch.cat([cls, summary], dim=1)
            prefix = None
            if layer < len(lane.prompts):
                p = lane.prompts[layer].unsqueeze(0).expand(b, -1, -1)
                half = p.shape[1] // 2
                prefix = (p[:, :half], p[:, half:])
            z = blk(z, prefix=prefix)
            cls = z[:, :1]
            summary, _ = summarize(lane.selectors, states[layer + 1])  # drop and replace
        return self.vit.norm(cls)[:, 0], summary

    def forward(self, batch: dict[str, Tensor], output_layers: bool = False) -> Encoded:
        states = self.frozen_states(patchify(batch["pixel_values"], self.patch_size))
        outs = [self.run_lane(lane, states) for lane in self.lanes]
        lanes = self.projection(torch.stack([o[0] for o in outs], dim=1))
        summary = torch.cat([o[1] for o in outs], dim=1)
        b = lanes.shape[0]
        ones = lambda n: torch.ones(b, n, dtype=torch.bool, device=lanes.device)  # noqa: E731
        return Encoded({
            "lanes": Granularity(lanes, ones(lanes.shape[1])),
            "cls": Granularity(lanes.reshape(b, -1)),
            "summary": Granularity(summary, ones(summary.shape[1])),
        })
