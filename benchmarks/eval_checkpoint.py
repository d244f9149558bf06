"""Evaluate a run's checkpoint with its config's evaluate blocks (used for runs/mlm-scifact, interrupted at step 103).

Usage: python benchmarks/eval_checkpoint.py  (edit run / ck below)
"""
import json, sys, time
from safetensors.torch import load_model
from repmix.core.assembly import build_model, plan_model
from repmix.core.config import load_config
from repmix.engine.evaluation import run_evaluations
from repmix.engine.settings import plan_evaluations

run = "runs/mlm-scifact"
ck = f"{run}/checkpoints/step-103"
cfg = load_config(f"{ck}/config.yaml")
model = build_model(plan_model(cfg), load_pretrained=False)
missing, unexpected = load_model(model, f"{ck}/model.safetensors", strict=False)
print("missing", missing, "unexpected", unexpected, flush=True)
t = time.time()
metrics = run_evaluations(model, cfg, plan_evaluations(cfg))
metrics["eval_seconds"] = time.time() - t
json.dump(metrics, open(f"{run}/metrics-step-103.json", "w"), indent=2)
print(json.dumps(metrics, indent=2))
