"""``binary-pv.hamming``: Hamming similarity of binary codes through the ±1 inner-product identity.

With ``s = 2c − 1`` ∈ {−1, +1}^b, ``<s1, s2> = b − 2·ham(c1, c2)``, so::

    negative-hamming:  score = (<s1, s2> − b) / 2 = −ham(c1, c2)     (ranking = Hamming ranking)
    agreement:         score = <s1, s2> / b = 1 − 2·ham / b ∈ [−1, 1]  (a cosine-like scale for contrastive losses)

Both are differentiable in c, so codes from ``binary-pv.binary-code`` train through them.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from repmix.sdk import Aligner, Alignment, ComponentConfig, Granularity, Runtime
from repmix_binary_pv import CITATION


class HammingAligner(Aligner):
    """Minus the Hamming distance (or the ±1 agreement) of every pair of codes."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``binary-pv.hamming``."""

        score: Literal["negative-hamming", "agreement"] = Field(
            "negative-hamming", description="−ham(c1, c2), or <s1, s2>/b = 1 − 2 ham/b (for contrastive training)"
        )

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)

    def forward(self, a: Granularity, b: Granularity) -> Alignment:
        sa, sb = 2 * a.hidden - 1, 2 * b.hidden - 1
        inner = sa @ sb.T
        bits = a.hidden.shape[-1]
        scores = (inner - bits) / 2 if self.config.score == "negative-hamming" else inner / bits
        return Alignment(scores)
