"""``matryoshka2d.early-exit``: a Hugging Face transformer that stops after its first ``exit_layer`` blocks.

2DMSE's speed argument is that a shallow prefix of the network is a usable
encoder. Reading ``Encoded.layers[2]`` from a full forward pass saves nothing;
this encoder does not compute the blocks above ``exit_layer`` at all.

How: the model keeps **all** its blocks (its ``state_dict`` is the one of
``hf-transformer`` for the same model: the keys ``model.*``, the unused BERT
CLS pooler dropped in the same way), so a model trained with the full encoder
loads into this one unchanged. Each forward call runs a *view* of the model: a
shallow copy of the top module and of its layer container whose layer list holds
the first ``exit_layer`` blocks — the same module objects, hence the same
parameters, devices and train/eval modes. Nothing is patched and the real
model is never modified; the view lives for one call. The model's own
``forward`` then runs (embeddings, attention masks, blocks) exactly as usual.
The blocks above ``exit_layer`` never run, so they are frozen (``requires_grad``
off) but kept, and saved, so the weights stay interchangeable.

Supported architectures: those whose block list is ``model.encoder.layer``
(BERT, RoBERTa, MiniLM, ELECTRA, ...) or ``model.layers`` (decoder models such as
Llama, Mistral, Qwen2). ``exit_layer: null`` runs the whole model.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator
from repmix.sdk import (
    ComponentConfig,
    ConfigError,
    Encoded,
    Encoder,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    Runtime,
)
from repmix.sdk.hf import (
    load_hf_config,
    load_hf_model,
    model_files,
    model_input_keys,
    resolve_model_dir,
    validate_model_dir,
)
from torch import Tensor, nn

from repmix_matryoshka2d import CITATION


def _block_path(model: nn.Module) -> tuple[str, ...]:
    """Attribute path of the model's block list: ``("encoder", "layer")`` or ``("layers",)``."""
    encoder = getattr(model, "encoder", None)
    if isinstance(getattr(encoder, "layer", None), nn.ModuleList):
        return ("encoder", "layer")
    if isinstance(getattr(model, "layers", None), nn.ModuleList):
        return ("layers",)
    raise ConfigError(
        f"matryoshka2d.early-exit does not know where {type(model).__name__} keeps its transformer blocks "
        "(expected model.encoder.layer or model.layers)"
    )


def _install_output_hooks(model: nn.Module) -> None:
    """Install transformers' hidden-state capturing hooks on the real model once, before any view exists.

    transformers >= 5 records ``hidden_states`` with hooks installed lazily on the first
    call and flags the calling module as hooked. A view is a shallow copy, so it must
    inherit that flag; otherwise each view would hook the shared blocks again and
    every hidden state would be recorded several times. Older transformers collect
    hidden states in the layer loop and need nothing.
    """
    try:
        from transformers.utils.output_capturing import maybe_install_capturing_hooks
    except ImportError:
        return
    maybe_install_capturing_hooks(model)


def truncated_view(model: nn.Module, path: tuple[str, ...], keep: int) -> nn.Module:
    """A shallow copy of ``model`` whose block list holds only its first ``keep`` blocks (shared modules).

    Every module on ``path`` is copied with its own ``_modules`` dict, so the real
    model is left untouched; the blocks themselves are the original objects.
    """
    view = copy.copy(model)
    view._modules = dict(model._modules)
    parent = view
    for part in path[:-1]:
        child = copy.copy(parent._modules[part])
        child._modules = dict(child._modules)
        parent._modules[part] = child
        parent = child
    blocks = parent._modules[path[-1]]
    assert isinstance(blocks, nn.ModuleList)
    parent._modules[path[-1]] = nn.ModuleList(list(blocks)[:keep])
    return view


class EarlyExitTransformer(Encoder):
    """A Hugging Face ``AutoModel`` that runs only its first ``exit_layer`` blocks; ``token`` = the exit layer's states."""

    citation: ClassVar[str] = CITATION + (
        " Wolf et al. (2020). Transformers: State-of-the-Art Natural Language Processing. EMNLP 2020 Demos."
    )

    class Config(ComponentConfig):
        """Options of ``matryoshka2d.early-exit``."""

        model: str = Field(
            "all-MiniLM-L6-v2", description="local model directory or the packaged name 'all-MiniLM-L6-v2'"
        )
        exit_layer: int | None = Field(
            None, ge=1, description="run only the first exit_layer transformer blocks (null = all of them)"
        )

        @field_validator("model")
        @classmethod
        def _check_model(cls, value: str) -> str:
            return validate_model_dir(value)

    config: Config

    @classmethod
    def signature(cls, config: ComponentConfig) -> EncoderSignature:
        """``token`` at the exit layer; per-layer states 0..exit_layer."""
        assert isinstance(config, cls.Config)
        hf = load_hf_config(config.model)
        hidden, layers = getattr(hf, "hidden_size", None), getattr(hf, "num_hidden_layers", None)
        if not isinstance(hidden, int) or not isinstance(layers, int):
            raise ConfigError(f"model {config.model!r} declares no hidden_size and num_hidden_layers", found=config.model)
        exit_layer = layers if config.exit_layer is None else config.exit_layer
        if exit_layer > layers:
            raise ConfigError(
                f"exit_layer {exit_layer} exceeds the {layers} transformer blocks of {config.model!r}",
                found=exit_layer,
                hint=f"use an exit_layer from 1 to {layers}",
            )
        return EncoderSignature({"token": GranularitySpec("sequence", hidden)}, num_layers=exit_layer + 1)

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        signature = self.signature(config)
        assert signature.num_layers is not None
        self.exit_layer = signature.num_layers - 1
        self.model_dir = resolve_model_dir(self.config.model)
        # the same model and state-dict keys as hf-transformer's (its unused BERT pooler dropped alike)
        self.model = load_hf_model(self.config.model, pretrained=runtime.load_pretrained)
        self._path = _block_path(self.model)
        blocks = self._blocks()
        self.total_layers = len(blocks)
        if self.exit_layer < self.total_layers:
            # Blocks above the exit are never run: they get no gradient, so they are frozen (still saved).
            for block in list(blocks)[self.exit_layer :]:
                block.requires_grad_(False)
            _install_output_hooks(self.model)
        self._input_keys = model_input_keys(self.model)

    def saved_files(self) -> dict[str, Path | list[Path]]:
        """config.json of the model folder (the weights travel in the saved model's safetensors)."""
        return {"model": model_files(self.model_dir)}

    def _blocks(self) -> nn.ModuleList:
        node: Any = self.model
        for part in self._path:
            node = getattr(node, part)
        return node

    def forward(self, batch: dict[str, Tensor], output_layers: bool = False) -> Encoded:
        """Embeddings + the first ``exit_layer`` blocks; ``layers`` = hidden states 0..exit_layer when asked."""
        inputs = {k: batch[k] for k in self._input_keys if k in batch}
        model = self.model
        if self.exit_layer < self.total_layers:
            model = truncated_view(self.model, self._path, self.exit_layer)
        out = model(**inputs, output_hidden_states=output_layers, return_dict=True)
        mask = batch["attention_mask"].bool()
        layers = tuple(out.hidden_states) if output_layers else None
        return Encoded({"token": Granularity(out.last_hidden_state, mask)}, layers=layers, layers_of="token")
