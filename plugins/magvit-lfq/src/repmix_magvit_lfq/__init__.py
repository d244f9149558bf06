"""MAGVIT-v2 lookup-free quantization (LFQ) for repmix."""

from repmix_magvit_lfq.quantizers import (
    CausalConv3d,
    codes_to_ids,
    entropy_terms,
    ids_to_codes,
    lfq_quantize,
    vq_quantize,
)

__all__ = ["CausalConv3d", "codes_to_ids", "entropy_terms", "ids_to_codes", "lfq_quantize", "vq_quantize"]
