"""Language modelling in std: faithfulness (BertForMaskedLM, GPT2LMHeadModel, generate), masking
statistics, the uniform byte model, corpora, trained tokenizers saved with the model, bad input."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from repmix.sdk import (
    Encoded,
    Encoder,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    InputError,
    LossInputs,
    Runtime,
    build_model,
    load_config,
    load_model,
    plan_model,
    temporary_component,
)
from repmix.sdk.lm import IGNORE_INDEX, sample_replacements
from repmix.sdk.testing import run_cli

from repmix_std.corpora import TextCorpus, held_out
from repmix_std.corruption import MaskingCorruptor
from repmix_std.lm import CausalLMLoss, HFLanguageModel, LMTokenizer, MaskedLMLoss
from repmix_std.lm_evaluators import BitsPerByteEvaluator, add_typos

WORDS = ("the cell protein gene expression increased decreased patients study results mice tumor cancer "
         "blood levels receptor binding signal pathway activity").split()


def write_corpus(path: Path, n: int = 120, seed: int = 0) -> Path:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 40))) + "."
            f.write(json.dumps({"_id": str(i), "title": f"Title {i}", "text": text}) + "\n")
    return path


@pytest.fixture()
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REPMIX_CACHE", str(tmp_path / "cache"))
    return write_corpus(tmp_path / "corpus.jsonl")


def byte_tokenizer(max_length: int = 64) -> LMTokenizer:
    return LMTokenizer(LMTokenizer.Config(algorithm="bytes", max_length=max_length), Runtime())


def clm_yaml(corpus: Path, *, algorithm: str = "bpe", extra: str = "") -> str:
    return f"""
model:
  towers:
    text:
      tokenizer:
        type: lm-tokenizer
        algorithm: {algorithm}
        vocab_size: 200
        max_length: 32
        train_on: {{type: text-corpus, path: {corpus}, split: train}}
      encoder:
        type: hf-lm
        architecture: {{model_type: gpt2, n_layer: 1, n_embd: 16, n_head: 2, n_positions: 32}}
  losses:
    - {{type: causal-lm}}
