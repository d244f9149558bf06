"""repmix SDK: the one import a plugin needs.

A plugin module imports ``repmix.sdk`` (and its own package), nothing else of repmix::

    from repmix.sdk import Pooler, PoolerConfig, Encoded, Granularity, Runtime

    class ScaledMean(Pooler):
        citation = "..."
        class Config(PoolerConfig):
            init_scale: float = 1.0
        def forward(self, encoded: Encoded) -> Granularity: ...

What is here, by purpose:

* component interfaces and their configs (tokenizer, encoder, pooler, aligner,
  loss, dataset, evaluator) and the data that flows between them;
* the errors a component raises for its user;
* building blocks with one implementation each: Hugging Face model folders
  (:func:`resolve_model_dir`), masked pooling (:func:`masked_mean`, ...),
  tables with bad-row reporting (:func:`read_table`), nested components
  (:func:`build_component`); language modelling (:mod:`repmix.sdk.lm`: masking,
  replacement, ELECTRA sampling, lazy LM heads);
* configs and models (:func:`load`, :func:`load_config`, :func:`plan_model`,
  :func:`build_model`, :func:`save_model`, :class:`Model`);
* running things from a plugin's command (:func:`train_run`, :func:`evaluate_source`);
* hooks (:data:`hookimpl`) and test helpers: :mod:`repmix.sdk.testing`
  (tiny models, running the CLI), :mod:`repmix.sdk.conformance` (the
  conformance kit) and :mod:`repmix.sdk.pytest_plugin` (its fixtures).

Names are imported lazily (on first attribute access), so importing the
package, or its torch-free submodules (the pytest plugin, which pytest loads
in every run, and the scaffolding), does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    # component interfaces and their configs
    "Aligner": "repmix.core.components",
    "CausalLM": "repmix.core.components",
    "Corruptor": "repmix.core.components",
    "DecodingStrategy": "repmix.core.components",
    "Component": "repmix.core.components",
    "ComponentConfig": "repmix.core.components",
    "Dataset": "repmix.core.components",
    "Encoder": "repmix.core.components",
    "Evaluator": "repmix.core.components",
    "Examples": "repmix.core.components",
    "Loss": "repmix.core.components",
    "LossInputs": "repmix.core.components",
    "Pooler": "repmix.core.components",
    "PoolerConfig": "repmix.core.components",
    "Runtime": "repmix.core.components",
    "ShapeReq": "repmix.core.components",
    "Tokenizer": "repmix.core.components",
    # data that flows between components
    "Alignment": "repmix.core.dataflow",
    "AlignmentView": "repmix.core.dataflow",
    "Encoded": "repmix.core.dataflow",
    "EncoderSignature": "repmix.core.dataflow",
    "Granularity": "repmix.core.dataflow",
    "GranularitySpec": "repmix.core.dataflow",
    "LossOutput": "repmix.core.dataflow",
    "TowerView": "repmix.core.dataflow",
    # errors a component raises for its user
    "ArtifactError": "repmix.core.errors",
    "ConfigError": "repmix.core.errors",
    "InputError": "repmix.core.errors",
    "PipelineError": "repmix.core.errors",
    "PluginError": "repmix.core.errors",
    "RepmixError": "repmix.core.errors",
    "did_you_mean": "repmix.core.errors",
    # configs: reading YAML, located errors
    "LocatedConfig": "repmix.core.config",
    "load_config": "repmix.core.config",
    "parse_yaml": "repmix.core.config",
    "pydantic_error": "repmix.core.spec",
    # models: plan, build, save, load
    "Model": "repmix.core.model",
    "AssembledModel": "repmix.core.model",
    "build_component": "repmix.core.assembly",
    "build_model": "repmix.core.assembly",
    "load": "repmix.core.loading",
    "load_component_class": "repmix.core.assembly",
    "load_model": "repmix.core.artifacts",
    "plan_model": "repmix.core.assembly",
    "save_model": "repmix.core.artifacts",
    # building blocks, one implementation each
    "token_embedding": "repmix.sdk.embedding",
    "load_hf_config": "repmix.sdk.hf",
    "load_hf_model": "repmix.sdk.hf",
    "resolve_model_dir": "repmix.sdk.hf",
    "first_real_token": "repmix.sdk.pooling",
    "last_real_token": "repmix.sdk.pooling",
    "masked_max": "repmix.sdk.pooling",
    "masked_mean": "repmix.sdk.pooling",
    "masked_sum": "repmix.sdk.pooling",
    "PatchViT": "repmix.sdk.vit",
    "image_geometry": "repmix.sdk.vit",
    "patchify": "repmix.sdk.vit",
    "BadRows": "repmix.sdk.tables",
    "read_lines": "repmix.sdk.tables",
    "read_table": "repmix.sdk.tables",
    "Table": "repmix.sdk.tables",
    # running things from a plugin's command
    "train_run": "repmix.engine.training",
    "evaluate_source": "repmix.engine.evaluation",
    # hooks and tests
    "hookimpl": "repmix.registry",
    "temporary_component": "repmix.registry",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from repmix.core.artifacts import load_model, save_model
    from repmix.core.assembly import build_component, build_model, load_component_class, plan_model
    from repmix.core.components import (
        Aligner,
        CausalLM,
        Component,
        Corruptor,
        DecodingStrategy,
        ComponentConfig,
        Dataset,
        Encoder,
        Evaluator,
        Examples,
        Loss,
        LossInputs,
        Pooler,
        PoolerConfig,
        Runtime,
        ShapeReq,
        Tokenizer,
    )
    from repmix.core.config import LocatedConfig, load_config, parse_yaml
    from repmix.core.dataflow import (
        Alignment,
        AlignmentView,
        Encoded,
        EncoderSignature,
        Granularity,
        GranularitySpec,
        LossOutput,
        TowerView,
    )
    from repmix.core.errors import (
        ArtifactError,
        ConfigError,
        InputError,
        PipelineError,
        PluginError,
        RepmixError,
        did_you_mean,
    )
    from repmix.core.loading import load
    from repmix.core.model import AssembledModel, Model
    from repmix.core.spec import pydantic_error
    from repmix.engine.evaluation import evaluate_source
    from repmix.engine.training import train_run
    from repmix.registry import hookimpl, temporary_component
    from repmix.sdk.embedding import token_embedding
    from repmix.sdk.hf import load_hf_config, load_hf_model, resolve_model_dir
    from repmix.sdk.pooling import first_real_token, last_real_token, masked_max, masked_mean, masked_sum
    from repmix.sdk.tables import BadRows, Table, read_lines, read_table
    from repmix.sdk.vit import PatchViT, image_geometry, patchify


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'repmix.sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
