"""Issue 17, defect 5 and the saved-model items: qualified names, name claims, locks, clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from toys import TOY_CONFIG

from repmix.cli.main import main
from repmix.core.artifacts import (
    CONFIG_FILE,
    LOCK_FILE,
    MANIFEST_FILE,
    WEIGHTS_FILE,
    load_model,
    save_model,
    sha256_file,
)
from repmix.core.assembly import build_model, plan_model
from repmix.core.config import LocatedConfig, parse_yaml
from repmix.core.errors import ArtifactError, ConfigError, PluginError, RepmixError
from repmix.registry import get_registry

SENTENCES = ["one", "two words", "three of them"]


def _model():  # type: ignore[no-untyped-def]
    return build_model(plan_model(LocatedConfig(*parse_yaml(TOY_CONFIG, "toy.yaml"), "toy.yaml")), seed=0)


@pytest.fixture
def saved(tmp_path: Path, toy_plugin: Path) -> Path:
    return save_model(_model(), tmp_path / "saved")


def _rehash(saved: Path, name: str) -> None:
    """Record ``name``'s new checksum, as an older repmix would have written it."""
    manifest = json.loads((saved / MANIFEST_FILE).read_text())
    manifest["files"][name] = sha256_file(saved / name)
    (saved / MANIFEST_FILE).write_text(json.dumps(manifest))


def test_saved_config_stores_qualified_names(saved: Path) -> None:
    text = (saved / CONFIG_FILE).read_text()
    assert "type: toy.toy-mean" in text and "type: toy.chars" in text


def test_a_later_plugin_with_the_same_short_name_changes_nothing(saved: Path, plugin_dir) -> None:  # type: ignore[no-untyped-def]
    expected = load_model(saved).encode(SENTENCES, tower="query")
    plugin_dir("repmix-other", requires=["repmix>=1"], entry_points={"repmix.poolers": {"toy-mean": "toys:MeanPooler"}})
    with pytest.raises(ConfigError, match="ambiguous"):  # the clash makes the short name ambiguous ...
        get_registry().resolve("pooler", "toy-mean")
    assert get_registry().resolve("encoder", "embedding").qualified_name == "toy.embedding"  # ... and only it
    np.testing.assert_array_equal(load_model(saved).encode(SENTENCES, tower="query"), expected)


def test_short_names_of_an_older_save_resolve_through_the_lock(saved: Path, plugin_dir) -> None:  # type: ignore[no-untyped-def]
    (saved / CONFIG_FILE).write_text((saved / CONFIG_FILE).read_text().replace("toy.toy-mean", "toy-mean"))
    _rehash(saved, CONFIG_FILE)
    plugin_dir("repmix-other", requires=["repmix>=1"], entry_points={"repmix.poolers": {"toy-mean": "toys:MeanPooler"}})
    assert load_model(saved).encode(SENTENCES, tower="query").shape[0] == 3


def test_a_plain_distribution_cannot_take_over_a_plugin_name(toy_plugin: Path, plugin_dir) -> None:  # type: ignore[no-untyped-def]
    plugin_dir("toy", requires=["repmix>=1"], entry_points={"repmix.poolers": {"evil": "toys:MeanPooler"}})
    reg = get_registry()
    owner = reg.plugin("toy")
    assert owner is not None and owner.distribution == "repmix-toy" and owner.status == "ok"
    assert reg.resolve("pooler", "toy-mean").plugin.distribution == "repmix-toy"
    impostor = [p for p in reg.plugins if p.distribution == "toy"]
    assert impostor and impostor[0].status == "broken" and "belongs to repmix-toy" in impostor[0].reason
    with pytest.raises(RepmixError):
        reg.resolve("pooler", "evil")


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda d: (d / LOCK_FILE).write_text("[1, 2]"), "malformed"),
        (lambda d: (d / LOCK_FILE).write_text('{"components": [{"version": 3}]}'), "malformed"),
    ],
)
def test_malformed_lock_is_one_clear_error(saved: Path, damage, expected: str) -> None:  # type: ignore[no-untyped-def]
    damage(saved)
    _rehash(saved, LOCK_FILE)
    with pytest.raises(ArtifactError, match=expected):
        load_model(saved)


