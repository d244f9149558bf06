"""``lfq-autoencoder`` (encoder) and ``lfq-loss`` (loss): a small causal conv tokenizer with LFQ or VQ.

Encoder: pixels (from the tower's ``image-patches`` tokenizer: ``pixel_values`` [B, C, H, W], or a
video [B, C, T, H, W]) -> causal 3-D conv encoder (``downsample`` stride-2 stages in space, none in
time) -> latents z in R^K per position -> LFQ (sign) or VQ (nearest of 2^K codes) -> 2-D conv decoder
per frame -> reconstruction.

Granularities: ``code`` [B, N, K] (quantized codes, straight-through; N = T·h·w positions),
``reconstruction`` [B, C·T·H·W] and ``pixels`` [B, C·T·H·W] (the input, a constant target).
``extras``: ``ids`` [B, T, h, w] (token ids in [0, 2^K)), ``latents`` [B·N, K] (z), ``quantized``
(VQ: the raw codebook rows), ``quantizer``.

Loss: declared on an alignment between ``reconstruction`` and ``pixels`` of the same tower (its
score matrix is not used): MSE(reconstruction, pixels) + the quantizer's terms read from the
tower's ``extras`` (LFQ: entropy penalty + commitment; VQ: codebook + beta commitment).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from repmix.sdk import (
    ComponentConfig,
    ConfigError,
    Encoded,
    Encoder,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    InputError,
    Loss,
    LossInputs,
    LossOutput,
    Runtime,
)
from repmix.sdk.vit import image_geometry
from torch import Tensor, nn

from repmix_magvit_lfq.quantizers import (
    CausalConv3d,
    codes_to_ids,
    entropy_terms,
    lfq_quantize,
    vq_quantize,
)

CITATION = (
    "Yu et al. (2024). Language Model Beats Diffusion: Tokenizer is Key to Visual Generation (MAGVIT-v2), ICLR 2024; "
    "Lijun Yu, Towards Multi-Task Multi-Modal Models: A Video Generative Perspective, CMU PhD thesis, 2024. "
    "LFQ formulas as in lucidrains/vector-quantize-pytorch (third-party)."
)



class LFQAutoencoder(Encoder):
    """Causal conv encoder -> LFQ (or VQ) -> conv decoder; images and videos share it."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``lfq-autoencoder``."""

        quantizer: Literal["lfq", "vq"] = Field("lfq", description="lfq: sign of K latents; vq: nearest of 2^K learned codes")
        bits: int = Field(8, ge=1, le=14, description="K: bits per token (vocabulary 2^K, equal for lfq and vq)")
        code_dim: int | None = Field(None, ge=1, description="vq: width of a codebook row (default: bits)")
        hidden: int = Field(32, ge=1, description="conv channels")
        downsample: int = Field(1, ge=0, le=4, description="stride-2 stages in space (tokens per side = image_size / 2^downsample)")
        temporal_kernel: int = Field(3, ge=1, description="kernel size in time of the causal convolutions")

    config: Config

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:
        width = config.bits if config.quantizer == "lfq" else (config.code_dim or config.bits)
        return EncoderSignature({
            "code": GranularitySpec("sequence", width),
            "reconstruction": GranularitySpec("pooled", None),
            "pixels": GranularitySpec("pooled", None),
        })

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        image_size, _, channels = image_geometry(runtime.tokenizer, "lfq-autoencoder")
        if image_size % (2**config.downsample):
            raise ConfigError(f"image_size {image_size} is not divisible by 2^downsample = {2 ** config.downsample}")
        c, h, kt = channels, config.hidden, config.temporal_kernel
        width = self.signature(config).granularities["code"].dim
        assert width is not None
        layers: list[nn.Module] = [CausalConv3d(c, h, (kt, 3, 3)), nn.SiLU()]
        for _ in range(config.downsample):
            layers += [CausalConv3d(h, h, (kt, 3, 3), stride=(1, 2, 2)), nn.SiLU()]
        layers.append(CausalConv3d(h, width, (1, 1, 1)))
        self.encoder = nn.Sequential(*layers)
        dec: list[nn.Module] = [nn.Conv2d(width, h, 3, padding=1), nn.SiLU()]
        for _ in range(config.downsample):
            dec += [nn.ConvTranspose2d(h, h, 4, stride=2, padding=1), nn.SiLU()]
        dec.append(nn.Conv2d(h, c, 3, padding=1))
        self.decoder = nn.Sequential(*dec)
        if config.quantizer == "vq":
            self.codebook = nn.Parameter(torch.randn(2**config.bits, width) * 0.5)

    def forward(self, batch: dict[str, Tensor], output_layers: bool = False) -> Encoded:
        x = batch["pixel_values"]
        video = x.dim() == 5
        if not video:
            x = x.unsqueeze(2)
        if x.dim() != 5:
            raise InputError(f"lfq-autoencoder takes [B, C, H, W] or [B, C, T, H, W] pixels, got {tuple(batch['pixel_values'].shape)}")
        z = self.encoder(x)  # [B, K, T, h, w]
        b, k, t, hh, ww = z.shape
        flat = z.permute(0, 2, 3, 4, 1).reshape(-1, k)
        extras: dict[str, Any] = {"quantizer": self.config.quantizer, "latents": flat}
        if self.config.quantizer == "lfq":
            q = lfq_quantize(flat)
            ids = codes_to_ids(q)
        else:
            q, ids, raw = vq_quantize(flat, self.codebook)
            extras["quantized"] = raw
        extras["ids"] = ids.reshape(b, t, hh, ww)
        codes = q.reshape(b, t, hh, ww, k)
        frames = codes.permute(0, 1, 4, 2, 3).reshape(b * t, k, hh, ww)
        recon = self.decoder(frames).reshape(b, t, x.shape[1], x.shape[3], x.shape[4]).permute(0, 2, 1, 3, 4)
        if not video:
            recon, x = recon.squeeze(2), x.squeeze(2)
        n = t * hh * ww
        grans = {
            "code": Granularity(codes.reshape(b, n, k), torch.ones(b, n, dtype=torch.bool, device=x.device)),
            "reconstruction": Granularity(recon.reshape(b, -1)),
            "pixels": Granularity(x.reshape(b, -1).detach()),
        }
        return Encoded(grans, extras=extras)


