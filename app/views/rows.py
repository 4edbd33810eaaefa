"""Display rows, rendered in Python: the one loop every table page runs 50 times.

Everything else a page shows lives in templates. The rows do not: drawn by Jinja
(a macro and about 45 escaped expressions a row) fifty of them took 2.6-3 ms, more
than the query behind them; this module draws the same HTML in ~0.9 ms (issue 5,
W2/W3; measured on bench data). Templates call it through `table_rows` and
`summary_value`, so a page, a fragment and a single re-rendered row all come from
here, and so does every cell editor (`editor_cell`, `editor_templates`).

The DOM contract static/js/app.js relies on (issue 10):
- `table[data-grid]`: a keyboard grid. Its `<template data-editor="<field>">` hold
  one editor per editable column (and `<template data-none>` the empty-value mark);
  app.js clones them into a cell, so opening an editor needs no request.
- `tr.data-row#<singular>-<id>`: `data-version` (the row version a save carries),
  `data-update-url` (where a save is sent, PATCH) and `data-row-url` (GET: the row
  again, to take the stored values).
- `td[data-field]#<singular>-<id>-<field>`: a value cell; `.editable` when it can
  be edited inline, `.editing` while it holds a `form.cell-editor`. A cell's value
  is its text, or "" when it holds the `.none` mark.
- `form.cell-editor`: one `input[name=<field>]` whose `data-original` is the value
  the editor started from (sent as `original.<field>`, for the field-level merge),
  a `p.field-error` (hidden when empty) and `.editor-actions` Save/Cancel buttons
  (shown on touch screens).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask import current_app, request, url_for
from markupsafe import Markup, escape

from app.crud import Field, Filter, Integer, Number
from app.ui import Table

# ---------------------------------------------------------------- formatting


def format_cell(value: Any, field: Field) -> str:
    """Show a stored value in a table cell ("" for none)."""
    if value is None:
        return ""
    if isinstance(field.kind, Number):
        return f"{value:.{field.kind.places}f}"
    return str(value)


def is_numeric(field: Field | Filter) -> bool:
    """True for number columns and filters (right-aligned, numeric keyboard)."""
    return isinstance(field.kind, Number | Integer)


def format_stats(stats: tuple[int, float | None], name: str) -> str:
    """A count and average as "7.4 · 12", or "no ratings"."""
    count, average = stats
    if not count or average is None:
        return f"no {name}"
    return f"{average:.1f} · {count:,}"


def summary_value(
    table: Table,
    row_id: int,
    name: str,
    stats: tuple[int, float | None],
    oob: bool = False,
) -> Markup:
    """A row's summary ("7.4 · 12"), also swapped out of band after a child write."""
    css = "summary-value" if stats[0] else "summary-value none"
    swap = ' hx-swap-oob="true"' if oob else ""
    return Markup(
        f'<span id="{table.singular}-{row_id}-{name}-summary" class="{css}"{swap}>'
        f"{escape(format_stats(stats, name))}</span>"
    )


# ---------------------------------------------------------------- row URLs

# Stand-ins for a row id and a version: url_for runs once per table render with
# them, and each row's URL is the result with its own numbers put in their place.
_ROW_ID = 7_070_707_070_707_071
_VERSION = 7_070_707_070_707_073


def _url_parts(url: str, *marks: int) -> tuple[str, ...]:
    """Split `url` at the first occurrence of each mark, in order."""
    parts: list[str] = []
    rest = url
    for mark in marks:
        head, found, rest = rest.partition(str(mark))
        if not found:
            raise ValueError(f"{url!r} lacks {mark}")
        parts.append(head)
    parts.append(rest)
    return tuple(parts)


