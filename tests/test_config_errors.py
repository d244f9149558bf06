"""Every user error in a config ends in one clear message and exit status 2."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from toys import TOY_CONFIG

from repmix.core.assembly import build_model, plan_model
from repmix.cli.main import main
from repmix.core.components import ComponentConfig, Loss, LossInputs
from repmix.core.config import LocatedConfig, parse_yaml
from repmix.core.errors import ConfigError, PipelineError
from repmix.core.dataflow import AlignmentView, EncoderSignature, GranularitySpec, LossOutput


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.fixture
def check(tmp_path: Path, toy_plugin: Path, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run ``repmix check`` on a config text; return (code, stderr)."""

    def _check(text: str, *overrides: str) -> tuple[int, str]:
        p = write(tmp_path, text)
        code, _, err = run(["check", str(p), *overrides], capsys)
        assert "Traceback" not in err
        return code, err

    return _check


def test_valid_config_passes(check) -> None:  # type: ignore[no-untyped-def]
    code, err = check(TOY_CONFIG)
    assert code == 0, err


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # unknown component type, with did-you-mean and the line
        ("{type: toy-mean, normalize: true}", "{type: toy-meen, normalize: true}",
         ["config.yaml:7", "model.towers.query.poolers.sentence.type", "unknown pooler 'toy-meen'", "did you mean 'toy-mean'"]),
        # misspelled key in a component block
        ("{type: contrastive, on: sim, scale: 20.0}", "{type: contrastive, on: sim, scael: 20.0}",
         ["config.yaml:12", "model.losses.0.scael", "unknown key 'scael'", "did you mean 'scale'"]),
        # wrong value type
        ("{type: embedding, dim: 16}", "{type: embedding, dim: sixteen}",
         ["config.yaml:5", "model.towers.query.encoder.dim", "integer", "found: 'sixteen'"]),
        # value out of range (component's own constraint)
        ("{type: embedding, dim: 16}", "{type: embedding, dim: -3}",
         ["model.towers.query.encoder.dim", "greater than 0"]),
        # missing required key
        ("      encoder: {type: embedding, dim: 16}\n", "",
         ["tower 'query' is missing required key 'encoder'", "config.yaml:3"]),
        # between names a tower that does not exist
        ("between: [query.sentence, document.sentence]", "between: [qurey.sentence, document.sentence]",
         ["model.alignments.sim.between.0", "tower 'qurey'", "did you mean 'query'"]),
        # between names a granularity that does not exist
        ("between: [query.sentence, document.sentence]", "between: [query.sentence, document.sentense]",
         ["no granularity 'sentense'", "did you mean 'sentence'", "allowed: sentence, token"]),
        # aligner needs pooled vectors but gets a sequence
        ("between: [query.sentence, document.sentence]", "between: [query.token, document.sentence]",
         ["model.alignments.sim", "needs a pooled granularity"]),
        # loss on an alignment that does not exist
        ("on: sim,", "on: sin,", ["alignment 'sin'", "did you mean 'sim'"]),
        # unknown top-level key
        ("model:\n", "modle: {}\nmodel:\n", ["unknown key 'modle'", "did you mean 'model'"]),
        # component block written as a string
        ("tokenizer: {type: chars}", "tokenizer: chars", ["must be a mapping with 'type:'", "write {type: chars}"]),
    ],
)
def test_config_error_messages(check, old: str, new: str, expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert old in TOY_CONFIG
    code, err = check(TOY_CONFIG.replace(old, new, 1))
    assert code == 2
    assert err.startswith("error: ")
    for fragment in expected:
        assert fragment in err, f"{fragment!r} not in:\n{err}"


def test_pooler_needing_layers_on_encoder_without_them(check) -> None:  # type: ignore[no-untyped-def]
    text = TOY_CONFIG.replace("{type: embedding, dim: 16}", "{type: no-layers, dim: 16}").replace(
        "{type: toy-mean, normalize: true}", "{type: layer-mean}"
    )
    code, err = check(text)
    assert code == 2
    assert "needs per-layer hidden states" in err and "model.towers.query.poolers.sentence" in err
    ok, _ = check(TOY_CONFIG.replace("{type: toy-mean, normalize: true}", "{type: layer-mean}"))
    assert ok == 0


def test_yaml_syntax_error(check) -> None:  # type: ignore[no-untyped-def]
    code, err = check(TOY_CONFIG.replace("{type: chars}", "{type: chars"))
    assert code == 2 and "YAML syntax error" in err and "config.yaml:" in err


@pytest.mark.parametrize(("text", "fragment"), [("", "config is empty"), ("- a\n- b\n", "found a list"), ("42\n", "found a number"), ("just text\n", "found a string")])
def test_config_not_a_mapping(check, text: str, fragment: str) -> None:  # type: ignore[no-untyped-def]
    code, err = check(text)
    assert code == 2 and fragment in err


def test_duplicate_key(check) -> None:  # type: ignore[no-untyped-def]
    code, err = check(TOY_CONFIG + "model: {}\n")
    assert code == 2 and "appears twice" in err


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["check", str(tmp_path / "nope.yaml")], capsys)
    assert code == 2 and "does not exist" in err and "Traceback" not in err


