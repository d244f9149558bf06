"""Batch-level BPE merges of subword tokens (the core of Feher, Vulić & Minixhofer, ACL 2025).

The official ``Dynamic_BPE.tokenize_batch`` (``tokenizations/dynamic_bpe.py``) repeats, up to
``max_nr_merges`` times: count every adjacent pair of the batch that is *valid* (see
:mod:`repmix_dynamic_tokenization.boundaries`), take the most frequent one
(``max(Counter, key=count)``: ties go to the pair seen first when the batch is read sequence by
sequence, left to right) and merge it at every occurrence, left to right without overlap. It
stops early when no valid pair is left.

:func:`dynamic_merges` computes exactly that, incrementally: pair occurrences are indexed by their
left token, and a lazy max-heap keyed by (count, first occurrence) replaces the recount of the
whole batch after every merge, so a batch of 64 documents of 256 tokens merged down to words
takes milliseconds instead of minutes. :func:`reference_merges` is the official loop itself
(kept for the tests, which check that both give identical merges and tokens).

Tokens are plain strings; ``concat(a, b)`` is the string of the merged token (``a + b`` for
SentencePiece/byte-level tokens, ``a + b[2:]`` for a WordPiece continuation ``##b``). Each token
also carries the base token ids it stands for (``parts``), which is what makes the merges
lossless: the parts of a merged sequence, read in order, are the base tokenization.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

Pair = tuple[str, str]
Valid = Callable[[str, str], bool]
Concat = Callable[[str, str], str]


@dataclass(frozen=True)
class Merge:
    """One merge step: the pair, the merged token, its count before merging and the occurrences merged.

    ``frequency`` counts overlapping occurrences (``a a a`` holds the pair ``(a, a)`` twice), as the
    official ``Counter`` does; ``occurrences`` is how many were merged (non-overlapping, left to
    right), which is exactly how many tokens the step removes from the batch.
    """

    left: str
    right: str
    merged: str
    frequency: int
    occurrences: int


@dataclass
class MergeResult:
    """Merged tokens per sequence, their base-id parts, and the merges applied in order."""

    tokens: list[list[str]]
    parts: list[list[tuple[int, ...]]]
    merges: list[Merge]

    @property
    def num_tokens(self) -> int:
        """Tokens in the whole batch after merging."""
        return sum(len(t) for t in self.tokens)


class _Node:
    """A token of one sequence in a doubly linked list; ``key`` orders nodes as the batch is read."""

    __slots__ = ("alive", "key", "next", "parts", "prev", "token")

    def __init__(self, token: str, parts: tuple[int, ...], key: tuple[int, int]) -> None:
        self.token = token
        self.parts = parts
        self.key = key
        self.prev: _Node | None = None
        self.next: _Node | None = None
        self.alive = True


def dynamic_merges(
    tokens: Sequence[Sequence[str]],
    parts: Sequence[Sequence[tuple[int, ...]]],
    *,
    is_valid: Valid,
    concat: Concat,
    max_merges: int | None = None,
) -> MergeResult:
    """Merge the most frequent valid pair of the batch, ``max_merges`` times (``None``: until none is left).

    Same result as :func:`reference_merges` (the official algorithm), computed incrementally.
    ``tokens[i][j]`` is the string of token j of sequence i, ``parts[i][j]`` its base ids.
    """
    if max_merges is not None and max_merges < 0:
        raise ValueError(f"max_merges must be >= 0 or None, got {max_merges}")
    valid_cache: dict[Pair, bool] = {}

    def valid(a: str, b: str) -> bool:
        pair = (a, b)
        v = valid_cache.get(pair)
        if v is None:
            v = valid_cache[pair] = bool(is_valid(a, b))
        return v

    heads: list[_Node | None] = []
    occ: dict[Pair, set[_Node]] = {}
    for i, (seq, seq_parts) in enumerate(zip(tokens, parts, strict=True)):
        if len(seq) != len(seq_parts):
            raise ValueError(f"sequence {i}: {len(seq)} tokens but {len(seq_parts)} parts")
        prev: _Node | None = None
        head: _Node | None = None
        for j, (tok, p) in enumerate(zip(seq, seq_parts)):
            node = _Node(tok, tuple(p), (i, j))
            if prev is None:
                head = node
            else:
                prev.next, node.prev = node, prev
                if valid(prev.token, tok):
                    occ.setdefault((prev.token, tok), set()).add(prev)
            prev = node
        heads.append(head)

    heap: list[tuple[int, tuple[int, int], Pair]] = []

    def push(pair: Pair) -> None:
        nodes = occ.get(pair)
        if nodes:
            heapq.heappush(heap, (-len(nodes), min(n.key for n in nodes), pair))

    for pair in occ:
        push(pair)

    merges: list[Merge] = []
    while max_merges is None or len(merges) < max_merges:
        best: Pair | None = None
        while heap:
            neg, first, pair = heapq.heappop(heap)
            nodes = occ.get(pair)
            if nodes and len(nodes) == -neg and min(n.key for n in nodes) == first:
                best = pair
                break
        if best is None:
            break  # no valid pair left: the official loop's early exit
        a, b = best
        merged_token = concat(a, b)
        left_nodes = sorted(occ.pop(best), key=lambda n: n.key)
        frequency = len(left_nodes)
        touched: set[Pair] = set()

        def drop(pair: Pair, node: _Node, touched: set[Pair] = touched) -> None:
            nodes = occ.get(pair)
            if nodes is not None and node in nodes:
                nodes.discard(node)
                touched.add(pair)

        merged = 0
        for left in left_nodes:
            right = left.next
            # skip occurrences an earlier merge of this step consumed (overlap: "a a a")
            if not left.alive or right is None or not right.alive or left.token != a or right.token != b:
                continue
            if left.prev is not None:
                drop((left.prev.token, left.token), left.prev)
            if right.next is not None:
                drop((right.token, right.next.token), right)
            drop((a, b), left)  # the pair itself (already popped; harmless)
            left.token = merged_token
            left.parts = left.parts + right.parts
            right.alive = False
            left.next = right.next
            if right.next is not None:
                right.next.prev = left
            merged += 1
            if left.prev is not None and valid(left.prev.token, left.token):
                occ.setdefault((left.prev.token, left.token), set()).add(left.prev)
                touched.add((left.prev.token, left.token))
            if left.next is not None and valid(left.token, left.next.token):
                occ.setdefault((left.token, left.next.token), set()).add(left)
                touched.add((left.token, left.next.token))
        merges.append(Merge(a, b, merged_token, frequency, merged))
        for pair in touched:
            if pair in occ and not occ[pair]:
                del occ[pair]
            else:
                push(pair)

    out_tokens: list[list[str]] = []
    out_parts: list[list[tuple[int, ...]]] = []
    for head in heads:
        seq_t: list[str] = []
        seq_p: list[tuple[int, ...]] = []
        node = head
        while node is not None:
            seq_t.append(node.token)
            seq_p.append(node.parts)
            node = node.next
        out_tokens.append(seq_t)
        out_parts.append(seq_p)
    return MergeResult(out_tokens, out_parts, merges)


def reference_merges(
    tokens: Sequence[Sequence[str]],
    *,
    is_valid: Valid,
    concat: Concat,
    max_merges: int | None = None,
) -> tuple[list[list[str]], list[Pair]]:
    """The official ``tokenize_batch`` loop, line for line (``get_most_frequent_pair`` + ``merge_pair``).

    Recounts the whole batch after every merge: quadratic, for tests only. Returns the merged
    tokens and the pairs merged, in order.
    """
    batch = [list(seq) for seq in tokens]
    pairs_merged: list[Pair] = []
    while max_merges is None or len(pairs_merged) < max_merges:
        freqs: Counter[Pair] = Counter()
        for seq in batch:
            freqs.update(p for p in pairwise(seq) if is_valid(p[0], p[1]))
        if not freqs:
            break
        a, b = max(freqs, key=freqs.get)  # type: ignore[arg-type]
        pairs_merged.append((a, b))
        for idx, seq in enumerate(batch):
            out: list[str] = []
            i = 0
            while i < len(seq):
                if i < len(seq) - 1 and seq[i] == a and seq[i + 1] == b:
                    out.append(concat(a, b))
                    i += 2
                else:
                    out.append(seq[i])
                    i += 1
            batch[idx] = out
    return batch, pairs_merged
