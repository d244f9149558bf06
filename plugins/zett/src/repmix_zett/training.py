"""Training the ZeTT hypernetwork for a sentence encoder (``repmix zett train-hypernetwork``).

The official recipe (``train.py``, configs ``v7:*``), at a CPU budget:

1. **Initialisation**: the source embeddings go in as a frozen input; ``in_scaler`` maps them to
   std 0.02, and ``scaler`` is set so that the untrained network's predictions for a sample of
   source tokens have the source embeddings' per-dimension mean and std (``init_rescaler``).
2. **Identity warm-up** (``identity_steps``): the source tokenizer as target, each token
   decomposed into itself (``hn_surface_maxlen = 1``), a random subsample of the vocabulary
   per step (``identity_n_subsample``); loss: squared error to the token's own embedding,
   summed over dimensions, averaged over tokens.
3. **Main phase** (``steps``): the main model stays frozen. Texts are read in chunks of
   ``tokenizer_texts``; for each chunk a new tokenizer is *sampled*: BPE with the source's
   normaliser, pre-tokenizer and ``##`` convention, trained on that chunk, with a vocabulary
   size drawn log-uniformly from [``vocab_min``, ``vocab_max``] (the official code samples a
   UnigramLM over each 2048-text batch; see docs). Each minibatch of the chunk is tokenized with
   it, the hypernetwork predicts the embeddings of the tokens that occur (ZeTT's
   ``subsample_mode: positives_only``; an encoder has no output softmax that would need the
   rest), the frozen model runs on them, and the loss is

   ``task + lexical_loss_weight * lexical``

   where ``task`` replaces the LM loss (all-MiniLM-L6-v2 ships no LM head): 1 - cosine between
   the mean-pooled sentence embedding computed with the predicted embeddings and the original
   model's embedding of the same text under its own tokenizer (distillation of the sentence
   encoder's output), and ``lexical`` is ZeTT's auxiliary loss: for target tokens whose
   decomposition is a single source token, the squared distance to that token's embedding,
   averaged over them and divided by the mean norm of those embeddings (weight 0.5 as in the
   paper).

AdamW (beta2 0.95, weight decay 0.01), linear warm-up then cosine decay, gradient clipping.
At the end the identity recovery is measured on the whole source vocabulary (cosine of the
prediction for each non-special token, decomposed into itself, with its embedding) and stored
in ``hypernetwork.json`` with the architecture, the source fingerprint and the training log.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from repmix.sdk import ComponentConfig, InputError, read_table, resolve_model_dir
from repmix.sdk.hf import load_hf_model, validate_model_dir

from .checkpoint import save_checkpoint
from .hypernet import HypernetArchitecture, ZettHypernetModule, pad_decompositions
from .targets import token_strings, train_like_source
from .vocabulary import SourceVocabulary, load_backend

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")


class CorpusSource(BaseModel):
    """One corpus file: its text columns (each a separate text unless ``join``)."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(..., description="a JSONL, TSV or CSV file")
    columns: list[str] = Field(..., min_length=1, description="text columns to read")
    join: bool = Field(False, description="join the columns of a row into one text (title + text)")
    split_sentences: bool = Field(False, description="split each text into sentences")


