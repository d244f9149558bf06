"""Interleaved per-step cost of base MLM, TokenUnify and LEM on identical batches (one process).

Run from the repository root (needs std, lem with its spaCy pipeline, tokenunify; ROUNDS default 4):
    HF_HUB_OFFLINE=1 nice -n 10 python plugins/lem/scripts/bench_pretrain_objectives.py 4
Prints each step (corruption alone, then a full training step) and the medians after round 0.
"""
import json, statistics, sys, time
import torch
from repmix.sdk import Runtime, build_model, load_component_class, load_config, plan_model

CFGS = {"base": "examples/pretrain-scifact.yaml", "tokenunify": "plugins/tokenunify/configs/pretrain-scifact.yaml",
        "lem": "plugins/lem/configs/pretrain-scifact.yaml"}
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 4
torch.manual_seed(0)
models = {k: build_model(plan_model(load_config(v))) for k, v in CFGS.items()}
tok = models["base"].tower("text").tokenizer
DS = load_component_class("dataset", "std.text-corpus")
ds = DS(DS.Config(path="../shared/data/scifact/corpus.jsonl", split="train", block_size=128), Runtime(tokenizers={"text": tok}))
col = next(iter(ds.load(None).columns.values()))
opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}
res = {k: {"step_cpu": [], "step_wall": [], "corrupt_cpu": [], "corrupt_wall": []} for k in models}
for r in range(ROUNDS):
    items = [list(col[(r * 32 + i) % len(col)]) for i in range(32)]
    for k, m in models.items():
        m.train()
        corr = m.tower("text").corruptor
        batch = tok(items)
        g = torch.Generator().manual_seed(1000 + r)  # a fresh batch each round: no tagging cache hits
        c0, w0 = time.process_time(), time.perf_counter()
        corr(batch, g)
        c1, w1 = time.process_time(), time.perf_counter()
        items_r = [list(col[(5000 + r * 32 + i) % len(col)]) for i in range(32)]
        out = m({"text": items_r})
        out.loss.backward()
        opts[k].step(); opts[k].zero_grad()
        c2, w2 = time.process_time(), time.perf_counter()
        if r > 0:  # round 0 warms up
            res[k]["corrupt_cpu"].append(c1 - c0); res[k]["corrupt_wall"].append(w1 - w0)
            res[k]["step_cpu"].append(c2 - c1); res[k]["step_wall"].append(w2 - w1)
        print(r, k, f"corrupt {w1-w0:.3f}s  step {w2-w1:.2f}s wall / {c2-c1:.2f}s cpu  loss {float(out.loss.detach()):.3f}", flush=True)
print(json.dumps({k: {n: round(statistics.median(v), 4) for n, v in d.items()} for k, d in res.items()}, indent=1))
