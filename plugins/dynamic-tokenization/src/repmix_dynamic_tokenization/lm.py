"""The decoder side of dynamic tokenization: a causal LM over the batch vocabulary V + U.

``dynamic-tokenization.dynamic-lm`` is a transformers causal decoder built from scratch (an
``architecture:`` block, e.g. GPT-2) that reads and predicts *dynamic* tokens (the output of
``dynamic-tokenization.dynamic-bpe``):

* a token of the base vocabulary (id < V) has its own input embedding and output embedding;
* a merged token of the batch (batch-local id ``V + j``, ``j`` < |U|) gets both from its base
  parts: the mean of the parts' rows of the input table (the FVT-style fallback of the paper's
  spec) and of the output table (tied by default: the same rows), or, with
  ``embeddings: hypernetwork``, that mean plus a small learned hypernetwork over the parts
  (:class:`PartsHypernetwork`, zero-initialised: it starts as the mean);
* the output layer scores V + U: ``logits = h · [W_out ; E_out(U)]ᵀ``, so the softmax is over
  the base vocabulary plus the batch's merged tokens, and the causal cross-entropy of
  ``std.causal-lm`` over the batch-local ``ids`` is the NLL of the dynamic sequence.

The paper's decoders score new tokens against a large precomputed vocabulary through a ScaNN
index; here the output vocabulary is the exact batch vocabulary (no approximation).

As a :class:`repmix.sdk.CausalLM` (std's ``bits-per-byte``, ``typo-bits-per-byte``, ``repmix
generate``), :meth:`DynamicLM.next_logprobs` reads the tokenizer's ids (base ids and the
registry ids ``V + r`` of :meth:`DynamicBPE.encode_plain`): the merged tokens present in the
ids it is given (the evaluator's batch of windows, or the prompt and the tokens generated so
far) are its U, and it returns log-probabilities normalised over V + U, laid out over
``V + R`` columns (R: registry ids up to the largest present; ``-inf`` for registry tokens
outside U).
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
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
)
from repmix.sdk.hf import config_from_architecture
from repmix.sdk.lm import LazyGranularity, extend_prefix, scoring_windows
from torch import Tensor, nn

from .components import CITATION, DynamicBatch


def parts_tensor(parts: Sequence[Sequence[int]], device: torch.device) -> tuple[Tensor, Tensor]:
    """Padded base ids ``[|U|, P]`` of the merged tokens' parts and their mask (True = a real part)."""
    if not parts:
        return torch.zeros((0, 1), dtype=torch.long, device=device), torch.zeros((0, 1), dtype=torch.bool, device=device)
    width = max(len(p) for p in parts)
    ids = torch.zeros((len(parts), width), dtype=torch.long)
    mask = torch.zeros((len(parts), width), dtype=torch.bool)
    for i, p in enumerate(parts):
        ids[i, : len(p)] = torch.tensor(list(p), dtype=torch.long)
        mask[i, : len(p)] = True
    return ids.to(device), mask.to(device)


def bag_mean(table: Tensor, parts: Sequence[Sequence[int]]) -> Tensor:
    """``[|U|, D]``: the mean of each merged token's parts' rows of ``table`` (``embedding_bag``, no padding)."""
    if not parts:
        return table.new_zeros((0, table.shape[1]))
    flat = torch.tensor([i for p in parts for i in p], dtype=torch.long, device=table.device)
    offsets = torch.tensor([0, *itertools.accumulate(len(p) for p in parts)][:-1], dtype=torch.long,
                           device=table.device)
    return F.embedding_bag(flat, table, offsets, mode="mean")


def mean_of_parts(table: Tensor, ids: Tensor, mask: Tensor) -> Tensor:
    """``[|U|, D]``: for each merged token, the mean of its parts' rows of ``table``."""
    rows = table[ids] * mask.unsqueeze(-1).to(table.dtype)
    return rows.sum(1) / mask.sum(1, keepdim=True).clamp(min=1).to(table.dtype)


class PartsHypernetwork(nn.Module):
    """A small hypernetwork over a merged token's parts: ``mean(E[parts]) + W · pool(Transformer(E[parts] + pos))``.

    The stand-in for the paper's ZeTT hypernetwork (a transformer over the decomposition of the
    new token into base tokens), trained jointly with the decoder. ``W`` starts at zero, so an
    untrained hypernetwork gives exactly the mean of the parts (the FVT-style fallback).
    """

    def __init__(self, dim: int, layers: int, heads: int, max_parts: int) -> None:
        super().__init__()
        self.max_parts = max_parts
        self.position = nn.Embedding(max_parts, dim)
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(dim, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, table: Tensor, ids: Tensor, mask: Tensor) -> Tensor:
        """``[|U|, D]`` embeddings of the merged tokens whose parts are ``ids`` ``[|U|, P]`` (``mask``)."""
        mean = mean_of_parts(table, ids, mask)
        if ids.shape[0] == 0:
            return mean
        pos = torch.arange(ids.shape[1], device=ids.device).clamp(max=self.max_parts - 1)
        x = table[ids] + self.position(pos).unsqueeze(0)
        h = self.encoder(x, src_key_padding_mask=~mask)
        m = mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1)
        return mean + self.out(pooled)


