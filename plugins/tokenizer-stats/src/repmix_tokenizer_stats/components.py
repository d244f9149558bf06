"""``markov-source`` (dataset) and ``tokenizer-stats`` (evaluator)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator
from repmix.sdk import AssembledModel, ComponentConfig, Dataset, Evaluator, Examples, InputError, Runtime

from repmix_tokenizer_stats import markov
from repmix_tokenizer_stats.stats import char_unigram_bits_per_char, corpus_stats, token_ids, unigram_bits_per_char

RAJARAMAN = (
    "Rajaraman, Jiao & Ramchandran (2024). Toward a Theory of Tokenization in LLMs (NeurIPS 2025: An Analysis of "
    "Tokenization: Transformers under Markov Data)."
)
NEEDLE = (
    "Roberts, Han & Albanie (2025). Needle Threading: Can LLMs Follow Threads through Near-Million-Scale "
    "Haystacks? ICLR 2025. arXiv:2411.05000."
)


class MarkovSourceDataset(Dataset):
    """Documents drawn from the binary switching Markov chain P(1|0) = p, P(0|1) = q.

    ``train`` and ``test`` use seeds ``seed`` and ``seed + 1``. ``Examples.extras`` carries the
    closed forms (``source/unigram_entropy`` = H(pi), ``source/entropy_rate`` = H_inf), which
    ``tokenizer-stats`` reports next to the measured values.
    """

    citation: ClassVar[str] = RAJARAMAN

    class Config(ComponentConfig):
        """Options of ``markov-source``."""

        p: float = Field(0.1, gt=0, le=1, description="P(1 | 0)")
        q: float = Field(0.1, gt=0, le=1, description="P(0 | 1)")
        documents: int = Field(50, ge=1, description="documents per split")
        length: int = Field(2000, ge=1, description="characters per document")
        alphabet: str = Field("ab", min_length=2, max_length=2, description="the two characters (0, 1)")
        seed: int = Field(0, description="seed of the train split (test: seed + 1)")
        split: str = Field("train", description="split load() reads when none is asked for")
        tower: str = Field("text", min_length=1, description="column name of the documents")

        @field_validator("alphabet")
        @classmethod
        def _two(cls, value: str) -> str:
            if value[0] == value[1]:
                raise ValueError(f"alphabet needs two different characters, got {value!r}")
            return value

    config: Config

    def load(self, split: str | None = None) -> Examples:
        c = self.config
        split = split or c.split
        if split not in ("train", "test"):
            raise InputError(f"markov-source has splits train and test, not {split!r}")
        text = markov.sample_chain(c.documents * c.length, c.p, c.q, c.seed + (split == "test"), c.alphabet)
        docs = [text[i * c.length : (i + 1) * c.length] for i in range(c.documents)]
        extras = {"source/unigram_entropy": markov.unigram_entropy(c.p, c.q),
                  "source/entropy_rate": markov.entropy_rate(c.p, c.q)}
        return Examples({c.tower: docs}, extras=extras)


class TokenizerStatsEvaluator(Evaluator):
    """Characters / bytes / words per token, fallbacks, context limit in characters and unigram bits per character.

    Measures the model's tower tokenizers (named by tower) and any extra ``tokenizers`` blocks
    on the evaluated documents. Metric names: ``<tokenizer>/<statistic>``; ``ratio_to_reference``
    is chars_per_token / the reference's chars_per_token. Needs no encoder forward.
    """

    citation: ClassVar[str] = f"{NEEDLE} {RAJARAMAN}"

    class Config(ComponentConfig):
        """Options of ``tokenizer-stats``."""

        towers: list[str] | None = Field(
            None, description="model towers whose tokenizers are measured (default: every tower; [] = none)"
        )
        tokenizers: dict[str, dict[str, Any]] = Field(
            default_factory=dict, description="more tokenizers to compare: name -> tokenizer block ({type: ..., ...})"
        )
        reference: str | None = Field(None, description="tokenizer the ratios refer to (default: the first measured)")
        column: str | None = Field(None, description="column of the documents (default: the data's first column)")
        max_tokens: int = Field(8192, ge=1, description="a context window in tokens, for context_chars")
        unigram: bool = Field(True, description="also the held-out token-unigram bits per character (Rajaraman et al.)")
        limit: int | None = Field(None, ge=1, description="measure at most this many documents")

    config: Config

    @classmethod
    def nested_components(cls, config: Config) -> dict[str, tuple[str, dict[str, Any]]]:
        return {name: ("tokenizer", block) for name, block in config.tokenizers.items()}

    def __init__(self, config: Config, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.extra = {name: runtime.nested[name] for name in config.tokenizers if name in runtime.nested}

    def tokenizers(self, model: AssembledModel | None) -> dict[str, Any]:
        """Name -> tokenizer: the model's towers' (by tower name), then the extra blocks."""
        out: dict[str, Any] = {}
        if model is not None:
            names = self.config.towers if self.config.towers is not None else model.tower_names
            for name in names:
                if name not in model.tower_names:
                    raise InputError(f"tokenizer-stats: the model has no tower {name!r}; towers: {', '.join(model.tower_names)}")
                out[name] = model.tower(name).tokenizer
        for name, tok in self.extra.items():
            if name in out:
                raise InputError(f"tokenizer-stats: {name!r} names both a tower and an extra tokenizer; rename the extra one")
            out[name] = tok
        return out

    def measure(self, tokenizers: dict[str, Any], texts: list[str]) -> dict[str, float]:
        """The metrics for ``tokenizers`` on ``texts`` (usable without a model)."""
        c = self.config
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise InputError(f"tokenizer-stats measures text documents; item {bad[0]} is a {type(texts[bad[0]]).__name__}")
        texts = [t for t in texts if t.strip()]
        if not texts:
            raise InputError("tokenizer-stats: no non-empty documents to measure")
        if not tokenizers:
            raise InputError("tokenizer-stats: no tokenizer to measure (towers: [] and no tokenizers:)")
        ref = c.reference or next(iter(tokenizers))
        if ref not in tokenizers:
            raise InputError(f"tokenizer-stats: reference {ref!r} is not measured; measured: {', '.join(tokenizers)}")
        metrics: dict[str, float] = {"documents": float(len(texts)), "chars": float(sum(len(t) for t in texts))}
        per: dict[str, dict[str, float]] = {}
        for name, tok in tokenizers.items():
            counts = token_ids(tok, texts)
            stats = corpus_stats(counts, texts, c.max_tokens)
            if c.unigram:
                vocab = getattr(tok, "vocab_size", None)
                stats["unigram_bits_per_char"] = unigram_bits_per_char(counts, texts, vocab if isinstance(vocab, int) else None)
            per[name] = stats
        for name, stats in per.items():
            stats["ratio_to_reference"] = stats["chars_per_token"] / per[ref]["chars_per_token"]
            metrics.update({f"{name}/{k}": v for k, v in stats.items()})
        if c.unigram:
            metrics["char_unigram_bits_per_char"] = char_unigram_bits_per_char(texts)
        return metrics

    def evaluate(self, model: AssembledModel, data: Examples) -> dict[str, float]:
        c = self.config
        if c.column is not None:
            if c.column not in data.columns:
                raise InputError(f"tokenizer-stats: no column {c.column!r}; columns: {', '.join(data.columns)}")
            texts = list(data.columns[c.column])
        else:
            texts = list(next(iter(data.columns.values()))) if data.columns else []
        if c.limit:
            texts = texts[: c.limit]
        metrics = self.measure(self.tokenizers(model), texts)
        metrics.update({k: float(v) for k, v in data.extras.items() if k.startswith("source/")})
        return metrics
