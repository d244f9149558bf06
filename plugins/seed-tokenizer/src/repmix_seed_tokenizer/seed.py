"""``seed-tokenizer`` (encoder) and ``seed-vq-loss`` (loss): SEED's causal Q-Former, VQ codes and decoder.

Ge et al. (2023), *Planting a SEED of Vision in Large Language Model*; official code ``AILab-CVC/SEED``
(``qformer_quantizer.py``: ``Blip2QformerQuantizer``, ``VectorQuantizer2``; ``qformer_causual.py``).

image -> ViT patch tokens (the paper: frozen EVA-CLIP-g; here a small ViT, trainable by default since
no pretrained ViT installs offline) -> **causal Q-Former**: ``queries`` learned queries, each block a
causal self-attention between queries (query i sees queries <= i), a cross-attention to the patch
tokens and an MLP -> causal embeddings E [B, Q, D].

* stage 1: the final causal embedding E[:, -1] (``image``, projected) is trained image-text
  contrastively (declare std's ``info-nce`` on an alignment with a text tower);
* stage 2: ``encode_task_layer`` (D -> D, tanh, -> code_dim), VQ against a ``codebook_size`` x
  ``code_dim`` codebook with straight-through gradients, ``decode_task_layer`` (code_dim -> D) and a
  ``decoder_layers``-block transformer reconstructing E (``reconstruction`` vs ``target`` = sg[E]).

``seed-vq-loss``: MSE(reconstruction, target) + ||sg[z_q] - z||^2 + beta ||z_q - sg[z]||^2 (the
``legacy`` ordering of ``VectorQuantizer2``), with z, z_q read from the tower's ``extras``.
Both stages can be trained at once by declaring both losses (the paper trains them in sequence).
"""

from __future__ import annotations

from typing import ClassVar

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
    Loss,
    LossInputs,
    LossOutput,
    Runtime,
)
from repmix.sdk.vit import Block, PatchViT, image_geometry, patchify
from torch import Tensor, nn

CITATION = (
    "Ge, Ge, Zeng, Wang, Shan (2023). Planting a SEED of Vision in Large Language Model. arXiv:2307.08041. "
    "Code: AILab-CVC/SEED."
)


def vq_loss(z: Tensor, zq: Tensor, beta: float) -> Tensor:
    """VectorQuantizer2 (legacy=True): mean((sg[z_q] - z)^2) + beta mean((z_q - sg[z])^2)."""
    return torch.mean((zq.detach() - z) ** 2) + beta * torch.mean((zq - z.detach()) ** 2)


def quantize(z: Tensor, codebook: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Nearest codebook rows: (straight-through z_q = z + sg[z_q - z], ids, raw z_q)."""
    d = z.pow(2).sum(-1, keepdim=True) - 2 * z @ codebook.T + codebook.pow(2).sum(-1)
    ids = d.argmin(-1)
    zq = codebook[ids]
    return z + (zq - z).detach(), ids, zq


class QFormerLayer(nn.Module):
    """Causal self-attention among queries, cross-attention to image tokens, MLP (pre-LN)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.self_attn = Block(dim, heads)
        self.cross_attn = Block(dim, heads)
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, q: Tensor, image: Tensor, image_mask: Tensor | None = None) -> Tensor:
        n = q.shape[1]
        causal = torch.ones(n, n, dtype=torch.bool, device=q.device).tril()
        q = q + self.self_attn.attend(q, allowed=causal)[0]
        q = q + self.cross_attn.attend(q, mask=image_mask, context=image)[0]
        return q + self.mlp(self.norm(q))


