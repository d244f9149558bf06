"""Molecule search: a faiss index of a library's molecule vectors, text queries, ORMA re-ranking.

From Python::

    import repmix.sdk as rx
    from repmix_orma.search import build_index, MoleculeIndex

    model = rx.load("runs/orma-chebi20")                        # run, saved model or config
    build_index(model, "library.tsv", "lib/", source="runs/orma-chebi20")
    index = MoleculeIndex.open("lib/")                          # loads the model it was built with
    for hit in index.search("a steroid sulfate", k=10, rerank=50):
        print(hit.rank, hit.id, hit.smiles, hit.score)

An index folder holds ``index.faiss`` (faiss's own binary format, no
pickle), ``molecules.tsv`` (row, id, line, SMILES) and ``index.json`` (the
model's source and the fingerprint of its weights, the alignment, towers and
granularities, the metric, what was skipped, timings). Vectors come from the
molecule side of a pooled alignment (``cosine``: L2-normalised, inner
product; ``dot``: raw inner product), so faiss's scores equal the model's own
similarity. ``kind: flat`` is exact; ``ivf`` and ``hnsw`` are approximate
options for large libraries.

Re-ranking (``rerank=N``) re-scores the top ``N`` with the model's levels
between the two towers (ORMA's three-level score: the alignments its losses
are on, with the loss weights), combined as ``score`` (``weighted``: ORMA;
``zscore``, ``zscore-fallback``: see :mod:`repmix_orma.scoring`).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from repmix.sdk import ArtifactError, InputError, Model

__all__ = [
    "Hit",
    "MoleculeIndex",
    "build_index",
    "model_fingerprint",
    "pick_alignment",
    "rerank_levels",
]

INDEX_FORMAT = "repmix-orma-index/1"
IndexKind = Literal["flat", "ivf", "hnsw"]


def model_fingerprint(model: Model) -> str:
    """SHA-256 over the model's weights (names, dtypes, shapes, bytes): which model built an index."""
    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _alignment_type(model: Model, name: str) -> str:
    block = model.config.get("model", {}).get("alignments", {}).get(name, {})
    return str(block.get("type", ""))


def pick_alignment(model: Model, tower: str, alignment: str | None = None) -> tuple[str, str, str, str, bool]:
    """(alignment, query tower, query granularity, indexed granularity, normalise) for a pooled cosine/dot alignment.

    ``alignment`` defaults to the first declared alignment between two pooled
    granularities with ``tower`` on one side.
    """
    names = [alignment] if alignment else list(model.alignment_between)
    for name in names:
        if name not in model.alignment_between:
            raise InputError(
                f"model has no alignment {name!r}; alignments: {', '.join(model.alignment_between)}"
            )
        (ta, ga), (tb, gb) = model.alignment_between[name]
        if tower not in (ta, tb):
            continue
        if model.granularities(ta)[ga] != "pooled" or model.granularities(tb)[gb] != "pooled":
            if alignment:
                raise InputError(f"alignment {name!r} is not between pooled vectors; an index needs one that is")
            continue
        kind = _alignment_type(model, name).rsplit(".", 1)[-1]
        if kind not in ("cosine", "dot"):
            if alignment:
                raise InputError(f"alignment {name!r} ({kind}) is not a cosine or dot product; faiss cannot index it")
            continue
        if tb == tower:
            return name, ta, ga, gb, kind == "cosine"
        return name, tb, gb, ga, kind == "cosine"
    raise InputError(
        f"the model has no cosine or dot alignment between pooled vectors with tower {tower!r} on one side",
        hint="index a model whose molecule tower has a pooled granularity aligned with the text (e.g. 'global')",
    )


def rerank_levels(model: Model, query_tower: str, tower: str) -> dict[str, float]:
    """The alignments between the two towers that losses are on, with their loss weights (ORMA's score)."""
    weights: dict[str, float] = {}
    for on, w in zip(model.loss_on, model.loss_weights):
        for name in on:
            (ta, _), (tb, _) = model.alignment_between[name]
            if {ta, tb} == {query_tower, tower} and ta == query_tower:
                weights[name] = weights.get(name, 0.0) + float(w)
    return {n: w for n, w in weights.items() if w > 0}