data: {{type: text-corpus, path: {corpus}, split: train, block_size: 32}}
train: {{epochs: 1, batch_size: 4, lr: 1.0e-3, seed: 0, max_steps: 3, log_every: 1}}
{extra}
"""


# ------------------------------------------------------------------------------------ faithfulness
def test_masked_lm_loss_equals_bert_for_masked_lm() -> None:
    from transformers import BertForMaskedLM

    tok = byte_tokenizer()
    arch = {"model_type": "bert", "num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 2,
            "intermediate_size": 64, "max_position_embeddings": 64}
    torch.manual_seed(0)
    enc = HFLanguageModel(HFLanguageModel.Config(architecture=arch), Runtime(tokenizer=tok))
    enc.eval()
    corr = MaskingCorruptor(MaskingCorruptor.Config(rate=0.3), Runtime(tokenizer=tok))
    batch = tok(["masked language models", "predict the missing bytes of a text", "x"])
    g = torch.Generator().manual_seed(1)
    corrupted, targets = corr(batch, g)
    out = enc(corrupted)
    out.granularities.update(targets)
    ours = MaskedLMLoss(MaskedLMLoss.Config(), Runtime())(LossInputs({}, {"text": out})).value
    reference = BertForMaskedLM(enc.lm.config)
    reference.load_state_dict(enc.lm.state_dict())
    reference.eval()
    theirs = reference(input_ids=corrupted["input_ids"], attention_mask=corrupted["attention_mask"],
                       labels=targets["targets"].hidden).loss
    assert torch.allclose(ours, theirs, atol=1e-6), (float(ours), float(theirs))


def test_causal_lm_loss_equals_gpt2_lm_head_model() -> None:
    from transformers import GPT2LMHeadModel

    tok = byte_tokenizer()
    torch.manual_seed(0)
    enc = HFLanguageModel(
        HFLanguageModel.Config(architecture={"model_type": "gpt2", "n_layer": 2, "n_embd": 32, "n_head": 2,
                                             "n_positions": 64}),
        Runtime(tokenizer=tok),
    )
    enc.eval()
    batch = tok(["a causal language model", "next byte", "predicts the next token of the text"])
    out = enc(batch)
    ours = CausalLMLoss(CausalLMLoss.Config(), Runtime())(LossInputs({}, {"text": out})).value
    reference = GPT2LMHeadModel(enc.lm.config)
    reference.load_state_dict(enc.lm.state_dict())
    reference.eval()
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, IGNORE_INDEX)
    theirs = reference(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss
    assert torch.allclose(ours, theirs, atol=1e-6), (float(ours), float(theirs))


def test_train_body_false_leaves_only_the_head_trainable() -> None:
    tok = byte_tokenizer()
    arch = {"model_type": "bert", "num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2,
            "intermediate_size": 32, "max_position_embeddings": 64}
    enc = HFLanguageModel(HFLanguageModel.Config(architecture=arch, head="masked", train_body=False),
                          Runtime(tokenizer=tok))
    trainable = {n for n, p in enc.lm.named_parameters() if p.requires_grad}
    assert trainable and all(not n.startswith(enc.lm.base_model_prefix + ".") for n in trainable)
    assert not enc.lm.get_output_embeddings().weight.requires_grad  # tied to the frozen input embeddings


def test_free_head_is_not_tied() -> None:
    tok = byte_tokenizer()
    arch = {"model_type": "gpt2", "n_layer": 1, "n_embd": 16, "n_head": 2, "n_positions": 64}
    tied = HFLanguageModel(HFLanguageModel.Config(architecture=arch), Runtime(tokenizer=tok))
    free = HFLanguageModel(HFLanguageModel.Config(architecture=arch, tie_embeddings=False), Runtime(tokenizer=tok))
    assert tied.lm.get_output_embeddings().weight is tied.lm.get_input_embeddings().weight
    assert free.lm.get_output_embeddings().weight is not free.lm.get_input_embeddings().weight


def test_kv_cache_scores_equal_full_forward_and_greedy_equals_generate() -> None:
    from repmix_std.decoding import GreedyDecoding

    tok = byte_tokenizer()
    torch.manual_seed(0)
    enc = HFLanguageModel(
        HFLanguageModel.Config(architecture={"model_type": "gpt2", "n_layer": 2, "n_embd": 32, "n_head": 2,
                                             "n_positions": 64}),
        Runtime(tokenizer=tok),
    ).eval()
    ids = torch.tensor([[tok.bos_token_id, *tok.encode_plain("kv cache")]])
    full, _ = enc.next_logprobs(ids)
    first, cache = enc.next_logprobs(ids[:, :4])
    rest, _ = enc.next_logprobs(ids[:, 4:], cache)
    assert torch.allclose(torch.cat([first, rest], dim=1), full, atol=1e-5)
    prompt = ids[0].tolist()
    ours = GreedyDecoding(GreedyDecoding.Config(), Runtime()).generate(enc, prompt, max_new_tokens=12)
    theirs = enc.lm.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False,
                             pad_token_id=tok.pad_token_id, eos_token_id=None)
    assert ours == theirs[0, ids.shape[1]:].tolist()


# ------------------------------------------------------------------------------------ masking
def _stats_batch(tok: LMTokenizer, n_tokens: int) -> dict[str, torch.Tensor]:
    rng = random.Random(0)
    rows = []
    while sum(len(r) for r in rows) < n_tokens:
        rows.append(" ".join(rng.choice(WORDS) for _ in range(10)))
    return tok(rows)


def test_bert_masking_statistics_over_1e5_tokens() -> None:
    tok = byte_tokenizer(max_length=128)
    batch = _stats_batch(tok, 100_000)
    corr = MaskingCorruptor(MaskingCorruptor.Config(rate=0.15), Runtime(tokenizer=tok))
    corrupted, targets = corr(batch, torch.Generator().manual_seed(0))
    ids, new = batch["input_ids"], corrupted["input_ids"]
    cand = (batch["attention_mask"] == 1) & ~batch["special_tokens_mask"]
    chosen = targets["targets"].mask
    n_cand, n = int(cand.sum()), int(chosen.sum())
    assert n_cand >= 100_000
    assert not bool((chosen & ~cand).any()), "special or padding tokens were masked"
    assert abs(n / n_cand - 0.15) < 4 * math.sqrt(0.15 * 0.85 / n_cand)
    masked = int((new[chosen] == tok.mask_token_id).sum())
    kept = int((new[chosen] == ids[chosen]).sum())
    random_ = n - masked - kept
    # random replacements that hit the original id count as kept: expected share 0.1 * (1 + 1/V)
    p_keep = 0.1 + 0.1 / tok.vocab_size
    for observed, p in ((masked, 0.8), (kept, p_keep), (random_, 0.1 - 0.1 / tok.vocab_size)):
        assert abs(observed / n - p) < 4 * math.sqrt(p * (1 - p) / n), (observed / n, p)
    assert torch.equal(targets["targets"].hidden[chosen], ids[chosen])
    assert bool((targets["targets"].hidden[~chosen] == IGNORE_INDEX).all())
    assert bool((new[~chosen] == ids[~chosen]).all())


def test_masking_is_seeded() -> None:
    tok = byte_tokenizer()
    corr = MaskingCorruptor(MaskingCorruptor.Config(rate=0.2, scheme="span"), Runtime(tokenizer=tok))
    batch = tok(["the same seed gives the same corruption", "every time it runs"])
    a = corr(batch, torch.Generator().manual_seed(3))
    b = corr(batch, torch.Generator().manual_seed(3))
    assert torch.equal(a[0]["input_ids"], b[0]["input_ids"])
    assert torch.equal(a[1]["targets"].hidden, b[1]["targets"].hidden)


@pytest.mark.parametrize("scheme", ["whole-word", "span", "ngram"])
def test_word_level_schemes_mask_whole_words(scheme: str) -> None:
    tok = byte_tokenizer(max_length=128)
    batch = _stats_batch(tok, 20_000)
    corr = MaskingCorruptor(MaskingCorruptor.Config(rate=0.15, scheme=scheme), Runtime(tokenizer=tok))
    _, targets = corr(batch, torch.Generator().manual_seed(0))
    chosen, words = targets["targets"].mask, batch["word_ids"]
    for b in range(chosen.shape[0]):
        for w in words[b][chosen[b]].unique().tolist():
            in_word = words[b] == w
            assert bool(chosen[b][in_word].all()), f"{scheme}: word {w} of row {b} partly masked"
    cand = (batch["attention_mask"] == 1) & ~batch["special_tokens_mask"]
    rate = float(chosen.sum()) / float(cand.sum())
    assert 0.09 < rate < 0.2, rate


def test_entity_masking_prefers_entities(tmp_path: Path) -> None:
    tok = byte_tokenizer()
    (tmp_path / "entities.txt").write_text("protein\n", encoding="utf-8")
    corr = MaskingCorruptor(
        MaskingCorruptor.Config(rate=0.2, scheme="entity", entities=str(tmp_path / "entities.txt"), fill=False),
        Runtime(tokenizer=tok),
    )
    batch = tok(["a protein binds the protein receptor of a cell"])
    _, targets = corr(batch, torch.Generator().manual_seed(0))
    masked = bytes(batch["input_ids"][0][targets["targets"].mask[0]].tolist()).decode()
    assert masked and set(masked.replace("protein", "").strip()) == set(), masked


def test_electra_sampler_is_seeded_and_without_gradient() -> None:
    logits = torch.randn(5, 7, requires_grad=True)
    a = sample_replacements(logits, torch.Generator().manual_seed(0))
    b = sample_replacements(logits, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and not a.requires_grad
    peaked = torch.full((3, 7), -1e4)
    peaked[:, 2] = 0
    assert sample_replacements(peaked).tolist() == [2, 2, 2]


# ------------------------------------------------------------------------------------ bits per byte
class UniformByteLM(Encoder):
    """Every next byte equally likely (probability 1/256); special tokens impossible."""

    citation: ClassVar[str] = "test"
    causal = True
    context_length = None

    @classmethod
    def signature(cls, config: Any) -> EncoderSignature:
        return EncoderSignature({"token": GranularitySpec("sequence", 1)}, causal=True)

    def __init__(self, config: Any, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.vocab = int(runtime.tokenizer.vocab_size)

    def forward(self, batch: Any, output_layers: bool = False) -> Encoded:
        ids = batch["input_ids"]
        return Encoded({"token": Granularity(ids.unsqueeze(-1).float(), batch["attention_mask"].bool())})

    def next_logprobs(self, ids: torch.Tensor, cache: Any = None, attention_mask: Any = None) -> Any:
        logits = torch.full((*ids.shape, self.vocab), float("-inf"), dtype=torch.float64)
        logits[..., :256] = 0.0  # float64 log-probs: the sum is exact to 1e-12
        return torch.log_softmax(logits, dim=-1), None


def test_uniform_byte_model_scores_exactly_8_bits_per_byte() -> None:
    cfg = load_config_text("""
