"""``dse.distill-pairs``: sentence pairs with the task label y and the teacher's score z.

DSE trains the student on the teacher's outputs for the training pairs. In repmix a loss sees
embeddings, not raw text, so the teacher is run (or looked up) when the data is loaded and its
score travels with each pair as a target: ``Examples.targets[i] = [y_i, z_i]`` (or ``[z_i]``
alone when ``target`` is null). The teacher is one of

* ``teacher: {scores: FILE}``: a TSV with a header holding the two text columns (named as in
  ``fields``) and either ``score`` (z) or ``logit0`` and ``logit1`` (a binary teacher's two
  logits, converted to ``z = logit1 − logit0`` as DSE does). Every training pair must be
  there; otherwise the error says how many are missing and shows one;
* ``teacher: {model: PATH}``: a repmix model that scores each pair with one of its alignments
  (the diagonal of the aligner's scores): a saved-model or run directory (e.g. a fine-tuned
  cross-tower model), or a YAML config built with its pretrained weights and no training.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from repmix.sdk import ComponentConfig, Dataset, Examples, InputError, Runtime, load
from repmix.sdk.tables import read_table

from repmix_dse import CITATION
from repmix_dse.loss import binary_teacher_logit


class TeacherConfig(BaseModel):
    """Where the teacher's scores come from: exactly one of ``scores`` and ``model``."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    scores: str | None = Field(None, description="TSV of teacher scores per pair (see the dataset's docs)")
    model: str | None = Field(
        None, description="a repmix saved-model / run directory, or a YAML config (pretrained, untrained)"
    )
    alignment: str | None = Field(None, description="the teacher model's alignment that scores pairs (default: its first)")
    towers: tuple[str, str] | None = Field(
        None, description="the teacher model's two towers for the pair's two texts (default: the fields' towers)"
    )
    batch_size: int = Field(64, ge=1, description="pairs the teacher model scores at once")
    scale: float = Field(1.0, description="multiply every teacher score by this (z = scale · score)")

    @model_validator(mode="after")
    def _one_source(self) -> TeacherConfig:
        if (self.scores is None) == (self.model is None):
            raise ValueError("teacher needs exactly one of 'scores' (a TSV file) and 'model' (a repmix model)")
        return self


class DistillPairsConfig(ComponentConfig):
    """Options of ``dse.distill-pairs``."""

    path: str = Field(description="a TSV file, or a directory holding <split>.tsv (relative to the working directory)")
    split: str = Field("train", description="the split load() reads when no other is asked for")
    fields: dict[str, str] = Field(
        default_factory=lambda: {"query": "sentence1", "document": "sentence2"},
        description="tower name -> column of its text; exactly two towers, in pair order",
    )
    target: str | None = Field("score", description="column of the task label y (null: teacher scores only)")
    target_scale: float = Field(1.0, description="multiply the task label by this (e.g. 0.2: STS 0-5 -> 0-1)")
    limit: int | None = Field(
        None, ge=1, description="keep N pairs: the first N of a seeded permutation, in file order (as std's datasets)"
    )
    subset_seed: int = Field(0, description="seed of the limit permutation")
    teacher: TeacherConfig = Field(description="the teacher: {scores: FILE} or {model: PATH}")

    @model_validator(mode="after")
    def _two_fields(self) -> DistillPairsConfig:
        if len(self.fields) != 2:
            raise ValueError("fields must map exactly two towers to text columns, e.g. {query: sentence1, document: sentence2}")
        return self


#: Columns of a teacher scores file that hold the score: ``score``, or a binary teacher's two logits.
VALUE_COLUMNS: tuple[str, ...] = ("score", "logit0", "logit1")


