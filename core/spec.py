"""The shape of a config (DESIGN.md §3) and validation with located errors.

Top-level keys: ``model`` (towers, alignments, losses), ``data``, ``train``,
``evaluate``. Each ``{type: ...}`` block is validated by that component's own
pydantic ``Config``; the keys below are read by repmix itself and are removed
before the component sees its block.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from repmix.core.config import LocatedConfig, PathKey, dotted
from repmix.core.errors import ConfigError, did_you_mean

#: Keys every component block may carry, read by the engine, not by the component.
COMMON_KEYS: dict[str, str] = {
    "type": "the registered component name (plugin.name or a unique short name)",
    "trainable": "false freezes the component's parameters (default true)",
    "lr": "learning rate for this component's parameters (default: train.lr)",
}
ALIGNMENT_KEYS: dict[str, str] = {"between": "[tower.granularity, tower.granularity]"}
LOSS_KEYS: dict[str, str] = {
    "on": "alignment name, or a list of them, the loss reads",
    "weight": "weight of this loss in the objective (default 1.0)",
}
TOP_LEVEL_KEYS: dict[str, str] = {
    "model": "towers, alignments and losses",
    "data": "the dataset block (type: ...)",
    "train": "training settings",
    "evaluate": "evaluator block(s)",
    "generate": "decoding-strategy block used by repmix generate (e.g. type: top-p)",
    "name": "a free-form name for the run",
    "description": "free-form text",
}
TOWER_KEYS: dict[str, str] = {
    "tokenizer": "tokenizer block",
    "encoder": "encoder block",
    "poolers": "granularity name -> pooler block",
    "shared_with": "name of another tower whose components this tower reuses",
    "corruption": "corruptor block applied to training batches only (e.g. masked-LM masking)",
}
MODEL_KEYS: dict[str, str] = {
    "towers": "tower name -> tower",
    "alignments": "alignment name -> aligner block with between:",
    "losses": "list of loss blocks with on: and weight:",
}


def validate_pydantic(
    model_cls: type[BaseModel],
    values: dict[str, Any],
    cfg: LocatedConfig,
    base: PathKey,
    *,
    extra_allowed: list[str] | None = None,
    what: str = "",
) -> BaseModel:
    """Validate ``values`` with ``model_cls``; turn the first error into a located :class:`ConfigError`.

    Non-finite numbers (``.inf``, ``.nan``) are refused in every block: no
    hyper-parameter means anything at infinity, and one would only show up as
    NaN weights after training.
    """
    bad = _non_finite(values, ())
    if bad is not None:
        where, value = bad
        prefix = f"{what}: " if what else ""
        raise cfg.error(f"{prefix}numbers must be finite, found {value!r}", base + where, found=value)
    try:
        return model_cls.model_validate(values)
    except ValidationError as exc:
        raise pydantic_error(exc, model_cls, values, cfg, base, extra_allowed=extra_allowed, what=what) from None


def _non_finite(value: Any, path: PathKey) -> tuple[PathKey, float] | None:
    """The first non-finite float inside ``value`` (mappings and lists), with its relative path."""
    if isinstance(value, float) and not math.isfinite(value):
        return path, value
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        found = _non_finite(v, path + (k,))
        if found is not None:
            return found
    return None


def pydantic_error(
    exc: ValidationError,
    model_cls: type[BaseModel],
    values: dict[str, Any],
    cfg: LocatedConfig,
    base: PathKey,
    *,
    extra_allowed: list[str] | None = None,
    what: str = "",
) -> ConfigError:
    """A :class:`ConfigError` for the first error of a pydantic validation."""
    err = exc.errors()[0]
    loc = tuple(err.get("loc", ()))
    path = base + loc
    found = err.get("input")
    etype = err.get("type", "")
    prefix = f"{what}: " if what else ""
    if etype == "extra_forbidden":
        key = loc[-1] if loc else "?"
        fields = list(model_cls.model_fields) if len(loc) == 1 else []
        allowed = sorted(set(fields + (extra_allowed or []))) if fields else None
        return cfg.error(f"{prefix}unknown key {key!r}", path, found=key, allowed=allowed)
    if etype == "missing":
        return cfg.error(f"{prefix}missing required key {loc[-1]!r}", path)
    allowed_values = None
    ctx = err.get("ctx") or {}
    if "expected" in ctx:
        allowed_values = [s.strip().strip("'") for s in str(ctx["expected"]).replace(" or ", ",").split(",") if s.strip()]
    msg = err.get("msg", "invalid value")
    return cfg.error(f"{prefix}{msg}", path, found=found, allowed=allowed_values)


def check_keys(
    cfg: LocatedConfig, path: PathKey, value: Any, allowed: dict[str, str], *, what: str, required: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Require ``value`` to be a mapping with only ``allowed`` keys and every ``required`` key."""
    if not isinstance(value, dict):
        raise cfg.error(
            f"{what} must be a mapping, found {type(value).__name__}", path, found=value
        )
    for key in value:
        if key not in allowed:
            raise cfg.error(f"unknown key {key!r} in {what}", path + (key,), found=key, allowed=list(allowed))
    for key in required:
        if key not in value:
            raise cfg.error(f"{what} is missing required key {key!r}", path)
    return value


def component_type(cfg: LocatedConfig, path: PathKey, block: Any, kind: str) -> str:
    """The ``type:`` of a component block, with clear errors when absent or malformed."""
    if isinstance(block, str):
        raise cfg.error(
            f"a {kind} must be a mapping with 'type:', found the string {block!r}",
            path,
            hint=f"write {{type: {block}}}",
        )
    if not isinstance(block, dict):
        raise cfg.error(f"a {kind} must be a mapping with 'type:', found {type(block).__name__}", path, found=block)
    if "type" not in block:
        raise cfg.error(f"{kind} block is missing required key 'type'", path)
    t = block["type"]
    if not isinstance(t, str) or not t:
        raise cfg.error(f"{kind} 'type' must be a non-empty string", path + ("type",), found=t)
    return t


def split_ref(cfg: LocatedConfig, path: PathKey, ref: Any, towers: dict[str, set[str]]) -> tuple[str, str]:
    """``"text.token"`` -> ("text", "token"), checking the tower and granularity exist."""
    if not isinstance(ref, str) or "." not in ref:
        raise cfg.error(
            "expected tower.granularity", path, found=ref, hint="for example: text.sentence"
        )
    tower, _, gran = ref.partition(".")
    if tower not in towers:
        raise cfg.error(f"'between:' names tower {tower!r}, which does not exist", path, found=tower, allowed=sorted(towers))
    if gran not in towers[tower]:
        raise cfg.error(
            f"tower {tower!r} has no granularity {gran!r}",
            path,
            found=gran,
            allowed=sorted(towers[tower]),
        )
    return tower, gran



__all__ = [
    "ALIGNMENT_KEYS",
    "COMMON_KEYS",
    "LOSS_KEYS",
    "MODEL_KEYS",
    "TOP_LEVEL_KEYS",
    "TOWER_KEYS",
    "check_keys",
    "component_type",
    "did_you_mean",
    "dotted",
    "pydantic_error",
    "split_ref",
    "validate_pydantic",
]
