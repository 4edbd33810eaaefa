"""Rows shown under their parent's row, and the figures a write changes elsewhere.

A nested table (ratings) is listed under each row of its parent (a movie) with
its own add form. After a write the page shows figures the written row feeds:
the parent's summary ("7.4 · 12") under a parent, else the table's row count.
Those are swapped out of band; this module says which and computes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import request, url_for

from app.crud import CrudService, ListQuery, QueryError, Summary
from app.htmx import current_url
from app.resources import TABLES
from app.ui import Table
from app.views.common import service
from app.views.forms import add_form


def parent_id(table: Table, row: Any) -> int | None:
    """The id of the row's parent (a rating's movie), if the table has one."""
    nesting = table.nesting
    if nesting is None:
        return None
    if isinstance(row, Mapping):
        return row.get(nesting.foreign_key)
    return getattr(row, nesting.foreign_key)


def rows_id(table: Table, parent_id: int | None = None) -> str:
    """The id of the `<tbody>` a table's rows are in (under `parent_id`, if given)."""
    if parent_id is None or table.nesting is None:
        return f"{table.singular}-rows"
    parent = TABLES[table.nesting.parent]
    return f"{parent.singular}-{parent_id}-{table.name}-rows"


def child_list(table: Table, parent_id: int) -> dict[str, Any]:
    """The newest rows under one parent, how many there are, and the add form."""
    nesting = table.nesting
    assert nesting is not None, f"{table.name} is not nested"
    svc = service(table.name)
    param = next(
        f.param
        for f in table.resource.filters
        if f.field == nesting.foreign_key and f.op == "eq"
    )
    query = ListQuery(filters={param: parent_id}, per_page=nesting.limit)
    parent = TABLES[nesting.parent]
    all_args: dict[str, Any] = {param: parent_id}
    return {
        "rows": svc.reader.items(query),
        "total": svc.count(query),
        "all_url": url_for(f"{table.name}.index", **all_args),
        "form": add_form(
            table,
            f"{parent.singular}-{parent_id}-{table.singular}-add",
            url_for(f"{parent.name}.create_child", row_id=parent_id, child=table.name),
            nested=True,
        ),
        "rows_id": rows_id(table, parent_id),
    }


def figures(table: Table, nested: bool, parent_id: int | None) -> dict[str, Any]:
    """Figures a write changes elsewhere on the page, for out-of-band swaps.

    Under a parent row: the parent's summary (a movie's "7.4 · 12"). In the
    table itself: the row count, for the filter the page is showing.
    """
    nesting = table.nesting
    if nested and nesting is not None and parent_id is not None:
        parent = TABLES[nesting.parent]
        summary = _parent_summary(table, parent)
        stats = service(parent.name).reader.summaries([parent_id])[summary.name]
        return {
            "summary": {
                "table": parent,
                "row_id": parent_id,
                "name": summary.name,
                "stats": stats[parent_id],
            }
        }
    svc = service(table.name)
    query = _current_query(table, svc)
    grand_total = svc.count()
    total = svc.count(query) if query != ListQuery() else grand_total
    return {"count": {"table": table, "total": total, "grand_total": grand_total}}


def _parent_summary(table: Table, parent: Table) -> Summary:
    """The parent's summary computed over `table`."""
    assert table.nesting is not None
    for summary in parent.resource.summaries:
        if (
            summary.child is table.resource.model
            and summary.foreign_key == table.nesting.foreign_key
        ):
            return summary
    raise LookupError(f"{parent.name} has no summary over {table.name}")


def _current_query(table: Table, svc: CrudService) -> ListQuery:
    """The list view of the page the request came from (for its row count)."""
    path, args = current_url(request)
    if path != url_for(f"{table.name}.index"):
        return ListQuery()
    try:
        query = svc.parse_query(args)
    except QueryError:
        return ListQuery()
    # Only the filter matters for a count.
    return ListQuery(q=query.q, filters=query.filters)