model:
  towers:
    text:
      tokenizer: {type: lm-tokenizer, algorithm: bytes, max_length: 16}
      encoder: {type: uniform-byte-lm}
""")
    with temporary_component("encoder", "uniform-byte-lm", UniformByteLM):
        model = build_model(plan_model(cfg))
    texts = ["héllo wörld — bytes, not characters", "a", "x" * 100]
    from repmix.sdk import Examples

    metrics = BitsPerByteEvaluator(BitsPerByteEvaluator.Config(), Runtime()).evaluate(model, Examples({"text": texts}))
    assert abs(metrics["bits_per_byte"] - 8.0) < 1e-12
    assert metrics["bytes"] == sum(len(t.encode()) for t in texts) == metrics["tokens"]


def load_config_text(text: str) -> Any:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    return load_config(f.name)


def test_typos_are_seeded_and_change_text() -> None:
    text = "bits per byte on noisy text " * 5
    a = add_typos(text, 0.1, random.Random(0))
    assert a == add_typos(text, 0.1, random.Random(0)) and a != text


# ------------------------------------------------------------------------------------ corpora, tokenizers
def test_text_corpus_split_is_by_document_hash_and_packs_blocks(corpus: Path) -> None:
    cfg = TextCorpus.Config(path=str(corpus))
    train = TextCorpus(cfg, Runtime()).load("train")
    test = TextCorpus(cfg, Runtime()).load("test")
    assert len(train) + len(test) == 120 and len(test) > 0
    assert not set(train.ids or []) & set(test.ids or [])
    assert all(held_out(k, 0.1) for k in test.ids or [])
    tok = byte_tokenizer(max_length=64)
    packed = TextCorpus(TextCorpus.Config(path=str(corpus), block_size=64), Runtime(tokenizers={"text": tok})).load()
    blocks = packed.columns["text"]
    assert len(blocks) > 10 and all(len(blocks[i]) == 64 for i in range(len(blocks)))
    assert blocks[0][0] == tok.bos_token_id


@pytest.mark.parametrize("algorithm", ["bpe", "byte-bpe", "unigram", "wordpiece"])
def test_trained_tokenizer_is_saved_with_the_model(corpus: Path, tmp_path: Path, algorithm: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config_text(clm_yaml(corpus, algorithm=algorithm))
    model = build_model(plan_model(cfg))
    tok = model.tower("text").tokenizer
    text = "the protein binds the receptor"
    ids = tok(["the protein binds the receptor"])["input_ids"]
    if algorithm in ("bpe", "byte-bpe", "unigram"):
        assert tok.decode(tok.encode_plain(text)) == text  # lossless
    if algorithm == "byte-bpe":  # each token's bytes, concatenated, are the text's UTF-8 bytes
        accented = "the protéin – binds"
        assert b"".join(tok.token_bytes(i) for i in tok.encode_plain(accented)) == accented.encode("utf-8")
    model.save(tmp_path / "saved")
    monkeypatch.setenv("REPMIX_CACHE", str(tmp_path / "elsewhere"))  # no cached tokenizer: must use the bundled one
    (corpus).rename(corpus.with_suffix(".gone"))
    loaded = load_model(tmp_path / "saved")
    assert torch.equal(loaded.tower("text").tokenizer(["the protein binds the receptor"])["input_ids"], ids)
    assert "files/" in (tmp_path / "saved" / "config.yaml").read_text()


def test_init_from_a_tied_decoder_loads_every_tensor(corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A tied LM head is saved once: fine-tuning from it reports nothing absent and copies the weights."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clm.yaml").write_text(clm_yaml(corpus))
    assert run_cli(["train", "clm.yaml", "-o", "first"]) == 0
    capsys.readouterr()
    assert run_cli(["train", "clm.yaml", "-o", "second", "train.init_from=first", "train.lr=1e-12",
                    "train.max_steps=1"]) == 0
    err = capsys.readouterr().err
    assert "(0 not in it, 0 of another shape, 0 of its tensors unused)" in err, err
    from safetensors.torch import load_file

    a, b = (load_file(str(tmp_path / r / "model" / "model.safetensors")) for r in ("first", "second"))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_train_and_generate_end_to_end(corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    extra = f"""evaluate:
  - {{type: bits-per-byte, data: {{type: text-corpus, path: {corpus}}}, split: test}}
  - {{type: typo-bits-per-byte, data: {{type: text-corpus, path: {corpus}}}, split: test, rate: 0.1}}
