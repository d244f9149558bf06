"""The fingerprint baseline's components: Morgan fingerprints (faithful to RDKit), the MLPs, the frozen cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from rdkit import Chem, DataStructs
from rdkit.Chem import AllChem, rdFingerprintGenerator
from repmix.sdk import ConfigError, Encoded, Granularity, InputError, Runtime, load_config, train_run
from repmix_orma.cached import FrozenCachedEncoder
from repmix_orma.fingerprints import MorganFingerprintTokenizer
from repmix_orma.mlp import MLPEncoder, MLPPooler

SMILES = [
    "CC(=O)Oc1ccccc1C(=O)O",
    "CCO",
    "c1ccc2ccccc2c1",
    "C[C@H](N)C(=O)O",
    "OC(=O)CCCCCCCCCCCCCCC",
    "[Na+].[Cl-]",
]
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def tokenizer(**kw: object) -> MorganFingerprintTokenizer:
    return MorganFingerprintTokenizer(MorganFingerprintTokenizer.Config(**kw), Runtime())


@pytest.mark.parametrize("radius,size", [(2, 2048), (1, 512), (3, 1024)])
def test_bits_equal_rdkit_explicit_bit_vectors(radius: int, size: int) -> None:
    tok = tokenizer(radius=radius, size=size)
    batch = tok(SMILES)["features"].numpy()
    assert batch.shape == (len(SMILES), size)
    for row, smi in zip(batch, SMILES):
        mol = Chem.MolFromSmiles(smi)
        # the reference: RDKit's legacy ECFP bit vector, a different code path than the generator
        ref = AllChem.GetMorganFingerprintAsBitVect(mol, radius, nBits=size)
        arr = np.zeros((size,), dtype=np.float64)
        DataStructs.ConvertToNumpyArray(ref, arr)
        np.testing.assert_array_equal(row, arr)


def test_counts_equal_rdkit_count_fingerprints() -> None:
    tok = tokenizer(radius=2, size=1024, counts=True)
    batch = tok(SMILES)["features"].numpy()
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    for row, smi in zip(batch, SMILES):
        fp = gen.GetCountFingerprint(Chem.MolFromSmiles(smi))
        ref = np.zeros(1024)
        for bit, count in fp.GetNonzeroElements().items():
            ref[bit] = count
        np.testing.assert_array_equal(row, ref)
    assert batch.max() > 1  # counts, not bits
    logged = tokenizer(radius=2, size=1024, counts=True, log_counts=True)(SMILES)["features"].numpy()
    np.testing.assert_allclose(logged, np.log1p(batch), rtol=1e-6)


def test_chirality_changes_only_chiral_molecules() -> None:
    plain, chiral = tokenizer(chirality=False), tokenizer(chirality=True)
    a, b = plain(["C[C@H](N)C(=O)O"])["features"], chiral(["C[C@H](N)C(=O)O"])["features"]
    assert not torch.equal(a, b)
    assert torch.equal(plain(["CCO"])["features"], chiral(["CCO"])["features"])


def test_bad_smiles_name_the_item() -> None:
    tok = tokenizer()
    assert tok.check_item("C1CC") is not None
    assert tok.check_item("CCO") is None
    with pytest.raises(InputError, match="item 1"):
        tok(["CCO", "not a smiles"])
    with pytest.raises(InputError, match="empty batch"):
        tok([])


def test_mlp_encoder_and_pooler_shapes_and_gradients() -> None:
    tok = tokenizer(size=64)
    enc = MLPEncoder(MLPEncoder.Config(hidden=[32], dim=16, dropout=0.0), Runtime(tokenizer=tok))
    out = enc(tok(SMILES))
    h = out["molecule"].hidden
    assert h.shape == (len(SMILES), 16) and out["molecule"].mask is None
    h.sum().backward()
    assert all(p.grad is not None for p in enc.parameters())
    # Linear -> GELU -> Dropout -> Linear, as the baseline specifies
    assert [type(m).__name__ for m in enc.net] == ["Linear", "GELU", "Dropout", "Linear"]
    from repmix.sdk import GranularitySpec

    pool = MLPPooler(MLPPooler.Config(source="s", hidden=[8], dim=4, normalize=True),
                     Runtime(input=GranularitySpec("pooled", 16)))
    y = pool(Encoded({"s": Granularity(h.detach())})).hidden
    assert y.shape == (len(SMILES), 4)
    torch.testing.assert_close(y.norm(dim=-1), torch.ones(len(SMILES)))


def test_mlp_encoder_needs_a_feature_tokenizer() -> None:
    from repmix.sdk import ConfigError

    with pytest.raises(ConfigError, match="feature_dim"):
        MLPEncoder(MLPEncoder.Config(), Runtime(tokenizer=None))


class _CountingEncoder(torch.nn.Module):
    """A stand-in for a transformer: token embedding + dropout, counting rows encoded."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(50, 8)
        self.drop = torch.nn.Dropout(0.5)
        self.rows = 0

    def forward(self, batch: dict, output_layers: bool = False) -> Encoded:
        self.rows += batch["input_ids"].shape[0]
        h = self.drop(self.emb(batch["input_ids"]))
        mask = batch["attention_mask"].bool()
        return Encoded({"token": Granularity(h, mask), "first": Granularity(h[:, 0])})


