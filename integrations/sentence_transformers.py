"""Export a repmix model made of std components as a sentence-transformers model directory.

A tower of ``hf-tokenizer`` + ``hf-transformer`` + a ``mean``/``cls``/``max``/``last-token``
pooler (``normalize: true`` included) is what sentence-transformers calls
``Transformer`` + ``Pooling`` (+ ``Normalize``)::

    import repmix
    from repmix.integrations.sentence_transformers import export_sentence_transformers

    export_sentence_transformers(repmix.load("examples/minilm.yaml"), "minilm-st")
    # SentenceTransformer("minilm-st").encode(texts) == model.encode(texts)

The directory is written by sentence-transformers itself (its ``save``), so it
is in the format of the installed version: ``modules.json``, the transformer's
``config.json``, tokenizer files and ``model.safetensors``,
``1_Pooling/config.json`` and ``2_Normalize``. Any other component on the
exported path (a trainable pooler, a plugin's encoder, a non-final layer) has
no sentence-transformers equivalent and is refused with one
:class:`~repmix.core.errors.InputError` naming it. Needs ``sentence-transformers``
(``pip install 'repmix[integrations]'``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repmix.core.errors import InputError
from repmix.core.model import AssembledModel
from repmix.integrations._components import ComponentRef, component_ref, pooled_similarity

__all__ = ["POOLING_MODES", "STExport", "export_sentence_transformers", "plan_export"]

#: std pooler -> sentence-transformers' ``Pooling`` mode computing the same vector.
POOLING_MODES: dict[str, str] = {"mean": "mean", "cls": "cls", "max": "max", "last-token": "lasttoken"}

_INSTALL_HINT = "install it with: pip install 'repmix[integrations]' (sentence-transformers>=6)"


@dataclass(frozen=True)
class STExport:
    """What a tower exports to: its components, the pooling mode and the options around them."""

    tower: str
    granularity: str
    tokenizer: ComponentRef
    encoder: ComponentRef
    pooler: ComponentRef
    pooling_mode: str
    normalize: bool
    max_seq_length: int
    similarity: str | None


def plan_export(model: AssembledModel, tower: str | None = None, granularity: str | None = None) -> STExport:
    """Check that ``tower``'s ``granularity`` has a sentence-transformers equivalent; say how.

    ``tower`` defaults to the model's default tower, ``granularity`` to the
    tower's last pooled one (what :meth:`~repmix.core.model.AssembledModel.encode`
    writes). Raises one :class:`InputError` naming every component on the path
    that sentence-transformers cannot express.
    """
    tower = tower or model.default_tower()
    t = model.tower(tower)
    gran = granularity or model.default_granularity(tower)
    shapes = model.granularities(tower)
    if shapes.get(gran) != "pooled":
        pooled = [g for g, s in shapes.items() if s == "pooled"]
        raise InputError(
            f"tower {tower!r} has no pooled granularity {gran!r} to export",
            hint=f"a sentence-transformers model writes one vector per input; pooled granularities: "
            f"{', '.join(pooled) or '(none: add a pooler)'}",
        )
    tokenizer = component_ref(model, t.tokenizer)
    encoder = component_ref(model, t.encoder)
    problems: list[str] = []
    if not tokenizer.is_std("hf-tokenizer"):
        problems.append(f"{tokenizer.describe()}: only std.hf-tokenizer is exported")
    if not encoder.is_std("hf-transformer"):
        problems.append(f"{encoder.describe()}: only std.hf-transformer is exported")
    if gran not in t.poolers:  # a pooled granularity the encoder writes itself (no std encoder does)
        problems.append(f"{encoder.describe()}: writes {gran!r} itself; sentence-transformers needs a std pooler")
        raise InputError(
            f"tower {tower!r} ({gran}) cannot be exported to sentence-transformers: " + "; ".join(problems),
            hint="export a granularity written by a std mean/cls/max/last-token pooler",
        )
    pooler = component_ref(model, t.poolers[gran])
    if not pooler.is_std(*POOLING_MODES):
        problems.append(
            f"{pooler.describe()}: sentence-transformers pools with {', '.join(f'std.{p}' for p in POOLING_MODES)} only"
        )
    source = str(getattr(pooler.config, "source", ""))
    if pooler.is_std(*POOLING_MODES) and encoder.is_std("hf-transformer"):
        layers: dict[str, int] = dict(getattr(encoder.config, "granularities", {}) or {})
        num_layers = int(getattr(encoder.instance, "num_layers", 0) or 0)
        if source not in layers:
            problems.append(
                f"{pooler.describe()}: pools {source!r}, which the encoder does not provide "
                "(sentence-transformers pools the transformer's token embeddings)"
            )
        elif num_layers and layers[source] % num_layers != num_layers - 1:
            problems.append(
                f"{encoder.describe()}: granularity {source!r} reads hidden state {layers[source]}; "
                "sentence-transformers pools the last layer only"
            )
    if problems:
        raise InputError(
            f"tower {tower!r} ({gran}) cannot be exported to sentence-transformers: " + "; ".join(problems),
            hint="export a tower made of std.hf-tokenizer + std.hf-transformer + a std mean/cls/max/last-token pooler",
        )
    return STExport(
        tower=tower,
        granularity=gran,
        tokenizer=tokenizer,
        encoder=encoder,
        pooler=pooler,
        pooling_mode=POOLING_MODES[pooler.name],
        normalize=bool(getattr(pooler.config, "normalize", False)),
        max_seq_length=int(tokenizer.instance.max_length),
        similarity=pooled_similarity(model, {(tower, gran)}),
    )


def export_sentence_transformers(
    model: AssembledModel,
    directory: str | Path,
    *,
    tower: str | None = None,
    granularity: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``tower``'s ``granularity`` of ``model`` as a sentence-transformers directory; return it.

    ``SentenceTransformer(directory).encode(texts)`` then equals
    ``model.encode(texts, tower=tower, granularity=granularity)``. The folder is
    written next to ``directory`` and moved into place when complete; an
    existing non-empty ``directory`` is an error unless ``overwrite``.
    """
    spec = plan_export(model, tower, granularity)
    target = Path(directory).expanduser()
    if target.exists() and not target.is_dir():
        raise InputError(f"{str(target)!r} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise InputError(
            f"directory {str(target)!r} is not empty",
            hint="choose a new directory, or pass overwrite=True (--overwrite) to replace it",
        )
    try:
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    except ImportError as exc:
        raise InputError(f"exporting needs sentence-transformers ({exc})", hint=_INSTALL_HINT) from None

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with tempfile.TemporaryDirectory(prefix="repmix-st-") as hf_dir:
            _save_hf_folder(spec, Path(hf_dir))
            with _quiet_transformers():
                transformer = Transformer(hf_dir, max_seq_length=spec.max_seq_length)
            _zero_dropped_weights(spec.encoder.instance.model, transformer.auto_model)
            modules: list[Any] = [transformer, Pooling(transformer.get_embedding_dimension(), spec.pooling_mode)]
            if spec.normalize:
                modules.append(Normalize())
            st_model = SentenceTransformer(modules=modules, device="cpu", similarity_fn_name=spec.similarity)
            st_model.save(str(staging))
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _save_hf_folder(spec: STExport, folder: Path) -> None:
    """The encoder's transformers model (safetensors, float weights as trained) and its tokenizer."""
    hf_model = spec.encoder.instance.model
    hf_tokenizer = spec.tokenizer.instance.hf
    was_training = hf_model.training
    try:
        hf_model.eval()
        hf_model.save_pretrained(str(folder), safe_serialization=True)
    finally:
        hf_model.train(was_training)
    hf_tokenizer.save_pretrained(str(folder))


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' load report while the export reloads its own folder (checked after)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _zero_dropped_weights(trained: Any, reloaded: Any) -> None:
    """Zero the weights the reload created that the trained model does not have; refuse any but a pooler.

    hf-transformer drops BERT's unused CLS pooler (dense + tanh), which
    sentence-transformers never reads either; transformers re-creates it on
    load. Zeros make it visibly untrained and the export reproducible.
    """
    have = set(trained.state_dict())
    created = [name for name in reloaded.state_dict() if name not in have]
    unexpected = [name for name in created if not name.startswith("pooler.")]
    if unexpected:
        raise RuntimeError(
            f"the exported transformer has weights the repmix encoder does not: {', '.join(unexpected[:5])}"
        )
    if created:
        import torch

        with torch.no_grad():
            for name, tensor in reloaded.state_dict().items():
                if name in created:
                    tensor.zero_()