generate: {{type: top-p, p: 0.9, seed: 0}}
"""
    (tmp_path / "clm.yaml").write_text(clm_yaml(corpus, extra=extra))
    assert run_cli(["check", "clm.yaml"]) == 0
    assert run_cli(["train", "clm.yaml", "-o", "run"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert 0 < metrics["bits-per-byte/bits_per_byte"] < 8
    assert metrics["typo-bits-per-byte/bits_per_byte_typos"] > metrics["typo-bits-per-byte/bits_per_byte"]
    capsys.readouterr()
    assert run_cli(["generate", "run", "--prompt", "the protein", "--max-new-tokens", "5", "--strategy", "greedy"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("the protein")
    assert run_cli(["generate", "run", "--prompt", "the protein", "--max-new-tokens", "5", "--strategy", "greedy"]) == 0
    assert capsys.readouterr().out == first
    assert run_cli(["generate", "run", "--prompt", "the", "--top-p", "0.5", "--seed", "1"]) == 0


# ------------------------------------------------------------------------------------ bad input
def _train_error(tmp_path: Path, corpus_bytes: bytes, capsys: pytest.CaptureFixture[str], data: str = "") -> str:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(corpus_bytes)
    good = write_corpus(tmp_path / "good.jsonl")
    text = clm_yaml(good).replace(f"data: {{type: text-corpus, path: {good}, split: train, block_size: 32}}",
                                   data or f"data: {{type: text-corpus, path: {bad}, split: all, block_size: 32}}")
    (tmp_path / "c.yaml").write_text(text)
    capsys.readouterr()
    assert run_cli(["train", str(tmp_path / "c.yaml"), "-o", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") == 1
    return err


def test_empty_corpus_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPMIX_CACHE", str(tmp_path / "cache"))
    assert "is empty" in _train_error(tmp_path, b"", capsys)


def test_non_utf8_corpus_reports_the_byte_offset(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPMIX_CACHE", str(tmp_path / "cache"))
    line = b'{"_id": "1", "text": "ok"}\n'
    err = _train_error(tmp_path, line + b'{"_id": "2", "text": "caf\xe9"}\n', capsys)
    assert "not UTF-8" in err and f"byte offset {len(line) + 25}" in err


def test_document_longer_than_block_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPMIX_CACHE", str(tmp_path / "cache"))
    long = json.dumps({"_id": "1", "text": "word " * 200}).encode() + b"\n"
    bad = tmp_path / "bad.jsonl"
    err = _train_error(tmp_path, long, capsys,
                       data=f"data: {{type: text-corpus, path: {bad}, split: all, block_size: 32, pack: false}}")
    assert "longer than block_size 32" in err


@pytest.mark.parametrize("rate", ["0", "1", "1.5", "-0.1"])
def test_mask_rate_outside_open_interval_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], rate: str) -> None:
    (tmp_path / "m.yaml").write_text(f"""
