"""Training: ``train_run`` turns a config into a finished run directory.

One loop serves one process and ``torchrun`` alike. Each epoch draws a
permutation of the training split from a generator seeded with
``seed + epoch``; it is cut into global batches of ``train.batch_size``, and
under torchrun each process takes its contiguous slice of every batch. After
``grad_accumulation`` batches the gradients (averaged over processes by DDP)
are clipped and AdamW steps; the scheduler follows. A checkpoint after an
optimizer step records the epoch and how many batches of its permutation were
consumed, so a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

import repmix
from repmix.core.artifacts import (
    atomic_write_text,
    init_weights_from,
    plugin_lock,
    remove_leftover_tmp,
    save_model,
    write_model_card,
)
from repmix.core.assembly import build_model, instantiate_component, plan_model
from repmix.core.config import LocatedConfig, dump_yaml, load_config
from repmix.core.components import Examples
from repmix.engine.checkpoint import (
    TrainState,
    capture_rng,
    load_checkpoint,
    remove_partial_checkpoints,
    restore_rng,
    save_checkpoint,
)
from repmix.engine.settings import (
    EvaluationSpec,
    TrainConfig,
    data_runtime,
    plan_evaluations,
    plan_training_data,
    train_config,
)
from repmix.engine.distributed import DistContext, Objective, init_distributed
from repmix.engine.evaluation import check_items, print_skipped, run_evaluations, skipped_rows
from repmix.engine.optim import make_optimizer
from repmix.engine.report import plot_loss, write_report
from repmix.engine.runs import (
    CONFIG_FILE,
    LOCK_FILE,
    LOSS_PLOT,
    METRICS_FILE,
    METRICS_LOG,
    CHECKPOINTS_DIR,
    MODEL_DIR,
    RUN_ENTRIES,
    RUN_FILE,
    RUN_FORMAT,
    MetricsLog,
    config_differences,
    is_finished,
    is_run,
    latest_checkpoint,
    locked_dir,
    read_metrics,
    read_metrics_log,
)
from repmix.core.errors import ArtifactError, ConfigError, InputError, RepmixError


class TrainingInterrupted(RepmixError):
    """Training stopped on Ctrl-C after writing a checkpoint (exit status 130)."""

    exit_code = 130


class NonFiniteTraining(RepmixError):
    """The loss or a gradient became nan/inf; training stopped before applying it."""


@contextlib.contextmanager
def _writing(what: str, path: Path) -> Iterator[None]:
    """Turn a failed write (disk full, read-only directory) into one clear :class:`ArtifactError`."""
    try:
        yield
    except OSError as exc:
        raise ArtifactError(
            f"cannot write {what} to {str(path)!r}: {exc.strerror or exc}",
            hint="free disk space or make the run directory writable; the run is not marked finished "
            "and can be resumed with repmix train --resume",
        ) from None


class _StopRequest:
    """Ctrl-C handling: the first SIGINT asks training to stop after the current step."""

    def __init__(self, announce: bool) -> None:
        self.requested = False
        self.announce = announce
        self._previous: Any = None
        self._installed = False

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self.announce:
            print(
                "\ninterrupt: finishing this step and writing a checkpoint (press Ctrl-C again to stop at once)",
                file=sys.stderr,
                flush=True,
            )

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global RNGs (all CUDA devices included)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


@contextlib.contextmanager
def _deterministic(enabled: bool, use_cuda: bool) -> Iterator[None]:
    """Ask torch for deterministic CUDA kernels while training; restore the previous settings after.

    CPU kernels are deterministic for a fixed thread count already, and
    ``torch.use_deterministic_algorithms`` costs seconds of imports, so this
    only acts on CUDA.
    """
    if not (enabled and use_cuda):
        yield
        return
    prev = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev[0], warn_only=prev[1])
        torch.backends.cudnn.deterministic = prev[2]
        torch.backends.cudnn.benchmark = prev[3]


def resolve_device(train: TrainConfig) -> bool:
    """True when training runs on CUDA; a clear error when CUDA is asked for but absent."""
    if train.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "train.device is cuda, but torch sees no CUDA device",
            path="train.device",
            found="cuda",
            allowed=["cpu", "auto"],
            hint=f"this torch is {torch.__version__}; use device: cpu or auto",
        )
    return train.device == "cuda" or (train.device == "auto" and torch.cuda.is_available())


def check_run_dir(cfg: LocatedConfig, run_dir: Path, *, resume: bool, force: bool) -> str:
    """Decide what to do with ``run_dir``: ``"finished"`` (resume of a done run), ``"resume"`` or ``"fresh"``.

    Refuses (with a :class:`RepmixError`) to resume what is not a run or a run
    whose config changed, and to overwrite a run unless ``force``.
    """
    shown = str(run_dir)
    if resume:
        if not run_dir.is_dir():
            raise ArtifactError(f"cannot resume {shown!r}: no such directory")
        if not is_run(run_dir):
            raise ArtifactError(
                f"cannot resume {shown!r}: it is not a repmix run directory (it has no {RUN_FILE})",
                hint="pass the directory that repmix train created (its -o / RUN_DIR)",
            )
        try:
            stored = load_config(run_dir / CONFIG_FILE).data
        except RepmixError as err:
            raise ArtifactError(f"cannot resume {shown!r}: its {CONFIG_FILE} is unreadable ({err.message})") from None
        diffs = config_differences(stored, cfg.data)
        if diffs:
            listed = ", ".join(diffs[:12]) + (f" and {len(diffs) - 12} more" if len(diffs) > 12 else "")
            raise ArtifactError(
                f"cannot resume {shown!r}: the config differs from the run's own at {listed}",
                hint="resume with the run's config (repmix train --resume RUN_DIR, no config or overrides), "
                "or start a new run in another directory",
            )
        return "finished" if is_finished(run_dir) else "resume"
    if is_finished(run_dir) and not force:
        raise ArtifactError(
            f"{shown!r} already holds a finished run",
            hint="choose another output directory, or pass --force to overwrite it",
        )
    if is_run(run_dir) and not force:
        raise ArtifactError(
            f"{shown!r} holds an unfinished run",
            hint=f"continue it with repmix train --resume {shown}, or pass --force to start over",
        )
    return "fresh"


def _clear_run(run_dir: Path) -> None:
    import shutil

    for name in RUN_ENTRIES:
        p = run_dir / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()


class _Trainer:
    """One process's part of one ``train_run`` call."""

    def __init__(
        self,
        cfg: LocatedConfig,
        run_dir: Path,
        ctx: DistContext,
        train: TrainConfig,
        use_cuda: bool,
        progress: bool,
        plans: tuple[Any, Any, list[EvaluationSpec]],
    ) -> None:
        self.cfg = cfg
        self.plan, self.data_plan, self.specs = plans
        self.run_dir = run_dir
        self.ctx = ctx
        self.train = train
        self.device = torch.device("cuda", ctx.local_rank) if use_cuda else torch.device("cpu")
        self.progress = progress and ctx.is_main
        self.log = MetricsLog(run_dir / METRICS_LOG, enabled=ctx.is_main)
        self.hooks: Any = None
        self.total_steps = 0
        self.state = TrainState()
        self.model: Any = None
        self.optimizer: Any = None
        self.scheduler: Any = None
        self.lock_text = ""
        #: Optimizer steps skipped for a non-finite loss or gradient (``on_nonfinite: skip``).
        self.skipped: list[int] = []
        #: Data rows skipped (``on_error: skip``), per data split, for metrics.json and report.md.
        self.skipped_rows: dict[str, dict[str, Any]] = {}
        #: Examples each final evaluate block read (chance levels in report.md).
        self.eval_sizes: dict[str, int] = {}

    # ------------------------------------------------------------------ setup
    def load_training_data(self, model: Any) -> tuple[Examples, list[str]]:
        """The training split and the towers its columns feed."""
        dataset = instantiate_component(self.cfg, self.data_plan, data_runtime(model))
        started = time.perf_counter()
        if self.progress:
            print(f"loading the training data ({self.data_plan.type_name}) ...", file=sys.stderr, flush=True)
        examples = dataset.load(self.train.split)
        if self.progress:
            print(f"loaded {len(examples)} training examples in {time.perf_counter() - started:.1f} s",
                  file=sys.stderr, flush=True)
        if len(examples) == 0:
            which = repr(self.train.split) if self.train.split else "configured"
            raise InputError(f"the {which} split of the data block has no examples to train on")
        towers = [t for t in examples.columns if t in model.tower_names]
        if not towers:
            raise ConfigError(
                f"the data's columns ({', '.join(examples.columns)}) match no tower of the model "
                f"({', '.join(model.tower_names)})",
                path="data",
                hint="datasets name their columns after the towers that read them",
            )
        if examples.targets is not None and len(examples.targets) != len(examples):
            raise InputError(f"the data has {len(examples)} examples but {len(examples.targets)} targets")
        check_items(model, examples, towers, what="training data")  # before any step, not when a batch is reached
        info = skipped_rows(examples)
        if info is not None:
            self.skipped_rows[f"data ({self.data_plan.type_name}, training split)"] = info
            if self.ctx.is_main:
                print_skipped({"training data": info})
        if examples.targets is None:
            for i, loss in enumerate(model.losses):
                if getattr(loss, "needs_targets", False):
                    raise ConfigError(
                        f"loss {type(loss).__name__} needs per-example targets (such as gold scores), "
                        "but the training data has none",
                        path=f"model.losses.{i}",
                        hint="use a dataset that provides targets (e.g. one with a target column)",
                    )
        return examples, towers

    def epoch_batches(self, n: int, epoch: int) -> list[torch.Tensor]:
        """The global batches of ``epoch``: a permutation seeded with ``seed + epoch``, cut in batches."""
        g = torch.Generator()
        g.manual_seed(self.train.seed + epoch)
        perm = torch.randperm(n, generator=g)
        batches = list(torch.split(perm, self.train.batch_size))
        if batches and self.train.drop_last and len(batches[-1]) < self.train.batch_size:
            batches.pop()
        if batches and self.ctx.enabled and len(batches[-1]) < self.ctx.world_size:
            batches.pop()  # too small to give every process at least one example
        return batches

    def write_start(self, model: Any, *, fresh: bool) -> None:
        """Write the run's top-level files: run.json, config.yaml, plugins.lock (rank 0)."""
        if not self.ctx.is_main:
            return
        with _writing("the run directory", self.run_dir):
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.run_dir / CONFIG_FILE, dump_yaml(self.cfg.data))
            atomic_write_text(self.run_dir / LOCK_FILE, json.dumps(plugin_lock(model), indent=2) + "\n")
            if fresh or not (self.run_dir / RUN_FILE).is_file():
                info = {
                    "format": RUN_FORMAT,
                    "repmix": repmix.__version__,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    "source": self.cfg.source,
                    "world_size": self.ctx.world_size,
                }
                atomic_write_text(self.run_dir / RUN_FILE, json.dumps(info, indent=2) + "\n")
            if fresh:
                atomic_write_text(self.run_dir / METRICS_LOG, "")

    def restore(self, mode: str) -> None:
        """Load the last checkpoint when resuming (and drop metrics logged after it)."""
        checkpoint = latest_checkpoint(self.run_dir) if mode == "resume" else None
        if self.ctx.is_main and mode == "resume":
            remove_partial_checkpoints(self.run_dir)
            remove_leftover_tmp(self.run_dir)  # e.g. a half-written model/.model.safetensors.*.tmp
        if checkpoint is not None:
            self.state, rngs = load_checkpoint(checkpoint, self.model, self.optimizer, self.scheduler, self.device)
            if rngs:
                restore_rng(rngs[self.ctx.rank] if len(rngs) == self.ctx.world_size else rngs[0])
            if self.ctx.is_main:
                print(
                    f"resuming {self.run_dir} from {checkpoint.name} "
                    f"(epoch {self.state.epoch + 1}, step {self.state.step} of {self.total_steps})",
                    file=sys.stderr,
                )
        if mode == "resume" and self.ctx.is_main:
            with _writing("metrics", self.log.path):
                self.log.truncate_after(self.state.step)

    # --------------------------------------------------------------- helpers
    def _lr(self) -> float:
        """The scheduled learning rate of components without their own ``lr:``, for the next step."""
        factor = self.scheduler.lr_lambdas[0](self.scheduler.last_epoch)
        return float(self.train.lr * factor)

    def _checkpoint(self) -> Path:
        """Write a checkpoint of the current state (rank 0; every process contributes its RNG state)."""
        rngs = self.ctx.gather_objects(capture_rng())
        path = self.run_dir / "checkpoints" / f"step-{self.state.step}"
        if self.ctx.is_main:
            path = save_checkpoint(
                self.run_dir,
                self.model,
                self.optimizer,
                self.scheduler,
                self.state,
                rngs,
                config_text=dump_yaml(self.cfg.data),
                lock_text=self.lock_text,
                keep=self.train.keep_checkpoints,
            )
        self.ctx.barrier()
        return path

    def _record(self, record: dict[str, Any]) -> None:
        if self.ctx.is_main:
            with _writing("metrics", self.log.path):
                self.log.write(record)

    def _mean_loss(self, logs: dict[str, float]) -> dict[str, float]:
        """``logs`` with the loss averaged over processes (identical already when embeddings are gathered).

        Other logged values stay this process's own: losses may log different
        keys on different processes, and a collective over them could hang.
        """
        if self.ctx.enabled:
            logs = {**logs, "loss": self.ctx.mean(logs["loss"], self.device)}
        return logs

    def _interrupted(self, where: str, checkpoint: Path) -> TrainingInterrupted:
        return TrainingInterrupted(
            f"training interrupted {where}; checkpoint written to {checkpoint}",
            hint=f"resume with: repmix train --resume {self.run_dir}",
        )

    # ------------------------------------------------------------------ steps
    def _step(
        self,
        objective: torch.nn.Module,
        micro_batches: list[torch.Tensor],
        examples: Examples,
        towers: list[str],
        trainable: list[torch.nn.Parameter],
    ) -> tuple[dict[str, float], float, int]:
        """One optimizer step over ``micro_batches`` (gradient accumulation).

        Each micro-batch's loss is divided by their number, so a per-example
        mean loss gives the same gradient as one batch of all of them. Under
        DDP, gradients are synchronised on the last micro-batch only.
        Returns the mean logs (loss first), the learning rate used and the
        number of examples processed over all processes.
        """
        n_micro = len(micro_batches)
        sums: dict[str, float] = {"loss": 0.0}
        items = 0
        for m, batch in enumerate(micro_batches):
            local = self.ctx.shard(batch).tolist()
            inputs = {t: [examples.columns[t][j] for j in local] for t in towers}
            targets = None
            if examples.targets is not None:
                targets = torch.tensor([examples.targets[j] for j in local], dtype=torch.float32, device=self.device)
            last = m + 1 == n_micro
            sync = objective.no_sync() if self.ctx.enabled and not last else contextlib.nullcontext()  # type: ignore[operator]
            with sync:
                loss, logs = objective(inputs, targets)
                if loss is None:
                    raise ConfigError(
                        f"no loss applies to the training data's towers ({', '.join(towers)})",
                        path="model.losses",
                        hint="every loss reads alignments between towers the data provides",
                    )
                (loss / n_micro).backward()
            sums["loss"] += float(loss.detach()) / n_micro
            for k, v in logs.items():
                if k != "loss":
                    sums[k] = sums.get(k, 0.0) + float(v) / n_micro
            items += len(batch)
        if not self._finite(sums["loss"], trainable):
            return {}, self._lr(), items
        if self.train.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(trainable, self.train.max_grad_norm)
        lr = self._lr()
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return self._mean_loss(sums), lr, items

    def _finite(self, loss: float, trainable: list[torch.nn.Parameter]) -> bool:
        """True when the loss and every gradient are finite (on every process).

        Otherwise, with ``on_nonfinite: stop`` (the default) raise
        :class:`NonFiniteTraining` before the optimizer applies anything, so
        the weights, the last checkpoint and the run's unfinished state stay
        good; with ``skip`` drop the gradients, log the skip and return False.
        """
        grads = [p.grad for p in trainable if p.grad is not None]
        bad = not math.isfinite(loss) or (
            bool(grads) and not bool(torch.stack([torch.isfinite(g).all() for g in grads]).all())
        )
        if not self.ctx.any(bad, self.device):
            return True
        step = self.state.step + 1
        what = f"the loss is {loss}" if not math.isfinite(loss) else "a gradient is not finite"
        if self.train.on_nonfinite == "skip":
            self.optimizer.zero_grad(set_to_none=True)
            self.skipped.append(step)
            self._record({"type": "skipped", "step": step, "reason": what})
            if self.ctx.is_main:
                print(f"warning: step {step}: {what}; skipped (train.on_nonfinite: skip)", file=sys.stderr)
            return False
        last = latest_checkpoint(self.run_dir)
        raise NonFiniteTraining(
            f"training stopped at step {step} of {self.total_steps}: {what}; nothing of this step was applied "
            "and the run is not marked finished"
            + (f"; the last good checkpoint is {last}" if last is not None else "; no checkpoint was written yet"),
            hint="lower train.lr, check the data, or set train.on_nonfinite: skip to skip such steps; "
            f"then resume with repmix train --resume {self.run_dir} (or start over with --force)",
        )

    def _log_step(self, logs: dict[str, float], lr: float, epoch_progress: float, window: dict[str, float]) -> None:
        """Accumulate the step into the logging window; write a record every ``log_every`` steps."""
        state = self.state
        w = state.window
        w["steps"] = w.get("steps", 0) + 1
        for k, v in logs.items():
            w[k] = w.get(k, 0.0) + v
        if state.step % self.train.log_every and state.step != self.total_steps:
            return
        now = time.perf_counter()
        steps_in = int(w.pop("steps"))
        record = {
            "type": "train",
            "step": state.step,
            "epoch": round(epoch_progress, 6),
            "loss": w.pop("loss") / steps_in,
            "lr": lr,
            "items_per_s": window["items"] / max(now - window["start"], 1e-9),
            "elapsed": round(state.elapsed, 3),
            "cpu_elapsed": round(state.cpu_elapsed, 3),
        }
        record.update({k: v / steps_in for k, v in sorted(w.items())})
        state.window = {}
        window["items"], window["start"] = 0, now
        self._record(record)

    def _end_epoch(self, specs: list[EvaluationSpec], epoch: int, items_per_s: float) -> None:
        """Epoch record, optional evaluation, checkpoint, then the epoch hook."""
        state = self.state
        epoch_loss = state.epoch_loss_sum / max(1, state.epoch_steps)
        epoch_metrics: dict[str, float] = {"loss": epoch_loss}
        self._record({
            "type": "epoch",
            "step": state.step,
            "epoch": epoch + 1,
            "loss": epoch_loss,
            "lr": self._lr(),
            "items_per_s": items_per_s,
            "elapsed": round(state.elapsed, 3),
            "cpu_elapsed": round(state.cpu_elapsed, 3),
        })
        last_epoch = epoch + 1 >= self.train.epochs or state.step >= self.total_steps
        if self.train.evaluate_every_epoch and specs and not last_epoch:
            if self.ctx.is_main:
                metrics = run_evaluations(self.model, self.cfg, specs, run_dir=self.run_dir, progress=self.progress)
                self._record({"type": "eval", "step": state.step, "epoch": epoch + 1,
                              "elapsed": round(state.elapsed, 3), "metrics": metrics})
                epoch_metrics.update(metrics)
            self.ctx.barrier()
        state.epoch = epoch + 1
        state.position = 0
        state.epoch_loss_sum = 0.0
        state.epoch_steps = 0
        self._checkpoint()
        if self.ctx.is_main:
            self.hooks.repmix_train_epoch_end(epoch=epoch + 1, metrics=epoch_metrics, run_dir=str(self.run_dir))

    # ------------------------------------------------------------------- run
    def run(self, mode: str) -> dict[str, float]:
        """Build, (re)store, train, then finish the run; returns the final metrics (``{}`` off rank 0)."""
        from repmix.registry.hooks import get_hooks

        train = self.train
        self.hooks = get_hooks()
        seed_everything(train.seed)
        specs = self.specs
        self.model = model = build_model(self.plan, seed=train.seed).to(self.device)
        if train.init_from is not None and mode == "fresh":
            counts = init_weights_from(model, train.init_from)
            if self.ctx.is_main:
                print(f"initialised {counts['loaded']} tensor(s) from {train.init_from} "
                      f"({counts['absent']} not in it, {counts['shape_mismatch']} of another shape, "
                      f"{counts['unused']} of its tensors unused)", file=sys.stderr)
        model.train()
        examples, towers = self.load_training_data(model)
        n = len(examples)
        batches_per_epoch = len(self.epoch_batches(n, 0))
        if batches_per_epoch == 0:
            raise InputError(
                f"the training split has {n} examples: not one full batch of {train.batch_size}"
                + (" with drop_last" if train.drop_last else f" for {self.ctx.world_size} processes"),
                hint="lower train.batch_size or set train.drop_last: false",
            )
        total = train.epochs * math.ceil(batches_per_epoch / train.grad_accumulation)
        self.total_steps = min(total, train.max_steps) if train.max_steps is not None else total
        if train.max_steps is not None and total < train.max_steps and self.ctx.is_main:
            print(
                f"note: the data ends first: {n} examples give {total} optimizer step(s) in "
                f"{train.epochs} epoch(s), fewer than train.max_steps={train.max_steps}; training {total} "
                "(raise train.epochs to train longer)",
                file=sys.stderr,
            )
        self.optimizer, self.scheduler, groups = make_optimizer(model, train, self.total_steps)
        self.lock_text = json.dumps(plugin_lock(model), indent=2) + "\n"
        self.restore(mode)
        self.write_start(model, fresh=mode == "fresh")
        self.ctx.barrier()

        objective: torch.nn.Module = Objective(model, gather=train.gather_across_ranks)
        if self.ctx.enabled:
            from torch.nn.parallel import DistributedDataParallel

            objective = DistributedDataParallel(
                objective,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True,
            )
        trainable = [p for g in self.optimizer.param_groups for p in g["params"]]
        self._train_loop(objective, examples, towers, trainable, specs)
        # Every process leaves the group together now; rank 0 then saves and evaluates on its own
        # (the DDP wrapper, which holds the group, goes first).
        del objective
        self.ctx.close(finished=True)
        return self._finish(specs, groups, examples)

    def _train_loop(
        self,
        objective: torch.nn.Module,
        examples: Examples,
        towers: list[str],
        trainable: list[torch.nn.Parameter],
        specs: list[EvaluationSpec],
    ) -> None:
        """Epochs of optimizer steps from the current state until the run's last step."""
        from tqdm.auto import tqdm

        train, state = self.train, self.state
        bar = tqdm(total=self.total_steps, initial=state.step, unit="step", desc="train",
                   disable=not self.progress, dynamic_ncols=True, file=sys.stderr)
        session_start, base_elapsed = time.perf_counter(), state.elapsed
        cpu_start, base_cpu = time.process_time(), state.cpu_elapsed
        over_budget = False
        window = {"items": 0, "start": time.perf_counter()}
        stop_at_once = False
        stopper = _StopRequest(announce=self.ctx.is_main)
        try:
            with stopper:
                while state.epoch < train.epochs and state.step < self.total_steps:
                    epoch = state.epoch
                    batches = self.epoch_batches(len(examples), epoch)
                    epoch_t0, epoch_items = time.perf_counter(), 0
                    while state.position < len(batches) and state.step < self.total_steps:
                        start = state.position
                        micro = batches[start : start + train.grad_accumulation]
                        logs, lr, items = self._step(objective, micro, examples, towers, trainable)
                        state.step += 1
                        state.position = start + len(micro)
                        state.items += items
                        if not logs:  # skipped: non-finite (train.on_nonfinite: skip)
                            bar.update(1)
                            continue
                        state.epoch_loss_sum += logs["loss"]
                        state.epoch_steps += 1
                        state.elapsed = base_elapsed + (time.perf_counter() - session_start)
                        state.cpu_elapsed = base_cpu + (time.process_time() - cpu_start)
                        window["items"] += items
                        epoch_items += items
                        bar.update(1)
                        if self.progress:
                            rate = epoch_items / max(time.perf_counter() - epoch_t0, 1e-9)
                            bar.set_postfix(loss=f"{logs['loss']:.4f}", items_s=f"{rate:.1f}", epoch=epoch + 1)
                        self._log_step(logs, lr, epoch + state.position / len(batches), window)
                        if self.ctx.is_main:
                            self.hooks.repmix_train_step_end(
                                step=state.step, logs={**logs, "lr": lr}, run_dir=str(self.run_dir)
                            )
                        over_budget = self.ctx.any(self._budget_spent(), self.device)
                        if over_budget:
                            self._checkpoint()
                            break
                        if state.position >= len(batches):
                            break  # the epoch-end checkpoint follows
                        stop = self.ctx.any(stopper.requested, self.device)
                        periodic = train.checkpoint_every and state.step % train.checkpoint_every == 0
                        if periodic or stop or state.step >= self.total_steps:
                            path = self._checkpoint()
                            if stop and state.step < self.total_steps:
                                raise self._interrupted(f"at step {state.step} of {self.total_steps}", path)
                    if state.position < len(batches) or over_budget:
                        break  # max_steps or the time budget reached
                    self._end_epoch(specs, epoch, epoch_items / max(time.perf_counter() - epoch_t0, 1e-9))
                    if self.ctx.any(stopper.requested, self.device) and state.epoch < train.epochs \
                            and state.step < self.total_steps:
                        raise self._interrupted(
                            f"at the end of epoch {epoch + 1} (step {state.step})",
                            self.run_dir / "checkpoints" / f"step-{state.step}",
                        )
        except KeyboardInterrupt:
            stop_at_once = True
        finally:
            bar.close()
        if stop_at_once:
            last = latest_checkpoint(self.run_dir)
            raise TrainingInterrupted(
                "training stopped at once (second Ctrl-C); no checkpoint was written for the current step"
                + (f"; the last checkpoint is {last.name}" if last is not None else ""),
                hint=f"resume with: repmix train --resume {self.run_dir}",
            )

    def _budget_spent(self) -> bool:
        """Whether ``train.max_minutes`` (wall) or ``train.max_cpu_minutes`` (process CPU) is used up."""
        train, state = self.train, self.state
        wall = train.max_minutes is not None and state.elapsed >= 60.0 * train.max_minutes
        cpu = train.max_cpu_minutes is not None and state.cpu_elapsed >= 60.0 * train.max_cpu_minutes
        if (wall or cpu) and self.ctx.is_main and not getattr(self, "_budget_noted", False):
            self._budget_noted = True
            which = (f"train.max_minutes={train.max_minutes:g} (wall)" if wall
                     else f"train.max_cpu_minutes={train.max_cpu_minutes:g} (CPU)")
            print(f"note: time budget {which} spent at step {state.step} of {self.total_steps} "
                  f"({state.elapsed / 60:.1f} min wall, {state.cpu_elapsed / 60:.1f} CPU min); saving and evaluating",
                  file=sys.stderr)
        return wall or cpu

    def _finish(self, specs: list[EvaluationSpec], groups: list[Any], examples: Examples) -> dict[str, float]:
        """Save the model, evaluate, plot, report; ``metrics.json`` last (rank 0 only)."""
        if not self.ctx.is_main:
            return {}
        state = self.state
        save_model(self.model, self.run_dir / MODEL_DIR)
        metrics: dict[str, float] = {}
        if specs:
            eval_skipped: dict[str, dict[str, Any]] = {}
            metrics = run_evaluations(self.model, self.cfg, specs, run_dir=self.run_dir, progress=self.progress,
                                      skipped=eval_skipped, sizes=self.eval_sizes)
            print_skipped(eval_skipped)
            self.skipped_rows.update(eval_skipped)
            write_model_card(self.run_dir / MODEL_DIR, self.model, metrics)
            self._record({"type": "eval", "step": state.step, "epoch": state.epoch, "final": True,
                          "elapsed": round(state.elapsed, 3), "metrics": metrics})
        records = read_metrics_log(self.log.path)
        with _writing("the report", self.run_dir):
            has_plot = plot_loss(records, self.run_dir / LOSS_PLOT)
            summary = {
                "processes": self.ctx.world_size,
                "device": str(self.device),
                "training examples": len(examples),
                "optimizer steps": f"{state.step} of {self.total_steps}",
                "epochs": self.train.epochs,
                "training time": f"{state.elapsed:.1f} s",
                "training CPU time": f"{state.cpu_elapsed:.1f} s",
            }
            if self._budget_spent():
                summary["stopped by"] = "the time budget"  # (train.max_minutes / max_cpu_minutes)
            write_report(
                self.run_dir, cfg=self.cfg, train=self.train, model=self.model, groups=groups, specs=specs,
                metrics=metrics, records=records, summary=summary, has_plot=has_plot, skipped=self.skipped_rows,
                sizes=self.eval_sizes,
            )
            record: dict[str, Any] = {**metrics, "skipped_rows": self.skipped_rows} if self.skipped_rows else metrics
            atomic_write_text(self.run_dir / METRICS_FILE, json.dumps(record, indent=2) + "\n")
        if self.skipped:
            print(f"warning: {len(self.skipped)} step(s) skipped for a non-finite loss or gradient "
                  f"(first: step {self.skipped[0]})", file=sys.stderr)
        if not self.train.keep_checkpoints_when_finished:
            import shutil

            shutil.rmtree(self.run_dir / CHECKPOINTS_DIR, ignore_errors=True)  # finished: model/ is what stays
        return metrics


