"""``token-corr-vit``: a ViT whose patch tokens are compressed mid-network by token-level correlation.

Zhang et al. (2024), *Token-level Correlation-guided Compression for Efficient Multimodal Document
Understanding*. Parameter-free and plug-and-play: the selection has no weights, so a ViT trained
without compression can be evaluated with it (the paper applies it to a frozen MLLM).

Per image, before block ``select_after``:

1. patch-patch correlation: cosine similarity of that block's attention keys; a patch is
   redundant when more than ``counterparts`` other patches exceed ``threshold``;
2. redundancy r = share of redundant patches; budget N' = max(min_keep, ceil((1 - r) N))
   (``budget: fixed`` uses ceil(keep_ratio N) instead, for budget sweeps);
3. global branch: CLS->patch attention of that block (mean over heads); patches whose score is an
   IQR outlier (> Q3 + 1.5 IQR) are always kept;
4. local branch: the remaining budget is drawn from the other patches with probability
   proportional to the CLS attention of the shallow block ``shallow_layer`` (sampling without
   replacement in training; the top scores in eval mode, so encoding is deterministic);
5. every dropped patch is merged into its most similar kept patch (key cosine): the kept token
   becomes the mean of its group (``merge``), so sum_groups size x token = sum of all patches.

The remaining blocks run on [CLS; kept tokens] with a key-padding mask (ragged across images).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
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
from torch import Tensor

CITATION = (
    "Zhang et al. (2024). Token-level Correlation-guided Compression for Efficient Multimodal Document "
    "Understanding. arXiv 2024 (code named by the paper: JiuTian-VL/TokenCorrCompressor)."
)


def redundancy(keys: Tensor, threshold: float, counterparts: int) -> tuple[Tensor, Tensor]:
    """(redundant flags [N], key cosine similarity [N, N] with -inf on the diagonal) of one image's keys ``[N, D]``."""
    kn = F.normalize(keys, dim=-1)
    sim = kn @ kn.T
    sim = sim.masked_fill(torch.eye(len(keys), dtype=torch.bool, device=keys.device), float("-inf"))
    return (sim > threshold).sum(1) > counterparts, sim


def iqr_outliers(scores: Tensor) -> Tensor:
    """Flags of the scores above Q3 + 1.5 IQR (Tukey's fence)."""
    q1, q3 = torch.quantile(scores.float(), torch.tensor([0.25, 0.75], device=scores.device))
    return scores > q3 + 1.5 * (q3 - q1)


def select_tokens(
    keys: Tensor,
    deep_attention: Tensor,
    shallow_attention: Tensor,
    *,
    threshold: float = 0.9,
    counterparts: int = 0,
    min_keep: int = 1,
    keep_ratio: float | None = None,
    sample: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, dict[str, Any]]:
    """Indices (sorted) of the patches one image keeps, and what decided them.

    ``keys`` [N, D]; ``deep_attention`` / ``shallow_attention`` [N]: CLS->patch attention.
    ``keep_ratio`` replaces the adaptive budget by a fixed one. IQR outliers are kept even
    when they exceed the budget.
    """
    n = keys.shape[0]
    flags, sim = redundancy(keys, threshold, counterparts)
    r = float(flags.float().mean())
    budget = math.ceil((1.0 - r) * n) if keep_ratio is None else math.ceil(keep_ratio * n)
    budget = min(n, max(min_keep, budget))
    outliers = iqr_outliers(deep_attention)
    kept = outliers.clone()
    rest = budget - int(kept.sum())
    if rest > 0:
        candidates = (~kept).nonzero().flatten()
        weights = shallow_attention[candidates].float().clamp_min(0) + 1e-12
        if sample:
            pick = torch.multinomial(weights, rest, replacement=False, generator=generator)
        else:
            pick = torch.topk(weights, rest).indices
        kept[candidates[pick]] = True
    idx = kept.nonzero().flatten()
    return idx, {"redundancy": r, "budget": budget, "outliers": outliers, "similarity": sim}


def merge_into_kept(tokens: Tensor, kept: Tensor, sim: Tensor) -> tuple[Tensor, Tensor]:
    """Merge every dropped token into its most similar kept one: (group means [K, D], group sizes [K])."""
    n = tokens.shape[0]
    dropped = torch.ones(n, dtype=torch.bool, device=tokens.device)
    dropped[kept] = False
    target = torch.arange(len(kept), device=tokens.device)
    assign = torch.empty(n, dtype=torch.long, device=tokens.device)
    assign[kept] = target
    if bool(dropped.any()):
        assign[dropped] = sim[dropped][:, kept].argmax(dim=1)
    sizes = torch.zeros(len(kept), device=tokens.device, dtype=tokens.dtype).index_add_(0, assign, torch.ones(n, dtype=tokens.dtype, device=tokens.device))
    sums = torch.zeros(len(kept), tokens.shape[1], device=tokens.device, dtype=tokens.dtype).index_add_(0, assign, tokens)
    return sums / sizes[:, None], sizes



