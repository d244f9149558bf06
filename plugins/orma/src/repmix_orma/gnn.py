"""``orma.hierarchical-gnn``: ORMA's GCN over the hierarchical molecule graph.

Layout (ORMA.md §1.2; ORMA ``modeling.GCNModel`` and ``Orma.get_rep``, which
follow Text2Mol's GCN):

1. ``layers`` GCN layers, the first mapping the tokenizer's feature width to
   ``dim``; each but the last followed by ReLU, each followed by dropout;
2. three ``Linear(dim, dim)`` layers with ReLU and dropout between them;
3. ``LayerNorm(dim)`` over every node;
4. the node outputs split back into levels: atom nodes padded into
   ``atom`` [B, A, D], motif nodes into ``motif`` [B, M, D] (bool masks;
   truncated to the tokenizer's ``max_atoms`` / ``max_motifs``), the molecule
   node as ``molecule`` [B, D]; each level through its own ``Linear(dim, dim)``.

ORMA then multiplies every level by ``exp(temp)``, a learnable temperature
shared with the text side; that scalar lives with the losses and aligners
(``repmix_orma.losses`` / ``repmix_orma.fine_grained``), not here.

**GCN implementation.** ``backend: native`` (the default) is a small GCN that
propagates with a sparse normalised adjacency (``torch.sparse.mm``, 5-7x faster
on CPU than ``index_add_`` forward and backward) and computes PyG's ``GCNConv``
with its defaults (self-loops added, symmetric normalisation
``D^-1/2 (A + I) D^-1/2`` with the in-degree ``D`` of the directed graph, a
bias-free linear map before propagation, a bias after). ``backend: pyg`` uses ``torch_geometric.nn.GCNConv``
itself. PyTorch Geometric 2.8 installs cleanly from PyPI next to torch 2.13
CPU (it pulls no torch of its own), but importing it takes about 7 s, longer
than torch itself, and adds a dozen packages (aiohttp, ...) for one layer
type; the native layer computes the same function with the same parameter
names (``lin.weight``, ``bias``), so checkpoints move between the backends,
and ``tests/test_gnn.py`` checks the two agree on real molecules.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any, ClassVar, Literal

import torch
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
    Runtime,
)
from torch import Tensor, nn

from repmix_orma.graph import GraphBatch
from repmix_orma.mlp import build_mlp

__all__ = ["GCNLayer", "HierarchicalGNN", "HierarchicalGNNConfig", "gcn_norm", "normalized_adjacency"]

#: The granularities this encoder provides.
LEVELS: tuple[str, ...] = ("atom", "motif", "molecule")


def gcn_norm(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor, Tensor]:
    """Self-loops plus symmetric GCN weights: (source, target, weight) of every edge.

    As PyG's ``gcn_norm`` with ``add_self_loops=True`` and flow source -> target:
    ``deg`` is each node's in-degree counting its self-loop, and an edge
    ``j -> i`` weighs ``deg[j]^-1/2 * deg[i]^-1/2``.
    """
    loops = torch.arange(num_nodes, device=edge_index.device)
    src = torch.cat([edge_index[0], loops])
    dst = torch.cat([edge_index[1], loops])
    inv_sqrt = torch.bincount(dst, minlength=num_nodes).to(torch.float32).pow(-0.5)
    return src, dst, inv_sqrt[src] * inv_sqrt[dst]


def normalized_adjacency(edge_index: Tensor, num_nodes: int) -> Tensor:
    """The GCN propagation matrix ``D^-1/2 (A + I) D^-1/2`` as a sparse COO tensor [target, source].

    A sparse matrix product propagates messages several times faster on CPU than
    ``index_add_``/``index_select``, forward and backward, and sums each row in a fixed order.
    """
    src, dst, weight = gcn_norm(edge_index, num_nodes)
    adjacency = torch.sparse_coo_tensor(
        torch.stack([dst, src]), weight, (num_nodes, num_nodes), check_invariants=False
    )
    return adjacency.coalesce()


class GCNLayer(nn.Module):
    """One graph convolution: ``out_i = bias + sum_{j -> i} w_ji * (W x_j)`` (self-loop included).

    Parameter names match ``torch_geometric.nn.GCNConv`` (``lin.weight``, ``bias``).
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.lin = nn.Linear(in_dim, out_dim, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_dim))

    def forward(self, x: Tensor, adjacency: Tensor) -> Tensor:
        """Propagate with the normalised adjacency of :func:`normalized_adjacency`."""
        h = self.lin(x)
        return torch.sparse.mm(adjacency.to(h.dtype), h) + self.bias


