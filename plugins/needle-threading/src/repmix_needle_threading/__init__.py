"""repmix-needle-threading: Needle Threading's haystack generator and a retrieval evaluator."""

from repmix_needle_threading.generator import (
    SINGLE_QUESTION,
    TASKS,
    NeedleTask,
    TaskError,
    exact_match,
    follow_thread,
    generate,
    haystack_pairs,
    pairs_for_length,
    serialize,
    uuid_stream,
)

__all__ = [
    "SINGLE_QUESTION",
    "TASKS",
    "NeedleTask",
    "TaskError",
    "exact_match",
    "follow_thread",
    "generate",
    "haystack_pairs",
    "pairs_for_length",
    "serialize",
    "uuid_stream",
]
