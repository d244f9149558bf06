"""repmix components of ZeTT: the hypernetwork, its tokenizers, the transferred encoder, token counts.

* ``zett.hypernetwork`` (encoder kind, an *embedding factory*): token surfaces -> predicted
  source-space input embeddings ``embedding`` [N, D] (pooled). Other plugins build it as a nested
  block (``hypernetwork: {type: zett.hypernetwork, weights: ...}``) and call
  :meth:`Hypernetwork.embed_surfaces`; dynamic-tokenization does.
* ``zett.surfaces`` (tokenizer): token strings -> their decompositions into source ids, the
  hypernetwork's input (a tower ``surfaces -> hypernetwork`` embeds any token string).
* ``zett.target-tokenizer`` (tokenizer): a new vocabulary (a ``tokenizer.json``) in the source's
  conventions; texts -> target ids.
* ``zett.transferred-transformer`` (encoder): the source transformer with its embedding matrix
  replaced by the hypernetwork's predictions for every target token (or, as the FVT-style
  baseline, by the mean of each target token's source-piece embeddings).
* ``zett.transfer-token-counts`` (evaluator): tokens per text, original tokenizer vs the tower's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

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
    resolve_model_dir,
)
from repmix.sdk.hf import load_hf_config, load_hf_model, model_files, validate_model_dir
from torch import Tensor, nn

from .checkpoint import architecture, checkpoint_dir, load_weights, read_meta
from .hypernet import HypernetArchitecture, ZettHypernetModule, pad_decompositions
from .targets import continuation_prefix, count_tokens, token_strings
from .vocabulary import SourceVocabulary, load_backend

log = logging.getLogger("repmix_zett")

CITATION = (
    "Minixhofer, Ponti and Vulić (2024). Zero-Shot Tokenizer Transfer. NeurIPS 2024. "
    "Official code: github.com/bminixhofer/zett."
)
_MODEL_HELP = "the source model: a local model folder, or the packaged name 'all-MiniLM-L6-v2'"


# --------------------------------------------------------------------------- surfaces
@dataclass
class SurfaceBatch:
    """Decompositions of N token surfaces: source ids [N, S], bool mask [N, S], special [N]."""

    ids: Tensor
    mask: Tensor
    special: Tensor

    def to(self, device: torch.device | str) -> SurfaceBatch:
        """The batch on ``device``."""
        return SurfaceBatch(self.ids.to(device), self.mask.to(device), self.special.to(device))


def surface_batch(vocabulary: SourceVocabulary, surfaces: Sequence[str], maxlen: int) -> SurfaceBatch:
    """Decompose ``surfaces`` into source ids (at most ``maxlen`` each) and pad them."""
    decomps = vocabulary.decompose_all(surfaces, maxlen)
    ids, mask = pad_decompositions(decomps, vocabulary.pad_id)
    special = torch.tensor([s in vocabulary.specials for s in surfaces], dtype=torch.bool)
    return SurfaceBatch(ids, mask, special)


def _check_surface(item: Any) -> str | None:
    if not isinstance(item, str):
        return f"expected a token string, got {type(item).__name__}"
    if not item.strip():
        return "a token surface must not be empty or whitespace"
    if any(c.isspace() for c in item):
        return f"a token surface holds no whitespace, got {item!r}"
    return None


class SurfaceTokenizer(Tokenizer):
    """Token strings (``regulate``, ``##ulated``, ``[CLS]``) -> their decompositions into source WordPiece ids."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``zett.surfaces``."""

        model: str = Field("all-MiniLM-L6-v2", description=_MODEL_HELP)
        surface_maxlen: int = Field(7, ge=1, le=64, description="source ids kept per token (hn_surface_maxlen)")

        _check_model = field_validator("model")(validate_model_dir)

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.vocabulary = SourceVocabulary.from_model(resolve_model_dir(config.model), name=repr(config.model))

    def saved_files(self) -> dict[str, Path | list[Path]]:
        """The source model's config and tokenizer files."""
        return {"model": model_files(resolve_model_dir(self.config.model), tokenizer=True)}

    def __call__(self, items: Sequence[Any]) -> SurfaceBatch:
        """Decompose a batch of token strings."""
        surfaces = list(items)
        if not surfaces:
            raise InputError("cannot decompose an empty batch of token surfaces")
        for i, s in enumerate(surfaces):
            reason = _check_surface(s)
            if reason is not None:
                raise InputError(f"item {i}: {reason}")
        return surface_batch(self.vocabulary, surfaces, self.config.surface_maxlen)

    def check_item(self, item: Any) -> str | None:
        """A non-empty string without whitespace."""
        return _check_surface(item)


# --------------------------------------------------------------------------- hypernetwork
class HypernetworkConfig(ComponentConfig):
    """Options of ``zett.hypernetwork``."""

    model: str = Field("all-MiniLM-L6-v2", description=_MODEL_HELP)
    weights: str | None = Field(
        None, description="a folder written by 'repmix zett train-hypernetwork' (null: untrained, for training/tests)"
    )
    layers: int | None = Field(None, ge=1, description="transformer layers (default 3; from the checkpoint with weights)")
    hidden: int | None = Field(None, ge=8, description="hidden size (default: the source embedding width)")
    intermediate: int | None = Field(None, ge=8, description="feed-forward size (default: 2 x hidden)")
    heads: int | None = Field(None, ge=1, description="attention heads (default: hidden / 64, at least 1)")
    surface_maxlen: int | None = Field(None, ge=1, le=64, description="source ids per token (default 7)")

    _check_model = field_validator("model")(validate_model_dir)

    @field_validator("weights")
    @classmethod
    def _check_weights(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                read_meta(value)
            except ConfigError as err:
                raise ValueError(err.message + (f". {err.hint}" if err.hint else "")) from None
        return value

    @model_validator(mode="after")
    def _check_architecture(self) -> HypernetworkConfig:
        if self.weights is None:
            return self
        arch = architecture(read_meta(self.weights)).to_dict()
        for key in ("layers", "hidden", "intermediate", "heads", "surface_maxlen"):
            value = getattr(self, key)
            if value is not None and value != arch[key]:
                raise ValueError(
                    f"{key} {value} differs from the checkpoint's {arch[key]}: with weights the architecture "
                    f"comes from {self.weights}; leave {key} out"
                )
        return self


def resolve_architecture(config: HypernetworkConfig) -> HypernetArchitecture:
    """The architecture: the checkpoint's, else the config's with defaults from the source model."""
    hf = load_hf_config(config.model)
    n_embd, vocab = int(hf.hidden_size), int(hf.vocab_size)
    if config.weights is not None:
        return architecture(read_meta(config.weights))
    hidden = config.hidden or n_embd
    heads = config.heads or max(1, hidden // 64)
    if hidden % heads:
        raise ConfigError(f"hidden {hidden} is not divisible by heads {heads}", found=heads)
    return HypernetArchitecture(
        n_embd=n_embd,
        source_vocab_size=vocab,
        layers=config.layers or 3,
        hidden=hidden,
        intermediate=config.intermediate or 2 * hidden,
        heads=heads,
        surface_maxlen=config.surface_maxlen or 7,
    )


class Hypernetwork(Encoder):
    """ZeTT's hypernetwork as an embedding factory: token decompositions -> ``embedding`` [N, D].

    ``forward`` reads a :class:`SurfaceBatch` (the ``zett.surfaces`` tokenizer's output);
    :meth:`embed_surfaces` takes token strings directly (with an LRU-style cache at inference,
    as the dynamic-tokenization code's ``hypernet_cache``).
    """

    citation: ClassVar[str] = CITATION
    Config: ClassVar[type[ComponentConfig]] = HypernetworkConfig
    config: HypernetworkConfig
    CACHE_SIZE: ClassVar[int] = 200_000

    @classmethod
    def signature(cls, config: HypernetworkConfig) -> EncoderSignature:  # type: ignore[override]
        """One pooled granularity ``embedding`` of the source embedding width; no per-layer states."""
        hf = load_hf_config(config.model)
        return EncoderSignature({"embedding": GranularitySpec("pooled", int(hf.hidden_size))}, num_layers=None)

    def __init__(self, config: HypernetworkConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.vocabulary = SourceVocabulary.from_model(resolve_model_dir(config.model), name=repr(config.model))
        hf = load_hf_config(config.model)
        meta = read_meta(config.weights) if config.weights is not None else None
        if meta is not None:
            self._check_source(meta, int(hf.vocab_size), int(hf.hidden_size))
        self.arch = resolve_architecture(config)
        if self.arch.source_vocab_size < self.vocabulary.size:
            raise ConfigError(
                f"the tokenizer of {config.model!r} has {self.vocabulary.size} tokens but its model embeds "
                f"{self.arch.source_vocab_size}",
                found=config.model,
            )
        self.net = ZettHypernetModule(self.arch)
        if runtime.load_pretrained:
            source = load_hf_model(config.model).get_input_embeddings().weight
            if int(source.shape[1]) != self.arch.n_embd:
                raise ConfigError(f"{config.model!r} embeds in {source.shape[1]} dims, expected {self.arch.n_embd}")
            self.net.set_source_embeddings(source)
            if meta is not None:
                load_weights(checkpoint_dir(config.weights), self.net)  # type: ignore[arg-type]
        self.meta = meta or {}
        self._cache: dict[str, Tensor] = {}
        self.register_load_state_dict_post_hook(lambda module, keys: module._cache.clear())

    def _check_source(self, meta: dict[str, Any], vocab_size: int, n_embd: int) -> None:
        src = meta["source"]
        ours = (self.vocabulary.fingerprint, vocab_size, n_embd)
        if (str(src["fingerprint"]), int(src["vocab_size"]), int(src["n_embd"])) != ours:
            raise ConfigError(
                f"the hypernetwork in {self.config.weights!r} was trained for the source model "
                f"{src.get('model', '?')!r} (vocabulary {src['vocab_size']} tokens, fingerprint {src['fingerprint']}, "
                f"{src['n_embd']} dims), not for {self.config.model!r} ({vocab_size} tokens, "
                f"fingerprint {self.vocabulary.fingerprint}, {n_embd} dims)",
                found=self.config.weights,
                hint="train a hypernetwork for this model (repmix zett train-hypernetwork) or use its own source model",
            )

    @property
    def fingerprint(self) -> str:
        """The source vocabulary's fingerprint (see :func:`repmix_zett.vocabulary.vocabulary_fingerprint`)."""
        return self.vocabulary.fingerprint

    @property
    def dim(self) -> int:
        """Width of the predicted embeddings (the source model's)."""
        return self.arch.n_embd

    def saved_files(self) -> dict[str, Path | list[Path]]:
        """The source model's config and tokenizer files and the checkpoint folder (a saved model loads elsewhere)."""
        files: dict[str, Path | list[Path]] = {"model": model_files(resolve_model_dir(self.config.model), tokenizer=True)}
        if self.config.weights is not None:
            files["weights"] = checkpoint_dir(self.config.weights)
        return files

    def train(self, mode: bool = True) -> Hypernetwork:
        """Switch mode; the inference cache is dropped (weights may change in training)."""
        self._cache = {}
        return super().train(mode)

    def forward(self, batch: SurfaceBatch, output_layers: bool = False) -> Encoded:
        """Predicted embeddings of the decomposed tokens, ``embedding`` [N, D]."""
        if not isinstance(batch, SurfaceBatch):
            raise InputError(f"zett.hypernetwork reads a zett.surfaces batch, got {type(batch).__name__}")
        if batch.ids.shape[1] > self.arch.surface_maxlen:
            raise InputError(
                f"decompositions of {batch.ids.shape[1]} ids exceed this network's surface_maxlen "
                f"{self.arch.surface_maxlen}: give zett.surfaces the same surface_maxlen"
            )
        pred = self.net(batch.ids, batch.mask, batch.special)
        return Encoded({"embedding": Granularity(pred)})

    def embed_surfaces(self, surfaces: Sequence[str], chunk: int = 4096) -> Tensor:
        """Predicted embeddings [N, D] of token strings (cached per string at inference)."""
        device = self.net.source_embeddings.device
        use_cache = not self.training and not torch.is_grad_enabled()
        if not use_cache:
            return self._predict(list(surfaces), chunk, device)
        todo = list(dict.fromkeys(s for s in surfaces if s not in self._cache))
        if todo:
            if len(self._cache) + len(todo) > self.CACHE_SIZE:
                self._cache = {}
            for s, row in zip(todo, self._predict(todo, chunk, device), strict=True):
                self._cache[s] = row
        if not surfaces:
            return self.net.source_embeddings.new_zeros((0, self.arch.n_embd))
        return torch.stack([self._cache[s] for s in surfaces])

    def _predict(self, surfaces: list[str], chunk: int, device: torch.device) -> Tensor:
        if not surfaces:
            return self.net.source_embeddings.new_zeros((0, self.arch.n_embd))
        out = []
        for start in range(0, len(surfaces), chunk):
            b = surface_batch(self.vocabulary, surfaces[start : start + chunk], self.arch.surface_maxlen).to(device)
            out.append(self.net(b.ids, b.mask, b.special))
        return torch.cat(out)


# --------------------------------------------------------------------------- target tokenizer
def _tokenizer_file(value: str) -> Path:
    """A ``tokenizer.json``: the file itself, a folder holding one, or a model name/folder (its tokenizer)."""
    p = Path(value).expanduser()
    if p.is_file():
        return p
    if p.is_dir() and (p / "tokenizer.json").is_file():
        return p / "tokenizer.json"
    try:
        folder = resolve_model_dir(value)
    except ConfigError:
        folder = None
    if folder is not None and (folder / "tokenizer.json").is_file():
        return folder / "tokenizer.json"
    raise ConfigError(
        f"target tokenizer {value!r} not found: give a tokenizer.json, a folder holding one, or a model",
        found=value,
        hint="train one: repmix zett train-tokenizer --corpus ../shared/data/scifact/corpus.jsonl -o runs/zett-scifact-bpe",
    )


class TargetTokenizer(Tokenizer):
    """A new tokenizer for the source model (texts -> target ids, ``[CLS] ... [SEP]``), as ZeTT transfers to."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``zett.target-tokenizer``."""

        tokenizer: str = Field(
            ..., description="the target tokenizer: a tokenizer.json, a folder holding one, or a model (its own)"
        )
        model: str = Field("all-MiniLM-L6-v2", description="the source model whose special tokens it must carry")
        max_length: int = Field(256, ge=2, description="truncate to this many tokens, special tokens included")

        _check_model = field_validator("model")(validate_model_dir)

        @field_validator("tokenizer")
        @classmethod
        def _check_tokenizer(cls, value: str) -> str:
            try:
                _tokenizer_file(value)
            except ConfigError as err:
                raise ValueError(err.message + (f". {err.hint}" if err.hint else "")) from None
            return value

    config: Config

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        from tokenizers import Tokenizer as HFTokenizer

        self.file = _tokenizer_file(config.tokenizer)
        try:
            backend = HFTokenizer.from_file(str(self.file))
        except Exception as exc:  # noqa: BLE001 - any parse failure is one message
            raise ConfigError(f"cannot load the target tokenizer {str(self.file)!r}: {exc}", found=config.tokenizer) from None
        source = SourceVocabulary.from_model(resolve_model_dir(config.model), name=repr(config.model))
        prefix = continuation_prefix(backend)
        if prefix != source.prefix:
            raise ConfigError(
                f"the target tokenizer {str(self.file)!r} ({type(backend.model).__name__}) marks word-internal tokens "
                f"with {prefix!r}, but {config.model!r} (WordPiece) uses {source.prefix!r}: its tokens cannot be "
                "decomposed into the source vocabulary",
                found=config.tokenizer,
                hint="train the target with the source's conventions: repmix zett train-tokenizer --like MODEL",
            )
        self.surface_list = token_strings(backend)
        vocab = backend.get_vocab(with_added_tokens=True)
        self.special_tokens = {
            t.content for t in backend.get_added_tokens_decoder().values() if t.special
        }
        missing = [t for t in ("[CLS]", "[SEP]", "[PAD]") if t in source.specials and t not in vocab]
        if missing or backend.post_processor is None:
            raise ConfigError(
                f"the target tokenizer {str(self.file)!r} does not match {config.model!r}: "
                + (f"it lacks the special tokens {', '.join(missing)}" if missing else "it adds no special tokens "
                   "(no post-processor)"),
                found=config.tokenizer,
                hint="train it with repmix zett train-tokenizer, which keeps the source's special tokens and framing",
            )
        self.pad_id = int(vocab.get("[PAD]", 0))
        backend.enable_truncation(config.max_length)
        backend.enable_padding(pad_id=self.pad_id, pad_token=self.surface_list[self.pad_id])
        self.backend = backend
        self.counts = {"texts": 0, "empty_texts": 0}

    @property
    def vocab_size(self) -> int:
        """Number of target token ids."""
        return len(self.surface_list)

    @property
    def pad_token_id(self) -> int:
        """Id of ``[PAD]`` in the target vocabulary."""
        return self.pad_id

    def surfaces(self) -> list[str]:
        """Every target token string, by id."""
        return list(self.surface_list)

    def saved_files(self) -> dict[str, Path | list[Path]]:
        """The target tokenizer.json, and the source model's config and tokenizer files."""
        return {"tokenizer": self.file, "model": model_files(resolve_model_dir(self.config.model), tokenizer=True)}

    def __call__(self, items: Sequence[Any]) -> dict[str, Tensor]:
        """Texts -> ``input_ids``, ``attention_mask``, ``token_type_ids`` (padded to the longest)."""
        texts = list(items)
        if not texts:
            raise InputError("cannot tokenize an empty batch")
        for i, item in enumerate(texts):
            if not isinstance(item, str):
                raise InputError(f"item {i} of the batch: expected a string, got {type(item).__name__}")
        empty = sum(1 for t in texts if not t.strip())
        self.counts["texts"] += len(texts)
        if empty:
            if self.counts["empty_texts"] == 0:
                log.warning("zett.target-tokenizer: empty or whitespace-only text encoded as [CLS] [SEP] alone "
                            "(counted in counts['empty_texts'])")
            self.counts["empty_texts"] += empty
        enc = self.backend.encode_batch(texts, add_special_tokens=True)
        return {
            "input_ids": torch.tensor([e.ids for e in enc], dtype=torch.long),
            "attention_mask": torch.tensor([e.attention_mask for e in enc], dtype=torch.long),
            "token_type_ids": torch.tensor([e.type_ids for e in enc], dtype=torch.long),
        }

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Target tokens per text (no special tokens, no truncation)."""
        return count_tokens(self.backend, texts)


# --------------------------------------------------------------------------- transferred encoder
class TransferredTransformer(Encoder):
    """The source transformer with an embedding matrix predicted for the tower's target tokenizer."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``zett.transferred-transformer``."""

        model: str = Field("all-MiniLM-L6-v2", description=_MODEL_HELP)
        embeddings: Literal["hypernetwork", "mean"] = Field(
            "hypernetwork",
            description="hypernetwork: ZeTT's predictions; mean: each target token's mean source-piece embedding "
            "(the FVT-style baseline, no hypernetwork)",
        )
        hypernetwork: dict[str, Any] | None = Field(
            default_factory=lambda: {"type": "zett.hypernetwork"},
            description="the hypernetwork block, e.g. {type: zett.hypernetwork, weights: runs/zett-hypernetwork} "
            "(without weights the network is untrained)",
        )

        _check_model = field_validator("model")(validate_model_dir)

        @model_validator(mode="after")
        def _needs_hypernetwork(self) -> TransferredTransformer.Config:
            if self.embeddings == "hypernetwork" and self.hypernetwork is None:
                raise ValueError("embeddings: hypernetwork needs a hypernetwork block "
                                 "(e.g. {type: zett.hypernetwork, weights: runs/zett-hypernetwork})")
            return self

    config: Config

    @classmethod
    def nested_components(cls, config: Config) -> dict[str, tuple[str, dict[str, Any]]]:  # type: ignore[override]
        """The hypernetwork block, built as a nested encoder."""
        if config.embeddings != "hypernetwork" or config.hypernetwork is None:
            return {}
        return {"hypernetwork": ("encoder", dict(config.hypernetwork))}

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:  # type: ignore[override]
        """``token`` [B, N, D] from the last layer, and every hidden state."""
        hf = load_hf_config(config.model)
        return EncoderSignature(
            {"token": GranularitySpec("sequence", int(hf.hidden_size))},
            num_layers=int(hf.num_hidden_layers) + 1,
            layers_of="token",
        )

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        tok = runtime.tokenizer
        if not callable(getattr(tok, "surfaces", None)):
            raise ConfigError(
                "zett.transferred-transformer needs the tower's tokenizer to be zett.target-tokenizer "
                f"(got {type(tok).__name__})",
                hint="tokenizer: {type: zett.target-tokenizer, tokenizer: runs/zett-scifact-bpe/tokenizer.json}",
            )
        hf_config = load_hf_config(config.model)
        self.vocabulary = SourceVocabulary.from_model(resolve_model_dir(config.model), name=repr(config.model))
        surfaces: list[str] = tok.surfaces()
        foreign = sorted(s for s in getattr(tok, "special_tokens", set()) if s not in self.vocabulary.specials)
        if foreign:
            raise ConfigError(
                f"the target tokenizer's special tokens {', '.join(foreign)} are not special tokens of {config.model!r}: "
                "the tokenizer does not match the model",
                hint="use a target tokenizer trained for this model (repmix zett train-tokenizer --like MODEL)",
            )
        self.model = load_hf_model(config.model, pretrained=runtime.load_pretrained, config=hf_config)
        dim = int(hf_config.hidden_size)
        hn = runtime.nested.get("hypernetwork")
        if config.embeddings == "hypernetwork":
            if hn is None or not callable(getattr(hn, "embed_surfaces", None)):
                raise ConfigError("the hypernetwork block must build a zett.hypernetwork")
            if hn.fingerprint != self.vocabulary.fingerprint or hn.dim != dim:
                raise ConfigError(
                    f"the hypernetwork's source vocabulary (fingerprint {hn.fingerprint}, {hn.dim} dims) is not "
                    f"that of {config.model!r} ({self.vocabulary.fingerprint}, {dim} dims)",
                    hint="give the hypernetwork block the same model",
                )
        weight = torch.zeros(len(surfaces), dim)
        self.stats: dict[str, float] = {"target_vocab": float(len(surfaces))}
        if runtime.load_pretrained:
            weight = self._transfer(surfaces, hn)
        embedding = nn.Embedding(len(surfaces), dim)
        with torch.no_grad():
            embedding.weight.copy_(weight)
        self.model.set_input_embeddings(embedding)
        self.model.config.vocab_size = len(surfaces)
        self.model.train(self.training)

    @torch.no_grad()
    def _transfer(self, surfaces: list[str], hn: Any) -> Tensor:
        """The target embedding matrix; special tokens keep their source embeddings."""
        source = self.model.get_input_embeddings().weight.detach().float()
        voc = self.vocabulary
        unknown_before = voc.unknown
        full = [voc.decompose_full(s) for s in surfaces]
        self.stats["overlap"] = float(sum(1 for s in surfaces if s in voc.vocab))
        self.stats["unk_decompositions"] = float(
            sum(1 for s, d in zip(surfaces, full, strict=True) if d == [voc.unk_id] and s != voc.unk_token)
        )
        if self.config.embeddings == "mean":
            weight = torch.stack([source[torch.tensor(d)].mean(0) for d in full])
        else:
            hn.eval()
            weight = hn.embed_surfaces(surfaces).to(source.dtype).cpu()
        for i, s in enumerate(surfaces):
            if s in voc.specials:
                weight[i] = source[voc.specials[s]]
        voc.unknown = unknown_before
        if self.stats["unk_decompositions"]:
            log.warning("zett: %d target tokens decompose to [UNK] in %r (their embedding is predicted from [UNK])",
                        int(self.stats["unk_decompositions"]), self.config.model)
        return weight

    def saved_files(self) -> dict[str, Path | list[Path]]:
        """config.json and the tokenizer files of the source model folder (the weights travel in the saved model)."""
        return {"model": model_files(resolve_model_dir(self.config.model), tokenizer=True)}

    @property
    def hidden_size(self) -> int:
        """Width of ``token``."""
        return int(self.model.config.hidden_size)

    def forward(self, batch: dict[str, Tensor], output_layers: bool = False) -> Encoded:
        """Run the transformer on target ids; ``layers`` holds every hidden state when asked."""
        ids = batch["input_ids"]
        if ids.numel() and int(ids.max()) >= self.model.get_input_embeddings().num_embeddings:
            raise InputError("token ids beyond the target vocabulary: use the tower's zett.target-tokenizer")
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
        out = self.model(**inputs, output_hidden_states=output_layers, return_dict=True)
        mask = batch["attention_mask"].bool()
        layers = tuple(out.hidden_states) if output_layers else None
        return Encoded({"token": Granularity(out.last_hidden_state, mask)}, layers=layers, layers_of="token")


# --------------------------------------------------------------------------- token counts
def evaluation_texts(data: Examples) -> dict[str, list[str]]:
    """The texts an evaluation encodes, by group: BEIR queries and corpus, else every text column."""
    if "corpus_texts" in data.extras and "query_texts" in data.extras:
        return {"queries": list(data.extras["query_texts"]), "corpus": list(data.extras["corpus_texts"])}
    return {name: list(col) for name, col in data.columns.items() if col and isinstance(col[0], str)}


class TokenCounts(Evaluator):
    """Tokens per text: the source model's own tokenizer vs the tower's target tokenizer (no specials, no truncation)."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``zett.transfer-token-counts``."""

        tower: str | None = Field(None, description="the tower whose tokenizer is counted (default: the first)")
        model: str = Field("all-MiniLM-L6-v2", description="the original tokenizer to compare with")

        _check_model = field_validator("model")(validate_model_dir)

    config: Config

    def evaluate(self, model: Any, data: Examples) -> dict[str, float]:
        """``tokens_per_text_original``, ``tokens_per_text_target``, their ratio, per group and overall."""
        tower = self.config.tower or model.tower_names[0]
        tok = model.tower(tower).tokenizer
        if not callable(getattr(tok, "count_tokens", None)):
            raise ConfigError(f"zett.transfer-token-counts: the tokenizer of tower {tower!r} cannot count tokens "
                              "(use zett.target-tokenizer)")
        original = load_backend(resolve_model_dir(self.config.model), "original")
        groups = evaluation_texts(data)
        if not groups:
            raise InputError("zett.transfer-token-counts: the data has no text column")
        metrics: dict[str, float] = {}
        total = [0, 0, 0]
        for name, texts in groups.items():
            a, b = sum(count_tokens(original, texts)), sum(tok.count_tokens(texts))
            metrics[f"{name}/tokens_per_text_original"] = a / len(texts)
            metrics[f"{name}/tokens_per_text_target"] = b / len(texts)
            total = [total[0] + len(texts), total[1] + a, total[2] + b]
        metrics["texts"] = float(total[0])
        metrics["tokens_per_text_original"] = total[1] / total[0]
        metrics["tokens_per_text_target"] = total[2] / total[0]
        metrics["token_ratio"] = total[2] / max(total[1], 1)
        metrics["empty_texts"] = float(sum(1 for texts in groups.values() for t in texts if not t.strip()))
        return metrics
