"""The early-exit encoder, the truncate pooler at encode time, the sts-grid evaluator and the heat-map script."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from repmix.sdk import (
    Examples,
    LocatedConfig,
    Runtime,
    build_model,
    load_component_class,
    parse_yaml,
    plan_model,
)

TEXTS = ["a man is riding a horse", "the dog is eating food", "two women are talking", "a red car", "hello"]

TOWER = """
model:
  towers:
    text:
      tokenizer: {{type: hf-tokenizer, model: {model}, max_length: 32}}
      encoder: {encoder}
      poolers: {{sentence: {pooler}}}
"""


def build(text: str):  # type: ignore[no-untyped-def]
    data, lines = parse_yaml(text, "t.yaml")
    return build_model(plan_model(LocatedConfig(data, lines, "t.yaml"))).eval()


def test_early_exit_equals_the_full_models_hidden_state(tiny_bert_dir: str) -> None:
    full = build(TOWER.format(model=tiny_bert_dir, encoder=f"{{type: hf-transformer, model: {tiny_bert_dir}}}",
                              pooler="{type: mean}"))
    short = build(TOWER.format(model=tiny_bert_dir,
                               encoder=f"{{type: matryoshka2d.early-exit, model: {tiny_bert_dir}, exit_layer: 2}}",
                               pooler="{type: mean}"))
    # same parameter names as hf-transformer: trained weights load either way
    assert full.state_dict().keys() == short.state_dict().keys()
    short.load_state_dict(full.state_dict())
    with torch.no_grad():
        ref = full.encode_batch("text", TEXTS, output_layers=True)
        out = short.encode_batch("text", TEXTS, output_layers=True)
        again = short.encode_batch("text", TEXTS, output_layers=True)
    assert ref.layers is not None and out.layers is not None and len(out.layers) == 3
    for i in range(3):
        torch.testing.assert_close(out.layers[i], ref.layers[i], atol=1e-6, rtol=0)
    torch.testing.assert_close(out["token"].hidden, ref.layers[2], atol=1e-6, rtol=0)
    assert again.layers is not None and len(again.layers) == 3  # no duplicated output hooks across calls
    # the real model keeps all its blocks; the ones above the exit are frozen
    blocks = short.tower("text").encoder.model.encoder.layer
    assert len(blocks) == 3 and not any(p.requires_grad for p in blocks[2].parameters())
    assert all(p.requires_grad for p in blocks[1].parameters())


def test_truncate_pooler_serves_every_layer_and_dim(tiny_bert_dir: str) -> None:
    from repmix_matryoshka2d.poolers import pool_tokens

    model = build(TOWER.format(
        model=tiny_bert_dir,
        encoder=f"{{type: matryoshka2d.early-exit, model: {tiny_bert_dir}, exit_layer: 2}}",
        pooler="{type: matryoshka2d.truncate, dim: 8}",
    ))
    full = build(TOWER.format(model=tiny_bert_dir, encoder=f"{{type: hf-transformer, model: {tiny_bert_dir}}}",
                              pooler="{type: mean}"))
    vectors = torch.from_numpy(model.encode(TEXTS, tower="text"))
    with torch.no_grad():
        ref = full.encode_batch("text", TEXTS, output_layers=True)
    assert ref.layers is not None
    expected = torch.nn.functional.normalize(pool_tokens(ref.layers[2], ref["token"].full_mask(), "mean")[:, :8], dim=-1)
    torch.testing.assert_close(vectors, expected, atol=1e-5, rtol=0)
    assert vectors.shape == (5, 8)


def test_grid_evaluator(tiny_bert_dir: str) -> None:
    from repmix_matryoshka2d.evaluator import StsGridEvaluator, default_dims, grid_key

    text = f"""
model:
  towers:
    query:
      tokenizer: {{type: hf-tokenizer, model: {tiny_bert_dir}, max_length: 32}}
      encoder:   {{type: hf-transformer, model: {tiny_bert_dir}}}
      poolers:   {{sentence: {{type: mean, normalize: true}}}}
    document: {{shared_with: query}}
  alignments:
    similarity: {{type: cosine, between: [query.sentence, document.sentence]}}
