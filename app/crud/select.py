"""The one place that builds WHERE and ORDER BY for a list query, search included."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.crud.dialect import Dialect
from app.crud.fields import Resource, Text
from app.crud.query import ListQuery, sort_keys


class Statements:
    """Filtered, searched and sorted SELECTs over one declared table.

    Only declared fields reach the SQL: filters by their declared operator, search
    over the searchable fields, sort by the sortable ones.
    """

    def __init__(self, resource: Resource[Any], backend: Dialect) -> None:
        self.resource = resource
        self.model = resource.model
        self.backend = backend

    def column(self, name: str) -> sa.ColumnElement[Any]:
        """Return the mapped column for a declared field or id."""
        column: sa.ColumnElement[Any] = getattr(self.model, name)
        return column

    def select(
        self, query: ListQuery, *columns: Any, walk_sort_index: bool = False
    ) -> sa.Select[Any]:
        """Return the filtered, sorted SELECT (unpaged) for a query."""
        stmt = sa.select(*columns) if columns else sa.select(self.model)
        where = self.where(query, walk_sort_index)
        return stmt.where(*where).order_by(*self.order_by(query))

    def where(
        self, query: ListQuery, walk_sort_index: bool = False
    ) -> list[sa.ColumnElement[bool]]:
        """Build the WHERE clauses for a query from declared fields only.

        walk_sort_index: see Reader.walk_budget; it changes the plan, not the rows.
        """
        clauses: list[sa.ColumnElement[bool]] = []
        if query.q:
            clauses.append(self.search(query.q, walk_sort_index))
        for flt in self.resource.filters:
            if flt.param not in query.filters:
                continue
            value = query.filters[flt.param]
            column = self.column(flt.field)
            if flt.op == "eq":
                clauses.append(column == value)
            elif flt.op == "ge":
                clauses.append(column >= value)
            elif flt.op == "le":
                clauses.append(column <= value)
            elif flt.op == "contains":
                clauses.append(self.contains(column, str(value)))
            else:  # pragma: no cover - a declaration error, caught by tests
                raise ValueError(f"unknown filter op {flt.op!r}")
        return clauses

    def search_match(self, text: str) -> sa.Select[Any] | None:
        """SELECT rowid FROM the table's full-text index matching text, if it serves."""
        return self.backend.search_match(self.resource.search_index, text)

    def search(
        self, text: str, walk_sort_index: bool = False
    ) -> sa.ColumnElement[bool]:
        """Match rows whose searchable fields contain `text`, ignoring case.

        walk_sort_index (SQLite, a common word): rows are read in sort-index order
        and tested one by one until the page is full. For ASCII text the test is
        LIKE on the row itself, which costs the same however many rows match;
        otherwise it is membership in the index's match list (built once per
        query), as LIKE folds only ASCII case where the trigram index folds all.
        """
        rowids = self.search_match(text)
        if rowids is not None and not (walk_sort_index and text.isascii()):
            id_column: sa.ColumnElement[Any] = self.column("id")
            if walk_sort_index:
                # "id + 0" cannot use the primary key, so SQLite reads rows in
                # sort-index order and keeps those in the match list instead of
                # fetching and sorting every match.
                id_column = id_column + 0
            return id_column.in_(rowids)
        searchable = [f.name for f in self.resource.fields if f.searchable]
        return sa.or_(*(self.contains(self.column(n), text) for n in searchable))

    def contains(
        self, column: sa.ColumnElement[Any], text: str
    ) -> sa.ColumnElement[bool]:
        """column contains text, ignoring case (LIKE or ILIKE: see the Dialect)."""
        return self.backend.contains(column, "%" + _escape_like(text) + "%")

    def order_by(self, query: ListQuery) -> list[sa.ColumnElement[Any]]:
        """ORDER BY the requested keys (or the default), then id for stability."""
        keys = sort_keys(query, self.resource)
        order: list[sa.ColumnElement[Any]] = []
        for key in keys:
            if key.field == "id":
                continue
            kind = self.resource.field(key.field).kind
            column: sa.ColumnElement[Any] = self.column(key.field)
            # Case-insensitive order for text, matching the lower(...) indexes.
            expr = sa.func.lower(column) if isinstance(kind, Text) else column
            ordered = expr.desc() if key.descending else expr.asc()
            if not kind.required:
                ordered = ordered.nulls_last()
            order.append(ordered)
        # Ties go by id in the direction of the last key, so a descending sort is
        # the exact reverse of the ascending one and both read straight off the
        # (key, id) index: an id running the other way would force SQLite to sort
        # every row before it could skip to a deep page.
        id_desc = bool(keys) and keys[-1].descending
        id_column = self.column("id")
        order.append(id_column.desc() if id_desc else id_column.asc())
        return order


def _escape_like(text: str) -> str:
    """Escape LIKE wildcards so user text matches literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