def _float(path: Path, line: int, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise InputError(f"{str(path)!r} line {line}: {value!r} is not a number") from None


def teacher_scores_from_file(path: Path, columns: tuple[str, str], pairs: Sequence[tuple[str, str]]) -> list[float]:
    """Look every pair up in a teacher scores TSV; a clear error names how many are missing."""
    scores = read_table(path, list(columns), optional=VALUE_COLUMNS, fmt="tsv", allow_empty=True,
                        what="teacher scores file")
    two_logits = "score" not in scores.header and {"logit0", "logit1"} <= set(scores.header)
    if "score" not in scores.header and not two_logits:
        raise InputError(
            f"teacher scores file {str(path)!r} has neither a 'score' column nor 'logit0' and 'logit1'",
            hint=f"its header: {', '.join(scores.header)}",
        )
    value_cols = ["logit0", "logit1"] if two_logits else ["score"]
    table: dict[tuple[str, str], float] = {}
    for row in scores:
        values = torch.tensor([_float(path, row.line, row.values[col]) for col in value_cols])
        key = (row.values[columns[0]], row.values[columns[1]])
        table[key] = float(binary_teacher_logit(values)) if two_logits else float(values[0])
    missing = [p for p in pairs if p not in table]
    if missing:
        raise InputError(
            f"teacher scores file {str(path)!r} lacks scores for {len(missing)} of {len(pairs)} training pairs; "
            f"e.g. {columns[0]}={missing[0][0]!r}, {columns[1]}={missing[0][1]!r}",
            hint="score every training pair with the teacher (keyed by both texts, exactly as in the data)",
        )
    return [table[p] for p in pairs]


def load_teacher_model(spec: str) -> Any:
    """A repmix model: a YAML config (built with pretrained weights) or a saved-model / run directory."""
    return load(spec)


@torch.inference_mode()
def teacher_scores_from_model(
    model: Any, towers: tuple[str, str], alignment: str | None, pairs: Sequence[tuple[str, str]], batch_size: int
) -> list[float]:
    """Score each pair (a_i, b_i) with the model's alignment: the diagonal of its aligner's scores."""
    names = list(model.aligners)
    if not names:
        raise InputError("the teacher model has no alignment to score pairs with")
    name = alignment or names[0]
    if name not in model.aligners:
        raise InputError(f"the teacher model has no alignment {name!r}; it has: {', '.join(names)}")
    (_, ga), (_, gb) = model.alignment_between[name]
    model.eval()
    out: list[float] = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        a = model.encode_batch(towers[0], [p[0] for p in chunk])[ga]
        b = model.encode_batch(towers[1], [p[1] for p in chunk])[gb]
        out.extend(float(s) for s in model.aligners[name](a, b).scores.diagonal().float().cpu())
    return out


class DistillPairsDataset(Dataset):
    """Sentence pairs with the task label and the teacher's score per pair (see the module docstring)."""

    citation: ClassVar[str] = CITATION
    Config: ClassVar[type[ComponentConfig]] = DistillPairsConfig
    config: DistillPairsConfig

    def __init__(self, config: DistillPairsConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)

    def file_for(self, split: str) -> Path:
        """The TSV of ``split``: the path itself when it is a file, else ``<path>/<split>.tsv``."""
        path = Path(self.config.path)
        return path if path.is_file() else path / f"{split}.tsv"

    def load(self, split: str | None = None) -> Examples:
        """Read the pairs, then attach the teacher's score to each."""
        c = self.config
        path = self.file_for(split or c.split)
        towers = list(c.fields)
        text_cols = [c.fields[t] for t in towers]
        rows = read_table(path, text_cols + ([c.target] if c.target else []), fmt="tsv", allow_empty=True).rows
        if c.limit is not None and c.limit < len(rows):
            keep = np.random.default_rng(c.subset_seed).permutation(len(rows))[: c.limit]
            rows = [rows[int(i)] for i in sorted(keep)]
        pairs: list[tuple[str, str]] = []
        labels: list[float] = []
        for row in rows:
            pairs.append((row.values[text_cols[0]], row.values[text_cols[1]]))
            if c.target:
                labels.append(c.target_scale * _float(path, row.line, row.values[c.target]))
        if not pairs:
            raise InputError(f"{str(path)!r} holds no pairs")
        t = c.teacher
        if t.scores is not None:
            raw = teacher_scores_from_file(Path(t.scores), (text_cols[0], text_cols[1]), pairs)
        else:
            model = load_teacher_model(str(t.model))
            raw = teacher_scores_from_model(model, t.towers or (towers[0], towers[1]), t.alignment, pairs, t.batch_size)
        z = [t.scale * s for s in raw]
        targets: list[Any] = [[y, zi] for y, zi in zip(labels, z, strict=True)] if c.target else z
        columns = {towers[0]: [p[0] for p in pairs], towers[1]: [p[1] for p in pairs]}
        return Examples(columns, targets, notes=[f"teacher scores for {len(pairs)} pairs"])


def write_teacher_scores(
    path: Path, columns: tuple[str, str], pairs: Sequence[tuple[str, str]], scores: Sequence[float]
) -> None:
    """Write a teacher scores TSV that ``teacher: {scores: ...}`` reads back (no quoting, as STS-B).

    Texts are written verbatim (quotes stay literal); a text holding a tab or a line break cannot be
    stored in this format and raises :class:`InputError`.
    """
    lines = ["\t".join((columns[0], columns[1], "score"))]
    for (a, b), score in zip(pairs, scores, strict=True):
        for text in (a, b):
            if any(c in text for c in "\t\r\n"):
                raise InputError(f"cannot write {text[:60]!r} to a TSV scores file: it holds a tab or a line break")
        lines.append("\t".join((a, b, repr(float(score)))))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
