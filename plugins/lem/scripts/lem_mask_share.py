"""Where lem.mask puts its masks on SciFact: share of masked positions in entity / verb / noun words.

Run from the repository root: HF_HUB_OFFLINE=1 python plugins/lem/scripts/lem_mask_share.py
"""
import torch, warnings
warnings.simplefilter("ignore")
from repmix.sdk import Runtime, build_model, load_config, plan_model, load_component_class
from repmix.sdk.lm import IGNORE_INDEX
from repmix_lem.selection import group_words, ENTITY, VERB, NOUN
m = build_model(plan_model(load_config("plugins/lem/configs/pretrain-scifact.yaml")))
t = m.tower("text"); tok, corr = t.tokenizer, t.corruptor
DS = load_component_class("dataset", "std.text-corpus")
col = next(iter(DS(DS.Config(path="../shared/data/scifact/corpus.jsonl", split="train", block_size=128), Runtime(tokenizers={"text": tok})).load(None).columns.values()))
batch = tok([list(col[i]) for i in range(64)])
cand = batch["attention_mask"].bool() & ~batch["special_tokens_mask"]
words = group_words(cand, batch["word_ids"]); classes = corr.word_classes(batch["input_ids"], cand, words)
_, tg = corr(batch, torch.Generator().manual_seed(0))
chosen = (tg["targets"].hidden != IGNORE_INDEX)
cls_of = {}
for b, (ws, cs) in enumerate(zip(words, classes)):
    for w, c in zip(ws, cs):
        for p in w: cls_of[(b, p)] = c
picked = [cls_of[(b, p)] for b, p in torch.nonzero(chosen).tolist()]
nw = sum(len(w) for w in words); tagged = sum(1 for cs in classes for c in cs if c)
print("masked/candidates", chosen.sum().item() / cand.sum().item())
print("words tagged entity/verb/noun:", tagged / nw, " entity", sum(1 for cs in classes for c in cs if c & ENTITY) / nw)
print("masked positions in tagged words:", sum(1 for c in picked if c) / len(picked), " in entity words:", sum(1 for c in picked if c & ENTITY) / len(picked))
words_hit = {}
for b, p in torch.nonzero(chosen).tolist():
    wid = int(batch["word_ids"][b, p]); words_hit[(b, wid)] = words_hit.get((b, wid), 0) + 1
print("max masked subwords per word:", max(words_hit.values()))
