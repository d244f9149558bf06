"""Why the fingerprint baseline beats ORMA on ChEBI-20: a fast study of the text and molecule sides.

Not a repmix component: a standalone script (transformers + RDKit + torch) that trains the
fingerprint baseline's two-tower model many ways in seconds each on a GPU (minutes on a CPU),
to find what moves Hits@1 before building it into the framework (docs/results/orma.md, §5).
Same split as the plugin (orma.chebi20, holdout 0.2, holdout_seed 0, Text2Mol's name-first
descriptions, molecules without bonds dropped).

    python benchmarks/orma_gap_study.py prepare -o pairs.npz          # split + RDKit fingerprints
    python benchmarks/orma_gap_study.py run pairs.npz -o study.jsonl [--variant NAME ...]
    python benchmarks/orma_gap_study.py render docs/results/orma-gap-study.jsonl

EPOCH_SCALE=0.02 in the environment shortens every variant (a smoke test on a CPU).

Variants (VARIANTS below): text tower frozen (mean-pooled MiniLM, cached), its top 1-2 layers or
all six fine-tuned; molecule features: 2048 Morgan bits (the baseline), log counts, or log counts
at radius 2 and 3 + atom-pair counts + MACCS keys. Heads, loss and optimiser are the baseline's
(384->512->256 and F->1024->256 GELU MLPs, dropout 0.2, symmetric InfoNCE with a learnable logit
scale, AdamW 1e-3, batch 128); fine-tuned layers at their own learning rate.
"""

import argparse, copy, json, os, sys, time
import numpy as np


def prepare(out: str, chebi20: str) -> None:
    """The plugin's split with its texts, SMILES and fingerprints, saved as one npz."""
    from rdkit import Chem
    from rdkit.Chem import MACCSkeys, rdFingerprintGenerator
    from repmix_orma.data import ChEBI20Dataset

    g2 = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    g3 = rdFingerprintGenerator.GetMorganGenerator(radius=3, fpSize=2048)
    ap = rdFingerprintGenerator.GetAtomPairGenerator(fpSize=2048)
    d = {}
    for split in ("train", "test"):
        cfg = ChEBI20Dataset.Config(path=chebi20, descriptions="text2mol", holdout=0.2, holdout_seed=0, split=split)
        ex = ChEBI20Dataset(cfg, None).load(split)
        mols = [Chem.MolFromSmiles(s) for s in ex.columns["molecule"]]
        d[f"{split}_text"] = np.array(ex.columns["text"]).astype(str)
        d[f"{split}_smiles"] = np.array(ex.columns["molecule"]).astype(str)
        d[f"{split}_fpb"] = np.packbits(np.stack([g2.GetFingerprintAsNumPy(m) for m in mols]).astype(np.uint8), axis=1)
        d[f"{split}_fpc"] = np.stack([g2.GetCountFingerprintAsNumPy(m) for m in mols]).clip(0, 255).astype(np.uint8)
        d[f"{split}_fpc3"] = np.stack([g3.GetCountFingerprintAsNumPy(m) for m in mols]).clip(0, 255).astype(np.uint8)
        d[f"{split}_ap"] = np.stack([ap.GetCountFingerprintAsNumPy(m) for m in mols]).clip(0, 255).astype(np.uint8)
        d[f"{split}_maccs"] = np.packbits(np.stack([np.array(list(MACCSkeys.GenMACCSKeys(m)), dtype=np.uint8) for m in mols]), axis=1)
    np.savez_compressed(out, **d)