def train_run(
    cfg: LocatedConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    force: bool = False,
) -> dict[str, float]:
    """Train the model ``cfg`` describes into ``run_dir``; return the final evaluation metrics.

    Returns ``{}`` when the config has no ``evaluate:`` block (and on every
    process but rank 0 under torchrun). With ``resume`` the run continues from
    its last checkpoint (a finished run just returns its metrics); the config
    must equal the run's own. Without ``resume`` an existing run is refused
    unless ``force``, which clears it first.

    Raises :class:`TrainingInterrupted` (exit status 130) after Ctrl-C, once a
    checkpoint is written, and :class:`~repmix.core.errors.RepmixError`
    subclasses for every user error.
    """
    run_dir = Path(run_dir)
    train = train_config(cfg)
    plans = (plan_model(cfg), plan_training_data(cfg), plan_evaluations(cfg))
    use_cuda = resolve_device(train)
    if resume and not run_dir.is_dir():  # before locking, which would create it
        raise ArtifactError(f"cannot resume {str(run_dir)!r}: no such directory")
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: rank 0 holds the run directory's lock
        return _train_locked(cfg, run_dir, train, plans, use_cuda, resume=resume, progress=progress, force=force)
    with locked_dir(run_dir, what="run directory"):
        return _train_locked(cfg, run_dir, train, plans, use_cuda, resume=resume, progress=progress, force=force)


def _train_locked(
    cfg: LocatedConfig,
    run_dir: Path,
    train: TrainConfig,
    plans: tuple[Any, Any, list[EvaluationSpec]],
    use_cuda: bool,
    *,
    resume: bool,
    progress: bool,
    force: bool,
) -> dict[str, float]:
    """:func:`train_run` once the run directory is locked."""
    mode = check_run_dir(cfg, run_dir, resume=resume, force=force)
    if mode == "finished":
        print(f"{run_dir} is already finished; nothing to resume", file=sys.stderr)
        return read_metrics(run_dir)
    ctx = init_distributed(use_cuda)
    try:
        if mode == "fresh" and force and ctx.is_main and run_dir.is_dir():
            with _writing("the run directory", run_dir):
                _clear_run(run_dir)
        ctx.barrier()
        with _deterministic(train.deterministic, use_cuda):
            return _Trainer(cfg, run_dir, ctx, train, use_cuda, progress, plans).run(mode)
    finally:
        ctx.close()
