"""Saved models: round trip, and clear refusals of unsafe or damaged directories."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from toys import TOY_CONFIG

from repmix.core.artifacts import (
    LOCK_FILE,
    WEIGHTS_FILE,
    load_model,
    save_model,
    sha256_file,
    write_model_card,
)
from repmix.core.assembly import build_model, plan_model
from repmix.cli.main import main
from repmix.core.config import LocatedConfig, parse_yaml
from repmix.core.errors import ArtifactError, PluginError

SENTENCES = ["a short one", "a much longer sentence than the others", "mid length", "", "x"]


def load_config_text(text: str) -> LocatedConfig:
    return LocatedConfig(*parse_yaml(text, "toy.yaml"), "toy.yaml")


def toy_model(seed: int = 0):  # type: ignore[no-untyped-def]
    return build_model(plan_model(load_config_text(TOY_CONFIG)), seed=seed)


@pytest.fixture
def saved(tmp_path: Path, toy_plugin: Path) -> Path:
    return save_model(toy_model(), tmp_path / "saved")


def test_round_trip_gives_identical_embeddings(saved: Path, toy_plugin: Path) -> None:
    original = toy_model()
    loaded = load_model(saved)
    a = original.encode(SENTENCES, tower="query")
    b = loaded.encode(SENTENCES, tower="document")  # shared tower: same weights
    np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in saved.iterdir()) == sorted(
        ["config.yaml", LOCK_FILE, WEIGHTS_FILE, "repmix.json", "README.md"]
    )
    lock = (saved / LOCK_FILE).read_text()
    assert '"distribution": "repmix-toy"' in lock and '"version": "1.0.0"' in lock


def test_seed_determinism_and_difference(toy_plugin: Path) -> None:
    a, b, c = toy_model(0), toy_model(0), toy_model(1)
    for (k, v), (_, w) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(v, w), k
    assert not all(torch.equal(v, w) for v, w in zip(a.state_dict().values(), c.state_dict().values()))


def test_embed_keeps_input_order(toy_plugin: Path) -> None:
    m = toy_model()
    sorted_out = m.encode(SENTENCES, tower="query", batch_size=2)
    unsorted = m.encode(SENTENCES, tower="query", batch_size=2, sort_by_length=False)
    one_by_one = np.stack([m.encode([s], tower="query")[0] for s in SENTENCES])
    np.testing.assert_allclose(sorted_out, unsorted, atol=1e-6)
    np.testing.assert_allclose(sorted_out, one_by_one, atol=1e-6)


def test_missing_weights(saved: Path) -> None:
    (saved / WEIGHTS_FILE).unlink()
    with pytest.raises(ArtifactError, match="model.safetensors is missing"):
        load_model(saved)


def test_truncated_weights(saved: Path) -> None:
    data = (saved / WEIGHTS_FILE).read_bytes()
    (saved / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="truncated, replaced or modified"):
        load_model(saved)


def test_weights_replaced_by_pickle(saved: Path) -> None:
    (saved / WEIGHTS_FILE).write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    with pytest.raises(ArtifactError, match="checksum"):
        load_model(saved)


def test_pickle_file_in_directory_is_refused(saved: Path) -> None:
    (saved / "optimizer.pt").write_bytes(pickle.dumps({}))
    with pytest.raises(ArtifactError, match="never loads pickle"):
        load_model(saved)


def test_not_a_saved_model(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist"):
        load_model(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="not a saved model"):
        load_model(tmp_path / "empty")


def rehash(saved: Path) -> None:
    """Record the current checksums, as a save on another machine would have."""
    manifest = json.loads((saved / "repmix.json").read_text())
    manifest["files"] = {name: sha256_file(saved / name) for name in manifest["files"]}
    (saved / "repmix.json").write_text(json.dumps(manifest))


def test_missing_plugin(saved: Path) -> None:
    lock = (saved / LOCK_FILE).read_text().replace('"repmix-toy"', '"repmix-gone"')
    (saved / LOCK_FILE).write_text(lock)
    rehash(saved)
    with pytest.raises(PluginError, match="repmix-gone .* not installed"):
        load_model(saved)


@pytest.mark.parametrize("name", ["config.yaml", LOCK_FILE, "README.md"])
def test_every_saved_file_is_checksummed(saved: Path, name: str) -> None:
    """A changed config (e.g. mean -> cls), lock or card is refused, not loaded with other behaviour."""
    path = saved / name
    path.write_text(path.read_text().replace("toy-mean", "layer-mean") + "\n")
    with pytest.raises(ArtifactError, match=f"{name} .* does not match its recorded checksum"):
        load_model(saved)


def test_saved_config_may_not_extend(saved: Path) -> None:
    (saved / "config.yaml").write_text("extends: /etc/hostname\n" + (saved / "config.yaml").read_text())
    rehash(saved)
    with pytest.raises(ArtifactError, match="fully resolved"):
        load_model(saved)


def test_files_read_at_build_time_travel_with_the_model(tmp_path: Path, toy_plugin: Path) -> None:
    """A component's saved_files are copied, hashed and used: the model loads after the original is gone."""
    alphabet = tmp_path / "elsewhere" / "alphabet.txt"
    alphabet.parent.mkdir()
    alphabet.write_text("zyxwvutsrqponmlkjihgfedcba .", encoding="utf-8")
    cfg = load_config_text(TOY_CONFIG.replace("{type: chars}", f"{{type: chars, alphabet_file: {alphabet}}}"))
    model = build_model(plan_model(cfg), seed=0)
    saved = save_model(model, tmp_path / "saved")
    expected = model.encode(SENTENCES, tower="query")
    manifest = json.loads((saved / "repmix.json").read_text())
    bundled = manifest["bundled"]["model.towers.query.tokenizer.alphabet_file"]
    assert (saved / bundled).read_text() == alphabet.read_text() and bundled in manifest["files"]
    assert str(alphabet) not in (saved / "config.yaml").read_text()
    alphabet.unlink()
    np.testing.assert_array_equal(load_model(saved).encode(SENTENCES, tower="query"), expected)
    (saved / bundled).write_text("abc", encoding="utf-8")
    with pytest.raises(ArtifactError, match="alphabet.txt .* does not match its recorded checksum"):
        load_model(saved)


