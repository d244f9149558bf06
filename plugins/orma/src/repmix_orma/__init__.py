"""repmix-orma: ORMA (Min, Liu et al., BIBM 2024) as repmix components.

Chemistry side (this package's ``graph``, ``motifs``, ``gnn``, ``project``,
``data`` and ``demo`` modules):

* ``molecule-graph``: SMILES -> hierarchical heterogeneous graph (atom, BRICS
  motif and molecule nodes), RDKit features, cached on disk as ``.npz``;
* ``hierarchical-gnn``: a GCN over that graph, split back into ``atom``,
  ``motif`` and ``molecule`` granularities;
* ``project``: ORMA's per-level projection into the shared space
  (Linear, optionally LayerNorm);
* ``chebi20``, ``demo-molecules``: datasets.

Alignment side (``ot``, ``fine_grained``, ``losses``): the IPOT token -> motif
multi-token aligner, the SPARC-like weighted-pooling aligner and InfoNCE with
ORMA's ``exp(temp)`` temperature.

Components are registered as entry points (see ``pyproject.toml``); importing
this package imports neither torch nor RDKit.
"""

from __future__ import annotations

__version__ = "1.0.0"

__all__ = ["__version__"]
