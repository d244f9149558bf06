"""Images as tower inputs (repmix_std.images): reading, the patch tokenizer, the ViT, datasets, the evaluator,
and `repmix check / train / evaluate / encode` end to end on scikit-learn's bundled digits.

Data: sklearn.datasets.load_digits (1,797 real 8x8 scans, shipped inside scikit-learn) and
load_sample_images (two photographs shipped inside scikit-learn); nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from repmix.sdk.conformance import Case, conformance_cases, fixture
from repmix.sdk.testing import run_cli

PIL = pytest.importorskip("PIL.Image", reason="images need Pillow: pip install 'repmix-std[images]'")
sklearn_datasets = pytest.importorskip("sklearn.datasets", reason="digits need scikit-learn")

from repmix_std.images import (  # noqa: E402
    ImagePatchTokenizer,
    image_problem,
    to_image_array,
)
from repmix.sdk.vit import patchify  # noqa: E402

DIGITS = sklearn_datasets.load_digits()
ITEMS = [(DIGITS.images[0] / 16.0).astype(np.float32), (DIGITS.images[1] * 15).astype(np.uint8), np.zeros((5, 7, 3), np.uint8)]


@pytest.fixture(scope="session")
def digit_pngs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An image-folder of 60 real digits (train/test x 3 classes x 10) written as 8-bit PNGs."""
    root = tmp_path_factory.mktemp("digits-folder")
    counts: dict[tuple[str, int], int] = {}
    for i, (img, y) in enumerate(zip(DIGITS.images, DIGITS.target)):
        if y > 2:
            continue
        split = "train" if i % 2 == 0 else "test"
        if counts.get((split, int(y)), 0) >= 10:
            continue
        counts[(split, int(y))] = counts.get((split, int(y)), 0) + 1
        folder = root / split / f"class{y}"
        folder.mkdir(parents=True, exist_ok=True)
        PIL.fromarray(np.round(img * 255 / 16).astype(np.uint8)).save(folder / f"{i}.png")
    return root


CASES = [
    Case("tokenizer", "image-patches", {"image_size": 8, "patch_size": 2}, items=ITEMS,
         bad_items=["no/such/image.png", np.zeros((4, 4, 5)), np.full((3, 3), 2.0), 7],
         bad_configs=[{"patch_size": 3}, {"channels": 2}, {"std": 0}]),
    Case("tokenizer", "image-patches", {"image_size": 16, "patch_size": 4, "channels": 3}, items=ITEMS,
         id="tokenizer-image-patches-rgb"),
    Case("encoder", "vit", {"hidden_size": 16, "layers": 2, "heads": 2},
         tokenizer={"type": "image-patches", "image_size": 8, "patch_size": 2}, items=ITEMS,
         bad_configs=[{"heads": 3}, {"layers": 0}]),
    Case("encoder", "vit", {"hidden_size": 16, "layers": 1, "heads": 4, "projection_dim": 8, "output_attentions": True},
         tokenizer={"type": "image-patches", "image_size": 16, "patch_size": 4, "channels": 3}, items=ITEMS,
         id="encoder-vit-projected-rgb"),
]


@conformance_cases(CASES)
def test_conformance(case: Case, check) -> None:  # type: ignore[no-untyped-def]
    check(case)


def test_reading_paths_arrays_and_pil_images_agree(tmp_path: Path) -> None:
    img = np.round(DIGITS.images[3] * 255 / 16).astype(np.uint8)
    path = tmp_path / "three.png"
    PIL.fromarray(img).save(path)
    from_path = to_image_array(str(path), 1)
    from_array = to_image_array(img, 1)
    from_pil = to_image_array(PIL.fromarray(img), 1)
    assert from_path.shape == (1, 8, 8) and from_path.dtype == np.float32
    np.testing.assert_array_equal(from_path, from_array)
    np.testing.assert_array_equal(from_pil, from_array)
    np.testing.assert_allclose(from_array[0], img / 255.0, atol=1e-7)
    rgb = to_image_array(img, 3)
    assert rgb.shape == (3, 8, 8) and np.allclose(rgb[0], rgb[2])


def test_sample_photographs_resize_to_the_grid() -> None:
    photos = sklearn_datasets.load_sample_images().images  # two real photographs, 427x640 RGB
    tok = ImagePatchTokenizer(ImagePatchTokenizer.Config(image_size=32, patch_size=8, channels=3), None)  # type: ignore[arg-type]
    batch = tok(photos)
    assert batch["pixel_values"].shape == (2, 3, 32, 32)
    assert float(batch["pixel_values"].min()) >= -1.0 and float(batch["pixel_values"].max()) <= 1.0
    assert patchify(tok.pixels(photos), 8).shape == (2, 16, 3 * 64)


