"""Reading a molecule library: ``.tsv`` (or ``.csv``) with a header, or ``.smi``.

* ``.tsv`` / ``.txt``: tab-separated, one header line, quoting off (ChEBI-20's
  format); the SMILES column is ``smiles`` (any case) unless named, the id
  column ``cid``, ``id`` or ``name`` when present (else the line number).
* ``.csv``: the same with commas.
* ``.smi`` / ``.smiles``: one molecule a line, ``SMILES [whitespace name]``;
  a first line whose first word is ``smiles`` is a header.

Blank lines are ignored. With ``validate``, every SMILES is parsed with RDKit:
an unreadable one is skipped and counted, and the first line numbers are kept
for the message, never fatal. A library with no usable molecule raises
:class:`InputError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from repmix.sdk import InputError

__all__ = ["Library", "read_library"]

#: Bad lines listed by number in messages.
SHOWN_BAD = 5


@dataclass
class Library:
    """Usable molecules of a file, in file order, and what was skipped."""

    smiles: list[str]
    ids: list[str]
    lines: list[int]
    skipped: int = 0
    bad_lines: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.smiles)

    def skipped_message(self, path: str | Path) -> str | None:
        """One line naming the skipped count and the first bad line numbers, or ``None``."""
        if not self.skipped:
            return None
        shown = ", ".join(str(n) for n in self.bad_lines[:SHOWN_BAD])
        more = " ..." if self.skipped > SHOWN_BAD else ""
        return f"{path}: skipped {self.skipped} invalid SMILES (lines {shown}{more})"


def read_library(
    path: str | Path, *, smiles_column: str = "smiles", id_column: str | None = None, validate: bool = True
) -> Library:
    """Read ``path`` (see the module docstring); :class:`InputError` when missing, malformed or empty."""
    from repmix_orma.graph import parse_smiles

    p = Path(path)
    if not p.is_file():
        raise InputError(f"molecule library {str(p)!r} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{str(p)!r} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    raw = text.splitlines()
    rows: list[tuple[int, str, str]] = []  # (line number, smiles, id)
    if p.suffix.lower() in (".smi", ".smiles"):
        for n, line in enumerate(raw, start=1):
            parts = line.split(None, 1)
            if not parts:
                continue
            if n == 1 and parts[0].lower() == "smiles":
                continue
            rows.append((n, parts[0], parts[1].strip() if len(parts) > 1 else str(n)))
    else:
        sep = "," if p.suffix.lower() == ".csv" else "\t"
        first = next((i for i, line in enumerate(raw) if line.strip()), None)
        if first is None:
            raise InputError(f"molecule library {str(p)!r} is empty")
        header = [h.strip() for h in raw[first].split(sep)]
        lower = [h.lower() for h in header]
        if smiles_column.lower() not in lower:
            raise InputError(
                f"{p}:{first + 1}: no {smiles_column!r} column in the header (columns: {', '.join(header)})",
                hint="a library is a .tsv with a header naming a 'smiles' column, or a .smi file",
            )
        s_col = lower.index(smiles_column.lower())
        if id_column is not None:
            if id_column.lower() not in lower:
                raise InputError(f"{p}:{first + 1}: no {id_column!r} column (columns: {', '.join(header)})")
            i_col: int | None = lower.index(id_column.lower())
        else:
            i_col = next((lower.index(c) for c in ("cid", "id", "name") if c in lower), None)
        for n, line in enumerate(raw[first + 1 :], start=first + 2):
            if not line.strip():
                continue
            cells = line.split(sep)
            if len(cells) <= s_col:
                rows.append((n, "", str(n)))
                continue
            ident = cells[i_col].strip() if i_col is not None and len(cells) > i_col else str(n)
            rows.append((n, cells[s_col].strip(), ident))
    lib = Library([], [], [])
    for n, smi, ident in rows:
        if validate:
            mol, reason = parse_smiles(smi)
            if mol is None:
                lib.skipped += 1
                lib.bad_lines.append(n)
                if len(lib.notes) < SHOWN_BAD:
                    lib.notes.append(f"{p}:{n}: {reason}")
                continue
        elif not smi:
            lib.skipped += 1
            lib.bad_lines.append(n)
            continue
        lib.smiles.append(smi)
        lib.ids.append(ident)
        lib.lines.append(n)
    if not lib.smiles:
        extra = f" ({lib.skipped} invalid SMILES skipped)" if lib.skipped else ""
        raise InputError(f"molecule library {str(p)!r} holds no usable molecule{extra}")
    return lib
