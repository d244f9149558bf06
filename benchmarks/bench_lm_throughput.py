"""Speed anchor for language modelling: repmix vs transformers' ``Trainer`` and ``generate``.

**Training.** The model and data of ``examples/lm-scifact.yaml`` (a GPT-2-style decoder from
scratch, the BPE tokenizer trained on the SciFact training documents, 128-token packed blocks,
batch 16, AdamW, cosine schedule with warm-up, clipping at 1.0):

* ``repmix``: ``train_run`` on the example with ``evaluate: null`` and ``train.max_steps = warmup + steps``;
* ``hf-trainer``: ``transformers.Trainer`` on a ``GPT2LMHeadModel`` holding **the same initial
  weights** (copied from the model repmix builds with the same seed), the same blocks **in the same
  order** (repmix's seeded epoch-0 permutation, a sequential sampler) and
  ``DataCollatorForLanguageModeling(mlm=False)``, with the same optimiser settings.

The two run in threads of one process and take turns, one optimizer step each (the baton of
``bench_train_throughput.py``), so both meet the same machine load; a step is timed from getting
the turn to its end. The step-1 losses must be equal (same weights, same batch, no dropout:
``resid/embd/attn_pdrop`` are 0.1 in GPT-2's config, so the benchmark sets them to 0 on both sides).

**Generation.** Greedy continuation of the same prompt by the same (untrained) model:
``std.greedy`` over ``next_logprobs`` (KV cache) vs ``GPT2LMHeadModel.generate(do_sample=False)``,
``--new-tokens`` tokens, alternated ``--repeats`` times; the generated ids must be identical.

Usage::

    python benchmarks/bench_lm_throughput.py [--steps 20] [--warmup 2] [--threads 1] [--no-write]

Writes benchmarks/results/lm_throughput.json and the section ``lm-throughput`` of docs/benchmarks.md.
Needs ``accelerate`` (for ``Trainer``) and the SciFact corpus in ``../shared/data/scifact``.
"""

from __future__ import annotations

import argparse
import json
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
from bench_train_throughput import Baton  # noqa: E402
from report import REPO, machine, markdown_table, shared_data_dir, write_section  # noqa: E402

EXAMPLE = REPO / "examples" / "lm-scifact.yaml"
NO_DROPOUT = ["resid_pdrop=0.0", "embd_pdrop=0.0", "attn_pdrop=0.0"]


def overrides(args: argparse.Namespace) -> list[str]:
    corpus = shared_data_dir() / "scifact" / "corpus.jsonl"
    arch = "model.towers.text.encoder.architecture"
    return [
        f"data.path={corpus}",
        f"model.towers.text.tokenizer.train_on.path={corpus}",
        "evaluate=null",
        "generate=null",
        f"train.max_steps={args.warmup + args.steps}",
        "train.checkpoint_every=0",
        "train.log_every=1",
        *[f"{arch}.{kv}" for kv in NO_DROPOUT],
    ]


def load_cfg(args: argparse.Namespace) -> Any:
    from repmix.core.config import load_config

    return load_config(EXAMPLE, overrides(args))


def side_repmix(args: argparse.Namespace, step_end: Callable[[], None]) -> list[float]:
    from repmix.engine import train_run
    from repmix.registry.hooks import get_plugin_manager, hookimpl

    losses: list[float] = []

    class StepTimer:
        @hookimpl
        def repmix_train_step_end(self, step: int, logs: dict[str, float], run_dir: str | None) -> None:
            losses.append(float(logs["loss"]))
            step_end()

    get_plugin_manager().register(StepTimer(), name="bench-lm-step-timer")
    with tempfile.TemporaryDirectory() as tmp:
        train_run(load_cfg(args), Path(tmp) / "run", progress=False)
    return losses


def reference_setup(args: argparse.Namespace) -> tuple[Any, Any, list[list[int]], Any]:
    """The repmix-built model (same seed), its tokenizer, the blocks in repmix's epoch-0 order, the train settings."""
    import torch

    from repmix.core.assembly import build_component, build_model, plan_model
    from repmix.engine.settings import data_runtime, train_config

    cfg = load_cfg(args)
    train = train_config(cfg)
    model = build_model(plan_model(cfg), seed=train.seed)
    examples = build_component(cfg, "dataset", cfg.data["data"], ("data",))
    examples = type(examples)(examples.config, data_runtime(model)).load(None)
    g = torch.Generator()
    g.manual_seed(train.seed)
    perm = torch.randperm(len(examples), generator=g).tolist()
    blocks = examples.columns["text"]
    return model, model.tower("text").tokenizer, [blocks[i] for i in perm], train


