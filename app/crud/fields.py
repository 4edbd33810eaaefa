"""What a table declaration is made of: field kinds that parse input, and the
declaration types (Field, Filter, Summary, Child, Resource) app/resources.py uses.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase

# The model a declaration (and the service over it) is about, e.g. Movie.
M = TypeVar("M", bound=DeclarativeBase)

# NUL and the other C0 controls break PostgreSQL text or terminals; tab and line
# breaks are legitimate in free text (and must survive a CSV round trip).
FORBIDDEN_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# Numbers are written in ASCII: int() and Decimal() would also take "1_0", "1e3",
# Arabic-Indic or full-width digits and strip Unicode spaces (issue 12). Only ASCII
# blanks around a number are dropped, as a form field's stray space always was.
ASCII_BLANKS = " \t\r\n\f\v"
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_DECIMAL_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)


@dataclass(frozen=True)
class Text:
    """Free text, trimmed; required unless said otherwise."""

    max_length: int
    required: bool = True

    def parse(self, label: str, raw: Any) -> str | None:
        """Return the cleaned value or raise ValueError with a message."""
        if raw is None:
            raw = ""
        if not isinstance(raw, str):
            raise ValueError(f"{label} must be text.")
        value = raw.strip()
        if not value:
            if self.required:
                raise ValueError(f"{label} is required.")
            return None
        if len(value) > self.max_length:
            raise ValueError(f"{label} must be at most {self.max_length} characters.")
        if FORBIDDEN_CHARS.search(value):
            raise ValueError(f"{label} contains characters that are not allowed.")
        return value


@dataclass(frozen=True)
class Integer:
    """A whole number within [minimum, maximum]."""

    minimum: int
    maximum: int
    required: bool = True

    def parse(self, label: str, raw: Any) -> int | None:
        """Return the number or raise ValueError with a message."""
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if self.required:
                raise ValueError(f"{label} is required.")
            return None
        if isinstance(raw, bool):
            raise ValueError(f"{label} must be a whole number.")
        value: int | None
        if isinstance(raw, int):
            value = raw
        else:
            text = str(raw).strip(ASCII_BLANKS)
            if not _WHOLE_NUMBER.fullmatch(text):
                raise ValueError(f"{label} must be a whole number.")
            # So many digits are out of any range: no need to build the number.
            value = int(text) if len(text) <= 40 else None
        if value is None or not self.minimum <= value <= self.maximum:
            raise ValueError(
                f"{label} must be between {self.minimum} and {self.maximum}."
            )
        return value


@dataclass(frozen=True)
class Number:
    """A decimal number within [minimum, maximum] with at most `places` decimals."""

    minimum: float
    maximum: float
    places: int = 1
    required: bool = True

    def parse(self, label: str, raw: Any) -> float | None:
        """Return the number (as float) or raise ValueError with a message."""
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if self.required:
                raise ValueError(f"{label} is required.")
            return None
        if isinstance(raw, bool):
            raise ValueError(f"{label} must be a number.")
        if isinstance(raw, int | float | Decimal):
            value = Decimal(str(raw))  # a number already: no spelling to check
        else:
            text = str(raw).strip(ASCII_BLANKS)
            if len(text) > 32 or not _DECIMAL_NUMBER.fullmatch(text):
                raise ValueError(f"{label} must be a number.")
            value = Decimal(text)
        if not value.is_finite():
            raise ValueError(f"{label} must be a number.")
        if not self.minimum <= value <= self.maximum:
            raise ValueError(
                f"{label} must be between {self.minimum:g} and {self.maximum:g}."
            )
        if value != round(value, self.places):
            raise ValueError(f"{label} can have at most {self.places} decimal place.")
        # + 0.0 makes "-0" 0.0: SQLite would export a stored -0.0 as "-0.0".
        result = float(round(value, self.places)) + 0.0
        return result if math.isfinite(result) else None


# The largest value of each integer column type that every dialect we run on can
# hold. SQLite stores any INTEGER in 64 bits, PostgreSQL's integer has 32: one
# bound for both keeps a URL, a filter or an imported id valid on either, and a
# SQLite database movable to PostgreSQL. Subtypes before Integer itself.
_INTEGER_MAX: tuple[tuple[type[sa.Integer], int], ...] = (
    (sa.SmallInteger, 2**15 - 1),
    (sa.BigInteger, 2**63 - 1),
    (sa.Integer, 2**31 - 1),
)


# Filled on first use: a model's column type never changes.
_LARGEST_IDS: dict[type, int] = {}


def largest_id(model: type[Any]) -> int:
    """Return the largest id the model's id column holds on every dialect."""
    largest = _LARGEST_IDS.get(model)
    if largest is None:
        column_type = table_of(model).c.id.type
        for kind, top in _INTEGER_MAX:
            if isinstance(column_type, kind):
                largest = _LARGEST_IDS[model] = top
                break
        else:
            raise TypeError(f"{model.__name__}.id is not an integer column")
    return largest