@dataclass
class Hit:
    """One search result."""

    rank: int
    row: int
    id: str
    smiles: str
    score: float
    first_stage: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "id": self.id,
            "smiles": self.smiles,
            "score": self.score,
            "first_stage_score": self.first_stage,
            "row": self.row,
        }


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise InputError(
            "molecule search needs faiss", hint="pip install 'repmix-orma[search]' (faiss-cpu)"
        ) from None
    return faiss


def _make_index(vectors: np.ndarray, kind: IndexKind, nlist: int | None, seed: int) -> Any:
    faiss = _faiss()
    dim = vectors.shape[1]
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
    else:
        lists = nlist or max(1, int(4 * np.sqrt(len(vectors))))
        lists = min(lists, len(vectors))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, lists, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.train(vectors)
        index.nprobe = min(lists, 16)
    index.add(vectors)
    return index


def build_index(
    model: Model,
    library: str | Path,
    out: str | Path,
    *,
    source: str | None = None,
    tower: str = "molecule",
    alignment: str | None = None,
    kind: IndexKind = "flat",
    nlist: int | None = None,
    batch_size: int = 64,
    smiles_column: str = "smiles",
    progress: bool = False,
) -> dict[str, Any]:
    """Encode a library with ``tower`` and write an index folder; returns its ``index.json`` content."""
    from repmix_orma.library import read_library

    faiss = _faiss()
    t0 = time.perf_counter()
    lib = read_library(library, smiles_column=smiles_column)
    tokenizer = model.tower(tower).tokenizer
    keep: list[int] = []
    for i, smi in enumerate(lib.smiles):  # the tower's own check (e.g. a fingerprint tokenizer's)
        problem = tokenizer.check_item(smi)
        if problem:
            lib.skipped += 1
            lib.bad_lines.append(lib.lines[i])
        else:
            keep.append(i)
    if not keep:
        raise InputError(f"molecule library {str(library)!r} holds no molecule the {tower!r} tower can read")
    smiles = [lib.smiles[i] for i in keep]
    ids = [lib.ids[i] for i in keep]
    lines = [lib.lines[i] for i in keep]
    name, q_tower, q_gran, gran, normalize = pick_alignment(model, tower, alignment)
    t_read = time.perf_counter()
    vectors = model.encode(smiles, tower=tower, granularity=gran, batch_size=batch_size, progress=progress)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if normalize:
        faiss.normalize_L2(vectors)
    t_enc = time.perf_counter()
    index = _make_index(vectors, kind, nlist, seed=0)
    t_idx = time.perf_counter()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    faiss.write_index(index, str(folder / "index.faiss"))
    with open(folder / "molecules.tsv", "w", encoding="utf-8") as handle:
        handle.write("row\tid\tline\tsmiles\n")
        for r, (ident, line, smi) in enumerate(zip(ids, lines, smiles)):
            handle.write(f"{r}\t{ident}\t{line}\t{smi}\n")
    info = {
        "format": INDEX_FORMAT,
        "model": str(Path(source).resolve()) if source else None,
        "model_fingerprint": model_fingerprint(model),
        "alignment": name,
        "tower": tower,
        "granularity": gran,
        "query_tower": q_tower,
        "query_granularity": q_gran,
        "metric": "cosine" if normalize else "dot",
        "kind": kind,
        "dim": int(vectors.shape[1]),
        "count": len(smiles),
        "library": str(library),
        "skipped": lib.skipped,
        "skipped_lines": sorted(lib.bad_lines)[:20],
        "seconds": {
            "read": round(t_read - t0, 3),
            "encode": round(t_enc - t_read, 3),
            "index": round(t_idx - t_enc, 3),
            "total": round(time.perf_counter() - t0, 3),
        },
    }
    (folder / "index.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


class MoleculeIndex:
    """An index folder opened for search, with the model that built it."""

    def __init__(self, folder: Path, info: dict[str, Any], index: Any, rows: list[tuple[str, str]], model: Model):
        self.folder = folder
        self.info = info
        self.index = index
        self.rows = rows
        self.model = model

    @classmethod
    def open(cls, folder: str | Path, model: Model | str | None = None) -> MoleculeIndex:
        """Open ``folder``; ``model`` (a model or its source) defaults to the one recorded at build time.

        An index built by another model (weights differ) is refused.
        """
        faiss = _faiss()
        f = Path(folder)
        meta = f / "index.json"
        if not meta.is_file():
            raise ArtifactError(f"{str(f)!r} is not a molecule index (no index.json)", hint="build one: repmix index")
        info = json.loads(meta.read_text(encoding="utf-8"))
        if info.get("format") != INDEX_FORMAT:
            raise ArtifactError(f"{str(f)!r}: unknown index format {info.get('format')!r}")
        if model is None or isinstance(model, str):
            source = model or info.get("model")
            if not source:
                raise InputError(f"{str(f)!r} does not record its model; pass the model")
            from repmix.sdk import load

            model = load(source)
        if model_fingerprint(model) != info["model_fingerprint"]:
            raise ArtifactError(
                f"the index {str(f)!r} was built by another model (its weights differ from this one's)",
                hint=f"search it with the model it was built with ({info.get('model')}), or rebuild it: repmix index",
            )
        index = faiss.read_index(str(f / "index.faiss"))
        rows = []
        with open(f / "molecules.tsv", encoding="utf-8") as handle:
            next(handle)
            for line in handle:
                _row, ident, _line, smi = line.rstrip("\n").split("\t", 3)
                rows.append((ident, smi))
        if len(rows) != index.ntotal:
            raise ArtifactError(f"{str(f)!r}: molecules.tsv and index.faiss disagree ({len(rows)} vs {index.ntotal})")
        return cls(f, info, index, rows, model)

    def encode_queries(self, queries: list[str]) -> np.ndarray:
        """Query vectors as the index expects them."""
        faiss = _faiss()
        for q in queries:
            if not isinstance(q, str) or not q.strip():
                raise InputError("empty query: give a description to search for")
        vecs = self.model.encode(
            queries, tower=self.info["query_tower"], granularity=self.info["query_granularity"]
        ).astype(np.float32)
        vecs = np.ascontiguousarray(vecs)
        if self.info["metric"] == "cosine":
            faiss.normalize_L2(vecs)
        return vecs

    def search(
        self, query: str, k: int = 10, rerank: int | None = None, score: str = "weighted"
    ) -> list[Hit]:
        """The top ``k`` molecules for ``query``; with ``rerank=N`` the top N are re-scored with every level."""
        if k < 1:
            raise InputError(f"k must be at least 1, got {k}")
        n = max(k, rerank or 0)
        vec = self.encode_queries([query])
        scores, idx = self.index.search(vec, min(n, self.index.ntotal))
        cand = [int(i) for i in idx[0] if i >= 0]
        first = [float(s) for s, i in zip(scores[0], idx[0]) if i >= 0]
        if rerank:
            final = self.rescore(query, cand, score)
            order = sorted(range(len(cand)), key=lambda j: (-final[j], j))
        else:
            final = first
            order = list(range(len(cand)))
        return [
            Hit(r + 1, cand[j], self.rows[cand[j]][0], self.rows[cand[j]][1], float(final[j]), first[j])
            for r, j in enumerate(order[:k])
        ]

    def rescore(self, query: str, rows: list[int], how: str = "weighted") -> list[float]:
        """The model's multi-level score of ``query`` against the library rows ``rows``."""
        from repmix_orma.scoring import (
            SideStore,
            combine_levels,
            levels_of,
            score_block,
        )

        q_tower, tower = self.info["query_tower"], self.info["tower"]
        weights = rerank_levels(self.model, q_tower, tower)
        if not weights:
            raise InputError("this model has no loss-weighted alignments between the towers to re-rank with")
        first_name = self.info["alignment"]
        ordered = {first_name: weights.get(first_name, 0.0), **{k: v for k, v in weights.items() if k != first_name}}
        _, _, levels = levels_of(self.model, ordered)
        smiles = [self.rows[r][1] for r in rows]
        a = SideStore.encode(self.model, q_tower, [query], [lv.gran_a for lv in levels], 1)
        b = SideStore.encode(self.model, tower, smiles, [lv.gran_b for lv in levels], 32)
        mats = [score_block(lv, a, b, [0], list(range(len(rows)))) for lv in levels]
        empty = [b.empty(lv.gran_b).view(1, -1) for lv in levels]
        combined = combine_levels(mats, [lv.weight for lv in levels], how, empty)
        return [float(x) for x in combined[0]]
