"""``lcm-sentences`` (tokenizer), ``base-lcm`` (encoder) and ``lcm-mse`` (loss).

* ``lcm-sentences`` splits each document into sentences (or takes a list of sentences) and
  embeds them with a frozen sentence encoder (all-MiniLM-L6-v2 by default: mean pooling +
  L2 normalisation, its sentence-transformers pipeline; SONAR in the paper). Batch:
  ``embeddings`` [B, S, d] and ``mask`` [B, S] (bool). Not a module: the encoder is frozen and
  its vectors are cached by sentence.
* ``base-lcm`` robust-normalises the vectors and runs the causal next-concept model. Provides
  ``concept`` (the normalised inputs, a sequence), ``prediction`` (position i predicts concept
  i + 1, a sequence) and ``next`` (the predicted next sentence embedding after the last real
  sentence, denormalised into the sentence encoder's space, pooled). The scaler is fitted at
  build time on ``fit_on`` (a dataset block), stored as buffers, so a saved model carries it.
* ``lcm-mse`` reads ``prediction`` and ``concept`` of a tower: the official per-target
  ``sqrt(sum (y - x)^2 + 1e-5)`` (``rmse: true``, the default) or the mean squared error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field, field_validator
from repmix.sdk import (
    ComponentConfig,
    ConfigError,
    Encoded,
    Encoder,
    EncoderSignature,
    Granularity,
    GranularitySpec,
    InputError,
    Loss,
    LossInputs,
    LossOutput,
    PipelineError,
    Runtime,
    Tokenizer,
    TowerView,
    masked_mean,
)
from repmix_base_lcm.lcm import BaseLCM, RobustScaler, next_concept_loss, split_sentences
from torch import Tensor

CITATION = (
    "LCM team, Barrault et al. (2024). Large Concept Models: Language Modeling in a Sentence Representation Space. "
    "arXiv:2412.08821. https://github.com/facebookresearch/large_concept_model"
)


class SentenceEmbeddingTokenizer(Tokenizer):
    """Documents -> sentences -> frozen sentence embeddings ``[B, S, d]`` with a bool mask."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``lcm-sentences``."""

        model: str = Field("all-MiniLM-L6-v2", description="sentence encoder: a model folder or the packaged MiniLM")
        max_length: int = Field(128, ge=2, description="tokens per sentence (truncated)")
        max_sentences: int = Field(64, ge=1, description="keep the first this many sentences of a document")
        normalize: bool = Field(True, description="L2-normalise sentence vectors (MiniLM's sentence-transformers pipeline)")
        batch_size: int = Field(64, ge=1, description="sentences embedded at once")

        @field_validator("model")
        @classmethod
        def _model(cls, value: str) -> str:
            from repmix.sdk.hf import validate_model_dir

            return validate_model_dir(value)

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        from repmix.sdk import load_hf_model, resolve_model_dir
        from transformers import AutoTokenizer

        directory = resolve_model_dir(config.model)
        self.hf_tokenizer = AutoTokenizer.from_pretrained(str(directory))
        self.model = load_hf_model(config.model, pretrained=True).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.dim = int(self.model.config.hidden_size)
        self.cache: dict[str, np.ndarray] = {}

    def sentences(self, item: Any) -> list[str]:
        """The sentences of one item (a document string, or a list of sentences), at most ``max_sentences``."""
        if isinstance(item, str):
            out = split_sentences(item)
        elif isinstance(item, (list, tuple)) and all(isinstance(s, str) for s in item):
            out = [s.strip() for s in item if s.strip()]
        else:
            raise InputError(f"lcm-sentences: expected a document string or a list of sentences, got {type(item).__name__}")
        if not out:
            raise InputError("lcm-sentences: a document without any sentence (empty or whitespace only)")
        return out[: self.config.max_sentences]

    def check_item(self, item: Any) -> str | None:
        try:
            self.sentences(item)
        except InputError as exc:
            return str(exc)
        return None

    def sort_key(self, item: Any) -> int:
        return len(item) if isinstance(item, (str, list, tuple)) else 0

    @torch.no_grad()
    def embed(self, sentences: Sequence[str]) -> np.ndarray:
        """Sentence vectors [N, d] (cached)."""
        todo = [s for s in dict.fromkeys(sentences) if s not in self.cache]
        bs = self.config.batch_size
        for i in range(0, len(todo), bs):
            chunk = todo[i : i + bs]
            enc = self.hf_tokenizer(chunk, padding=True, truncation=True, max_length=self.config.max_length,
                                    return_tensors="pt")
            out = self.model(**{k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")})
            vec = masked_mean(out.last_hidden_state, enc["attention_mask"].bool())
            if self.config.normalize:
                vec = torch.nn.functional.normalize(vec, dim=-1)
            self.cache.update(zip(chunk, vec.float().numpy()))
        return np.stack([self.cache[s] for s in sentences]) if sentences else np.zeros((0, self.dim), np.float32)

    def __call__(self, items: Sequence[Any]) -> dict[str, Tensor]:
        if not items:
            raise InputError("lcm-sentences: cannot tokenize an empty batch")
        docs = [self.sentences(item) for item in items]
        width = max(len(d) for d in docs)
        emb = torch.zeros(len(docs), width, self.dim)
        mask = torch.zeros(len(docs), width, dtype=torch.bool)
        flat = self.embed([s for d in docs for s in d])
        k = 0
        for i, d in enumerate(docs):
            emb[i, : len(d)] = torch.from_numpy(flat[k : k + len(d)])
            mask[i, : len(d)] = True
            k += len(d)
        return {"embeddings": emb, "mask": mask}

    def saved_files(self) -> dict[str, Any]:
        from repmix.sdk import resolve_model_dir
        from repmix.sdk.hf import model_files

        return {"model": model_files(resolve_model_dir(self.config.model), tokenizer=True)}


class BaseLCMEncoder(Encoder):
    """Robust scaler + causal transformer over sentence embeddings (Base-LCM)."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``base-lcm``."""

        model_dim: int = Field(256, ge=1, description="width D of the causal transformer")
        layers: int = Field(2, ge=1, description="transformer layers (the official toy_base_lcm has 2)")
        heads: int = Field(4, ge=1, description="attention heads (must divide model_dim)")
        ff_dim: int = Field(1024, ge=1, description="feed-forward width")
        dropout: float = Field(0.1, ge=0, lt=1, description="dropout in the transformer")
        max_sentences: int = Field(64, ge=1, description="most sentences per document (learned positions)")
        normalizer: bool = Field(True, description="robust-scale the embeddings (gaussian_robust); false = identity")
        clip: float | None = Field(None, gt=0, description="clip normalised values to [-clip, clip] (null: no clipping)")
        fit_on: dict[str, Any] | None = Field(
            None, description="dataset block whose documents fit the scaler at build time (e.g. the training data)"
        )
        fit_limit: int = Field(2000, ge=2, description="fit the scaler on at most this many documents")

        @field_validator("heads")
        @classmethod
        def _heads(cls, value: int, info: Any) -> int:
            dim = info.data.get("model_dim")
            if dim is not None and dim % value:
                raise ValueError(f"heads ({value}) must divide model_dim ({dim})")
            return value

    config: Config

    @classmethod
    def nested_components(cls, config: Config) -> dict[str, tuple[str, dict[str, Any]]]:
        return {"fit_on": ("dataset", config.fit_on)} if config.fit_on is not None else {}

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:
        return EncoderSignature(
            {"concept": GranularitySpec("sequence", None), "prediction": GranularitySpec("sequence", None),
             "next": GranularitySpec("pooled", None)},
            num_layers=None,
        )

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        tok = runtime.tokenizer
        dim = getattr(tok, "dim", None)
        if not isinstance(dim, int):
            raise ConfigError("base-lcm needs the lcm-sentences tokenizer (sentence embeddings with a dim)",
                              hint="tokenizer: {type: lcm-sentences, model: all-MiniLM-L6-v2}")
        self.dim = dim
        self.scaler = RobustScaler(dim, config.clip)
        self.lcm = BaseLCM(dim, config.model_dim, config.layers, config.heads, config.ff_dim, config.dropout,
                           config.max_sentences)
        data = runtime.nested.get("fit_on")
        if data is not None and runtime.load_pretrained and config.normalizer:
            docs = list(next(iter(data.load(None).columns.values())))[: config.fit_limit]
            sents = [s for d in docs for s in tok.sentences(d)]
            if len(sents) < 2:
                raise InputError("base-lcm: fit_on holds fewer than 2 sentences to fit the scaler on")
            self.scaler.fit(tok.embed(sents))

    def forward(self, batch: Mapping[str, Tensor], output_layers: bool = False) -> Encoded:
        emb, mask = batch["embeddings"].float(), batch["mask"].bool()
        if emb.shape[1] > self.config.max_sentences:
            raise InputError(f"{emb.shape[1]} sentences exceed base-lcm's max_sentences {self.config.max_sentences}")
        x = self.scaler.normalize(emb) if self.config.normalizer else emb
        x = x.masked_fill(~mask.unsqueeze(-1), 0.0)
        pred = self.lcm(x, mask)
        last = (mask.long().sum(1) - 1).clamp(min=0)
        nxt = pred[torch.arange(pred.shape[0], device=pred.device), last]
        nxt = self.scaler.denormalize(nxt) if self.config.normalizer else nxt
        return Encoded({"concept": Granularity(x, mask), "prediction": Granularity(pred, mask), "next": Granularity(nxt)})


class NextConceptLoss(Loss):
    """Next-sentence-embedding regression in the normalised space (Base-LCM's MSE criterion)."""

    citation: ClassVar[str] = CITATION
    num_alignments: ClassVar[int | None] = 0

    class Config(ComponentConfig):
        """Options of ``lcm-mse``."""

        tower: str | None = Field(None, description="tower to read (default: the only one with a prediction)")
        rmse: bool = Field(True, description="per-target L2 distance sqrt(sum sq + eps) (official default); false: MSE")
        eps: float = Field(1e-5, ge=0, description="added under the square root")

    config: Config

    @classmethod
    def check_towers(cls, config: Config, towers: Mapping[str, TowerView]) -> None:
        names = [config.tower] if config.tower else [n for n, v in towers.items() if "prediction" in v.granularities]
        if len(names) != 1 or names[0] not in towers:
            raise PipelineError("lcm-mse needs exactly one tower with 'prediction' and 'concept' (a base-lcm encoder)",
                                hint="name it with tower: ...", allowed=sorted(towers))
        grans = towers[names[0]].granularities
        for g in ("prediction", "concept"):
            if g not in grans or grans[g].shape != "sequence":
                raise PipelineError(f"lcm-mse reads the sequence granularity {g!r} of tower {names[0]!r}, which it lacks")

    def forward(self, inputs: LossInputs) -> LossOutput:
        name = self.config.tower or next(n for n, e in inputs.outputs.items() if "prediction" in e.granularities)
        enc = inputs.outputs[name]
        concept = enc["concept"]
        value = next_concept_loss(enc["prediction"].hidden, concept.hidden, concept.mask, self.config.rmse, self.config.eps)
        return LossOutput(value, {"targets": float((concept.mask[:, 1:] & concept.mask[:, :-1]).sum())})
