"""``byte2word-lm``: Byte2Word word embeddings under a causal word backbone, predicting the next byte.

Byte2Word (Lee, Guo, Qiu 2022) builds each word's input vector from its bytes with a
latent-query cross-attention embedder (:class:`~repmix_byte2word.embedder.ByteToWordEmbedder`)
instead of a sub-word embedding table, and runs the transformer over words. Here the
transformer is a causal backbone over words (as the grid's GPT-style decoder) and, so that
std's bits-per-byte evaluators score it unchanged, a byte decoder turns its word states back
into next-byte predictions: the canvas of word ``j`` holds the backbone state of word
``j - 1`` in one slot, then word ``j``'s bytes, under a causal intra-word mask (the same
canvas as learn-your-tokens' decoder). The logits at byte ``t`` read bytes ``<= t`` only;
word boundaries come from the tower tokenizer's prefix rule (``word_starts``), so a word is
embedded and enters the backbone only once the next word has begun.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from pydantic import Field, model_validator
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
from repmix.sdk.lm import LazyGranularity
from torch import Tensor, nn

from repmix.sdk.words import (
    Block,
    WordLayout,
    causal_word_attention,
    init_gpt2,
    rerun_next_logprobs,
    word_layout,
)
from repmix_byte2word.embedder import ByteToWordEmbedder, parameter_count

CITATION = (
    "Lee, Guo, Qiu (2022). Word-Level Representation From Bytes For Language Modeling. arXiv:2211.12677"
)


def word_tokenizer(runtime: Runtime, component: str) -> Any:
    """The tower's tokenizer, which must define words (``word_starts``) and a byte vocabulary."""
    tok = runtime.tokenizer
    if not callable(getattr(tok, "word_starts", None)) or not isinstance(getattr(tok, "max_word_bytes", None), int):
        raise ConfigError(
            f"{component} embeds words from their bytes, so its tower's tokenizer must define the words "
            f"(word_starts, max_word_bytes); {type(tok).__name__} does not",
            hint="use tokenizer: {type: learn-your-tokens.word-bytes, split: whitespace | punctuation | smiles}",
        )
    return tok


