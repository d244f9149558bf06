"""Train hypernetwork-minilm-large.yaml on a lent GPU machine that cannot take the 91 MB model file.

How the larger-budget checkpoint of docs/results/tokenizer-transfer.md was made. The device tool sends
the working tree plus at most 64 MiB of carried files, so the packaged all-MiniLM-L6-v2 travelled as an
fp16 copy (float tensors halved, 45 MB) in ``runs/zett-carry/minilm/model16.safetensors`` beside its
config and tokenizer files, with the SciFact corpus gzipped and the STS-B train file in
``runs/zett-carry/data/`` and pydantic wheels in ``runs/zett-carry/whl/``. There this script restores
fp32 weights, then calls the same training code as ``repmix zett train-hypernetwork`` and writes the
checkpoint to ``$OUT/hn``. The vocabulary (and so the fingerprint) is MiniLM's; only the frozen
teacher's weights carry fp16 rounding (relative 1e-3).

    python plugins/zett/scripts/train_large_on_gpu.py [overrides...]
"""
import gzip
import os
import shutil
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

carry = Path("runs/zett-carry")
model = Path("/tmp/minilm")
model.mkdir(exist_ok=True)
for f in (carry / "minilm").iterdir():
    if f.name != "model16.safetensors":
        shutil.copy(f, model / f.name)
sd = load_file(str(carry / "minilm" / "model16.safetensors"))
save_file({k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in sd.items()}, str(model / "model.safetensors"))
data = Path("/tmp/data")
data.mkdir(exist_ok=True)
with gzip.open(carry / "data" / "corpus.jsonl.gz", "rb") as fi, open(data / "corpus.jsonl", "wb") as fo:
    shutil.copyfileobj(fi, fo)
shutil.copy(carry / "data" / "train.tsv", data / "train.tsv")

from pydantic import ValidationError
from repmix.sdk import load_config, pydantic_error
from repmix_zett.training import HypernetTrainConfig, train_hypernetwork

cfg = load_config("plugins/zett/configs/hypernetwork-minilm-large.yaml", [
    f"model={model}", f"corpus.0.path={data / 'corpus.jsonl'}", f"corpus.1.path={data / 'train.tsv'}", *sys.argv[1:],
])
try:
    config = HypernetTrainConfig.model_validate(cfg.data)
except ValidationError as exc:
    raise pydantic_error(exc, HypernetTrainConfig, cfg.data, cfg, ()) from None
print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu", flush=True)
t = time.time()
train_hypernetwork(config, Path(os.environ.get("OUT", "/tmp/out")) / "hn", log=lambda m: print(m, flush=True))
print(f"total {time.time() - t:.0f} s")