class HypernetTrainConfig(ComponentConfig):
    """The YAML of ``repmix zett train-hypernetwork`` (every key optional but ``corpus``)."""

    model: str = Field("all-MiniLM-L6-v2", description="the source model (frozen)")
    layers: int = Field(2, ge=1, description="hypernetwork layers (paper: 3)")
    hidden: int | None = Field(None, ge=8, description="hypernetwork width (default: the source embedding width)")
    intermediate: int | None = Field(None, ge=8, description="feed-forward width (default: 2 x hidden)")
    heads: int | None = Field(None, ge=1, description="attention heads (default: hidden / 64)")
    surface_maxlen: int = Field(7, ge=1, le=64, description="source ids per target token (hn_surface_maxlen)")
    corpus: list[CorpusSource] = Field(..., min_length=1, description="training texts")
    max_texts: int = Field(20000, ge=8, description="texts kept after filtering (a seeded draw)")
    min_source_tokens: int = Field(3, ge=1, description="drop texts shorter than this (source tokens)")
    max_source_tokens: int = Field(40, ge=2, description="drop texts longer than this (source tokens)")
    identity_steps: int = Field(300, ge=0, description="identity warm-up steps")
    identity_batch: int = Field(1024, ge=1, description="source tokens per identity step")
    steps: int = Field(300, ge=0, description="main-phase steps (sampled tokenizers)")
    batch_size: int = Field(16, ge=1, description="texts per main-phase step")
    tokenizer_texts: int = Field(256, ge=8, description="texts per sampled tokenizer (used for its steps)")
    vocab_min: int = Field(1000, ge=100, description="smallest sampled vocabulary")
    vocab_max: int = Field(30000, ge=100, description="largest sampled vocabulary")
    lr: float = Field(3e-4, gt=0, description="peak learning rate")
    warmup_steps: int = Field(50, ge=0, description="linear warm-up steps (over identity + main steps)")
    weight_decay: float = Field(0.01, ge=0)
    adam_beta2: float = Field(0.95, gt=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0)
    lexical_loss_weight: float = Field(0.5, ge=0, description="weight of the auxiliary lexical loss")
    seed: int = Field(0)
    threads: int | None = Field(None, ge=1, description="torch CPU threads (default: torch's)")
    device: str = Field("auto", description="auto (cuda when torch sees one, else cpu), cpu, cuda, cuda:N")
    log_every: int = Field(10, ge=1)

    _check_model = field_validator("model")(validate_model_dir)

    @model_validator(mode="after")
    def _ranges(self) -> HypernetTrainConfig:
        if self.vocab_min > self.vocab_max:
            raise ValueError(f"vocab_min {self.vocab_min} exceeds vocab_max {self.vocab_max}")
        if self.min_source_tokens > self.max_source_tokens:
            raise ValueError("min_source_tokens exceeds max_source_tokens")
        return self


def load_texts(cfg: HypernetTrainConfig, count: Callable[[list[str]], list[int]]) -> list[str]:
    """Corpus texts (sentences when asked), filtered by source length, deduplicated, a seeded draw."""
    texts: list[str] = []
    for src in cfg.corpus:
        path = Path(src.path)
        if not path.is_file():
            raise InputError(f"corpus file {src.path!r} not found")
        table = read_table(path, src.columns, on_error="skip", what="corpus file")
        for row in table.rows:
            values = [str(row.values[c]) for c in src.columns]
            units = [" ".join(values)] if src.join else values
            for unit in units:
                texts.extend(_SENTENCE_END.split(unit) if src.split_sentences else [unit])
    texts = list(dict.fromkeys(t.strip() for t in texts if t.strip()))
    random.Random(cfg.seed).shuffle(texts)
    kept: list[str] = []
    for start in range(0, len(texts), 4096):
        part = texts[start : start + 4096]
        kept.extend(t for t, n in zip(part, count(part), strict=True)
                    if cfg.min_source_tokens <= n <= cfg.max_source_tokens)
        if len(kept) >= cfg.max_texts:
            break
    if len(kept) < cfg.batch_size:
        raise InputError(f"only {len(kept)} corpus texts of {cfg.min_source_tokens}-{cfg.max_source_tokens} "
                         f"source tokens; need at least batch_size={cfg.batch_size}")
    return kept[: cfg.max_texts]


def _mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return F.normalize((hidden * m).sum(1) / m.sum(1).clamp_min(1.0), dim=-1)


@torch.no_grad()
def identity_recovery(net: ZettHypernetModule, vocab: SourceVocabulary, chunk: int = 4096) -> dict[str, float]:
    """Cosine of the prediction for every non-special source token (decomposed into itself) with its embedding."""
    was = net.training
    net.eval()
    device = net.source_embeddings.device
    specials = set(vocab.specials.values())
    ids = torch.tensor([i for i in range(vocab.size) if i not in specials], dtype=torch.long, device=device)
    sims = []
    for part in ids.split(chunk):
        pred = net(part[:, None], torch.ones(len(part), 1, dtype=torch.bool, device=device))
        sims.append(F.cosine_similarity(pred, net.source_embeddings[part], dim=-1))
    net.train(was)
    s = torch.cat(sims).float().cpu()
    q = torch.quantile(s, torch.tensor([0.01, 0.05, 0.5]))
    return {"tokens": float(len(s)), "mean_cosine": float(s.mean()), "min_cosine": float(s.min()),
            "p01_cosine": float(q[0]), "p05_cosine": float(q[1]), "median_cosine": float(q[2]),
            "share_above_0.9": float((s > 0.9).float().mean())}


