"""``dse.distill-pairs``: teacher scores from a file or a repmix model, clear errors, and a tiny training run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from repmix.sdk import (
    InputError,
    LocatedConfig,
    Runtime,
    build_model,
    parse_yaml,
    plan_model,
    save_model,
)
from repmix.sdk.testing import run_cli
from repmix_dse.data import (
    DistillPairsConfig,
    DistillPairsDataset,
    write_teacher_scores,
)

PAIRS = [
    ("a man is riding a horse", "the man rides a horse", 4.5),
    ("a dog is eating", "a cat is sitting", 1.0),
    ("the car is red", "the red car", 4.8),
    ("two children are playing", "the woman is reading", 0.2),
    ("a \"plane\" is taking off", "the plane's taking off", 5.0),  # quotes stay literal (STS-B has them)
    ("one man is walking", "a man is running", 2.6),
]


def _pairs_file(directory: Path) -> Path:
    path = directory / "train.tsv"
    lines = ["score\tsentence1\tsentence2", *(f"{s}\t{a}\t{b}" for a, b, s in PAIRS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _dataset(**cfg: object) -> DistillPairsDataset:
    return DistillPairsDataset(DistillPairsConfig(**cfg), Runtime())


def test_scores_file_gives_label_and_teacher_score_per_pair(tmp_path: Path) -> None:
    data = _pairs_file(tmp_path)
    scores = tmp_path / "teacher.tsv"
    write_teacher_scores(scores, ("sentence1", "sentence2"), [(a, b) for a, b, _ in reversed(PAIRS)],
                         [0.1 * i for i in range(len(PAIRS))][::-1])
    examples = _dataset(path=str(tmp_path), target_scale=0.2, teacher={"scores": str(scores), "scale": 2.0}).load()
    assert examples.columns["query"] == [a for a, _, _ in PAIRS]
    assert examples.columns["document"] == [b for _, b, _ in PAIRS]
    expected = [[0.2 * s, 2.0 * 0.1 * i] for i, (_, _, s) in enumerate(PAIRS)]
    assert torch.allclose(torch.tensor(examples.targets), torch.tensor(expected))
    only_z = _dataset(path=str(data), target=None, limit=2, subset_seed=3, teacher={"scores": str(scores)}).load()
    kept = sorted(int(i) for i in np.random.default_rng(3).permutation(len(PAIRS))[:2])
    assert only_z.columns["query"] == [PAIRS[i][0] for i in kept]
    assert only_z.targets == pytest.approx([0.1 * i for i in kept])


def test_binary_teacher_logits_become_z1_minus_z0(tmp_path: Path) -> None:
    _pairs_file(tmp_path)
    scores = tmp_path / "teacher.tsv"
    rows = ["sentence1\tsentence2\tlogit0\tlogit1", *(f"{a}\t{b}\t1.0\t{s}" for a, b, s in PAIRS)]
    scores.write_text("\n".join(rows) + "\n", encoding="utf-8")
    examples = _dataset(path=str(tmp_path), teacher={"scores": str(scores)}).load()
    assert [t[1] for t in examples.targets] == pytest.approx([s - 1.0 for _, _, s in PAIRS])


def test_missing_teacher_pairs_name_how_many_and_one_example(tmp_path: Path) -> None:
    _pairs_file(tmp_path)
    scores = tmp_path / "teacher.tsv"
    write_teacher_scores(scores, ("sentence1", "sentence2"), [(a, b) for a, b, _ in PAIRS[:4]], [0.5] * 4)
    with pytest.raises(InputError) as err:
        _dataset(path=str(tmp_path), teacher={"scores": str(scores)}).load()
    message = str(err.value)
    assert "lacks scores for 2 of 6 training pairs" in message
    assert repr(PAIRS[4][0]) in message and repr(PAIRS[4][1]) in message


def test_teacher_needs_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one of 'scores'"):
        DistillPairsConfig(path="x", teacher={})
    with pytest.raises(ValueError, match="exactly one of 'scores'"):
        DistillPairsConfig(path="x", teacher={"scores": "a.tsv", "model": "run"})


TEACHER_YAML = """
model:
  towers:
    query:
      tokenizer: {{type: std.hf-tokenizer, model: '{m}'}}
      encoder:   {{type: std.hf-transformer, model: '{m}'}}
      poolers:   {{sentence: {{type: std.mean}}}}
    document: {{shared_with: query}}
  alignments:
    similarity: {{type: std.cosine, between: [query.sentence, document.sentence]}}
