"""Shared fixtures: fresh registries, fake plugin distributions and the toy plugin."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from core_helpers import TESTS_DIR, toy_entry_points, write_distribution

from repmix.registry.hooks import reset_hooks
from repmix.registry.registry import reset_registry

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    """Forget discovered plugins and hooks before and after the test."""
    reset_registry()
    reset_hooks()
    yield
    reset_registry()
    reset_hooks()


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None) -> Callable[..., Path]:
    """Factory: ``plugin_dir(name, requires=..., entry_points=..., modules=...)`` adds a fake distribution.

    The distribution is importable in-process (sys.path) and in subprocesses
    (PYTHONPATH is extended for them via :func:`subprocess_env`).
    """
    root = tmp_path / "site"
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.syspath_prepend(str(TESTS_DIR))

    def make(name: str, **kwargs: object) -> Path:
        write_distribution(root, name, **kwargs)  # type: ignore[arg-type]
        reset_registry()
        reset_hooks()
        return root

    return make


@pytest.fixture
def toy_plugin(plugin_dir: Callable[..., Path]) -> Path:
    """The toy components installed as the fake distribution ``repmix-toy``."""
    return plugin_dir("repmix-toy", requires=["repmix>=1,<2", "torch"], entry_points=toy_entry_points())