model:
  towers:
    text:
      tokenizer: {{type: lm-tokenizer, algorithm: bytes}}
      corruption: {{type: mlm-mask, rate: {rate}}}
      encoder: {{type: hf-lm, architecture: {{model_type: bert, num_hidden_layers: 1, hidden_size: 16,
                 num_attention_heads: 2, intermediate_size: 32}}}}
  losses: [{{type: masked-lm}}]
""")
    capsys.readouterr()
    assert run_cli(["check", str(tmp_path / "m.yaml")]) == 2
    err = capsys.readouterr().err
    assert "rate" in err and "Traceback" not in err


def test_decoder_with_masked_lm_objective_is_refused_at_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m.yaml").write_text("""
model:
  towers:
    text:
      tokenizer: {type: lm-tokenizer, algorithm: bytes}
      corruption: {type: mlm-mask, rate: 0.15}
      encoder: {type: hf-lm, architecture: {model_type: gpt2, n_layer: 1, n_embd: 16, n_head: 2}}
  losses: [{type: masked-lm}]
""")
    capsys.readouterr()
    assert run_cli(["check", str(tmp_path / "m.yaml")]) == 2
    err = capsys.readouterr().err
    assert "masked-lm needs a bidirectional encoder" in err and "model.losses.0" in err


def test_masked_lm_without_corruption_is_refused_at_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m.yaml").write_text("""
model:
  towers:
    text:
      tokenizer: {type: lm-tokenizer, algorithm: bytes}
      encoder: {type: hf-lm, architecture: {model_type: bert, num_hidden_layers: 1, hidden_size: 16,
                num_attention_heads: 2, intermediate_size: 32}}
  losses: [{type: masked-lm}]
