"""Stimuli of the verbatim short-term memory paradigm: preface, noun list L1, intervening text, prompt, L2.

The layout follows ``assemble_sequence`` of the official code (``KristijanArmeni/verbatim-memory-in-NLMs``,
``src/wm_suite/io/prepare_transformer_inputs.py``)::

    <preface> <n1>, <n2>, ..., <nN>. <intervening text> <prompt> <m1>, <m2>, ..., <mN>.

with the paper's preface ("Before the meeting, Mary wrote down the following list of words:") and prompt
("When she got back, she read the list again:"). The second list is

* ``repeat`` — L1 again, in the same order;
* ``permute`` — the same nouns in another order (never the original one);
* ``control`` — novel nouns, none of them in L1 (the official code pairs lists across groups so that
  L1 ⊄ L2; here L2 is drawn from the rest of the pool, so the lists are disjoint).

The noun pool and the intervening vignettes are this plugin's own (the official noun lists and
vignettes ship without a licence); ``nouns_file`` and ``intervening_texts`` replace them.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

PREFACE = "Before the meeting, Mary wrote down the following list of words:"
PROMPT = "When she got back, she read the list again:"
CONDITIONS = ("repeat", "permute", "control")

#: Intervening texts between the lists (the paper's vignette grows from about 26 to 435 GPT-2 tokens).
INTERVENING: dict[str, str] = {
    "none": "",
    "short": "After the meeting, she went outside and sat on a bench in the sun for a while.",
    "medium": (
        "After the meeting, she went outside and sat on a bench in the sun for a while. The street was quiet and "
        "a light wind moved the leaves of the old trees. She thought about the long discussion with her colleagues "
        "and about the plans for the next month. A friend walked by, and they talked about the weather, the new "
        "bakery on the corner and a book they had both started reading. Then she finished her tea and walked home."
    ),
    "long": (
        "After the meeting, she went outside and sat on a bench in the sun for a while. The street was quiet and "
        "a light wind moved the leaves of the old trees. She thought about the long discussion with her colleagues "
        "and about the plans for the next month. A friend walked by, and they talked about the weather, the new "
        "bakery on the corner and a book they had both started reading. The friend had moved to the town only a "
        "year ago and still found new paths and small gardens every week. They agreed to meet again on Saturday "
        "and to walk along the river to the old mill, where a market is held in the summer. Children were playing "
        "near the fountain, and an old man was feeding the pigeons with bread from a paper bag. She stayed until the "
        "shadows grew long and the air became cool. Then she finished her tea, said goodbye and walked home slowly, "
        "thinking about everything she still had to do before the end of the week."
    ),
}

#: A pool of common concrete English nouns, one or two syllables (this plugin's own list).
NOUNS: tuple[str, ...] = (
    "apple", "arrow", "basket", "beach", "bell", "bench", "berry", "blanket", "boat", "bottle", "bread",
    "bridge", "brush", "bucket", "button", "cabin", "cake", "camera", "candle", "canoe", "carpet", "castle",
    "chain", "chair", "cheese", "cherry", "chicken", "church", "circle", "cloud", "coat", "coffee", "collar",
    "corner", "cotton", "cradle", "cup", "curtain", "desk", "diamond", "dinner", "doctor", "dollar", "door",
    "dragon", "drawer", "dress", "drum", "eagle", "engine", "farm", "feather", "fence", "finger", "flag",
    "flower", "forest", "fork", "fountain", "garden", "gate", "glass", "glove", "goat", "hammer", "harbor",
    "hat", "helmet", "hill", "horse", "island", "jacket", "jewel", "kettle", "key", "kitchen", "knife",
    "ladder", "lamp", "lemon", "letter", "lion", "lizard", "market", "meadow", "mirror", "monkey", "mountain",
    "needle", "nest", "night", "ocean", "office", "onion", "orange", "oven", "paper", "parrot", "pencil",
    "pepper", "piano", "picture", "pillow", "planet", "plate", "pocket", "pond", "potato", "rabbit", "radio",
    "rain", "ribbon", "river", "road", "robin", "rocket", "saddle", "sailor", "salad", "sandal", "school",
    "shadow", "sheep", "shell", "shirt", "shoe", "shovel", "silver", "singer", "sister", "skirt", "sofa",
    "soldier", "spoon", "stable", "star", "station", "stone", "storm", "street", "sugar", "summer", "table",
    "teacher", "temple", "tent", "thread", "tiger", "tomato", "tower", "town", "train", "tree", "truck",
    "tunnel", "valley", "village", "violin", "wagon", "wallet", "window", "winter", "wolf", "worker",
)


@dataclass
class Stimulus:
    """One sequence: its text and the byte spans of the nouns of each list."""

    id: str
    condition: str
    list_len: int
    intervening: str
    text: str
    list1: list[str]
    list2: list[str]
    spans1: list[tuple[int, int]] = field(default_factory=list)  # byte offsets [start, end) in text
    spans2: list[tuple[int, int]] = field(default_factory=list)


def assemble(list1: Sequence[str], list2: Sequence[str], intervening: str, *, preface: str = PREFACE,
             prompt: str = PROMPT) -> tuple[str, list[tuple[int, int]], list[tuple[int, int]]]:
    """``preface L1. intervening prompt L2.`` and the byte spans of every noun of L1 and L2."""
    parts: list[str] = []
    spans1: list[tuple[int, int]] = []
    spans2: list[tuple[int, int]] = []
    pos = 0

    def add(s: str, spans: list[tuple[int, int]] | None = None) -> None:
        nonlocal pos
        b = len(s.encode("utf-8"))
        if spans is not None:
            spans.append((pos, pos + b))
        parts.append(s)
        pos += b

    add(preface + " ")
    for i, w in enumerate(list1):
        add(w, spans1)
        add(", " if i < len(list1) - 1 else ".")
    middle = " ".join(t for t in (intervening.strip(), prompt) if t)
    add(" " + middle + " ")
    for i, w in enumerate(list2):
        add(w, spans2)
        add(", " if i < len(list2) - 1 else ".")
    return "".join(parts), spans1, spans2


def make_stimuli(
    *,
    list_lengths: Sequence[int] = (3, 5, 7, 10),
    conditions: Sequence[str] = CONDITIONS,
    n_lists: int = 20,
    intervening: Sequence[str] = ("short",),
    texts: Mapping[str, str] | None = None,
    nouns: Sequence[str] = NOUNS,
    seed: int = 0,
    preface: str = PREFACE,
    prompt: str = PROMPT,
) -> list[Stimulus]:
    """Every (intervening text × list length × condition × list) stimulus, seeded.

    The first lists are the same across conditions (so conditions differ only in L2), as in the paper.
    """
    texts = dict(INTERVENING if texts is None else texts)
    pool = list(dict.fromkeys(nouns))
    longest = max(list_lengths)
    if len(pool) < 2 * longest:
        raise ValueError(f"the noun pool holds {len(pool)} distinct nouns; lists of {longest} with novel "
                         f"control lists need at least {2 * longest}")
    for key in intervening:
        if key not in texts:
            raise ValueError(f"unknown intervening text {key!r}; known: {', '.join(texts)}")
    rng = random.Random(seed)
    out: list[Stimulus] = []
    for n in list_lengths:
        firsts = [rng.sample(pool, n) for _ in range(n_lists)]
        seconds: dict[str, list[list[str]]] = {"repeat": [list(f) for f in firsts], "permute": [], "control": []}
        for f in firsts:
            perm = list(f)
            if n > 1:
                while perm == f:
                    rng.shuffle(perm)
            seconds["permute"].append(perm)
            rest = [w for w in pool if w not in set(f)]
            seconds["control"].append(rng.sample(rest, n))
        for key in intervening:
            for cond in conditions:
                for i, (l1, l2) in enumerate(zip(firsts, seconds[cond])):
                    text, s1, s2 = assemble(l1, l2, texts[key], preface=preface, prompt=prompt)
                    out.append(Stimulus(f"{key}-n{n}-{cond}-{i}", cond, n, key, text, list(l1), list(l2), s1, s2))
    return out
