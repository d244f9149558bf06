"""Tables with bad-row reporting: the one reader of TSV / CSV / JSONL data files every plugin uses.

* :func:`read_table` reads the wanted columns of every row of a TSV or CSV file
  with a header, or of a JSONL file, into a :class:`Table` of :class:`Row`\\ s that
  remember their line numbers;
* a malformed row (wrong number of fields, a missing or empty value, bad JSON,
  bytes that are not UTF-8) goes to a :class:`BadRows`: with
  ``on_error="raise"`` the first one is an :class:`~repmix.core.errors.InputError`
  naming the file and line, with ``"skip"`` rows are counted and described
  (:meth:`BadRows.notes`, for ``Examples.notes``; :attr:`BadRows.count`, for
  ``Examples.skipped``). A component can report its own checks (a score out of
  range, an unreadable SMILES) to the same :class:`BadRows`;
* a missing file, an empty file, a header without the wanted columns or a file
  whose every row is malformed is one clear :class:`InputError`, whatever
  ``on_error`` says.

Relative paths are relative to the current working directory of the process.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from repmix.core.errors import InputError, did_you_mean

__all__ = [
    "MAX_NOTED",
    "SKIP_HINT",
    "SUFFIX_FORMATS",
    "BadRows",
    "OnError",
    "Row",
    "Table",
    "read_lines",
    "read_table",
    "shown_path",
    "suggestion",
]

#: How many skipped rows :meth:`BadRows.notes` describes one by one.
MAX_NOTED = 10
#: File suffix -> format, for ``fmt="auto"``.
SUFFIX_FORMATS: dict[str, str] = {".tsv": "tsv", ".tab": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
#: Largest TSV/CSV field accepted (characters); the csv module's default is 131,072.
FIELD_SIZE_LIMIT = 2**31 - 1
#: The hint of the error a malformed row raises under ``on_error="raise"``.
SKIP_HINT = "fix the row, or set on_error: skip to skip malformed rows (they are counted and reported)"

OnError = Literal["raise", "skip"]
Format = Literal["auto", "tsv", "csv", "jsonl"]


def shown_path(path: Path) -> str:
    """``path`` as written, plus its absolute form when it is relative (relative to the cwd)."""
    return str(path) if path.is_absolute() else f"{path} (= {path.resolve()})"


def suggestion(found: str, allowed: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``allowed`` (a case-insensitive match first), or ``""``."""
    same = [a for a in allowed if a.lower() == found.lower()]
    match = same[0] if same else did_you_mean(found, list(allowed))
    return f" (did you mean {match!r}?)" if match else ""


class BadRows:
    """Malformed rows of one or more files: raise at the first (``on_error="raise"``) or count and describe them."""

    def __init__(self, on_error: OnError | str = "raise") -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
        self.on_error = on_error
        #: Rows skipped so far.
        self.count = 0
        #: ``file:line: reason`` of the first :data:`MAX_NOTED` skipped rows.
        self.messages: list[str] = []

    def report(self, file: Path, line: int, reason: str) -> None:
        """Row ``line`` of ``file`` is malformed: raise an :class:`InputError`, or count it."""
        message = f"{file}:{line}: {reason}"
        if self.on_error == "raise":
            raise InputError(message, hint=SKIP_HINT)
        self.count += 1
        if len(self.messages) < MAX_NOTED:
            self.messages.append(message)

    def notes(self) -> list[str]:
        """Lines for ``Examples.notes``: how many rows were skipped, and the first few with their reasons."""
        if not self.count:
            return []
        out = [f"skipped {self.count} malformed row(s) (on_error: skip)"]
        out += [f"skipped {m}" for m in self.messages]
        if self.count > len(self.messages):
            out.append(f"... and {self.count - len(self.messages)} more malformed row(s)")
        return out

    def none_usable(self, path: Path, hint: str | None = None) -> InputError:
        """The error for a file whose every row is malformed (raise it)."""
        first = self.messages[0] if self.messages else "(none recorded)"
        return InputError(f"{path}: no usable rows: all {self.count} row(s) are malformed; first: {first}", hint=hint)


@dataclass
class Row:
    """One parsed row: the (1-based) line it starts on and its values by column name."""

    line: int
    values: dict[str, Any]


