"""repmix-lem: Linguistic Entity Masking (Fernando & Ranathunga, 2025) as a repmix corruptor.

``lem.mask`` masks one random subword of each named-entity, verb and noun word (found by a spaCy
pipeline or a word-class lexicon) within a 15 % budget, then random words; ``std.masked-lm``
is the loss. See docs/plugins/lem.md.
"""

__version__ = "1.0.0"