"""
    model = build(text)
    data = Examples(
        {"query": TEXTS + ["a dog", "a cat is sitting"], "document": ["a man rides", "a dog eats", "women talk", "the car",
                                                                      "hello world", "the dog", "a cat"]},
        targets=[4.0, 3.5, 4.5, 2.0, 3.0, 4.8, 2.5],
    )
    evaluator = StsGridEvaluator(StsGridEvaluator.Config(dims=[32, 8], batch_size=3), Runtime())
    metrics = evaluator.evaluate(model, data)
    assert set(metrics) == {"spearman_cosine"} | {grid_key(layer, d) for layer in (1, 2, 3) for d in (32, 8)}
    assert metrics["spearman_cosine"] == pytest.approx(metrics[grid_key(3, 32)], abs=1e-9)
    sts = load_component_class("evaluator", "sts")  # std's, in this plugin's test extra: the reference evaluator
    std = sts(sts.Config(on="similarity", progress=False), Runtime()).evaluate(model, data)
    assert metrics["spearman_cosine"] == pytest.approx(std["spearman_cosine"], abs=1e-9)
    assert default_dims(384) == [384, 192, 96, 48]


def test_grid_script_writes_csv_md_png(tiny_bert_dir: str, stsb_dir: Path, tmp_path: Path) -> None:
    from repmix.sdk import save_model
    from repmix.sdk.testing import run_cli

    text = f"""
model:
  towers:
    query:
      tokenizer: {{type: hf-tokenizer, model: {tiny_bert_dir}, max_length: 32}}
      encoder:   {{type: hf-transformer, model: {tiny_bert_dir}}}
      poolers:   {{sentence: {{type: mean, normalize: true}}}}
    document: {{shared_with: query}}
  alignments:
    similarity: {{type: cosine, between: [query.sentence, document.sentence]}}
evaluate: {{type: sts, on: similarity, split: dev, data: {{type: sts, path: {stsb_dir}}}}}
"""
    for seed in (0, 1):
        save_model(build(text), tmp_path / "abl" / "variants" / f"pooler=mean__seed={seed}" / "model")
    assert run_cli(["matryoshka2d-grid", str(tmp_path / "abl"), "-o", str(tmp_path / "out"), "--limit", "24", "--dims", "32", "16"]) == 0
    rows = (tmp_path / "out" / "grid.csv").read_text().splitlines()
    assert rows[0] == "run,variant,layer,dim,spearman" and len(rows) == 1 + 2 * 3 * 2
    md = (tmp_path / "out" / "grid.md").read_text()
    assert "## pooler=mean (mean of 2 runs)" in md and "| 3 |" in md
    assert (tmp_path / "out" / "grid.png").stat().st_size > 1000
    # redrawn from grid.csv alone: the same table
    (tmp_path / "out" / "grid.png").unlink()
    assert run_cli(["matryoshka2d-grid", "-o", str(tmp_path / "out"), "--from-csv"]) == 0
    assert (tmp_path / "out" / "grid.md").read_text() == md and (tmp_path / "out" / "grid.png").is_file()


@pytest.mark.parametrize(("mode", "st_mode"), [("mean", "mean"), ("cls", "cls"), ("max", "max"), ("last-token", "lasttoken")])
def test_truncate_pooling_modes_match_sentence_transformers(mode: str, st_mode: str) -> None:
    from repmix_matryoshka2d.poolers import pool_tokens
    from sentence_transformers.sentence_transformer.modules.pooling import Pooling

    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(4, 7, 16, generator=g)
    mask = torch.arange(7)[None, :] < torch.tensor([7, 3, 1, 5])[:, None]
    reference = Pooling(16, pooling_mode=st_mode)({"token_embeddings": hidden.clone(), "attention_mask": mask.long()})
    torch.testing.assert_close(pool_tokens(hidden, mask, mode), reference["sentence_embedding"], atol=1e-6, rtol=0)  # type: ignore[arg-type]
