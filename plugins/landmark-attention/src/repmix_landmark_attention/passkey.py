"""The pass-key retrieval task of ``llama/run_test.py`` (official code): find a number hidden in filler text.

A prompt is the task description, ``n_garbage`` characters of filler split at a random point, the
information line in between, and the question; the model should continue with the key::

    There is an important info hidden inside a lot of irrelevant text. ...   (header, may be empty)
    The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. The gra
    The pass key is 31415. Remember it. 31415 is the pass key.
    The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. The
    What is the pass key? The pass key is

As in the official code the key is a uniform integer in [1, 50000], the prefix garbage length is
uniform in [0, n_garbage] and both garbage pieces start at the beginning of the filler; parts are
joined by newlines (empty parts are left out, so a model with a short context can drop the header).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

HEADER = ("There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. "
          "I will quiz you about the important information there.")
GARBAGE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
QUESTION = "What is the pass key? The pass key is"


@dataclass(frozen=True)
class PassKeyPrompt:
    """A prompt, its key, and where the information line starts (characters)."""

    text: str
    key: int
    depth: float  # prefix garbage / all garbage


def make_prompt(n_garbage: int, rng: random.Random, header: str = HEADER, max_key: int = 50000) -> PassKeyPrompt:
    """One pass-key prompt with ``n_garbage`` characters of filler (``generate_prompt`` of run_test.py)."""
    prefix_len = rng.randint(0, n_garbage)
    garbage = " ".join([GARBAGE] * (n_garbage // len(GARBAGE) + 2))
    key = rng.randint(1, max_key)
    info = f"The pass key is {key}. Remember it. {key} is the pass key."
    parts = [header, garbage[:prefix_len], info, garbage[: n_garbage - prefix_len], QUESTION]
    return PassKeyPrompt("\n".join(p for p in parts if p), key, prefix_len / n_garbage if n_garbage else 0.0)


def training_text(prompt: PassKeyPrompt) -> str:
    """The prompt followed by its answer, for training: ``... The pass key is 31415.``"""
    return f"{prompt.text} {prompt.key}."


def read_key(generated: str) -> int | None:
    """The first integer of the model's continuation (the official ``re.search(r'\\d+', response)``)."""
    m = re.search(r"\d+", generated)
    return int(m.group()) if m else None
