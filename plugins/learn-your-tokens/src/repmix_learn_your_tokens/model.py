"""``word-pooled-lm``: Learn Your Tokens' word-pooled byte LM as a repmix causal LM predicting the next byte.

Thawani et al. (2023) (official code ``avi-jit/eTok``, ``newmodel.py``, ``myGPT``):

1. the bytes of each word, after ``num_prefix`` CLS slots, go through a word encoder
   whose attention is block-diagonal (``_make_mask``): a slot sees only its own word;
2. the CLS outputs are the word vector (``_extract_cls``); a word positional embedding is
   added and a causal GPT backbone runs over the **words**: its sequence length is the
   number of words;
3. the decoder ("canvas", ``_get_canvas``) puts the backbone output into the CLS slot and
   runs self-attention blocks with the intra-word mask; its head predicts bytes.

As a repmix :class:`~repmix.sdk.CausalLM` the logits at byte ``t`` predict byte ``t + 1``
from bytes ``<= t`` only, so the canvas of word ``j`` holds the backbone output of word
``j - 1`` (which saw complete words ``< j``) in its CLS slot(s), then word ``j``'s bytes
as fresh byte embeddings, under a causal intra-word mask: byte slot ``k`` predicts the
word's byte ``k + 1`` or, at the word's last byte, the first byte of the next word (a
space under ``whitespace``: the paper's end-of-word prediction). Word boundaries come
from the tokenizer's prefix rule (``word_starts``), so a word enters the backbone only
once the next word has begun. Differences from eTok are listed in the plugin's docs.
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

CITATION = (
    "Thawani, Ghanekar, Zhu, Pujara (2023). Learn Your Tokens: Word-Pooled Tokenization for Language Modeling. "
    "Findings of EMNLP 2023. Code: https://github.com/avi-jit/eTok"
)


def word_tokenizer(runtime: Runtime, component: str) -> Any:
    """The tower's tokenizer, which must define words (``word_starts``) and a byte vocabulary."""
    tok = runtime.tokenizer
    if not callable(getattr(tok, "word_starts", None)) or not isinstance(getattr(tok, "max_word_bytes", None), int):
        raise ConfigError(
            f"{component} pools bytes into words, so its tower's tokenizer must define the words "
            f"(word_starts, max_word_bytes); {type(tok).__name__} does not",
            hint="use tokenizer: {type: learn-your-tokens.word-bytes, split: whitespace | punctuation | smiles}",
        )
    return tok


def check_context(tok: Any, max_positions: int) -> None:
    """The tokenizer may not emit rows longer than the model's positions."""
    max_len = getattr(tok, "max_length", None)
    if isinstance(max_len, int) and max_len > max_positions:
        raise ConfigError(f"the tokenizer's max_length {max_len} exceeds the model's max_positions {max_positions}",
                          hint=f"set the tokenizer's max_length to at most {max_positions} (or raise max_positions)")


