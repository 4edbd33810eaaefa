"""CSV export (streamed, each line formatted by the database) and validated import.

Both directions are generic over a Resource declaration: the exported columns,
their kinds (text, whole number, decimal) and, for import, which fields may be
set, which identify a row without an id (`match_on`) and which are copied.

The cell format, shared by both directions:
- RFC 4180: a cell holding a comma, a double quote, CR or LF is quoted and its
  quotes doubled; lines end with CRLF; UTF-8; an empty cell is a missing value.
- Formula injection (CWE-1236, OWASP's advice): a text cell that starts with tab
  or CR, or with = + - @ or their full-width forms (＝＋－＠) after any blanks
  (whitespace, zero-width characters), is written with a leading apostrophe, so a
  spreadsheet shows it as text. Text that already starts with apostrophes followed
  by such a start gets one more, so the rule is reversible: the import removes
  exactly one apostrophe from a protected cell (read_text) and rejects a
  formula-looking cell without one, which only a file edited outside reeltable can
  contain.
"""

from __future__ import annotations

import csv
import io
import re
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import sqlalchemy as sa

from app.crud import (
    CrudService,
    Field,
    Integer,
    ListQuery,
    Number,
    Reference,
    Resource,
    Text,
    ValidationError,
    largest_id,
)
from app.crud.dialect import Dialect

# ---------------------------------------------------------------- the cell format

# A formula starts with one of these signs, or their full-width forms ＝＋－＠,
# which some spreadsheets take for the ASCII ones (issue 12).
FORMULA_SIGNS = "=+-@\uff1d\uff0b\uff0d\uff20"
# Skipped before a sign: a spreadsheet may trim them, and a reader cannot see them.
# Every character str.isspace() knows, and the zero-width ones (U+200B-U+200D,
# U+2060, U+FEFF). The database's ltrim() gets the same list.
BLANKS = (
    "\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004"
    "\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
    "\u200b\u200c\u200d\u2060\ufeff"
)
# A cell starting with tab or CR is protected whatever follows (OWASP's list).
CONTROL_START = "\t\r"
# A cell needs quotes when it holds one of these.
QUOTE_TRIGGERS = ',"\r\n'
_SIGN_PAST_BLANKS = f"([{re.escape(BLANKS)}]*)([{re.escape(FORMULA_SIGNS)}])"
_FORMULA = f"(?:{_SIGN_PAST_BLANKS}|[{re.escape(CONTROL_START)}])"
_NEEDS_PREFIX = re.compile(f"'*{_FORMULA}")
_PREFIXED = re.compile(f"'+{_FORMULA}")
_UNPROTECTED = re.compile(_FORMULA)


def format_text(value: str) -> str:
    """Write one text value as a CSV cell (the database does the same per row)."""
    if _NEEDS_PREFIX.match(value):
        value = "'" + value
    if any(c in value for c in QUOTE_TRIGGERS):
        value = '"' + value.replace('"', '""') + '"'
    return value


def read_text(cell: str) -> str:
    """Read one text cell: undo format_text's apostrophe, refuse a bare formula.

    Raises ValueError saying how to keep a formula-looking cell as text.
    """
    if _PREFIXED.match(cell):
        return cell[1:]
    found = _UNPROTECTED.match(cell)
    if found is None:
        return cell
    blanks, sign = found.group(1, 2)
    if blanks:
        # " =1+1" would be trimmed to "=1+1": refused, not quietly stored (issue 12).
        raise ValueError(
            f"starts with {sign!r} after blank or invisible characters, so a"
            " spreadsheet would run it as a formula; write ' in front to keep it"
            " as text."
        )
    first = sign or cell[0]
    raise ValueError(
        f"starts with {first!r}, so a spreadsheet would run it as a formula;"
        f" write '{first}… to keep it as text."
    )


def header_line(resource: Resource) -> str:
    """Return the header row: the exported column names."""
    return ",".join(format_text(name) for name in resource.exported) + "\r\n"


def export_filename(stem: str, today: date) -> str:
    """Return the download's file name, e.g. movies-2026-11-26.csv."""
    return f"{stem}-{today.isoformat()}.csv"


# ---------------------------------------------------------------- export


def _formula_like(backend: Dialect, column: Any) -> sa.ColumnElement[bool]:
    """True when format_text would protect the text: the same rule, in SQL."""
    rest = sa.func.ltrim(column, "'")
    exact = sa.or_(
        sa.func.substr(rest, 1, 1).in_(list(CONTROL_START)),
        sa.func.substr(sa.func.ltrim(rest, BLANKS), 1, 1).in_(list(FORMULA_SIGNS)),
    )
    # The apostrophe and every ASCII blank or sign sort before "A", every other
    # blank or sign from U+0085 on: for text starting with an ASCII letter one
    # comparison settles it without calling a function.
    low = backend.by_code_point(column)
    return sa.and_(sa.or_(low < "A", low >= "\x85"), exact)


