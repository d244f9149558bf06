"""Datasets of repmix-std: ``pairs`` (TSV/CSV/JSONL), ``sts`` (STS-B style) and ``beir``.

Every dataset returns :class:`repmix.core.components.Examples` whose ``columns`` are
keyed by **tower name**, so the trainer feeds ``columns[tower]`` to that tower.

Common behaviour (see docs/plugins/std-data-and-evaluation.md):

* relative paths are relative to the current working directory of the process
  (not to the YAML file);
* a malformed row raises :class:`~repmix.core.errors.InputError` naming the file
  and line (``on_error: raise``, the default) or is skipped, counted in
  ``Examples.skipped`` and described in ``Examples.notes`` (``on_error: skip``);
* a missing file or directory, an empty file or a header without the expected
  columns is one clear :class:`~repmix.core.errors.InputError`, whatever
  ``on_error`` says;
* ``holdout`` splits one file deterministically into the configured split and a
  held-out split; ``limit`` / ``fraction`` then take a deterministic subset:
  a permutation of the rows drawn with ``numpy.random.default_rng(subset_seed)``,
  its first N rows kept, in file order.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator
from repmix.sdk import ComponentConfig, Dataset, Examples, InputError, Runtime
from repmix.sdk.tables import (
    SUFFIX_FORMATS,
    BadRows,
    Row,
    read_lines,
    read_table,
    shown_path,
    suggestion,
)

__all__ = [
    "BeirConfig",
    "BeirDataset",
    "FileDatasetConfig",
    "PairsConfig",
    "PairsDataset",
    "StsConfig",
    "StsDataset",
    "read_items",
]

#: Suffixes tried, in this order, for ``<directory>/<split><suffix>``.
SPLIT_SUFFIXES: tuple[str, ...] = (".tsv", ".csv", ".jsonl")

Format = Literal["auto", "tsv", "csv", "jsonl"]


# --------------------------------------------------------------------------- helpers
def _number(value: Any) -> float | None:
    """``value`` as a finite float, or ``None`` when it is not one."""
    if isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def subset_indices(n: int, limit: int | None, fraction: float | None, seed: int) -> list[int]:
    """The rows kept by ``limit`` / ``fraction``: the first N of a seeded permutation, in file order.

    N = ``ceil(fraction * n)`` and/or ``limit`` (the smaller when both are set).
    Growing ``limit`` with the same seed only adds rows.
    """
    if limit is None and fraction is None:
        return list(range(n))
    keep = n
    if fraction is not None:
        keep = math.ceil(fraction * n)
    if limit is not None:
        keep = min(keep, limit)
    perm = np.random.default_rng(seed).permutation(n)
    return sorted(int(i) for i in perm[:keep])


def holdout_indices(n: int, holdout: float, seed: int) -> tuple[list[int], list[int]]:
    """(kept, held out) row indices: a seeded permutation's first ``k`` rows are held out.

    ``k = holdout`` for an integer, ``ceil(holdout * n)`` for a fraction in (0, 1).
    """
    k = holdout if isinstance(holdout, int) else math.ceil(holdout * n)
    if k >= n:
        raise InputError(f"holdout {holdout} leaves no rows out of {n} for the training split")
    perm = np.random.default_rng(seed).permutation(n)
    return sorted(int(i) for i in perm[k:]), sorted(int(i) for i in perm[:k])


# --------------------------------------------------------------------------- configs
class FileDatasetConfig(ComponentConfig):
    """Keys shared by ``pairs``, ``sts`` and ``beir``."""

    split: str = Field("train", description="the split load() reads when no other is asked for")
    limit: int | None = Field(
        None, ge=1, description="keep at most N rows: the first N of a permutation seeded with subset_seed"
    )
    fraction: float | None = Field(
        None, gt=0.0, le=1.0, description="keep ceil(fraction × rows) rows, chosen like limit (both: the smaller)"
    )
    subset_seed: int = Field(0, description="seed of the limit/fraction permutation")
    holdout: int | float | None = Field(
        None, description="hold out part of the split's file as holdout_split: a fraction in (0, 1) or a row count"
    )
    holdout_split: str = Field("test", description="name of the held-out split")
    holdout_seed: int = Field(0, description="seed of the holdout permutation")
    on_error: Literal["raise", "skip"] = Field(
        "raise", description="malformed row: raise naming file and line, or skip it (counted in Examples.skipped)"
    )

    @field_validator("holdout")
    @classmethod
    def _check_holdout(cls, v: float | None) -> int | float | None:
        if v is None:
            return v
        if isinstance(v, bool) or (isinstance(v, int) and v < 1) or (isinstance(v, float) and not 0.0 < v < 1.0):
            raise ValueError("holdout must be a fraction in (0, 1) or a number of rows >= 1")
        return v

    @model_validator(mode="after")
    def _check_splits(self) -> FileDatasetConfig:
        if self.holdout is not None and self.holdout_split == self.split:
            raise ValueError(f"holdout_split must differ from split (both are {self.split!r})")
        return self


class _PathConfig(FileDatasetConfig):
    path: str | None = Field(
        None, description="a file, or a directory of <split>.tsv|.csv|.jsonl (relative to the working directory)"
    )
    files: dict[str, str] | None = Field(None, description="split name -> file (instead of path)")
    format: Format = Field("auto", description="tsv, csv or jsonl; auto: from the file suffix")
    quoting: Literal["auto", "none", "standard"] = Field(
        "auto", description="none: quotes are data (csv.QUOTE_NONE); standard: CSV quoting; auto: none for TSV"
    )
    allow_empty: bool = Field(False, description="accept empty fields (by default an empty field is malformed)")

    @model_validator(mode="after")
    def _one_source(self) -> _PathConfig:
        if (self.path is None) == (self.files is None):
            raise ValueError(
                "give exactly one of 'path' (a file or a directory of <split>.tsv|.csv|.jsonl) "
                "or 'files' ({split: path})"
            )
        return self


class PairsConfig(_PathConfig):
    """``pairs``: aligned columns of a TSV/CSV/JSONL file, mapped onto towers."""

    fields: dict[str, str] = Field(min_length=1, description="tower name -> column holding its items")
    target: str | None = Field(None, description="column of a numeric target (Examples.targets)")
    id: str | None = Field(None, description="column of example ids (Examples.ids)")


class StsConfig(_PathConfig):
    """``sts``: ``score  sentence1  sentence2`` files (STS-B) with gold similarity scores."""

    fields: dict[str, str] = Field(
        default_factory=lambda: {"query": "sentence1", "document": "sentence2"},
        min_length=1,
        description="tower name -> sentence column",
    )
    target: str = Field("score", description="column of the gold score (Examples.targets)")
    id: str | None = Field(None, description="column of example ids (Examples.ids)")
    score_range: tuple[float, float] | None = Field(
        (0.0, 5.0), description="[low, high]: a score outside is a malformed row; null: no check"
    )
    min_score: float | None = Field(
        None, description="keep only pairs scoring at least this (e.g. 4: positives); the rest are counted"
    )

    @field_validator("score_range")
    @classmethod
    def _check_range(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and v[0] > v[1]:
            raise ValueError(f"score_range must be [low, high] with low <= high, got {list(v)}")
        return v


class BeirConfig(FileDatasetConfig):
    """``beir``: a BEIR directory (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)."""

    path: str = Field(description="the BEIR directory (relative to the working directory)")
    fields: dict[str, str] = Field(
        default_factory=lambda: {"query": "query", "document": "document"},
        description="{query: <tower>, document: <tower>}: the towers reading queries and documents",
    )
    corpus_file: str = Field("corpus.jsonl", description="corpus file inside path (_id, title, text)")
    queries_file: str = Field("queries.jsonl", description="queries file inside path (_id, text)")
    qrels_dir: str = Field("qrels", description="folder of <split>.tsv judgments (query-id, corpus-id, score)")
    include_title: bool = Field(True, description="document text = title + title_separator + text, as BEIR")
    title_separator: str = Field(" ", description="what joins title and text")

    @field_validator("fields")
    @classmethod
    def _check_fields(cls, v: dict[str, str]) -> dict[str, str]:
        if set(v) != {"query", "document"}:
            raise ValueError(
                "fields must map exactly 'query' and 'document' to tower names, e.g. {query: query, document: document}"
            )
        if v["query"] == v["document"]:
            raise ValueError(
                "the query and document towers must have different names (use shared_with to share weights)"
            )
        return v


# --------------------------------------------------------------------------- datasets
class _FileDataset(Dataset):
    """Split resolution, holdout and subsetting shared by the file datasets."""

    config: FileDatasetConfig

    def _serve(self, split: str) -> tuple[str, str | None]:
        """(split whose source is read, holdout part or None) for a requested split."""
        c = self.config
        if c.holdout is None:
            return split, None
        if split == c.split:
            return split, "kept"
        if split == c.holdout_split:
            return c.split, "held"
        allowed = [c.split, c.holdout_split]
        raise InputError(
            f"split {split!r} is not served: with holdout set this dataset serves {c.split!r} "
            f"and the held-out {c.holdout_split!r}{suggestion(split, allowed)}"
        )

    def _holdout(self, n: int, part: str | None, notes: list[str], what: str = "rows") -> list[int]:
        """Indices of the kept or held-out part (all rows without holdout)."""
        c = self.config
        if part is None:
            return list(range(n))
        assert c.holdout is not None
        kept, held = holdout_indices(n, c.holdout, c.holdout_seed)
        notes.append(
            f"holdout {c.holdout} (holdout_seed {c.holdout_seed}): {len(held)} of {n} {what} held out as "
            f"{c.holdout_split!r}, {len(kept)} kept as {c.split!r}"
        )
        return kept if part == "kept" else held

    def _subset(self, n: int, notes: list[str], what: str = "rows") -> list[int]:
        """Indices kept by ``limit`` / ``fraction``."""
        c = self.config
        chosen = subset_indices(n, c.limit, c.fraction, c.subset_seed)
        if len(chosen) < n:
            notes.append(
                f"subset (limit={c.limit}, fraction={c.fraction}, subset_seed={c.subset_seed}): "
                f"kept {len(chosen)} of {n} {what}"
            )
        return chosen


class PairsDataset(_FileDataset):
    """Aligned items for several towers from one file per split.

    ``fields`` maps tower names to column names (``{text: description, molecule: smiles}``);
    ``target`` names an optional numeric column (``Examples.targets``), ``id`` an
    optional id column (``Examples.ids``). ``path`` is a file, or a directory
    holding ``<split>.tsv|.csv|.jsonl``; ``files`` maps split names to files.
    """

    Config: ClassVar[type[ComponentConfig]] = PairsConfig
    config: PairsConfig

    def file_for(self, split: str) -> Path:
        """The file holding ``split`` (without holdout)."""
        c = self.config
        if c.files is not None:
            if split not in c.files:
                raise InputError(
                    f"no file for split {split!r}; 'files' names "
                    f"{', '.join(map(repr, c.files))}{suggestion(split, list(c.files))}"
                )
            return Path(c.files[split])
        assert c.path is not None
        p = Path(c.path)
        if not p.exists():
            raise InputError(
                f"data path {shown_path(p)} does not exist",
                hint="relative paths are relative to the current working directory",
            )
        if not p.is_dir():
            return p
        found = [p / f"{split}{s}" for s in SPLIT_SUFFIXES if (p / f"{split}{s}").is_file()]
        if len(found) > 1:
            raise InputError(
                f"split {split!r} is ambiguous in {shown_path(p)}: {', '.join(f.name for f in found)}",
                hint="keep one file per split, or name them with 'files: {split: path}'",
            )
        if not found:
            present = sorted(f.name for f in p.iterdir() if f.suffix.lower() in SUFFIX_FORMATS)
            stems = sorted({Path(f).stem for f in present})
            raise InputError(
                f"no file for split {split!r} in {shown_path(p)}: expected "
                f"{' or '.join(split + s for s in SPLIT_SUFFIXES)}{suggestion(split, stems)}",
                hint=f"data files there: {', '.join(present) or '(none)'}",
            )
        return found[0]

    def _columns(self) -> list[str]:
        c = self.config
        cols = list(dict.fromkeys(c.fields.values()))
        for extra in (c.target, c.id):
            if extra is not None and extra not in cols:
                cols.append(extra)
        return cols

    def _read(self, path: Path, problems: BadRows) -> list[Row]:
        c = self.config
        rows = read_table(
            path, self._columns(), fmt=c.format, quoting=c.quoting, allow_empty=c.allow_empty, bad_rows=problems
        ).rows
        if c.target is None:
            return rows
        good = []
        for row in rows:
            x = _number(row.values[c.target])
            bad = (
                f"target {c.target!r} is not a finite number: {row.values[c.target]!r}"
                if x is None
                else self._check_target(x)
            )
            if bad:
                problems.report(path, row.line, bad)
                continue
            row.values[c.target] = x
            good.append(row)
        if not good:
            raise problems.none_usable(path)
        return good

    def _check_target(self, x: float) -> str | None:
        return None

    def _filter(self, rows: list[Row], notes: list[str]) -> list[Row]:
        return rows

    def load(self, split: str | None = None) -> Examples:
        """Load ``split`` (default: the configured one)."""
        c = self.config
        split = split or c.split
        source, part = self._serve(split)
        path = self.file_for(source)
        problems = BadRows(c.on_error)
        rows = self._read(path, problems)
        notes = problems.notes()
        if part is None and c.path is not None and not Path(c.path).is_dir() and split != c.split:
            notes.append(f"path is a single file: split {split!r} reads the same rows as {c.split!r}")
        rows = [rows[i] for i in self._holdout(len(rows), part, notes)]
        before = len(rows)
        rows = self._filter(rows, notes)
        filtered = before - len(rows)
        rows = [rows[i] for i in self._subset(len(rows), notes)]
        columns = {tower: [r.values[col] for r in rows] for tower, col in c.fields.items()}
        targets = [float(r.values[c.target]) for r in rows] if c.target is not None else None
        ids = [str(r.values[c.id]) for r in rows] if c.id is not None else None
        # where each example came from, so the engine can name file and line of an item no tower accepts
        extras = {"source_lines": (str(path), [r.line for r in rows])}
        return Examples(columns, targets, ids, extras, skipped=problems.count + filtered, notes=notes)


class StsDataset(PairsDataset):
    """Sentence pairs with gold similarity scores (STS-B layout: ``score  sentence1  sentence2``).

    TSV files are read with quoting off, as STS-B's unquoted fields require.
    A score outside ``score_range`` is a malformed row; ``min_score`` keeps
    only pairs scoring at least that much (e.g. 4: positives for MNRL) and
    counts the others in ``Examples.skipped``.
    """

    Config: ClassVar[type[ComponentConfig]] = StsConfig
    citation: ClassVar[str] = (
        "Cer, Diab, Agirre, Lopez-Gazpio and Specia. SemEval-2017 Task 1: Semantic Textual Similarity "
        "Multilingual and Crosslingual Focused Evaluation. SemEval 2017."
    )
    config: StsConfig  # type: ignore[assignment]

    def _check_target(self, x: float) -> str | None:
        r = self.config.score_range
        if r is not None and not r[0] <= x <= r[1]:
            return f"score {x:g} is outside score_range [{r[0]:g}, {r[1]:g}]"
        return None

    def _filter(self, rows: list[Row], notes: list[str]) -> list[Row]:
        c = self.config
        if c.min_score is None:
            return rows
        kept = [r for r in rows if r.values[c.target] >= c.min_score]
        notes.append(
            f"min_score {c.min_score:g}: kept {len(kept)} of {len(rows)} pairs, "
            f"filtered {len(rows) - len(kept)} with a score below it"
        )
        return kept


class BeirDataset(_FileDataset):
    """A BEIR-format retrieval data set.

    Rows: one per (query, relevant document) pair of ``qrels/<split>.tsv``
    (score > 0), in qrels order: ``columns[fields.query]`` holds query texts,
    ``columns[fields.document]`` document texts (title + separator + text, as
    BEIR joins them for dense models). ``extras`` carries what an evaluator
    needs: ``corpus_ids``, ``corpus_texts``, ``query_ids``, ``query_texts``,
    ``qrels`` (``{query_id: {doc_id: score}}``), ``query_tower`` and
    ``document_tower``. ``limit`` / ``fraction`` / ``holdout`` select
    **queries** (with all their judgments); the corpus is always complete.
    """

    Config: ClassVar[type[ComponentConfig]] = BeirConfig
    citation: ClassVar[str] = (
        "Thakur, Reimers, Rücklé, Srivastava and Gurevych. BEIR: A Heterogeneous Benchmark for Zero-shot "
        "Evaluation of Information Retrieval Models. NeurIPS 2021 Datasets and Benchmarks."
    )
    config: BeirConfig

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self._corpus: tuple[list[str], list[str], int, list[str]] | None = None

    def _dir(self) -> Path:
        p = Path(self.config.path)
        if not p.exists():
            raise InputError(
                f"BEIR directory {shown_path(p)} does not exist",
                hint="relative paths are relative to the current working directory",
            )
        if not p.is_dir():
            raise InputError(
                f"BEIR path {shown_path(p)} is not a directory (expected corpus.jsonl, queries.jsonl, qrels/)"
            )
        return p

    def _join(self, title: Any, text: Any) -> str:
        title = "" if title is None else str(title)
        text = "" if text is None else str(text)
        if self.config.include_title and title.strip():
            return (title + self.config.title_separator + text).strip()
        return text.strip()

    def _load_corpus(self) -> tuple[list[str], list[str], int, list[str]]:
        if self._corpus is None:
            path = self._dir() / self.config.corpus_file
            problems = BadRows(self.config.on_error)
            rows = read_table(
                path, ["_id"], optional=("title", "text"), fmt="jsonl", bad_rows=problems, what="BEIR corpus"
            ).rows
            ids: list[str] = []
            texts: list[str] = []
            seen: set[str] = set()
            for r in rows:
                doc_id = str(r.values["_id"])
                if doc_id in seen:
                    problems.report(path, r.line, f"document id {doc_id!r} appears twice")
                    continue
                seen.add(doc_id)
                ids.append(doc_id)
                texts.append(self._join(r.values["title"], r.values["text"]))
            self._corpus = (ids, texts, problems.count, problems.notes())
        return self._corpus

    def load(self, split: str | None = None) -> Examples:
        """Load the queries and judgments of ``split`` (default: the configured one) with the corpus."""
        c = self.config
        split = split or c.split
        source, part = self._serve(split)
        root = self._dir()
        corpus_ids, corpus_texts, corpus_skipped, corpus_notes = self._load_corpus()
        corpus_index = {d: i for i, d in enumerate(corpus_ids)}

        problems = BadRows(c.on_error)
        qpath = root / c.queries_file
        qrows = read_table(qpath, ["_id", "text"], fmt="jsonl", bad_rows=problems, what="BEIR queries file").rows
        query_text: dict[str, str] = {}
        for r in qrows:
            qid = str(r.values["_id"])
            if qid in query_text:
                problems.report(qpath, r.line, f"query id {qid!r} appears twice")
                continue
            query_text[qid] = str(r.values["text"])

        qrels_root = root / c.qrels_dir
        rel_path = qrels_root / f"{source}.tsv"
        if not rel_path.is_file():
            present = sorted(f.stem for f in qrels_root.glob("*.tsv")) if qrels_root.is_dir() else []
            raise InputError(
                f"no qrels for split {source!r}: {shown_path(rel_path)} does not exist{suggestion(source, present)}",
                hint=f"qrels splits there: {', '.join(present) or '(none)'}",
            )
        rel_rows = read_table(
            rel_path, ["query-id", "corpus-id", "score"], fmt="tsv", bad_rows=problems, what="BEIR qrels file"
        ).rows
        qrels: dict[str, dict[str, float]] = {}
        pairs: list[tuple[str, str]] = []
        for r in rel_rows:
            qid, did = r.values["query-id"], r.values["corpus-id"]
            score = _number(r.values["score"])
            if score is None:
                problems.report(rel_path, r.line, f"score is not a finite number: {r.values['score']!r}")
            elif qid not in query_text:
                problems.report(rel_path, r.line, f"query id {qid!r} is not in {c.queries_file}")
            elif did not in corpus_index:
                problems.report(rel_path, r.line, f"corpus id {did!r} is not in {c.corpus_file}")
            elif did in qrels.get(qid, {}):
                problems.report(rel_path, r.line, f"judgment ({qid!r}, {did!r}) appears twice")
            else:
                qrels.setdefault(qid, {})[did] = score
                if score > 0:
                    pairs.append((qid, did))
        if not qrels:
            raise InputError(f"{rel_path}: no usable judgments")

        notes = corpus_notes + problems.notes()
        query_ids = list(qrels)
        query_ids = [query_ids[i] for i in self._holdout(len(query_ids), part, notes, what="queries")]
        chosen = [query_ids[i] for i in self._subset(len(query_ids), notes, what="queries")]
        keep = set(chosen)
        pairs = [p for p in pairs if p[0] in keep]
        qf, df = c.fields["query"], c.fields["document"]
        columns = {
            qf: [query_text[q] for q, _ in pairs],
            df: [corpus_texts[corpus_index[d]] for _, d in pairs],
        }
        extras = {
            "corpus_ids": corpus_ids,
            "corpus_texts": corpus_texts,
            "query_ids": chosen,
            "query_texts": [query_text[q] for q in chosen],
            "qrels": {q: qrels[q] for q in chosen},
            "query_tower": qf,
            "document_tower": df,
        }
        ids = [f"{q}\t{d}" for q, d in pairs]
        return Examples(columns, None, ids, extras, skipped=corpus_skipped + problems.count, notes=notes)


def read_items(path: str | Path, column: str | None = None, *, on_error: str = "raise") -> list[Any]:
    """Items from a file: ``*.txt`` one per non-blank line, else ``column`` of a TSV/CSV/JSONL file."""
    p = Path(path)
    if p.suffix.lower() == ".txt":
        return read_lines(p, on_error=on_error, what="items file")
    if column is None:
        raise InputError(f"{shown_path(p)} is a table: name the column that holds the items (column: ...)")
    return read_table(p, [column], on_error=on_error, what="items file").column(column)
