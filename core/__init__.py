"""repmix core: interfaces, data types, config specs, assembly, artifacts and CLI.

The core knows no plugin by name. Public names are imported lazily so that
``import repmix.core`` (and the CLI's fast paths) do not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    # data types
    "Granularity": "repmix.core.dataflow",
    "Encoded": "repmix.core.dataflow",
    "Alignment": "repmix.core.dataflow",
    "LossOutput": "repmix.core.dataflow",
    "GranularitySpec": "repmix.core.dataflow",
    "EncoderSignature": "repmix.core.dataflow",
    # component interfaces
    "Component": "repmix.core.components",
    "ComponentConfig": "repmix.core.components",
    "PoolerConfig": "repmix.core.components",
    "Runtime": "repmix.core.components",
    "Tokenizer": "repmix.core.components",
    "Encoder": "repmix.core.components",
    "Pooler": "repmix.core.components",
    "Aligner": "repmix.core.components",
    "Loss": "repmix.core.components",
    "LossInputs": "repmix.core.components",
    "Dataset": "repmix.core.components",
    "Evaluator": "repmix.core.components",
    "Examples": "repmix.core.components",
    # errors
    "RepmixError": "repmix.core.errors",
    "ConfigError": "repmix.core.errors",
    "PipelineError": "repmix.core.errors",
    "PluginError": "repmix.core.errors",
    "ArtifactError": "repmix.core.errors",
    "InputError": "repmix.core.errors",
    # configs, assembly, artifacts
    "load_config": "repmix.core.config",
    "plan_model": "repmix.core.assembly",
    "build_model": "repmix.core.assembly",
    "AssembledModel": "repmix.core.model",
    "save_model": "repmix.core.artifacts",
    "load_model": "repmix.core.artifacts",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'repmix.core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
