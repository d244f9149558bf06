"""Faithfulness of zett against the paper's invariants and independent references.

* per-token independence (no inter-token attention): a token's predicted embedding is the same
  whatever other tokens are predicted with it or are in the target vocabulary (atol 1e-5: only the
  padding width of a batch changes, which changes float summation order, never the math);
* identity recovery: after ZeTT's identity warm-up, transferring the model to its own tokenizer
  predicts embeddings with mean cosine > 0.9 to the originals (the spec's threshold for a tiny
  run); the decomposition path itself is exact: ``embeddings: mean`` on the model's own tokenizer
  rebuilds the original matrix bit for bit and the encoder equals std's hf-transformer;
* the decomposition of a word is BERT's own WordPiece split (``transformers``' tokenizer is the
  reference);
* ZeTT's lexical loss is 0 exactly where the network reproduces single-token embeddings.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from repmix.sdk import Runtime, load_component_class

HN_BLOCK = {"layers": 1, "hidden": 32, "heads": 2, "surface_maxlen": 7}


def build(kind: str, name: str, runtime: Runtime | None = None, **config):  # type: ignore[no-untyped-def]
    """Build a component as the model builder does, its nested hypernetwork block first."""
    cls = load_component_class(kind, name)
    runtime = runtime or Runtime()
    block = config.get("hypernetwork")
    if isinstance(block, dict) and config.get("embeddings", "hypernetwork") == "hypernetwork":
        params = {k: v for k, v in block.items() if k != "type"}
        runtime.nested = {"hypernetwork": build("encoder", block["type"], **params)}
    return cls(cls.Config(**config), runtime)


def test_per_token_independence_of_the_vocabulary(tiny_bert_dir: str) -> None:
    torch.manual_seed(0)
    hn = build("encoder", "zett.hypernetwork", model=tiny_bert_dir, **HN_BLOCK).eval()
    a = ["riding", "##ing", "horse", "benzene"]
    b = ["chlorobenzene", "##s", *reversed(a), "the", "[SEP]", "pyridine", "x"]
    with torch.no_grad():
        in_a = hn.embed_surfaces(a)
        hn._cache.clear()
        in_b = hn.embed_surfaces(b)
    for i, tok in enumerate(a):
        torch.testing.assert_close(in_b[b.index(tok)], in_a[i], atol=1e-5, rtol=0)


def test_transferred_rows_do_not_depend_on_the_rest_of_the_vocabulary(
    tmp_path: Path, tiny_bert_dir: str, target_writer, corpus_texts: list[str]  # type: ignore[no-untyped-def]
) -> None:
    """Vocabulary A (small BPE) and B (larger, trained on more text) share tokens: their rows are equal."""
    small = target_writer(tmp_path / "a", tiny_bert_dir, corpus_texts[:4], 120)
    large = target_writer(tmp_path / "b", tiny_bert_dir, corpus_texts, 200)
    rows = {}
    for key, file in (("a", small), ("b", large)):
        tok = build("tokenizer", "zett.target-tokenizer", tokenizer=str(file), model=tiny_bert_dir)
        torch.manual_seed(0)
        enc = build("encoder", "zett.transferred-transformer", Runtime(tokenizer=tok), model=tiny_bert_dir,
                    hypernetwork={"type": "zett.hypernetwork", "model": tiny_bert_dir, **HN_BLOCK})
        weight = enc.model.get_input_embeddings().weight.detach()
        rows[key] = {s: weight[i] for i, s in enumerate(tok.surfaces())}
    shared = sorted(set(rows["a"]) & set(rows["b"]))
    assert len(shared) > 50 and len(rows["b"]) > len(rows["a"])
    for s in shared:
        torch.testing.assert_close(rows["b"][s], rows["a"][s], atol=1e-5, rtol=0)


def test_mean_transfer_to_the_own_tokenizer_is_exactly_the_original_model(tiny_bert_dir: str) -> None:
    """Each own token decomposes into itself, so the FVT-style mean rebuilds the matrix: the model is unchanged."""
    own = build("tokenizer", "zett.target-tokenizer", tokenizer=tiny_bert_dir, model=tiny_bert_dir)
    enc = build("encoder", "zett.transferred-transformer", Runtime(tokenizer=own), model=tiny_bert_dir,
                embeddings="mean").eval()
    std_tok = build("tokenizer", "std.hf-tokenizer", model=tiny_bert_dir)
    ref = build("encoder", "std.hf-transformer", Runtime(tokenizer=std_tok), model=tiny_bert_dir).eval()
    assert torch.equal(enc.model.get_input_embeddings().weight, ref.model.get_input_embeddings().weight)
    texts = ["the man is riding a horse", "a chloro group on the benzene ring", ""]
    a, b = own(texts), std_tok(texts)
    assert torch.equal(a["input_ids"], b["input_ids"])
    with torch.no_grad():
        torch.testing.assert_close(enc(a)["token"].hidden, ref(b)["token"].hidden, atol=1e-6, rtol=0)


def test_identity_recovery_after_the_warmup(tmp_path: Path, tiny_bert_dir: str, tiny_corpus: str) -> None:
    """ZeTT's identity warm-up on the tiny BERT: predictions for its own tokens have mean cosine > 0.9."""
    from repmix_zett.training import HypernetTrainConfig, train_hypernetwork

    cfg = HypernetTrainConfig(
        model=tiny_bert_dir, layers=1, hidden=32, heads=2, corpus=[{"path": tiny_corpus, "columns": ["text"]}],
        identity_steps=400, identity_batch=128, steps=4, batch_size=4, tokenizer_texts=16, vocab_min=100,
        vocab_max=200, lr=3e-3, warmup_steps=20, max_source_tokens=64, device="cpu", log_every=1000,
    )
    meta = train_hypernetwork(cfg, tmp_path / "hn", log=lambda m: None)
    assert meta["identity"]["mean_cosine"] > 0.9, meta["identity"]
    assert meta["training"]["history"][-1]["phase"] == "main"
    # the checkpoint loads as zett.hypernetwork and transfers the model to its own tokenizer
    own = build("tokenizer", "zett.target-tokenizer", tokenizer=tiny_bert_dir, model=tiny_bert_dir)
    enc = build("encoder", "zett.transferred-transformer", Runtime(tokenizer=own), model=tiny_bert_dir,
                hypernetwork={"type": "zett.hypernetwork", "model": tiny_bert_dir, "weights": str(tmp_path / "hn")})
    ref = build("encoder", "std.hf-transformer", Runtime(tokenizer=own), model=tiny_bert_dir)
    pred, orig = enc.model.get_input_embeddings().weight, ref.model.get_input_embeddings().weight
    cos = torch.nn.functional.cosine_similarity(pred, orig, dim=-1)
    assert float(cos.mean()) > 0.9
    specials = list(enc.vocabulary.specials.values())
    assert torch.equal(pred[specials], orig[specials])  # special tokens keep their source embeddings


