"""The ``train:`` and ``evaluate:`` blocks, and building datasets and evaluators from config.

``train:`` is validated by :class:`TrainConfig` (unknown keys are errors, each
located at its YAML line). ``evaluate:`` is one evaluator block or a list of
them; each block is an evaluator component (validated by its own ``Config``)
plus the engine keys in :data:`EVALUATE_KEYS`. Datasets and evaluators are
components like any other: :func:`build_component` resolves a block through
the registry and instantiates it the way :func:`repmix.core.assembly.build_model`
instantiates model components.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from repmix.core.assembly import PlannedComponent, plan_component
from repmix.core.config import LocatedConfig, PathKey, dotted
from repmix.core.spec import validate_pydantic
from repmix.registry.registry import Registry, get_registry

#: Keys of an ``evaluate:`` block read by the engine (removed before the evaluator sees it).
EVALUATE_KEYS: dict[str, str] = {
    "split": "which split of the data to evaluate on (default: the dataset's own split)",
    "data": "a dataset block for this evaluator (default: the top-level data block)",
    "name": "label of this evaluator's metrics when several evaluators are declared (default: its type)",
}


class TrainConfig(BaseModel):
    """The ``train:`` block. Every key is optional; unknown keys are errors.

    Types are strict (``batch_size: true`` or ``1e38`` is an error, not 1)
    and numbers must be finite (``lr: .inf`` is refused by ``repmix check``).
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), strict=True, allow_inf_nan=False)

    epochs: int = Field(1, ge=1, le=1_000_000, description="passes over the training split")
    batch_size: int = Field(
        32,
        ge=1,
        le=10_000_000,
        description="examples per forward pass, summed over all processes under torchrun (the global batch)",
    )
    lr: float = Field(2e-5, gt=0, description="AdamW learning rate of every component without its own 'lr:'")
    weight_decay: float = Field(
        0.01, ge=0, description="AdamW decoupled weight decay for matrices (biases and norm weights get none)"
    )
    seed: int = Field(0, description="seed of model initialisation, data order and every RNG")
    device: Literal["cpu", "cuda", "auto"] = Field(
        "cpu", description="cpu, cuda (one GPU per process under torchrun) or auto (cuda when available)"
    )
    schedule: Literal["constant", "linear", "cosine"] = Field(
        "linear", description="learning-rate decay after warm-up: constant, linear to 0, or cosine to 0"
    )
    warmup_steps: int | None = Field(
        None, ge=0, description="optimizer steps of linear warm-up from 0 (exclusive with warmup_ratio)"
    )
    warmup_ratio: float | None = Field(
        None, ge=0, le=1, description="warm-up as a fraction of all optimizer steps (exclusive with warmup_steps)"
    )
    max_grad_norm: float | None = Field(
        1.0, ge=0, description="clip the global gradient norm to this value; 0 or null disables clipping"
    )
    grad_accumulation: int = Field(
        1, ge=1, description="forward/backward passes accumulated per optimizer step"
    )
    checkpoint_every: int = Field(
        0, ge=0, description="write a checkpoint every N optimizer steps; 0 = only at the end of each epoch"
    )
    keep_checkpoints: int = Field(
        2, ge=1, description="how many of the most recent checkpoints to keep while the run is unfinished"
    )
    keep_checkpoints_when_finished: bool = Field(
        False,
        description="keep the checkpoints (weights + optimizer state) once the run has finished; by default "
        "a finished run keeps only its final model/",
    )
    on_nonfinite: Literal["stop", "skip"] = Field(
        "stop",
        description="a non-finite (nan/inf) loss or gradient: stop (keep the last good checkpoint, never "
        "mark the run finished) or skip that optimizer step and go on (each skip is logged)",
    )
    log_every: int = Field(10, ge=1, description="write a metrics.jsonl record every N optimizer steps")
    split: str | None = Field(
        None,
        description="the split of the data block to train on (default: the data block's own split, "
        "which is 'train' for the std datasets)",
    )
    max_steps: int | None = Field(
        None, ge=1, description="stop after this many optimizer steps (also the schedule's length)"
    )
    init_from: str | None = Field(
        None, description="a saved model or run directory whose tensors initialise this model's tensors of the "
        "same name and shape before training (fine-tuning a pre-trained run); the rest keep their initialisation",
    )
    max_minutes: float | None = Field(
        None, gt=0, description="time budget: stop after this many minutes of training (wall clock, summed "
        "over resumed sessions); the model is saved and evaluated as at the end of training",
    )
    max_cpu_minutes: float | None = Field(
        None, gt=0, description="time budget in CPU minutes of the training process (all its threads), "
        "immune to other jobs on a shared machine: 20 minutes on 2 busy cores is max_cpu_minutes: 40",
    )
    drop_last: bool = Field(False, description="skip the last, smaller batch of each epoch")
    evaluate_every_epoch: bool = Field(
        False, description="also run the evaluate block(s) at the end of every epoch, not only at the end"
    )
    gather_across_ranks: bool = Field(
        True,
        description="under torchrun, gather every process's embeddings before alignments and losses, so "
        "in-batch negatives span the global batch (false: each process sees its own shard only)",
    )
    deterministic: bool = Field(
        True, description="ask torch for deterministic algorithms (cuDNN, cuBLAS) where it offers them"
    )

    @model_validator(mode="after")
    def _one_warmup(self) -> TrainConfig:
        if self.warmup_steps is not None and self.warmup_ratio is not None:
            raise ValueError("give either warmup_steps or warmup_ratio, not both")
        return self

    def warmup_for(self, total_steps: int) -> int:
        """Warm-up length in optimizer steps for a run of ``total_steps``."""
        if self.warmup_steps is not None:
            return min(self.warmup_steps, total_steps)
        if self.warmup_ratio is not None:
            return int(round(self.warmup_ratio * total_steps))
        return 0


