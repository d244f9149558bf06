"""``orma.hierarchical-gnn``: levels and masks, padding, gradients, and the reference GCNConv of PyG."""

from __future__ import annotations

import pytest
import torch
from repmix.sdk import ConfigError, Runtime
from repmix_orma.gnn import HierarchicalGNN, gcn_norm
from repmix_orma.graph import MoleculeGraphTokenizer

SMILES = [
    "CC(=O)Oc1ccccc1C(=O)O",
    "c1ccccc1",
    "C",
    "COc1ccc2ccccc2c1C",
    "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "O=C(NC1CCCCC1)c1ccccc1",
]


@pytest.fixture(scope="module")
def tok(tmp_path_factory: pytest.TempPathFactory) -> MoleculeGraphTokenizer:
    folder = str(tmp_path_factory.mktemp("gnn-cache"))
    return MoleculeGraphTokenizer(MoleculeGraphTokenizer.Config(cache_dir=folder, max_atoms=14, max_motifs=3), Runtime())


def build(tok: MoleculeGraphTokenizer, seed: int = 0, **options: object) -> HierarchicalGNN:
    torch.manual_seed(seed)
    enc = HierarchicalGNN(HierarchicalGNN.Config(dim=24, **options), Runtime(tokenizer=tok))
    return enc.eval()


def test_levels_shapes_and_masks(tok: MoleculeGraphTokenizer) -> None:
    enc = build(tok)
    batch = tok(SMILES)
    out = enc(batch)
    assert set(out.granularities) == {"atom", "motif", "molecule"}
    atom, motif, molecule = out["atom"], out["motif"], out["molecule"]
    assert atom.hidden.shape == (6, 14, 24) and motif.hidden.shape == (6, 3, 24)
    assert molecule.hidden.shape == (6, 24) and molecule.mask is None
    n_atoms = batch.num_atoms.clamp(max=14)
    n_motifs = batch.num_motifs.clamp(max=3)
    assert atom.mask.sum(1).tolist() == n_atoms.tolist()
    assert motif.mask.sum(1).tolist() == n_motifs.tolist()
    # masks are prefixes, and padded positions hold zeros
    for g, counts in ((atom, n_atoms), (motif, n_motifs)):
        positions = torch.arange(g.mask.shape[1])
        assert torch.equal(g.mask, positions[None, :] < counts[:, None])
        assert torch.all(g.hidden[~g.mask] == 0)
    assert out.extras["num_atoms"].tolist() == batch.num_atoms.tolist()


def test_levels_are_the_node_states_through_their_own_projections(tok: MoleculeGraphTokenizer) -> None:
    enc = build(tok)
    batch = tok(SMILES[:1])
    out = enc(batch)
    with torch.no_grad():
        nodes = enc.node_states(batch)
        n, m = int(batch.num_atoms[0]), int(batch.num_motifs[0])
        torch.testing.assert_close(out["atom"].hidden[0, :n], enc.projections["atom"](nodes[:n]))
        torch.testing.assert_close(out["motif"].hidden[0, : min(m, 3)], enc.projections["motif"](nodes[n : n + 3]))
        torch.testing.assert_close(out["molecule"].hidden[0], enc.projections["molecule"](nodes[n + m]))
    # LayerNorm over every node, before the projections
    torch.testing.assert_close(nodes.mean(-1), torch.zeros(nodes.shape[0]), atol=1e-5, rtol=0)


def test_padding_and_batch_company_do_not_change_outputs(tok: MoleculeGraphTokenizer) -> None:
    enc = build(tok)
    full = enc(tok(SMILES))
    for i, smiles in enumerate(SMILES):
        alone = enc(tok([smiles]))
        torch.testing.assert_close(full["molecule"].hidden[i], alone["molecule"].hidden[0], atol=1e-5, rtol=1e-4)
        for level in ("atom", "motif"):
            a, b = full[level], alone[level]
            torch.testing.assert_close(a.hidden[i][a.mask[i]], b.hidden[0][b.mask[0]], atol=1e-5, rtol=1e-4)


def test_gradients_reach_every_parameter(tok: MoleculeGraphTokenizer) -> None:
    enc = build(tok, dropout=0.2).train()
    out = enc(tok(SMILES))
    loss = sum((g.hidden * torch.randn_like(g.hidden)).sum() for g in out.granularities.values())
    loss.backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_dropout_only_in_training(tok: MoleculeGraphTokenizer) -> None:
    enc = build(tok, dropout=0.5)
    batch = tok(SMILES)
    torch.testing.assert_close(enc(batch)["molecule"].hidden, enc(batch)["molecule"].hidden)
    enc.train()
    assert not torch.allclose(enc(batch)["molecule"].hidden, enc(batch)["molecule"].hidden)


def test_config_and_input_errors(tok: MoleculeGraphTokenizer) -> None:
    with pytest.raises(ConfigError, match="tokenizer"):
        HierarchicalGNN(HierarchicalGNN.Config(), Runtime())
    enc = build(tok)
    with pytest.raises(TypeError, match="GraphBatch"):
        enc({"input_ids": torch.zeros(1, 3, dtype=torch.long)})
    sig = HierarchicalGNN.signature(HierarchicalGNN.Config(dim=8))
    assert {k: (v.shape, v.dim) for k, v in sig.granularities.items()} == {
        "atom": ("sequence", 8),
        "motif": ("sequence", 8),
        "molecule": ("pooled", 8),
    }
    assert sig.num_layers is None