def side_hf_trainer(args: argparse.Namespace, step_end: Callable[[], None]) -> list[float]:
    from datasets import Dataset
    from torch.utils.data import SequentialSampler
    from transformers import DataCollatorForLanguageModeling, GPT2LMHeadModel, Trainer, TrainerCallback, TrainingArguments

    built, tok, blocks, train = reference_setup(args)
    enc = built.tower("text").encoder
    model = GPT2LMHeadModel(enc.lm.config)
    model.load_state_dict(enc.lm.state_dict())
    losses: list[float] = []
    total = args.warmup + args.steps

    class StepTimer(TrainerCallback):
        def on_step_end(self, *a: Any, **k: Any) -> None:
            step_end()

    class OrderedTrainer(Trainer):
        def _get_train_sampler(self, *a: Any, **k: Any) -> Any:
            return SequentialSampler(self.train_dataset)

        def compute_loss(self, model: Any, inputs: Any, return_outputs: bool = False, **kw: Any) -> Any:
            out = super().compute_loss(model, inputs, return_outputs=return_outputs, **kw)
            value = float((out[0] if return_outputs else out).detach())
            # Trainer divides the summed token losses by num_items_in_batch, which counts the *unshifted*
            # labels (B*T), while GPT2LMHeadModel (and repmix) average over the B*(T-1) predicted tokens:
            # record the mean over predicted tokens, and the Trainer's own value beside it.
            items = kw.get("num_items_in_batch")
            predicted = int((inputs["labels"][:, 1:] != -100).sum())
            raw_losses.append(value)
            losses.append(value * float(items) / predicted if items is not None else value)
            return out

    with tempfile.TemporaryDirectory() as tmp:
        targs = TrainingArguments(
            output_dir=tmp, max_steps=total, per_device_train_batch_size=train.batch_size,
            learning_rate=train.lr, weight_decay=train.weight_decay, warmup_steps=train.warmup_for(total),
            lr_scheduler_type=train.schedule, max_grad_norm=train.max_grad_norm, optim="adamw_torch",
            seed=train.seed, use_cpu=True, dataloader_num_workers=0, eval_strategy="no", save_strategy="no",
            logging_strategy="no", report_to="none", disable_tqdm=True,
        )
        trainer = OrderedTrainer(
            model=model, args=targs, train_dataset=Dataset.from_dict({"input_ids": blocks[: total * train.batch_size]}),
            data_collator=DataCollatorForLanguageModeling(tokenizer=tok.hf, mlm=False), callbacks=[StepTimer()],
        )
        trainer.train()
    return losses


RUNNERS = {"repmix": side_repmix, "hf-trainer": side_hf_trainer}
raw_losses: list[float] = []  # the Trainer's own loss values (normalised by B*T, see compute_loss)


def run_training(args: argparse.Namespace) -> dict[str, Any]:
    sides = ["repmix", "hf-trainer"]
    baton = Baton(sides)
    losses: dict[str, list[float]] = {}

    def work(side: str) -> None:
        try:
            baton.begin(side)
            losses[side] = RUNNERS[side](args, lambda: baton.step_end(side))
        except BaseException as exc:
            baton.errors[side] = exc
        finally:
            baton.finish(side)

    threads = [threading.Thread(target=work, args=(s,), name=s) for s in sides]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if baton.errors:
        side, exc = next(iter(baton.errors.items()))
        raise SystemExit(f"{side} failed: {type(exc).__name__}: {exc}") from exc
    out: dict[str, Any] = {}
    for side in sides:
        timed = baton.steps[side][args.warmup :]
        wall, cpu = sum(w for w, _ in timed), sum(c for _, c in timed)
        out[side] = {"seconds": wall, "cpu_seconds": cpu, "steps": len(timed), "step_s": [w for w, _ in timed],
                     "losses": losses[side][: args.warmup + args.steps]}
    return out