def study(pairs: str, out_path: str, only: list[str]) -> None:
    import torch, torch.nn as nn, torch.nn.functional as F
    from transformers import AutoModel, AutoTokenizer
    from repmix.sdk.hf import resolve_model_dir

    torch.backends.cuda.matmul.allow_tf32 = True
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    D = dict(np.load(pairs, allow_pickle=False))
    MD = str(resolve_model_dir("all-MiniLM-L6-v2"))
    tok = AutoTokenizer.from_pretrained(MD)
    def fp(split, names):
        parts = []
        for n in names:
            x = D[f"{split}_{n}"]
            if n in ("fpb", "maccs"): x = np.unpackbits(x, axis=1)
            else: x = np.log1p(x.astype(np.float32))
            parts.append(x.astype(np.float32))
        return torch.tensor(np.concatenate(parts, 1))
    enc = {s: tok(list(D[f"{s}_text"]), truncation=True, max_length=256, padding="max_length", return_tensors="pt") for s in ("train", "test")}
    base = AutoModel.from_pretrained(MD).to(dev).eval()
    with torch.no_grad():  # frozen mean embeddings
        frozen = {}
        for s in ("train", "test"):
            outs = []
            for i in range(0, len(enc[s]["input_ids"]), 256):
                b = {k: v[i:i+256].to(dev) for k, v in enc[s].items()}
                h = base(**b).last_hidden_state; m = b["attention_mask"][..., None].float()
                outs.append(F.normalize((h * m).sum(1) / m.sum(1), dim=-1))
            frozen[s] = torch.cat(outs)
    def run(name, text="frozen", mol=("fpb",), epochs=60, text_lr=5e-5, seed=0, max_scale=None, bs=128, hidden=1024, drop=0.2, wd=0.01):
        epochs = max(1, int(epochs * float(os.environ.get("EPOCH_SCALE", "1"))))
        torch.manual_seed(seed); np.random.seed(seed)
        Xtr, Xte = fp("train", mol).to(dev), fp("test", mol).to(dev)
        thead = nn.Sequential(nn.Linear(384, 512), nn.GELU(), nn.Dropout(drop), nn.Linear(512, 256)).to(dev)
        mhead = nn.Sequential(nn.Linear(Xtr.shape[1], hidden), nn.GELU(), nn.Dropout(drop), nn.Linear(hidden, 256)).to(dev)
        scale = nn.Parameter(torch.tensor(float(np.log(1 / 0.07)), device=dev))
        groups = [{"params": list(thead.parameters()) + list(mhead.parameters()) + [scale], "lr": 1e-3}]
        bert = None
        if text != "frozen":
            bert = copy.deepcopy(base).train()
            k = {"top1": 1, "top2": 2, "full": 6}[text]
            for n, p in bert.named_parameters():
                p.requires_grad = any(n.startswith(f"encoder.layer.{6 - j}.") for j in range(1, k + 1))
            groups.append({"params": [p for p in bert.parameters() if p.requires_grad], "lr": text_lr})
        opt = torch.optim.AdamW(groups, weight_decay=wd)
        def tvec(s, idx):
            if bert is None: return frozen[s][idx]
            b = {k: v[idx].to(dev) for k, v in enc[s].items()}
            n = int(b["attention_mask"].sum(1).max()); b = {k: v[:, :n] for k, v in b.items()}
            h = bert(**b).last_hidden_state; m = b["attention_mask"][..., None].float()
            return F.normalize((h * m).sum(1) / m.sum(1), dim=-1)
        N = len(Xtr); hist = []; t0 = time.time()
        for ep in range(epochs):
            thead.train(); mhead.train()
            if bert is not None: bert.train()
            perm = torch.randperm(N)
            for i in range(0, N, bs):
                idx = perm[i:i+bs]
                t = F.normalize(thead(tvec("train", idx)), dim=-1); m = F.normalize(mhead(Xtr[idx.to(dev)]), dim=-1)
                logits = scale.exp() * t @ m.T; y = torch.arange(len(idx), device=dev)
                loss = (F.cross_entropy(logits, y) + F.cross_entropy(logits.T, y)) / 2
                opt.zero_grad(); loss.backward(); opt.step()
                if max_scale:
                    with torch.no_grad(): scale.clamp_(0, float(np.log(max_scale)))
            if ep % 10 == 9 or ep == epochs - 1:
                thead.eval(); mhead.eval()
                if bert is not None: bert.eval()
                with torch.no_grad():
                    M = len(Xte); ts = torch.cat([F.normalize(thead(tvec("test", torch.arange(i, min(M, i + 256)))), dim=-1) for i in range(0, M, 256)])
                    S = ts @ F.normalize(mhead(Xte), dim=-1).T
                    def h(S):
                        r = (S > S.diag()[:, None]).sum(1) + 1
                        return [round(float((r == 1).float().mean()) * 100, 1), round(float((r <= 10).float().mean()) * 100, 1), round(float((1 / r.float()).mean()) * 100, 1)]
                    hist.append({"epoch": ep + 1, "t2m": h(S), "m2t": h(S.T), "scale": round(scale.exp().item(), 1)})
        rec = {"name": name, "text": text, "mol": list(mol), "epochs": epochs, "text_lr": text_lr, "seed": seed, "max_scale": max_scale, "hidden": hidden, "drop": drop, "secs": round(time.time() - t0, 1), "hist": hist}
        print(json.dumps(rec), flush=True)
        return rec
    out = open(out_path, "w")
    for v in VARIANTS:
        if only and v["name"] not in only:
            continue
        out.write(json.dumps(run(**v)) + "\n")
        out.flush()