def test_decomposition_is_berts_own_wordpiece(minilm_dir: str) -> None:
    """Words decompose as MiniLM's tokenizer splits them; a word's tail (##...) as the tail of that split."""
    from repmix_zett.vocabulary import SourceVocabulary
    from transformers import AutoTokenizer

    ref = AutoTokenizer.from_pretrained(minilm_dir)
    voc = SourceVocabulary.from_model(Path(minilm_dir))
    words = ["ribonucleoprotein", "regulate", "modulated", "stability", "mRNA", "Naïve", "tokenization", "electrophoresis", "hypercholesterolemia", "xylophone", "café", "antidisestablishmentarianism"]
    for word in words:
        assert voc.decompose_full(word) == ref(word, add_special_tokens=False)["input_ids"], word
        pieces = ref.tokenize(word)
        for k in range(1, len(pieces)):
            tail = "##" + "".join(p[2:] for p in pieces[k:])
            assert voc.decompose_full(tail) == ref.convert_tokens_to_ids(pieces[k:]), tail
    assert voc.decompose_full("[CLS]") == [ref.cls_token_id]
    assert voc.decompose("x" * 150, 7) == [ref.unk_token_id] and voc.unknown == 1  # BERT: over-long word = [UNK]


def test_lexical_loss_vanishes_on_exact_single_token_predictions(tiny_bert_dir: str) -> None:
    """The auxiliary loss of train.py: 0 when single-token decompositions predict their own embedding."""
    torch.manual_seed(0)
    E = torch.randn(10, 8)
    ids = torch.tensor([1, 4, 7])
    exact = ((E[ids] - E[ids]).pow(2).sum(-1).mean() / E[ids].norm(dim=-1).mean())
    assert float(exact) == 0.0
    noisy = E[ids] + 0.1
    assert float((noisy - E[ids]).pow(2).sum(-1).mean() / E[ids].norm(dim=-1).mean()) > 0


@pytest.mark.parametrize("steps", [0, 3])
def test_training_command_writes_a_loadable_checkpoint(tmp_path: Path, tiny_bert_dir: str, tiny_corpus: str,
                                                       steps: int) -> None:
    from repmix.sdk.testing import run_cli

    cfg = tmp_path / "hn.yaml"
    cfg.write_text(
        f"model: {tiny_bert_dir}\nlayers: 1\nhidden: 32\nheads: 2\n"
        f"corpus: [{{path: {tiny_corpus}, columns: [title, text], join: true, split_sentences: true}}]\n"
        f"identity_steps: 5\nidentity_batch: 32\nsteps: {steps}\nbatch_size: 4\ntokenizer_texts: 16\n"
        "vocab_min: 100\nvocab_max: 150\ndevice: cpu\n",
        encoding="utf-8",
    )
    assert run_cli(["zett", "train-hypernetwork", str(cfg), "-o", str(tmp_path / "out")]) == 0
    hn = build("encoder", "zett.hypernetwork", model=tiny_bert_dir, weights=str(tmp_path / "out"))
    assert hn.arch.layers == 1 and hn.meta["source"]["fingerprint"] == hn.fingerprint
