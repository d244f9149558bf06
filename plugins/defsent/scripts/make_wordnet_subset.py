"""Write the packaged WordNet dictionary subset (``src/repmix_defsent/data/wordnet-definitions.tsv``).

    python plugins/defsent/scripts/make_wordnet_subset.py /usr/share/wordnet

Source: Princeton WordNet 3.0 as shipped by Debian's ``wordnet-base`` (1:3.0-37). Kept: single-word,
alphabetic headwords with 2 to 8 senses (so an entry is a mean of several definitions, as in
DefSent+), every 6th such headword in alphabetical order (deterministic). Rows:
``entry \t definition``, one per sense.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from repmix_defsent.wordnet import read_dictionary  # noqa: E402

source = Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/wordnet")
out = Path(__file__).resolve().parents[1] / "src" / "repmix_defsent" / "data" / "wordnet-definitions.tsv"
table = read_dictionary(source)
words = sorted(w for w, d in table.items() if w.isalpha() and w.isascii() and 2 <= len(d) <= 8)
kept = words[::6]
rows = ["entry\tdefinition", *(f"{w}\t{d}" for w in kept for d in table[w])]
out.write_text("\n".join(rows) + "\n", encoding="utf-8")
print(f"{len(kept)} entries, {len(rows) - 1} definitions -> {out}")
