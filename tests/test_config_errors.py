"""Every user error in a config ends in one clear message and exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from toys import TOY_CONFIG

from repmix.core.cli.main import main


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
