"""``landmark-lm`` (causal LM encoder), ``passkey`` (dataset) and ``passkey-retrieval`` (evaluator)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from pydantic import Field, model_validator
from repmix.sdk import (
    AssembledModel,
    ComponentConfig,
    Dataset,
    Encoded,
    Encoder,
    EncoderSignature,
    Evaluator,
    Examples,
    Granularity,
    GranularitySpec,
    InputError,
    Runtime,
    token_embedding,
)
from repmix.sdk.lm import LazyGranularity
from torch import Tensor

from repmix_landmark_attention.model import LandmarkCache, LandmarkTransformer
from repmix_landmark_attention.passkey import (
    HEADER,
    make_prompt,
    read_key,
    training_text,
)

CITATION = (
    "Mohtashami & Jaggi (2023). Landmark Attention: Random-Access Infinite Context Length for Transformers. "
    "NeurIPS 2023. arXiv:2305.16300. https://github.com/epfml/landmark-attention"
)


class LandmarkLM(Encoder):
    """A causal GPT with landmark tokens and grouped-softmax attention; top-k block retrieval at inference.

    Provides ``token`` (last hidden states of the real tokens), ``logits`` (tied vocabulary head,
    computed when read) and ``ids``; it is a :class:`repmix.sdk.CausalLM` (``next_logprobs`` with a
    landmark KV cache), so std's ``causal-lm`` loss, ``perplexity`` / ``bits-per-byte`` evaluators,
    decoding strategies and ``repmix generate`` work with it as with ``std.hf-lm``.
    """

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``landmark-lm`` (names as in the official ``lm_benchmark`` arguments)."""

        n_layer: int = Field(2, ge=1, description="transformer blocks")
        n_embd: int = Field(64, ge=2, description="hidden size")
        n_head: int = Field(2, ge=1, description="attention heads (head size n_embd / n_head, even for rotary positions)")
        mlp_ratio: int = Field(4, ge=1, description="MLP width / hidden size")
        mem_freq: int | None = Field(
            16, ge=1,
            description="block size: a landmark token after every mem_freq tokens (official default 50); "
            "null = no landmarks, plain causal softmax attention (the baseline)")
        top_k: int | None = Field(
            None, ge=1,
            description="inference (next_logprobs): attend to the own block + the top_k earlier blocks chosen by "
            "landmark score, per query and head (cache_topk); null = every block through the grouped softmax")
        rope_base: float = Field(10000.0, gt=1, description="rotary position base")
        dropout: float = Field(0.0, ge=0, lt=1, description="dropout on embeddings, attention weights and outputs")

        @model_validator(mode="after")
        def _heads(self) -> LandmarkLM.Config:
            if self.n_embd % self.n_head:
                raise ValueError(f"n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
            if (self.n_embd // self.n_head) % 2:
                raise ValueError(f"head size {self.n_embd // self.n_head} must be even for rotary positions")
            if self.top_k is not None and self.mem_freq is None:
                raise ValueError("top_k retrieves landmark blocks: it needs mem_freq (landmarks)")
            return self

    config: Config

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:
        specs = {
            "token": GranularitySpec("sequence", config.n_embd),
            "logits": GranularitySpec("sequence", None),
            "ids": GranularitySpec("sequence", None, values="ids"),
        }
        return EncoderSignature(specs, num_layers=config.n_layer + 1, layers_of="token", causal=True)

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        embed = token_embedding(runtime.tokenizer, config.n_embd, "landmark-lm")
        self.model = LandmarkTransformer(embed, config.n_layer, config.n_head, config.mlp_ratio, config.mem_freq,
                                         config.dropout, config.rope_base)
        self.causal = True
        #: landmark attention has no position table: any length can be scored (None = unbounded)
        self.context_length: int | None = None
        #: the retrieval setting next_logprobs uses (an evaluator may change it between runs)
        self.top_k: int | None = config.top_k

    @property
    def hidden_size(self) -> int:
        return int(self.config.n_embd)

    def forward(self, batch: Mapping[str, Tensor], output_layers: bool = False) -> Encoded:
        ids = batch["input_ids"]
        mask = batch["attention_mask"].bool()
        hidden, _, states = self.model.run(ids, mask, output_layers=output_layers)
        grans = {
            "token": Granularity(hidden, mask),
            "logits": LazyGranularity(lambda: self.model.head(hidden), mask),
            "ids": Granularity(ids, mask),
        }
        return Encoded(grans, layers=tuple(states) if output_layers else None, layers_of="token")

    @torch.no_grad()
    def next_logprobs(self, ids: Tensor, cache: Any = None, attention_mask: Tensor | None = None) -> tuple[Tensor, Any]:
        """Log-probs ``[B, T, V]`` of the token after each of ``ids`` (following ``cache``) and the new cache.

        Batches may be right-padded (``attention_mask``) when there is no cache; with ``top_k`` set,
        every query attends to its own block and its ``top_k`` retrieved blocks.
        """
        if cache is not None and not isinstance(cache, LandmarkCache):
            raise InputError(f"landmark-lm's cache is a LandmarkCache, got {type(cache).__name__}")
        if attention_mask is not None:
            m = attention_mask.bool()
            if cache is not None and attention_mask.shape[-1] != ids.shape[-1]:
                m = m[:, -ids.shape[-1]:]
            if cache is not None and not bool(m.all()):
                raise InputError("landmark-lm continues a cache only without padding")
            if bool((m[:, 1:] & ~m[:, :-1]).any()):
                raise InputError("landmark-lm reads right-padded batches only (padding after the tokens)")
            mask = m
        else:
            mask = None
        hidden, new_cache, _ = self.model.run(ids, mask, cache=cache, top_k=self.top_k, use_cache=True)
        return torch.log_softmax(self.model.head(hidden).float(), dim=-1), new_cache


class PassKeyDataset(Dataset):
    """Pass-key documents (prompt + answer) for training: filler of ``garbage_min``..``garbage_max`` characters."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``passkey``."""

        n_examples: int = Field(2000, ge=1, description="documents to generate")
        garbage_min: int = Field(0, ge=0, description="least filler characters")
        garbage_max: int = Field(150, ge=0, description="most filler characters (keep documents within the tokenizer's max_length)")
        header: str = Field("", description=f"task description before the filler (run_test.py: {HEADER!r})")
        seed: int = Field(0, description="seed; the test split uses seed + 1")
        tower: str = Field("text", min_length=1, description="column name (the tower that reads the documents)")

        @model_validator(mode="after")
        def _range(self) -> PassKeyDataset.Config:
            if self.garbage_min > self.garbage_max:
                raise ValueError(f"garbage_min {self.garbage_min} exceeds garbage_max {self.garbage_max}")
            return self

    config: Config

    def load(self, split: str | None = None) -> Examples:
        c = self.config
        rng = random.Random(c.seed + (1 if split == "test" else 0))
        docs = [training_text(make_prompt(rng.randint(c.garbage_min, c.garbage_max), rng, header=c.header))
                for _ in range(c.n_examples)]
        return Examples({c.tower: docs}, ids=[f"passkey-{i}" for i in range(len(docs))])


class PassKeyRetrievalEvaluator(Evaluator):
    """Accuracy of greedy pass-key answers per filler length (and per retrieval setting)."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``passkey-retrieval``."""

        lengths: list[int] = Field(default_factory=lambda: [100, 400, 1000], min_length=1,
                                   description="filler characters (n_garbage of run_test.py)")
        n_per_length: int = Field(20, ge=1, description="prompts per length (num_tests)")
        header: str = Field("", description="task description before the filler (the training documents')")
        top_k: list[int | None] | None = Field(
            None, description="retrieval settings to compare (null in the list = all blocks); default: the model's own")
        max_new_tokens: int = Field(8, ge=1, description="tokens generated for the answer")
        seed: int = Field(1234, description="seed of keys and needle depths")
        tower: str | None = Field(None, description="causal tower (default: the first causal one)")

        @model_validator(mode="after")
        def _values(self) -> PassKeyRetrievalEvaluator.Config:
            if any(n < 0 for n in self.lengths):
                raise ValueError("lengths must be non-negative numbers of filler characters")
            if self.top_k is not None and (not self.top_k or any(k is not None and k < 1 for k in self.top_k)):
                raise ValueError("top_k must list settings >= 1 (or null for all blocks)")
            return self

    config: Config

    def evaluate(self, model: AssembledModel, data: Examples) -> dict[str, float]:
        c = self.config
        tok, lm = _causal_tower(model, c.tower)
        settings: list[int | None] = list(c.top_k) if c.top_k is not None else [getattr(lm, "top_k", None)]
        if c.top_k is not None and not hasattr(lm, "top_k"):
            raise InputError("top_k settings need a landmark-lm encoder (its top_k attribute)",
                             hint="drop top_k: to evaluate the model as it is")
        bos = getattr(tok, "bos_token_id", None)
        eos = getattr(tok, "eos_token_id", None)
        prompts = {n: [make_prompt(n, random.Random(c.seed * 1_000_003 + n * 101 + i), header=c.header)
                       for i in range(c.n_per_length)] for n in c.lengths}
        metrics: dict[str, float] = {}
        was_training, old_k = model.training, getattr(lm, "top_k", None)
        model.eval()
        try:
            for k in settings:
                if hasattr(lm, "top_k"):
                    lm.top_k = k
                name = "" if len(settings) == 1 else ("full/" if k is None else f"k{k}/")
                for n, items in prompts.items():
                    right, tokens = 0, 0
                    for p in items:
                        ids = ([bos] if bos is not None else []) + list(tok.encode_plain(p.text))
                        tokens += len(ids)
                        out = _greedy(lm, ids, c.max_new_tokens, eos)
                        right += read_key(tok.decode(out)) == p.key
                    metrics[f"{name}accuracy@{n}"] = right / len(items)
                    metrics[f"tokens@{n}"] = tokens / len(items)
        finally:
            if hasattr(lm, "top_k"):
                lm.top_k = old_k
            model.train(was_training)
        return metrics


def _causal_tower(model: AssembledModel, tower: str | None) -> tuple[Any, Any]:
    for name in [tower] if tower is not None else list(model.tower_names):
        t = model.tower(name)
        if callable(getattr(t.encoder, "next_logprobs", None)) and getattr(t.encoder, "causal", True) is not False:
            return t.tokenizer, t.encoder
    raise InputError(f"{'tower ' + repr(tower) if tower else 'no tower'} has a causal LM (next_logprobs)",
                     hint="pass-key retrieval decodes greedily: use landmark-lm or std.hf-lm with a causal architecture")


@torch.no_grad()
def _greedy(lm: Any, prompt: list[int], max_new: int, eos: int | None) -> list[int]:
    limit = getattr(lm, "context_length", None)
    if limit is not None and len(prompt) + max_new > limit:
        raise InputError(f"a pass-key prompt is {len(prompt)} tokens long; the model attends to {limit} at most",
                         hint="use shorter lengths, or a model without a position limit (landmark-lm)")
    device = next(iter(lm.parameters())).device
    logprobs, cache = lm.next_logprobs(torch.tensor([prompt], device=device))
    out: list[int] = []
    for _ in range(max_new):
        nxt = int(logprobs[0, -1].argmax())
        out.append(nxt)
        if nxt == eos or len(out) >= max_new:
            break
        logprobs, cache = lm.next_logprobs(torch.tensor([[nxt]], device=device), cache)
    return out