class RowUrls:
    """The URLs every row of a table links to, without url_for per row.

    Rendering a page of rows called url_for about eight times a row; this builds
    each URL once with stand-in numbers and fills in a row's id (and version) by
    string concatenation. The results equal what url_for gives for the same
    arguments: the stand-ins sit where the numbers go (the row id in the path,
    the version first in the query), and no other part of a URL depends on them.

    html=True gives them escaped for HTML attributes: each part is escaped once,
    which equals escaping every whole URL, as digits need no escaping.
    """

    def __init__(
        self,
        table: Table,
        nested: bool = False,
        back: str | None = None,
        html: bool = False,
    ):
        name = table.name
        args: dict[str, Any] = {"nested": 1} if nested else {}

        def parts(endpoint: str, *marks: int, **values: Any) -> tuple[str, ...]:
            url = url_for(f"{name}.{endpoint}", row_id=_ROW_ID, **values)
            split = _url_parts(url, _ROW_ID, *marks)
            return tuple(str(escape(p)) for p in split) if html else split

        self._row = parts("row", **args)
        self._update = parts("update", **args)
        children = table.children if not nested else ()
        self._children = {child: parts("children", child=child) for child in children}
        self._edit = parts("edit", next=back)
        self._delete_form = parts("delete_form", **args)
        self._delete = parts("delete", **args)

    def row(self, row_id: int) -> str:
        """url_for("<table>.row", row_id=row_id, [nested=1])."""
        a, b = self._row
        return f"{a}{row_id}{b}"

    def update(self, row_id: int) -> str:
        """url_for("<table>.update", row_id=row_id, [nested=1])."""
        a, b = self._update
        return f"{a}{row_id}{b}"

    def child(self, row_id: int, child: str) -> str:
        """url_for("<table>.children", row_id=row_id, child=child)."""
        a, b = self._children[child]
        return f"{a}{row_id}{b}"

    def edit(self, row_id: int) -> str:
        """url_for("<table>.edit", row_id=row_id, next=back)."""
        a, b = self._edit
        return f"{a}{row_id}{b}"

    def delete_form(self, row_id: int) -> str:
        """url_for("<table>.delete_form", row_id=row_id, [nested=1])."""
        a, b = self._delete_form
        return f"{a}{row_id}{b}"

    def delete(self, row_id: int) -> str:
        """url_for("<table>.delete", row_id=row_id, [nested=1])."""
        a, b = self._delete
        return f"{a}{row_id}{b}"


def _row_urls(table: Table, nested: bool, back: str | None) -> RowUrls:
    """The escaped RowUrls for a render; those without `back`, once per app.

    A saved row or a movie's ratings renders a few rows, and building the URLs
    (six url_for calls) cost as much as drawing them. They depend only on the
    table, `nested` and the application root; `back` (a page's own URL) varies.
    """
    if back is not None:
        return RowUrls(table, nested, back, html=True)
    cache = current_app.extensions.setdefault("reeltable.row_urls", {})
    key = (table.name, nested, request.script_root)
    urls = cache.get(key)
    if urls is None:
        urls = cache[key] = RowUrls(table, nested, html=True)
    return urls


# ---------------------------------------------------------------- rows

_NONE = (
    '<span class="none" aria-hidden="true">—</span>'
    '<span class="visually-hidden">none</span>'
)


