"""The engine: training, resuming, evaluating, ablations and distributed runs.

Public API (imported lazily, so ``import repmix.core.engine`` stays cheap):

* :func:`train_run` — train a config into a run directory, or resume one;
* :func:`is_finished` — whether a run directory holds a completed run;
* :class:`TrainConfig` — the validated ``train:`` block;
* :func:`evaluate_source` — ``repmix evaluate`` on a run, saved model or config;
* :func:`build_component` — resolve and instantiate a dataset/evaluator block.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "train_run": "repmix.core.engine.training",
    "TrainingInterrupted": "repmix.core.engine.training",
    "is_finished": "repmix.core.engine.runs",
    "is_run": "repmix.core.engine.runs",
    "read_metrics": "repmix.core.engine.runs",
    "TrainConfig": "repmix.core.engine.config",
    "train_config": "repmix.core.engine.config",
    "build_component": "repmix.core.engine.config",
    "plan_evaluations": "repmix.core.engine.config",
    "run_evaluations": "repmix.core.engine.evaluation",
    "evaluate_source": "repmix.core.engine.evaluation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'repmix.core.engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
