"""Domain tags: how they are read, and clear errors for undeclared ones."""

from __future__ import annotations

import pytest
import torch
from repmix.sdk import ConfigError, InputError, Runtime
from repmix_moe_embed.encoder import MoETransformer
from repmix_moe_embed.tokenizer import DomainTokenizer


def _tokenizer(model_dir: str, **options: object) -> DomainTokenizer:
    return DomainTokenizer(DomainTokenizer.Config(model=model_dir, **options), Runtime())


def test_tags_mappings_patterns_and_default(tiny_bert_dir: str) -> None:
    tok = _tokenizer(
        tiny_bert_dir, domains=["text", "molecule"], patterns={"molecule": r"[^\s]+"}, default_domain="text"
    )
    batch = tok(["molecule\tthe acid", {"domain": "text", "text": "CCO"}, "CC(=O)O", "a plain sentence"])
    assert batch["domain"].tolist() == [1, 0, 1, 0]
    # the tag is stripped: "molecule\tthe acid" tokenizes like "the acid"
    assert batch["input_ids"][0].tolist()[: 4] == tok(["text\tthe acid"])["input_ids"][0].tolist()[:4]


def test_undeclared_tag_names_the_tag_and_the_declared_ones(tiny_bert_dir: str) -> None:
    tok = _tokenizer(tiny_bert_dir, domains=["text", "molecule"])
    with pytest.raises(InputError) as err:
        tok(["text\thello", "protein\tMKVL"])
    message = str(err.value)
    assert "'protein'" in message and "text, molecule" in message
    with pytest.raises(InputError, match="'dna' is not declared; declared domains: text, molecule"):
        tok([{"domain": "dna", "text": "ACGT"}])
    with pytest.raises(InputError, match="no default_domain"):
        tok(["untagged"])
    assert "protein" in (tok.check_item("protein\tMKVL") or "")


def test_config_errors_name_the_undeclared_domain(tiny_bert_dir: str) -> None:
    with pytest.raises(ValueError, match="'protein' is not declared"):
        DomainTokenizer.Config(model=tiny_bert_dir, domains=["text"], default_domain="protein")


def test_encoder_needs_a_domain_tokenizer(tiny_bert_dir: str) -> None:
    with pytest.raises(ConfigError, match="declares domains"):
        MoETransformer(MoETransformer.Config(model=tiny_bert_dir), Runtime())
    tok = _tokenizer(tiny_bert_dir, domains=["a", "b"])
    enc = MoETransformer(MoETransformer.Config(model=tiny_bert_dir, layers=[0]), Runtime(tokenizer=tok))
    assert enc.expert_layers == (0,) and len(enc.experts(0)) == 2
    batch = tok(["a\tone", "b\ttwo"])
    with pytest.raises(InputError, match="'domain' tensor"):
        enc({k: v for k, v in batch.items() if k != "domain"})
    batch["domain"] = torch.tensor([0, 2])
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        enc(batch)
