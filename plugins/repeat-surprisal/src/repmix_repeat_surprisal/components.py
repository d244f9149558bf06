"""``noun-lists`` (dataset: generated noun-list sequences) and ``repeat-surprisal`` (evaluator)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator
from repmix.sdk import (
    AssembledModel,
    ComponentConfig,
    ConfigError,
    Dataset,
    Evaluator,
    Examples,
    InputError,
    read_lines,
)

from repmix_repeat_surprisal.scoring import score_stimulus, summarize
from repmix_repeat_surprisal.stimuli import (
    INTERVENING,
    NOUNS,
    PREFACE,
    PROMPT,
    make_stimuli,
)

CITATION = (
    "Armeni, Honey & Linzen (2022). Characterizing Verbatim Short-Term Memory in Neural Language Models. "
    "CoNLL 2022. https://aclanthology.org/2022.conll-1.28/ (code: KristijanArmeni/verbatim-memory-in-NLMs)"
)


class StimuliDataset(Dataset):
    """Noun-list stimuli: every intervening text × list length × condition × list (seeded, generated).

    ``Examples.columns[tower]`` holds the texts; ``Examples.extras["stimuli"]`` the
    :class:`~repmix_repeat_surprisal.stimuli.Stimulus` objects (lists and noun byte spans). The split
    name is ignored: stimuli are generated, not read.
    """

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``noun-lists``."""

        list_lengths: list[int] = Field(default_factory=lambda: [3, 5, 7, 10], min_length=1,
                                        description="nouns per list (the paper: 3, 5, 7, 10)")
        conditions: list[Literal["repeat", "permute", "control"]] = Field(
            default_factory=lambda: ["repeat", "permute", "control"], min_length=1,
            description="second list: repeat (L1 again), permute (reordered), control (novel nouns)")
        n_lists: int = Field(20, ge=1, description="lists per list length (the same first lists in every condition)")
        intervening: list[str] = Field(default_factory=lambda: ["short"], min_length=1,
                                       description=f"intervening texts between the lists: {', '.join(INTERVENING)} "
                                       "or keys of intervening_texts")
        intervening_texts: dict[str, str] | None = Field(None, description="your own intervening texts by name (replace the built-in ones)")
        nouns_file: str | None = Field(None, description="a text file of nouns, one per line, instead of the built-in pool")
        preface: str = Field(PREFACE, min_length=1, description="text before the first list")
        prompt: str = Field(PROMPT, min_length=1, description="text right before the second list")
        seed: int = Field(0, description="seed of the noun lists")
        tower: str = Field("text", min_length=1, description="column name of the texts (the tower that reads them)")

        @field_validator("list_lengths")
        @classmethod
        def _lengths(cls, value: list[int]) -> list[int]:
            bad = [n for n in value if n < 1]
            if bad:
                raise ValueError(f"list lengths must be at least 1, got {bad}")
            return value

        @model_validator(mode="after")
        def _texts(self) -> StimuliDataset.Config:
            known = self.intervening_texts if self.intervening_texts is not None else INTERVENING
            bad = [k for k in self.intervening if k not in known]
            if bad:
                raise ValueError(f"unknown intervening text {bad[0]!r}; known: {', '.join(known)}")
            return self

    config: Config

    def stimuli(self) -> list[Any]:
        """Every stimulus, in a fixed order."""
        c = self.config
        nouns: tuple[str, ...] | list[str] = NOUNS
        if c.nouns_file is not None:
            lines = read_lines(c.nouns_file)
            nouns = [w.strip() for w in lines if w.strip()]
        try:
            return make_stimuli(list_lengths=c.list_lengths, conditions=c.conditions, n_lists=c.n_lists,
                                intervening=c.intervening, texts=c.intervening_texts, nouns=nouns, seed=c.seed,
                                preface=c.preface, prompt=c.prompt)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def load(self, split: str | None = None) -> Examples:
        items = self.stimuli()
        return Examples({self.config.tower: [s.text for s in items]}, ids=[s.id for s in items],
                        extras={"stimuli": items})


def causal_tower(model: AssembledModel, tower: str | None) -> tuple[Any, Any]:
    """``(tokenizer, encoder)`` of the named tower or of the first causal one."""
    for name in [tower] if tower is not None else list(model.tower_names):
        t = model.tower(name)
        if callable(getattr(t.encoder, "next_logprobs", None)) and getattr(t.encoder, "causal", True) is not False:
            return t.tokenizer, t.encoder
    raise InputError(
        f"{'tower ' + repr(tower) if tower else 'no tower'} has a causal LM (next_logprobs): repeat surprisal needs "
        "left-to-right probabilities",
        hint="a masked-LM encoder gives only pseudo-surprisal, which this evaluator does not compute",
    )


class RepeatSurprisalEvaluator(Evaluator):
    """Repeat surprisal (100 · mean surprisal of L2 / of L1; median over stimuli, bootstrap 95 % CI) per condition."""

    citation: ClassVar[str] = CITATION

    class Config(ComponentConfig):
        """Options of ``repeat-surprisal``."""

        tower: str | None = Field(None, description="causal tower to score with (default: the first causal one)")
        skip_first: bool = Field(True, description="average list positions 2..N, as the official figures (marker_pos_rel 1..9)")
        bootstrap: int = Field(1000, ge=10, description="bootstrap resamples of the median's 95 % interval")
        seed: int = Field(12345, description="bootstrap seed (seaborn's in the official figures)")
        limit: int | None = Field(None, ge=1, description="score at most this many stimuli")

    config: Config

    def evaluate(self, model: AssembledModel, data: Examples) -> dict[str, float]:
        items = data.extras.get("stimuli")
        if not items:
            raise InputError(
                "repeat-surprisal needs generated stimuli (Examples.extras['stimuli']): evaluate on a noun-lists dataset",
                hint="evaluate: {type: repeat-surprisal.repeat-surprisal, data: {type: repeat-surprisal.noun-lists}}",
            )
        if self.config.limit:
            items = items[: self.config.limit]
        tok, lm = causal_tower(model, self.config.tower)
        for attr in ("encode_plain",):
            if not callable(getattr(tok, attr, None)):
                raise InputError(f"the tower's tokenizer has no {attr}(): use an LM tokenizer (std.lm-tokenizer)")
        was_training = model.training
        model.eval()
        try:
            scored = [score_stimulus(lm, tok, s, skip_first=self.config.skip_first) for s in items]
        finally:
            model.train(was_training)
        return summarize(scored, n_boot=self.config.bootstrap, seed=self.config.seed)
