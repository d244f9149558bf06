"""ORMA molecule featurisation: molecules/s cold and warm, and peak memory of a training step.

Run: python benchmarks/bench_orma_featurise.py [--n 3301] [--batch-size 32] [--dim 384]
Needs ../shared/data/chebi20/validation.tsv and repmix-orma installed.
Writes the "orma-featurise" section of docs/benchmarks.md.

* **cold**: a fresh tokenizer and an empty cache folder: every molecule is parsed
  by RDKit, decomposed into BRICS motifs, featurised and written as ``.npz``;
* **warm, disk**: a new tokenizer (a second run) on the same cache folder: every
  molecule is read from its ``.npz``, no RDKit work;
* **warm, memory**: the same tokenizer again (a second epoch): the in-memory LRU.

Each pass tokenizes the molecules in batches of ``--batch-size`` (so collation is
included). Peak memory is the growth of the process's maximum resident set size
(``resource.getrusage``) over one forward + backward of ``orma.hierarchical-gnn``
(``--dim``, 3 layers) at that batch size, measured in a fresh subprocess per case
after a warm-up step, for a random batch and for the 32 largest molecules.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from report import machine, markdown_table, shared_data_dir, write_section

STEP_SCRIPT = r"""
import json, resource, sys, torch
from repmix.core.components import Runtime
from repmix_orma.graph import MoleculeGraphTokenizer
from repmix_orma.gnn import HierarchicalGNN
smiles, dim, cache = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
tok = MoleculeGraphTokenizer(MoleculeGraphTokenizer.Config(cache_dir=cache), Runtime())
torch.manual_seed(0)
enc = HierarchicalGNN(HierarchicalGNN.Config(dim=dim), Runtime(tokenizer=tok)).train()
opt = torch.optim.AdamW(enc.parameters(), lr=1e-4)
def step():
    out = enc(tok(smiles))
    loss = sum(g.hidden.square().mean() for g in out.granularities.values())
    opt.zero_grad(); loss.backward(); opt.step()
step()  # warm-up: allocator pools, optimizer state
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
base = torch.cuda.is_available()
import gc; gc.collect()
start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for _ in range(3):
    step()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
batch = tok(smiles)
print(json.dumps({"rss_kb": peak, "growth_kb": peak - start, "nodes": int(batch.x.shape[0]),
                  "edges": int(batch.edge_index.shape[1]), "atom_width": batch.atom_width,
                  "motif_width": batch.motif_width}))
"""


FULL_SCRIPT = r"""
import json, resource, sys, torch
from repmix.core.assembly import build_model, plan_model
from repmix.core.config import load_config
from repmix.core.components import Runtime
from repmix_orma.demo import DemoMoleculesDataset
config, batch_size = sys.argv[1], int(sys.argv[2])
model = build_model(plan_model(load_config(config))).train()
data = DemoMoleculesDataset(DemoMoleculesDataset.Config(size=200), Runtime()).load("train")
inputs = {k: v[:batch_size] for k, v in data.columns.items()}
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
def step():
    out = model(inputs)
    opt.zero_grad(); out.loss.backward(); opt.step()
step()
start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for _ in range(2):
    step()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rss_kb": peak, "growth_kb": peak - start}))
