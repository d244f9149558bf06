"""Images as tower inputs: a patch tokenizer, a ViT encoder, image datasets and a classification evaluator.

A tower's raw item may be an image given as

* a file path (``str`` or :class:`os.PathLike`; read with Pillow, relative to the working directory),
* a numpy array ``[H, W]`` (grey) or ``[H, W, C]`` (C = 1, 3 or 4); ``uint8`` arrays are
  divided by 255, floating arrays must already lie in ``[0, 1]``,
* a :class:`PIL.Image.Image`.

Components (registered in ``plugins/std/pyproject.toml``):

``image-patches`` (tokenizer)
    item -> ``{"pixel_values": FloatTensor[B, C, H, W]}``: converted to ``channels``, resized to
    ``image_size`` (bilinear, Pillow), scaled to ``(x - mean) / std``. It owns the patch grid
    (``patch_size``): the encoder reads ``image_size``, ``channels`` and ``patch_size`` from it,
    so they are written once in YAML.
``vit`` (encoder)
    a Vision Transformer built with ``transformers.ViTModel`` from a ``ViTConfig`` (from scratch,
    sizes in the block) or loaded from a local folder with ``config.json`` (``model:``).
    Granularities ``patch`` ``[B, N, D]`` (mask all True) and ``cls`` ``[B, D]``;
    per-layer states of ``patch``; ``extras["attentions"]`` when ``output_attentions``.
``image-folder``, ``image-pairs``, ``digits`` (datasets)
    a folder of ``<class>/<image>`` files; a table of image paths and texts; scikit-learn's
    bundled 8x8 digits (1,797 images, offline).
``image-classification`` (evaluator)
    accuracy of assigning each image to the best-scoring class item (through a declared
    alignment, e.g. image <-> class-name text) and leave-one-out 1-NN accuracy of the image
    embeddings.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field, field_validator, model_validator
from repmix.sdk import (
    ComponentConfig,
    ConfigError,
    Encoded,
    Encoder,
    EncoderSignature,
    Evaluator,
    Examples,
    Granularity,
    GranularitySpec,
    InputError,
    Runtime,
    Tokenizer,
)
from repmix.sdk.vit import image_geometry
from torch import Tensor

from repmix_std.datasets import (
    FileDatasetConfig,
    PairsConfig,
    PairsDataset,
    _FileDataset,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "DigitsDataset",
    "ImageClassificationEvaluator",
    "ImageFolderDataset",
    "ImagePairsDataset",
    "ImagePatchTokenizer",
    "ViTEncoder",
    "image_problem",
    "to_image_array",
]

#: File suffixes ``image-folder`` reads.
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")

VIT_CITATION = (
    "Dosovitskiy et al. (2021). An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale. "
    "ICLR 2021. Implementation: Hugging Face transformers ViTModel."
)


# --------------------------------------------------------------------------- reading images
def _is_pil(item: Any) -> bool:
    cls = type(item)
    return any(c.__module__.startswith("PIL.") and c.__name__ == "Image" for c in cls.__mro__)


def image_problem(item: Any) -> str | None:
    """Why ``item`` is not an image this module reads, or ``None`` (files are checked for existence only)."""
    if isinstance(item, (str, os.PathLike)):
        p = Path(item)
        if not str(item).strip():
            return "empty path"
        if not p.is_file():
            return f"image file {str(item)!r} does not exist (paths are relative to the working directory)"
        return None
    if isinstance(item, np.ndarray):
        if item.ndim not in (2, 3) or (item.ndim == 3 and item.shape[2] not in (1, 3, 4)):
            return f"expected an array [H, W] or [H, W, C] with C in 1, 3, 4; got shape {item.shape}"
        if item.size == 0:
            return "empty array"
        if item.dtype == np.uint8:
            return None
        if not np.issubdtype(item.dtype, np.floating):
            return f"expected a uint8 or floating array, got {item.dtype}"
        if not np.isfinite(item).all():
            return "the array holds NaN or infinite values"
        if float(item.min()) < 0.0 or float(item.max()) > 1.0:
            return "a floating image must lie in [0, 1]"
        return None
    if _is_pil(item):
        return None
    return f"expected an image (file path, numpy array or PIL image), got {type(item).__name__}"


def to_image_array(item: Any, channels: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """An image item as float32 ``[C, H, W]`` in ``[0, 1]``, with ``channels`` channels, resized to ``size`` (H, W)."""
    from PIL import Image

    problem = image_problem(item)
    if problem is not None:
        raise InputError(f"cannot read image: {problem}")
    if isinstance(item, (str, os.PathLike)):
        with Image.open(item) as img:
            img.load()
            image = img.copy()
    elif isinstance(item, np.ndarray):
        arr = item.astype(np.float32) / 255.0 if item.dtype == np.uint8 else item.astype(np.float32)
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if arr.ndim == 2:
            image = Image.fromarray(arr, mode="F")
        else:
            image = Image.fromarray(np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8))
    else:
        image = item
    if image.mode == "F":
        if channels == 3:
            image = Image.merge("RGB", [image.point(lambda v: v * 255.0).convert("L")] * 3)
    elif channels == 1:
        image = image.convert("L")
    else:
        image = image.convert("RGB")
    if size is not None and (image.height, image.width) != tuple(size):
        image = image.resize((size[1], size[0]), Image.BILINEAR)
    arr = np.asarray(image, dtype=np.float32)
    if image.mode != "F":
        arr = arr / 255.0
    if arr.ndim == 2:
        arr = arr[None]
    else:
        arr = arr.transpose(2, 0, 1)
    return np.ascontiguousarray(arr, dtype=np.float32)


# --------------------------------------------------------------------------- tokenizer
class ImagePatchTokenizer(Tokenizer):
    """Image items -> ``{"pixel_values": [B, C, H, W]}``, on a grid of ``patch_size`` patches.

    Every image is converted to ``channels`` channels, resized to ``image_size``
    and normalised as ``(x - mean) / std``. The patch grid is
    ``(image_size / patch_size)²`` tokens; the encoder reads ``image_size``,
    ``channels`` and ``patch_size`` from this tokenizer.
    """

    citation: ClassVar[str] = VIT_CITATION

    class Config(ComponentConfig):
        """Options of ``image-patches``."""

        image_size: int = Field(32, ge=1, description="images are resized to image_size x image_size pixels")
        patch_size: int = Field(4, ge=1, description="side of a square patch (a token); must divide image_size")
        channels: int = Field(1, description="1 (grey) or 3 (RGB)")
        mean: float = Field(0.5, description="subtracted from every pixel value in [0, 1]")
        std: float = Field(0.5, gt=0, description="pixel values are divided by it after the mean is subtracted")

        @field_validator("channels")
        @classmethod
        def _channels(cls, v: int) -> int:
            if v not in (1, 3):
                raise ValueError("channels must be 1 or 3")
            return v

        @model_validator(mode="after")
        def _grid(self) -> ImagePatchTokenizer.Config:
            if self.image_size % self.patch_size:
                raise ValueError(f"patch_size {self.patch_size} must divide image_size {self.image_size}")
            return self

    config: Config

    @property
    def grid(self) -> tuple[int, int]:
        """Patches per column and per row."""
        n = self.config.image_size // self.config.patch_size
        return n, n

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    def pixels(self, items: Sequence[Any]) -> Tensor:
        """Un-normalised pixels in [0, 1], ``[B, C, H, W]``."""
        c = self.config
        arrays = [to_image_array(item, c.channels, (c.image_size, c.image_size)) for item in items]
        if not arrays:
            return torch.zeros(0, c.channels, c.image_size, c.image_size)
        return torch.from_numpy(np.stack(arrays))

    def __call__(self, items: Sequence[Any]) -> dict[str, Tensor]:
        c = self.config
        return {"pixel_values": (self.pixels(items) - c.mean) / c.std}

    def check_item(self, item: Any) -> str | None:
        return image_problem(item)

    def sort_key(self, item: Any) -> int:
        return 0  # every image is resized to the same grid: nothing to gain from sorting




# --------------------------------------------------------------------------- encoder
class ViTEncoder(Encoder):
    """A Vision Transformer (transformers' ``ViTModel``), from scratch or from a local folder.

    From scratch, the ``ViTConfig`` is built from this block's sizes and the
    tokenizer's ``image_size`` / ``patch_size`` / ``channels``; with ``model:``
    the folder's ``config.json`` and weights are used (``load_pretrained``) and
    must agree with the tokenizer. Output: ``patch`` (the N patch tokens of the
    last layer after the final LayerNorm, mask all True) and ``cls`` (the CLS
    token, same LayerNorm), both mapped to ``projection_dim`` when set;
    ``layers`` are the patch tokens of every hidden state (embedding output
    first, the last one after the final LayerNorm), projected the same way.
    """

    citation: ClassVar[str] = VIT_CITATION

    class Config(ComponentConfig):
        """Options of ``vit``."""

        hidden_size: int = Field(64, ge=1, description="token width D (from scratch)")
        layers: int = Field(2, ge=1, description="transformer layers (from scratch)")
        heads: int = Field(4, ge=1, description="attention heads; must divide hidden_size (from scratch)")
        intermediate_size: int | None = Field(None, ge=1, description="MLP width (default 4 x hidden_size)")
        dropout: float = Field(0.0, ge=0.0, lt=1.0, description="hidden and attention dropout")
        model: str | None = Field(None, description="a local folder with a ViT config.json (+ weights); null: from scratch")
        output_attentions: bool = Field(False, description="put every layer's attention [B, H, N+1, N+1] in extras")
        projection_dim: int | None = Field(
            None, ge=1, description="a learned linear map of patch and cls to this width (CLIP's visual projection)"
        )

        @model_validator(mode="after")
        def _heads(self) -> ViTEncoder.Config:
            if self.model is None and self.hidden_size % self.heads:
                raise ValueError(f"heads {self.heads} must divide hidden_size {self.hidden_size}")
            return self

    config: Config

    @classmethod
    def _hf_config(cls, config: Config) -> Any:
        from transformers import ViTConfig

        if config.model is not None:
            folder = Path(config.model).expanduser()
            if not (folder / "config.json").is_file():
                raise ConfigError(f"model folder {config.model!r} has no config.json", found=config.model)
            return ViTConfig.from_pretrained(str(folder))
        return ViTConfig(
            hidden_size=config.hidden_size,
            num_hidden_layers=config.layers,
            num_attention_heads=config.heads,
            intermediate_size=config.intermediate_size or 4 * config.hidden_size,
            hidden_dropout_prob=config.dropout,
            attention_probs_dropout_prob=config.dropout,
        )

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:
        hidden, layers = config.hidden_size, config.layers
        if config.model is not None:
            hf = cls._hf_config(config)
            hidden, layers = int(hf.hidden_size), int(hf.num_hidden_layers)
        width = config.projection_dim or hidden
        return EncoderSignature(
            {"patch": GranularitySpec("sequence", width), "cls": GranularitySpec("pooled", width)},
            num_layers=layers + 1,
            layers_of="patch",
        )

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        from transformers import ViTModel

        image_size, patch_size, channels = image_geometry(runtime.tokenizer, "vit")
        hf = self._hf_config(config)
        if config.model is not None:
            declared = (int(hf.image_size), int(hf.patch_size), int(hf.num_channels))
            if declared != (image_size, patch_size, channels):
                raise ConfigError(
                    f"the ViT in {config.model!r} takes image_size/patch_size/channels {declared}, "
                    f"the tokenizer gives {(image_size, patch_size, channels)}",
                    hint="set the image-patches tokenizer to the model's sizes",
                )
        hf.image_size, hf.patch_size, hf.num_channels = image_size, patch_size, channels
        hf._attn_implementation = "eager"  # attention weights on request; identical maths
        if config.model is not None and runtime.load_pretrained:
            self.model = ViTModel.from_pretrained(config.model, config=hf, add_pooling_layer=False)
        else:
            self.model = ViTModel(hf, add_pooling_layer=False)
        self.num_layers = int(hf.num_hidden_layers) + 1
        self.projection = (
            torch.nn.Linear(int(hf.hidden_size), config.projection_dim) if config.projection_dim else torch.nn.Identity()
        )

    def forward(self, batch: dict[str, Tensor], output_layers: bool = False) -> Encoded:
        pixels = batch["pixel_values"]
        want_attn = self.config.output_attentions
        out = self.model(
            pixel_values=pixels, output_hidden_states=output_layers, output_attentions=want_attn, return_dict=True
        )
        last = self.projection(out.last_hidden_state)
        mask = torch.ones(last.shape[0], last.shape[1] - 1, dtype=torch.bool, device=last.device)
        grans = {"patch": Granularity(last[:, 1:], mask), "cls": Granularity(last[:, 0])}
        layers = None
        if output_layers:
            states = list(out.hidden_states)
            states[-1] = out.last_hidden_state  # the last state after the final LayerNorm
            layers = tuple(self.projection(s[:, 1:]) for s in states)
        extras: dict[str, Any] = {}
        if want_attn:
            extras["attentions"] = tuple(out.attentions)
        return Encoded(grans, layers=layers, layers_of="patch", extras=extras)


# --------------------------------------------------------------------------- datasets
class _LabelledConfig(FileDatasetConfig):
    fields: dict[str, str] = Field(
        default_factory=lambda: {"image": "image", "label": "label"},
        min_length=1,
        description="tower name -> 'image' or 'label' (which column feeds it); omit 'label' for images only",
    )
    label_template: str = Field("{name}", description="the label item of a class: '{name}' is its name, '{index}' its number")

    @field_validator("fields")
    @classmethod
    def _fields(cls, v: dict[str, str]) -> dict[str, str]:
        bad = sorted(set(v.values()) - {"image", "label"})
        if bad:
            raise ValueError(f"fields map tower names to 'image' or 'label', got {bad}")
        return v

    @field_validator("label_template")
    @classmethod
    def _template(cls, v: str) -> str:
        try:
            v.format(name="x", index=0)
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f"label_template may use only {{name}} and {{index}}: {err}") from None
        return v


class _LabelledDataset(_FileDataset):
    """Images with class labels -> columns by tower, targets = class index, extras['classes']."""

    config: _LabelledConfig

    def _examples(self, images: list[Any], labels: list[int], names: list[str], ids: list[str], part: str | None,
                  notes: list[str]) -> Examples:
        idx = self._holdout(len(images), part, notes, "images")
        idx = [idx[i] for i in self._subset(len(idx), notes, "images")]
        c = self.config
        items = [c.label_template.format(name=n, index=i) for i, n in enumerate(names)]
        columns: dict[str, list[Any]] = {}
        for tower, what in c.fields.items():
            columns[tower] = [images[i] for i in idx] if what == "image" else [items[labels[i]] for i in idx]
        return Examples(
            columns,
            targets=[float(labels[i]) for i in idx],
            ids=[ids[i] for i in idx],
            extras={"classes": items, "class_names": list(names)},
            notes=notes,
        )


class ImageFolderConfig(_LabelledConfig):
    """``image-folder``: ``path/<split>/<class>/<image>`` or ``path/<class>/<image>`` (with holdout)."""

    path: str = Field(description="the folder (relative to the working directory)")
    split_folders: bool = Field(True, description="path holds one sub-folder per split; false: class folders directly")


class ImageFolderDataset(_LabelledDataset):
    """A folder of images sorted into one sub-folder per class (torchvision's ``ImageFolder`` layout).

    Items are file paths; classes are the sorted folder names; ``targets`` is
    the class index and ``extras['classes']`` the label items of every class.
    """

    Config: ClassVar[type[ComponentConfig]] = ImageFolderConfig
    citation: ClassVar[str] = "torchvision.datasets.ImageFolder layout (https://pytorch.org/vision)."
    config: ImageFolderConfig

    def load(self, split: str | None = None) -> Examples:
        c = self.config
        split = split or c.split
        source, part = self._serve(split)
        root = Path(c.path)
        if not root.is_dir():
            raise InputError(f"image folder {c.path!r} does not exist", hint="relative to the working directory")
        folder = root / source if c.split_folders else root
        if c.split_folders and not folder.is_dir():
            present = sorted(p.name for p in root.iterdir() if p.is_dir())
            raise InputError(f"no folder for split {source!r} in {c.path!r}; sub-folders: {', '.join(present) or '(none)'}",
                             hint="set split_folders: false when the class folders are directly in path")
        names = sorted(p.name for p in folder.iterdir() if p.is_dir())
        if not names:
            raise InputError(f"{str(folder)!r} has no class sub-folders")
        images: list[Any] = []
        labels: list[int] = []
        for k, name in enumerate(names):
            files = sorted(f for f in (folder / name).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            images += [str(f) for f in files]
            labels += [k] * len(files)
        if not images:
            raise InputError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) under {str(folder)!r}")
        return self._examples(images, labels, names, [str(Path(p).relative_to(root)) for p in images], part, [])


class DigitsConfig(_LabelledConfig):
    """``digits``: scikit-learn's bundled handwritten digits (8x8, 10 classes)."""

    split: str = Field("train", description="train or test (test: the held-out test_size images)")
    test_size: float = Field(0.25, gt=0.0, lt=1.0, description="fraction of images in the test split")
    split_seed: int = Field(0, description="seed of the train/test permutation")
    class_names: list[str] = Field(
        default_factory=lambda: ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
        min_length=10, max_length=10, description="name of each digit (what {name} is in label_template)",
    )


class DigitsDataset(_LabelledDataset):
    """scikit-learn's bundled digits: 1,797 8x8 grey images (0-16 scaled to [0, 1]), 10 classes, offline.

    ``train`` / ``test`` are a seeded permutation split (``test_size``); items
    are float32 numpy arrays ``[8, 8]``. Needs scikit-learn (``pip install
    'repmix-std[images]'``).
    """

    Config: ClassVar[type[ComponentConfig]] = DigitsConfig
    citation: ClassVar[str] = (
        "Alpaydin & Kaynak (1998). Optical Recognition of Handwritten Digits. UCI Machine Learning Repository; "
        "as bundled by scikit-learn (sklearn.datasets.load_digits)."
    )
    config: DigitsConfig

    def load(self, split: str | None = None) -> Examples:
        c = self.config
        split = split or c.split
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise InputError("the digits dataset needs scikit-learn", hint="pip install 'repmix-std[images]'") from None
        data = load_digits()
        source, part = self._serve(split)
        if source not in ("train", "test"):
            raise InputError(f"digits has the splits 'train' and 'test', not {source!r}")
        n = len(data.target)
        perm = np.random.default_rng(c.split_seed).permutation(n)
        k = math.ceil(c.test_size * n)
        rows = sorted(int(i) for i in (perm[:k] if source == "test" else perm[k:]))
        images = [(data.images[i] / 16.0).astype(np.float32) for i in rows]
        labels = [int(data.target[i]) for i in rows]
        return self._examples(images, labels, list(c.class_names), [f"digits/{i}" for i in rows], part, [])


class ImagePairsConfig(PairsConfig):
    """``image-pairs``: a ``pairs`` table whose image columns hold file paths."""

    image_fields: list[str] = Field(
        default_factory=lambda: ["image"], min_length=1,
        description="towers (keys of fields) whose column holds image paths, relative to the table's folder",
    )

    @model_validator(mode="after")
    def _known(self) -> ImagePairsConfig:
        unknown = [t for t in self.image_fields if t not in self.fields]
        if unknown:
            raise ValueError(f"image_fields names towers not in fields: {unknown}")
        return self


class ImagePairsDataset(PairsDataset):
    """Image ↔ text (or image ↔ anything) pairs from a TSV/CSV/JSONL table.

    Like ``pairs``; the columns of ``image_fields`` hold image paths, resolved
    relative to the table file's folder (absolute paths are kept). A missing
    image is a malformed row (``on_error``).
    """

    Config: ClassVar[type[ComponentConfig]] = ImagePairsConfig
    citation: ClassVar[str] = "repmix-std image-pairs reader (no paper)."
    config: ImagePairsConfig  # type: ignore[assignment]

    def load(self, split: str | None = None) -> Examples:
        c = self.config
        base = self.file_for(self._serve(split or c.split)[0]).parent
        ex = super().load(split)
        keep = list(range(len(ex)))
        notes = list(ex.notes)
        for tower in c.image_fields:
            resolved = []
            for v in ex.columns[tower]:
                p = Path(v)
                resolved.append(str(p if p.is_absolute() else base / p))
            ex.columns[tower] = resolved
            missing = [i for i in keep if not Path(resolved[i]).is_file()]
            if missing and c.on_error == "raise":
                raise InputError(f"image file {resolved[missing[0]]!r} (row {missing[0] + 1}) does not exist",
                                 hint="image paths are relative to the table's folder; on_error: skip drops such rows")
            keep = [i for i in keep if i not in set(missing)]
            if missing:
                notes.append(f"{len(missing)} row(s) name a missing image in column of tower {tower!r}; skipped")
        if len(keep) < len(ex):
            skipped = ex.skipped + len(ex) - len(keep)
            ex = ex.select(keep)
            ex.skipped = skipped
        ex.notes = notes
        return ex


# --------------------------------------------------------------------------- evaluator
class ImageClassificationConfig(ComponentConfig):
    """Options of ``image-classification``."""

    on: str | None = Field(None, description="alignment between the image tower and the class-item tower (default: the only one)")
    granularity: str | None = Field(None, description="pooled granularity of the image tower for the 1-NN accuracy (default: the alignment's)")
    knn: bool = Field(True, description="also report leave-one-out 1-NN accuracy of the image embeddings (cosine)")
    batch_size: int = Field(64, ge=1, description="items per forward pass")


class ImageClassificationEvaluator(Evaluator):
    """Accuracy of classifying the first tower's items by the best-scoring class item of the second tower.

    The classes are the distinct items of the second tower's column
    (``Examples.extras['classes']`` when the dataset gives them, e.g. class
    names as text); each image is scored against every class item with the
    declared alignment's aligner. ``accuracy`` is the fraction whose best
    class is its own; ``knn_accuracy`` is leave-one-out 1-nearest-neighbour
    accuracy of the image embeddings (cosine), which needs no second tower.
    """

    Config: ClassVar[type[ComponentConfig]] = ImageClassificationConfig
    citation: ClassVar[str] = (
        "Radford et al. (2021). Learning Transferable Visual Models From Natural Language Supervision (CLIP): "
        "classification by scoring class-name texts. ICML 2021."
    )
    config: ImageClassificationConfig

    def evaluate(self, model: Any, data: Examples) -> dict[str, float]:
        c = self.config
        names = list(model.alignment_between)
        if not names:
            raise InputError("image-classification needs an alignment between images and class items")
        on = c.on or names[0]
        if on not in model.alignment_between:
            raise ConfigError(f"no alignment {on!r}; alignments: {', '.join(names)}", path="on")
        (ta, ga), (tb, _) = model.alignment_between[on]
        for t in (ta, tb):
            if t not in data.columns:
                raise InputError(f"image-classification needs data column {t!r}; the data has {', '.join(data.columns)}")
        images, labels = list(data.columns[ta]), list(data.columns[tb])
        if not images:
            raise InputError("image-classification: the evaluated split is empty")
        classes = list(data.extras.get("classes") or sorted(set(labels), key=str))
        index = {item: k for k, item in enumerate(classes)}
        missing = [x for x in set(labels) if x not in index]
        if missing:
            raise InputError(f"labels {missing[:3]} are not among the classes")
        gold = torch.tensor([index[x] for x in labels])
        scores = torch.from_numpy(model.similarity(images, classes, alignment=on, batch_size=c.batch_size))
        pred = scores.argmax(dim=1)
        out = {"accuracy": float((pred == gold).float().mean()), "classes": float(len(classes)), "n": float(len(images))}
        if c.knn and len(images) > 1:
            emb = torch.from_numpy(model.encode(images, tower=ta, granularity=c.granularity or ga, batch_size=c.batch_size))
            emb = torch.nn.functional.normalize(emb, dim=-1)
            sim = emb @ emb.T
            sim.fill_diagonal_(-float("inf"))
            nn_idx = sim.argmax(dim=1)
            out["knn_accuracy"] = float((gold[nn_idx] == gold).float().mean())
        return out
