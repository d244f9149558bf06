"""repmix SDK for plugin authors: everything a component module imports.

A plugin module needs only this package::

    from repmix.sdk import Pooler, PoolerConfig, Encoded, Granularity, Runtime

    class ScaledMean(Pooler):
        citation = "..."
        class Config(PoolerConfig):
            init_scale: float = 1.0
        def forward(self, encoded: Encoded) -> Granularity: ...

Also here: :mod:`repmix.sdk.conformance` (the conformance test kit),
:mod:`repmix.sdk.pytest_plugin` (fixtures, loaded by pytest automatically) and
:mod:`repmix.sdk.scaffold` (``repmix new-plugin``). Names are imported lazily
(on first attribute access), so importing the package or its torch-free
submodules (the pytest plugin, which pytest loads in every run, and the
scaffolding) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    # component interfaces and their configs
    "Aligner": "repmix.core.components",
    "Component": "repmix.core.components",
    "ComponentConfig": "repmix.core.components",
    "Encoder": "repmix.core.components",
    "Loss": "repmix.core.components",
    "LossInputs": "repmix.core.components",
    "Pooler": "repmix.core.components",
    "PoolerConfig": "repmix.core.components",
    "Runtime": "repmix.core.components",
    "Tokenizer": "repmix.core.components",
    "Dataset": "repmix.core.data",
    "Evaluator": "repmix.core.data",
    "Examples": "repmix.core.data",
    # data that flows between components
    "Alignment": "repmix.core.types",
    "Encoded": "repmix.core.types",
    "EncoderSignature": "repmix.core.types",
    "Granularity": "repmix.core.types",
    "GranularitySpec": "repmix.core.types",
    "LossOutput": "repmix.core.types",
    # errors a component raises for its user
    "ArtifactError": "repmix.core.errors",
    "ConfigError": "repmix.core.errors",
    "InputError": "repmix.core.errors",
    "PipelineError": "repmix.core.errors",
    "PluginError": "repmix.core.errors",
    "RepmixError": "repmix.core.errors",
    # hooks and tests
    "hookimpl": "repmix.registry",
    "temporary_component": "repmix.registry",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from repmix.core.components import (
        Aligner,
        Component,
        ComponentConfig,
        Encoder,
        Loss,
        LossInputs,
        Pooler,
        PoolerConfig,
        Runtime,
        Tokenizer,
    )
    from repmix.core.data import Dataset, Evaluator, Examples
    from repmix.core.errors import (
        ArtifactError,
        ConfigError,
        InputError,
        PipelineError,
        PluginError,
        RepmixError,
    )
    from repmix.core.types import (
        Alignment,
        Encoded,
        EncoderSignature,
        Granularity,
        GranularitySpec,
        LossOutput,
    )
    from repmix.registry import hookimpl, temporary_component


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'repmix.sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
