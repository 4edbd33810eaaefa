"""The UI declaration's types: how a declared table shows in the browser.

app/resources.py declares one `Table` per table beside its `Resource`; the views
and templates read these, so nothing under app/views names a table or a field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from app.crud import Field, Filter, Resource


@dataclass(frozen=True)
class Nesting:
    """Where else a table's rows are shown: under each row of a parent table."""

    parent: str  # the parent table's name, e.g. "movies"
    foreign_key: str  # the column that points at the parent, e.g. "movie_id"
    hidden: tuple[str, ...] = ()  # columns that would only repeat the parent
    limit: int = 100  # rows listed under one parent; the rest are a link away


@dataclass(frozen=True)
class Table:
    """How one declared resource looks and behaves in the browser."""

    resource: Resource
    columns: tuple[str, ...]  # declared fields shown, in order
    title: Callable[[Any], str]  # names a row in buttons and messages
    filters: tuple[str, ...] = ()  # filter parameters that get an input
    search_label: str | None = None  # label of the search box (None: no box)
    add_form: bool = False  # show the "Add ..." form above the table
    nesting: Nesting | None = None
    children: tuple[str, ...] = ()  # tables that expand under each row
    # What a new row's add form starts with, asked per request (e.g. the author).
    form_defaults: Callable[[], Mapping[str, str]] | None = None

    @property
    def name(self) -> str:
        """URL segment and blueprint name, e.g. "movies"."""
        return self.resource.name

    @property
    def singular(self) -> str:
        """Prefix of element ids, e.g. "movie" in movie-42."""
        return self.resource.singular

    @property
    def caption(self) -> str:
        """The table's caption, e.g. "Movies"."""
        return self.name.capitalize()

    def fields(self, nested: bool = False) -> list[Field]:
        """The shown fields; under a parent, without the ones repeating it."""
        hidden = self.nesting.hidden if nested and self.nesting else ()
        return [self.resource.field(n) for n in self.columns if n not in hidden]

    def create_fields(self, nested: bool = False) -> list[Field]:
        """The fields a person types into the add form."""
        fk = self.nesting.foreign_key if nested and self.nesting else None
        return [f for f in self.resource.fields if f.creatable and f.name != fk]

    def filter_inputs(self) -> list[Filter]:
        """The declared filters that get an input in the filter form."""
        return [f for f in self.resource.filters if f.param in self.filters]

    def filter_params(self) -> list[str]:
        """The parameters the filter form has an input (and a message slot) for."""
        search = ["q"] if self.search_label else []
        return search + [f.param for f in self.filter_inputs()]

    def param_label(self, param: str) -> str:
        """How a list parameter is named to people, e.g. "Minimum rating"."""
        if param == "q":
            return self.search_label or "Search"
        for flt in self.resource.filters:
            if flt.param == param:
                return flt.label
        return param

    def width(self, can_write: bool, nested: bool = False) -> int:
        """Number of columns in a row, for colspan."""
        toggles = 1 if self.children and not nested else 0
        summaries = 0 if nested else len(self.resource.summaries)
        return toggles + len(self.fields(nested)) + summaries + int(can_write)

    def editable(self, name: str) -> bool:
        """True when `name` is a shown column that inline editing may change."""
        return name in self.columns and self.resource.field(name).editable