class WordPooledLM(Encoder):
    """Word-pooled byte LM (Learn Your Tokens): intra-word CLS encoder -> causal word backbone -> byte canvas decoder.

    Granularities: ``token`` (decoder states per byte, causal), ``word`` (the pooled CLS word
    vectors), ``context`` (backbone states per word), ``logits`` (next-byte logits, lazy) and
    ``ids``. A :class:`repmix.sdk.CausalLM` over the tokenizer's byte ids.
    """

    citation: ClassVar[str] = CITATION
    causal = True

    class Config(ComponentConfig):
        """Options of ``word-pooled-lm``."""

        dim: int = Field(192, ge=8, description="width of the word encoder, backbone and decoder (eTok n_embd)")
        heads: int = Field(4, ge=1, description="attention heads (backbone n_head and intra-word n_e2e_head)")
        layers: int = Field(3, ge=1, description="causal backbone layers over words (eTok n_layer)")
        encoder_layers: int = Field(2, ge=1, description="intra-word encoder layers (eTok n_e2e_layer)")
        decoder_layers: int = Field(2, ge=1, description="intra-word decoder layers (eTok: n_e2e_layer as well)")
        num_prefix: int = Field(1, ge=1, le=8, description="CLS slots per word (paper: 1; unitrain.py default: 4)")
        max_positions: int = Field(512, ge=2, description="longest row in ids (also the most words per row)")
        dropout: float = Field(0.1, ge=0.0, lt=1.0, description="dropout of embeddings, attention and residuals")

        @model_validator(mode="after")
        def _heads(self) -> WordPooledLM.Config:
            if self.dim % self.heads:
                raise ValueError(f"heads {self.heads} must divide dim {self.dim}")
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
        tok = word_tokenizer(runtime, "learn-your-tokens.word-pooled-lm")
        check_context(tok, config.max_positions)
        self.tokenizer = tok
        self.context_length: int | None = config.max_positions
        self.vocab_size = int(tok.vocab_size)
        self.max_word_bytes = int(tok.max_word_bytes)
        d, n = config.dim, config.num_prefix
        slots = n + self.max_word_bytes
        self.byte_embedding = nn.Embedding(self.vocab_size, d)   # eTok in_emb (shared by encoder and canvas)
        self.cls = nn.Parameter(torch.zeros(n, d))                # the CLS slots' embeddings
        self.encoder_positions = nn.Embedding(slots, d)           # position inside the word's block
        self.encoder_blocks = nn.ModuleList(Block(d, config.heads, config.dropout) for _ in range(config.encoder_layers))
        self.encoder_norm = nn.LayerNorm(d)
        self.merge = nn.Linear(n * d, d) if n > 1 else None       # n CLS outputs -> one word vector
        self.word_positions = nn.Embedding(config.max_positions, d)  # eTok word_pe
        self.backbone = nn.ModuleList(Block(d, config.heads, config.dropout) for _ in range(config.layers))
        self.backbone_norm = nn.LayerNorm(d)                      # eTok ln_f
        self.start = nn.Parameter(torch.zeros(d))                 # the canvas context of a row's first word
        self.decoder_positions = nn.Embedding(slots, d)
        self.decoder_blocks = nn.ModuleList(Block(d, config.heads, config.dropout) for _ in range(config.decoder_layers))
        self.decoder_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, self.vocab_size, bias=False)     # eTok head
        self.drop = nn.Dropout(config.dropout)
        self.apply(init_gpt2)
        nn.init.normal_(self.cls, std=0.02)
        nn.init.normal_(self.start, std=0.02)

    # -- the three stages
    def layout(self, ids: Tensor, mask: Tensor) -> WordLayout:
        """Word boundaries from the tokenizer's prefix rule, as the flat layout."""
        if ids.shape[1] > self.config.max_positions:
            raise InputError(f"a row of {ids.shape[1]} ids is longer than max_positions {self.config.max_positions}")
        starts = self.tokenizer.word_starts(ids, mask)
        lay = word_layout(starts, mask, self.config.num_prefix)
        if lay.num_words and int(lay.offset.max()) >= self.max_word_bytes:
            raise InputError(f"a word is longer than the tokenizer's max_word_bytes {self.max_word_bytes}")
        return lay

    def encode_words(self, ids: Tensor, lay: WordLayout) -> Tensor:
        """Word vectors ``[B, W, D]``: the CLS outputs of the block-diagonal word encoder."""
        b = ids.shape[0]
        n, d = self.config.num_prefix, self.config.dim
        emb = self.byte_embedding(ids.clamp(0, self.vocab_size - 1))
        prefix = self.cls[None, None].expand(b, lay.num_words, n, d)
        x = self.drop(lay.gather(emb, prefix) + self.encoder_positions(lay.slot))
        allowed = lay.attention(causal=False)
        for blk in self.encoder_blocks:
            x = blk(x, allowed)
        x = self.encoder_norm(x)
        cls = x.gather(1, lay.prefix_at.reshape(b, -1, 1).expand(-1, -1, d)).reshape(b, lay.num_words, n * d)
        return cls if self.merge is None else self.merge(cls)

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
        """Byte states ``[B, T, D]``: the canvas of word j holds context j - 1 in its CLS slots, then its bytes."""
        b, w, d = context.shape
        n = self.config.num_prefix
        previous = torch.cat([self.start.expand(b, 1, d), context[:, :-1]], dim=1)
        prefix = previous[:, :, None, :].expand(b, w, n, d)
        emb = self.byte_embedding(ids.clamp(0, self.vocab_size - 1))
        y = self.drop(lay.gather(emb, prefix) + self.decoder_positions(lay.slot))
        allowed = lay.attention(causal=True)
        for blk in self.decoder_blocks:
            y = blk(y, allowed)
        y = self.decoder_norm(y)
        return y.gather(1, lay.byte_at.unsqueeze(-1).expand(-1, -1, d))

    def _run(self, ids: Tensor, mask: Tensor) -> tuple[WordLayout, Tensor, Tensor, list[Tensor], Tensor]:
        lay = self.layout(ids, mask)
        words = self.encode_words(ids, lay)
        context, states = self.run_backbone(words, lay.word_mask)
        token = self.decode_bytes(ids, lay, context)
        return lay, words, context, states, token

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
