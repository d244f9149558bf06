"""Tests of the conformance kit itself (repmix.sdk.conformance).

Correct toy components pass every check; deliberately broken ones fail the
check that targets their defect, so each check is shown to be able to fail.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from pydantic import ConfigDict, Field, field_validator
from torch import nn

from repmix.core.errors import ConfigError, PipelineError
from repmix.sdk import (
    Aligner,
    Alignment,
    ComponentConfig,
    Encoded,
    Encoder,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    Loss,
    LossInputs,
    LossOutput,
    Pooler,
    PoolerConfig,
    Runtime,
)
from repmix.sdk.conformance import (
    CHECKS,
    ByteTokenizer,
    Case,
    ConformanceError,
    NotApplicable,
    check_bad_config,
    check_component,
    check_padding_invariance,
    check_shapes,
    fixture,
)

pytest_plugins = ("pytester",)

TEXTS = ["a", "hello world", "conformance kits catch bugs", "mid length"]


# ----------------------------------------------------------------- good toys
class MeanPooler(Pooler):
    """Masked mean."""

    citation = "toy"

    def forward(self, encoded: Encoded) -> Granularity:
        g = encoded[self.config.source]
        m = g.full_mask().unsqueeze(-1)
        out = g.hidden.masked_fill(~m, 0).sum(1) / m.sum(1).clamp(min=1)
        return Granularity(F.normalize(out, dim=-1) if self.config.normalize else out)


class ScaledMeanPooler(MeanPooler):
    """Masked mean times a learned per-dimension scale (needs the injected input dim)."""

    class Config(PoolerConfig):
        init: float = Field(1.0, gt=0)

    def __init__(self, config: Any, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.scale = nn.Parameter(config.init + 0.1 * torch.randn(self.input_dim))

    def forward(self, encoded: Encoded) -> Granularity:
        return Granularity(super().forward(encoded).hidden * self.scale)


class LayerMeanPooler(MeanPooler):
    """Mean over tokens of the average of all per-layer states."""

    needs_layers = True

    def forward(self, encoded: Encoded) -> Granularity:
        stacked = torch.stack(encoded.layers).mean(0)
        return super().forward(Encoded({self.config.source: Granularity(stacked, encoded[self.config.source].mask)}))


class DotAligner(Aligner):
    """Dot product of pooled vectors."""

    citation = "toy"

    def forward(self, a: Granularity, b: Granularity) -> Alignment:
        return Alignment(a.hidden @ b.hidden.T)


class MeanDotAligner(Aligner):
    """Masked means of two sequences, then dot product, with a learned bilinear diagonal."""

    citation = "toy"
    accepts = ("sequence", "sequence")

    class Config(ComponentConfig):
        dim: int = Field(16, gt=0)

    def __init__(self, config: Any, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.weight = nn.Parameter(torch.ones(config.dim) + 0.1 * torch.randn(config.dim))

    @staticmethod
    def _mean(g: Granularity) -> torch.Tensor:
        m = g.full_mask().unsqueeze(-1)
        return g.hidden.masked_fill(~m, 0).sum(1) / m.sum(1)

    def forward(self, a: Granularity, b: Granularity) -> Alignment:
        return Alignment((self._mean(a) * self.weight) @ self._mean(b).T)


class AnyShapeAligner(Aligner):
    """Mean over positions when given a sequence, then cosine."""

    citation = "toy"
    accepts = ("any", "any")

    def forward(self, a: Granularity, b: Granularity) -> Alignment:
        va = MeanDotAligner._mean(a) if a.hidden.dim() == 3 else a.hidden
        vb = MeanDotAligner._mean(b) if b.hidden.dim() == 3 else b.hidden
        return Alignment(F.normalize(va, dim=-1) @ F.normalize(vb, dim=-1).T)


class InfoNCE(Loss):
    """Cross-entropy with the diagonal as targets."""

    citation = "toy"

    class Config(ComponentConfig):
        temperature: float = Field(0.1, gt=0)

    def forward(self, inputs: LossInputs) -> LossOutput:
        scores = inputs.alignment.scores / self.config.temperature
        value = F.cross_entropy(scores, torch.arange(scores.shape[0]))
        return LossOutput(value, {"scale": 1 / self.config.temperature})


class SumOfLosses(Loss):
    """Any number of alignments; uses inputs.sides (needs the model) for an extra term."""

    citation = "toy"
    num_alignments = None

    def forward(self, inputs: LossInputs) -> LossOutput:
        total = torch.zeros(())
        for name, alignment in inputs.alignments.items():
            a, b = inputs.sides(name)
            again = inputs.realign(name, a, b).scores
            total = total + F.cross_entropy(alignment.scores, torch.arange(a.hidden.shape[0])) + 0 * again.sum()
        return LossOutput(total)


class TargetLoss(Loss):
    """Regression of the diagonal scores onto targets."""

    citation = "toy"
    needs_targets = True

    def forward(self, inputs: LossInputs) -> LossOutput:
        return LossOutput(F.mse_loss(inputs.alignment.scores.diagonal(), inputs.targets))


class ToyEncoder(Encoder):
    """Embedding + linear + tanh; token and sentence granularities; two per-layer states."""

    citation = "toy"

    class Config(ComponentConfig):
        dim: int = Field(8, gt=0)

    def __init__(self, config: Any, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        vocab = getattr(runtime.tokenizer, "vocab_size", None)
        if vocab is None:
            raise PipelineError("ToyEncoder needs a tokenizer with vocab_size")
        self.embed = nn.Embedding(vocab, config.dim)
        self.proj = nn.Linear(config.dim, config.dim)

    @classmethod
    def signature(cls, config: Any) -> EncoderSignature:
        return EncoderSignature(
            {"token": GranularitySpec("sequence", config.dim), "sentence": GranularitySpec("pooled", config.dim)},
            num_layers=2,
        )

    def encode(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        mask = batch["attention_mask"]
        e = self.embed(batch["input_ids"])
        h = torch.tanh(self.proj(e))
        m = mask.unsqueeze(-1)
        sentence = h.masked_fill(~m, 0).sum(1) / m.sum(1).clamp(min=1)
        return e, h, mask, sentence

    def forward(self, batch: Any, output_layers: bool = False) -> Encoded:
        e, h, mask, sentence = self.encode(batch)
        return Encoded(
            {"token": Granularity(h, mask), "sentence": Granularity(sentence)},
            layers=(e, h) if output_layers else None,
        )


# --------------------------------------------------------------- broken toys
class MaskIgnoringPooler(MeanPooler):
    """Averages padded positions too."""

    def forward(self, encoded: Encoded) -> Granularity:
        return Granularity(encoded[self.config.source].hidden.mean(1))


class DetachingPooler(MeanPooler):
    """Cuts the graph: the encoder would never be trained."""

    def forward(self, encoded: Encoded) -> Granularity:
        return Granularity(super().forward(encoded).hidden.detach())


class InPlacePooler(MeanPooler):
    """Zeroes padded positions of its input in place."""

    def forward(self, encoded: Encoded) -> Granularity:
        g = encoded[self.config.source]
        g.hidden.masked_fill_(~g.full_mask().unsqueeze(-1), 0)
        return super().forward(encoded)


class WrongShapePooler(MeanPooler):
    """Keeps a singleton sequence axis: [B, 1, D]."""

    def forward(self, encoded: Encoded) -> Granularity:
        return Granularity(super().forward(encoded).hidden.unsqueeze(1))


class NotNormalizingPooler(MeanPooler):
    """Ignores normalize: true."""

    def forward(self, encoded: Encoded) -> Granularity:
        return Granularity(MaskIgnoringPooler.forward(self, encoded).hidden * 0 + super().forward(encoded).hidden * 3)


class PermissivePooler(MeanPooler):
    """Its Config accepts any key."""

    class Config(PoolerConfig):
        model_config = ConfigDict(extra="allow")


class NoisyPooler(MeanPooler):
    """Adds noise even in eval mode."""

    def forward(self, encoded: Encoded) -> Granularity:
        out = super().forward(encoded).hidden
        return Granularity(out + torch.randn_like(out))


class PythonRandomInitPooler(ScaledMeanPooler):
    """Initialises a weight from Python's random module, ignoring the torch seed."""

    def __init__(self, config: Any, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        with torch.no_grad():
            self.scale.fill_(random.random())


class UnsavedStatePooler(MeanPooler):
    """Keeps a random tensor as a plain attribute: not in state_dict, so not saved."""

    def __init__(self, config: Any, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.offset = torch.randn(self.input_dim)

    def forward(self, encoded: Encoded) -> Granularity:
        return Granularity(super().forward(encoded).hidden + self.offset)


class UnusedParameterPooler(MeanPooler):
    """Declares a parameter it never uses."""

    def __init__(self, config: Any, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.unused = nn.Parameter(torch.zeros(3))


class LyingSignaturePooler(MeanPooler):
    """Declares dimension 3 but outputs the input dimension."""

    @classmethod
    def signature(cls, config: Any, encoder: EncoderSignature) -> GranularitySpec:
        super().signature(config, encoder)
        return GranularitySpec("pooled", 3)


class KeyErrorSignaturePooler(MeanPooler):
    """Raises KeyError instead of PipelineError when the source is missing."""

    @classmethod
    def signature(cls, config: Any, encoder: EncoderSignature) -> GranularitySpec:
        return GranularitySpec("pooled", encoder.granularities[config.source].dim)


class ValueErrorPooler(MeanPooler):
    """Rejects a bad value with ValueError in __init__ instead of a ConfigError."""

    class Config(PoolerConfig):
        scale: float = 1.0

    def __init__(self, config: Any, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        if config.scale <= 0:
            raise ValueError("scale must be positive")


class DoublingConfigPooler(MeanPooler):
    """Its validator is not idempotent: dump -> validate doubles the value."""

    class Config(PoolerConfig):
        width: int = 2

        @field_validator("width")
        @classmethod
        def _double(cls, v: int) -> int:
            return v * 2


class BadDefaultPooler(MeanPooler):
    """Its default temperature violates its own constraint."""

    class Config(PoolerConfig):
        temperature: float = Field(-1.0, gt=0)


class NoCitationPooler(MeanPooler):
    """Forgot the citation."""

    citation = ""


class TransposedAligner(DotAligner):
    """Returns [B_b, B_a]."""

    def forward(self, a: Granularity, b: Granularity) -> Alignment:
        return Alignment(b.hidden @ a.hidden.T)


class MaskIgnoringAligner(MeanDotAligner):
    """Averages padded positions of both sequences."""

    def forward(self, a: Granularity, b: Granularity) -> Alignment:
        return Alignment((a.hidden.mean(1) * self.weight) @ b.hidden.mean(1).T)


class WrongAcceptsAligner(DotAligner):
    """Declares pooled inputs but its signature accepts anything."""

    @classmethod
    def signature(cls, config: Any, a: GranularitySpec, b: GranularitySpec) -> None:
        return None


class DetachingLoss(InfoNCE):
    """Computes the loss on detached scores."""

    def forward(self, inputs: LossInputs) -> LossOutput:
        scores = inputs.alignment.scores.detach() / self.config.temperature
        return LossOutput(F.cross_entropy(scores, torch.arange(scores.shape[0])))


class TensorLogLoss(InfoNCE):
    """Logs a tensor (keeping the graph alive) instead of a float."""

    def forward(self, inputs: LossInputs) -> LossOutput:
        out = super().forward(inputs)
        return LossOutput(out.value, {"loss": out.value})


class VectorLoss(InfoNCE):
    """Returns a per-example loss vector instead of a scalar."""

    def forward(self, inputs: LossInputs) -> LossOutput:
        scores = inputs.alignment.scores
        return LossOutput(F.cross_entropy(scores, torch.arange(scores.shape[0]), reduction="none"))


class GreedyLoss(InfoNCE):
    """Declares one alignment but its signature accepts any number."""

    @classmethod
    def signature(cls, config: Any, on: Sequence[str]) -> None:
        return None


class BatchDependentEncoder(ToyEncoder):
    """Centres sentence vectors over the batch: an item's vector depends on its neighbours."""

    def forward(self, batch: Any, output_layers: bool = False) -> Encoded:
        out = super().forward(batch, output_layers)
        s = out["sentence"].hidden
        out.granularities["sentence"] = Granularity(s - s.mean(0, keepdim=True))
        return out


class LongMaskEncoder(ToyEncoder):
    """Returns an integer mask, which breaks ``~mask`` in poolers."""

    def forward(self, batch: Any, output_layers: bool = False) -> Encoded:
        out = super().forward(batch, output_layers)
        tok = out["token"]
        out.granularities["token"] = Granularity(tok.hidden, tok.mask.long())
        return out


class ExtraGranularityEncoder(ToyEncoder):
    """Produces a granularity its signature does not declare."""

    def forward(self, batch: Any, output_layers: bool = False) -> Encoded:
        out = super().forward(batch, output_layers)
        out.granularities["surprise"] = Granularity(out["sentence"].hidden)
        return out


class UnloadableEncoder(ToyEncoder):
    """Builds a different-sized layer when weights are to be loaded afterwards."""

    def __init__(self, config: Any, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        if not runtime.load_pretrained:
            self.proj = nn.Linear(config.dim, config.dim, bias=False)


def enc_case(cls: type, **kw: Any) -> Case:
    return Case("encoder", cls, {"dim": 8}, tokenizer={"type": ByteTokenizer}, items=TEXTS, **kw)


GOOD_CASES = [
    Case("pooler", MeanPooler),
    Case("pooler", MeanPooler, {"normalize": True}, id="pooler-mean-normalized"),
    Case("pooler", ScaledMeanPooler, bad_configs=[{"init": 0}]),
    Case("pooler", LayerMeanPooler),
    Case("aligner", DotAligner),
    Case("aligner", MeanDotAligner, {"dim": 16}, bad_configs=[{"dim": -1}]),
    Case("aligner", AnyShapeAligner),
    Case("loss", InfoNCE, {"temperature": 0.05}, bad_configs=[{"temperature": 0}]),
    Case("loss", InfoNCE, aligner={"type": MeanDotAligner, "dim": 16}, id="loss-infonce-sequence-aligner"),
    Case("loss", SumOfLosses),
    Case("loss", TargetLoss),
    enc_case(ToyEncoder, bad_configs=[{"dim": 0}]),
    Case("tokenizer", ByteTokenizer, items=TEXTS, bad_items=["", 3], bad_configs=[{"max_length": 0}]),
]

#: (case, the check that must fail, a fragment of its message)
BROKEN_CASES = [
    (Case("pooler", MaskIgnoringPooler), "padding_invariance", "padded positions changed"),
    (Case("pooler", DetachingPooler), "gradients", "detached"),
    (Case("pooler", InPlacePooler), "inputs_unmodified", "inputs after forward"),
    (Case("pooler", WrongShapePooler), "shapes", "expected [4, D]"),
    (Case("pooler", NotNormalizingPooler, {"normalize": True}), "shapes", "normalize=True"),
    (Case("pooler", PermissivePooler), "bad_config", "was accepted"),
    (Case("pooler", PermissivePooler), "declaration", "forbid unknown keys"),
    (Case("pooler", NoisyPooler), "seed_determinism", "different output"),
    (Case("pooler", PythonRandomInitPooler), "seed_determinism", "differ in 'scale'"),
    (Case("pooler", UnsavedStatePooler), "save_load", "after save/load differ"),
    (Case("pooler", UnusedParameterPooler), "gradients", "'unused'"),
    (Case("pooler", LyingSignaturePooler), "signature", "declares dim 3"),
    (Case("pooler", KeyErrorSignaturePooler), "signature", "expected PipelineError"),
    (Case("pooler", ValueErrorPooler, bad_configs=[{"scale": -1}]), "bad_config", "raised ValueError"),
    (Case("pooler", MeanPooler, bad_configs=[{"normalize": True}]), "bad_config", "was accepted"),
    (Case("pooler", DoublingConfigPooler), "config_roundtrip", "model_dump"),
    (Case("pooler", BadDefaultPooler, {"temperature": 1.0}), "config_roundtrip", "default values"),
    (Case("pooler", NoCitationPooler), "declaration", "citation"),
    (Case("aligner", TransposedAligner), "shapes", "[B_a, B_b]"),
    (Case("aligner", MaskIgnoringAligner, {"dim": 16}), "padding_invariance", "padded positions changed"),
    (Case("aligner", WrongAcceptsAligner), "signature", "accepts a sequence"),
    (Case("loss", DetachingLoss), "gradients", "detached"),
    (Case("loss", TensorLogLoss), "shapes", "plain floats"),
    (Case("loss", VectorLoss), "shapes", "0-dim"),
    (Case("loss", GreedyLoss), "signature", "accepts 2 alignments"),
    (enc_case(BatchDependentEncoder), "padding_invariance", "alone vs in a batch"),
    (enc_case(LongMaskEncoder), "shapes", "torch.bool"),
    (enc_case(ExtraGranularityEncoder), "signature", "surprise"),
    (enc_case(UnloadableEncoder), "save_load", "proj"),
]

BY_NAME = {c.name: c for c in CHECKS}


@pytest.mark.parametrize("case", GOOD_CASES, ids=lambda c: c.label)
def test_correct_components_pass_every_check(case: Case) -> None:
    report = check_component(case)
    assert set(report) == set(BY_NAME)
    failed = {k: v for k, v in report.items() if v != "passed" and not v.startswith("skipped: ")}
    assert not failed


@pytest.mark.parametrize(
    ("case", "check", "fragment"), BROKEN_CASES, ids=[f"{c.label}-{k}" for c, k, _ in BROKEN_CASES]
)
def test_broken_component_fails_its_check(case: Case, check: str, fragment: str) -> None:
    with pytest.raises(ConformanceError) as info:
        BY_NAME[check](case)
    message = str(info.value)
    assert message.startswith(f"{case.label}: check {check} failed")
    assert fragment in message
    with pytest.raises(ConformanceError):
        check_component(case)


def test_broken_components_pass_the_checks_they_do_not_break() -> None:
    """The checks are specific: a mask-ignoring pooler still has the right shapes and config."""
    report = check_component(Case("pooler", MaskIgnoringPooler), checks=["shapes", "config_roundtrip", "gradients"])
    assert set(report.values()) == {"passed"}


def test_report_lists_skipped_checks_with_reasons() -> None:
    report = check_component(Case("tokenizer", ByteTokenizer, items=TEXTS))
    assert report["gradients"] == "skipped: tokenizers are not trained by backpropagation"
    assert report["save_load"].startswith("skipped: ByteTokenizer is not an nn.Module")
    assert report["padding_invariance"].startswith("skipped: a tokenizer creates the padding")
    assert report["shapes"] == "passed"


def test_check_called_on_a_kind_it_does_not_cover_raises_not_applicable() -> None:
    with pytest.raises(NotApplicable, match="pooled granularities"):
        check_padding_invariance(Case("aligner", DotAligner))
    with pytest.raises(NotApplicable, match="score matrices"):
        check_padding_invariance(Case("loss", InfoNCE))


def test_expected_failures_are_reported_and_must_fail() -> None:
    case = Case("pooler", MaskIgnoringPooler, expected_failures={"padding_invariance": "ignores the mask"})
    assert check_component(case)["padding_invariance"] == "expected failure: ignores the mask"
    wrong = Case("pooler", MeanPooler, expected_failures={"shapes": "claimed broken"})
    with pytest.raises(ConformanceError, match="passed but is listed in expected_failures"):
        check_component(wrong)


def test_bad_item_accepted_by_tokenizer_fails_shapes() -> None:
    with pytest.raises(ConformanceError, match="accepts the bad item"):
        check_shapes(Case("tokenizer", ByteTokenizer, items=TEXTS, bad_items=["fine"]))


def test_cases_resolve_registered_names(temporary_component: Any, repmix_registry: Any) -> None:
    temporary_component("pooler", "kit-mean", MeanPooler, plugin="kit")
    assert repmix_registry.load("pooler", "kit.kit-mean") is MeanPooler
    assert check_component(Case("pooler", "kit-mean"))["padding_invariance"] == "passed"
    temporary_component("pooler", "kit-broken", MaskIgnoringPooler, plugin="kit")
    with pytest.raises(ConformanceError, match="pooler-kit.kit-broken: check padding_invariance"):
        check_padding_invariance(Case("pooler", "kit.kit-broken"))


def test_unknown_component_name_fails_with_the_registry_error() -> None:
    with pytest.raises(ConformanceError, match="unknown pooler 'no-such-pooler'"):
        check_shapes(Case("pooler", "no-such-pooler"))


def test_bad_config_error_is_located_at_the_key() -> None:
    check_bad_config(Case("pooler", MeanPooler))
    from repmix.sdk.conformance import UNKNOWN_KEY, _Harness

    with _Harness(Case("pooler", MeanPooler)) as h, pytest.raises(ConfigError) as info:
        h.plan({UNKNOWN_KEY: 1})
    assert info.value.path == f"case.{UNKNOWN_KEY}"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "dataset", "component": "x"}, "kind must be one of"),
        ({"kind": "pooler", "component": "mean", "config": {"type": "mean"}}, "without 'type'"),
        ({"kind": "encoder", "component": "x", "items": ["a", "b"]}, "needs tokenizer="),
        ({"kind": "tokenizer", "component": "x", "items": "ab"}, "needs items="),
        ({"kind": "loss", "component": "x", "aligner": {"dim": 3}}, "block with 'type'"),
        ({"kind": "pooler", "component": "x", "expected_failures": {"nope": "?"}}, "unknown checks"),
        ({"kind": "pooler", "component": "x", "batch_size": 1}, "at least 2"),
    ],
)
def test_case_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Case(**kwargs)


def test_unresolved_fixture_reference_is_a_clear_error() -> None:
    case = Case("pooler", MeanPooler, {"source": fixture("some_fixture")})
    assert case.fixtures() == {"some_fixture"}
    with pytest.raises(TypeError, match="some_fixture"):
        check_shapes(case)
    resolved = case.resolve(lambda name: Path("/tmp") / name)
    assert resolved.config == {"source": "/tmp/some_fixture"}


def test_byte_tokenizer_batch() -> None:
    tok = ByteTokenizer(ByteTokenizer.Config(max_length=3), Runtime())
    batch = tok(["ab", "abcdef", ""])
    assert batch["input_ids"].tolist() == [[98, 99, 0], [98, 99, 100], [0, 0, 0]]
    assert batch["attention_mask"].dtype == torch.bool
    assert batch["attention_mask"].sum(1).tolist() == [2, 3, 0]


CONFORMANCE_TEST_FILE = '''
import pytest
from repmix.sdk import Encoded, Granularity, Pooler, PoolerConfig
from repmix.sdk.conformance import Case, conformance_cases, fixture


class NamedMean(Pooler):
    citation = "toy"

    class Config(PoolerConfig):
        label: str = "x"

    def forward(self, encoded):
        g = encoded[self.config.source]
        m = g.full_mask().unsqueeze(-1)
        out = g.hidden.masked_fill(~m, 0).sum(1) / m.sum(1)
        return Granularity(out / out.norm(dim=-1, keepdim=True) if self.config.normalize else out)


class Unmasked(NamedMean):
    def forward(self, encoded):
        return Granularity(encoded[self.config.source].hidden.mean(1))


@pytest.fixture(scope="session")
def label_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("labels")


CASES = [
    Case("pooler", NamedMean, {"label": fixture("label_dir")}),
    Case("pooler", NamedMean, {"normalize": True}),
    Case("pooler", Unmasked, expected_failures={"padding_invariance": "ignores the mask"}),
]


@conformance_cases(CASES, checks=["shapes", "padding_invariance", "config_roundtrip"])
def test_conformance(case, check):
    assert not case.fixtures()
    if "label" in case.config:
        assert isinstance(case.config["label"], str) and case.config["label"].endswith("labels0")
    check(case)


@conformance_cases([Case("pooler", NamedMean)], checks=["shapes"])
def test_with_request(case, check, request):
    assert request.node.name == "test_with_request[pooler-NamedMean-shapes]"
    check(case)
'''


def test_conformance_cases_parametrizes_with_readable_ids(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plugin=CONFORMANCE_TEST_FILE)
    result = pytester.runpytest("-v", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        [
            "*test_conformance?pooler-NamedMean-shapes? PASSED*",
            "*test_conformance?pooler-NamedMean-padding_invariance? PASSED*",
            "*test_conformance?pooler-NamedMean-2-shapes? PASSED*",
            "*test_conformance?pooler-Unmasked-padding_invariance? XFAIL*",
            "*test_with_request?pooler-NamedMean-shapes? PASSED*",
        ]
    )
    result.assert_outcomes(passed=9, xfailed=1)
    marked = pytester.runpytest("-q", "-p", "no:cacheprovider", "-m", "repmix_conformance", "--co")
    marked.stdout.fnmatch_lines(["10 tests collected*"])


def test_conformance_cases_skips_checks_that_do_not_apply(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_skips="""
        from repmix.sdk.conformance import ByteTokenizer, Case, conformance_cases

        @conformance_cases([Case("tokenizer", ByteTokenizer, items=["a", "bc"])])
        def test_conformance(case, check):
            check(case)
        """
    )
    result = pytester.runpytest("-rs", "-p", "no:cacheprovider")
    output = result.stdout.str()
    for reason in (
        "tokenizers are not trained by backpropagation",
        "ByteTokenizer is not an nn.Module: it has no weights",
        "tokenizers declare no static signature",
        "a tokenizer creates the padding",
    ):
        assert f"SKIPPED [1] test_skips.py:3: {reason}" in output
    result.assert_outcomes(passed=6, skipped=4)


def test_conformance_cases_reports_a_failing_check(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fails="""
        from repmix.sdk import Granularity, Pooler
        from repmix.sdk.conformance import Case, conformance_cases

        class Unmasked(Pooler):
            citation = "toy"

            def forward(self, encoded):
                return Granularity(encoded["token"].hidden.mean(1))

        @conformance_cases([Case("pooler", Unmasked)])
        def test_conformance(case, check):
            check(case)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=9, failed=1)
    result.stdout.fnmatch_lines(["*FAILED*pooler-Unmasked-padding_invariance*"])


def test_pytest_plugin_and_scaffold_import_without_torch() -> None:
    """pytest loads the plugin in every run of the environment: it must stay light."""
    import subprocess
    import sys

    code = (
        "import sys, repmix.sdk, repmix.sdk.pytest_plugin, repmix.sdk.scaffold; "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "from repmix.sdk import Pooler; assert 'torch' in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_docs_describe_every_check() -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "conformance.md").read_text()
    for chk in CHECKS:
        assert f"| `{chk.name}` |" in docs, chk.name


def test_checks_leave_the_global_torch_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_component(Case("pooler", ScaledMeanPooler))
    torch.testing.assert_close(torch.rand(3), expected)
