"""The view model of a table page: one page of rows and the links that change it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from flask import url_for

from app.crud import MAX_SORT_KEYS, CrudService, ListQuery, Page, QueryError, SortKey
from app.ui import Table
from app.views.rows import is_numeric


@dataclass
class Listing:
    """One page of a table as the browser sees it, and the links that change it."""

    table: Table
    page: Page
    default_per_page: int
    # Arguments left out of the view: param -> (the value as typed, why).
    rejected: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    clamped: bool = False  # the asked page was past the end: this is the last

    @property
    def query(self) -> ListQuery:
        """The validated view: search, filters, sort and page."""
        return self.page.query

    def message(self, param: str) -> str:
        """Why the value typed for `param` is not applied ("" when it is)."""
        return self.rejected[param][1] if param in self.rejected else ""

    def not_applied(self) -> list[str]:
        """One sentence per value left out ("Minimum rating 11 is not applied: ...")."""
        numeric = {f.param for f in self.table.resource.filters if is_numeric(f)}
        out = []
        for param, (typed, why) in self.rejected.items():
            shown = typed.strip()
            if param not in numeric:
                shown = f"“{shown[:40]}…”" if len(shown) > 40 else f"“{shown}”"
            label = self.table.param_label(param)
            out.append(f"{label} {shown} is not applied: {why}")
        return out

    def url(self, **changes: Any) -> str:
        """The canonical URL of this view with `changes` applied."""
        args = self.query.args(**changes)
        if args.get("per_page") == self.default_per_page:
            del args["per_page"]  # the default stays out of shared links
        if args.get("page") == 1:
            del args["page"]
        return url_for(f"{self.table.name}.index", **args)

    def sort_keys(self) -> tuple[SortKey, ...]:
        """The order the rows are in: the asked sort, else the table's default."""
        if self.query.sort:
            return self.query.sort
        shown = set(self.table.columns)
        keys = (
            SortKey(k.removeprefix("-"), k.startswith("-"))
            for k in self.table.resource.default_sort
        )
        return tuple(k for k in keys if k.field in shown)

    def sort_state(self, name: str) -> tuple[int, bool] | None:
        """(position, descending) of a column in the order, or None."""
        for position, key in enumerate(self.sort_keys()):
            if key.field == name:
                return position, key.descending
        return None

    def sort_url(self, name: str, add: bool = False) -> str:
        """The URL a header click leads to; `add` for shift-click (secondary key).

        A click sorts by the column alone, ascending, or flips it if it already
        leads; a shift-click appends it, or flips it where it stands.
        """
        keys = list(self.sort_keys())
        if not add:
            leads = bool(keys) and keys[0].field == name
            keys = [SortKey(name, leads and not keys[0].descending)]
        elif any(k.field == name for k in keys):
            keys = [
                SortKey(k.field, not k.descending) if k.field == name else k
                for k in keys
            ]
        elif len(keys) < MAX_SORT_KEYS:
            keys.append(SortKey(name))
        return self.url(sort=",".join(str(k) for k in keys), page=None)

    def page_url(self, number: int) -> str:
        """The URL of another page of this view."""
        return self.url(page=number)

    def state_inputs(self) -> dict[str, str]:
        """View state the filter form must carry along (sort, page size)."""
        out: dict[str, str] = {}
        if self.query.sort:
            out["sort"] = ",".join(str(k) for k in self.query.sort)
        if self.query.per_page != self.default_per_page:
            out["per_page"] = str(self.query.per_page)
        return out

    def hidden_filters(self) -> dict[str, str]:
        """Filters in the URL that have no input (e.g. movie_id): kept as they are."""
        shown = set(self.table.filters)
        args = self.query.args()
        return {
            flt.param: str(args[flt.param])
            for flt in self.table.resource.filters
            if flt.param not in shown and flt.param in args
        }


def fetch(
    table: Table, svc: CrudService, args: Mapping[str, str], lenient: bool = False
) -> Listing:
    """Parse list arguments and fetch the page, the last one if asked past it.

    A bad argument is a QueryError (400), unless `lenient`: then the view is
    shown without it, and the listing says which and why (issue 12).
    """
    kept = dict(args.items())
    rejected: dict[str, tuple[str, str]] = {}
    while True:
        try:
            query = svc.parse_query(kept)
            break
        except QueryError as exc:
            if not lenient or exc.param not in kept:
                raise
            rejected[exc.param] = (kept.pop(exc.param), exc.message)
    page = svc.list(query)
    clamped = query.page > page.pages
    if clamped:
        # A stale link, or the last rows of the last page deleted (issue 11).
        page = svc.list(replace(query, page=page.pages))
    return Listing(table, page, svc.page_size, rejected, clamped)