class Byte2WordLM(Encoder):
    """Byte2Word embedder -> causal backbone over words -> intra-word byte decoder; a CausalLM over bytes.

    Granularities: ``token`` (decoder states per byte, causal), ``word`` (the Byte2Word word
    embeddings, each from its own bytes only), ``context`` (backbone states per word),
    ``logits`` (next-byte logits, lazy) and ``ids``.
    """

    citation: ClassVar[str] = CITATION
    causal = True

    class Config(ComponentConfig):
        """Options of ``byte2word-lm``."""

        dim: int = Field(192, ge=8, description="width of the backbone over words and of the byte decoder")
        heads: int = Field(4, ge=1, description="attention heads of the backbone and the decoder")
        layers: int = Field(3, ge=1, description="causal backbone layers over words")
        decoder_layers: int = Field(1, ge=1, description="intra-word byte decoder layers")
        byte_dim: int = Field(48, ge=4, description="embedder width d_b (byte embedding, latents, cross-attention)")
        latents: int = Field(4, ge=1, description="latent queries K per word; their outputs are concatenated")
        embed_heads: int = Field(4, ge=1, description="heads of the embedder's cross-attention")
        embed_mlp_ratio: int = Field(4, ge=1, description="hidden width of the embedder's MLP, in multiples of d_b")
        max_positions: int = Field(512, ge=2, description="longest row in ids (also the most words per row)")
        dropout: float = Field(0.1, ge=0.0, lt=1.0, description="dropout of the backbone and decoder")

        @model_validator(mode="after")
        def _heads(self) -> Byte2WordLM.Config:
            if self.dim % self.heads:
                raise ValueError(f"heads {self.heads} must divide dim {self.dim}")
            if self.byte_dim % self.embed_heads:
                raise ValueError(f"embed_heads {self.embed_heads} must divide byte_dim {self.byte_dim}")
            return self

    config: Config

    @classmethod
    def signature(cls, config: Config) -> EncoderSignature:
        d = config.dim
        specs = {
            "token": GranularitySpec("sequence", d),
            "word": GranularitySpec("sequence", d),
            "context": GranularitySpec("sequence", d),
            "logits": GranularitySpec("sequence", None),
            "ids": GranularitySpec("sequence", None, values="ids"),
        }
        return EncoderSignature(specs, num_layers=config.layers + 1, layers_of="context", causal=True)

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        tok = word_tokenizer(runtime, "byte2word.byte2word-lm")
        max_len = getattr(tok, "max_length", None)
        if isinstance(max_len, int) and max_len > config.max_positions:
            raise ConfigError(
                f"the tokenizer's max_length {max_len} exceeds the model's max_positions {config.max_positions}",
                hint=f"set the tokenizer's max_length to at most {config.max_positions} (or raise max_positions)")
        self.tokenizer = tok
        self.context_length: int | None = config.max_positions
        self.vocab_size = int(tok.vocab_size)
        self.max_word_bytes = int(tok.max_word_bytes)
        d = config.dim
        self.embedder = ByteToWordEmbedder(self.vocab_size, self.max_word_bytes, config.byte_dim, config.latents,
                                           config.embed_heads, config.embed_mlp_ratio, d)
        self.word_positions = nn.Embedding(config.max_positions, d)
        self.backbone = nn.ModuleList(Block(d, config.heads, config.dropout) for _ in range(config.layers))
        self.backbone_norm = nn.LayerNorm(d)
        self.start = nn.Parameter(torch.zeros(d))                 # the canvas context of a row's first word
        self.byte_up = nn.Linear(config.byte_dim, d)              # decoder byte inputs: the embedder's byte table, widened
        self.decoder_positions = nn.Embedding(1 + self.max_word_bytes, d)
        self.decoder_blocks = nn.ModuleList(Block(d, config.heads, config.dropout) for _ in range(config.decoder_layers))
        self.decoder_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, self.vocab_size, bias=False)
        self.drop = nn.Dropout(config.dropout)
        self.apply(init_gpt2)
        nn.init.normal_(self.embedder.latents, std=0.02)
        nn.init.normal_(self.start, std=0.02)

    # -- parameter accounting (the paper's "10 % of the embedding size")
    def input_parameters(self) -> int:
        """Parameters that turn bytes into word vectors (the embedder): what replaces a sub-word table."""
        return parameter_count(self.embedder)

    def table_ratio(self, vocab_size: int) -> float:
        """Input parameters as a fraction of a ``vocab_size x dim`` sub-word embedding table."""
        return self.input_parameters() / (vocab_size * self.config.dim)

    # -- the stages
    def layout(self, ids: Tensor, mask: Tensor) -> WordLayout:
        """Word boundaries from the tokenizer's prefix rule, as the flat canvas layout (one context slot per word)."""
        if ids.shape[1] > self.config.max_positions:
            raise InputError(f"a row of {ids.shape[1]} ids is longer than max_positions {self.config.max_positions}")
        lay = word_layout(self.tokenizer.word_starts(ids, mask), mask, 1)
        if int(lay.offset.max()) >= self.max_word_bytes:
            raise InputError(f"a word is longer than the tokenizer's max_word_bytes {self.max_word_bytes}")
        return lay

    def embed_words(self, ids: Tensor, mask: Tensor, lay: WordLayout) -> Tensor:
        """Word vectors ``[B, W, D]``: each real word embedded from its own bytes, alone."""
        b, w = lay.word_mask.shape
        length = self.max_word_bytes
        word_bytes = torch.zeros(b, w + 1, length, dtype=torch.long, device=ids.device)
        present = torch.zeros(b, w + 1, length, dtype=torch.bool, device=ids.device)
        rows = torch.arange(b, device=ids.device)[:, None].expand_as(ids)
        word = torch.where(mask, lay.word, torch.full_like(lay.word, w))  # padding -> the spare word w
        word_bytes[rows, word, lay.offset] = ids.clamp(0, self.vocab_size - 1)
        present[rows, word, lay.offset] = mask
        real = lay.word_mask
        vectors = self.embedder(word_bytes[:, :w][real], present[:, :w][real])
        out = vectors.new_zeros(b, w, vectors.shape[-1])
        return out.masked_scatter(real[..., None], vectors)

    def run_backbone(self, words: Tensor, word_mask: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Causal backbone over the words (sequence length = number of words) and its per-layer states."""
        w = words.shape[1]
        x = self.drop(words + self.word_positions.weight[:w])
        allowed = causal_word_attention(word_mask)
        states = [x]
        for blk in self.backbone:
            x = blk(x, allowed)
            states.append(x)
        return self.backbone_norm(x), states

    def decode_bytes(self, ids: Tensor, lay: WordLayout, context: Tensor) -> Tensor:
        """Byte states ``[B, T, D]``: word j's canvas holds context j - 1, then its bytes (causal inside)."""
        b, _, d = context.shape
        previous = torch.cat([self.start.expand(b, 1, d), context[:, :-1]], dim=1)
        emb = self.byte_up(self.embedder.byte_embedding(ids.clamp(0, self.vocab_size - 1)))
        y = self.drop(lay.gather(emb, previous[:, :, None, :]) + self.decoder_positions(lay.slot))
        allowed = lay.attention(causal=True)
        for blk in self.decoder_blocks:
            y = blk(y, allowed)
        y = self.decoder_norm(y)
        return y.gather(1, lay.byte_at.unsqueeze(-1).expand(-1, -1, d))

    def _run(self, ids: Tensor, mask: Tensor) -> tuple[WordLayout, Tensor, Tensor, list[Tensor], Tensor]:
        lay = self.layout(ids, mask)
        words = self.embed_words(ids, mask, lay)
        context, states = self.run_backbone(words, lay.word_mask)
        return lay, words, context, states, self.decode_bytes(ids, lay, context)

    def forward(self, batch: Mapping[str, Tensor], output_layers: bool = False) -> Encoded:
        ids = batch["input_ids"]
        mask = batch["attention_mask"].bool()
        lay, words, context, states, token = self._run(ids, mask)
        grans = {
            "token": Granularity(token, mask),
            "word": Granularity(words, lay.word_mask),
            "context": Granularity(context, lay.word_mask),
            "logits": LazyGranularity(lambda: self.head(token), mask),
            "ids": Granularity(ids, mask),
        }
        return Encoded(grans, layers=tuple(states) if output_layers else None, layers_of="context")

    # -- CausalLM
    @torch.no_grad()
    def next_logprobs(self, ids: Tensor, cache: Any = None, attention_mask: Tensor | None = None) -> tuple[Tensor, Any]:
        """Log-probs [B, T, V] of the byte after each of ``ids`` (following ``cache``) and the new cache.

        The cache holds the ids so far; each call runs the prefix again (a word's vector changes
        until the word is complete, so there is no key/value cache). A call gives at most
        ``context_length`` new ids per row; when cache + new ids are longer, the last
        ``context_length`` ids are read (a sliding window, for long generations).
        """
        return rerun_next_logprobs(ids, cache, attention_mask, self.context_length,
                                   lambda x, m: self.head(self._run(x, m)[4]))