class TokenCorrViT(Encoder):
    """A small ViT with correlation-guided patch-token compression before block ``select_after``."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``token-corr-vit``."""

        hidden_size: int = Field(64, ge=1, description="token width D")
        layers: int = Field(4, ge=2, description="transformer blocks")
        heads: int = Field(4, ge=1, description="attention heads (must divide hidden_size)")
        selection: Literal["correlation", "random", "none"] = Field(
            "correlation", description="correlation: the paper; random: the same budget drawn uniformly; none: all patches"
        )
        budget: Literal["adaptive", "fixed"] = Field("adaptive", description="adaptive: ceil((1 - r) N); fixed: ceil(keep_ratio N)")
        keep_ratio: float = Field(0.5, gt=0, le=1, description="fixed budget as a share of the patches")
        select_after: int = Field(2, ge=1, description="compress before this block (0-based; the deep layer)")
        shallow_layer: int = Field(0, ge=0, description="block whose CLS attention drives the local sampling")
        threshold: float = Field(0.9, ge=-1, le=1, description="key cosine above which two patches are correlated")
        counterparts: int = Field(0, ge=0, description="a patch is redundant with more than this many correlated patches")
        min_keep: int = Field(1, ge=1, description="minimum budget (patches kept)")
        merge: bool = Field(True, description="merge dropped patches into their most similar kept patch")
        seed: int = Field(0, description="seed of the random selection in eval mode")
        projection_dim: int | None = Field(None, ge=1, description="a learned linear map of the outputs to this width")

        @model_validator(mode="after")
        def _layers(self) -> TokenCorrViT.Config:
            if self.hidden_size % self.heads:
                raise ValueError(f"heads {self.heads} must divide hidden_size {self.hidden_size}")
            if self.select_after >= self.layers:
                raise ValueError(f"select_after {self.select_after} must be below layers {self.layers}")
            if self.shallow_layer > self.select_after:
                raise ValueError("shallow_layer must not come after select_after")
            return self

    config: Config

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:
        d = config.projection_dim or config.hidden_size
        return EncoderSignature({"patch": GranularitySpec("sequence", d), "cls": GranularitySpec("pooled", d)})

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        image_size, self.patch_size, channels = image_geometry(runtime.tokenizer, "token-corr-vit")
        n = (image_size // self.patch_size) ** 2
        self.vit = PatchViT(channels * self.patch_size**2, n, config.hidden_size, config.layers, config.heads)
        self.projection = torch.nn.Linear(config.hidden_size, config.projection_dim) if config.projection_dim else torch.nn.Identity()

    def _compress(self, x: Tensor, blk: Any, shallow: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        c = self.config
        keys = blk.keys(x)[:, 1:]
        _, weights = blk.attend(x)
        deep = weights[:, :, 0, 1:].mean(1)
        rows, kept_flags, budgets, reds = [], [], [], []
        n = x.shape[1] - 1
        for i in range(x.shape[0]):
            if c.selection == "random":
                flags, sim = redundancy(keys[i], c.threshold, c.counterparts)
                r = float(flags.float().mean())
                budget = math.ceil((1 - r) * n) if c.budget == "adaptive" else math.ceil(c.keep_ratio * n)
                budget = min(n, max(c.min_keep, budget))
                gen = None if self.training else torch.Generator().manual_seed(c.seed)
                idx = torch.randperm(n, generator=gen)[:budget].sort().values.to(x.device)
                info: dict[str, Any] = {"redundancy": r, "budget": budget, "similarity": sim}
            else:
                idx, info = select_tokens(
                    keys[i].detach(), deep[i].detach(), shallow[i].detach(), threshold=c.threshold,
                    counterparts=c.counterparts, min_keep=c.min_keep,
                    keep_ratio=c.keep_ratio if c.budget == "fixed" else None, sample=self.training,
                )
            tokens = x[i, 1:]
            if c.merge:
                sim = info["similarity"]
                kept_tokens, _ = merge_into_kept(tokens, idx, sim.masked_fill(torch.isinf(sim), -2.0))
            else:
                kept_tokens = tokens[idx]
            rows.append(torch.cat([x[i, :1], kept_tokens], 0))
            flag = torch.zeros(n, dtype=torch.bool, device=x.device)
            flag[idx] = True
            kept_flags.append(flag)
            budgets.append(len(idx))
            reds.append(info["redundancy"])
        width = max(len(r) for r in rows)
        out = x.new_zeros(x.shape[0], width, x.shape[2])
        mask = torch.zeros(x.shape[0], width, dtype=torch.bool, device=x.device)
        for i, r in enumerate(rows):
            out[i, : len(r)] = r
            mask[i, : len(r)] = True
        extras = {"kept": torch.stack(kept_flags), "kept_count": torch.tensor(budgets), "redundancy": torch.tensor(reds)}
        return out, mask, extras

    def forward(self, batch: dict[str, Tensor], output_layers: bool = False) -> Encoded:
        c = self.config
        x = self.vit.tokens(patchify(batch["pixel_values"], self.patch_size))
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        shallow = None
        extras: dict[str, Any] = {}
        for layer, blk in enumerate(self.vit.blocks):
            if c.selection != "none" and layer == c.shallow_layer:
                shallow = blk.attend(x)[1][:, :, 0, 1:].mean(1)
            if c.selection != "none" and layer == c.select_after:
                assert shallow is not None
                x, mask, extras = self._compress(x, blk, shallow)
            x = blk(x, mask)
        x = self.projection(self.vit.norm(x))
        if c.selection == "none":
            extras = {"kept": torch.ones(x.shape[0], x.shape[1] - 1, dtype=torch.bool), "kept_count": torch.full((x.shape[0],), x.shape[1] - 1)}
        return Encoded({"patch": Granularity(x[:, 1:], mask[:, 1:]), "cls": Granularity(x[:, 0])}, extras=extras)
