"""Synonym sets from Princeton WordNet 3.0 database files (``data.noun``, ``data.verb``, ...).

The files ship in Debian's ``wordnet-base`` package (``/usr/share/wordnet``) and in every WordNet 3.0
``dict/`` folder. Each ``data.<pos>`` line is ``offset lex_filenum ss_type w_cnt word lex_id ...
| gloss``; the words of one line form one synset (BabelNet, BabelBERT's resource, is built on it).
The plugin also ships a subset (``data/wordnet-synsets.tsv``, made by ``scripts/make_wordnet_subset.py``)
so it runs without the Debian package; WordNet's licence is in ``data/WORDNET-LICENSE``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

POS_FILES = {"noun": "data.noun", "verb": "data.verb", "adj": "data.adj", "adv": "data.adv"}
_MARKER = re.compile(r"\([a-z]+\)$")  # adjective position markers: "galore(ip)"


def read_synsets(directory: Path, pos: tuple[str, ...] = ("noun", "verb", "adj", "adv")) -> Iterator[tuple[str, list[str], str]]:
    """Yield ``(synset id, lemmas, gloss)`` for every synset of the given parts of speech.

    The id is ``<offset>-<pos letter>`` (WordNet's own key); lemmas have ``_`` turned into spaces,
    adjective markers removed and duplicates (case-insensitive) dropped, in file order.
    """
    for p in pos:
        path = Path(directory) / POS_FILES[p]
        with path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  "):  # the licence header
                    continue
                head, _, gloss = line.partition("|")
                fields = head.split()
                offset, ss_type, count = fields[0], fields[2], int(fields[3], 16)
                lemmas: list[str] = []
                for word in fields[4 : 4 + 2 * count : 2]:
                    text = _MARKER.sub("", word).replace("_", " ")
                    if text.lower() not in (w.lower() for w in lemmas):
                        lemmas.append(text)
                yield f"{offset}-{ss_type}", lemmas, gloss.strip()