""")
    capsys.readouterr()
    assert run_cli(["check", str(tmp_path / "m.yaml")]) == 2
    assert "corruption: {type: mlm-mask" in capsys.readouterr().err


def test_generation_without_causal_head_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m.yaml").write_text("""
model:
  towers:
    text:
      tokenizer: {type: lm-tokenizer, algorithm: bytes}
      encoder: {type: hf-lm, architecture: {model_type: bert, num_hidden_layers: 1, hidden_size: 16,
                num_attention_heads: 2, intermediate_size: 32}}
""")
    assert run_cli(["build", str(tmp_path / "m.yaml"), "-o", str(tmp_path / "saved")]) == 0
    capsys.readouterr()
    assert run_cli(["generate", str(tmp_path / "saved"), "--prompt", "hello"]) == 2
    err = capsys.readouterr().err
    assert "no causal LM head" in err and "Traceback" not in err


def test_generate_block_needs_a_causal_tower(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m.yaml").write_text("""
model:
  towers:
    text:
      tokenizer: {type: lm-tokenizer, algorithm: bytes}
      encoder: {type: hf-lm, architecture: {model_type: bert, num_hidden_layers: 1, hidden_size: 16,
                num_attention_heads: 2, intermediate_size: 32}}
generate: {type: greedy}
""")
    capsys.readouterr()
    assert run_cli(["check", str(tmp_path / "m.yaml")]) == 2
    assert "needs a causal tower" in capsys.readouterr().err


def test_lm_tokenizer_rejects_bad_items() -> None:
    tok = byte_tokenizer(max_length=8)
    with pytest.raises(InputError):
        tok([3.5])
    with pytest.raises(InputError):
        tok([list(range(9))])


# ------------------------------------------------------------------------------------ conformance
@pytest.mark.parametrize("config", [{"rate": 0.3}, {"rate": 0.3, "scheme": "whole-word"},
                                    {"rate": 0.3, "scheme": "span"}, {"rate": 0.3, "scheme": "ngram", "max_span": 3}])
def test_mlm_mask_conforms(config: dict[str, Any]) -> None:
    from repmix.sdk.conformance_lm import check_corruptor

    check_corruptor("mlm-mask", config)


@pytest.mark.parametrize(("name", "config"), [("greedy", {}), ("top-p", {"p": 0.8}), ("top-p", {"p": 1.0, "temperature": 0.7})])
def test_decoding_strategies_conform(name: str, config: dict[str, Any]) -> None:
    from repmix.sdk.conformance_lm import check_decoding

    check_decoding(name, config)


def test_writing_a_plugin_examples_run_and_conform() -> None:
    """The masking scheme and decoding strategy of docs/writing-a-plugin.md §6 work as written."""
    import re

    from repmix.sdk.conformance_lm import check_corruptor, check_decoding

    doc = Path(__file__).resolve().parents[3] / "docs" / "writing-a-plugin.md"
    if not doc.is_file():
        pytest.skip("docs/writing-a-plugin.md is not in this checkout")
    section = doc.read_text(encoding="utf-8").split("## 6. A new masking scheme or decoding strategy", 1)[1]
    blocks = [b for b in re.findall(r"```python\n(.*?)```", section, flags=re.S) if "class " in b]
    namespace: dict[str, Any] = {}
    for block in blocks:
        exec(compile(block, str(doc), "exec"), namespace)  # noqa: S102 - our own documentation
    check_corruptor(namespace["TrigramMasking"], {"rate": 0.3})
    check_decoding(namespace["TopK"], {"k": 5})


# the main conformance kit over the LM tokenizer and encoder (masked and causal heads)
from repmix.sdk.conformance import Case, conformance_cases  # noqa: E402

LM_TEXTS = ["hello world", "a considerably longer sentence about molecules and words", "x", "mid length text"]
BYTES = {"type": "lm-tokenizer", "algorithm": "bytes", "max_length": 64}
LM_CASES = [
    Case("tokenizer", "lm-tokenizer", {"algorithm": "bytes", "max_length": 64}, items=LM_TEXTS, bad_items=[3.5, None],
         bad_configs=[{"max_length": 1}, {"algorithm": "bpe"}, {"algorithm": "pretrained"}], id="tokenizer-lm-bytes"),
    Case("encoder", "hf-lm", {"architecture": {"model_type": "gpt2", "n_layer": 2, "n_embd": 16, "n_head": 2,
                                               "n_positions": 64}},
         tokenizer=BYTES, items=LM_TEXTS, bad_configs=[{"architecture": None}, {"granularities": {"logits": -1}}],
         expected_failures={"config_roundtrip": "hf-lm has no default model: model or architecture is required"},
         id="encoder-hf-lm-gpt2"),
    Case("encoder", "hf-lm", {"architecture": {"model_type": "bert", "num_hidden_layers": 2, "hidden_size": 16,
                                               "num_attention_heads": 2, "intermediate_size": 32,
                                               "max_position_embeddings": 64}, "tie_embeddings": False},
         tokenizer=BYTES, items=LM_TEXTS, id="encoder-hf-lm-bert-free-head",
         expected_failures={"config_roundtrip": "hf-lm has no default model: model or architecture is required",
                            "gradients": "transformers' BertForMaskedLM with tie_word_embeddings=False leaves "
                            "cls.predictions.bias unused (decoder.bias is no longer tied to it)"}),
]


@conformance_cases(LM_CASES)
def test_lm_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)