"""


def test_teacher_model_scores_pairs_with_its_alignment(tmp_path: Path, tiny_bert_dir: str) -> None:
    _pairs_file(tmp_path)
    data, lines = parse_yaml(TEACHER_YAML.format(m=tiny_bert_dir), "teacher.yaml")
    teacher = build_model(plan_model(LocatedConfig(data, lines, "teacher.yaml")))
    saved = save_model(teacher, tmp_path / "teacher-model")
    a = torch.from_numpy(teacher.encode([p[0] for p in PAIRS], tower="query"))
    b = torch.from_numpy(teacher.encode([p[1] for p in PAIRS], tower="document"))
    reference = torch.nn.functional.cosine_similarity(a, b, dim=1)
    examples = _dataset(path=str(tmp_path), target=None, teacher={"model": str(saved)}).load()
    torch.testing.assert_close(torch.tensor(examples.targets), reference, rtol=0, atol=1e-5)
    yaml_path = tmp_path / "teacher.yaml"
    yaml_path.write_text(TEACHER_YAML.format(m=tiny_bert_dir), encoding="utf-8")
    from_yaml = _dataset(path=str(tmp_path), target=None, teacher={"model": str(yaml_path)}).load()
    torch.testing.assert_close(torch.tensor(from_yaml.targets), reference, rtol=0, atol=1e-5)
    with pytest.raises(InputError, match="no alignment 'nope'"):
        _dataset(path=str(tmp_path), teacher={"model": str(saved), "alignment": "nope"}).load()


def test_student_trains_two_steps_from_yaml(tmp_path: Path, tiny_bert_dir: str) -> None:
    """Top-layers pooler + pair head + dse-distill, trained by the engine and evaluated by std's sts."""
    _pairs_file(tmp_path)
    scores = tmp_path / "teacher.tsv"
    write_teacher_scores(scores, ("sentence1", "sentence2"), [(a, b) for a, b, _ in PAIRS], [0.2 * s for *_, s in PAIRS])
    m = tiny_bert_dir
    config = tmp_path / "dse.yaml"
    config.write_text(
        f"""
model:
  towers:
    query:
      tokenizer: {{type: std.hf-tokenizer, model: '{m}'}}
      encoder:   {{type: std.hf-transformer, model: '{m}'}}
      poolers:   {{sentence: {{type: dse.top-layers-mean, layers: 4}}}}
    document: {{shared_with: query}}
  alignments:
    pair: {{type: dse.pair-head, hidden: 16, between: [query.sentence, document.sentence]}}
  losses:
    - {{type: dse.dse-distill, on: pair, alpha: 0.5}}
data: {{type: dse.distill-pairs, path: '{tmp_path}', target_scale: 0.2, teacher: {{scores: '{scores}'}}}}
train: {{epochs: 1, batch_size: 3, lr: 1.0e-3, seed: 0, max_steps: 2, device: cpu}}
evaluate: {{type: std.sts, on: pair, similarity: alignment, split: train, data: {{type: std.sts, path: '{tmp_path}'}}}}
""",
        encoding="utf-8",
    )
    run = tmp_path / "run"
    assert run_cli(["train", str(config), "-o", str(run), "--no-progress"]) == 0
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["type"] == "train"]
    assert train and all(k in train[-1] for k in ("loss", "loss0.DSEDistillLoss.distill", "loss0.DSEDistillLoss.task"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) == {"spearman_pair", "pearson_pair"}, metrics  # scored by the pair head itself
    assert all(-1.0 <= v <= 1.0 for v in metrics.values()), metrics
