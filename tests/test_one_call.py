"""``repmix.load`` (config, saved model, run) and the Model's user-level methods; commands through hooks."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
from toys import TOY_CONFIG

import repmix
from repmix.cli.main import COMMAND_MODULES, build_parser, command_manager
from repmix.core.errors import InputError

SENTENCES = ["a short one", "a much longer sentence than the others", "mid length", "x"]


@pytest.fixture
def toy_config(tmp_path: Path, toy_plugin: Path) -> Path:
    path = tmp_path / "toy.yaml"
    path.write_text(TOY_CONFIG, encoding="utf-8")
    return path


def test_load_a_config_and_the_saved_model_give_the_same_vectors(toy_config: Path, tmp_path: Path) -> None:
    model = repmix.load(toy_config)
    assert isinstance(model, repmix.Model) and not model.training
    vectors = model.encode(SENTENCES)  # the default tower: the first declared
    assert vectors.shape == (4, 16) and vectors.dtype == np.float32
    saved = model.save(tmp_path / "saved")
    np.testing.assert_array_equal(repmix.load(saved).encode(SENTENCES, tower="query"), vectors)
    np.testing.assert_allclose(model.encode("a short one"), vectors[:1], atol=1e-6)


def test_similarity_is_the_declared_aligner_on_encoded_inputs(toy_config: Path) -> None:
    model = repmix.load(toy_config)
    scores = model.similarity(SENTENCES[:2], SENTENCES, batch_size=3)
    q = torch.from_numpy(model.encode(SENTENCES[:2], tower="query"))
    d = torch.from_numpy(model.encode(SENTENCES, tower="document"))
    expected = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(d, dim=1).T
    np.testing.assert_allclose(scores, expected.numpy(), atol=1e-5)
    with pytest.raises(InputError, match="no alignment 'nope'"):
        model.similarity(["a"], ["b"], alignment="nope")


def test_overrides_apply_to_configs_only(toy_config: Path, tmp_path: Path) -> None:
    model = repmix.load(toy_config, ["model.towers.query.encoder.dim=8"])
    assert model.encode(["abc"]).shape == (1, 8)
    saved = model.save(tmp_path / "saved")
    with pytest.raises(InputError, match="overrides apply to a config file"):
        repmix.load(saved, ["train.lr=1"])


@pytest.mark.parametrize("module", COMMAND_MODULES)
def test_built_in_commands_are_hook_implementations(module: str) -> None:
    """Built-in command modules add their commands the way a plugin does: a repmix_add_commands hookimpl."""
    hook = importlib.import_module(module).repmix_add_commands
    assert getattr(hook, "repmix_impl", None) is not None, f"{module}.repmix_add_commands is not a @hookimpl"
    assert list(inspect.signature(hook).parameters) == ["subparsers"]


def test_commands_come_from_the_hook_manager_in_help_order() -> None:
    pm = command_manager(with_extensions=False)
    assert [name for name, _ in pm.list_name_plugin()] == list(reversed(COMMAND_MODULES))
    choices = list(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert choices[:3] == ["plugins", "check", "build"] and {"train", "ablate", "new-plugin"} <= set(choices)