def _cached(inner: torch.nn.Module) -> FrozenCachedEncoder:
    enc = FrozenCachedEncoder.__new__(FrozenCachedEncoder)
    torch.nn.Module.__init__(enc)
    enc.config = FrozenCachedEncoder.Config(encoder={"type": "unused"}, chunk=2)
    enc.encoder = inner  # type: ignore[assignment]
    for p in inner.parameters():
        p.requires_grad_(False)
    enc._grans = ["token", "first"]
    enc._dtype = torch.float32
    enc._cache = {}
    enc._top, enc._live = [], {}
    enc.misses = enc.hits = 0
    return enc


def _batch(rows: list[list[int]]) -> dict[str, torch.Tensor]:
    width = max(len(r) for r in rows) + 2  # extra padding, as a random training batch has
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def test_frozen_cache_equals_the_frozen_encoder_and_encodes_each_row_once() -> None:
    torch.manual_seed(0)
    inner = _CountingEncoder()
    enc = _cached(inner).train()  # train mode: the wrapped encoder must still run without dropout
    assert not inner.training
    rows = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [1, 2, 3]]
    out = enc(_batch(rows))
    inner.eval()
    ref = inner(_batch(rows))
    m = ref["token"].mask
    torch.testing.assert_close(out["token"].hidden[m], ref["token"].hidden[m])
    torch.testing.assert_close(out["first"].hidden, ref["first"].hidden)
    assert torch.equal(out["token"].mask, m)
    assert (out["token"].hidden[~m] == 0).all()
    encoded_rows = inner.rows - 4  # minus the reference call
    assert enc.misses == 3 and encoded_rows == 3  # the repeated row [1, 2, 3] is encoded once
    again = enc(_batch([[4, 5], [1, 2, 3]]))
    assert enc.hits == 1 + 2 and inner.rows - 4 == 3  # nothing new encoded
    torch.testing.assert_close(again["first"].hidden, ref["first"].hidden[[1, 0]])
    assert not any(p.requires_grad for p in enc.parameters())


def test_frozen_cached_minilm_equals_hf_transformer(tiny_bert_dir: str) -> None:
    """Through repmix: the wrapped hf-transformer's mean-pooled output, with and without the cache."""
    from repmix.sdk import build_model, plan_model

    text = {"tokenizer": {"type": "std.hf-tokenizer", "model": tiny_bert_dir, "max_length": 16},
            "poolers": {"mean": {"type": "std.mean", "source": "token"}}}
    plain = {**text, "encoder": {"type": "std.hf-transformer", "model": tiny_bert_dir}}
    cached = {**text, "encoder": {"type": "orma.frozen-cached",
                                  "encoder": {"type": "std.hf-transformer", "model": tiny_bert_dir}}}
    texts = ["a small acid", "an alcohol with a long name and more words", "benzene"]
    vecs = []
    for tower in (plain, cached):
        from repmix.sdk import LocatedConfig

        model = build_model(plan_model(LocatedConfig({"model": {"towers": {"text": tower}}})), seed=0)
        vecs.append(model.encode(texts, tower="text", granularity="mean"))
        if tower is cached:
            again = model.encode(texts[::-1], tower="text", granularity="mean")
            np.testing.assert_allclose(again[::-1], vecs[-1], atol=1e-6)
    np.testing.assert_allclose(vecs[0], vecs[1], atol=1e-5)


def test_trainable_top_layer_equals_the_encoder_and_alone_gets_gradients(tiny_bert_dir: str) -> None:
    """train_top_layers: 1 gives the unwrapped encoder's outputs (cached lower layers + the live top layer)."""
    from repmix.sdk import LocatedConfig, build_model, plan_model

    grans = {"last": -1, "below": -2}
    text = {"tokenizer": {"type": "std.hf-tokenizer", "model": tiny_bert_dir, "max_length": 16},
            "poolers": {"mean": {"type": "std.mean", "source": "last"}, "mean-below": {"type": "std.mean", "source": "below"}}}
    plain = {**text, "encoder": {"type": "std.hf-transformer", "model": tiny_bert_dir, "granularities": grans}}
    top = {**text, "encoder": {"type": "orma.frozen-cached", "train_top_layers": 1,
                               "encoder": {"type": "std.hf-transformer", "model": tiny_bert_dir, "granularities": grans}}}
    texts = ["a small acid", "an alcohol with a long name and more words", "benzene"]
    models = [build_model(plan_model(LocatedConfig({"model": {"towers": {"text": t}}})), seed=0) for t in (plain, top)]
    for g in ("mean", "mean-below"):
        a, b = (m.encode(texts, tower="text", granularity=g) for m in models)
        np.testing.assert_allclose(a, b, atol=1e-5)
    model = models[1]
    model.train()
    batch = model.tower("text").tokenizer(texts)
    out = model.tower("text").encoder(batch)
    out["last"].hidden.sum().backward()
    wrapper = model.tower("text").encoder
    stack = wrapper.encoder.model.encoder.layer
    assert all(p.grad is not None for p in stack[-1].parameters())
    assert all(p.grad is None and not p.requires_grad for p in stack[0].parameters())
    assert wrapper.encoder.model.embeddings.word_embeddings.weight.grad is None
    wrapper(batch)
    assert wrapper.misses == 3  # the second pass reads the cache


