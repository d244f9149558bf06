"""Issue 17, defects 1 and 3: YAML is bounded and ``extends:`` reads only YAML files.

Every hostile config ends in one clear message and exit status 2, fast, with
no traceback and no quote of a file that is not YAML.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from toys import TOY_CONFIG

from repmix.cli.main import main
from repmix.core.config import MAX_CONFIG_BYTES, load_config, parse_override, parse_yaml
from repmix.core.errors import ConfigError, RepmixError


def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    text = "a: &a [" + ",".join(['"lol"'] * width) + "]\n"
    prev = "a"
    for i in range(1, levels):
        name = f"l{i}"
        text += f"{name}: &{name} [" + ",".join([f"*{prev}"] * width) + "]\n"
        prev = name
    return text


HOSTILE = {
    "alias bomb": (_alias_bomb(), "alias bomb"),
    "recursive alias": ("a: &a [*a]\n", "recursive YAML alias"),
    "recursive mapping alias": ("a: &a {b: *a}\n", "recursive YAML alias"),
    "5000 nested lists": ("[" * 5000 + "]" * 5000, "nested deeper than"),
    "1500 nested mappings": ("{a: " * 1500 + "1" + "}" * 1500, "nested deeper than"),
    "300 nested block mappings": ("".join(" " * i + "k:\n" for i in range(300)) + " " * 300 + "v: 1\n",
                                   "nested deeper than"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_yaml_is_one_clear_error(name: str) -> None:
    text, expected = HOSTILE[name]
    start = time.monotonic()
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "hostile.yaml")
    assert expected in info.value.message
    assert time.monotonic() - start < 10


def test_big_config_file_is_refused_without_reading_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * (MAX_CONFIG_BYTES // 10 + 10))
    assert main(["check", str(big)]) == 2
    err = capsys.readouterr().err
    assert "larger than" in err and "Traceback" not in err


@pytest.mark.parametrize("name", ["alias bomb", "recursive alias", "5000 nested lists"])
def test_hostile_configs_exit_2_through_the_cli(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(HOSTILE[name][0])
    assert main(["check", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "internal error" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("override", "expected"),
    [("...=1", "not of the form"), ("train.lr=&a [*a]", "recursive YAML alias"), ("a..b=1", "not of the form")],
)
def test_bad_overrides_are_config_errors(override: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        parse_override(override)


def test_extends_reads_only_regular_yaml_files(tmp_path: Path) -> None:
    secret = tmp_path / "shadow"
    secret.write_text("root:SECRET-HASH:19000:0:99999:7:::\n")
    for target in (str(secret), "/dev/zero", str(tmp_path)):
        p = tmp_path / "c.yaml"
        p.write_text(f"extends: {target}\nmodel: {{}}\n")
        with pytest.raises(RepmixError) as info:
            load_config(p)
        assert "SECRET" not in info.value.render()
        assert "extends" in info.value.render()
    fifo_like = tmp_path / "dir.yaml"
    fifo_like.mkdir()
    p = tmp_path / "c.yaml"
    p.write_text(f"extends: {fifo_like}\n")
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(p)


def test_extends_of_a_large_yaml_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "big.yaml").write_text("a: 1\n" + "# x\n" * (MAX_CONFIG_BYTES // 4 + 1))
    (tmp_path / "c.yaml").write_text("extends: big.yaml\n")
    with pytest.raises(ConfigError, match="larger than"):
        load_config(tmp_path / "c.yaml")


def test_config_on_a_device_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "/dev/zero"]) == 2
    assert "not a regular file" in capsys.readouterr().err


def test_replaced_block_is_located_on_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(TOY_CONFIG)
    cfg = load_config(tmp_path / "c.yaml", ["train={epochs: 1, lrr: 2}"])
    file, _ = cfg.where(("train", "lrr"))
    assert file is not None and file.startswith("<command line>")
    file, _ = cfg.where(("train", "epochs"))
    assert file is not None and file.startswith("<command line>")