def train_config(cfg: LocatedConfig) -> TrainConfig:
    """Validate ``cfg``'s ``train:`` block (absent = all defaults)."""
    raw = cfg.data.get("train")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise cfg.error("train must be a mapping of training settings", ("train",), found=raw)
    return validate_pydantic(TrainConfig, raw, cfg, ("train",))  # type: ignore[return-value]




@dataclass
class EvaluationSpec:
    """One validated ``evaluate:`` block: its evaluator and the data it reads."""

    name: str
    path: PathKey
    evaluator: PlannedComponent
    dataset: PlannedComponent
    split: str | None

    @property
    def where(self) -> str:
        return dotted(self.path)


def evaluate_blocks(cfg: LocatedConfig) -> list[tuple[PathKey, Any]]:
    """The ``evaluate:`` blocks with their paths: none, one mapping, or a list of them."""
    raw = cfg.data.get("evaluate")
    if raw is None:
        return []
    if isinstance(raw, list):
        if not raw:
            return []
        return [(("evaluate", i), block) for i, block in enumerate(raw)]
    if isinstance(raw, dict):
        return [(("evaluate",), raw)]
    raise cfg.error(
        "evaluate must be an evaluator block or a list of them", ("evaluate",), found=raw,
        hint="for example: evaluate: {type: sts, split: dev}",
    )


def plan_evaluations(cfg: LocatedConfig, registry: Registry | None = None) -> list[EvaluationSpec]:
    """Validate every ``evaluate:`` block and the dataset block it reads, without building anything."""
    registry = registry or get_registry()
    specs: list[EvaluationSpec] = []
    names: dict[str, PathKey] = {}
    for path, block in evaluate_blocks(cfg):
        evaluator = plan_component(cfg, registry, "evaluator", block, path, EVALUATE_KEYS)
        split = block.get("split")
        if split is not None and not isinstance(split, str):
            raise cfg.error("'split' must be a split name", path + ("split",), found=split)
        if "data" in block:
            dataset = plan_component(cfg, registry, "dataset", block["data"], path + ("data",))
        else:
            if "data" not in cfg.data:
                raise cfg.error(
                    "this evaluator has no data: add a top-level data block or a 'data:' block here",
                    path,
                )
            dataset = plan_component(cfg, registry, "dataset", cfg.data["data"], ("data",))
        name = block.get("name", evaluator.type_name)
        if not isinstance(name, str) or not name:
            raise cfg.error("'name' must be a non-empty string", path + ("name",), found=name)
        if name in names:
            raise cfg.error(
                f"two evaluate blocks are both named {name!r} ({dotted(names[name])} and {dotted(path)})",
                path,
                hint="give each a distinct 'name:' so their metrics can be told apart",
            )
        names[name] = path
        specs.append(EvaluationSpec(name, path, evaluator, dataset, split))
    return specs


def plan_training_data(cfg: LocatedConfig, registry: Registry | None = None) -> PlannedComponent:
    """Validate the top-level ``data:`` block (required for training)."""
    if "data" not in cfg.data:
        raise cfg.error(
            "training needs a top-level data block", ("data",),
            hint="for example: data: {type: pairs, path: data/pairs.tsv}",
        )
    return plan_component(cfg, registry or get_registry(), "dataset", cfg.data["data"], ("data",))


def data_runtime(model: Any) -> Any:
    """The :class:`Runtime` a data block is built with: each tower's tokenizer (``runtime.tokenizers``),
    for datasets that tokenize (``text-corpus`` packing documents into token blocks)."""
    from repmix.core.components import Runtime

    return Runtime(tokenizers={name: model.tower(name).tokenizer for name in model.tower_names})
