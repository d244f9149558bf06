"""Re-pooling a tower's granularity as if its encoder ended at a shallower layer.

2DMSE scores the embedding a model would produce with only its first ``n`` layers.
In repmix that embedding is what the tower's own poolers produce when the
encoder's per-layer output ``Encoded.layers[n]`` takes the place of the final
layer:

1. the encoder granularity the per-layer states belong to (``Encoded.layers_of``,
   ``token`` for hf-transformer) is replaced by ``layers[n]`` (same mask);
2. ``layers`` is cut to ``layers[:n + 1]``, so a pooler that reads per-layer states
   (multi-layer pooling, ``matryoshka2d.truncate`` with ``layer: -1``) sees the
   network truncated at ``n``;
3. the tower's poolers run again, in declaration order, up to the requested
   granularity (so chained poolers are re-run too), with their trained weights.

This is sentence-transformers' ``AdaptiveLayerLoss`` semantics (it re-runs every
module after the transformer on ``all_layer_embeddings[n]``), made explicit: no
``forward`` is patched, the poolers are simply called on other inputs.
"""

from __future__ import annotations

from typing import Any

from repmix.sdk import Encoded, Granularity, InputError


def layer_count(encoded: Encoded, tower: str) -> int:
    """Number of per-layer states in ``encoded`` (embedding output included); clear error when there are none."""
    if encoded.layers is None:
        raise InputError(
            f"tower {tower!r} returned no per-layer hidden states (Encoded.layers), which 2D Matryoshka needs",
            hint="a tower returns them when one of its poolers needs them (e.g. matryoshka2d.truncate, mltp) or "
            "when its encoder is set to (hf-transformer: add a granularity reading another layer, e.g. "
            "granularities: {token: -1, embeddings: 0})",
        )
    return len(encoded.layers)


def truncated_encoded(encoded: Encoded, layer: int, pooled_names: set[str]) -> Encoded:
    """The encoder part of ``encoded`` as it would be with hidden state ``layer`` as the last one."""
    assert encoded.layers is not None
    states = encoded.layers[layer]
    grans: dict[str, Granularity] = {}
    for name, g in encoded.granularities.items():
        if name in pooled_names:
            continue
        grans[name] = Granularity(states, g.mask) if name == encoded.layers_of else g
    return Encoded(grans, layers=tuple(encoded.layers[: layer + 1]), layers_of=encoded.layers_of, extras=encoded.extras)


def repool(t: Any, tower: str, granularity: str, encoded: Encoded, layer: int) -> Granularity:
    """``granularity`` of tower ``t`` (named ``tower``) recomputed from hidden state ``layer``.

    ``t`` is the tower object (``model.tower(name)`` or ``LossInputs.towers[name]``); see the module docstring.
    """
    n = layer_count(encoded, tower)
    if not -n <= layer < n:
        raise InputError(f"layer {layer} is out of range: tower {tower!r} has {n} per-layer states")
    layer %= n
    poolers = dict(t.poolers.items())
    if granularity not in poolers:
        raise InputError(
            f"{tower}.{granularity} is produced by the encoder, not by a pooler, so it cannot be re-pooled per layer",
            hint="2D Matryoshka needs a pooled granularity (e.g. poolers: {sentence: {type: mean}})",
        )
    current = truncated_encoded(encoded, layer, set(poolers))
    for name, pooler in poolers.items():
        out = pooler(current)
        if name == granularity:
            return out
        current.granularities[name] = out
    raise AssertionError("unreachable: the granularity is one of the tower's poolers")