def fits_id(model: type[Any], value: int) -> bool:
    """True if the model's id column can hold `value` on every dialect.

    An id no row can have must not reach the database, which would fail
    instead of finding nothing (PostgreSQL: "integer out of range"; SQLite's
    driver: OverflowError).
    """
    largest = largest_id(model)
    return -largest - 1 <= value <= largest


@dataclass(frozen=True)
class Reference:
    """The id of a row in another table, which must exist."""

    model: type[Any]
    label_of_target: str = "row"

    required: bool = True

    def parse(self, label: str, raw: Any) -> int | None:
        """Return the id; existence is checked by the service, which has a session."""
        return Integer(1, largest_id(self.model), self.required).parse(label, raw)


FieldKind = Text | Integer | Number | Reference


# ---------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Field:
    """One column of a declared table and what the UI and service may do with it."""

    name: str
    label: str
    kind: FieldKind
    editable: bool = True  # may an update change it
    creatable: bool = True  # may a create set it
    sortable: bool = False
    searchable: bool = False  # part of the free-text search `q`
    exported: bool = True
    # Never typed in: copied from the row a Reference field points at, as
    # (reference field, column there); e.g. a rating's movie_name is its movie's name.
    copied_from: tuple[str, str] | None = None


@dataclass(frozen=True)
class Filter:
    """A named query parameter that narrows a list, e.g. min_rating=7."""

    param: str
    field: str
    op: str  # "eq", "ge", "le" or "contains"
    label: str
    kind: FieldKind


@dataclass(frozen=True)
class Summary:
    """A per-row count and average over a child table (e.g. a movie's ratings)."""

    name: str
    child: type[Any]
    foreign_key: str
    value: str


@dataclass(frozen=True)
class Child:
    """A child table whose rows are deleted with the parent (ON DELETE CASCADE)."""

    resource: Resource[Any]  # the child table's own declaration
    foreign_key: str

    @property
    def model(self) -> type[Any]:
        """The child table's model."""
        return self.resource.model


@dataclass(frozen=True)
class Resource(Generic[M]):
    """Everything the service and the views need to know about one table."""

    name: str  # URL segment and table name, e.g. "movies"
    model: type[M]
    fields: tuple[Field, ...]
    singular: str
    default_sort: tuple[str, ...] = ("id",)
    filters: tuple[Filter, ...] = ()
    summaries: tuple[Summary, ...] = ()
    children: tuple[Child, ...] = ()
    # SQLite FTS5 trigram table over exactly the searchable fields, kept in step by
    # triggers, each value with an end mark, and its term list <index>_terms
    # (migration 0015); None means search scans with LIKE.
    search_index: str | None = None
    # A (table_name, n) table whose row for this table holds its row count, kept
    # by triggers (see migrations); None means the total is counted with count(*).
    row_count_table: str | None = None
    # Fields that identify an existing row when imported data has no id.
    match_on: tuple[str, ...] = ()

    def field(self, name: str) -> Field:
        """Return the declared field called `name` (KeyError if none)."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def sortable(self) -> tuple[str, ...]:
        """Names of the fields a list may be sorted by."""
        return tuple(f.name for f in self.fields if f.sortable)

    @property
    def exported(self) -> tuple[str, ...]:
        """Column names written by an export, id first."""
        return ("id", *(f.name for f in self.fields if f.exported))

    @property
    def family(self) -> tuple[Resource[Any], ...]:
        """This declaration and its children's: the tables an undo may reach."""
        return (self, *(c.resource for c in self.children))


def table_of(model: type[Any]) -> sa.Table:
    """The Table a declared model is mapped to (mypy sees only a FromClause)."""
    return cast(sa.Table, model.__table__)
