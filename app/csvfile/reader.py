"""Reading a CSV file: its lines (strict UTF-8, no binary), header and rows.

Each data row is parsed and validated on its own here (a ParsedRow); what it
means for the table (new, changed, a duplicate) is the importer's to decide.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from contextlib import suppress
from functools import partial
from typing import Any, BinaryIO, NamedTuple

from app.crud import (
    CrudService,
    Field,
    Integer,
    Number,
    Reference,
    Resource,
    Text,
    ValidationError,
    largest_id,
)
from app.csvfile.cells import BLANKS, CONTROL_START, FORMULA_SIGNS, read_text

MAX_LINE_BYTES = 64 * 1024

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
    # Read on from the head rather than seeking back: an upload kept in the
    # database is read forwards only.
    pending = head
    number = 0  # lines yielded so far
    rest = b""
    while True:
        block, pending = pending or stream.read(BLOCK_BYTES), b""
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