def test_model_card_lists_components_plugins_and_metrics(tmp_path: Path, toy_plugin: Path) -> None:
    saved = save_model(toy_model(), tmp_path / "saved")
    card = (saved / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: repmix\n")
    assert "| `model.towers.query.encoder` | encoder |" in card and "repmix-toy" in card
    assert "None recorded" in card
    write_model_card(saved, toy_model(), {"accuracy": 0.75})
    assert "| accuracy | 0.7500 |" in (saved / "README.md").read_text()
    load_model(saved)  # the card's new checksum was recorded


def test_cli_build_and_encode(tmp_path: Path, toy_plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "toy.yaml"
    cfg.write_text(TOY_CONFIG)
    inp = tmp_path / "in.txt"
    inp.write_text("\n".join(SENTENCES) + "\n")
    assert main(["build", str(cfg), "-o", str(tmp_path / "m")]) == 0
    for source in (str(cfg), str(tmp_path / "m")):
        out = tmp_path / "out.npy"
        assert main(["encode", source, "--tower", "query", "--input", str(inp), "--output", str(out),
                     "--batch-size", "2", "--no-progress"]) == 0
        arr = np.load(out)
        assert arr.dtype == np.float32 and arr.shape == (len(SENTENCES), 16)
        nonempty = [i for i, s in enumerate(SENTENCES) if s]
        np.testing.assert_allclose(np.linalg.norm(arr[nonempty], axis=1), 1.0, atol=1e-5)
    capsys.readouterr()


@pytest.mark.parametrize(
    ("setup", "args", "fragment"),
    [
        (None, ["--input", "missing.txt"], "does not exist"),
        ("", [], "is empty"),
        ("a\nb\n", ["--granularity", "token"], "is a sequence"),
        ("a\nb\n", ["--granularity", "motif"], "no granularity 'motif'"),
        ("a\nb\n", ["--tower", "molecule"], "no tower 'molecule'"),
        ("a\nb\n", ["--batch-size", "0"], "at least 1"),
        ("a\nb\n", ["--output", "out.txt"], "must end in .npy"),
    ],
)
def test_encode_bad_input(tmp_path: Path, toy_plugin: Path, capsys: pytest.CaptureFixture[str],
                          setup: str | None, args: list[str], fragment: str) -> None:
    cfg = tmp_path / "toy.yaml"
    cfg.write_text(TOY_CONFIG)
    inp = tmp_path / "in.txt"
    if setup is not None:
        inp.write_text(setup)
    base = {"--tower": "query", "--input": str(inp), "--output": str(tmp_path / "o.npy")}
    for k, v in zip(args[::2], args[1::2]):
        base[k] = str(tmp_path / v) if k in ("--input", "--output") else v
    argv = ["encode", str(cfg)] + [x for kv in base.items() for x in kv] + ["--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err
    assert not (tmp_path / "o.npy").exists()