def test_without_level_projections(tok: MoleculeGraphTokenizer) -> None:
    enc = build(tok, level_projection=False)
    assert not any(name.startswith("projections") for name, _ in enc.named_parameters())
    batch = tok(SMILES[:1])
    n, m = int(batch.num_atoms[0]), int(batch.num_motifs[0])
    torch.testing.assert_close(enc(batch)["molecule"].hidden[0], enc.node_states(batch)[n + m])


# ------------------------------------------------------------- reference: PyTorch Geometric
def test_gcn_norm_equals_the_pyg_reference(tok: MoleculeGraphTokenizer) -> None:
    pyg_gcn = pytest.importorskip("torch_geometric.nn.conv.gcn_conv", reason="needs torch-geometric (the reference)")
    batch = tok(SMILES)
    n = batch.x.shape[0]
    src, dst, weight = gcn_norm(batch.edge_index, n)
    ref_index, ref_weight = pyg_gcn.gcn_norm(batch.edge_index, None, n, add_self_loops=True)
    ours = {(int(s), int(d)): float(w) for s, d, w in zip(src, dst, weight)}
    theirs = {(int(s), int(d)): float(w) for (s, d), w in zip(ref_index.T, ref_weight)}
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, rel=1e-6)


def test_native_backend_equals_pyg_gcnconv_on_real_molecules(tok: MoleculeGraphTokenizer) -> None:
    """The native scatter GCN computes what PyG's GCNConv computes, with the same parameters."""
    pytest.importorskip("torch_geometric", reason="needs torch-geometric (the reference)")
    native = build(tok, seed=0, backend="native")
    pyg = build(tok, seed=0, backend="pyg")
    assert native.state_dict().keys() == pyg.state_dict().keys()
    for key, value in native.state_dict().items():  # same init order on both backends
        torch.testing.assert_close(pyg.state_dict()[key], value, msg=key)
    other = build(tok, seed=3, backend="pyg")
    other.load_state_dict(native.state_dict())  # checkpoints move between the backends
    batch = tok(SMILES)
    a, b = native(batch), other(batch)
    for level in ("atom", "motif", "molecule"):
        torch.testing.assert_close(a[level].hidden, b[level].hidden, atol=1e-5, rtol=1e-4)


def test_fingerprint_fusion_adds_an_mlp_of_the_fingerprint_to_the_molecule_level(tmp_path) -> None:  # type: ignore[no-untyped-def]
    fp = {"radius": 2, "size": 64, "counts": True, "log_counts": True, "extra": ["maccs"]}
    tok = MoleculeGraphTokenizer(MoleculeGraphTokenizer.Config(cache_dir=str(tmp_path), fingerprint=fp), Runtime())
    assert tok.fingerprint_dim == 64 + 167
    batch = tok(SMILES)
    assert batch.fingerprint is not None and batch.fingerprint.shape == (len(SMILES), 64 + 167)
    fused = build(tok, fingerprint_fusion=True, fingerprint_hidden=[32])
    plain = build(tok)
    out, ref = fused(batch), plain(batch)
    assert fused.fingerprint_mlp is not None
    expected = ref["molecule"].hidden + fused.fingerprint_mlp(batch.fingerprint)
    torch.testing.assert_close(out["molecule"].hidden, expected)
    torch.testing.assert_close(out["atom"].hidden, ref["atom"].hidden)  # only the molecule level changes
    out["molecule"].hidden.sum().backward()
    assert all(p.grad is not None for p in fused.fingerprint_mlp.parameters())


def test_fusion_gate_starts_the_molecule_level_as_the_fingerprint_mlp_and_learns_the_graph_share(tmp_path) -> None:  # type: ignore[no-untyped-def]
    fp = {"radius": 2, "size": 64, "counts": True, "log_counts": True}
    tok = MoleculeGraphTokenizer(MoleculeGraphTokenizer.Config(cache_dir=str(tmp_path), fingerprint=fp), Runtime())
    batch = tok(SMILES)
    gated = build(tok, fingerprint_fusion=True, fingerprint_hidden=[32], fusion_gate=True)
    plain = build(tok, fingerprint_fusion=True, fingerprint_hidden=[32])
    assert gated.fingerprint_mlp is not None and gated.fusion_gate is not None
    out = gated(batch)
    torch.testing.assert_close(out["molecule"].hidden, gated.fingerprint_mlp(batch.fingerprint))  # gate 0: no graph
    assert not torch.allclose(plain(batch)["molecule"].hidden, plain.fingerprint_mlp(batch.fingerprint))
    out["molecule"].hidden.sum().backward()
    assert gated.fusion_gate.grad is not None and gated.fusion_gate.grad.abs() > 0  # the gate learns its share
    with torch.no_grad():
        gated.fusion_gate.fill_(0.5)
    graph = gated._project("molecule", gated.node_states(batch)[batch.molecule_index])
    torch.testing.assert_close(
        gated(batch)["molecule"].hidden, 0.5 * graph + gated.fingerprint_mlp(batch.fingerprint)
    )


def test_fusion_gate_needs_fingerprint_fusion(tok: MoleculeGraphTokenizer) -> None:
    with pytest.raises(ConfigError, match="fingerprint_fusion"):
        build(tok, fusion_gate=True)


def test_fingerprint_fusion_needs_tokenizer_fingerprints(tok: MoleculeGraphTokenizer) -> None:
    with pytest.raises(ConfigError, match="fingerprint"):
        build(tok, fingerprint_fusion=True)