class DynamicLM(Encoder):
    """A causal decoder over dynamic tokens: merged-token embeddings from their parts, softmax over V + U."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``dynamic-tokenization.dynamic-lm``."""

        architecture: dict[str, Any] = Field(
            description="transformers config of the causal decoder, built without pretrained weights: model_type "
            "(gpt2, llama, ...) and its keys (e.g. n_layer, n_embd, n_head, n_positions); vocab_size and the "
            "special ids come from the tokenizer",
        )
        tie_embeddings: bool = Field(True, description="tie the output embeddings to the input embeddings")
        embeddings: Literal["mean", "hypernetwork"] = Field(
            "mean",
            description="embeddings of merged tokens: mean of their parts' embeddings (FVT-style), or that mean plus "
            "a small learned hypernetwork over the parts (zero-initialised)",
        )
        hypernetwork_layers: int = Field(1, ge=1, le=12, description="embeddings: hypernetwork: transformer layers")
        hypernetwork_heads: int = Field(4, ge=1, description="embeddings: hypernetwork: attention heads")
        max_parts: int = Field(32, ge=2, description="embeddings: hypernetwork: part positions (longer ones share the last)")
        softmax: Literal["batch", "vocabulary"] = Field(
            "batch",
            description="training softmax: batch = over V + the batch's merged tokens; vocabulary = over V + the "
            "tokenizer's fixed vocabulary W (vocabulary_from). Scoring (next_logprobs) uses V + W whenever the "
            "tokenizer has one",
        )

        @model_validator(mode="after")
        def _check(self) -> DynamicLM.Config:
            if not isinstance(self.architecture.get("model_type"), str):
                raise ValueError("architecture needs model_type (e.g. gpt2, llama)")  # noqa: TRY004 (pydantic)
            for key in ("vocab_size", "pad_token_id", "bos_token_id", "eos_token_id"):
                if key in self.architecture:
                    raise ValueError(f"architecture.{key} comes from the tokenizer: remove it")
            return self

    config: Config

    @staticmethod
    def _hf_config(config: Config, tokenizer: Any = None) -> Any:
        hf = config_from_architecture(config.architecture)
        if tokenizer is not None:
            hf.vocab_size = int(tokenizer.base_vocab_size)
            for key in ("pad_token_id", "bos_token_id", "eos_token_id"):
                value = getattr(tokenizer, key, None)
                if value is not None:
                    setattr(hf, key, value)
        hf.tie_word_embeddings = config.tie_embeddings
        hf.is_decoder = True
        return hf

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:  # type: ignore[override]
        """``token`` [B, N', D], ``logits`` [B, N', V + |U|] (width depends on the batch), ``ids`` (batch-local)."""
        hf = cls._hf_config(config)
        hidden, layers = getattr(hf, "hidden_size", None), getattr(hf, "num_hidden_layers", None)
        if not isinstance(hidden, int) or not isinstance(layers, int):
            raise ConfigError(f"{hf.model_type} declares no hidden_size / num_hidden_layers", path="architecture")
        return EncoderSignature(
            {
                "token": GranularitySpec("sequence", hidden),
                "logits": GranularitySpec("sequence", None),
                "ids": GranularitySpec("sequence", None, values="ids"),
            },
            num_layers=layers + 1,
            layers_of="token",
            causal=True,
        )

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        from transformers import AutoModelForCausalLM

        tok = runtime.tokenizer
        if not isinstance(getattr(tok, "base_vocab_size", None), int) or not callable(getattr(tok, "parts_of", None)):
            raise ConfigError(
                "dynamic-lm reads dynamic tokens: the tower's tokenizer must be dynamic-tokenization.dynamic-bpe "
                f"(got {type(tok).__name__})",
                hint="tokenizer: {type: dynamic-tokenization.dynamic-bpe, base: {type: std.lm-tokenizer, ...}}",
            )
        fixed = bool(getattr(tok, "fixed_vocabulary", False))
        if config.softmax == "vocabulary" and not fixed:
            raise ConfigError("softmax: vocabulary needs a fixed vocabulary in the tokenizer",
                              hint="give dynamic-bpe vocabulary_from: {type: std.text-corpus, ..., split: train}",
                              path="softmax")
        if config.softmax == "vocabulary" and config.embeddings == "hypernetwork":
            raise ConfigError("softmax: vocabulary with embeddings: hypernetwork would run the hypernetwork over the "
                              "whole fixed vocabulary at every step", hint="use softmax: batch to train it",
                              path="softmax")
        hf = self._hf_config(config, tok)
        try:
            self.lm = AutoModelForCausalLM.from_config(hf)
        except ValueError as exc:
            raise ConfigError(f"transformers cannot build a causal LM for model type {hf.model_type!r}: "
                              f"{str(exc).splitlines()[0]}", path="architecture") from None
        self.tokenizer_ref = tok  # the registry of merged tokens (not a module: holds no weights)
        self.base_vocab_size = int(tok.base_vocab_size)
        self.causal = True
        self.context_length: int | None = next(
            (int(v) for k in ("n_positions", "max_position_embeddings") if isinstance(v := getattr(hf, k, None), int)),
            None,
        )
        max_len = getattr(tok, "max_length", None)
        if self.context_length is not None and isinstance(max_len, int) and max_len > self.context_length:
            raise ConfigError(
                f"the tokenizer's max_length {max_len} exceeds the model's {self.context_length} positions",
                hint=f"set the tokenizer's max_length to at most {self.context_length}",
            )
        self.num_layers = int(hf.num_hidden_layers) + 1
        dim = int(hf.hidden_size)
        self.hyper_in: PartsHypernetwork | None = None
        self.hyper_out: PartsHypernetwork | None = None
        if config.embeddings == "hypernetwork":
            if dim % config.hypernetwork_heads:
                raise ConfigError(f"hypernetwork_heads {config.hypernetwork_heads} does not divide the width {dim}",
                                  path="hypernetwork_heads")
            sizes = (dim, config.hypernetwork_layers, config.hypernetwork_heads, config.max_parts)
            self.hyper_in = PartsHypernetwork(*sizes)
            if not config.tie_embeddings:
                self.hyper_out = PartsHypernetwork(*sizes)
        params = inspect.signature(type(self.lm).forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"

    # -- embeddings of merged tokens
    def _merged(self, table: Tensor, parts: Sequence[Sequence[int]], hyper: PartsHypernetwork | None) -> Tensor:
        if hyper is None:
            return bag_mean(table, parts)
        step = len(parts) if torch.is_grad_enabled() else 2048  # scoring a whole fixed vocabulary: in chunks
        chunks = [hyper(table, *parts_tensor(parts[i : i + step], table.device)) for i in range(0, len(parts), step)]
        return torch.cat(chunks) if chunks else table.new_zeros((0, table.shape[1]))

    def merged_embeddings(self, parts: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
        """Input and output embeddings ``[|U|, D]`` of merged tokens given by their base parts."""
        table = self.lm.get_input_embeddings().weight
        new_in = self._merged(table, parts, self.hyper_in)
        out_table = self.lm.get_output_embeddings().weight
        if self.config.tie_embeddings and out_table is table:
            return new_in, new_in
        return new_in, self._merged(out_table, parts, self.hyper_out)

    def _run(self, ids: Tensor, mask: Tensor, parts: Sequence[Sequence[int]], output_layers: bool = False,
             **extra: Any) -> tuple[Any, Tensor]:
        """Run the decoder on batch-local ids; return the transformers output and the output table [V + |U|, D]."""
        v = self.base_vocab_size
        if ids.numel() and (int(ids.max()) >= v + len(parts) or int(ids.min()) < 0):
            raise InputError(f"token ids outside the batch vocabulary (0 .. {v + len(parts) - 1}): use the tower's "
                             "dynamic-bpe tokenizer")
        table = self.lm.get_input_embeddings().weight
        new_in, new_out = self.merged_embeddings(parts)
        emb = table[ids.clamp(max=v - 1)]
        is_new = ids >= v
        if bool(is_new.any()):
            emb = torch.where(is_new.unsqueeze(-1), new_in[(ids - v).clamp(min=0)].to(emb.dtype), emb)
        out = self.lm.base_model(inputs_embeds=emb, attention_mask=mask, output_hidden_states=output_layers,
                                 return_dict=True, **extra)
        head = self.lm.get_output_embeddings()
        return out, torch.cat([head.weight, new_out.to(head.weight.dtype)], 0)

    def _logits(self, hidden: Tensor, out_table: Tensor, parts: Sequence[Sequence[int]]) -> Tensor:
        logits = hidden @ out_table.T
        bias = getattr(self.lm.get_output_embeddings(), "bias", None)
        if bias is not None:
            new_bias = bag_mean(bias.unsqueeze(-1), parts).squeeze(-1)
            logits = logits + torch.cat([bias, new_bias])
        return logits

    def _vocabulary(self, batch: DynamicBatch) -> tuple[Tensor, Sequence[Sequence[int]]]:
        """The ids and merged tokens the softmax runs over: the batch's (batch-local ids), or the fixed W's."""
        if self.config.softmax == "batch" or not batch.new_tokens:
            return batch.input_ids, (self.tokenizer_ref.registry_parts if self.config.softmax == "vocabulary"
                                     else batch.new_parts)
        registry = self.tokenizer_ref.registry
        try:
            index = torch.tensor([registry[t] for t in batch.new_tokens], dtype=torch.long, device=batch.input_ids.device)
        except KeyError as exc:
            raise InputError(f"merged token {exc.args[0]!r} is not in the tokenizer's fixed vocabulary") from None
        ids, v = batch.input_ids, self.base_vocab_size
        return torch.where(ids >= v, v + index[(ids - v).clamp(min=0)], ids), self.tokenizer_ref.registry_parts

    def forward(self, batch: DynamicBatch, output_layers: bool = False) -> Encoded:
        """``token`` (last hidden states), ``logits`` over V + U (lazy), ``ids`` (the ids read, in U's numbering).

        U is the batch's merged tokens (``softmax: batch``; ids batch-local ``V + j``) or the fixed
        vocabulary W (``softmax: vocabulary``; ids ``V + index in W``).
        """
        if not isinstance(batch, DynamicBatch):
            raise InputError(f"dynamic-lm reads a dynamic-bpe batch, got {type(batch).__name__}")
        mask = batch.attention_mask
        ids, parts = self._vocabulary(batch)
        out, out_table = self._run(ids, mask, parts, output_layers)
        last = out.last_hidden_state
        bmask = mask.bool()
        return Encoded(
            {
                "token": Granularity(last, bmask),
                "logits": LazyGranularity(lambda: self._logits(last, out_table, parts), bmask),
                "ids": Granularity(ids, bmask),
            },
            layers=tuple(out.hidden_states) if output_layers else None,
            layers_of="token",
        )

    # -- CausalLM
    @torch.no_grad()
    def next_logprobs(self, ids: Tensor, cache: Any = None, attention_mask: Tensor | None = None) -> tuple[Tensor, Any]:
        """Log-probs of the next dynamic token after each of ``ids`` (tokenizer ids: base and registry ``V + r``).

        The vocabulary is V + U, U = the merged tokens present in the cached prefix and ``ids`` (the
        evaluator's batch, or the prompt and what was generated); the result is laid out over
        ``V + R`` columns (R = the largest registry index present + 1), ``-inf`` outside V + U. The
        cache is the prefix itself (ids and mask): each call re-reads it, since U may grow.
        """
        full_ids, full_mask = extend_prefix(ids, attention_mask, cache)
        v = self.base_vocab_size
        tok = self.tokenizer_ref
        real = full_mask.bool()
        if int(full_ids.min()) < 0:
            raise InputError("negative token ids")
        if getattr(tok, "fixed_vocabulary", False):  # U = the whole fixed vocabulary W: ids are already V + index
            for r in torch.unique(full_ids[(full_ids >= v) & real]).tolist():
                tok.parts_of(int(r))  # an unknown id: one InputError
            parts: Sequence[Sequence[int]] = tok.registry_parts
            registry_ids = torch.arange(v, v + len(parts), device=full_ids.device)
            local = full_ids.masked_fill(~real, 0)
        else:
            registry_ids = torch.unique(full_ids[(full_ids >= v) & real])
            parts = [tok.parts_of(int(r)) for r in registry_ids.tolist()]
            local = full_ids.clone()
            if len(registry_ids):
                lookup = torch.searchsorted(registry_ids, full_ids.clamp(min=v))
                local = torch.where((full_ids >= v) & real, v + lookup, full_ids.clamp(max=v - 1))
            local = local.masked_fill(~real, 0)
        was = self.training
        self.eval()
        try:
            out, out_table = self._run(local, full_mask.long(), parts)
            lp = torch.log_softmax(self._logits(out.last_hidden_state, out_table, parts).float(), -1)
        finally:
            self.train(was)
        if getattr(tok, "fixed_vocabulary", False):
            return lp[:, -ids.shape[1]:], (full_ids, full_mask)
        width = v + (int(registry_ids.max()) - v + 1 if len(registry_ids) else 0)
        result = lp.new_full((*lp.shape[:2], width), float("-inf"))
        result[..., :v] = lp[..., :v]
        if len(registry_ids):
            result[..., registry_ids] = lp[..., v:]
        return result[:, -ids.shape[1]:], (full_ids, full_mask)


class BatchVocabulary(Evaluator):
    """What the batch vocabulary U of std's LM evaluators is worth: tokens per byte, |U|, and the cost of sending U.

    Forms the scoring windows and batches exactly as std's ``bits-per-byte`` / ``typo-bits-per-byte``
    do (each document by ``encode_plain``, windows of ``context - 1`` tokens after the beginning-of-text
    token, sorted by length, ``batch_size`` windows per batch) and reports, without running the model:

    * ``tokens_per_byte`` (dynamic tokens scored / UTF-8 bytes) and ``base_tokens_per_byte`` (the
      base tokenizer's, on the same windows);
    * ``merged_tokens_per_batch``: the mean |U| of a batch (with a fixed vocabulary W: |W|);
    * ``uniform_bits_per_byte`` = Σ_batches tokens_b · log2(V + |U_b|) / bytes: the bits per byte of a
      model with uniform logits over the batch vocabulary (what ``std.bits-per-byte`` reports for it);
    * ``vocabulary_bits_per_byte`` = Σ_batches Σ_{u ∈ U_b} (parts(u) + 1) · log2(V + 1) / bytes: a simple
      code for U itself (each merged token spelled in base ids plus an end mark, uniformly), which a
      receiver needs before it can decode with V + U. ``bits_per_byte + vocabulary_bits_per_byte`` is a
      code length that does not assume U known. With a fixed vocabulary W (``vocabulary_from``) it is 0:
      W is part of the model, like a BPE vocabulary.
    """

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``dynamic-tokenization.batch-vocabulary``."""

        tower: str | None = Field(None, description="the tower with the dynamic-bpe tokenizer (default: the first)")
        context: int | None = Field(None, ge=2, description="window length (default: the model's context / max_length)")
        batch_size: int = Field(8, ge=1, description="windows per batch: the LM evaluator's batch_size (std: 8)")
        limit: int | None = Field(None, ge=1, description="at most this many documents")

    config: Config

    def evaluate(self, model: Any, data: Examples) -> dict[str, float]:
        """Tokens per byte, |U| per batch, uniform-model and vocabulary bits per byte (see the class docs)."""
        c = self.config
        name = c.tower or model.tower_names[0]
        tower = model.tower(name)
        tok, enc = tower.tokenizer, tower.encoder
        if not callable(getattr(tok, "parts_of", None)) or not callable(getattr(tok, "encode_plain", None)):
            raise ConfigError(f"dynamic-tokenization.batch-vocabulary: the tokenizer of tower {name!r} is not dynamic-bpe")
        column = data.columns.get(name) if name in data.columns else next(iter(data.columns.values()))
        texts = list(column)[: c.limit] if c.limit else list(column)
        windows, n_bytes = scoring_windows(tok, enc, texts, c.context)
        v = tok.base_vocab_size
        fixed = bool(getattr(tok, "fixed_vocabulary", False))
        tokens = base_tokens = merged = batches = 0
        uniform_bits = vocab_bits = 0.0
        for i in range(0, len(windows), c.batch_size):
            chunk = windows[i : i + c.batch_size]
            # a fixed vocabulary W is part of the model (built before the evaluated text is seen): U = W, free
            new = range(v, v + tok.registry_size) if fixed else {t for w in chunk for t in w if t >= v}
            n = sum(len(w) - 1 for w in chunk)
            tokens += n
            base_tokens += sum(len(tok.parts_of(t)) for w in chunk for t in w[1:])
            merged += len(new)
            batches += 1
            uniform_bits += n * math.log2(v + len(new))
            if not fixed:
                vocab_bits += sum(len(tok.parts_of(t)) + 1 for t in new) * math.log2(v + 1)
        per_byte = 1.0 / max(n_bytes, 1)
        return {
            "tokens": float(tokens),
            "base_tokens": float(base_tokens),
            "bytes": float(n_bytes),
            "tokens_per_byte": tokens * per_byte,
            "base_tokens_per_byte": base_tokens * per_byte,
            "batches": float(batches),
            "merged_tokens_per_batch": merged / max(batches, 1),
            "uniform_bits_per_byte": uniform_bits * per_byte,
            "vocabulary_bits_per_byte": vocab_bits * per_byte,
        }
