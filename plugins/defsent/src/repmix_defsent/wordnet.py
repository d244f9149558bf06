"""Dictionary entries with their definitions from Princeton WordNet 3.0 database files.

The files ship in Debian's ``wordnet-base`` package (``/usr/share/wordnet``) and in every WordNet 3.0
``dict/`` folder. Each ``data.<pos>`` line holds one synset: its words, then ``| gloss``, where the
gloss is the definition followed by ``; "example"`` sentences. An *entry* (a headword) collects the
definitions of every synset it belongs to: its senses. The plugin also ships a subset
(``data/wordnet-definitions.tsv``, made by ``scripts/make_wordnet_subset.py``); WordNet's licence is
in ``data/WORDNET-LICENSE``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

POS_FILES = {"noun": "data.noun", "verb": "data.verb", "adj": "data.adj", "adv": "data.adv"}
_MARKER = re.compile(r"\([a-z]+\)$")


def definition_of(gloss: str) -> str:
    """The definition part of a WordNet gloss (examples after ``; "`` dropped)."""
    return gloss.split('; "')[0].strip().rstrip(";").strip()


def read_senses(directory: Path, pos: tuple[str, ...] = ("noun", "verb", "adj", "adv")) -> Iterator[tuple[str, str, str]]:
    """Yield ``(headword, synset id, definition)`` for every word of every synset, in file order."""
    for p in pos:
        with (Path(directory) / POS_FILES[p]).open(encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  "):
                    continue
                head, _, gloss = line.partition("|")
                fields = head.split()
                count = int(fields[3], 16)
                definition = definition_of(gloss)
                for word in fields[4 : 4 + 2 * count : 2]:
                    yield _MARKER.sub("", word).replace("_", " ").lower(), f"{fields[0]}-{fields[2]}", definition


def read_dictionary(directory: Path, pos: tuple[str, ...] = ("noun", "verb", "adj", "adv")) -> dict[str, list[str]]:
    """``headword -> definitions`` (one per sense, duplicates dropped), headwords in first-seen order."""
    out: dict[str, list[str]] = {}
    for word, _, definition in read_senses(directory, pos):
        defs = out.setdefault(word, [])
        if definition and definition not in defs:
            defs.append(definition)
    return out