def run_generation(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from repmix.core.assembly import build_model, plan_model
    from repmix_std.decoding import GreedyDecoding

    cfg = load_cfg(args)
    model = build_model(plan_model(cfg), seed=0).eval()
    tok, enc = model.tower("text").tokenizer, model.tower("text").encoder
    prompt = [tok.bos_token_id, *tok.encode_plain("Vitamin D deficiency is associated with")][:16]
    ids = torch.tensor([prompt])
    greedy = GreedyDecoding(GreedyDecoding.Config(), None)  # type: ignore[arg-type]
    n = args.new_tokens
    times: dict[str, list[float]] = {"repmix": [], "hf-generate": []}
    outs: dict[str, list[int]] = {}
    with torch.inference_mode():
        for r in range(args.repeats + 1):
            t0 = time.perf_counter()
            outs["repmix"] = greedy.generate(enc, prompt, max_new_tokens=n)
            t1 = time.perf_counter()
            hf = enc.lm.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                                 do_sample=False, eos_token_id=None, pad_token_id=tok.pad_token_id)
            t2 = time.perf_counter()
            outs["hf-generate"] = hf[0, len(prompt):].tolist()
            if r:  # the first round warms up
                times["repmix"].append(t1 - t0)
                times["hf-generate"].append(t2 - t1)
    return {
        "new_tokens": n,
        "identical": outs["repmix"] == outs["hf-generate"],
        "tokens_per_s": {k: n / statistics.median(v) for k, v in times.items()},
        "seconds": times,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--new-tokens", type=int, default=100, dest="new_tokens")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args()
    for var, value in (("TOKENIZERS_PARALLELISM", "false"), ("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1")):
        os.environ.setdefault(var, value)
    import torch

    torch.set_num_threads(args.threads)
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    train = run_training(args)
    gen = run_generation(args)
    load1, total = os.getloadavg()[0], time.perf_counter() - t0
    r, h = train["repmix"], train["hf-trainer"]
    ratio_wall, ratio_cpu = h["seconds"] / r["seconds"], h["cpu_seconds"] / r["cpu_seconds"]
    gen_ratio = gen["tokens_per_s"]["repmix"] / gen["tokens_per_s"]["hf-generate"]
    step1 = (r["losses"][0], h["losses"][0])
    result_raw = raw_losses[0] if raw_losses else float("nan")
    result = {"train": train, "generation": gen, "ratio_train_wall": ratio_wall, "ratio_train_cpu": ratio_cpu,
              "ratio_generation": gen_ratio, "step1_loss": step1, "step1_trainer_raw": result_raw, "load": [load0, load1], "seconds": total}
    out = REPO / "benchmarks" / "results" / "lm_throughput.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    bs = 16
    rows = [
        ["repmix `train_run` (examples/lm-scifact.yaml)", f"{bs * r['steps'] / r['seconds']:.2f}",
         f"{statistics.median(r['step_s']):.2f}", f"{bs * r['steps'] / r['cpu_seconds']:.2f}", f"{step1[0]:.6f}"],
        ["transformers `Trainer` + `DataCollatorForLanguageModeling`", f"{bs * h['steps'] / h['seconds']:.2f}",
         f"{statistics.median(h['step_s']):.2f}", f"{bs * h['steps'] / h['cpu_seconds']:.2f}", f"{step1[1]:.6f}"],
    ]
    md = (
        "## Language modelling: repmix vs transformers (training and generation)\n\n"
        f"Command: `python benchmarks/bench_lm_throughput.py --steps {args.steps} --warmup {args.warmup} "
        f"--threads {args.threads}`; {machine()}; load average {load0:.1f} → {load1:.1f} (shared machine); "
        f"{total / 60:.0f} min.\n\n"
        "Training: the model and data of `examples/lm-scifact.yaml` (GPT-2 style, 3 layers, 192 wide, BPE 4096, "
        "128-token blocks, batch 16, dropout 0 on both sides), the same initial weights and the same blocks in "
        "the same order; the two trainers take turns, one optimizer step each; steps "
        f"{args.warmup + 1}–{args.warmup + args.steps} timed.\n\n"
        + markdown_table(["trainer", "blocks/s (wall)", "median s/step", "blocks per CPU-second", "loss at step 1"], rows)
        + f"\n\nThroughput ratio repmix / Trainer: **{ratio_wall:.2f}** wall-clock, **{ratio_cpu:.2f}** CPU time "
        f"(target ≥ 0.9). Step-1 losses equal: {abs(step1[0] - step1[1]) < 1e-5} "
        f"(|Δ| = {abs(step1[0] - step1[1]):.2e}; the Trainer's own logged value is {result_raw:.6f}: it divides the "
        "summed token losses by the number of unshifted labels, B·T, where GPT2LMHeadModel and repmix divide by "
        "the B·(T−1) predicted tokens).\n\n"
        f"Generation: greedy, {gen['new_tokens']} new tokens after a {16}-token prompt, median of "
        f"{args.repeats} alternated runs: repmix `std.greedy` {gen['tokens_per_s']['repmix']:.1f} tokens/s, "
        f"`generate` {gen['tokens_per_s']['hf-generate']:.1f} tokens/s, ratio **{gen_ratio:.2f}** (target ≥ 0.9); "
        f"identical ids: {gen['identical']}.\n"
    )
    print(md)
    if not args.no_write:
        print(f"wrote {write_section('lm-throughput', md)}")


if __name__ == "__main__":
    main()