def _text_cell(backend: Dialect, column: Any) -> sa.ColumnElement[str]:
    """Write a text column as a cell: formula prefix, then RFC 4180 quoting."""
    safe = sa.case(
        (_formula_like(backend, column), sa.literal("'").op("||")(column)),
        else_=column,
    )
    quoted = (
        sa.literal('"')
        .op("||")(sa.func.replace(safe, '"', '""'))
        .op("||")(sa.literal('"'))
    )
    return sa.case((backend.contains_any(column, QUOTE_TRIGGERS), quoted), else_=safe)


def line_expression(
    svc: CrudService, columns: Sequence[str] | None = None
) -> sa.ColumnElement[Any]:
    """Build the SQL expression that renders one row as a complete CSV line.

    The line is UTF-8 bytes on SQLite and text on PostgreSQL; what differs
    between them is the backend's (app/crud/dialect.py, "CSV cells").
    """
    backend = svc.backend
    model = svc.resource.model
    cells: list[sa.ColumnElement[Any]] = []
    whole: list[bool] = []
    for name in columns or svc.resource.exported:
        column = getattr(model, name)
        kind = None if name == "id" else svc.resource.field(name).kind
        if isinstance(kind, Text):
            cells.append(_text_cell(backend, column))
        elif isinstance(kind, Number):
            cells.append(backend.csv_decimal(column, kind.places))
        elif kind is None or isinstance(kind, Integer | Reference):
            cells.append(column)  # digits never need quoting
        else:  # pragma: no cover - a new field kind needs a format here
            raise TypeError(f"no CSV format for {kind!r}")
        whole.append(
            kind is None or (isinstance(kind, Integer | Reference) and kind.required)
        )
    return backend.csv_line(cells, whole)


