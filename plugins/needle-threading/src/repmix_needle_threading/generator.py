"""The Needle Threading task generator: UUID key-value haystacks with needles and threads.

Pure Python (standard library only), deterministic for a seed, no torch.

* **Haystack** — ``random.Random(seed)``; each pair draws ``str(uuid.UUID(int=rng.getrandbits(128)))``
  for the key, then the same for the value (alternately). With seed 0 the first pair is
  ``e3e70682-c209-4cac-629f-6fbed82c07cd -> f728b4fa-4248-5e3a-0a5d-2f346baa9455``, the first pair
  of the official haystack shown in the README of ``jonathan-roberts1/needle-threading`` (as the
  spec states it). A private ``Random`` instance gives the same stream as ``random.seed(0)`` +
  ``random.getrandbits`` without touching the global generator.
* **Size** — a haystack is sized to a context length in *characters* (the official
  ``context_length`` field): the most pairs whose JSON serialisation fits.
* **Tasks** — single needle (one key at a depth), multiple needles, conditional needles (the
  values of every key containing a character), a thread (each value is the next key; follow it
  forwards or backwards through the haystack), and multiple threads. Needle and thread positions
  and edits use a second generator, ``random.Random(f"{seed}/{task}/{repeat}")``, so the haystack
  itself stays the official stream.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

#: The question of the single-needle task, as the spec quotes it.
SINGLE_QUESTION = (
    'Extract the value corresponding to the specified key in the JSON object. Key: "{key}"\n Corresponding value: '
)
#: The other task questions are our wording (the spec quotes only the single-needle one).
MULTI_QUESTION = (
    "Extract the values corresponding to the specified keys in the JSON object. Keys: {keys}\n Corresponding values: "
)
CONDITIONAL_QUESTION = (
    'Extract all values whose keys contain the character "{char}" in the JSON object.\n Corresponding values: '
)
THREAD_QUESTION = (
    "The value of a key in the JSON object may itself be a key. Starting from the key below, follow the thread "
    'of keys to its end and give the final value. Key: "{key}"\n Final value: '
)
MULTI_THREAD_QUESTION = (
    "The value of a key in the JSON object may itself be a key. Starting from each key below, follow its thread "
    "of keys to its end and give the final values. Keys: {keys}\n Final values: "
)
TASKS = ("single_needle", "multi_needle", "conditional_needle", "single_thread", "multi_thread")
Task = Literal["single_needle", "multi_needle", "conditional_needle", "single_thread", "multi_thread"]
UUID_CHARS = frozenset("0123456789abcdef-")


class TaskError(ValueError):
    """A task that cannot be generated as asked (too few pairs, a bad character, ...)."""


def uuid_stream(seed: int) -> Any:
    """Endless UUID strings from ``random.Random(seed).getrandbits(128)`` (the official recipe)."""
    rng = random.Random(seed)
    while True:
        yield str(uuid.UUID(int=rng.getrandbits(128)))


def haystack_pairs(num_pairs: int, seed: int = 0) -> list[tuple[str, str]]:
    """``num_pairs`` (key, value) pairs drawn alternately key, value; keys unique (a repeat is redrawn)."""
    if num_pairs < 1:
        raise TaskError(f"a haystack needs at least 1 key-value pair, got {num_pairs}")
    stream = uuid_stream(seed)
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    while len(pairs) < num_pairs:
        key, value = next(stream), next(stream)
        if key in seen:  # 2^-128 per pair: never in practice, but keys must be unique
            continue
        seen.add(key)
        pairs.append((key, value))
    return pairs


def serialize(pairs: Sequence[tuple[str, str]], indent: int | None = None) -> str:
    """The haystack as a JSON object (``json.dumps``; ``indent`` None = one line, ``", "`` and ``": "``)."""
    return json.dumps(dict(pairs), indent=indent, ensure_ascii=False)


def pairs_for_length(context_length: int, indent: int | None = None) -> int:
    """The most pairs whose serialisation is at most ``context_length`` characters (at least 1)."""
    one = len(serialize([("k" * 36, "v" * 36)], indent))
    two = len(serialize([("k" * 36, "v" * 36), ("l" * 36, "w" * 36)], indent))
    per_pair = two - one
    n = 1 + max(0, (context_length - one) // per_pair)
    return n


def depth_index(depth: float, num_pairs: int) -> int:
    """Index of the pair at ``depth`` (0 = first pair, 1 = last)."""
    if not 0.0 <= depth <= 1.0:
        raise TaskError(f"needle depth must be within [0, 1], got {depth}")
    return round(depth * (num_pairs - 1))


@dataclass
class NeedleTask:
    """One generated task, with the official dataset's fields (``haystack`` is the JSON text)."""

    id: str
    task: str
    haystack: str
    keys: list[str]
    values: list[str]
    question: str
    context_length: int
    num_kv_pairs: int
    repeat_number: int
    needle_depth: list[float] = field(default_factory=list)
    num_needles: int = 0
    needle_placement: str = ""
    conditional_character: str = ""
    thread_length: int = 0
    thread_direction: str = ""
    num_threads: int = 0
    pairs: list[tuple[str, str]] = field(default_factory=list, repr=False)
    #: each thread's keys in order (threads only)
    threads: list[list[str]] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """The task as a JSON-able dict (the pair list left out: it is ``haystack``)."""
        out = asdict(self)
        out.pop("pairs")
        return out


