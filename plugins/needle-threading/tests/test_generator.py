"""Faithfulness and task invariants of the Needle Threading generator."""

from __future__ import annotations

import json
import random
import uuid

import pytest
from repmix_needle_threading import (
    SINGLE_QUESTION,
    TaskError,
    follow_thread,
    generate,
    haystack_pairs,
    pairs_for_length,
    serialize,
)

#: The first key-value pair of the official haystack (jonathan-roberts1/needle-threading README), per the spec.
OFFICIAL_FIRST_PAIR = ("e3e70682-c209-4cac-629f-6fbed82c07cd", "f728b4fa-4248-5e3a-0a5d-2f346baa9455")


def test_seed_0_reproduces_the_official_haystack_prefix() -> None:
    pairs = haystack_pairs(3, seed=0)
    assert pairs[0] == OFFICIAL_FIRST_PAIR
    assert serialize(pairs).startswith('{"e3e70682-c209-4cac-629f-6fbed82c07cd": "f728b4fa-4248-5e3a-0a5d-2f346baa9455"')


def test_stream_is_the_spec_recipe_and_leaves_the_global_generator_alone() -> None:
    state = random.getstate()
    pairs = haystack_pairs(50, seed=0)
    assert random.getstate() == state
    random.seed(0)
    expected = []
    for _ in range(50):
        expected.append((str(uuid.UUID(int=random.getrandbits(128))), str(uuid.UUID(int=random.getrandbits(128)))))
    random.setstate(state)
    assert pairs == expected


def test_keys_unique_and_size_fits_the_context_length() -> None:
    for length in (80, 1000, 12345):
        task = generate("single_needle", length)
        assert len(task.haystack) <= length
        obj = json.loads(task.haystack)
        assert len(obj) == task.num_kv_pairs == pairs_for_length(length)
        bigger = haystack_pairs(task.num_kv_pairs + 1, seed=0)
        assert len(serialize(bigger)) > length  # the most pairs that fit


@pytest.mark.parametrize("depth", [0.0, 0.25, 0.5, 1.0])
def test_single_needle_sits_at_the_requested_depth(depth: float) -> None:
    task = generate("single_needle", 4000, depth=depth)
    keys = list(json.loads(task.haystack))
    i = keys.index(task.keys[0])
    assert i == round(depth * (task.num_kv_pairs - 1))
    assert json.loads(task.haystack)[task.keys[0]] == task.values[0]
    assert task.question == SINGLE_QUESTION.format(key=task.keys[0])
    assert task.question.startswith("Extract the value corresponding to the specified key in the JSON object. Key: ")


def test_multiple_needles() -> None:
    task = generate("multi_needle", 4000, num_needles=4, seed=3)
    obj = json.loads(task.haystack)
    assert len(set(task.keys)) == 4
    assert [obj[k] for k in task.keys] == task.values
    clustered = generate("multi_needle", 4000, num_needles=4, placement="clustered")
    order = list(json.loads(clustered.haystack))
    idx = [order.index(k) for k in clustered.keys]
    assert idx == list(range(idx[0], idx[0] + 4))
    by_depth = generate("multi_needle", 4000, num_needles=2, depths=[0.0, 1.0])
    assert by_depth.keys == [order[0], order[-1]] or by_depth.keys[0] == list(json.loads(by_depth.haystack))[0]


def test_conditional_needles_only_needle_keys_hold_the_character() -> None:
    task = generate("conditional_needle", 4000, num_needles=3, character="*")
    obj = json.loads(task.haystack)
    holders = [k for k in obj if "*" in k]
    assert sorted(holders) == sorted(task.keys) and len(holders) == 3
    assert all(len(k) == 36 and k.count("*") == 1 for k in holders)
    assert sorted(obj[k] for k in holders) == sorted(task.values)
    assert len(obj) == task.num_kv_pairs  # keys stay unique


@pytest.mark.parametrize("direction", ["forward", "backward", "random"])
def test_threads_follow_to_the_answer(direction: str) -> None:
    task = generate("single_thread", 6000, thread_length=5, direction=direction, depth=0.3)
    obj = json.loads(task.haystack)
    assert follow_thread(list(obj.items()), task.keys[0], 5) == task.values[0]
    order = list(obj)
    idx = [order.index(k) for k in task.threads[0]]
    if direction == "forward":
        assert idx == sorted(idx)
    elif direction == "backward":
        assert idx == sorted(idx, reverse=True)
    # every hop but the last lands on another thread key
    for a, b in zip(task.threads[0], task.threads[0][1:]):
        assert obj[a] == b


def test_multiple_threads_are_disjoint_and_each_resolves() -> None:
    task = generate("multi_thread", 8000, num_threads=3, thread_length=4, seed=7)
    obj = json.loads(task.haystack)
    assert len(task.keys) == 3
    assert len({k for t in task.threads for k in t}) == 12
    for start, answer in zip(task.keys, task.values):
        assert follow_thread(list(obj.items()), start, 4) == answer


def test_deterministic_for_a_seed_and_different_across_repeats() -> None:
    a = generate("multi_needle", 3000, num_needles=3, seed=1)
    b = generate("multi_needle", 3000, num_needles=3, seed=1)
    c = generate("multi_needle", 3000, num_needles=3, seed=1, repeat=1)
    assert a.record() == b.record()
    assert a.keys != c.keys


def test_bad_requests_raise_one_clear_error() -> None:
    with pytest.raises(TaskError, match="cannot place 5 needles"):
        generate("multi_needle", 200, num_needles=5)
    with pytest.raises(TaskError, match="outside the UUID alphabet"):
        generate("conditional_needle", 2000, character="a")
    with pytest.raises(TaskError, match="need 30 pairs"):
        generate("multi_thread", 1000, num_threads=3, thread_length=10)
    with pytest.raises(TaskError, match="depth"):
        generate("single_needle", 1000, depth=1.5)
    with pytest.raises(TaskError, match="unknown task"):
        generate("haystack", 1000)  # type: ignore[arg-type]