def export_chunks(
    svc: CrudService,
    query: ListQuery,
    *,
    bom: bool = False,
    batch: int = 4096,
    on_rows: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """Yield the CSV of every row matching `query`, in ~256 KB UTF-8 chunks.

    The rows, order and filters are exactly the table's (CrudService.select);
    the database formats each line, Python only joins a batch and encodes it.
    `on_rows` hears how many rows each chunk holds.
    """
    head = (("\ufeff" if bom else "") + header_line(svc.resource)).encode()
    line = line_expression(svc)
    first = itemgetter(0)
    for rows in svc.reader.fetch_batches(query, line, batch=batch):
        lines = map(first, rows)
        data = b"".join(lines) if isinstance(rows[0][0], bytes) else "".join(lines)
        chunk = data if isinstance(data, bytes) else data.encode()
        if head:
            chunk, head = head + chunk, b""
        if on_rows is not None:
            on_rows(len(rows))
        yield chunk
    if head:
        yield head


def primed(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Run a stream up to its first chunk now, so early failures are plain errors.

    Once the first chunk is sent the status is fixed at 200; a later failure
    propagates out of the response iterator, so the server aborts the connection
    before the chunked body's last (empty) chunk: clients see a truncated
    transfer, never a short file that looks complete.
    """
    head = next(chunks)

    def stream() -> Iterator[bytes]:
        yield head
        yield from chunks

    return stream()


# ---------------------------------------------------------------- import

# progress(phase, done, total): "checking" or "writing", rows so far, and how many
# in all (0 when not known yet); called at most once a batch.
Progress = Callable[[str, int, int], None]

MAX_LINE_BYTES = 64 * 1024
MAX_ERRORS = 500  # invalid rows listed in a preview; all are counted
BATCH = 5000  # rows classified (and written) per round of queries
# Bytes read at a time: a block is checked and decoded whole, at C speed; only a
# block that fails a check is read again line by line, to name the line. Below
# MAX_LINE_BYTES, so a block of whole lines holds no line too long; small, as
# its lines take 4 bytes a character while they are handed out (io.StringIO).
BLOCK_BYTES = 32 * 1024


class CsvFileError(Exception):
    """The file as a whole cannot be read: nothing in it is imported."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class PreviewOutdated(Exception):
    """The data changed since the preview; nothing was written."""

    def __init__(self, preview: Preview) -> None:
        super().__init__("The table changed since the preview.")
        self.preview = preview


@dataclass(frozen=True)
class RowError:
    """Why one row cannot be imported: its line, column (or "") and reason."""

    line: int
    column: str
    reason: str


class ParsedRow(NamedTuple):
    """One data row of the file, parsed and validated on its own.

    A tuple of numbers, text and a dict of them: the garbage collector stops
    tracking such a row, so a million of them passing through cost no full
    collections (which took a good part of the parsing time: `python -m
    bench.imports --only speed`).
    """

    line: int
    id: int | None
    values: dict[str, Any]
    errors: Sequence[tuple[str, str]] = ()


@dataclass
class Preview:
    """What an import would do (or did): the counts and the first invalid rows.

    Nothing in it grows with the file but `errors`, which stops at MAX_ERRORS.
    """

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    invalid: int = 0
    errors: list[RowError] = field(default_factory=list)
    # Rows with an id the table lacks are refused, except in an empty table: there
    # a file (a download being restored) keeps its ids.
    keeps_ids: bool = False

    @property
    def counts(self) -> dict[str, int]:
        """The four counts by name, as shown and as compared before writing."""
        return {
            "new": self.new,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "invalid": self.invalid,
        }

    @property
    def rows(self) -> int:
        """How many data rows were classified."""
        return self.new + self.changed + self.unchanged + self.invalid

    @property
    def writes(self) -> int:
        """How many rows an import would write."""
        return self.new + self.changed


class IdSet:
    """A set of positive ids: a bitmap for the usual small ids, compact beyond.

    Ids below BITMAP_LIMIT are bits of one bytearray (2 MB at most: a byte per
    8 ids up to the largest seen). Larger ones are grouped by id >> 20, and a
    group keeps the low 20 bits in a sorted array('I') until it holds
    ARRAY_LIMIT of them, then as a 128 KB bitmap: about 4 bytes an id, and at
    most 2,048 groups below 2**31. 1,500,000 random ids below 2**31 take 6 MB;
    a Python set of them took ~100 MB (most of issue 11's 230 MB).
    """

    BITMAP_LIMIT = 1 << 24
    ARRAY_LIMIT = 1 << 15  # 128 KB as an array: from here a bitmap is no larger

    def __init__(self) -> None:
        self.bits = bytearray()
        self.groups: dict[int, array[int] | bytearray] = {}

    def add(self, value: int) -> None:
        """Add an id."""
        if value < self.BITMAP_LIMIT:
            index = value >> 3
            if index >= len(self.bits):
                grow = max(index + 1 - len(self.bits), len(self.bits))
                self.bits.extend(bytes(grow))
            self.bits[index] |= 1 << (value & 7)
            return
        high, low = value >> 20, value & 0xFFFFF
        group = self.groups.get(high)
        if group is None:
            self.groups[high] = array("I", (low,))
        elif isinstance(group, bytearray):
            group[low >> 3] |= 1 << (low & 7)
        else:
            at = bisect_left(group, low)
            if at == len(group) or group[at] != low:
                group.insert(at, low)
                if len(group) >= self.ARRAY_LIMIT:
                    bits = bytearray(1 << 17)
                    for member in group:
                        bits[member >> 3] |= 1 << (member & 7)
                    self.groups[high] = bits

    def __contains__(self, value: int) -> bool:
        if value < self.BITMAP_LIMIT:
            index = value >> 3
            return index < len(self.bits) and bool(
                self.bits[index] & (1 << (value & 7))
            )
        group = self.groups.get(value >> 20)
        if group is None:
            return False
        low = value & 0xFFFFF
        if isinstance(group, bytearray):
            return bool(group[low >> 3] & (1 << (low & 7)))
        at = bisect_left(group, low)
        return at < len(group) and group[at] == low


class _HashSet:
    """A set of 64-bit hashes in about eight bytes each (a Python set: ~70).

    4,096 sorted array('Q') by the top 12 bits: a few hundred entries each at a
    million hashes, so an insertion moves a few KB at most.
    """

    def __init__(self) -> None:
        self.groups: dict[int, array[int]] = {}

    def add(self, value: int) -> bool:
        """Add a hash (any int: it is taken modulo 2**64); False if it was there."""
        value &= _MASK64
        group = self.groups.get(value >> 52)
        if group is None:
            self.groups[value >> 52] = array("Q", (value,))
            return True
        at = bisect_left(group, value)
        if at == len(group) or group[at] != value:
            group.insert(at, value)
            return True
        return False

    def __contains__(self, value: int) -> bool:
        value &= _MASK64
        group = self.groups.get(value >> 52)
        if group is None:
            return False
        at = bisect_left(group, value)
        return at < len(group) and group[at] == value


_MASK64 = (1 << 64) - 1
# Match_on key hashes kept in memory (~8.5 bytes each: 18 MB); the rest go to a
# temporary table. A 64 MB movies file of realistic lines holds under 2 M rows and
# never spills; one of the shortest lines ("a1,d,") holds 8.4 M, whose preview
# grew the peak RSS by 93 MB with every hash in memory, 31 MB with this budget
# (issue 11: an import's peak RSS growth stays under 64 MB at the upload limit).
KEY_HASHES_IN_MEMORY = 1 << 21


class _SeenKeys:
    """Hashes of the match_on keys a file has shown: in memory, then in the database.

    Up to KEY_HASHES_IN_MEMORY hashes live in a _HashSet. Past it, new ones wait
    in `pending` until the batch ends (flush), then go to a temporary table;
    before each batch, prefetch() asks that table which of the batch's hashes it
    holds, so a row's test stays a lookup in memory. Only files past the budget
    pay for the table: two statements a batch.
    """

    TABLE = "reeltable_import_seen_keys"

    def __init__(self, svc: CrudService) -> None:
        self.svc = svc
        self.memory = _HashSet()
        self.size = 0
        self.budget = KEY_HASHES_IN_MEMORY
        self.spilled = False
        self.hits: set[int] = set()  # hashes of this batch found in the table
        self.pending: set[int] = set()  # added since the last flush, past budget

    def add(self, value: int) -> None:
        """Add a hash (any int: it is taken modulo 2**64)."""
        value &= _MASK64
        if self.size < self.budget:  # so nothing is in the table yet
            self.size += self.memory.add(value)
        elif value not in self.memory and value not in self.hits:
            self.pending.add(value)

    def __contains__(self, value: int) -> bool:
        value &= _MASK64
        return value in self.memory or value in self.hits or value in self.pending

    def prefetch(self, values: Iterable[int]) -> None:
        """Look up which of a batch's hashes the table holds (before the batch)."""
        if not self.spilled:
            return
        wanted = [_signed(v & _MASK64) for v in values]
        found = sa.text(f"SELECT h FROM {self.TABLE} WHERE h IN :hashes")
        found = found.bindparams(sa.bindparam("hashes", expanding=True))
        connection = self.svc.session.connection()
        self.hits = {
            h & _MASK64 for (h,) in connection.execute(found, {"hashes": wanted})
        }

    def flush(self) -> None:
        """Move the hashes added past the budget to the table (after a batch)."""
        if not self.pending:
            return
        connection = self.svc.session.connection()
        if not self.spilled:
            # IF NOT EXISTS and DELETE: an import that failed may have left it on
            # this pooled connection (SQLite keeps a temporary table until then).
            connection.execute(
                sa.text(
                    f"CREATE TEMPORARY TABLE IF NOT EXISTS {self.TABLE}"
                    " (h BIGINT PRIMARY KEY)"
                )
            )
            connection.execute(sa.text(f"DELETE FROM {self.TABLE}"))
            self.spilled = True
        # None is there already: add() kept out the table's (prefetched) hashes.
        insert = sa.text(f"INSERT INTO {self.TABLE} (h) VALUES (:h)")
        connection.execute(insert, [{"h": _signed(v)} for v in self.pending])
        self.pending.clear()
        self.hits.clear()

    def close(self) -> None:
        """Drop the table, if there is one."""
        if self.spilled:
            self.svc.session.connection().execute(
                sa.text(f"DROP TABLE IF EXISTS {self.TABLE}")
            )
            self.spilled = False


def _signed(value: int) -> int:
    """An unsigned 64-bit value as the signed one a BIGINT column holds."""
    return value - (1 << 64) if value >> 63 else value


def _lines(stream: BinaryIO) -> Iterator[str]:
    """Yield the file's physical lines decoded as strict UTF-8, checked for binary.

    The file is read in blocks of whole lines, each checked and decoded at once;
    a block that fails a check goes through _checked_lines, line by line, which
    raises the error of its first bad line.
    """
    head = stream.read(8192)
    if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise CsvFileError(
            "This is a spreadsheet workbook, not a CSV file. Save it as"
            ' "CSV UTF-8 (comma delimited)" and upload that.'
        )
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CsvFileError(
            'This file is UTF-16 text. Save it as "CSV UTF-8" and upload that.'
        )
    if b"\x00" in head:
        raise CsvFileError("This is not a CSV file: it holds binary data.")
    stream.seek(0)
    number = 0  # lines yielded so far
    rest = b""
    while True:
        block = stream.read(BLOCK_BYTES)
        data = rest + block if rest else block
        if not data:
            return
        cut = data.rfind(b"\n") + 1 if block else len(data)
        if not cut:
            if len(data) < MAX_LINE_BYTES:
                rest = data  # a line longer than a block: read on
                continue
            cut = len(data)  # too long for a line: _checked_lines says so
        piece, rest = data[:cut], data[cut:]
        count = piece.count(b"\n") + (piece[-1:] != b"\n")
        text = None
        # A piece shorter than a long line holds none: a long line carried over
        # from the blocks before makes a long piece, read the careful way.
        if len(piece) < MAX_LINE_BYTES and b"\x00" not in piece:
            with suppress(UnicodeDecodeError):  # _checked_lines names the line
                text = piece.decode("utf-8")
        if text is None:
            yield from _checked_lines(piece, number)
        else:
            if not number:
                text = text.removeprefix("\ufeff")
            # Lines end at "\n" only, as readline() cut them: a lone "\r" is
            # the csv module's to judge.
            yield from io.StringIO(text, newline="\n")
        number += count


def _checked_lines(piece: bytes, number: int) -> Iterator[str]:
    """Yield the lines of a block one by one, raising at the first bad one.

    `number` is how many lines of the file came before the block.
    """
    stream = io.BytesIO(piece)
    while raw := stream.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise CsvFileError(
                f"Line {number} is longer than {MAX_LINE_BYTES // 1024} KB;"
                " this is not a CSV file of this table.",
                number,
            )
        if b"\x00" in raw:
            raise CsvFileError(
                f"This is not a CSV file: line {number} holds binary data.", number
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CsvFileError(
                f"Line {number} is not UTF-8 text (byte 0x{raw[exc.start]:02X}"
                f' at position {exc.start + 1}). Save the file as "CSV UTF-8"'
                " and upload it again.",
                number,
            ) from None
        if number == 1:
            text = text.removeprefix("\ufeff")
        yield text


def _read_header(resource: Resource, header: list[str] | None) -> list[str]:
    """Check the header row and return the column names in file order."""
    expected = ",".join(resource.exported)
    if header is None:
        raise CsvFileError(f"The file is empty. Its first line must be: {expected}")
    names = [c.strip().lower() for c in header]
    known = set(resource.exported)
    unknown = [n for n in names if n not in known]
    if unknown and len(unknown) == len(names):
        raise CsvFileError(
            f"The first line must be the header: {expected} (found"
            f" {_shorten(','.join(header))!r}).",
            1,
        )
    if unknown:
        raise CsvFileError(
            f"Unknown column {_shorten(unknown[0])!r} in the header; the columns"
            f" are {expected}.",
            1,
        )
    for name in names:
        if names.count(name) > 1:
            raise CsvFileError(f"The header names {name!r} twice.", 1)
    missing = [
        f.name
        for f in resource.fields
        if f.creatable and f.exported and f.name not in names
    ]
    if missing:
        raise CsvFileError(
            f"The header lacks {', '.join(repr(m) for m in missing)}; the columns"
            f" are {expected}.",
            1,
        )
    return names


def _shorten(text: str, limit: int = 60) -> str:
    """Cut long text for a message."""
    return text if len(text) <= limit else text[:limit] + "…"


# An import must leave this many ids free above the largest it writes, so the
# rows created after it still get ids (issue 11).
ID_HEADROOM = 1_000_000


def read_rows(svc: CrudService, stream: BinaryIO) -> Iterator[ParsedRow]:
    """Parse and validate every data row of a CSV file, streaming.

    Raises CsvFileError for problems with the file as a whole; a row's own
    problems are listed in its `errors`. Blank lines are skipped.
    """
    resource = svc.resource
    source = _lines(stream)
    reader = csv.reader(source, strict=True)
    try:
        header = next((row for row in reader if any(c.strip() for c in row)), None)
        names = _read_header(resource, header)
        parse = _RowParser(svc, names)
        end = reader.line_num
        for cells in reader:
            line, end = end + 1, reader.line_num
            joined = "".join(cells)
            if not joined or joined.isspace():
                continue  # blank: every cell empty or spaces
            yield parse(cells, line)
    except csv.Error as exc:
        raise CsvFileError(
            f"Line {reader.line_num} is not valid CSV: {exc}. A double quote"
            " inside a field must be doubled, and the field quoted.",
            reader.line_num,
        ) from None


# A text cell starting with one of these may be changed or refused by read_text,
# or trimmed by Text.parse: the exact path reads it.
_TEXT_RISKS = frozenset(BLANKS + FORMULA_SIGNS + CONTROL_START + "'")
# How _RowParser reads a field's plain cells quickly (see _quick_plan).
_QUICK_TEXT, _QUICK_WHOLE, _QUICK_DECIMAL = 0, 1, 2

# (name, position in the row, how, low, high, decimal shape): see _quick_plan.
_QuickField = tuple[str, int, int, float, float, "re.Pattern[str] | None"]


def _quick_plan(f: Field, at: int) -> _QuickField | None:
    """How _RowParser reads the field's plain cells, or None if it cannot.

    The quick path takes only cells that read_text and kind.parse() accept,
    and gives exactly their value: text that starts with a letter or digit and
    is printable (which no forbidden control character is) within the length;
    ASCII digits within the range; a decimal of up to 9 digits and `places`
    decimals within integer bounds (float() then rounds no such value across a
    bound, so comparing floats agrees with parse()'s exact decimal one). Any
    other cell sends its row through _parse_row, the reference.
    """
    kind = f.kind
    if isinstance(kind, Text):
        return (f.name, at, _QUICK_TEXT, 0, kind.max_length, None)
    if isinstance(kind, Integer):
        return (f.name, at, _QUICK_WHOLE, kind.minimum, kind.maximum, None)
    if isinstance(kind, Reference):
        return (f.name, at, _QUICK_WHOLE, 1, largest_id(kind.model), None)
    if (
        isinstance(kind, Number)
        and not kind.required
        and 0 < kind.places <= 6
        and float(kind.minimum).is_integer()
        and float(kind.maximum).is_integer()
    ):
        shape = re.compile(rf"[0-9]{{1,9}}(?:\.[0-9]{{1,{kind.places}}})?", re.ASCII)
        low, high = float(kind.minimum), float(kind.maximum)
        return (f.name, at, _QUICK_DECIMAL, low, high, shape)
    return None


# Builds a ParsedRow from a tuple without NamedTuple's Python-level __new__.
_new_row = partial(tuple.__new__, ParsedRow)


class _RowParser:
    """Parse the data rows of one file: plain cells quickly, any other row exactly.

    A row whose every cell the quick path takes (see _quick_plan) gets the
    values parse() would give; any other row goes through _parse_row, the
    reference, so values and messages are the same either way. The quick path
    skips the general one's per-cell calls, dicts and exceptions, which more
    than halves a row's parse time (`python -m bench.imports --only speed`, the
    previews).
    """

    def __init__(self, svc: CrudService, names: list[str]) -> None:
        resource = svc.resource
        self.svc = svc
        self.names = names
        self.width = len(names)
        self.settable = {f.name: f for f in resource.fields if f.creatable}
        self.id_kind = Integer(1, largest_id(resource.model), required=False)
        self.id_at = names.index("id") if "id" in names else -1
        plan: list[_QuickField] = []
        for f in resource.fields:
            if not f.creatable:
                continue
            quick = _quick_plan(f, names.index(f.name)) if f.name in names else None
            if quick is None:
                self.plan: list[_QuickField] | None = None  # every row the exact way
                break
            plan.append(quick)
        else:
            self.plan = plan

    def __call__(self, cells: list[str], line: int) -> ParsedRow:
        """Parse one data row (a list of cells) found at `line`."""
        plan = self.plan
        if plan is not None and len(cells) == self.width:
            row_id: int | None = None
            quick = True
            if self.id_at >= 0 and (cell := cells[self.id_at]):
                if cell.isdigit() and cell.isascii():
                    row_id = int(cell)
                    quick = 1 <= row_id <= self.id_kind.maximum
                else:
                    quick = False
            if quick:
                values: dict[str, Any] = {}
                value: Any
                for name, at, how, low, high, shape in plan:
                    cell = cells[at]
                    if how == _QUICK_TEXT:
                        if not cell or cell[0] in _TEXT_RISKS:
                            break
                        value = cell.strip()
                        if len(value) > high or not value.isprintable():
                            break
                    elif how == _QUICK_WHOLE:
                        if not (cell.isdigit() and cell.isascii()):
                            break
                        value = int(cell)
                        if not low <= value <= high:
                            break
                    elif not cell:
                        value = None  # an optional decimal
                    elif shape is not None and shape.fullmatch(cell):
                        value = float(cell)
                        if not low <= value <= high:
                            break
                    else:
                        break
                    values[name] = value
                else:
                    return _new_row((line, row_id, values, ()))
        return _parse_row(
            self.svc, self.settable, self.names, cells, line, self.id_kind
        )


def _parse_row(
    svc: CrudService,
    settable: dict[str, Any],
    names: list[str],
    cells: list[str],
    line: int,
    id_kind: Integer,
) -> ParsedRow:
    """Validate one data row against the declaration (references are checked later)."""
    if len(cells) != len(names):
        return ParsedRow(
            line,
            None,
            {},
            [("", f"has {len(cells)} fields; the header has {len(names)}.")],
        )
    errors: list[tuple[str, str]] = []
    data: dict[str, str] = {}
    row_id = None
    for name, cell in zip(names, cells, strict=True):
        if name == "id":
            try:
                row_id = id_kind.parse("id", cell)
            except ValueError as exc:
                errors.append(("id", str(exc)))
        elif name in settable:
            if isinstance(settable[name].kind, Text):
                try:
                    cell = read_text(cell)
                except ValueError as exc:
                    errors.append((name, str(exc)))
                    continue
            data[name] = cell
    values: dict[str, Any] = {}
    try:
        values = svc.validate(data, creating=True, check_references=False)
    except ValidationError as exc:
        already = {column for column, _ in errors}
        errors.extend(
            (column, message)
            for column, message in exc.errors.items()
            if column not in already
        )
    return ParsedRow(line, row_id, values, errors)


def _chunked(rows: Iterable[ParsedRow], size: int) -> Iterator[list[ParsedRow]]:
    """Yield lists of `size` rows (the last one shorter)."""
    source = iter(rows)
    while chunk := list(islice(source, size)):
        yield chunk


# What the import writes for one batch: rows to insert, (id, changed fields).
_Writes = tuple[list[dict[str, Any]], list[tuple[int, dict[str, Any]]]]


class _Classifier:
    """Sort parsed rows into new, changed, unchanged and invalid, batch by batch.

    Each batch costs a few set-based queries (ids, match_on keys, references),
    whatever its size; what the file has shown so far (for duplicates) is kept
    in compact sets, so memory stays small however long the file.
    """

    def __init__(self, svc: CrudService, writing: bool = False) -> None:
        self.svc = svc
        resource = svc.resource
        self.compare = [f.name for f in resource.fields if f.creatable]
        # (name, position in self.compare) of the fields set once, never edited.
        self.fixed = [
            (name, self.compare.index(name))
            for name in self.compare
            if not resource.field(name).editable
        ]
        # (name, position in self.compare) of the fields an import may change.
        self.editable = [
            (name, self.compare.index(name))
            for name in self.compare
            if resource.field(name).editable
        ]
        self.references = [
            f.name for f in resource.fields if isinstance(f.kind, Reference)
        ]
        self.match_on = resource.match_on
        self.largest = largest_id(resource.model)
        # An empty table takes the file's ids: the file is a download being
        # restored (export, import into an empty database gives the same bytes).
        # Otherwise an id the table lacks is refused (issue 11): creating it
        # would move the id sequence past it for every later row.
        self.restoring = not svc.lookups.has_rows()
        # An import writes each batch once it is classified: later batches must
        # not meet those rows, which were not there when the file was checked.
        # Ids are never reused and new rows get ids above the largest, so the
        # rows that were there are the ids up to `newest` (none, when restoring).
        self.writing = writing
        self.newest = svc.lookups.newest_id() if writing else None
        self.preview = Preview()
        # Referenced ids found to exist. A row deleted after it was looked up
        # is not noticed by a preview; an import holds the write lock (SQLite),
        # or the foreign key refuses the row (PostgreSQL) and nothing is written.
        self.known = {name: IdSet() for name in self.references}
        self.seen_ids = IdSet()
        # Hashes, not the keys themselves, keep memory small; a collision could
        # only make a valid row look like a duplicate, never write a wrong one.
        self.seen_keys = _SeenKeys(svc)

    def key(self, row: ParsedRow) -> tuple[Any, ...]:
        """The row's values of the match_on fields."""
        return tuple(row.values[n] for n in self.match_on)

    def run(
        self, rows: Iterable[ParsedRow], progress: Progress | None = None
    ) -> Preview:
        """Classify every row and return the preview; `progress` hears each batch."""
        for batch in _chunked(rows, BATCH):
            self.batch(batch)
            if progress is not None:
                progress("checking", self.preview.rows, 0)
        self.seen_keys.close()
        if progress is not None:
            progress("checking", self.preview.rows, 0)
        return self.preview

    def was_there(self, row_id: int) -> bool:
        """True if the row was in the table before this import wrote anything."""
        return not self.writing or (self.newest is not None and row_id <= self.newest)

    def batch(self, rows: list[ParsedRow]) -> _Writes:
        """Classify one batch with a few queries; return what importing it writes."""
        valid = [r for r in rows if not r.errors]
        matched: dict[tuple[Any, ...], list[int]] = {}
        if self.match_on:
            keys = {self.key(r) for r in valid if r.id is None}
            matched = self.svc.lookups.ids_matching(self.match_on, keys)
            if self.writing:
                kept = (
                    (k, [i for i in ids if self.was_there(i)])
                    for k, ids in matched.items()
                )
                matched = {k: ids for k, ids in kept if ids}
        wanted = {r.id for r in valid if r.id is not None}
        wanted.update(ids[0] for ids in matched.values() if len(ids) == 1)
        stored = self.svc.lookups.stored_values(wanted, self.compare)
        if self.writing:
            stored = {i: old for i, old in stored.items() if self.was_there(i)}
        existing = {name: self.existing(name, valid) for name in self.references}
        if self.match_on:
            self.seen_keys.prefetch(hash(self.key(r)) for r in valid)
        writes: _Writes = ([], [])
        for row in rows:
            self.row(row, matched, stored, existing, writes)
        self.seen_keys.flush()
        return writes

    def existing(self, name: str, rows: list[ParsedRow]) -> set[int]:
        """Which of the rows' references in field `name` name an existing row.

        Only ids not seen to exist before are looked up: a file names each movie
        ten times over, say, and the lookups were a third of the checking time.
        """
        asked = {r.values[name] for r in rows}
        known = self.known[name]
        unknown = [i for i in asked if i not in known]
        if not unknown:
            return asked
        found = self.svc.lookups.existing_references(name, unknown)
        for i in found:
            known.add(i)
        return asked.difference(unknown).union(found)

    def row(
        self,
        row: ParsedRow,
        matched: dict[tuple[Any, ...], list[int]],
        stored: dict[int, tuple[Any, ...]],
        existing: dict[str, set[int]],
        writes: _Writes,
    ) -> None:
        """Classify one row: count it, note its errors or what importing it writes."""
        values = row.values
        errors = row.errors
        if not errors:
            for name in self.references:
                if values[name] not in existing[name]:
                    errors = self.missing_references(row, existing)
                    break
        target = row.id
        key = None
        if not errors and self.match_on:
            if target is None:
                target, errors = self.match(row, matched)
            if not errors:
                key = hash(self.key(row))
        if not errors and (
            (target is not None and target in self.seen_ids)
            or (row.id is None and key is not None and key in self.seen_keys)
        ):
            errors = self.duplicates(row, target, key)
        if not errors and row.id is not None and row.id not in stored:
            errors = self.unknown_id(row.id)
        old = stored.get(target) if target is not None and not errors else None
        if old is not None:
            for name, at in self.fixed:
                if values[name] != old[at]:
                    errors = self.fixed_changes(row, old)
                    break
        preview = self.preview
        if errors:
            preview.invalid += 1
            room = MAX_ERRORS - len(preview.errors)
            if room > 0:
                preview.errors.extend(
                    RowError(row.line, c, r) for c, r in errors[:room]
                )
            return
        if target is not None:
            self.seen_ids.add(target)
        if key is not None:
            self.seen_keys.add(key)
        if old is None:
            preview.new += 1
            if row.id is not None:
                preview.keeps_ids = True
                values = {"id": row.id, **values}
            if self.writing:
                writes[0].append(values)
            return
        # values holds the fields in self.compare's order (validate's, the quick
        # path's): one tuple comparison settles the usual unchanged row.
        changed = (
            {
                name: values[name]
                for name, at in self.editable
                if values[name] != old[at]
            }
            if tuple(values.values()) != old
            else None
        )
        if changed:
            preview.changed += 1
            if self.writing:
                assert target is not None
                writes[1].append((target, changed))
        else:
            preview.unchanged += 1

    def missing_references(
        self, row: ParsedRow, existing: dict[str, set[int]]
    ) -> list[tuple[str, str]]:
        """Errors for references to rows that do not exist."""
        errors = []
        for name in self.references:
            kind = self.svc.resource.field(name).kind
            value = row.values[name]
            if isinstance(kind, Reference) and value not in existing[name]:
                target = kind.label_of_target
                errors.append((name, f"There is no {target} with id {value}."))
        return errors

    def unknown_id(self, row_id: int) -> list[tuple[str, str]]:
        """Errors for an id the table lacks: refused, or in an empty table kept."""
        resource = self.svc.resource
        singular = resource.singular
        if not self.restoring:
            reason = (
                f"There is no {singular} with id {row_id}; leave the id empty to"
                f" add it as a new {singular}."
            )
            return [("id", reason)]
        if row_id > self.largest - ID_HEADROOM:
            reason = (
                f"id {row_id:,} is too close to the largest id a {singular} can have"
                f" ({self.largest:,}): there would be no ids left for new"
                f" {resource.name}. Leave the id empty to add it as a new {singular}."
            )
            return [("id", reason)]
        return []

    def match(
        self, row: ParsedRow, matched: dict[tuple[Any, ...], list[int]]
    ) -> tuple[int | None, list[tuple[str, str]]]:
        """Find the stored row a row without id stands for, by the match_on fields."""
        ids = matched.get(self.key(row), [])
        if len(ids) > 1:
            reason = (
                f"matches {len(ids)} existing {self.svc.resource.name};"
                " add the id to choose one."
            )
            return None, [(",".join(self.match_on), reason)]
        return (ids[0] if ids else None), []

    def duplicates(
        self, row: ParsedRow, target: int | None, key: int | None
    ) -> list[tuple[str, str]]:
        """Errors for a row that an earlier row of the file already covers."""
        if target is not None and target in self.seen_ids:
            if row.id is not None:
                return [("id", f"id {target} appears more than once in the file.")]
            reason = (
                f"matches the same {self.svc.resource.singular} (id {target})"
                " as an earlier line."
            )
            return [(",".join(self.match_on), reason)]
        if row.id is None and key is not None and key in self.seen_keys:
            return [(",".join(self.match_on), "repeats an earlier line of the file.")]
        return []

    def fixed_changes(
        self, row: ParsedRow, old: tuple[Any, ...]
    ) -> list[tuple[str, str]]:
        """Errors for changes to fields that can be set once but not edited."""
        errors = []
        for name, at in self.fixed:
            was = old[at]
            if row.values[name] != was:
                label = self.svc.resource.field(name).label
                errors.append((name, f"{label} cannot be changed (it is {was})."))
        return errors


def preview_file(
    svc: CrudService, path: Path, progress: Progress | None = None
) -> Preview:
    """Parse, validate and classify a CSV file without writing anything.

    `progress`, if given, is called as progress("checking", rows checked so
    far, 0) after each batch of BATCH rows, and once at the end.
    """
    with path.open("rb") as stream:
        return _Classifier(svc).run(read_rows(svc, stream), progress)


def import_file(
    svc: CrudService,
    path: Path,
    expected: dict[str, int] | None = None,
    progress: Progress | None = None,
) -> Preview:
    """Write every valid row of a CSV file in one transaction; return what was done.

    The file is classified again inside the write transaction, in one pass: each
    batch of BATCH rows is checked, then written. If `expected` counts are given
    and the file's no longer match them (the table changed since the preview),
    writing stops, the rest is only checked, and PreviewOutdated is raised with
    the new preview: the transaction rolls back, nothing is written. `progress`,
    if given, is called once after each batch: progress("writing", rows written
    so far, rows the preview expects to write or 0) if the batch wrote rows,
    else progress("checking", rows checked so far, rows in the preview or 0).
    """
    total = expected["new"] + expected["changed"] if expected else 0
    rows_total = sum(expected.values()) if expected else 0
    with svc.transaction(), ExitStack() as indexes:
        classifier = _Classifier(svc, writing=True)
        preview = classifier.preview
        lines = 0 if expected else _count_lines(path)
        written = 0
        outdated = False
        deferring = False
        with path.open("rb") as stream:
            for batch in _chunked(read_rows(svc, stream), BATCH):
                inserts, updates = classifier.batch(batch)
                if expected is not None and any(
                    n > expected.get(name, 0) for name, n in preview.counts.items()
                ):
                    outdated = True  # the rest is only checked, for the new preview
                if outdated or not (inserts or updates):
                    if progress is not None:
                        progress("checking", preview.rows, rows_total)
                    continue
                if not deferring:
                    # About to write: tell the service how much, so it can choose
                    # how to keep the indexes (Bulk.deferred_indexes).
                    share = (len(inserts) + len(updates)) / len(batch)
                    estimate = total or int(share * (lines - batch[0].line + 1))
                    indexes.enter_context(svc.bulk.deferred_indexes(estimate))
                    deferring = True
                svc.bulk.insert_many(inserts)
                svc.bulk.update_many(updates)
                written += len(inserts) + len(updates)
                if progress is not None:
                    progress("writing", written, total)
        classifier.seen_keys.close()
        if expected is not None and preview.counts != expected:
            raise PreviewOutdated(preview)
    return preview


def _count_lines(path: Path) -> int:
    """Count a file's lines (a block at a time, quick even at the upload limit)."""
    count = 0
    with path.open("rb") as stream:
        while block := stream.read(BLOCK_BYTES):
            count += block.count(b"\n")
    return count + 1