class LFQLoss(Loss):
    """Reconstruction MSE between the alignment's two sides + the quantizer's terms (LFQ or VQ).

    LFQ: ``entropy_weight · (E[H(p(c|z))] − gamma · H(E[p(c|z)])) + commitment_weight · ||z − sg[sign z]||²``.
    VQ: ``||sg[z] − e||² + beta · ||z − sg[e]||²``. The quantizer terms are read from the
    ``extras`` of the tower of the alignment's first side; without them (another encoder)
    only the reconstruction term is used.
    """

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``lfq-loss``."""

        entropy_weight: float = Field(0.1, ge=0, description="weight of the LFQ entropy penalty")
        diversity_gamma: float = Field(1.0, ge=0, description="gamma: weight of the batch (codebook) entropy")
        temperature: float = Field(1.0, gt=0, description="T in p(c|z) = softmax(2<z,c>/T)")
        commitment_weight: float = Field(0.25, ge=0, description="LFQ commitment weight; VQ: beta")

    config: Config

    def forward(self, inputs: LossInputs) -> LossOutput:
        name = next(iter(inputs.alignments))
        recon, target = inputs.sides(name)
        rec = F.mse_loss(recon.hidden, target.hidden)
        total = rec
        logs = {"reconstruction_mse": float(rec.detach())}
        tower = inputs.between[name][0][0]
        extras = inputs.outputs[tower].extras
        z = extras.get("latents")
        c = self.config
        if isinstance(z, Tensor):
            if extras.get("quantizer") == "vq":
                zq = extras["quantized"]
                codebook = F.mse_loss(zq, z.detach())
                commit = F.mse_loss(z, zq.detach())
                total = total + codebook + c.commitment_weight * commit
                logs.update(codebook=float(codebook.detach()), commitment=float(commit.detach()))
            else:
                per_sample, batch = entropy_terms(z, c.temperature)
                commit = F.mse_loss(z, torch.where(z > 0, 1.0, -1.0).detach())
                total = total + c.entropy_weight * (per_sample - c.diversity_gamma * batch) + c.commitment_weight * commit
                logs.update(per_sample_entropy=float(per_sample.detach()), batch_entropy=float(batch.detach()),
                            commitment=float(commit.detach()))
            ids = extras.get("ids")
            if isinstance(ids, Tensor):
                logs["codes_used"] = float(ids.unique().numel())
        return LossOutput(total, logs)