"""


def read_smiles(n: int) -> list[str]:
    path = shared_data_dir() / "chebi20" / "validation.tsv"
    if not path.exists():
        sys.exit(f"needs {path}; set REPMIX_SHARED_DATA to the shared data directory")
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r["smiles"] for r in rows][:n]


def timed_pass(tok: object, smiles: list[str], batch_size: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(smiles), batch_size):
        tok(smiles[i : i + batch_size])  # type: ignore[operator]
    return time.perf_counter() - start


def step_memory(smiles: list[str], dim: int, cache: str) -> dict[str, int]:
    here = Path(__file__).resolve().parent
    out = subprocess.run(
        [sys.executable, "-c", STEP_SCRIPT, json.dumps(smiles), str(dim), cache],
        check=True, capture_output=True, text=True, cwd=here,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def full_model_memory(batch_size: int, cache: str) -> dict[str, int]:
    here = Path(__file__).resolve().parent
    config = here.parent / "plugins" / "orma" / "configs" / "orma-demo.yaml"
    env = {**os.environ, "REPMIX_CACHE": cache}
    out = subprocess.run(
        [sys.executable, "-c", FULL_SCRIPT, str(config), str(batch_size)],
        check=True, capture_output=True, text=True, cwd=here, env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=3301)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--write", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--full-model", action=argparse.BooleanOptionalAction, default=True,
        help="also measure a step of the whole orma-demo model (needs the packaged all-MiniLM-L6-v2)",
    )
    args = parser.parse_args()

    import numpy as np
    from rdkit import rdBase

    from repmix.core.components import Runtime
    from repmix_orma.graph import MoleculeGraphTokenizer

    smiles = read_smiles(args.n)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="orma-bench-") as cache:
        config = MoleculeGraphTokenizer.Config(cache_dir=cache)
        cold_tok = MoleculeGraphTokenizer(config, Runtime())
        cold = timed_pass(cold_tok, smiles, args.batch_size)
        memory = timed_pass(cold_tok, smiles, args.batch_size)
        warm_tok = MoleculeGraphTokenizer(config, Runtime())
        disk = timed_pass(warm_tok, smiles, args.batch_size)
        assert warm_tok.stats.featurised == 0, "the warm pass did RDKit work"
        files = list(Path(cold_tok.cache_root).rglob("*.npz"))
        cache_mb = sum(f.stat().st_size for f in files) / 2**20

        rng = np.random.default_rng(0)
        random_batch = [smiles[int(i)] for i in rng.choice(len(smiles), size=args.batch_size, replace=False)]
        sizes = [warm_tok.graph(s).n_atoms for s in smiles]
        largest = [smiles[int(i)] for i in np.argsort(sizes)[::-1][: args.batch_size]]
        mem_random = step_memory(random_batch, args.dim, cache)
        mem_large = step_memory(largest, args.dim, cache)
        mem_full = full_model_memory(args.batch_size, cache) if args.full_model else None

    n = len(smiles)
    load = (
        f"load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end "
        "(above the core count means other processes shared the CPU)"
    )
    rows = [
        ["cold (RDKit parse + BRICS + features + write .npz)", f"{cold:.2f}", f"{n / cold:,.0f}"],
        ["warm, disk cache (a second run)", f"{disk:.2f}", f"{n / disk:,.0f}"],
        ["warm, memory LRU (a second epoch)", f"{memory:.2f}", f"{n / memory:,.0f}"],
    ]
    mem_rows = [
        [
            name,
            m["nodes"],
            m["edges"],
            f"{m['atom_width']} / {m['motif_width']}",
            f"{m['growth_kb'] / 1024:.1f}",
            f"{m['rss_kb'] / 1024:.0f}",
        ]
        for name, m in (("random 32 molecules", mem_random), (f"the {args.batch_size} largest molecules", mem_large))
    ]
    command = (
        f"Command: `python benchmarks/bench_orma_featurise.py --n {args.n} --batch-size {args.batch_size} "
        f"--dim {args.dim}`; {n} ChEBI-20 validation SMILES in batches of {args.batch_size}, "
        f"{machine()}, RDKit {rdBase.rdkitVersion}; {load}. "
        f"Featurised cache: {len(files)} files, {cache_mb:.1f} MiB."
    )
    speedup = (
        f"Warm (disk) is **{cold / disk:.1f}×** faster than cold; the warm passes do no RDKit work "
        "(asserted: `stats.featurised == 0`)."
    )
    memory_intro = (
        f"Peak memory of one training step of `orma.hierarchical-gnn` (dim {args.dim}, 3 GCN layers, "
        f"max_atoms 128, max_motifs 32), forward + backward + AdamW, batch {args.batch_size}: growth of the "
        "process's max RSS over 3 steps after a warm-up (fresh subprocess per row; torch and RDKit "
        "themselves take the rest)."
    )
    parts = [
        "## ORMA molecule featurisation (`orma.molecule-graph`)",
        command,
        markdown_table(["pass", "seconds", "molecules/s"], rows),
        speedup,
        memory_intro,
        markdown_table(["batch", "nodes", "edges", "padded atoms / motifs", "step growth (MiB)", "max RSS (MiB)"], mem_rows),
    ]
    if mem_full is not None:
        parts.append(
            f"The whole `configs/orma-demo.yaml` model (all-MiniLM-L6-v2 text tower, 48 tokens, the three "
            f"alignment levels, `orma.info-nce-exp` losses), one step at batch {args.batch_size} of demo pairs: "
            f"step growth {mem_full['growth_kb'] / 1024:.1f} MiB, max RSS {mem_full['rss_kb'] / 1024:.0f} MiB."
        )
    text = "\n\n".join(parts)
    print(text)
    if args.write:
        print(f"wrote {write_section('orma-featurise', text)}")


if __name__ == "__main__":
    main()