VARIANTS = [
    dict(name="baseline-replica"), dict(name="baseline-clamp100", max_scale=100),
    dict(name="frozen-fpc", mol=("fpc",)), dict(name="frozen-fpc3", mol=("fpc3",)),
    dict(name="frozen-all-fp", mol=("fpc", "fpc3", "ap", "maccs")),
    dict(name="top1", text="top1"), dict(name="top2", text="top2"),
    dict(name="top2-fpc", text="top2", mol=("fpc",)),
    dict(name="full-5e-5", text="full", epochs=30), dict(name="full-5e-5-fpc", text="full", epochs=30, mol=("fpc",)),
    dict(name="full-1e-4", text="full", epochs=30, text_lr=1e-4), dict(name="full-2e-5", text="full", epochs=30, text_lr=2e-5),
    dict(name="full-all-fp", text="full", epochs=30, mol=("fpc", "fpc3", "ap", "maccs")),
    dict(name="top2-all-fp", text="top2", mol=("fpc", "fpc3", "ap", "maccs")),
    dict(name="full-5e-5-s1", text="full", epochs=30, seed=1), dict(name="top2-s1", text="top2", seed=1),
    dict(name="baseline-replica-s1", seed=1),
]


def render(path: str) -> None:
    """Markdown table: Hits@1 / Hits@10 / MRR at epoch 10 and at the end, both directions."""
    print("| variant | text tower | molecule features | seed | epochs | t→m Hits@1 (ep 10 / end) | m→t Hits@1 (ep 10 / end) | t→m Hits@10 (end) | t→m MRR (end) | seconds |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for line in open(path):
        r = json.loads(line)
        a, z = r["hist"][0], r["hist"][-1]
        print(f"| {r['name']} | {r['text']} | {' + '.join(r['mol'])} | {r['seed']} | {r['epochs']} | "
              f"{a['t2m'][0]} / {z['t2m'][0]} | {a['m2t'][0]} / {z['m2t'][0]} | {z['t2m'][1]} | {z['t2m'][2]} | {r['secs']} |")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("prepare"); a.add_argument("-o", required=True); a.add_argument("--chebi20", default="../shared/data/chebi20")
    b = sub.add_parser("run"); b.add_argument("pairs"); b.add_argument("-o", required=True); b.add_argument("--variant", action="append", dest="variants", default=[], help="run only these (repeatable)")
    c = sub.add_parser("render"); c.add_argument("jsonl")
    args = p.parse_args()
    if args.cmd == "prepare":
        prepare(args.o, args.chebi20)
    elif args.cmd == "run":
        study(args.pairs, args.o, args.variants)
    else:
        render(args.jsonl)