def test_circular_extends(tmp_path: Path, toy_plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "extends: b.yaml\n", "a.yaml")
    write(tmp_path, "extends: a.yaml\n", "b.yaml")
    code, _, err = run(["check", str(tmp_path / "a.yaml")], capsys)
    assert code == 2 and "circular 'extends:'" in err


def test_extends_and_overrides(tmp_path: Path, toy_plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, TOY_CONFIG, "base.yaml")
    write(tmp_path, "extends: base.yaml\nmodel:\n  towers:\n    query:\n      encoder: {dim: 8}\n", "child.yaml")
    code, out, err = run(["check", str(tmp_path / "child.yaml")], capsys)
    assert code == 0, err
    assert "dim 8" in out
    code, out, err = run(["check", str(tmp_path / "child.yaml"), "model.towers.query.encoder.dim=4"], capsys)
    assert code == 0 and "dim 4" in out
    code, _, err = run(["check", str(tmp_path / "child.yaml"), "model.towers.query.encoder.dim=x"], capsys)
    assert code == 2 and "<command line>" in err and "model.towers.query.encoder.dim" in err
    code, _, err = run(["check", str(tmp_path / "child.yaml"), "no-equals-sign"], capsys)
    assert code == 2 and "dotted.key=value" in err


def test_debug_shows_traceback(tmp_path: Path, toy_plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = write(tmp_path, TOY_CONFIG.replace("toy-mean", "toy-meen"))
    code, _, err = run(["--debug", "check", str(p)], capsys)
    assert code == 2 and "Traceback" in err


class ViewCheckingLoss(Loss):
    """Records the views ``check_alignments`` receives; rejects embeddings wider than ``max_dim``."""

    citation: ClassVar[str] = "test"
    num_alignments: ClassVar[int | None] = None
    seen: ClassVar[list[dict[str, AlignmentView]]] = []

    class Config(ComponentConfig):
        max_dim: int = 1000

    @classmethod
    def check_alignments(cls, config: ComponentConfig, views: Mapping[str, AlignmentView]) -> None:
        assert isinstance(config, cls.Config)
        cls.seen.append(dict(views))
        for name, view in views.items():
            if view.width is not None and view.width > config.max_dim:
                raise PipelineError(
                    f"alignment {name!r} reads width {view.width}, over max_dim {config.max_dim}",
                    hint="lower the width",
                )

    def forward(self, inputs: LossInputs) -> LossOutput:
        """Cross-entropy with the diagonal as positives, summed over the alignments read."""
        total = sum(
            torch.nn.functional.cross_entropy(a.scores, torch.arange(a.scores.shape[0], device=a.scores.device))
            for a in inputs.alignments.values()
        )
        return LossOutput(torch.as_tensor(total), {})


TWO_ALIGNMENTS = TOY_CONFIG.replace(
    "    document: {shared_with: query}\n",
    "    document: {shared_with: query}\n"
    "    other:\n"
    "      tokenizer: {type: chars}\n"
    "      encoder: {type: no-layers, dim: 16}\n"
    "      poolers: {pooled: {type: toy-mean}}\n",
).replace(
    "    sim: {type: toy-cosine, between: [query.sentence, document.sentence]}\n",
    "    sim: {type: toy-cosine, between: [query.sentence, document.sentence]}\n"
    "    cross: {type: toy-cosine, between: [other.pooled, query.sentence]}\n",
).replace("{type: contrastive, on: sim, scale: 20.0}", "{type: view-check, on: [cross, sim]}")


def test_loss_check_alignments_receives_static_views(toy_plugin: Path, temporary_component) -> None:  # type: ignore[no-untyped-def]
    temporary_component("loss", "view-check", ViewCheckingLoss)
    ViewCheckingLoss.seen.clear()
    assert "view-check" in TWO_ALIGNMENTS and "cross:" in TWO_ALIGNMENTS
    data, lines = parse_yaml(TWO_ALIGNMENTS, "c.yaml")
    plan = plan_model(LocatedConfig(data, lines, "c.yaml"))
    assert len(ViewCheckingLoss.seen) == 1
    # The planned model trains: the hook only checks, it changes nothing at run time.
    out = build_model(plan)({"query": ["ab", "cd"], "document": ["ab", "cd"], "other": ["ab", "cd"]})
    assert out.loss is not None and bool(torch.isfinite(out.loss))
    views = ViewCheckingLoss.seen[0]
    assert list(views) == ["cross", "sim"]  # the order of 'on:'
    layered = EncoderSignature({"token": GranularitySpec("sequence", 16)}, num_layers=2)
    flat = EncoderSignature({"token": GranularitySpec("sequence", 16)}, num_layers=None)
    pooled = GranularitySpec("pooled", 16)
    # A shared_with tower (document) sees its owner's encoder signature.
    assert views["sim"] == AlignmentView(
        "sim", (("query", "sentence"), ("document", "sentence")), (pooled, pooled), (layered, layered)
    )
    assert views["cross"] == AlignmentView(
        "cross", (("other", "pooled"), ("query", "sentence")), (pooled, pooled), (flat, layered)
    )
    assert views["cross"].width == 16


def test_alignment_view_width() -> None:
    sig = EncoderSignature({})
    view = AlignmentView("a", (("x", "g"), ("y", "g")), (GranularitySpec("pooled", 8), GranularitySpec("pooled", None)), (sig, sig))
    assert view.width == 8
    unknown = AlignmentView("a", (("x", "g"), ("y", "g")), (GranularitySpec("pooled"),) * 2, (sig, sig))
    assert unknown.width is None


def test_loss_check_alignments_error_is_located(check, temporary_component) -> None:  # type: ignore[no-untyped-def]
    temporary_component("loss", "view-check", ViewCheckingLoss)
    text = TOY_CONFIG.replace("{type: contrastive, on: sim, scale: 20.0}", "{type: view-check, on: sim, max_dim: 8}")
    code, err = check(text)
    assert code == 2
    assert err.startswith("error: ") and err.count("error:") == 1, err
    assert "config.yaml:12: model.losses.0: alignment 'sim' reads width 16, over max_dim 8" in err
    assert "lower the width" in err
    ok, err = check(text.replace("max_dim: 8", "max_dim: 16"))
    assert ok == 0, err


class FileReadingLoss(Loss):
    """Raises a ConfigError naming its own option while it is built (a missing file, say)."""

    citation: ClassVar[str] = "test"

    class Config(ComponentConfig):
        table: str = "table.txt"

    def __init__(self, config: ComponentConfig, runtime: object) -> None:
        super().__init__(config, runtime)  # type: ignore[arg-type]
        raise ConfigError(f"table file {config.table!r} does not exist", path="table", found=config.table)  # type: ignore[attr-defined]

    forward = ViewCheckingLoss.forward


def test_a_component_error_path_is_relative_to_its_block(toy_plugin: Path, temporary_component) -> None:  # type: ignore[no-untyped-def]
    """path="table" raised while building model.losses.0 is reported at model.losses.0.table, with its line."""
    temporary_component("loss", "file-reading", FileReadingLoss)
    text = TOY_CONFIG.replace("{type: contrastive, on: sim, scale: 20.0}",
                              "\n      type: file-reading\n      on: sim\n      table: nope.txt")
    data, lines = parse_yaml(text, "c.yaml")
    cfg = LocatedConfig(data, lines, "c.yaml")
    with pytest.raises(ConfigError) as info:
        build_model(plan_model(cfg))
    err = info.value
    assert err.path == "model.losses.0.table"
    assert (err.file, err.line) == ("c.yaml", text.splitlines().index("      table: nope.txt") + 1)
