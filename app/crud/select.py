"""The one place that builds WHERE and ORDER BY for a list query, search included."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from app.crud.dialect import Dialect, fold_text
from app.crud.fields import Resource, Text
from app.crud.query import ListQuery, SearchWord, search_words, sort_keys


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
        self,
        query: ListQuery,
        *columns: Any,
        walk_sort_index: bool = False,
        fold_each_row: bool = False,
    ) -> sa.Select[Any]:
        """Return the filtered, sorted SELECT (unpaged) for a query."""
        stmt = sa.select(*columns) if columns else sa.select(self.model)
        where = self.where(query, walk_sort_index, fold_each_row)
        return stmt.where(*where).order_by(*self.order_by(query))

    def where(
        self,
        query: ListQuery,
        walk_sort_index: bool = False,
        fold_each_row: bool = False,
    ) -> list[sa.ColumnElement[bool]]:
        """Build the WHERE clauses for a query from declared fields only.

        walk_sort_index, fold_each_row: see Reader.items and walk; they change the
        plan, not the rows.
        """
        clauses: list[sa.ColumnElement[bool]] = []
        if query.q:
            clauses.append(self.search(query.q, walk_sort_index, fold_each_row))
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
        """SELECT rowid FROM the table's full-text index matching text, if it serves.

        It serves when every word of text is matched accents ignored (see
        query.search_words): a lone short word is not.
        """
        words = search_words(text)
        if not all(w.folded for w in words):
            return None
        return self.backend.search_match(
            self.resource.search_index, [w.text for w in words]
        )

    def search(
        self,
        text: str,
        walk_sort_index: bool = False,
        fold_each_row: bool = False,
        indexed: bool = True,
    ) -> sa.ColumnElement[bool]:
        """Match rows holding every word of `text` (query.search_words) in some field.

        walk_sort_index (SQLite, a common word): rows are read in sort-index order
        and tested one by one until the page is full (see walk).

        On SQLite the index and LIKE compare alike: accents folded, ASCII case
        ignored, other letters' case kept (FTS5's trigram tokenizer would fold
        Cyrillic case, LIKE cannot, so the index is case-sensitive over values
        whose ASCII letters are lower-cased: migration 0019).

        indexed=False: the row-by-row test alone (each word in some field, folded
        as the index holds values), even where an index serves: the tests compare
        the two, which must find the same rows.
        """
        rowids = self.search_match(text) if indexed else None
        words = search_words(text)
        if rowids is None:
            return sa.and_(*(self.held(word) for word in words))
        id_column: sa.ColumnElement[Any] = self.column("id")
        if walk_sort_index:
            return self.walk(words, None if fold_each_row else rowids)
        return id_column.in_(rowids)

    def walk(
        self, words: Sequence[SearchWord], rowids: sa.Select[Any] | None
    ) -> sa.ColumnElement[bool]:
        """The test of each row a walk of the sort index passes (SQLite).

        SQLite reads rows in sort-index order and keeps those that match instead
        of fetching and sorting every match. A row whose values are ASCII is
        tested with LIKE, in the index that carries them, which costs the same
        however many rows match (W2 of `python -m bench`). A row with other
        letters is tested on its folded values, as the full-text index holds
        them, in one of two ways (Reader.items picks the cheaper):

        - rowids given: its id is looked up in the list of every match, which
          SQLite builds whole first ("id + 0" cannot use the primary key, so the
          sort index is still walked): 45,976 ids for "star" at 1,000,000 movies,
          about 8 ms before the first row;
        - rowids None: its values are folded (fold_accents) and tested with LIKE,
          about 1 µs a value, nothing built first.

        LIKE on the raw values finds nothing the index would not: the folded
        word's characters are ones folding leaves as they are.
        """
        plain = [fold_text(w.text) for w in words]
        columns = [self.column(n) for n in self.searched]
        raw = sa.and_(*(sa.or_(*(self.contains(c, p) for c in columns)) for p in plain))
        other = sa.or_(*(self.backend.has_non_ascii(c) for c in columns))
        if rowids is None:
            folded = sa.and_(*(self.held(word) for word in words))
            return sa.or_(raw, sa.and_(other, folded))
        listed = (self.column("id") + 0).in_(rowids)
        return sa.or_(raw, sa.and_(other, listed))

    @property
    def searched(self) -> list[str]:
        """The names of the searchable fields."""
        return [f.name for f in self.resource.fields if f.searchable]

    def held(self, word: SearchWord) -> sa.ColumnElement[bool]:
        """The row holds the word in some searchable field (row by row)."""
        return sa.or_(*(self.holds(self.column(n), word) for n in self.searched))

    def holds(
        self, column: sa.ColumnElement[Any], word: SearchWord
    ) -> sa.ColumnElement[bool]:
        """column contains the word: accents and case ignored, or as typed."""
        pattern = "%" + _escape_like(word.text) + "%"
        if word.folded:
            return self.backend.contains_folded(column, pattern)
        return self.backend.contains(column, pattern)

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
