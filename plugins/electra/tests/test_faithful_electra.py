"""ELECTRA's faithfulness: transformers' references, the label rule, the stop-gradient, shared embeddings.

References (transformers, the version installed; tolerance 1e-6 absolute on float32 losses):
* ``electra.rtd`` = ``ElectraForPreTraining(labels=replaced, attention_mask=m).loss`` with the same
  backbone and head weights (the official ``_get_discriminator_output``: BCE over every non-padding
  token), and = the BCE formula written out by hand for a BERT backbone;
* the generator's masked-LM loss (``std.masked-lm`` on ``generator_logits``) =
  ``ElectraForMaskedLM(masked ids, labels=targets).loss`` with the generator's weights and the
  shared embeddings.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from electra_testing import BERT, ELECTRA, TEXTS, build_pair
from repmix.sdk import Encoded, LossInputs, Runtime, load_component_class
from repmix_electra.generator import generator_sizes
from repmix_electra.loss import ReplacedTokenDetectionLoss


def rtd(enc: Encoded) -> Any:
    return ReplacedTokenDetectionLoss(ReplacedTokenDetectionLoss.Config(), Runtime())(LossInputs({}, {"text": enc}))


def corrupt_and_encode(disc: Any, gen: Any, batch: dict, seed: int) -> tuple[dict, dict, Encoded]:
    corrupted, grans = gen(batch, torch.Generator().manual_seed(seed))
    enc = disc(corrupted)
    enc.granularities.update(grans)
    return corrupted, grans, enc


# ------------------------------------------------------------------------------------ references
def test_rtd_loss_equals_electra_for_pretraining(tokenizer: Any) -> None:
    from transformers import ElectraForPreTraining

    disc, gen = build_pair(tokenizer, ELECTRA)  # embedding 32 -> hidden 64: embeddings_project in both
    disc.eval()
    gen.eval()
    corrupted, grans, enc = corrupt_and_encode(disc, gen, tokenizer(TEXTS), seed=1)
    labels = grans["replaced"].hidden
    assert int(labels.sum()) > 0
    ours = rtd(enc).value
    reference = ElectraForPreTraining(disc.backbone.config)
    state = {f"electra.{k}": v for k, v in disc.backbone.state_dict().items()}
    state |= {f"discriminator_predictions.{k}": v for k, v in disc.rtd_head.state_dict().items()}
    reference.load_state_dict(state, strict=True)
    reference.eval()
    out = reference(input_ids=corrupted["input_ids"], attention_mask=corrupted["attention_mask"], labels=labels)
    assert torch.allclose(enc["rtd_logits"].hidden.squeeze(-1), out.logits, atol=1e-6)
    assert torch.allclose(ours, out.loss, atol=1e-6), (float(ours), float(out.loss))


def test_rtd_loss_is_the_bce_formula_over_every_real_token(tokenizer: Any) -> None:
    disc, gen = build_pair(tokenizer, BERT)
    disc.eval()
    gen.eval()
    corrupted, grans, enc = corrupt_and_encode(disc, gen, tokenizer(TEXTS), seed=2)
    x = enc["rtd_logits"].hidden.squeeze(-1).tolist()
    y = grans["replaced"].hidden.tolist()
    m = corrupted["attention_mask"].tolist()
    total, count = 0.0, 0
    for xr, yr, mr in zip(x, y, m):
        for xt, yt, mt in zip(xr, yr, mr):
            if mt:  # special tokens ([BOS], [EOS]) count, with label 0; padding does not
                p = 1 / (1 + math.exp(-xt))
                total -= yt * math.log(p) + (1 - yt) * math.log(1 - p)
                count += 1
    assert count == sum(map(sum, m))
    assert abs(float(rtd(enc).value.detach()) - total / count) < 1e-6


def test_generator_mlm_equals_electra_for_masked_lm(tokenizer: Any) -> None:
    from transformers import ElectraForMaskedLM

    disc, gen = build_pair(tokenizer, ELECTRA)
    gen.eval()
    batch = tokenizer(TEXTS)
    _, chosen, masked, targets = gen.mask(batch, torch.Generator().manual_seed(3))
    _, grans = gen(batch, torch.Generator().manual_seed(3))  # the same draws: the same masking
    assert torch.equal(grans["targets"].hidden, targets)
    mlm_cls = load_component_class("loss", "std.masked-lm")
    mlm = mlm_cls(mlm_cls.Config(logits="generator_logits"), Runtime())
    ours = mlm(LossInputs({}, {"text": Encoded(dict(grans))})).value
    reference = ElectraForMaskedLM(gen.gen_config)
    state = {k.removeprefix("generator."): v for k, v in gen.state_dict().items()}
    state |= {f"electra.embeddings.{k}": v for k, v in disc.shared_embeddings.state_dict().items()}
    state["generator_lm_head.weight"] = disc.shared_embeddings.word_embeddings.weight.detach()
    reference.load_state_dict(state, strict=True)
    reference.eval()
    theirs = reference(input_ids=masked, attention_mask=batch["attention_mask"], labels=targets)
    assert torch.allclose(ours, theirs.loss, atol=1e-6), (float(ours), float(theirs.loss))
    assert torch.allclose(grans["generator_logits"].hidden[chosen], theirs.logits[chosen], atol=1e-5)
    assert not bool(grans["generator_logits"].hidden[~chosen].any()), "logits only where a prediction is made"


def test_masking_uses_electras_shares(tokenizer: Any) -> None:
    """85 % of the chosen positions become [MASK], 15 % keep the original (no random ids), rate 0.15."""
    _, gen = build_pair(tokenizer, BERT, rate=0.15)
    texts = ["the quick brown fox jumps over the lazy dog and keeps running " * 4] * 16
    batch = tokenizer(texts)
    cand, chosen, masked, _ = gen.mask(batch, torch.Generator().manual_seed(0))
    n = int(chosen.sum())
    as_mask = int((masked[chosen] == tokenizer.mask_token_id).sum())
    kept = int((masked[chosen] == batch["input_ids"][chosen]).sum())
    assert as_mask + kept == n
    assert abs(as_mask / n - 0.85) < 4 * math.sqrt(0.85 * 0.15 / n)
    assert abs(n / int(cand.sum()) - 0.15) < 4 * math.sqrt(0.15 * 0.85 / int(cand.sum()))
    assert torch.equal(masked[~chosen], batch["input_ids"][~chosen])


# ------------------------------------------------------------------------------------ label rule
def test_a_sample_equal_to_the_original_is_labelled_original(tokenizer: Any) -> None:
    _, gen = build_pair(tokenizer, BERT, rate=0.5)
    batch = tokenizer(TEXTS)
    ids = batch["input_ids"]
    _, chosen, _, _ = gen.mask(batch, torch.Generator().manual_seed(5))
    originals = ids[chosen]
    k = torch.arange(len(originals))
    wanted = torch.where(k % 2 == 0, originals, (originals + 1) % 256)  # even: the original; odd: another byte
    logits = torch.full((len(originals), gen.vocab_size), -1e4)
    logits[k, wanted] = 1e4
    gen.generator_logits = lambda hidden: logits  # type: ignore[method-assign]
    corrupted, grans = gen(batch, torch.Generator().manual_seed(5))
    replaced = grans["replaced"].hidden.bool()
    assert torch.equal(corrupted["input_ids"][chosen], wanted)
    assert torch.equal(corrupted["input_ids"][~chosen], ids[~chosen]), "only chosen positions are replaced"
    assert torch.equal(replaced[chosen], k % 2 == 1), "a correct sample counts as original"
    assert not bool(replaced[~chosen].any())
    assert not bool((corrupted["input_ids"] == tokenizer.mask_token_id).any()), "the discriminator never sees [MASK]"


# ------------------------------------------------------------------------------ gradients, sharing
def test_no_discriminator_gradient_reaches_the_generator(tokenizer: Any) -> None:
    disc, gen = build_pair(tokenizer, BERT)
    batch = tokenizer(TEXTS)
    _, _, enc = corrupt_and_encode(disc, gen, batch, seed=7)
    rtd(enc).value.backward()
    own = dict(gen.named_parameters())
    assert own and all(p.grad is None for p in own.values()), "the sample carries no gradient to the generator"
    shared = disc.shared_embeddings.word_embeddings.weight
    assert shared.grad is not None and bool(shared.grad.abs().sum() > 0)
    for param in [*gen.parameters(), *disc.parameters()]:
        param.grad = None
    mlm_cls = load_component_class("loss", "std.masked-lm")
    mlm_cls(mlm_cls.Config(logits="generator_logits"), Runtime())(LossInputs({}, {"text": enc})).value.backward()
    assert all(p.grad is not None for n, p in own.items()), "the masked-LM loss trains the whole generator"
    assert shared.grad is not None, "and the shared embeddings"
    assert all(p.grad is None for n, p in disc.named_parameters() if not n.startswith("backbone.embeddings")), \
        "the generator's loss reaches the discriminator through the shared embeddings only"


def test_generator_shares_the_discriminators_embedding_layer(tokenizer: Any) -> None:
    disc, gen = build_pair(tokenizer, ELECTRA)
    gen.eval()
    emb = disc.shared_embeddings
    assert gen.generator.electra.embeddings.target is emb
    assert gen.generator.generator_lm_head.weight is emb.word_embeddings.weight
    keys = list(gen.state_dict())
    assert not [k for k in keys if ".embeddings." in k or k.endswith("generator_lm_head.weight")], keys
    assert "generator.electra.embeddings_project.weight" in keys  # 32 -> 16: the generator's own projection
    batch = tokenizer(TEXTS)
    before = gen.generator_hidden(batch)
    with torch.no_grad():
        emb.word_embeddings.weight.mul_(2.0)
    assert not torch.allclose(before, gen.generator_hidden(batch)), "the generator reads the discriminator's table"


def test_generator_size_follows_the_official_fractions(tokenizer: Any) -> None:
    assert generator_sizes(256, 4, 0.25, 1.0) == {"hidden_size": 64, "num_hidden_layers": 4,
                                                   "intermediate_size": 256, "num_attention_heads": 1}
    assert generator_sizes(768, 12, 1 / 3, 1.0) == {"hidden_size": 256, "num_hidden_layers": 12,
                                                     "intermediate_size": 1024, "num_attention_heads": 4}
    _, gen = build_pair(tokenizer, BERT)  # 64 wide, 2 layers -> 16 wide, 2 layers, 1 head
    cfg = gen.gen_config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size, cfg.num_attention_heads,
            cfg.embedding_size) == (16, 2, 64, 1, 64)
    _, gen = build_pair(tokenizer, BERT, hidden_fraction=0.5, num_hidden_layers=1)
    assert (gen.gen_config.hidden_size, gen.gen_config.num_hidden_layers) == (32, 1)


def test_pretrained_bert_discriminator(tokenizer: Any, tiny_bert_dir: str) -> None:
    from repmix.sdk import Runtime
    from repmix_electra.discriminator import ElectraDiscriminator
    from repmix_electra.generator import ElectraGenerator

    tok_cls = load_component_class("tokenizer", "std.lm-tokenizer")
    tok = tok_cls(tok_cls.Config(algorithm="pretrained", model=tiny_bert_dir, max_length=32), Runtime())
    disc = ElectraDiscriminator(ElectraDiscriminator.Config(model=tiny_bert_dir), Runtime(tokenizer=tok))
    gen = ElectraGenerator(ElectraGenerator.Config(), Runtime(tokenizer=tok, extras={"encoder": disc}))
    assert gen.gen_config.hidden_size == 8 and gen.gen_config.embedding_size == 32
    corrupted, grans = gen(tok(["the cell protein binds a receptor", "mice"]), torch.Generator().manual_seed(0))
    enc = disc(corrupted)
    enc.granularities.update(grans)
    assert enc["token"].hidden.shape[-1] == 32 and torch.isfinite(rtd(enc).value)


def test_rtd_loss_without_labels_is_one_clear_error(tokenizer: Any) -> None:
    from repmix.sdk import InputError

    disc, _ = build_pair(tokenizer, BERT)
    with pytest.raises(InputError, match="without its electra.generator"):
        rtd(disc(tokenizer(TEXTS)))


def test_a_batch_with_nothing_chosen(tokenizer: Any) -> None:
    disc, gen = build_pair(tokenizer, BERT, rate=0.01)
    batch = tokenizer(["x", "y"])
    corrupted, grans, enc = corrupt_and_encode(disc, gen, batch, seed=0)
    assert not bool(grans["targets"].mask.any())
    assert torch.equal(corrupted["input_ids"], batch["input_ids"]) and not bool(grans["replaced"].hidden.any())
    assert float(rtd(enc).value.detach()) > 0
    mlm_cls = load_component_class("loss", "std.masked-lm")
    assert float(mlm_cls(mlm_cls.Config(logits="generator_logits"), Runtime())(LossInputs({}, {"text": enc})).value) == 0.0