@dataclass
class Table:
    """The rows :func:`read_table` kept, with the file's header and the bad rows it met."""

    path: Path
    #: Column names of the header line (TSV/CSV); for JSONL, the columns asked for.
    header: list[str]
    rows: list[Row]
    bad_rows: BadRows = field(default_factory=BadRows)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def column(self, name: str) -> list[Any]:
        """The values of column ``name``, one per kept row."""
        return [row.values[name] for row in self.rows]


def _file_format(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    found = SUFFIX_FORMATS.get(path.suffix.lower())
    if found is None:
        raise InputError(
            f"cannot tell the format of {shown_path(path)} from its suffix {path.suffix!r}",
            hint="name it *.tsv, *.csv or *.jsonl, or set format: tsv|csv|jsonl "
            f"(suffixes known: {', '.join(SUFFIX_FORMATS)})",
        )
    return found


def _read_bytes(path: Path, what: str) -> bytes:
    if not path.exists():
        raise InputError(
            f"{what} {shown_path(path)} does not exist",
            hint="relative paths are relative to the current working directory",
        )
    if path.is_dir():
        raise InputError(f"{what} {shown_path(path)} is a directory, not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {what} {shown_path(path)}: {exc}") from None
    if not data.lstrip(b"\xef\xbb\xbf").strip():
        raise InputError(f"{what} {shown_path(path)} is empty")
    return data


class _Lines:
    """Decoded lines of a file with a running line counter; undecodable lines are reported."""

    def __init__(self, path: Path, data: bytes, bad_rows: BadRows) -> None:
        self.path = path
        self.raw = data.split(b"\n")
        if self.raw and self.raw[-1] == b"":
            self.raw.pop()
        self.bad_rows = bad_rows
        self.line = 0  # number of the last line handed out (1-based)

    def __iter__(self) -> Iterator[str]:
        for i, raw in enumerate(self.raw):
            self.line = i + 1
            raw = raw.removesuffix(b"\r")
            try:
                text = raw.decode("utf-8-sig" if i == 0 else "utf-8")
            except UnicodeDecodeError as exc:
                self.bad_rows.report(self.path, i + 1, f"not valid UTF-8 ({exc.reason} at byte {exc.start})")
                continue
            yield text + "\n"


def read_lines(path: str | Path, *, on_error: OnError | str = "raise", bad_rows: BadRows | None = None,
               what: str = "items file") -> list[str]:
    """The non-blank lines of a text file (line ends stripped); a line that is not UTF-8 is a bad row."""
    p = Path(path)
    bad = bad_rows if bad_rows is not None else BadRows(on_error)
    return [t.rstrip("\n") for t in _Lines(p, _read_bytes(p, what), bad) if t.strip()]


def read_table(
    path: str | Path,
    columns: Sequence[str],
    *,
    optional: Sequence[str] = (),
    fmt: Format | str = "auto",
    quoting: Literal["auto", "none", "standard"] | str = "auto",
    allow_empty: bool = False,
    on_error: OnError | str = "raise",
    bad_rows: BadRows | None = None,
    what: str = "data file",
) -> Table:
    """Read ``columns`` of every row of a TSV/CSV file with a header, or of a JSONL file.

    ``fmt="auto"`` tells the format from the suffix (:data:`SUFFIX_FORMATS`).
    TSV is read with quoting off (``csv.QUOTE_NONE``, as STS-B's unquoted fields
    need) unless ``quoting="standard"``; CSV with the csv module's standard
    quoting unless ``quoting="none"``. A row with the wrong number of fields, a
    missing, null or (unless ``allow_empty``) empty value, or bad JSON is
    reported to ``bad_rows`` (a fresh :class:`BadRows` with ``on_error`` when not
    given; pass one to share it between files). ``optional`` columns are read
    when the file has them (TSV/CSV: in the header, checked like the others;
    JSONL: per object, as they are) and are ``None`` otherwise. ``what`` names
    the file in errors (``"BEIR corpus"``).
    """
    path = Path(path)
    bad = bad_rows if bad_rows is not None else BadRows(on_error)
    kind = _file_format(path, fmt)
    lines = _Lines(path, _read_bytes(path, what), bad)
    if kind == "jsonl":
        rows = _jsonl_rows(path, lines, list(columns), list(optional), allow_empty, bad)
        return Table(path, [*columns, *optional], rows, bad)
    previous_limit = csv.field_size_limit(FIELD_SIZE_LIMIT)  # documents can exceed the 128 KiB default
    try:
        header, rows = _delimited_rows(path, lines, kind, quoting, list(columns), list(optional), allow_empty, bad)
    finally:
        csv.field_size_limit(previous_limit)
    return Table(path, header, rows, bad)


def _jsonl_rows(
    path: Path, lines: _Lines, columns: list[str], optional: list[str], allow_empty: bool, bad: BadRows
) -> list[Row]:
    rows: list[Row] = []
    for text in lines:
        if not text.strip():
            continue
        line = lines.line
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            bad.report(path, line, f"invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(obj, dict):
            bad.report(path, line, f"expected a JSON object, found {type(obj).__name__}")
            continue
        values: dict[str, Any] = {}
        problem = None
        for col in columns:
            if col not in obj:
                problem = f"missing field {col!r}{suggestion(col, list(obj))}; fields found: {', '.join(obj) or '(none)'}"
            elif obj[col] is None:
                problem = f"field {col!r} is null"
            elif obj[col] == "" and not allow_empty:
                problem = f"field {col!r} is empty"
            if problem:
                break
            values[col] = obj[col]
        if problem:
            bad.report(path, line, problem)
            continue
        for col in optional:
            values[col] = obj.get(col)
        rows.append(Row(line, values))
    if not rows and bad.count:
        raise bad.none_usable(path, hint=f"expected JSON objects with the fields {', '.join(columns)}")
    return rows


def _delimited_rows(
    path: Path,
    lines: _Lines,
    kind: str,
    quoting: str,
    columns: list[str],
    optional: list[str],
    allow_empty: bool,
    bad: BadRows,
) -> tuple[list[str], list[Row]]:
    delimiter = "\t" if kind == "tsv" else ","
    if quoting == "auto":
        quoting = "none" if kind == "tsv" else "standard"
    mode = csv.QUOTE_NONE if quoting == "none" else csv.QUOTE_MINIMAL
    reader = csv.reader(iter(lines), delimiter=delimiter, quoting=mode, strict=True)
    sep_name = "tab" if delimiter == "\t" else "comma"
    last_end = 0

    def records() -> Iterator[tuple[int, list[str]]]:
        nonlocal last_end
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise InputError(f"{path}:{lines.line}: cannot parse the {kind.upper()} file: {exc}") from None
            start = last_end + 1
            last_end = lines.line
            yield start, record

    it = records()
    header_line, header = next(it, (0, []))
    while header == [] and header_line:
        header_line, header = next(it, (0, []))
    header = [h.strip() for h in header]
    if not header:
        raise InputError(f"data file {shown_path(path)} has no header line")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise InputError(f"{path}:{header_line}: the header names column(s) {', '.join(map(repr, dupes))} twice")
    missing = [c for c in columns if c not in header]
    if missing:
        hints = "; ".join(f"{c!r}{suggestion(c, header)}" for c in missing)
        raise InputError(
            f"{path}:{header_line}: the header lacks column(s) {hints}",
            hint=f"columns found: {', '.join(header)}\ncolumns expected: {', '.join(columns)}"
            + ("\n(TSV files need tab-separated headers)" if kind == "tsv" and len(header) == 1 else ""),
        )
    present = [c for c in dict.fromkeys([*columns, *optional]) if c in header]
    index = {c: header.index(c) for c in present}
    absent = {c: None for c in optional if c not in header}
    n = len(header)
    rows: list[Row] = []
    for line, record in it:
        if not record:
            continue  # blank line
        if len(record) != n:
            bad.report(path, line, f"expected {n} {sep_name}-separated fields ({', '.join(header)}), found {len(record)}")
            continue
        values: dict[str, Any] = {c: record[i] for c, i in index.items()}
        empty = [c for c, v in values.items() if v == ""]
        if empty and not allow_empty:
            bad.report(path, line, f"field {empty[0]!r} is empty")
            continue
        values.update(absent)
        rows.append(Row(line, values))
    if not rows:
        if bad.count:
            raise bad.none_usable(path)
        raise InputError(f"data file {shown_path(path)} has a header but no rows")
    return header, rows
