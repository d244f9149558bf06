"""Write the packaged WordNet synonym-set subset (``src/repmix_babelbert/data/wordnet-synsets.tsv``).

    python plugins/babelbert/scripts/make_wordnet_subset.py /usr/share/wordnet

Source: Princeton WordNet 3.0 as shipped by Debian's ``wordnet-base`` (1:3.0-37). Kept: synsets of
every part of speech with 2 to 6 distinct lemmas of at most 3 words each, every 8th such synset in
file order (deterministic). Rows: ``synset \t lemma``, one per lemma.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from repmix_babelbert.wordnet import read_synsets  # noqa: E402

source = Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/wordnet")
out = Path(__file__).resolve().parents[1] / "src" / "repmix_babelbert" / "data" / "wordnet-synsets.tsv"
rows = ["synset\tlemma"]
kept = n = 0
for sid, lemmas, _ in read_synsets(source):
    if 2 <= len(lemmas) <= 6 and all(len(w.split()) <= 3 for w in lemmas):
        if n % 8 == 0:
            rows += [f"{sid}\t{w}" for w in lemmas]
            kept += 1
        n += 1
out.write_text("\n".join(rows) + "\n", encoding="utf-8")
print(f"{kept} synsets, {len(rows) - 1} lemmas -> {out}")
