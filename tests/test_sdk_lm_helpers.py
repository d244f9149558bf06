"""repmix.sdk.lm helpers: scoring_windows (every id scored once, led by the start id) and pick_tower."""

from __future__ import annotations

import pytest

from repmix.core.dataflow import EncoderSignature, GranularitySpec, TowerView
from repmix.core.errors import InputError, PipelineError
from repmix.sdk.lm import pick_tower, scoring_windows


class CharTokenizer:
    """One id per character (ord), start id 1; ``max_length`` as a tokenizer would set it."""

    bos_token_id: int | None = 1
    eos_token_id: int | None = 2

    def __init__(self, max_length: int | None = None) -> None:
        self.max_length = max_length

    def encode_plain(self, text: str) -> list[int]:
        return [ord(c) for c in text]


class Encoder:
    def __init__(self, context_length: int | None = None) -> None:
        self.context_length = context_length


def test_windows_cover_every_id_once_with_the_start_id_in_front() -> None:
    texts = ["abcdefghij", "xy", "é"]
    windows, n_bytes = scoring_windows(CharTokenizer(max_length=8), Encoder(context_length=5), texts, context=4)
    assert n_bytes == 10 + 2 + 2  # UTF-8 bytes, not characters
    assert all(w[0] == 1 and 2 <= len(w) <= 4 for w in windows)  # width = min(8, 5, 4) = 4
    assert sorted(i for w in windows for i in w[1:]) == sorted(ord(c) for t in texts for c in t)
    assert [len(w) for w in windows] == sorted(len(w) for w in windows)


def test_end_of_text_id_stands_in_when_there_is_no_start_id() -> None:
    tok = CharTokenizer()
    tok.bos_token_id = None
    windows, _ = scoring_windows(tok, Encoder(), ["ab"])
    assert windows == [[2, 97, 98]]


def test_bad_input_is_one_clear_error() -> None:
    tok = CharTokenizer()
    with pytest.raises(InputError, match="at least 2 tokens"):
        scoring_windows(tok, Encoder(), ["ab"], context=1)
    with pytest.raises(InputError, match="expected documents as text"):
        scoring_windows(tok, Encoder(), [b"ab"])
    tok.bos_token_id = tok.eos_token_id = None
    with pytest.raises(InputError, match="beginning- or end-of-text"):
        scoring_windows(tok, Encoder(), ["ab"])


def _view(name: str, granularities: tuple[str, ...], corruptor: str | None = None) -> TowerView:
    specs = {g: GranularitySpec(shape="sequence", values="hidden") for g in granularities}
    return TowerView(name=name, granularities=specs, encoder=EncoderSignature(granularities=specs), corruptor=corruptor)


def test_pick_tower_by_name_by_granularity_and_by_corruption() -> None:
    towers = {"text": _view("text", ("token", "logits"), corruptor="std.mlm-mask"), "other": _view("other", ("token",))}
    assert pick_tower("x.loss", "other", towers).name == "other"
    assert pick_tower("x.loss", None, towers, provides="logits").name == "text"
    assert pick_tower("x.loss", None, towers, corrupted=True).name == "text"
    with pytest.raises(PipelineError, match="x.loss reads tower 'nope', which is not declared"):
        pick_tower("x.loss", "nope", towers)
    with pytest.raises(PipelineError, match="needs tower: when 2 towers provide 'token'"):
        pick_tower("x.loss", None, towers, provides="token")


def test_extend_prefix_appends_to_the_cached_prefix() -> None:
    import torch

    from repmix.sdk.lm import extend_prefix

    ids = torch.tensor([[5, 6]])
    full, mask = extend_prefix(ids, None, None)
    assert torch.equal(full, ids) and torch.equal(mask, torch.ones_like(ids))
    full, mask = extend_prefix(ids, torch.tensor([[1, 0]]), (torch.tensor([[1, 2]]), torch.tensor([[1, 1]])))
    assert full.tolist() == [[1, 2, 5, 6]] and mask.tolist() == [[1, 1, 1, 0]]