def test_patchify_is_row_major() -> None:
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    p = patchify(x, 2)
    assert p[0, 0].tolist() == [0, 1, 4, 5] and p[0, 1].tolist() == [2, 3, 6, 7] and p[0, 2].tolist() == [8, 9, 12, 13]


def test_image_problems_are_explained() -> None:
    assert image_problem(np.zeros((8, 8), np.float32)) is None
    assert "does not exist" in (image_problem("missing.png") or "")
    assert "[0, 1]" in (image_problem(np.full((2, 2), 3.0)) or "")
    assert "expected an image" in (image_problem(3) or "")


def test_digits_dataset_splits_are_disjoint_and_complete() -> None:
    from repmix.sdk import LocatedConfig, build_component

    block = {"type": "digits", "label_template": "digit {name}"}
    ds = build_component(LocatedConfig({"data": block}), "dataset", block, ("data",))
    train, test = ds.load("train"), ds.load("test")
    assert len(train) + len(test) == 1797 and len(test) == 450
    assert not set(train.ids) & set(test.ids)
    assert train.columns["label"][0] == f"digit {train.extras['class_names'][int(train.targets[0])]}"
    assert train.columns["image"][0].shape == (8, 8) and float(train.columns["image"][0].max()) <= 1.0


def test_image_folder_and_image_pairs(digit_pngs: Path, tmp_path: Path) -> None:
    from repmix.sdk import LocatedConfig, build_component

    block = {"type": "image-folder", "path": str(digit_pngs), "fields": {"pixels": "image", "text": "label"}}
    ds = build_component(LocatedConfig({"data": block}), "dataset", block, ("data",))
    ex = ds.load("test")
    assert len(ex) == 30 and ex.extras["classes"] == ["class0", "class1", "class2"]
    assert all(Path(p).is_file() for p in ex.columns["pixels"])
    table = tmp_path / "pairs.tsv"
    rel = [str(Path(p).relative_to(digit_pngs)) for p in ex.columns["pixels"][:4]]
    table.write_text("image\tcaption\n" + "".join(f"../{digit_pngs.name}/{r}\ta scan\n" for r in rel))
    (tmp_path.parent / digit_pngs.name).exists() or pytest.skip("temporary folders are not siblings here")
    pblock = {"type": "image-pairs", "path": str(table), "fields": {"image": "image", "text": "caption"}}
    pairs = build_component(LocatedConfig({"data": pblock}), "dataset", pblock, ("data",)).load()
    assert len(pairs) == 4 and all(Path(p).is_file() for p in pairs.columns["image"])


def _config(tmp_path: Path, tiny_bert_dir: str) -> Path:
    cfg = f"""
model:
  towers:
    image:
      tokenizer: {{type: image-patches, image_size: 8, patch_size: 2}}
      encoder: {{type: vit, hidden_size: 16, layers: 1, heads: 2, projection_dim: 32}}
      poolers: {{embedding: {{type: mean, source: patch}}}}
    label:
      tokenizer: {{type: hf-tokenizer, model: {tiny_bert_dir}, max_length: 8}}
      encoder: {{type: hf-transformer, model: {tiny_bert_dir}, trainable: false}}
      poolers: {{embedding: {{type: mean}}}}
  alignments:
    image-text: {{type: cosine, between: [image.embedding, label.embedding]}}
  losses:
    - {{type: info-nce, on: image-text, temperature: 0.1}}
data: {{type: digits, limit: 48, label_template: "digit {{index}}"}}
train: {{epochs: 1, batch_size: 16, lr: 1.0e-3, seed: 0}}
evaluate: {{type: image-classification, on: image-text, split: test, data: {{type: digits, limit: 40}}}}
"""
    path = tmp_path / "digits.yaml"
    path.write_text(cfg)
    return path


def test_check_train_evaluate_encode_on_digits(tmp_path: Path, tiny_bert_dir: str, digit_pngs: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    config = _config(tmp_path, tiny_bert_dir)
    assert run_cli(["check", str(config)]) == 0
    assert "image-patches -> std.vit" in capsys.readouterr().out
    run = tmp_path / "run"
    assert run_cli(["train", str(config), "-o", str(run), "--no-progress"]) == 0
    assert run_cli(["evaluate", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    flat = json.dumps(metrics)
    assert "accuracy" in flat and "knn_accuracy" in flat
    listing = tmp_path / "images.txt"
    files = sorted(digit_pngs.glob("test/*/*.png"))[:5]
    listing.write_text("".join(f"{f}\n" for f in files))
    out = tmp_path / "emb.npy"
    assert run_cli(["encode", str(run), "--tower", "image", "--input", str(listing), "--output", str(out), "--no-progress"]) == 0
    emb = np.load(out)
    assert emb.shape == (5, 32) and np.isfinite(emb).all()
    bad = tmp_path / "bad.txt"
    bad.write_text("no/such/file.png\n")
    assert run_cli(["encode", str(run), "--tower", "image", "--input", str(bad), "--output", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