class HierarchicalGNNConfig(ComponentConfig):
    """Options of ``orma.hierarchical-gnn``."""

    dim: int = Field(384, ge=1, description="node and output width (384 matches all-MiniLM-L6-v2)")
    layers: int = Field(3, ge=1, le=16, description="GCN layers (ORMA/Text2Mol: 3)")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="dropout after every GCN layer and between the MLP layers")
    level_projection: bool = Field(True, description="a separate Linear(dim, dim) per level, as ORMA")
    fingerprint_fusion: bool = Field(
        False, description="add an MLP of the molecule's fingerprint (the tokenizer's 'fingerprint') to the "
        "molecule level (not in ORMA: a chemistry prior where 2.6k pairs cannot teach the GCN enough)",
    )
    fingerprint_hidden: list[int] = Field(default_factory=lambda: [1024], description="hidden widths of that MLP")
    fingerprint_dropout: float = Field(0.2, ge=0.0, lt=1.0, description="dropout inside that MLP")
    fusion_gate: bool = Field(
        False, description="with fingerprint_fusion: scale the GCN's molecule node by a learnable scalar that "
        "starts at 0, so the molecule level starts as the fingerprint MLP alone and takes from the graph what "
        "training finds useful (ReZero-style; not in ORMA)",
    )
    backend: Literal["native", "pyg"] = Field(
        "native", description="native: sparse-matrix GCN (no extra dependency); pyg: torch_geometric's GCNConv"
    )