def table_rows(
    table: Table,
    items: Iterable[Any],
    summaries: Mapping[str, Mapping[int, tuple[int, float | None]]],
    *,
    can_write: bool,
    csrf: str = "",
    nested: bool = False,
    back: str | None = None,
    new: bool = False,
    replace: Mapping[str, str] | None = None,
) -> Markup:
    """The <tr> of each item, for display; `replace` puts given cells in by field.

    Every value that came from the database or the request is escaped here; the
    URLs are escaped too (they carry `next`, which holds the page's query string),
    part by part, once per call (RowUrls, html=True).
    """
    urls = _row_urls(table, nested, back)
    prefix = f"{table.singular}-"
    toggles = table.children if not nested else ()
    shown = [
        (
            field.name,
            field,
            "cell"
            + (" num" if is_numeric(field) else "")
            + (" editable" if editable else ""),
            editable,
        )
        for field in table.fields(nested)
        for editable in [can_write and table.editable(field.name)]
    ]
    row_summaries = () if nested else table.resource.summaries
    new_class = " is-new" if new else ""
    swapped = replace or {}
    if can_write:
        note = f" Its {' and '.join(table.children)} go with it." if toggles else ""
        hidden = f'<input type="hidden" name="csrf_token" value="{escape(csrf)}">'
        if back:
            hidden += f'<input type="hidden" name="next" value="{escape(back)}">'
    rows: list[str] = []
    for item in items:
        row_id = item.id
        p = f"{prefix}{row_id}"
        title = escape(table.title(item))
        out = [
            f'<tr id="{p}" class="data-row{new_class}" data-version="{item.version}"'
            f' data-row-url="{urls.row(row_id)}"'
            f' data-update-url="{urls.update(row_id)}">'
        ]
        if toggles:
            out.append('<td class="toggle js-only" tabindex="-1">')
            for child in toggles:
                out.append(
                    '<button type="button" class="toggle-button" aria-expanded="false"'
                    f' data-expand-url="{urls.child(row_id, child)}"'
                    f' data-controls="{p}-{child}">'
                    '<span class="chevron" aria-hidden="true"></span>'
                    f'<span class="visually-hidden">Show {child} for {title}</span>'
                    "</button>"
                )
            out.append("</td>")
        for name, field, css, _editable in shown:
            if name in swapped:
                out.append(swapped[name])
                continue
            value = getattr(item, name)
            text = _NONE if value is None else escape(format_cell(value, field))
            out.append(
                f'<td id="{p}-{name}" class="{css}" data-field="{name}"'
                f' tabindex="-1">{text}</td>'
            )
        for summary in row_summaries:
            stats = summaries[summary.name][row_id]
            value = summary_value(table, row_id, summary.name, stats)
            out.append(f'<td class="summary" tabindex="-1">{value}</td>')
        if can_write:
            out.append(
                '<td class="actions" tabindex="-1">'
                f'<a class="no-js-only" href="{urls.edit(row_id)}">'
                f'Edit<span class="visually-hidden"> {title}</span></a>'
                '<form class="delete-form" method="post"'
                f' action="{urls.delete_form(row_id)}"'
                f' hx-delete="{urls.delete(row_id)}"'
                ' hx-target="closest tr" hx-swap="outerHTML" hx-params="none"'
                f' hx-confirm="Delete “{title}”?{note}">{hidden}'
                '<button type="submit" class="delete-button">'
                f'Delete<span class="visually-hidden"> {title}</span></button>'
                "</form></td>"
            )
        out.append("</tr>")
        rows.append("".join(out))
    return Markup("\n".join(rows))


# ---------------------------------------------------------------- editors


def input_mode(field: Field) -> str:
    """The on-screen keyboard a field wants (inputmode), or ""."""
    if isinstance(field.kind, Number):
        return "decimal"
    if isinstance(field.kind, Integer):
        return "numeric"
    return ""


def editor_form(
    field: Field,
    value: str = "",
    original: str = "",
    error: str | None = None,
    error_id: str = "",
) -> str:
    """A cell editor: the input, its message and the touch-screen buttons.

    The same markup serves the per-table templates app.js clones (empty) and a
    refused save re-rendered by the server (holding what was typed and why).
    """
    mode = input_mode(field)
    invalid = f' aria-invalid="true" aria-describedby="{error_id}"' if error else ""
    message = (
        f'<p id="{error_id}" class="field-error" role="alert">{escape(error)}</p>'
        if error
        else '<p class="field-error" role="alert" hidden></p>'
    )
    return (
        '<form class="cell-editor" novalidate>'
        f'<input type="text" name="{field.name}" value="{escape(value)}"'
        f' aria-label="{escape(field.label)}" autocomplete="off" spellcheck="false"'
        + (f' inputmode="{mode}"' if mode else "")
        + f' data-original="{escape(original)}"{invalid}>'
        f"{message}"
        '<span class="editor-actions">'
        '<button type="submit" class="editor-save">Save</button>'
        '<button type="button" class="editor-cancel">Cancel</button>'
        "</span></form>"
    )


def editor_cell(
    table: Table, item: Any, field: Field, value: str, error: str | None
) -> Markup:
    """A cell holding its editor: a save the server refused, with the message."""
    cell_id = f"{table.singular}-{item.id}-{field.name}"
    css = "cell" + (" num" if is_numeric(field) else "") + " editable editing"
    original = format_cell(getattr(item, field.name), field)
    form = editor_form(field, value, original, error, f"{cell_id}-error")
    return Markup(
        f'<td id="{cell_id}" class="{css}" data-field="{field.name}"'
        f' tabindex="-1">{form}</td>'
    )


def editor_templates(table: Table, nested: bool = False) -> Markup:
    """One `<template>` editor per inline-editable column, for app.js to clone."""
    out = [f"<template data-none>{_NONE}</template>"]
    for field in table.fields(nested):
        if table.editable(field.name):
            out.append(
                f'<template data-editor="{field.name}">{editor_form(field)}</template>'
            )
    return Markup("".join(out))
