"""repmix-tokenunify: TokenUnify's mixture token prediction (Chen et al., ICCV 2025) for text.

``tokenunify.mixture`` (corruptor) builds per-row inputs and targets for random, next and next-all
token prediction; ``tokenunify.mixture-lm`` (loss) sums their cross-entropies. See
docs/plugins/tokenunify.md.
"""

__version__ = "1.0.0"
