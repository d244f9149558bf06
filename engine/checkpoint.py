"""Checkpoints: weights, optimizer, scheduler, RNG and data-order state, written atomically.

A checkpoint is a directory ``checkpoints/step-<N>/`` holding

* ``model.safetensors``: the model's weights (safetensors, shared tensors stored once);
* ``optimizer.pt``: the optimizer's ``state_dict`` (tensors, numbers, lists and
  dicts only), read back with ``torch.load(weights_only=True)``, which refuses
  arbitrary pickled objects;
* ``state.json``: step, epoch, position within the epoch's data permutation,
  the scheduler's state, every process's RNG states (base64 / lists) and the
  running loss sums the metrics log needs to continue seamlessly;
* ``config.yaml`` and ``plugins.lock``: the resolved config and plugin versions.

It is written under a temporary name and renamed when complete, so a process
killed while writing never leaves a checkpoint that looks usable.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repmix.core.artifacts import atomic_write_text
from repmix.engine.runs import CHECKPOINTS_DIR, CONFIG_FILE, LOCK_FILE, checkpoint_dirs
from repmix.core.errors import ArtifactError

WEIGHTS = "model.safetensors"
OPTIMIZER = "optimizer.pt"
STATE = "state.json"
CHECKPOINT_FORMAT = 1


@dataclass
class TrainState:
    """Where training stands: enough to continue exactly where it stopped.

    Attributes:
        step: optimizer steps taken so far.
        epoch: index of the current epoch (0-based).
        position: micro-batches of the current epoch's permutation already consumed.
        elapsed: seconds of training so far (over all sessions of the run).
        cpu_elapsed: CPU seconds of this process spent training so far (all its threads, all sessions).
        items: training examples processed so far.
        epoch_loss_sum, epoch_steps: running loss sum / step count of the current epoch.
        window: running sums since the last metrics.jsonl record (``steps``, ``loss`` and loss parts).
    """

    step: int = 0
    epoch: int = 0
    position: int = 0
    elapsed: float = 0.0
    cpu_elapsed: float = 0.0
    items: int = 0
    epoch_loss_sum: float = 0.0
    epoch_steps: int = 0
    window: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainState:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.cpu().numpy().tobytes()).decode("ascii")


def _unb64(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8).clone()


def capture_rng() -> dict[str, Any]:
    """This process's RNG states (python, numpy, torch, CUDA) as JSON-ready data."""
    py_version, py_state, py_gauss = random.getstate()
    np_state = np.random.get_state()
    out: dict[str, Any] = {
        "python": [py_version, list(py_state), py_gauss],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": _b64(torch.get_rng_state()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = [_b64(s) for s in torch.cuda.get_rng_state_all()]
    return out


def restore_rng(state: dict[str, Any]) -> None:
    """Restore RNG states captured by :func:`capture_rng`."""
    version, py_state, gauss = state["python"]
    random.setstate((version, tuple(py_state), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(_unb64(state["torch"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = [_unb64(s) for s in state["cuda"]]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def _json_ready(value: Any) -> Any:
    """Scheduler state as plain JSON data (tensors become numbers or lists)."""
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    return value


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(
    run_dir: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: TrainState,
    rng: list[dict[str, Any]],
    *,
    config_text: str,
    lock_text: str,
    keep: int = 2,
) -> Path:
    """Write ``checkpoints/step-<state.step>/`` atomically and prune all but the newest ``keep``."""
    from safetensors.torch import save_model as st_save_model

    root = run_dir / CHECKPOINTS_DIR
    final = root / f"step-{state.step}"
    tmp = root / f".step-{state.step}.tmp-{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        st_save_model(model, str(tmp / WEIGHTS), metadata={"format": "repmix-checkpoint"})
        with (tmp / OPTIMIZER).open("wb") as fh:
            torch.save(optimizer.state_dict(), fh)
            fh.flush()
            os.fsync(fh.fileno())
        atomic_write_text(tmp / CONFIG_FILE, config_text)
        atomic_write_text(tmp / LOCK_FILE, lock_text)
        payload = {
            "format": CHECKPOINT_FORMAT,
            **asdict(state),
            "scheduler": _json_ready(scheduler.state_dict()),
            "rng": rng,
        }
        atomic_write_text(tmp / STATE, json.dumps(payload) + "\n")
        _fsync_dir(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(root)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ArtifactError(
            f"cannot write checkpoint {str(final)!r}: {exc.strerror or exc}",
            hint="free disk space or make the run directory writable, then resume with "
            f"repmix train --resume {run_dir}",
        ) from None
    for _, old in checkpoint_dirs(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def remove_partial_checkpoints(run_dir: Path) -> None:
    """Delete temporary checkpoint directories left by a process killed while writing one."""
    root = run_dir / CHECKPOINTS_DIR
    if root.is_dir():
        for child in root.iterdir():
            if child.name.startswith(".step-"):
                shutil.rmtree(child, ignore_errors=True)


def load_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    device: torch.device,
) -> tuple[TrainState, list[dict[str, Any]]]:
    """Restore model, optimizer and scheduler from a checkpoint; return its state and RNG states.

    Nothing is unpickled: weights come from safetensors, the optimizer state
    through ``torch.load(weights_only=True)``, everything else from JSON.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_model as st_load_model

    try:
        payload = json.loads((path / STATE).read_text(encoding="utf-8"))
        missing, unexpected = st_load_model(model, str(path / WEIGHTS), strict=False, device=str(device))
        if missing or unexpected:
            raise ArtifactError(
                f"checkpoint {str(path)!r} does not fit the model built from the run's config "
                f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})"
            )
        opt_state = torch.load(path / OPTIMIZER, map_location=device, weights_only=True)
        optimizer.load_state_dict(opt_state)
        scheduler.load_state_dict(payload["scheduler"])
    except (OSError, ValueError, KeyError, SafetensorError, RuntimeError, pickle.UnpicklingError) as exc:
        raise ArtifactError(f"checkpoint {str(path)!r} is unreadable: {exc}") from None
    return TrainState.from_json(payload), list(payload.get("rng") or [])
