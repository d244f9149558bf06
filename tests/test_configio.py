"""YAML loading: YAML 1.2 scalars, line numbers, extends, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from repmix.core.config import apply_overrides, load_config, parse_override, parse_yaml
from repmix.core.errors import ConfigError, InputError


def test_yaml12_scalars() -> None:
    data, _ = parse_yaml("on: x\noff: y\nlr: 1e-4\nyes: no\nt: true\nn: 3\nf: .5\n", "f.yaml")
    assert data == {"on": "x", "off": "y", "lr": 1e-4, "yes": "no", "t": True, "n": 3, "f": 0.5}


def test_line_numbers_of_nested_keys() -> None:
    _, lines = parse_yaml("a:\n  b:\n    - {c: 1}\n    - d: 2\n", "f.yaml")
    assert lines[("a",)] == ("f.yaml", 1)
    assert lines[("a", "b", 0, "c")] == ("f.yaml", 3)
    assert lines[("a", "b", 1, "d")] == ("f.yaml", 4)


def test_no_arbitrary_python_objects() -> None:
    with pytest.raises(ConfigError):
        parse_yaml("x: !!python/object/apply:os.system ['echo hi']\n", "f.yaml")


def test_extends_merges_and_keeps_lines(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("model:\n  a: 1\n  b: {c: 2, d: 3}\ntrain: {lr: 0.1}\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nmodel:\n  b: {c: 20}\n")
    cfg = load_config(tmp_path / "child.yaml", ["train.lr=1e-4", "model.e=[1, 2]"])
    assert cfg.data == {"model": {"a": 1, "b": {"c": 20, "d": 3}, "e": [1, 2]}, "train": {"lr": 1e-4}}
    assert cfg.where("model.b.c")[0].endswith("child.yaml")
    assert cfg.where("model.b.d") == (str(tmp_path / "base.yaml"), 3)
    assert cfg.where("train.lr")[0].startswith("<command line>")


def test_extends_replaces_a_block_of_another_component(tmp_path: Path) -> None:
    """Options of the base's component do not leak into another component's block."""
    (tmp_path / "base.yaml").write_text(
        "model:\n  tok: {type: std.lm-tokenizer, algorithm: bpe, vocab_size: 4096}\n"
        "  pool: {type: std.mean, normalize: true}\n")
    (tmp_path / "child.yaml").write_text(
        "extends: base.yaml\nmodel:\n  tok: {type: hat.hat-tokenizer, words: text}\n  pool: {type: mean}\n")
    cfg = load_config(tmp_path / "child.yaml")
    assert cfg.data["model"]["tok"] == {"type": "hat.hat-tokenizer", "words": "text"}  # replaced whole
    assert cfg.data["model"]["pool"] == {"type": "mean", "normalize": True}  # the same component: merged
    assert cfg.where("model.tok.words")[0].endswith("child.yaml")


def test_override_errors() -> None:
    from repmix.core.config import LocatedConfig

    cfg = LocatedConfig({"a": [1, 2], "b": 3})
    with pytest.raises(ConfigError, match="not of the form"):
        parse_override("novalue")
    with pytest.raises(ConfigError, match="index"):
        apply_overrides(cfg, ["a.5=1"])
    with pytest.raises(ConfigError, match="not a mapping"):
        apply_overrides(cfg, ["b.c=1"])
    apply_overrides(cfg, ["a.1=7", "c.d=on"])
    assert cfg.data == {"a": [1, 7], "b": 3, "c": {"d": "on"}}


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_config(tmp_path / "x.yaml")
    with pytest.raises(InputError, match="is a directory"):
        load_config(tmp_path)
    (tmp_path / "a.yaml").write_text("extends: missing.yaml\n")
    with pytest.raises(ConfigError, match="extended config"):
        load_config(tmp_path / "a.yaml")


def test_tagged_scalars_are_refused() -> None:
    with pytest.raises(ConfigError, match="YAML"):
        parse_yaml("x: !!python/name:os.system ''\n", "f.yaml")