def _positions(rng: random.Random, n: int, k: int, placement: str, depths: Sequence[float] | None) -> list[int]:
    if k > n:
        raise TaskError(f"cannot place {k} needles in a haystack of {n} pairs; use a longer context_length")
    if depths:
        if len(depths) != k:
            raise TaskError(f"{len(depths)} depths given for {k} needles")
        idx = [depth_index(d, n) for d in depths]
        if len(set(idx)) != k:
            raise TaskError(f"depths {list(depths)} fall on the same pair in a haystack of {n} pairs")
        return idx
    if placement == "clustered":
        start = rng.randrange(0, n - k + 1)
        return list(range(start, start + k))
    return sorted(rng.sample(range(n), k))


def generate(
    task: Task,
    context_length: int,
    *,
    seed: int = 0,
    repeat: int = 0,
    depth: float = 0.5,
    depths: Sequence[float] | None = None,
    num_needles: int = 1,
    placement: Literal["random", "clustered"] = "random",
    character: str = "*",
    thread_length: int = 3,
    direction: Literal["forward", "backward", "random"] = "forward",
    num_threads: int = 2,
    indent: int | None = None,
) -> NeedleTask:
    """One task over a haystack of ``context_length`` characters drawn with ``seed``.

    ``depth`` places the single needle (and the first pair of a thread); ``depths`` (one per
    needle) or ``placement`` places multiple and conditional needles. A thread is
    ``thread_length`` pairs whose values are the next pair's key; ``forward`` threads run down
    the haystack, ``backward`` ones up it, ``random`` ones jump. Pairs are taken from the seeded
    haystack and edited in place (values of thread pairs; one character of conditional keys), so
    the haystack keeps its size.
    """
    if task not in TASKS:
        raise TaskError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
    n = pairs_for_length(context_length, indent)
    pairs = haystack_pairs(n, seed)
    rng = random.Random(f"{seed}/{task}/{repeat}")
    common: dict[str, Any] = {"context_length": context_length, "num_kv_pairs": n, "repeat_number": repeat}
    ident = f"{task}-{context_length}-{seed}-{repeat}"
    if task == "single_needle":
        i = depth_index(depth, n)
        key, value = pairs[i]
        return NeedleTask(ident, task, serialize(pairs, indent), [key], [value], SINGLE_QUESTION.format(key=key),
                          needle_depth=[depth], num_needles=1, pairs=pairs, **common)
    if task == "multi_needle":
        idx = _positions(rng, n, num_needles, placement, depths)
        keys = [pairs[i][0] for i in idx]
        return NeedleTask(ident, task, serialize(pairs, indent), keys, [pairs[i][1] for i in idx],
                          MULTI_QUESTION.format(keys=json.dumps(keys)),
                          needle_depth=[i / max(n - 1, 1) for i in idx], num_needles=num_needles,
                          needle_placement="depths" if depths else placement, pairs=pairs, **common)
    if task == "conditional_needle":
        if len(character) != 1 or character in UUID_CHARS or character in '"\\':
            raise TaskError(
                f"the conditional character must be one character outside the UUID alphabet (0-9, a-f, '-') "
                f"and not a quote or backslash, got {character!r}"
            )
        idx = _positions(rng, n, num_needles, placement, depths)
        for i in idx:
            key, value = pairs[i]
            # replace one hex digit (never a hyphen) at a seeded position: the key keeps 36 characters
            spots = [j for j, ch in enumerate(key) if ch != "-"]
            j = rng.choice(spots)
            pairs[i] = (key[:j] + character + key[j + 1 :], value)
        keys = [pairs[i][0] for i in idx]
        return NeedleTask(ident, task, serialize(pairs, indent), keys, [pairs[i][1] for i in idx],
                          CONDITIONAL_QUESTION.format(char=character),
                          needle_depth=[i / max(n - 1, 1) for i in idx], num_needles=num_needles,
                          needle_placement="depths" if depths else placement, conditional_character=character,
                          pairs=pairs, **common)
    # threads
    count = 1 if task == "single_thread" else num_threads
    if thread_length < 2:
        raise TaskError(f"a thread needs at least 2 pairs (thread_length >= 2), got {thread_length}")
    if count * thread_length > n:
        raise TaskError(
            f"{count} thread(s) of {thread_length} pairs need {count * thread_length} pairs, but a context of "
            f"{context_length} characters holds {n}; use a longer context_length"
        )
    used = set[int]()
    threads_idx: list[list[int]] = []
    for t in range(count):
        free = [i for i in range(n) if i not in used]
        if task == "single_thread":
            start = depth_index(depth, n)
            chosen = sorted(free, key=lambda i: (abs(i - start), i))[:thread_length]
            chosen = sorted(chosen)
        else:
            chosen = sorted(rng.sample(free, thread_length))
        if direction == "backward":
            chosen = chosen[::-1]
        elif direction == "random":
            rng.shuffle(chosen)
        elif direction != "forward":
            raise TaskError(f"thread direction must be forward, backward or random, got {direction!r}")
        used.update(chosen)
        threads_idx.append(chosen)
    for chosen in threads_idx:
        for a, b in zip(chosen, chosen[1:]):
            pairs[a] = (pairs[a][0], pairs[b][0])
    starts = [pairs[c[0]][0] for c in threads_idx]
    answers = [pairs[c[-1]][1] for c in threads_idx]
    question = (THREAD_QUESTION.format(key=starts[0]) if task == "single_thread"
                else MULTI_THREAD_QUESTION.format(keys=json.dumps(starts)))
    return NeedleTask(ident, task, serialize(pairs, indent), starts, answers, question,
                      needle_depth=[c[0] / max(n - 1, 1) for c in threads_idx], thread_length=thread_length,
                      thread_direction=direction, num_threads=count, pairs=pairs,
                      threads=[[pairs[i][0] for i in c] for c in threads_idx], **common)


def follow_thread(pairs: Sequence[tuple[str, str]], start: str, hops: int) -> str:
    """Look ``start`` up, then the value as the next key, ``hops`` times; the last value."""
    table = dict(pairs)
    key = start
    for _ in range(hops):
        key = table[key]
    return key


def exact_match(prediction: str | Sequence[str], answers: Sequence[str]) -> bool:
    """Exact match: one answer against the string, several against the set of predicted strings."""
    if isinstance(prediction, str):
        return len(answers) == 1 and prediction.strip().strip('"') == answers[0]
    return sorted(p.strip().strip('"') for p in prediction) == sorted(answers)