class HierarchicalGNN(Encoder):
    """GCN over atom, motif and molecule nodes -> ``atom``, ``motif`` (sequences) and ``molecule`` (pooled)."""

    Config: ClassVar[type[ComponentConfig]] = HierarchicalGNNConfig
    citation: ClassVar[str] = (
        "Min, Liu, Zhang, Song, Su, He and Bo. ORMA: Exploring Optimal Transport-Based Multi-Grained "
        "Alignments for Text-Molecule Retrieval. IEEE BIBM 2024, arXiv:2411.11875. GCN: Kipf and Welling. "
        "Semi-Supervised Classification with Graph Convolutional Networks. ICLR 2017. Layout after "
        "Edwards, Zhai and Ji. Text2Mol. EMNLP 2021."
    )
    config: HierarchicalGNNConfig

    @classmethod
    def signature(cls, config: ComponentConfig) -> EncoderSignature:
        """``atom`` and ``motif`` sequences and the pooled ``molecule``, all ``dim`` wide; no per-layer states."""
        dim = config.dim  # type: ignore[attr-defined]
        return EncoderSignature(
            {
                "atom": GranularitySpec("sequence", dim),
                "motif": GranularitySpec("sequence", dim),
                "molecule": GranularitySpec("pooled", dim),
            },
            num_layers=None,
            layers_of="atom",
        )

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        c = self.config
        # Initial weights depend on the seed only, not on how many numbers each backend's
        # constructors draw: rewind the generator before reset_parameters().
        rng_state = torch.random.get_rng_state()
        in_dim = getattr(runtime.tokenizer, "feature_dim", None)
        if not isinstance(in_dim, int) or in_dim < 1:
            raise ConfigError(
                "hierarchical-gnn reads molecule graphs and takes its input width from the tower's tokenizer, "
                f"which provides none (tokenizer: {type(runtime.tokenizer).__name__})",
                hint="use tokenizer: {type: orma.molecule-graph} in this tower",
            )
        self.in_dim = in_dim
        # atom_features: identifiers - the tokenizer sends embedding rows; the table (initialised from its
        # mol2vec vectors) is trained here, with the rest of the encoder
        init = getattr(runtime.tokenizer, "atom_identifier_init", None)
        self.atom_embedding: nn.Embedding | None = None
        if init is not None:
            self.atom_embedding = nn.Embedding.from_pretrained(torch.as_tensor(init).float(), freeze=False)
        dims = [in_dim] + [c.dim] * c.layers
        if c.backend == "pyg":
            try:
                from torch_geometric.nn import GCNConv
            except ImportError:
                raise ConfigError(
                    "backend: pyg needs PyTorch Geometric, which is not installed",
                    found="pyg",
                    hint="pip install 'repmix-orma[pyg]' (torch-geometric), or use backend: native (same function)",
                ) from None
            self.convs = nn.ModuleList(GCNConv(a, b) for a, b in pairwise(dims))
        else:
            self.convs = nn.ModuleList(GCNLayer(a, b) for a, b in pairwise(dims))
        self.mlp = nn.ModuleList(nn.Linear(c.dim, c.dim) for _ in range(3))
        self.norm = nn.LayerNorm(c.dim)
        self.dropout = nn.Dropout(c.dropout)
        if c.level_projection:
            self.projections = nn.ModuleDict({level: nn.Linear(c.dim, c.dim) for level in LEVELS})
        self.fingerprint_mlp: nn.Module | None = None
        if c.fingerprint_fusion:
            fp_dim = getattr(runtime.tokenizer, "fingerprint_dim", 0)
            if not isinstance(fp_dim, int) or fp_dim < 1:
                raise ConfigError(
                    "fingerprint_fusion needs molecule fingerprints from the tokenizer",
                    path="fingerprint_fusion",
                    hint="set the tokenizer's fingerprint: {radius: 2, size: 2048, ...} (orma.molecule-graph)",
                )
            self.fingerprint_mlp = build_mlp(fp_dim, list(c.fingerprint_hidden), c.dim, "gelu", c.fingerprint_dropout)
        self.fusion_gate: nn.Parameter | None = None
        if c.fusion_gate:
            if not c.fingerprint_fusion:
                raise ConfigError(
                    "fusion_gate scales the graph's share of the fused molecule level, and there is no fusion",
                    path="fusion_gate",
                    hint="set fingerprint_fusion: true, or drop fusion_gate",
                )
            # A freshly initialised GCN's LayerNorm'd molecule node is large and uninformative; added at full
            # weight it drowns the fingerprint MLP (docs/results/orma.md §4c). Starting its share at 0 makes
            # the fused level start as the fingerprint model.
            self.fusion_gate = nn.Parameter(torch.zeros(()))
        torch.random.set_rng_state(rng_state)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform GCN weights and zero biases (PyG's init), in a fixed order for both backends."""
        for conv in self.convs:
            nn.init.xavier_uniform_(conv.lin.weight)
            nn.init.zeros_(conv.bias)
        for layer in self.mlp:
            layer.reset_parameters()
        self.norm.reset_parameters()
        if self.config.level_projection:
            for level in LEVELS:
                self.projections[level].reset_parameters()

    def node_states(self, batch: GraphBatch) -> Tensor:
        """Every node's output before the per-level projections: GCN layers, MLP, LayerNorm."""
        x = batch.x
        if batch.atom_ids is not None:
            if self.atom_embedding is None or batch.node_pool is None:
                raise ValueError("graph batch carries atom identifiers, but this encoder has no atom embedding table")
            x = torch.sparse.mm(batch.node_pool, self.atom_embedding(batch.atom_ids))
        if x.shape[-1] != self.in_dim:
            raise ValueError(f"graph batch has {x.shape[-1]} node features, this encoder was built for {self.in_dim}")
        last = len(self.convs) - 1
        if self.config.backend == "pyg":
            for i, conv in enumerate(self.convs):
                x = conv(x, batch.edge_index)
                x = self.dropout(torch.relu(x) if i < last else x)
        else:
            adjacency = normalized_adjacency(batch.edge_index, x.shape[0])
            for i, conv in enumerate(self.convs):
                x = conv(x, adjacency)
                x = self.dropout(torch.relu(x) if i < last else x)
        for i, layer in enumerate(self.mlp):
            x = layer(x)
            if i < len(self.mlp) - 1:
                x = self.dropout(torch.relu(x))
        return self.norm(x)

    def _project(self, level: str, x: Tensor) -> Tensor:
        return self.projections[level](x) if self.config.level_projection else x

    def forward(self, batch: Any, output_layers: bool = False) -> Encoded:
        """Encode a :class:`~repmix_orma.graph.GraphBatch` into the three levels."""
        if not isinstance(batch, GraphBatch):
            raise TypeError(f"hierarchical-gnn reads a GraphBatch from orma.molecule-graph, got {type(batch).__name__}")
        h = self.node_states(batch)
        # Gather node rows into the padded levels; index N (one past the last node) is padding.
        padded = torch.cat([h, h.new_zeros(1, h.shape[-1])])
        out: dict[str, Granularity] = {}
        for level, index in (("atom", batch.atom_index), ("motif", batch.motif_index)):
            mask = index < h.shape[0]
            values = self._project(level, padded[index])
            out[level] = Granularity(values.masked_fill(~mask.unsqueeze(-1), 0.0), mask)
        molecule = self._project("molecule", h[batch.molecule_index])
        if self.fingerprint_mlp is not None:
            if batch.fingerprint is None:
                raise InputError("fingerprint_fusion: the graph batch has no fingerprints (set the tokenizer's fingerprint)")
            if self.fusion_gate is not None:
                molecule = self.fusion_gate * molecule
            molecule = molecule + self.fingerprint_mlp(batch.fingerprint.to(molecule.dtype))
        out["molecule"] = Granularity(molecule)
        extras = {"num_atoms": batch.num_atoms, "num_motifs": batch.num_motifs}
        return Encoded(out, layers=None, layers_of="atom", extras=extras)
