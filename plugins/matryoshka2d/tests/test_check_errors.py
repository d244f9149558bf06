"""Impossible pipelines are rejected by ``repmix check`` (plan_model: signature(), no compute) with one clear message."""

from __future__ import annotations

from typing import ClassVar

import pytest
from repmix.core.assembly import plan_model
from repmix.core.components import ComponentConfig, Encoder, Loss, LossInputs
from repmix.core.configio import LocatedConfig, parse_yaml
from repmix.core.errors import ConfigError, PipelineError
from repmix.core.types import (
    Encoded,
    EncoderSignature,
    GranularitySpec,
    LossOutput,
)
from repmix.sdk.conformance import ByteTokenizer

BASE = """
model:
  towers:
    query:
      tokenizer: {{type: hf-tokenizer, model: {model}}}
      encoder:   {encoder}
      poolers:   {{sentence: {pooler}}}
    document: {{shared_with: query}}
  alignments:
    similarity: {{type: cosine, between: [query.sentence, document.sentence]}}
  losses:
    - {loss}
"""
HF = "{{type: hf-transformer, model: {model}}}"
MEAN = "{type: mean}"
M2D = "{type: matryoshka2d, on: similarity, base: {type: mnrl}, dims: [32, 16]}"


def check(model: str, *, encoder: str = HF, pooler: str = MEAN, loss: str = M2D) -> None:
    text = BASE.format(model=model, encoder=encoder.format(model=model), pooler=pooler, loss=loss)
    data, lines = parse_yaml(text, "c.yaml")
    plan_model(LocatedConfig(data, lines, "c.yaml"))


def test_a_valid_pipeline_passes(tiny_bert_dir: str) -> None:
    check(tiny_bert_dir, pooler="{type: matryoshka2d.truncate, layer: 2, dim: 16}")


def test_truncate_dim_larger_than_the_encoder(tiny_bert_dir: str) -> None:
    with pytest.raises(PipelineError) as err:
        check(tiny_bert_dir, pooler="{type: matryoshka2d.truncate, dim: 64}")
    text = err.value.render()
    assert "c.yaml:7" in text and "model.towers.query.poolers.sentence" in text
    assert "keeps dim=64 coordinates, but 'token' has only 32" in text


def test_truncate_layer_out_of_range(tiny_bert_dir: str) -> None:
    with pytest.raises(PipelineError, match=r"reads hidden-state layer 4, but the encoder exposes 4 per-layer states"):
        check(tiny_bert_dir, pooler="{type: matryoshka2d.truncate, layer: 4}")


def test_truncate_layer_beyond_an_early_exit(tiny_bert_dir: str) -> None:
    enc = "{{type: matryoshka2d.early-exit, model: {model}, exit_layer: 1}}"
    with pytest.raises(PipelineError, match=r"exposes 2 per-layer states"):
        check(tiny_bert_dir, encoder=enc, pooler="{type: matryoshka2d.truncate, layer: 2}")


def test_early_exit_beyond_the_model(tiny_bert_dir: str) -> None:
    with pytest.raises(ConfigError, match=r"exit_layer 5 exceeds the 3 transformer blocks"):
        check(tiny_bert_dir, encoder="{{type: matryoshka2d.early-exit, model: {model}, exit_layer: 5}}")


class NoLayersEncoder(Encoder):
    """Bytes -> [B, T, 8] embeddings; exposes no per-layer states."""

    citation: ClassVar[str] = "test"

    class Config(ComponentConfig):
        """No options."""

    @classmethod
    def signature(cls, config: ComponentConfig) -> EncoderSignature:
        return EncoderSignature({"token": GranularitySpec("sequence", 8)}, num_layers=None)

    def forward(self, batch, output_layers: bool = False) -> Encoded:  # type: ignore[no-untyped-def]
        raise NotImplementedError


class NoAlignmentLoss(Loss):
    """A loss that reads no alignment (like a reconstruction objective)."""

    citation: ClassVar[str] = "test"
    num_alignments: ClassVar[int | None] = 0

    class Config(ComponentConfig):
        """No options."""

    def forward(self, inputs: LossInputs) -> LossOutput:
        raise NotImplementedError


def test_truncate_on_an_encoder_without_layers(temporary_component) -> None:  # type: ignore[no-untyped-def]
    temporary_component("encoder", "no-layers", NoLayersEncoder)
    temporary_component("tokenizer", "bytes", ByteTokenizer)
    text = """
model:
  towers:
    text:
      tokenizer: {type: bytes}
      encoder: {type: no-layers}
      poolers: {sentence: {type: matryoshka2d.truncate}}
"""
    data, lines = parse_yaml(text, "c.yaml")
    with pytest.raises(PipelineError, match="needs per-layer hidden states, but the encoder exposes none"):
        plan_model(LocatedConfig(data, lines, "c.yaml"))


def test_wrapping_a_loss_that_reads_no_alignment(tiny_bert_dir: str, temporary_component) -> None:  # type: ignore[no-untyped-def]
    temporary_component("loss", "no-alignment", NoAlignmentLoss)
    with pytest.raises(PipelineError) as err:
        check(tiny_bert_dir, loss="{type: matryoshka2d, on: similarity, base: {type: no-alignment}, dims: [16]}")
    text = err.value.render()
    assert "model.losses.0" in text and "the base loss 'no-alignment' reads no alignment" in text


def test_unknown_base_loss_is_located(tiny_bert_dir: str) -> None:
    with pytest.raises(ConfigError) as err:
        check(tiny_bert_dir, loss="{type: matryoshka2d, on: similarity, base: {type: mnlr}, dims: [16]}")
    assert err.value.path == "model.losses.0.base.type" and err.value.suggestion == "mnrl"


def test_matryoshka2d_reads_one_alignment(tiny_bert_dir: str) -> None:
    with pytest.raises(PipelineError, match=r"reads 1 alignment\(s\) through 'on:', got 2"):
        check(tiny_bert_dir, loss="{type: matryoshka2d, on: [similarity, similarity], base: {type: mnrl}, dims: [16]}")