def test_trainable_top_layers_in_length_chunks_equal_the_padded_batch(tiny_bert_dir: str) -> None:
    """Chunks trimmed to their own longest row give the padded batch's outputs and gradients at real positions."""
    import torch
    from repmix.sdk import LocatedConfig, build_model, plan_model

    grans = {"last": -1, "below": -2}
    texts = ["a small acid", "an alcohol with a long name and many more words than the others", "benzene",
             "a dye", "an ester of two acids with a ring"]

    def wrapped(chunk: int):  # noqa: ANN202 - a built model
        enc = {"type": "orma.frozen-cached", "train_top_layers": 2, "chunk": chunk,
               "encoder": {"type": "std.hf-transformer", "model": tiny_bert_dir, "granularities": grans}}
        text = {"tokenizer": {"type": "std.hf-tokenizer", "model": tiny_bert_dir, "max_length": 24},
                "encoder": enc, "poolers": {"mean": {"type": "std.mean", "source": "last"}}}
        return build_model(plan_model(LocatedConfig({"model": {"towers": {"text": text}}})), seed=0)

    one_pass, chunked = wrapped(64), wrapped(2)  # one padded pass vs three trimmed chunks
    grads = []
    for model in (one_pass, chunked):
        model.eval()  # no dropout: the two must agree exactly
        batch = model.tower("text").tokenizer(texts)
        out = model.tower("text").encoder(batch)
        mask = batch["attention_mask"].bool()
        for g in ("last", "below"):
            assert out[g].hidden[~mask].abs().sum() == 0  # padding comes back as zeros
        (out["last"].hidden[mask].pow(2).sum() + out["below"].hidden[mask].sum()).backward()
        stack = model.tower("text").encoder.encoder.model.encoder.layer
        grads.append(torch.cat([p.grad.flatten() for p in stack[-2].parameters()]))
        grads.append(out["last"].hidden.detach()[mask])
    torch.testing.assert_close(grads[2], grads[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grads[3], grads[1], rtol=0, atol=1e-5)


def test_trainable_top_layers_need_a_bert_family_encoder() -> None:
    enc = _cached(_CountingEncoder())
    with pytest.raises(ConfigError, match="BERT-family"):
        enc._init_top_layers(1)


def test_fingerprint_config_trains_two_steps(tiny_bert_dir: str, chebi20_dir: Path, tmp_path: Path) -> None:
    text = "model.towers.text"
    cfg = load_config(
        CONFIGS / "fingerprint-chebi20.yaml",
        [
            f"{text}.tokenizer.model={tiny_bert_dir}",
            f"{text}.encoder.encoder.model={tiny_bert_dir}",
            f"data.path={chebi20_dir}",
            "data.limit=24",
            "train.max_steps=2",
            "train.batch_size=8",
            f"evaluate.1.extra_candidates.path={chebi20_dir}",
            "evaluate.1.extra_candidates.limit=30",
        ],
    )
    metrics = train_run(cfg, tmp_path / "run", progress=False)
    for name in ("split/text->molecule/hits@1", "with-train-molecules/molecule->text/mrr"):
        assert 0.0 <= metrics[name] <= 1.0


def test_extra_fingerprints_equal_rdkit() -> None:
    from rdkit.Chem import MACCSkeys

    tok = tokenizer(radius=2, size=256, extra=["morgan-r3-counts", "atom-pair-counts", "maccs"])
    assert tok.feature_dim == 256 * 3 + 167
    smiles = ["CC(=O)Oc1ccccc1C(=O)O", "c1ccccc1O"]
    out = tok(smiles)["features"].numpy()
    for row, s in zip(out, smiles):
        mol = Chem.MolFromSmiles(s)
        r3 = rdFingerprintGenerator.GetMorganGenerator(radius=3, fpSize=256).GetCountFingerprintAsNumPy(mol)
        ap = rdFingerprintGenerator.GetAtomPairGenerator(fpSize=256).GetCountFingerprintAsNumPy(mol)
        maccs = np.zeros(167)
        DataStructs.ConvertToNumpyArray(MACCSkeys.GenMACCSKeys(mol), maccs)
        np.testing.assert_allclose(row[256:512], np.log1p(r3), rtol=1e-6)
        np.testing.assert_allclose(row[512:768], np.log1p(ap), rtol=1e-6)
        np.testing.assert_array_equal(row[768:], maccs)
