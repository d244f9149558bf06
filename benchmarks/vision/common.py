"""Shared helpers of the vision benchmarks: digits test split, loading a run's weights under overrides."""

from __future__ import annotations

from pathlib import Path

import numpy as np

OUT = Path("docs/results/vision")


def digits_test() -> tuple[list[np.ndarray], np.ndarray]:
    """The digits test split exactly as the configs' `digits` dataset serves it (split_seed 0, 25%)."""
    from repmix.sdk import LocatedConfig, build_component

    block = {"type": "digits", "split": "test"}
    ex = build_component(LocatedConfig({"data": block}), "dataset", block, ("data",)).load("test")
    return ex.columns["image"], np.array(ex.targets, dtype=int)


def load_run(run: str | Path, overrides: list[str] | None = None):  # type: ignore[no-untyped-def]
    """A run's final model; with overrides: rebuilt from its config with them, then its weights loaded."""
    import repmix
    from safetensors.torch import load_model

    run = Path(run)
    if not overrides:
        return repmix.load(run / "model")
    model = repmix.load(run / "config.yaml", overrides)  # the run's resolved config (paths as trained)
    load_model(model, str(run / "model" / "model.safetensors"), strict=True)
    return model.eval()