def train_hypernetwork(cfg: HypernetTrainConfig, out_dir: Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train, write the checkpoint to ``out_dir`` and return its JSON (also written)."""
    previous_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _train(cfg, out_dir, log)
    finally:
        torch.set_num_threads(previous_threads)


def _train(cfg: HypernetTrainConfig, out_dir: Path, log: Callable[[str], None]) -> dict[str, Any]:
    from tokenizers import Tokenizer

    t0 = time.time()
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device)
    model_dir = resolve_model_dir(cfg.model)
    vocab = SourceVocabulary.from_model(model_dir, name=repr(cfg.model))
    source_backend = load_backend(model_dir, "source")
    lm = load_hf_model(cfg.model).float().eval().to(device)
    for p in lm.parameters():
        p.requires_grad_(False)
    E = lm.get_input_embeddings().weight.detach().clone()
    n_embd = int(E.shape[1])
    hidden = cfg.hidden or n_embd
    arch = HypernetArchitecture(
        n_embd=n_embd, source_vocab_size=int(E.shape[0]), layers=cfg.layers, hidden=hidden,
        intermediate=cfg.intermediate or 2 * hidden, heads=cfg.heads or max(1, hidden // 64),
        surface_maxlen=cfg.surface_maxlen,
    )
    net = ZettHypernetModule(arch).to(device)
    net.set_source_embeddings(E)
    specials = set(vocab.specials.values())
    plain_ids = torch.tensor([i for i in range(vocab.size) if i not in specials], dtype=torch.long, device=device)
    sample = plain_ids[torch.randperm(len(plain_ids), device=device)[:4096]]
    net.init_output_scaler(sample[:, None], torch.ones(len(sample), 1, dtype=torch.bool, device=device), E[sample])

    teacher_tok = Tokenizer.from_str(source_backend.to_str())
    teacher_tok.no_truncation()
    teacher_tok.enable_padding(pad_id=vocab.pad_id, pad_token=vocab.tokens[vocab.pad_id])
    counter = Tokenizer.from_str(source_backend.to_str())
    counter.no_truncation()
    counter.no_padding()
    texts = load_texts(cfg, lambda part: [len(e.ids) for e in counter.encode_batch(part, add_special_tokens=False)])
    log(f"zett: {len(texts)} training texts, architecture {arch.to_dict()}, device {device}")

    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=(0.9, cfg.adam_beta2), weight_decay=cfg.weight_decay)
    total = max(1, cfg.identity_steps + cfg.steps)

    def lr_at(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    history: list[dict[str, float]] = []

    def step_opt(loss: torch.Tensor) -> float:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        opt.step()
        sched.step()
        return float(norm)

    net.train()
    # ---- identity warm-up
    order = plain_ids[torch.randperm(len(plain_ids), device=device)]
    pos = 0
    for step in range(cfg.identity_steps):
        if pos + cfg.identity_batch > len(order):
            order, pos = plain_ids[torch.randperm(len(plain_ids), device=device)], 0
        ids = order[pos : pos + cfg.identity_batch]
        pos += cfg.identity_batch
        pred = net(ids[:, None], torch.ones(len(ids), 1, dtype=torch.bool, device=device))
        loss = (pred - E[ids]).pow(2).sum(-1).mean()
        step_opt(loss)
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.identity_steps:
            entry = {"phase": "identity", "step": step + 1, "loss": float(loss.detach()), "seconds": time.time() - t0}
            history.append(entry)
            log(f"identity step {step + 1}/{cfg.identity_steps}: loss {entry['loss']:.4f} ({entry['seconds']:.0f} s)")
    after_identity = identity_recovery(net, vocab) if cfg.identity_steps else None

    # ---- main phase: sampled tokenizers, frozen model, task + lexical loss
    step = 0
    text_pos = 0
    window: list[dict[str, float]] = []
    while step < cfg.steps:
        if text_pos + cfg.tokenizer_texts > len(texts):
            rng.shuffle(texts)
            text_pos = 0
        chunk = texts[text_pos : text_pos + cfg.tokenizer_texts]
        text_pos += cfg.tokenizer_texts
        size = round(math.exp(rng.uniform(math.log(cfg.vocab_min), math.log(cfg.vocab_max))))
        target = train_like_source(chunk, source_backend, size, min_frequency=1)
        target.no_truncation()
        target.enable_padding(pad_id=int(target.token_to_id(vocab.tokens[vocab.pad_id]) or 0))
        surfaces = token_strings(target)
        chunk = sorted(chunk, key=len)  # similar lengths per minibatch: less padding
        starts = list(range(0, len(chunk) - cfg.batch_size + 1, cfg.batch_size))
        rng.shuffle(starts)
        for start in starts:
            if step >= cfg.steps:
                break
            batch = chunk[start : start + cfg.batch_size]
            with torch.no_grad():
                enc = teacher_tok.encode_batch(batch)
                t_ids = torch.tensor([e.ids for e in enc], device=device)
                t_mask = torch.tensor([e.attention_mask for e in enc], device=device)
                teacher = _mean_pool(lm(input_ids=t_ids, attention_mask=t_mask).last_hidden_state, t_mask)
            enc = target.encode_batch(batch)
            s_ids = torch.tensor([e.ids for e in enc], device=device)
            s_mask = torch.tensor([e.attention_mask for e in enc], device=device)
            uniq, inverse = torch.unique(s_ids, return_inverse=True)
            toks = [surfaces[int(i)] for i in uniq]
            decomps = [vocab.decompose(t, arch.surface_maxlen) for t in toks]
            d_ids, d_mask = pad_decompositions(decomps, vocab.pad_id, device)
            special = torch.tensor([t in vocab.specials for t in toks], dtype=torch.bool, device=device)
            pred = net(d_ids, d_mask, special)
            student = _mean_pool(
                lm(inputs_embeds=pred[inverse], attention_mask=s_mask,
                   token_type_ids=torch.zeros_like(s_ids)).last_hidden_state, s_mask)
            task = (1 - (student * teacher).sum(-1)).mean()
            single = torch.tensor([len(d) == 1 and t not in vocab.specials and d[0] != vocab.unk_id
                                   for t, d in zip(toks, decomps, strict=True)], dtype=torch.bool, device=device)
            if bool(single.any()):
                tgt = E[d_ids[single, 0]]
                lexical = (pred[single] - tgt).pow(2).sum(-1).mean() / tgt.norm(dim=-1).mean()
            else:
                lexical = pred.new_zeros(())
            loss = task + cfg.lexical_loss_weight * lexical
            step_opt(loss)
            step += 1
            window.append({"task": float(task.detach()), "lexical": float(lexical.detach()),
                           "overlap": float(single.float().mean())})
            if step % cfg.log_every == 0 or step == cfg.steps:
                mean = {k: sum(w[k] for w in window) / len(window) for k in window[0]}
                entry = {"phase": "main", "step": step, **mean, "vocab": float(len(surfaces)), "seconds": time.time() - t0}
                history.append(entry)
                window = []
                log(f"main step {step}/{cfg.steps}: task {mean['task']:.4f} (1 - cos) lexical {mean['lexical']:.4f} "
                    f"overlap {mean['overlap']:.2f} vocab {len(surfaces)} ({entry['seconds']:.0f} s)")

    identity = identity_recovery(net, vocab)
    net.cpu()
    meta = {
        "architecture": arch.to_dict(),
        "source": {"model": cfg.model, "vocab_size": int(E.shape[0]), "n_embd": n_embd,
                   "fingerprint": vocab.fingerprint, "tokenizer_size": vocab.size},
        "training": {"config": cfg.model_dump(), "texts": len(texts), "seconds": round(time.time() - t0, 1),
                     "unk_decompositions": vocab.unknown, "truncated_decompositions": vocab.truncated,
                     "torch_threads": torch.get_num_threads(), "device": str(device),
                     "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                     "history": history},
        "identity_after_warmup": after_identity,
        "identity": identity,
    }
    save_checkpoint(out_dir, net, meta)
    log(f"zett: identity recovery over {int(identity['tokens'])} source tokens: mean cosine "
        f"{identity['mean_cosine']:.4f}, 5th percentile {identity['p05_cosine']:.4f}, min {identity['min_cosine']:.4f}")
    log(f"zett: wrote {out_dir} in {meta['training']['seconds']:.0f} s")
    return json.loads(json.dumps(meta))
