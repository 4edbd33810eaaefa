"""The cell rules, in Python and in SQL side by side (both directions use them).

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

format_text and read_text are the reference; _text_cell and line_expression
write the same cells in SQL, so an export is formatted by the database. Where the
database can COPY a query as CSV (PostgreSQL), copy_cells gives it the cells
before quoting and COPY quotes them by the same rule.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from app.crud import CrudService, Integer, Number, Reference, Text
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


def copy_cells(
    svc: CrudService, columns: Sequence[str] | None = None
) -> list[sa.ColumnElement[Any]]:
    """The cells of a row before quoting, for COPY ... (FORMAT csv) to quote.

    COPY quotes exactly when QUOTE_TRIGGERS say, doubling quotes, and writes NULL
    as an empty cell; it would quote an empty text as "", which line_expression
    writes as an empty cell, so empty text goes out as NULL.
    """
    backend = svc.backend
    model = svc.resource.model
    cells: list[sa.ColumnElement[Any]] = []
    for name in columns or svc.resource.exported:
        column = getattr(model, name)
        kind = None if name == "id" else svc.resource.field(name).kind
        if isinstance(kind, Text):
            protected = sa.literal("'").op("||")(column)
            plain = sa.func.nullif(column, "")
            cells.append(
                sa.case((_formula_like(backend, column), protected), else_=plain)
            )
        elif isinstance(kind, Number):
            cells.append(backend.csv_decimal(column, kind.places))
        elif kind is None or isinstance(kind, Integer | Reference):
            cells.append(column)
        else:  # pragma: no cover - a new field kind needs a format here
            raise TypeError(f"no CSV format for {kind!r}")
    return cells


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
