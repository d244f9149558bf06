"""``lem.mask`` end to end on a WordPiece LM tokenizer: conformance, the LEM invariants on real
batches (one subword per selected word, entity-only masking with the fill pass off, specials and
padding untouched, the 80/10/10 replacement), segments cut at special tokens, and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from repmix.sdk import ConfigError, InputError, Runtime, load_component_class
from repmix.sdk.conformance_lm import LMByteTokenizer, check_corruptor
from repmix.sdk.lm import IGNORE_INDEX
from repmix_lem.corruption import LEMCorruptor

TEXTS = [
    "the man is riding a horse in the park",
    "a woman was reading about molecules and atoms",
    "the dog is playing with a child . the cat is sitting on the house",
]
LEXICON = "man\tnoun\nhorse\tnoun\npark\tentity,noun\nriding\tverb\nreading\tverb\nmolecules\tnoun\n" \
          "woman\tnoun\ndog\tnoun\nchild\tnoun\ncat\tnoun\nhouse\tnoun\nplaying\tverb\nsitting\tverb\n"


@pytest.fixture()
def lexicon(tmp_path: Path) -> str:
    path = tmp_path / "lexicon.tsv"
    path.write_text("# word<TAB>classes\n" + LEXICON, encoding="utf-8")
    return str(path)


@pytest.fixture()
def wordpiece(tiny_bert_dir: str):
    pytest.importorskip("repmix_std")
    cls = load_component_class("tokenizer", "std.lm-tokenizer")
    return cls(cls.Config(algorithm="pretrained", model=tiny_bert_dir, max_length=64), Runtime())


def _corruptor(tok, lexicon: str, **kw) -> LEMCorruptor:
    cfg = LEMCorruptor.Config(tagger="lexicon", lexicon=lexicon, **kw)
    return LEMCorruptor(cfg, Runtime(tokenizer=tok))


def test_conformance(lexicon: str) -> None:
    check_corruptor(LEMCorruptor, {"tagger": "lexicon", "lexicon": lexicon, "rate": 0.3})


def test_lem_invariants_on_wordpiece(wordpiece, lexicon: str) -> None:
    corr = _corruptor(wordpiece, lexicon, fill=False, rate=0.5)
    batch = wordpiece(TEXTS)
    ids, words = batch["input_ids"], batch["word_ids"]
    protected = (batch["attention_mask"] == 0) | batch["special_tokens_mask"]
    entity_ids = set()
    for line in LEXICON.strip().splitlines():
        entity_ids.update(wordpiece.encode_plain(line.split("\t")[0]))
    for seed in range(20):
        out, tg = corr(batch, torch.Generator().manual_seed(seed))
        targets = tg["targets"].hidden
        chosen = targets != IGNORE_INDEX
        assert not bool((chosen & protected).any())
        assert torch.equal(out["input_ids"][~chosen], ids[~chosen])
        for b in range(ids.shape[0]):
            w = words[b][chosen[b]].tolist()
            assert len(w) == len(set(w)), "two subwords of one word masked"
            assert all(int(ids[b, p]) in entity_ids for p in torch.nonzero(chosen[b]).flatten().tolist())
        assert torch.equal(targets[chosen], ids[chosen])


def test_budget_with_fill(wordpiece, lexicon: str) -> None:
    corr = _corruptor(wordpiece, lexicon)
    batch = wordpiece(TEXTS)
    cand = batch["attention_mask"].bool() & ~batch["special_tokens_mask"]
    _, tg = corr(batch, torch.Generator().manual_seed(0))
    per_row = (tg["targets"].hidden != IGNORE_INDEX).sum(1).tolist()
    assert per_row == [max(1, round(0.15 * int(n))) for n in cand.sum(1).tolist()]


def test_replacement_80_10_10(wordpiece, lexicon: str) -> None:
    corr = _corruptor(wordpiece, lexicon, rate=0.9)
    batch = wordpiece(TEXTS * 20)
    counts = torch.zeros(3)
    for seed in range(10):
        out, tg = corr(batch, torch.Generator().manual_seed(seed))
        chosen = tg["targets"].hidden != IGNORE_INDEX
        new, old = out["input_ids"][chosen], batch["input_ids"][chosen]
        counts += torch.tensor([(new == wordpiece.mask_token_id).sum(), ((new != old) & (new != wordpiece.mask_token_id)).sum(),
                                (new == old).sum()], dtype=torch.float)
    share = counts / counts.sum()
    # the kept 10 % also holds random draws equal to the original (1/vocab): within 3 points
    assert abs(share[0] - 0.8) < 0.03 and abs(share[1] - 0.1) < 0.03 and abs(share[2] - 0.1) < 0.03


def test_segments_are_cut_at_special_tokens(wordpiece, lexicon: str) -> None:
    corr = _corruptor(wordpiece, lexicon)
    seen: list[list[str]] = []

    def spy(segments):
        seen.extend(segments)
        return [[0] * len(s) for s in segments]

    corr.tag = spy
    a, b = wordpiece.encode_plain("the man is riding"), wordpiece.encode_plain("a dog")
    block = [wordpiece.bos_token_id, *a, wordpiece.eos_token_id, wordpiece.bos_token_id, *b, wordpiece.eos_token_id]
    corr(wordpiece([block]), torch.Generator().manual_seed(0))
    assert seen == [["the", "man", "is", "riding"], ["a", "dog"]]


def test_words_are_rebuilt_from_subwords(wordpiece, lexicon: str) -> None:
    corr = _corruptor(wordpiece, lexicon)
    seen: list[list[str]] = []
    corr.tag = lambda segs: (seen.extend(segs), [[0] * len(s) for s in segs])[1]
    corr(wordpiece(["benzene ringxyz"]), torch.Generator().manual_seed(0))
    assert seen == [["benzene", "ringxyz"]]  # "ringxyz" is several WordPiece tokens, one word


def test_errors(tmp_path: Path, lexicon: str) -> None:
    with pytest.raises(ValueError, match="needs lexicon"):
        LEMCorruptor.Config(tagger="lexicon")
    with pytest.raises(ConfigError, match="does not exist"):
        _corruptor(LMByteTokenizer(), str(tmp_path / "missing.tsv"))
    bad = tmp_path / "bad.tsv"
    bad.write_text("horse\tanimal\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown word class 'animal'"):
        _corruptor(LMByteTokenizer(), str(bad))
    bad.write_text("horse noun\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 1"):
        _corruptor(LMByteTokenizer(), str(bad))
    with pytest.raises(ValueError, match="mask_prob"):
        LEMCorruptor.Config(tagger="lexicon", lexicon=lexicon, mask_prob=0.95, random_prob=0.1)
    corr = _corruptor(LMByteTokenizer(), lexicon)
    batch = LMByteTokenizer()(["a horse"])
    del batch["word_ids"]
    with pytest.raises(InputError, match="word_ids"):
        corr(batch)
    with pytest.raises(ConfigError, match="mask token"):
        LEMCorruptor(LEMCorruptor.Config(tagger="lexicon", lexicon=lexicon), Runtime(tokenizer=None))


def test_spacy_model_errors() -> None:
    pytest.importorskip("spacy")
    with pytest.raises(ValueError, match="'no_such_pipeline_xyz' is not installed"):
        LEMCorruptor.Config(spacy_model="no_such_pipeline_xyz")
    with pytest.raises(ValueError, match="nothing to tag"):
        LEMCorruptor.Config(spacy_model="no_such_pipeline_xyz", p_entity=0, p_verb=0, p_noun=0)
