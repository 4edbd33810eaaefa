"""A list query: parsing the query string into a ListQuery, and the Page it yields."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic

from app.crud.errors import QueryError
from app.crud.fields import ASCII_BLANKS, FORBIDDEN_CHARS, M, Resource

MAX_QUERY_LENGTH = 200
MAX_PAGE = 1_000_000
MAX_SORT_KEYS = 4
# Words shorter than this are searched together with a neighbour (search_words).
SHORT_WORD = 3


@dataclass(frozen=True)
class SortKey:
    """One sort key: a declared field and its direction."""

    field: str
    descending: bool = False

    def __str__(self) -> str:
        return ("-" if self.descending else "") + self.field


@dataclass(frozen=True)
class ListQuery:
    """A validated view of a table: search, filters, sort and page."""

    q: str = ""
    filters: Mapping[str, Any] = field(default_factory=dict)
    sort: tuple[SortKey, ...] = ()
    page: int = 1
    per_page: int = 50

    def args(self, **changes: Any) -> dict[str, Any]:
        """Return the query-string arguments for this view, with changes applied.

        Defaults are left out so URLs stay short and canonical.
        """
        out: dict[str, Any] = {}
        if self.q:
            out["q"] = self.q
        for key, value in self.filters.items():
            if value is not None:
                out[key] = format_value(value)
        if self.sort:
            out["sort"] = ",".join(str(k) for k in self.sort)
        if self.page != 1:
            out["page"] = self.page
        out["per_page"] = self.per_page
        out.update(changes)
        return {k: v for k, v in out.items() if v not in (None, "")}

    def sort_direction(self, name: str) -> tuple[int, bool] | None:
        """Return (position, descending) of a field in the sort, or None."""
        for position, key in enumerate(self.sort):
            if key.field == name:
                return position, key.descending
        return None


@dataclass(frozen=True)
class SearchWord:
    """One thing a search asks for: every row shown holds it in some searched field.

    folded: accents and case ignored ("amelie" finds "Amélie"). A lone word of one
    letter, or of two that are not both ASCII, is matched as typed, as before
    accents were folded (its case ignored only for ASCII letters on SQLite).
    """

    text: str
    folded: bool


def search_words(q: str) -> tuple[SearchWord, ...]:
    """Split a search into the words every row must hold, in any order, any field.

    A word of one or two letters stays with the word after it ("a space"), or
    with the one before when it comes last ("road 1"), so it is matched where it
    was typed: alone it would match most rows and no trigram index serves it.
    """
    groups: list[str] = []
    waiting: list[str] = []
    for word in q.split():
        waiting.append(word)
        if len(word) >= SHORT_WORD:
            groups.append(" ".join(waiting))
            waiting = []
    if waiting:
        if groups:
            groups[-1] = " ".join([groups[-1], *waiting])
        else:
            groups.append(" ".join(waiting))
    return tuple(
        SearchWord(g, len(g) >= SHORT_WORD or (len(g) == 2 and g.isascii()))
        for g in groups
    )


def format_value(value: Any) -> str:
    """Format a parsed filter or field value back into its query-string form."""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass
class Page(Generic[M]):
    """One page of a list: the rows, counts and per-row summaries."""

    items: list[M]
    total: int  # rows matching the query
    grand_total: int  # rows in the table
    query: ListQuery
    summaries: dict[str, dict[int, tuple[int, float | None]]]

    @property
    def pages(self) -> int:
        """Number of pages (at least 1, so an empty result still has page 1)."""
        return max(1, math.ceil(self.total / self.query.per_page))

    @property
    def has_prev(self) -> bool:
        """True when there is a page before this one."""
        return self.query.page > 1

    @property
    def has_next(self) -> bool:
        """True when there is a page after this one."""
        return self.query.page < self.pages

    @property
    def first_index(self) -> int:
        """1-based position of the first row on this page (0 when empty)."""
        if not self.items:
            return 0
        return (self.query.page - 1) * self.query.per_page + 1


def sort_keys(query: ListQuery, resource: Resource[Any]) -> tuple[SortKey, ...]:
    """The keys a query sorts by: its own, or the declaration's default sort."""
    return query.sort or tuple(
        SortKey(k.removeprefix("-"), k.startswith("-")) for k in resource.default_sort
    )


def parse_query(
    resource: Resource[Any],
    args: Mapping[str, str],
    page_size: int = 50,
    max_page_size: int = 500,
) -> ListQuery:
    """Validate query-string arguments into a ListQuery or raise QueryError."""
    q = (args.get("q") or "").strip()
    if len(q) > MAX_QUERY_LENGTH:
        raise QueryError(
            "q", f"The search text must be at most {MAX_QUERY_LENGTH} characters."
        )
    if FORBIDDEN_CHARS.search(q):
        raise QueryError("q", "The search text contains characters not allowed.")
    filters: dict[str, Any] = {}
    for flt in resource.filters:
        raw = args.get(flt.param)
        if raw is None or not str(raw).strip():
            continue
        try:
            filters[flt.param] = flt.kind.parse(flt.label, raw)
        except ValueError as exc:
            raise QueryError(flt.param, str(exc)) from None
    sort = _parse_sort(resource, args.get("sort"))
    page = _parse_int(args, "page", 1, 1, MAX_PAGE)
    per_page = _parse_int(args, "per_page", page_size, 1, max_page_size)
    return ListQuery(q=q, filters=filters, sort=sort, page=page, per_page=per_page)


def _parse_sort(resource: Resource[Any], raw: str | None) -> tuple[SortKey, ...]:
    """Parse "-rating,name" into sort keys, accepting only sortable fields."""
    if raw is None or not raw.strip():
        return ()
    keys: list[SortKey] = []
    allowed = resource.sortable
    for part in raw.split(","):
        part = part.strip()
        name = part.removeprefix("-")
        if name not in allowed:
            shown = part if len(part) <= 40 else part[:40] + "…"
            raise QueryError(
                "sort",
                f"Cannot sort by {shown!r}; choose from {', '.join(allowed)}.",
            )
        if any(k.field == name for k in keys):
            raise QueryError("sort", f"{name!r} appears twice in the sort.")
        keys.append(SortKey(name, part.startswith("-")))
    if len(keys) > MAX_SORT_KEYS:
        raise QueryError("sort", f"Sort by at most {MAX_SORT_KEYS} columns.")
    return tuple(keys)


def _parse_int(
    args: Mapping[str, str], name: str, default: int, low: int, high: int
) -> int:
    """Parse a bounded positive integer parameter or raise QueryError."""
    raw = args.get(name)
    if raw is None or not str(raw).strip():
        return default
    text = str(raw).strip(ASCII_BLANKS)
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise QueryError(name, f"{name} must be a whole number from {low} to {high}.")
    value = int(text)
    if not low <= value <= high:
        raise QueryError(name, f"{name} must be a whole number from {low} to {high}.")
    return value
