"""One call from a config file, a saved model or a run directory to a model: :func:`load`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from repmix.core.errors import InputError
from repmix.core.model import Model


def load(
    source: str | Path,
    overrides: Sequence[str] | None = None,
    device: str = "cpu",
    *,
    allow_mismatch: bool | None = None,
) -> Model:
    """A ready-to-use model (in eval mode) from ``source``.

    ``source`` is a YAML config (the model is built fresh, pretrained weights
    loaded where its components have them; ``overrides`` are dotted
    ``key=value`` changes), a saved-model directory (``repmix build``,
    :meth:`Model.save`) or a run directory (its final ``model/``). Saved models
    are verified (checksums, plugin lock) and never unpickled; ``allow_mismatch``
    loads one whose plugin versions differ from its lock (or that has no lock).
    """
    path = Path(source)
    if path.is_dir():
        if overrides:
            raise InputError(
                "overrides apply to a config file, not to a saved model",
                hint="a saved model is loaded exactly as it was saved",
            )
        from repmix.core.artifacts import load_model

        return load_model(path, device=device, allow_mismatch=allow_mismatch)
    from repmix.core.assembly import build_model, plan_model
    from repmix.core.config import load_config

    model = build_model(plan_model(load_config(path, list(overrides or []))))
    return model.to(device).eval()