def test_manifest_fields_of_the_wrong_type_are_refused(saved: Path) -> None:
    manifest = json.loads((saved / MANIFEST_FILE).read_text())
    for broken in ({"format": "2"}, {"format": 1, "files": None, "weights_sha256": 12}):
        (saved / MANIFEST_FILE).write_text(json.dumps({**manifest, **broken}))
        with pytest.raises(ArtifactError):
            load_model(saved)


def test_version_mismatch_and_deleted_lock_are_refused_unless_allowed(saved: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    lock = json.loads((saved / LOCK_FILE).read_text())
    for comp in lock["components"]:
        comp["version"] = "0.0.1"
    (saved / LOCK_FILE).write_text(json.dumps(lock))
    _rehash(saved, LOCK_FILE)
    with pytest.raises(PluginError, match="built with repmix-toy 0.0.1"):
        load_model(saved)
    with pytest.warns(UserWarning, match="loading anyway"):
        load_model(saved, allow_mismatch=True)
    # a format-1 directory (weights hashed alone) without its lock
    manifest = {"format": 1, "weights_sha256": sha256_file(saved / WEIGHTS_FILE)}
    (saved / MANIFEST_FILE).write_text(json.dumps(manifest))
    (saved / LOCK_FILE).unlink()
    with pytest.raises(ArtifactError, match="has no plugins.lock"), pytest.warns(UserWarning):
        load_model(saved)
    (tmp_items := saved.parent / "items.txt").write_text("a\nb\n")
    args = ["encode", str(saved), "--tower", "query", "--input", str(tmp_items), "--output", str(saved.parent / "e.npy")]
    assert main(args) == 2
    assert main([*args, "--allow-plugin-mismatch"]) == 0


def test_weights_of_another_model_size_are_one_clear_error(saved: Path, tmp_path: Path) -> None:
    text = (saved / CONFIG_FILE).read_text()
    assert "dim: 16" in text
    (saved / CONFIG_FILE).write_text(text.replace("dim: 16", "dim: 8"))
    _rehash(saved, CONFIG_FILE)
    with pytest.raises(ArtifactError, match="do not fit"):
        load_model(saved)


def test_encode_refuses_bad_outputs_and_devices_before_work(saved: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    items = tmp_path / "items.txt"
    items.write_text("a\nb\n")
    (tmp_path / "out.npy").mkdir()
    base = ["encode", str(saved), "--tower", "query", "--input", str(items)]
    assert main([*base, "--output", str(tmp_path / "out.npy")]) == 2
    assert "is a directory" in capsys.readouterr().err
    import torch

    if not torch.cuda.is_available():
        assert main([*base, "--output", str(tmp_path / "e.npy"), "--device", "cuda"]) == 2
        assert "no CUDA GPU" in capsys.readouterr().err
    assert main([*base, "--output", str(tmp_path / "e.npy"), "--device", "warp9"]) == 2
    assert "not a torch device" in capsys.readouterr().err


def test_dotted_tower_names_are_refused(toy_plugin: Path) -> None:
    text = TOY_CONFIG.replace("    query:", "    q.x:").replace("shared_with: query", "shared_with: q.x")
    with pytest.raises(ConfigError, match="without dots"):
        plan_model(LocatedConfig(*parse_yaml(text, "c.yaml"), "c.yaml"))


def test_cli_messages(tmp_path: Path, capsys, toy_plugin: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit):
        main(["trian"])
    err = capsys.readouterr().err
    assert "did you mean 'train'" in err
    assert main(["evaluate", str(tmp_path / "runs" / "missing")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "config file" not in err.splitlines()[0]
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TOY_CONFIG)
    assert main(["check", str(cfg), "train.lrr=1"]) == 2
    first = capsys.readouterr().err.splitlines()[0]
    assert first.count("unknown key") == 1 and "train: unknown" not in first
