"""The engine: training, resuming, evaluating, ablations and distributed runs.

Public API (imported lazily, so ``import repmix.engine`` stays cheap):

* :func:`train_run` — train a config into a run directory, or resume one;
* :func:`is_finished` — whether a run directory holds a completed run;
* :class:`TrainConfig` — the validated ``train:`` block;
* :func:`evaluate_source` — ``repmix evaluate`` on a run, saved model or config;
* :func:`build_component` — re-exported from :mod:`repmix.core.assembly`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "train_run": "repmix.engine.training",
    "TrainingInterrupted": "repmix.engine.training",
    "is_finished": "repmix.engine.runs",
    "is_run": "repmix.engine.runs",
    "read_metrics": "repmix.engine.runs",
    "TrainConfig": "repmix.engine.settings",
    "train_config": "repmix.engine.settings",
    "build_component": "repmix.core.assembly",
    "plan_evaluations": "repmix.engine.settings",
    "run_evaluations": "repmix.engine.evaluation",
    "evaluate_source": "repmix.engine.evaluation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'repmix.engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
