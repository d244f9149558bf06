"""AdamW with per-component learning rates, and warm-up + decay schedules.

Each component block may set ``lr:``; its parameters then train at that rate
instead of ``train.lr``. A nested component (e.g. the base loss of a loss
modifier) without its own ``lr:`` inherits its parent's. Components with
``trainable: false`` are frozen by the builder and left out of the optimizer.
Weight decay applies to matrices (``dim >= 2``) only; biases and norm weights
get none, as in BERT and sentence-transformers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from repmix.engine.settings import TrainConfig


@dataclass
class GroupInfo:
    """Description of one optimizer parameter group (for reports and tests)."""

    name: str
    lr: float
    weight_decay: float
    num_params: int


def _effective_lr(path: tuple[Any, ...], planned: dict[tuple[Any, ...], Any], default: float) -> float:
    """The ``lr`` of the nearest component at or above ``path`` that sets one, else ``default``."""
    for cut in range(len(path), 0, -1):
        pc = planned.get(path[:cut])
        if pc is not None and pc.lr is not None:
            return float(pc.lr)
    return default


def param_groups(model: nn.Module, train: TrainConfig) -> tuple[list[dict[str, Any]], list[GroupInfo]]:
    """AdamW parameter groups: one (or two: decay / no decay) per component with trainable parameters.

    Every trainable parameter lands in exactly one group: the deepest
    component that owns it, or ``model`` for parameters outside any component.
    """
    components: dict[str, tuple[Any, Any]] = getattr(model, "components", {}) or {}
    planned = {pc.path: pc for _, pc in components.values()}
    owner: dict[int, str] = {}
    lr_of: dict[str, float] = {}
    for where, (instance, pc) in sorted(components.items(), key=lambda kv: -len(kv[1][1].path)):
        if not isinstance(instance, nn.Module):
            continue
        for p in instance.parameters():
            if p.requires_grad and id(p) not in owner:
                owner[id(p)] = where
        lr_of[where] = _effective_lr(tuple(pc.path), planned, train.lr)
    order = [where for where in components if where in lr_of]
    buckets: dict[tuple[str, bool], list[nn.Parameter]] = {}
    for p in model.parameters():
        if not p.requires_grad:
            continue
        where = owner.get(id(p), "model")
        buckets.setdefault((where, p.dim() >= 2), []).append(p)
    groups: list[dict[str, Any]] = []
    infos: list[GroupInfo] = []
    for where in [*order, "model"]:
        lr = lr_of.get(where, train.lr)
        for decay in (True, False):
            params = buckets.get((where, decay))
            if not params:
                continue
            name = where if decay else f"{where} (no decay)"
            wd = train.weight_decay if decay else 0.0
            groups.append({"params": params, "lr": lr, "weight_decay": wd, "name": name})
            infos.append(GroupInfo(name, lr, wd, sum(p.numel() for p in params)))
    return groups, infos


def lr_multiplier(schedule: str, warmup: int, total: int) -> Any:
    """The schedule as a function of the optimizer step: linear warm-up, then constant, linear or cosine decay.

    The same formulas as ``transformers.get_scheduler`` ("constant_with_warmup",
    "linear", "cosine"); tests check that they agree.
    """

    def factor(step: int) -> float:
        if step < warmup:
            return float(step) / float(max(1, warmup))
        if schedule == "constant":
            return 1.0
        progress = float(step - warmup) / float(max(1, total - warmup))
        if schedule == "linear":
            return max(0.0, 1.0 - progress)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))

    return factor


def make_optimizer(
    model: nn.Module, train: TrainConfig, total_steps: int
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR, list[GroupInfo]]:
    """AdamW over the trainable parameters and its warm-up/decay scheduler."""
    from repmix.core.errors import ConfigError

    groups, infos = param_groups(model, train)
    if not groups:
        raise ConfigError(
            "nothing to train: every component is frozen (trainable: false) or has no parameters",
            path="model",
            hint="set trainable: true on at least one component with weights",
        )
    optimizer = torch.optim.AdamW(groups, lr=train.lr, weight_decay=train.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_multiplier(train.schedule, train.warmup_for(total_steps), total_steps)
    )
    return optimizer, scheduler, infos
