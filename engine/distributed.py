"""Multi-process training under ``torchrun``: process group, sharding, gathering embeddings.

``torchrun`` starts one process per device and sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed`
reads them and joins the process group (gloo on CPU, NCCL on CUDA). Each
process takes its contiguous slice of the same seeded global batch; DDP
averages gradients. Contrastive losses need the other processes' items as
negatives, so :class:`Objective` gathers every tower output across processes
(with gradients flowing back to the process that produced each item) before
alignments and losses run: every process then computes the loss of the whole
global batch, exactly as a single process would.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from repmix.core.dataflow import Encoded, Granularity


@dataclass
class DistContext:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        """True when more than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on the process that writes files and evaluates (rank 0)."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every process."""
        if self.enabled:
            dist.barrier()

    def mean(self, value: float, device: torch.device) -> float:
        """The mean of ``value`` over processes."""
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return float(t.item()) / self.world_size

    def any(self, flag: bool, device: torch.device) -> bool:
        """True when ``flag`` is true on any process."""
        if not self.enabled:
            return flag
        t = torch.tensor([1 if flag else 0], dtype=torch.int64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every process's ``obj`` (picklable plain data), in rank order."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def shard(self, indices: Tensor) -> Tensor:
        """This process's contiguous slice of a global batch (sizes differ by at most one)."""
        if not self.enabled:
            return indices
        return torch.tensor_split(indices, self.world_size)[self.rank]

    def close(self, *, finished: bool = False) -> None:
        """Leave the process group if this context created it.

        ``finished``: training ended normally on every process, which all call
        this together. They wait for each other first, so no process tears its
        connections down while another still uses them, and garbage is collected
        so that what still references the group (the DDP reducer) goes while the
        interpreter is fully alive: a gloo group released at interpreter exit
        can abort a process that finished ("terminate called without an active
        exception"), and torchrun then reports the run as failed. Without
        ``finished`` (after an error) nobody waits: the others may never get here.
        """
        if finished and self.enabled and dist.is_initialized():
            dist.barrier()
        if self.owns_group and dist.is_initialized():
            gc.collect()
            dist.destroy_process_group()
            self.owns_group = False


def torchrun_world_size() -> int:
    """The ``WORLD_SIZE`` torchrun set, or 1 outside torchrun."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def init_distributed(use_cuda: bool, timeout_minutes: float = 120.0) -> DistContext:
    """Join the torchrun process group when one is configured; otherwise a single-process context."""
    if dist.is_available() and dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    world = torchrun_world_size()
    if world <= 1 or not dist.is_available():
        return DistContext()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(
        backend="nccl" if use_cuda else "gloo",
        timeout=timedelta(minutes=timeout_minutes),
        **({"device_id": torch.device("cuda", local_rank)} if use_cuda else {}),
    )
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, owns_group=True)


class _GatherWithGrad(torch.autograd.Function):
    """All-gather equal-shaped tensors into [world, ...]; the backward pass sums the
    gradients every process computed for this process's slice."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:  # type: ignore[override]
        ctx.rank = dist.get_rank()
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        return torch.stack(parts)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank]


def gather_tensor(tensor: Tensor) -> Tensor:
    """Concatenate every process's ``tensor`` along dim 0 (differentiable).

    Shapes may differ: every dimension is zero-padded to the largest size over
    processes, then each process's padding along dim 0 is removed again (so
    sequence dimensions stay padded to the global maximum).
    """
    world = dist.get_world_size()
    shape = torch.tensor(list(tensor.shape), dtype=torch.int64, device=tensor.device)
    shapes = [torch.empty_like(shape) for _ in range(world)]
    dist.all_gather(shapes, shape)
    sizes = [[int(v) for v in s.tolist()] for s in shapes]
    target = [max(s[d] for s in sizes) for d in range(tensor.dim())]
    pad: list[int] = []
    for d in reversed(range(tensor.dim())):
        pad += [0, target[d] - tensor.shape[d]]
    padded = F.pad(tensor, pad) if any(pad) else tensor
    if tensor.requires_grad:
        stacked = _GatherWithGrad.apply(padded)
    else:
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded.contiguous())
        stacked = torch.stack(parts)
    return torch.cat([stacked[r, : sizes[r][0]] for r in range(world)])


def _gather_mask(mask: Tensor) -> Tensor:
    return gather_tensor(mask.to(torch.int64)).bool()


def gather_granularity(g: Granularity) -> Granularity:
    """A granularity holding every process's items (sequence masks padded with False)."""
    hidden = gather_tensor(g.hidden)
    if g.hidden.dim() == 2 and g.mask is None:
        return Granularity(hidden, None)
    return Granularity(hidden, _gather_mask(g.full_mask()))


def gather_encoded(e: Encoded) -> Encoded:
    """Every granularity and per-layer state of a tower output, gathered over processes.

    ``extras`` stay local: they are free-form and may not be tensors.
    """
    grans = {name: gather_granularity(g) for name, g in e.granularities.items()}
    layers = tuple(gather_tensor(t) for t in e.layers) if e.layers is not None else None
    return Encoded(grans, layers, e.layers_of, dict(e.extras))


class Objective(nn.Module):
    """The training objective as one module (what DDP wraps): encode, gather, align, loss.

    Returns ``(loss, logs)``: the scalar loss tensor (``None`` when no loss
    applies to the inputs) and the model's named float logs. Only the loss is
    a tensor, so DDP's search for unused parameters starts from it alone.
    """

    def __init__(self, model: nn.Module, gather: bool = False) -> None:
        super().__init__()
        self.model = model
        self.gather = gather and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1

    def forward(
        self, inputs: dict[str, list[Any]], targets: Tensor | None = None
    ) -> tuple[Tensor | None, dict[str, float]]:
        model: Any = self.model
        outputs = {name: model.encode_for_losses(name, items) for name, items in inputs.items()}
        if self.gather:
            outputs = {name: gather_encoded(enc) for name, enc in outputs.items()}
            if targets is not None:
                targets = gather_tensor(targets)
        out = model.objective(outputs, targets)
        return out.loss, dict(out.logs)
