"""``orma.morgan-fingerprint``: SMILES -> RDKit Morgan fingerprint vectors.

The molecule side of the fingerprint baseline (Text2Mol's "MLP1" row: a Morgan
fingerprint read by an MLP). Fingerprints come from RDKit's
``rdFingerprintGenerator.GetMorganGenerator`` with the configured ``radius``
and ``size`` (``fpSize``), as bits (``GetFingerprintAsNumPy``) or counts
(``GetCountFingerprintAsNumPy``); ``tests/test_fingerprints.py`` checks every
row against RDKit's own output. The batch is a dict ``{"features": [B, size]
float32}`` that :class:`repmix_orma.mlp.MLPEncoder` reads.

Fingerprints cost about 0.1 ms a molecule; an in-memory LRU keeps the most
recent ``memory_cache`` of them, so later epochs do no RDKit work.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field
from repmix.sdk import ComponentConfig, InputError, Runtime, Tokenizer

from repmix_orma.graph import parse_smiles

__all__ = ["MorganFingerprintConfig", "MorganFingerprintTokenizer", "morgan_fingerprint"]


class MorganFingerprintConfig(ComponentConfig):
    """Options of ``orma.morgan-fingerprint``."""

    radius: int = Field(2, ge=0, le=6, description="Morgan radius (2 = ECFP4)")
    size: int = Field(2048, ge=8, le=65536, description="fingerprint length (fpSize)")
    counts: bool = Field(False, description="count fingerprint instead of bits")
    chirality: bool = Field(False, description="include chirality in the atom invariants")
    log_counts: bool = Field(False, description="with counts: log(1 + count) instead of the raw count")
    memory_cache: int = Field(100_000, ge=0, description="fingerprints kept in memory (LRU); 0 disables")


def morgan_fingerprint(
    mol: Any, radius: int = 2, size: int = 2048, counts: bool = False, chirality: bool = False
) -> np.ndarray:
    """RDKit's Morgan fingerprint of ``mol`` as a float32 vector of length ``size``."""
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=size, includeChirality=chirality)
    raw = gen.GetCountFingerprintAsNumPy(mol) if counts else gen.GetFingerprintAsNumPy(mol)
    return np.asarray(raw, dtype=np.float32)


class MorganFingerprintTokenizer(Tokenizer):
    """SMILES -> ``{"features": [B, size]}`` Morgan fingerprints (bits or counts)."""

    Config: ClassVar[type[ComponentConfig]] = MorganFingerprintConfig
    citation: ClassVar[str] = (
        "Rogers and Hahn. Extended-Connectivity Fingerprints. J. Chem. Inf. Model. 2010. "
        "Baseline: Edwards, Zhai and Ji. Text2Mol: Cross-Modal Molecule Retrieval with Natural "
        "Language Queries. EMNLP 2021 (MLP1)."
    )
    config: MorganFingerprintConfig

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.feature_dim = self.config.size
        self._generator: Any = None
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()

    def _gen(self) -> Any:
        if self._generator is None:
            from rdkit.Chem import rdFingerprintGenerator

            c = self.config
            self._generator = rdFingerprintGenerator.GetMorganGenerator(
                radius=c.radius, fpSize=c.size, includeChirality=c.chirality
            )
        return self._generator

    def fingerprint(self, smiles: str) -> np.ndarray:
        """The fingerprint of one SMILES (through the LRU); :class:`InputError` when unreadable."""
        hit = self._memory.get(smiles)
        if hit is not None:
            self._memory.move_to_end(smiles)
            return hit
        mol, reason = parse_smiles(smiles)
        if mol is None:
            raise InputError(f"cannot compute a fingerprint: {reason}")
        c = self.config
        gen = self._gen()
        raw = gen.GetCountFingerprintAsNumPy(mol) if c.counts else gen.GetFingerprintAsNumPy(mol)
        fp = np.asarray(raw, dtype=np.float32)
        if c.counts and c.log_counts:
            fp = np.log1p(fp)
        if c.memory_cache > 0:
            self._memory[smiles] = fp
            while len(self._memory) > c.memory_cache:
                self._memory.popitem(last=False)
        return fp

    def check_item(self, item: Any) -> str | None:
        """Why ``item`` is not a usable SMILES, or ``None``."""
        return parse_smiles(item)[1]

    def __call__(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        """Fingerprints of a batch of SMILES, stacked."""
        rows = list(items)
        if not rows:
            raise InputError("cannot tokenize an empty batch of molecules")
        out = np.empty((len(rows), self.config.size), dtype=np.float32)
        for i, smiles in enumerate(rows):
            if not isinstance(smiles, str):
                raise InputError(f"item {i} of the batch: expected a SMILES string, got {type(smiles).__name__}")
            try:
                out[i] = self.fingerprint(smiles)
            except InputError as err:
                raise InputError(f"item {i} of the batch: {err.message}") from None
        return {"features": torch.from_numpy(out)}