class CausalQFormer(nn.Module):
    """Learned queries -> causal embeddings [B, Q, D]."""

    def __init__(self, dim: int, heads: int, queries: int, layers: int) -> None:
        super().__init__()
        self.queries = nn.Parameter(0.02 * torch.randn(1, queries, dim))
        self.layers = nn.ModuleList(QFormerLayer(dim, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, image: Tensor, image_mask: Tensor | None = None, queries: Tensor | None = None) -> Tensor:
        q = (self.queries if queries is None else queries).expand(image.shape[0], -1, -1)
        for layer in self.layers:
            q = layer(q, image, image_mask)
        return self.norm(q)



class SeedTokenizer(Encoder):
    """ViT -> causal Q-Former -> VQ codes -> reconstruction of the causal embeddings."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``seed-tokenizer``."""

        hidden_size: int = Field(64, ge=1, description="width D of the ViT and the Q-Former (paper: 1408 / 768)")
        vit_layers: int = Field(2, ge=1, description="ViT blocks")
        heads: int = Field(4, ge=1, description="attention heads (must divide hidden_size)")
        backbone_trainable: bool = Field(True, description="train the ViT (the paper freezes a pretrained EVA-CLIP)")
        queries: int = Field(8, ge=1, description="causal queries / codes per image (paper: 32)")
        qformer_layers: int = Field(2, ge=1, description="Q-Former blocks (paper: 12)")
        code_dim: int = Field(16, ge=1, description="width of a code (paper: 32)")
        codebook_size: int = Field(256, ge=2, description="codes (paper: 8192)")
        decoder_layers: int = Field(2, ge=1, description="blocks reconstructing the causal embeddings (paper: 4)")
        projection_dim: int | None = Field(None, ge=1, description="width of 'image' (the final causal embedding, projected)")

        @model_validator(mode="after")
        def _heads(self) -> SeedTokenizer.Config:
            if self.hidden_size % self.heads:
                raise ValueError(f"heads {self.heads} must divide hidden_size {self.hidden_size}")
            return self

    config: Config

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:
        d = config.hidden_size
        return EncoderSignature({
            "query": GranularitySpec("sequence", d),
            "image": GranularitySpec("pooled", config.projection_dim or d),
            "reconstruction": GranularitySpec("pooled", config.queries * d),
            "target": GranularitySpec("pooled", config.queries * d),
        })

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        image_size, self.patch_size, channels = image_geometry(runtime.tokenizer, "seed-tokenizer")
        d = config.hidden_size
        self.vit = PatchViT(channels * self.patch_size**2, (image_size // self.patch_size) ** 2, d, config.vit_layers, config.heads)
        if not config.backbone_trainable:
            for p in self.vit.parameters():
                p.requires_grad_(False)
        self.qformer = CausalQFormer(d, config.heads, config.queries, config.qformer_layers)
        self.projection = nn.Linear(d, config.projection_dim) if config.projection_dim else nn.Identity()
        self.encode_task_layer = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, config.code_dim))
        self.codebook = nn.Parameter(torch.randn(config.codebook_size, config.code_dim) / config.code_dim**0.5)
        self.decode_task_layer = nn.Linear(config.code_dim, d)
        self.decoder = nn.ModuleList(Block(d, config.heads) for _ in range(config.decoder_layers))
        self.decoder_pos = nn.Parameter(0.02 * torch.randn(1, config.queries, d))
        self.decoder_norm = nn.LayerNorm(d)

    def causal_embeddings(self, pixels: Tensor, queries: Tensor | None = None) -> Tensor:
        tokens, _ = self.vit(patchify(pixels, self.patch_size))
        return self.qformer(tokens[:, 1:], queries=queries)

    def forward(self, batch: dict[str, Tensor], output_layers: bool = False) -> Encoded:
        e = self.causal_embeddings(batch["pixel_values"])
        b, q, d = e.shape
        z = self.encode_task_layer(e)
        zq_st, ids, zq = quantize(z.reshape(-1, z.shape[-1]), self.codebook)
        h = self.decode_task_layer(zq_st.reshape(b, q, -1)) + self.decoder_pos
        for blk in self.decoder:
            h = blk(h)
        rec = self.decoder_norm(h)
        grans = {
            "query": Granularity(e, torch.ones(b, q, dtype=torch.bool, device=e.device)),
            "image": Granularity(self.projection(e[:, -1])),
            "reconstruction": Granularity(rec.reshape(b, -1)),
            "target": Granularity(e.detach().reshape(b, -1)),
        }
        return Encoded(grans, extras={"ids": ids.reshape(b, q), "latents": z.reshape(-1, z.shape[-1]), "quantized": zq})


class SeedVQLoss(Loss):
    """MSE(reconstruction, target) over the alignment's two sides + the VQ loss from the tower's extras."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``seed-vq-loss``."""

        beta: float = Field(0.25, ge=0, description="beta of the VQ loss (legacy ordering)")
        reconstruction_weight: float = Field(1.0, ge=0, description="weight of the reconstruction MSE")

    config: Config

    def forward(self, inputs: LossInputs) -> LossOutput:
        name = next(iter(inputs.alignments))
        rec, target = inputs.sides(name)
        mse = F.mse_loss(rec.hidden, target.hidden)
        total = self.config.reconstruction_weight * mse
        logs = {"reconstruction_mse": float(mse.detach())}
        extras = inputs.outputs[inputs.between[name][0][0]].extras
        if isinstance(extras.get("latents"), Tensor):
            vq = vq_loss(extras["latents"], extras["quantized"], self.config.beta)
            total = total + vq
            logs["vq"] = float(vq.detach())
            logs["codes_used"] = float(extras["ids"].unique().numel())
        return LossOutput(total, logs)
