"""``electra.generator``: ELECTRA's corruption — mask, run the small generator, sample replacements.

Declared as the tower's ``corruption:`` (training batches only), next to an
``electra.discriminator`` encoder whose embedding layer it shares::

    corruption: {type: electra.generator, rate: 0.15}

What one training batch goes through (``google-research/electra``, ``run_pretraining.py`` and
``pretrain/pretrain_helpers.py``):

1. choose positions: each non-special token with probability ``rate`` (``scheme: token``, as
   the SDK's :func:`~repmix.sdk.lm.select_tokens`) or whole words (``whole-word``);
2. replace them BERT-style with ELECTRA's shares: ``mask_prob`` 0.85 → ``[MASK]``,
   ``random_prob`` 0 → a random id, the rest (15 %) kept;
3. run the generator — transformers' ``ElectraForMaskedLM`` (``embeddings → embeddings_project →
   encoder → dense + gelu + LayerNorm → tied output + bias``) — on the masked ids; its width is
   ``hidden_fraction`` (0.25) of the discriminator's, its depth ``layers_fraction`` (1.0), with
   ``intermediate = 4·hidden`` and ``heads = max(1, hidden // 64)`` (official
   ``get_generator_config``);
4. sample ``x̂ ~ softmax(logits / temperature)`` at the chosen positions by Gumbel-max without
   gradient (:func:`~repmix.sdk.lm.sample_replacements`) and write the samples into the
   *original* ids (the discriminator never sees ``[MASK]``);
5. label ``replaced = chosen ∧ (x̂ ≠ x)``: a sample equal to the original counts as original.

With ``tie_embeddings: true`` (the default, as the paper's ``untied_generator_embeddings=False``)
the generator *calls* the discriminator's embedding layer (word, position and token-type
embeddings, LayerNorm) and its output layer multiplies by the discriminator's word-embedding
matrix; those weights stay in the encoder's state only, so a saved model holds them once and
dropping the corruption for fine-tuning leaves exactly the generator's own weights unused.

Emitted granularities (joining the tower's output in training): ``generator_logits``
(``[B, N, V]``: the generator's vocabulary logits at the chosen positions, zeros elsewhere;
read by ``std.masked-lm`` with ``logits: generator_logits``), ``targets`` (original ids at the
chosen positions, -100 elsewhere) and ``replaced`` (1 where the discriminator's input differs
from the original, read by ``electra.rtd``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from repmix.sdk import (
    ComponentConfig,
    ConfigError,
    Corruptor,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    InputError,
    PipelineError,
    Runtime,
)
from repmix.sdk.lm import (
    bert_replace,
    candidate_mask,
    sample_replacements,
    select_tokens,
    select_words,
    targets_granularity,
)
from torch import Tensor, nn

from repmix_electra.discriminator import ELECTRA_CITATION


class SharedEmbeddings(nn.Module):
    """Calls another module's embedding layer without owning it: its weights stay in the owner's state dict."""

    def __init__(self, target: nn.Module) -> None:
        super().__init__()
        self.__dict__["_target"] = target  # a plain attribute, not a registered submodule

    @property
    def target(self) -> nn.Module:
        """The shared embedding layer."""
        return self.__dict__["_target"]

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        return self.target(*args, **kwargs)


class TiedOutput(nn.Module):
    """``x · Eᵀ + b`` with ``E`` a shared word-embedding matrix (not owned) and its own bias ``b``."""

    def __init__(self, word_embeddings: nn.Embedding) -> None:
        super().__init__()
        self.__dict__["_embeddings"] = word_embeddings
        self.bias = nn.Parameter(torch.zeros(word_embeddings.weight.shape[0]))

    @property
    def weight(self) -> Tensor:
        """The shared word-embedding matrix ``[V, E]``."""
        return self.__dict__["_embeddings"].weight

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)


def generator_sizes(hidden: int, layers: int, hidden_fraction: float, layers_fraction: float) -> dict[str, int]:
    """The official ``get_generator_config``: width and depth fractions of the discriminator's."""
    gen_hidden = round(hidden * hidden_fraction)
    return {
        "hidden_size": gen_hidden,
        "num_hidden_layers": round(layers * layers_fraction),
        "intermediate_size": 4 * gen_hidden,
        "num_attention_heads": max(1, gen_hidden // 64),
    }


def replaced_labels(original: Tensor, corrupted: Tensor, chosen: Tensor) -> Tensor:
    """ELECTRA's label rule: 1 where a chosen position now holds another id than the original."""
    return chosen & (corrupted != original)


class ElectraGenerator(Corruptor):
    """Masks, runs a small masked-LM generator and writes its Gumbel-max samples into the ids (ELECTRA)."""

    citation: ClassVar[str] = ELECTRA_CITATION

    class Config(ComponentConfig):
        """Options of ``electra.generator``."""

        rate: float = Field(0.15, gt=0, lt=1, description="share of (non-special) tokens to mask and replace")
        scheme: Literal["token", "whole-word"] = Field("token", description="choose single tokens or whole words")
        mask_prob: float = Field(0.85, ge=0, le=1, description="share of chosen positions the generator sees as [MASK]")
        random_prob: float = Field(0.0, ge=0, le=1, description="share it sees as a random id (the rest: the original)")
        temperature: float = Field(1.0, gt=0, description="sampling temperature of the generator's softmax")
        hidden_fraction: float = Field(0.25, gt=0, le=1,
                                       description="generator width as a fraction of the discriminator's")
        layers_fraction: float = Field(1.0, gt=0, le=1,
                                       description="generator depth as a fraction of the discriminator's")
        hidden_size: int | None = Field(None, ge=1, description="generator width (overrides hidden_fraction)")
        num_hidden_layers: int | None = Field(None, ge=1, description="generator depth (overrides layers_fraction)")
        intermediate_size: int | None = Field(None, ge=1, description="generator feed-forward width (default 4·hidden)")
        num_attention_heads: int | None = Field(None, ge=1, description="generator heads (default max(1, hidden // 64))")
        dropout: float | None = Field(None, ge=0, lt=1,
                                      description="generator dropout (default: the discriminator's hidden_dropout_prob)")
        tie_embeddings: bool = Field(
            True, description="share the discriminator's embedding layer (false: the generator's own embeddings)"
        )
        logits: str = Field("generator_logits", description="name of the generator-logits granularity")
        targets: str = Field("targets", description="name of the masked-LM targets granularity")
        replaced: str = Field("replaced", description="name of the replaced-token labels granularity")

        @model_validator(mode="after")
        def _check(self) -> ElectraGenerator.Config:
            if self.mask_prob + self.random_prob > 1 + 1e-9:
                raise ValueError(f"mask_prob + random_prob must be at most 1, got {self.mask_prob + self.random_prob:g}")
            names = [self.logits, self.targets, self.replaced]
            if len(set(names)) != 3:
                raise ValueError(f"logits, targets and replaced need three different names, got {names}")
            return self

    config: Config

    @classmethod
    def signature(cls, config: Config, encoder: EncoderSignature) -> dict[str, GranularitySpec]:
        if config.tie_embeddings and "rtd_logits" not in encoder.granularities:
            raise PipelineError(
                "electra.generator shares the discriminator's embeddings (tie_embeddings: true), "
                "but the tower's encoder is not an electra.discriminator",
                hint="use encoder: {type: electra.discriminator, architecture: ...}, or set tie_embeddings: false",
            )
        return {
            config.logits: GranularitySpec("sequence", None),
            config.targets: GranularitySpec("sequence", None, values="ids"),
            config.replaced: GranularitySpec("sequence", None, values="ids"),
        }

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        from transformers import ElectraConfig, ElectraForMaskedLM

        tok = runtime.tokenizer
        missing = [a for a in ("vocab_size", "mask_token_id", "special_ids") if getattr(tok, a, None) is None]
        if tok is None or missing:
            raise ConfigError(
                f"electra.generator needs a tokenizer with a mask token and a vocabulary "
                f"({', '.join(missing) or 'no tokenizer'} missing)",
                hint="use type: std.lm-tokenizer (trained, bytes or pretrained) for the tower",
            )
        self.mask_id = int(tok.mask_token_id)
        self.special_ids = [int(s) for s in tok.special_ids]
        encoder = runtime.extras.get("encoder")
        shared = getattr(encoder, "shared_embeddings", None) if encoder is not None else None
        base = getattr(getattr(encoder, "backbone", None), "config", None)
        if config.tie_embeddings and shared is None:
            raise ConfigError(
                "tie_embeddings: true shares the discriminator's embedding layer, but the tower's encoder "
                "is not an electra.discriminator",
                hint="use encoder: {type: electra.discriminator, ...}, or set tie_embeddings: false",
            )
        if base is not None:
            sizes = generator_sizes(int(base.hidden_size), int(base.num_hidden_layers),
                                    config.hidden_fraction, config.layers_fraction)
            common = {k: getattr(base, k) for k in ("max_position_embeddings", "type_vocab_size", "hidden_act",
                                                     "initializer_range", "layer_norm_eps", "hidden_dropout_prob",
                                                     "attention_probs_dropout_prob") if hasattr(base, k)}
            vocab = int(base.vocab_size)
        else:
            if config.hidden_size is None or config.num_hidden_layers is None:
                raise ConfigError(
                    "without an electra.discriminator encoder the generator's size must be given",
                    hint="set hidden_size: and num_hidden_layers:",
                )
            sizes = {"hidden_size": config.hidden_size, "num_hidden_layers": config.num_hidden_layers,
                     "intermediate_size": 4 * config.hidden_size,
                     "num_attention_heads": max(1, config.hidden_size // 64)}
            max_len = getattr(tok, "max_length", None)
            common = {"max_position_embeddings": max(512, max_len if isinstance(max_len, int) else 0)}
            vocab = int(tok.vocab_size)
        for key in ("hidden_size", "num_hidden_layers", "intermediate_size", "num_attention_heads"):
            value = getattr(config, key)
            if value is not None:
                sizes[key] = value
        if config.hidden_size is not None and config.intermediate_size is None:
            sizes["intermediate_size"] = 4 * sizes["hidden_size"]
        if config.hidden_size is not None and config.num_attention_heads is None:
            sizes["num_attention_heads"] = max(1, sizes["hidden_size"] // 64)
        if sizes["hidden_size"] % sizes["num_attention_heads"]:
            raise ConfigError(f"the generator's hidden size {sizes['hidden_size']} is not a multiple of its "
                              f"{sizes['num_attention_heads']} attention heads (num_attention_heads)")
        if config.dropout is not None:
            common["hidden_dropout_prob"] = common["attention_probs_dropout_prob"] = config.dropout
        embedding_size = (int(shared.word_embeddings.weight.shape[1]) if config.tie_embeddings and shared is not None
                          else sizes["hidden_size"])
        pad = getattr(tok, "pad_token_id", None)
        self.gen_config = ElectraConfig(vocab_size=vocab, embedding_size=embedding_size,
                                        pad_token_id=pad if isinstance(pad, int) else 0, **sizes, **common)
        self.generator = ElectraForMaskedLM(self.gen_config)
        if config.tie_embeddings and shared is not None:
            # the official variable sharing: one "electra/embeddings" scope for both networks
            self.generator.electra.embeddings = SharedEmbeddings(shared)
            self.generator.generator_lm_head = TiedOutput(shared.word_embeddings)
        self.vocab_size = vocab
        if int(tok.vocab_size) > vocab:
            raise ConfigError(f"the tokenizer emits {tok.vocab_size} ids but the generator predicts only {vocab}")
        self._input_keys = ("input_ids", "attention_mask", "token_type_ids")

    def generator_hidden(self, batch: dict[str, Tensor]) -> Tensor:
        """The generator's last hidden states ``[B, N, H_g]`` on a (masked) batch."""
        inputs = {k: batch[k] for k in self._input_keys if k in batch}
        return self.generator.electra(**inputs, return_dict=True).last_hidden_state

    def generator_logits(self, hidden: Tensor) -> Tensor:
        """Vocabulary logits of generator hidden states (dense + gelu + LayerNorm, tied output + bias)."""
        return self.generator.generator_lm_head(self.generator.generator_predictions(hidden))

    def mask(self, batch: Any, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Steps 1–2: ``(candidates, chosen, masked ids the generator reads, masked-LM targets)``."""
        c = self.config
        if "input_ids" not in batch:
            raise InputError("electra.generator reads input_ids from the tokenizer's batch")
        ids = batch["input_ids"]
        cand = candidate_mask(ids, batch.get("attention_mask"), self.special_ids)
        words = batch.get("word_ids")
        if c.scheme == "whole-word" and words is not None:
            chosen = select_words(cand, words, c.rate, generator)
        else:
            chosen = select_tokens(cand, c.rate, generator)
        masked, targets = bert_replace(ids, chosen, self.mask_id, self.vocab_size,
                                       mask_prob=c.mask_prob, random_prob=c.random_prob, generator=generator)
        return cand, chosen, masked, targets

    def forward(self, batch: Any, generator: torch.Generator | None = None) -> tuple[Any, dict[str, Granularity]]:
        c = self.config
        cand, chosen, masked, targets = self.mask(batch, generator)
        ids = batch["input_ids"]
        gen_batch = dict(batch)
        gen_batch["input_ids"] = masked
        if batch.get("attention_mask") is None:
            gen_batch["attention_mask"] = torch.ones_like(ids)
        hidden = self.generator_hidden(gen_batch)
        logits = self.generator_logits(hidden[chosen])  # [M, V]: only where a prediction is made, as the official code
        sampled = sample_replacements(logits, generator, c.temperature)  # no gradient (stop_gradient)
        corrupted = ids.masked_scatter(chosen, sampled.to(ids.dtype))
        replaced = replaced_labels(ids, corrupted, chosen)
        full = logits.new_zeros((*ids.shape, logits.shape[-1])).index_put((chosen,), logits)
        out = dict(batch)
        out["input_ids"] = corrupted
        return out, {
            c.logits: Granularity(full, chosen),
            c.targets: targets_granularity(targets),
            c.replaced: Granularity(replaced.long(), cand),
        }
