"""The SDK is the plugins' one door: every exported name resolves, and importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest

import repmix.sdk


@pytest.mark.parametrize("name", repmix.sdk.__all__)
def test_every_exported_name_resolves(name: str) -> None:
    assert getattr(repmix.sdk, name) is not None


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        repmix.sdk.Nope  # noqa: B018 - the access is the test


def test_importing_the_sdk_and_the_package_root_imports_no_torch() -> None:
    code = "import sys, repmix, repmix.sdk, repmix.sdk.pytest_plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
