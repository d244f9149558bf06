"""Impossible pipelines are rejected by ``repmix check`` (plan_model: signature(), no compute) with one clear message."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import pytest
from repmix.sdk import (
    ComponentConfig,
    ConfigError,
    Encoded,
    Encoder,
    EncoderSignature,
    GranularitySpec,
    LocatedConfig,
    Loss,
    LossInputs,
    LossOutput,
    PipelineError,
    parse_yaml,
    plan_model,
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
    check(tiny_bert_dir)
    # The loss's dims fit the pooled width (16), not only the encoder's (32).
    check(tiny_bert_dir, pooler="{type: matryoshka2d.truncate, layer: 2, dim: 16}", loss=M2D.replace("32, 16", "16, 8"))


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


# ---------------------------------------------------------------------------
# The loss's own options against the model: Loss.check_alignments (static views
# of the alignment's sides), reported by `repmix check` at model.losses.0.

TOY = """
model:
  towers:
    text:
      tokenizer: {{type: bytes}}
      encoder: {{type: {encoder}}}
      poolers: {{sentence: {{type: mean}}}}
  alignments:
    similarity: {{type: cosine, between: [text.{gran}, text.{gran}]}}
  losses:
    - {loss}
"""


class PooledEncoder(Encoder):
    """Bytes -> [B, T, 8] tokens and a [B, 8] 'pooled' granularity of its own; 3 per-layer states."""

    citation: ClassVar[str] = "test"

    class Config(ComponentConfig):
        """No options."""

    @classmethod
    def signature(cls, config: ComponentConfig) -> EncoderSignature:
        specs = {"token": GranularitySpec("sequence", 8), "pooled": GranularitySpec("pooled", 8)}
        return EncoderSignature(specs, num_layers=3)

    def forward(self, batch, output_layers: bool = False) -> Encoded:  # type: ignore[no-untyped-def]
        raise NotImplementedError


def check_toy(register, encoder: str, loss: str, gran: str = "sentence") -> None:  # type: ignore[no-untyped-def]
    register("encoder", "no-layers", NoLayersEncoder)
    register("encoder", "pooled", PooledEncoder)
    register("tokenizer", "bytes", ByteTokenizer)
    data, lines = parse_yaml(TOY.format(encoder=encoder, gran=gran, loss=loss), "c.yaml")
    plan_model(LocatedConfig(data, lines, "c.yaml"))


def test_valid_loss_options_pass(tiny_bert_dir: str) -> None:
    # 32 = the tiny BERT's width; 4 hidden states (embedding output + 3 layers), so 0..2 are prior layers.
    check(tiny_bert_dir, loss="{type: matryoshka2d, on: similarity, base: {type: mnrl}, dims: [32, 8], "
          "prior_layers: [0, 2]}")
    check(tiny_bert_dir, loss="{type: matryoshka2d, on: similarity, base: {type: mnrl}, dims: [32], "
          "prior_layers: transformer}")


def loss_error(call: Callable[[], None], line: int) -> str:
    """The rendered PipelineError of ``call``, asserted to be located at ``model.losses.0`` on ``line``."""
    with pytest.raises(PipelineError) as err:
        call()
    text = err.value.render()
    assert text.startswith(f"error: c.yaml:{line}: model.losses.0: "), text
    return text


def test_loss_dims_wider_than_the_embeddings(tiny_bert_dir: str) -> None:
    loss = "{type: matryoshka2d, on: similarity, base: {type: mnrl}, dims: [64, 16]}"
    text = loss_error(lambda: check(tiny_bert_dir, loss=loss), 12)
    assert (
        "matryoshka2d dims [64] exceed the width 32 of the embeddings alignment 'similarity' reads "
        "(query.sentence and document.sentence)" in text
    )
    assert "use dims of at most 32" in text


def test_loss_dims_against_a_truncating_pooler(tiny_bert_dir: str) -> None:
    # The width is the aligned granularity's (the pooler keeps 16), not the encoder's 32.
    with pytest.raises(PipelineError, match=r"dims \[32\] exceed the width 16"):
        check(tiny_bert_dir, pooler="{type: matryoshka2d.truncate, dim: 16}",
              loss="{type: matryoshka2d, on: similarity, base: {type: mnrl}, dims: [32, 16]}")


def test_loss_prior_layers_not_below_the_last_layer(tiny_bert_dir: str) -> None:
    loss = "{type: matryoshka2d, on: similarity, base: {type: mnrl}, dims: [16], prior_layers: [1, 3, 4]}"
    text = loss_error(lambda: check(tiny_bert_dir, loss=loss), 12)
    assert (
        "matryoshka2d prior_layers [3, 4] are not below the last layer: the towers of alignment 'similarity' "
        "(query.sentence and document.sentence) have 4 hidden states (0 = embedding output, 3 = last layer)"
    ) in text
    assert "use prior layers from 0 to 2" in text


def test_loss_prior_layers_against_an_early_exit(tiny_bert_dir: str) -> None:
    enc = "{{type: matryoshka2d.early-exit, model: {model}, exit_layer: 2}}"
    loss = "{type: matryoshka2d, on: similarity, base: {type: mnrl}, dims: [16], prior_layers: [2]}"
    with pytest.raises(PipelineError, match=r"prior_layers \[2\] are not below .* have 3 hidden states"):
        check(tiny_bert_dir, encoder=enc, loss=loss)
    check(tiny_bert_dir, encoder=enc, loss=loss.replace("[2]", "[1]"))


def test_loss_prior_layers_on_an_encoder_without_layers(temporary_component) -> None:  # type: ignore[no-untyped-def]
    loss = "{type: matryoshka2d, on: similarity, base: {type: mnrl}, dims: [8, 4]}"
    text = loss_error(lambda: check_toy(temporary_component, "no-layers", loss), 11)
    assert (
        "matryoshka2d re-pools text.sentence from prior layers (n_layers_per_step: 1), but the encoder of "
        "tower 'text' exposes no per-layer hidden states" in text
    )
    assert "set n_layers_per_step: 0" in text
    # Plain (1D) Matryoshka reads no prior layer: fine on such an encoder; the dims are still checked.
    check_toy(temporary_component, "no-layers", loss[:-1] + ", n_layers_per_step: 0}")
    with pytest.raises(PipelineError, match=r"dims \[16\] exceed the width 8"):
        check_toy(temporary_component, "no-layers", loss.replace("[8, 4]", "[16]")[:-1] + ", n_layers_per_step: 0}")


def test_loss_prior_layers_of_an_encoder_granularity(temporary_component) -> None:  # type: ignore[no-untyped-def]
    loss = "{type: matryoshka2d, on: similarity, base: {type: mnrl}, dims: [8]}"
    with pytest.raises(PipelineError) as err:
        check_toy(temporary_component, "pooled", loss, gran="pooled")
    text = err.value.render()
    assert "model.losses.0" in text and "'pooled' is produced by the encoder, not by a pooler" in text
    check_toy(temporary_component, "pooled", loss[:-1] + ", n_layers_per_step: 0}", gran="pooled")
    check_toy(temporary_component, "pooled", loss)  # text.sentence: pooled by 'mean', re-poolable
