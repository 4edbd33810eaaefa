"""Every <tr> and <td> of a grid's body, drawn in Python, and the DOM contract.

This module is the one renderer of a grid's body: display rows (`table_rows`, the
loop every page runs 50 times), the cell editor (`editor_form`, `editor_cell`,
`editor_templates`), the conflict choice (`conflict_cell`), summaries
(`summary_value`), the empty-table row (`empty_row`) and the row a parent opens
(`child_row`). Templates call them as globals (app/views/jinja.py) and draw no
<td> of their own; ids and class names come from `Dom`. Drawn by Jinja (a macro
and about 45 escaped expressions a row) fifty rows took longer than the query
behind them; here about a third of that (W2/W3 of `python -m bench`).

The DOM contract: what static/js/app.js (and import.js) read and write. A name
app.js uses must be written down here (tests/test_views_rows.py checks).

Grid (templates/partials/table_macros.html; `Dom.region_id`)
- `.table-region#<singular>-table`: what filtering, sorting and paging swap;
  app.js marks it `aria-busy` while a slow view loads, remembers its id to put
  the focus back, and reads `.table-toolbar > .row-count` and `.not-applied`
  into `#live-status` (the page's polite status line) after a swap.
- `table[data-grid]`: a keyboard grid (also `.nested-grid`, under a parent row).
  Its direct `<template data-editor="<field>">` hold one editor per editable
  column and `<template data-none>` the empty-value mark: app.js clones them
  into a cell, so opening an editor needs no request.
- `.pager a[rel=next|prev][href]`: PageDown/PageUp click them (keeping the column).
- `a.sort-link[data-shift-href]`: Shift+click sorts by this column as well
  (`data-shift-href`, sent to the link's `hx-target`).
- `details.grid-keys > summary`: the keys, opened by "?" in the grid.

Rows (`table_rows`; `Dom.row_id`)
- `tr.data-row#<singular>-<id>`, its attributes in this order, id first (after
  an undo app.js finds the restored row by `<tr id="…" class="data-row` in the
  response text): `data-version` (the row version a save carries),
  `data-row-url` (GET: the row again) and `data-update-url` (PATCH: a save).
  `.is-new`: just added. app.js adds `.is-gone` and `aria-disabled` to a row
  deleted elsewhere and takes out its buttons, links and forms.
- `tr.empty-row`: the one "No … match" row, shown by CSS when no data row is.
- `td.toggle > button.toggle-button[data-expand-url][data-controls]`: GET
  `data-expand-url` puts the child row after this one; `data-controls` is that
  row's id (`Dom.child_row_id`); app.js keeps `aria-expanded`/`aria-controls`
  in step and sets `data-loading` while it loads.
- `tr.child-row#<singular>-<id>-<child>[data-child-of=<row id>]`: removed when
  the row it belongs to goes.
- `td.summary > span.summary-value#<row id>-<summary>-summary`, swapped out of
  band after a child write; `td.actions` holds `form.delete-form` (hx-delete,
  target the row).
- Every `<td>` of a data row has `tabindex`: -1, or 0 for the grid's one tab
  stop (app.js moves it); app.js sets controls inside cells to -1 too.

History (issue 14; static/js/history.js, app/views/changes.py)
- `td.actions > form.history-form > button.history-button`: "History of
  <title>"; GETs the row's history (a page without JavaScript) into
  `#history-panel`, inside `dialog#history-dialog` (base.html), which
  history.js opens. Alt+H on a focused row clicks its `.history-button`.
- `.history-panel[data-history-url]` (partials/history_panel.html): the panel;
  its `#history-heading` takes the focus. Each `form.history-restore` PATCHes
  one field (the row's update view, with the version the panel was drawn at)
  into the row (`hx-target` its id); after it history.js draws the panel again from
  `data-history-url`, or, when the save was refused (409, 422), closes the
  dialog so the row's conflict or editor shows. Closing gives the focus back to
  the row's `.history-button`.
- The entries are a page at a time in `ol.history-list`
  (partials/history_entries.html); `#history-more > a.history-older` ("Show
  older") GETs the next page in its place, an `ol.history-list[tabindex]`
  that history.js focuses.

Cells (`Dom.cell_id`, `Dom.cell_class`)
- `td.cell[data-field=<field>]#<row id>-<field>`: a value cell (app.js builds the
  id the same way from the row's). `.num`: a number; `.editable`: edited inline;
  `.editing` while it holds a `form.cell-editor` (app.js adds and removes it);
  `.conflict` while it holds a `form.cell-conflict`. app.js sets `aria-busy`
  while a save of the cell is unanswered. A cell's value is its text, or "" when
  it holds the `.none` mark. `.in-range`: app.js marks the cells of a block
  grown by Shift+arrows, which Ctrl+C copies and Ctrl+V pastes into (and says
  what it did in `#live-status`).
- `form.cell-editor`: one `input[name=<field>]` whose `data-original` is the value
  the editor started from (sent as `original.<field>`, for the field-level
  merge; app.js sets `data-done` once it is committed), a `.field-error` (hidden
  when empty; its id `<cell id>-error`, `Dom.error_id`) and `.editor-actions`
  with `.editor-save` and `.editor-cancel` (shown on touch screens).
- `form.cell-conflict[data-field][data-original]`: a save refused because the
  value changed meanwhile; its `input[name]` holds what was typed and
  `data-original` the stored value; submitting it ("Keep mine") goes through
  the row's save queue; its `button[data-take-theirs]` (also Escape) GETs the row.
- A response app.js swaps into a row keeps cells marked `hx-preserve` (app.js
  marks those the person is still working in).

Filters (table_macros.html `filter_form`; `Dom.filter_input_id`)
- `form.filters`: its typing bursts replace one history entry.
- `.filter-error[data-for=<input id>]#<input id>-error`: app.js marks the input
  `aria-invalid` and described by the slot while the slot has text.

Messages (templates/partials/table_toast.html, the one toast markup)
- `#toasts`: where toasts go. `.toast` (`.toast-error`: stays until dismissed),
  `data-timeout` (ms until a success goes; app.js sets `data-armed`),
  `.toast-text`, `[data-dismiss]` (its close button), `.undo-button`.
- `template#toast-template` (base.html): the same markup with no text, which app.js
  clones for a failure no server fragment describes, sets `data-key` on (one
  toast per key) and shows its `.toast-retry` or `.toast-sign-in` in.
- `.error-message[data-reason=csrf|sign-in]`: an error response's words
  (templates/partials/error_message.html); app.js reads them into a toast.

Page (templates/base.html)
- `html.no-js`, which app.js turns into `.js` (`.js-only`, `.no-js-only` in CSS);
  `meta[name=csrf-token]` and `meta[name=csrf-token-url]` (a fresh token is put
  there and into every `input[name=csrf_token]`). app.js sets
  `data-csrf-retried` on an element whose request it sent again with a fresh token.

Undo and redo (issue 14; templates/table.html, app/views/history.py)
- `.change-bar[data-undo-url][data-redo-url]`: `button#change-undo` and
  `button#change-redo` (disabled with nothing to do; their `title` and
  `#change-undo-what` / `#change-redo-what`, which `aria-describedby` names,
  say what they would do) and `#change-message` (what was done or refused).
  app.js keeps the tab's change sets from each write's `X-Change-Set` and
  `X-Change-Label` headers; after an undo or redo it draws again the rows of
  `X-Changed-Rows` (their `data-row-url`), removes those of `X-Removed-Rows`
  and draws the `.table-region` again for `X-Created-Rows`.

Live (issue 14; static/js/live.js, app/views/live.py, partials/table_region.html)
- `.live-notice[data-live-url][data-live-table][data-live-after]` in the
  region's `.table-toolbar`: where live.js asks what changed (GET
  `data-live-url`) in `data-live-table` after change id `data-live-after`,
  which it moves on with each answer (the region drawn again brings its own),
  with the rest of the cursor, on PostgreSQL, in `data-live-snapshot` (drawn
  with the region, then the answer's; app/crud/changelog.py says why).
  Hidden until it says, in `.live-notice-text`, how many rows were created
  elsewhere (`data-singular` / `data-plural` name them); its `.live-show`
  button draws the `.table-region` again. The count `#<singular>-count`
  (`.row-count`) follows creates and deletes at once.
- A `tr.data-row` changed elsewhere is drawn again from its `data-row-url`
  (app.js's swap rules: `.editing` cells and saves in flight are kept) and
  lit by `.live-changed`; one deleted elsewhere gets `.is-gone`,
  `.live-removing` and `aria-disabled`, then goes (unless a cell is `.editing`
  or `aria-busy`), and live.js fires `reeltable:rows-removed`, on which app.js
  removes its `tr.child-row[data-child-of]` and puts the focus back.
- Rows under a parent changed elsewhere (a movie's ratings): those in an open
  `tr.child-row` are drawn again or go as above; rows created there are put
  into its `tbody[id]` (before its `tr.empty-row`) from the parent's
  `.toggle-button[data-expand-url]`, the list's `.nested > .more` line
  following; the parent's `span.summary-value[id]` is read again from its
  `data-row-url` (the row itself is not swapped). After an undo that brought
  back only such rows, app.js fires `reeltable:children-created` and live.js
  fills the open lists the same way, instead of drawing the region again.

Import (static/js/import.js; templates/import.html and partials/import_form.html)
- `#import-form[data-max-bytes]` with its `input[type=file]` and
  `progress#import-progress`; `#import-result` takes the answers, and a copy
  of `template#import-message` (partials/import_error.html, blank) the size
  check's, its reason in `.error-detail`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask import current_app, request, url_for
from markupsafe import Markup, escape

from app.crud import Field, Filter, Integer, Number
from app.resources import TABLES
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


# ---------------------------------------------------------------- the contract's names


class Dom:
    """The ids and class names of the DOM contract above, made in one place.

    The renderers here and the templates (as `dom`) take them from this class;
    app.js cannot import them, so it builds ids the same documented way (a
    cell's id from its row's) and tests/test_views_rows.py checks both sides.
    """

    @staticmethod
    def region_id(table: Table) -> str:
        """The id of a table's region (what filtering, sorting and paging swap)."""
        return f"{table.singular}-table"

    @staticmethod
    def row_id(table: Table, row_id: int) -> str:
        """The id of a data row's <tr>: "movie-7"."""
        return f"{table.singular}-{row_id}"

    @staticmethod
    def cell_id(table: Table, row_id: int, field: str) -> str:
        """The id of a value cell: its row's id and the field, "movie-7-name"."""
        return f"{table.singular}-{row_id}-{field}"

    @staticmethod
    def error_id(cell_id: str) -> str:
        """The id of the message a cell's editor shows."""
        return f"{cell_id}-error"

    @staticmethod
    def summary_id(table: Table, row_id: int, name: str) -> str:
        """The id of a row's summary figure (swapped out of band)."""
        return f"{table.singular}-{row_id}-{name}-summary"

    @staticmethod
    def child_row_id(table: Table, row_id: int, child: str) -> str:
        """The id of the row a parent row opens to list its `child` rows."""
        return f"{table.singular}-{row_id}-{child}"

    @staticmethod
    def filter_input_id(table: Table, param: str) -> str:
        """The id of a filter form input (its message slot is `data-for` it)."""
        return f"{table.singular}-filter-{param}"

    @staticmethod
    def cell_class(field: Field, editable: bool, state: str = "") -> str:
        """A value cell's classes; `state` is "editing" or "conflict" or ""."""
        return (
            "cell"
            + (" num" if is_numeric(field) else "")
            + (" editable" if editable else "")
            + (f" {state}" if state else "")
        )

    @staticmethod
    def row_class(new: bool = False) -> str:
        """A data row's classes (`is-new`: just added or restored)."""
        return "data-row is-new" if new else "data-row"


dom = Dom()


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
        history = url_for("changes.history", name=name, row_id=_ROW_ID, **args)
        split = _url_parts(history, _ROW_ID)
        self._history = tuple(str(escape(p)) for p in split) if html else split

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

    def history(self, row_id: int) -> str:
        """url_for("changes.history", name=<table>, row_id=row_id, [nested=1])."""
        a, b = self._history
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
    editing: Mapping[str, Any] | None = None,
) -> Markup:
    """The <tr> of each item: a page's body, a saved row, a new one.

    `editing` turns one cell of a single row into its editor ({field, mode:
    "edit", value, error}: a refused save) or its conflict choice ({field, mode:
    "conflict", value}).

    Every value that came from the database or the request is escaped here; the
    URLs are escaped too (they carry `next`, which holds the page's query string),
    part by part, once per call (RowUrls, html=True).
    """
    urls = _row_urls(table, nested, back)
    toggles = table.children if not nested else ()
    shown = [
        (field.name, field, Dom.cell_class(field, editable))
        for field in table.fields(nested)
        for editable in [can_write and table.editable(field.name)]
    ]
    row_summaries = () if nested else table.resource.summaries
    row_class = Dom.row_class(new)
    swapped: dict[str, str] = {}
    if editing:
        items = list(items)
        swapped[editing["field"]] = _editing_cell(table, items[0], editing, urls)
    if can_write:
        note = f" Its {' and '.join(table.children)} go with it." if toggles else ""
        hidden = f'<input type="hidden" name="csrf_token" value="{escape(csrf)}">'
        if back:
            hidden += f'<input type="hidden" name="next" value="{escape(back)}">'
    rows: list[str] = []
    for item in items:
        row_id = item.id
        p = Dom.row_id(table, row_id)
        title = escape(table.title(item))
        out = [
            f'<tr id="{p}" class="{row_class}" data-version="{item.version}"'
            f' data-row-url="{urls.row(row_id)}"'
            f' data-update-url="{urls.update(row_id)}">'
        ]
        if toggles:
            out.append('<td class="toggle js-only" tabindex="-1">')
            for child in toggles:
                out.append(
                    '<button type="button" class="toggle-button" aria-expanded="false"'
                    f' data-expand-url="{urls.child(row_id, child)}"'
                    # f"{p}-{child}" is Dom.child_row_id, inlined.
                    f' data-controls="{p}-{child}">'
                    '<span class="chevron" aria-hidden="true"></span>'
                    f'<span class="visually-hidden">Show {child} for {title}</span>'
                    "</button>"
                )
            out.append("</td>")
        for name, field, css in shown:
            if name in swapped:
                out.append(swapped[name])
                continue
            value = getattr(item, name)
            text = _NONE if value is None else escape(format_cell(value, field))
            # f"{p}-{name}" is Dom.cell_id, inlined: this runs for every cell.
            out.append(
                f'<td id="{p}-{name}" class="{css}" data-field="{name}"'
                f' tabindex="-1">{text}</td>'
            )
        for summary in row_summaries:
            stats = summaries[summary.name][row_id]
            value = summary_value(table, row_id, summary.name, stats)
            out.append(f'<td class="summary" tabindex="-1">{value}</td>')
        if can_write:
            history = urls.history(row_id)
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
                "</form>"
                # A GET form, so without JavaScript it opens the history page.
                f'<form class="history-form" method="get" action="{history}"'
                f' hx-get="{history}" hx-target="#history-panel"'
                ' hx-swap="innerHTML">'
                '<button type="submit" class="history-button secondary">'
                f'History<span class="visually-hidden"> of {title}</span></button>'
                "</form></td>"
            )
        out.append("</tr>")
        rows.append("".join(out))
    return Markup("\n".join(rows))


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
        f'<span id="{Dom.summary_id(table, row_id, name)}" class="{css}"{swap}>'
        f"{escape(format_stats(stats, name))}</span>"
    )


def empty_row(table: Table, can_write: bool, nested: bool = False) -> Markup:
    """The row a grid's body shows when it has no data row (CSS hides it otherwise)."""
    width = table.width(can_write, nested=nested)
    text = f"No {table.name} yet." if nested else f"No {table.name} match this view."
    return Markup(
        f'<tr class="empty-row"><td colspan="{width}">{escape(text)}</td></tr>'
    )


def child_row(
    parent_table: Table, parent: Any, table: Table, content: str, can_write: bool
) -> Markup:
    """The row under a parent row that lists its `table` rows (a movie's ratings).

    `content` is the nested grid and its add form, already rendered
    (templates/partials/table_children.html).
    """
    parent_id = Dom.row_id(parent_table, parent.id)
    row_id = Dom.child_row_id(parent_table, parent.id, table.name)
    return Markup(
        f'<tr id="{row_id}" class="child-row" data-child-of="{parent_id}">\n'
        f'  <td colspan="{parent_table.width(can_write)}">\n'
        f"    {content}\n"
        "  </td>\n"
        "</tr>"
    )


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
    cell_id = Dom.cell_id(table, item.id, field.name)
    css = Dom.cell_class(field, True, "editing")
    original = format_cell(getattr(item, field.name), field)
    form = editor_form(field, value, original, error, Dom.error_id(cell_id))
    return Markup(
        f'<td id="{cell_id}" class="{css}" data-field="{field.name}"'
        f' tabindex="-1">{form}</td>'
    )


def conflict_cell(
    table: Table, item: Any, field: Field, yours: str, take_theirs: str
) -> Markup:
    """A cell whose save found the value changed meanwhile: both values, a choice.

    "Keep mine" submits the form, which app.js sends through the row's save
    queue from the stored value (`data-original`); "Take theirs" GETs
    `take_theirs` (the row's URL, escaped) in place of the row.
    """
    name = field.name
    stored = escape(format_cell(getattr(item, name), field))
    typed = escape(yours)
    # The whitespace is the Jinja macro's that drew this before: responses unchanged.
    return Markup(
        f'<td id="{Dom.cell_id(table, item.id, name)}"'
        f' class="{Dom.cell_class(field, True, "conflict")}" data-field="{name}"'
        ' tabindex="-1">\n'
        f'  <form class="cell-conflict" data-field="{name}" data-original="{stored}">\n'
        f'    <input type="hidden" name="{name}" value="{typed}">\n'
        '    <p class="conflict-message" role="alert">\n'
        f"      Someone else changed this {escape(field.label.lower())} meanwhile.\n"
        f'      Stored now: <strong class="theirs">{stored or "(empty)"}</strong>.\n'
        f'      You typed: <strong class="mine">{typed or "(empty)"}</strong>.\n'
        "    </p>\n"
        '    <button type="submit">Keep mine</button>\n'
        '    <button type="button" class="secondary" data-take-theirs\n'
        f'            hx-get="{take_theirs}"\n'
        '            hx-target="closest tr" hx-swap="outerHTML">Take theirs</button>\n'
        "  </form>\n"
        "</td>"
    )


def _editing_cell(
    table: Table, item: Any, editing: Mapping[str, Any], urls: RowUrls
) -> str:
    """The cell `editing` names, as its editor or its conflict choice."""
    field = table.resource.field(editing["field"])
    if editing["mode"] == "conflict":
        return conflict_cell(table, item, field, editing["value"], urls.row(item.id))
    return editor_cell(table, item, field, editing["value"], editing.get("error"))


def editor_templates(table: Table, nested: bool = False) -> Markup:
    """One `<template>` editor per inline-editable column, for app.js to clone."""
    out = [f"<template data-none>{_NONE}</template>"]
    for field in table.fields(nested):
        if table.editable(field.name):
            out.append(
                f'<template data-editor="{field.name}">{editor_form(field)}</template>'
            )
    return Markup("".join(out))


# ---------------------------------------------------------------- the change log


def change_rows(entries: Iterable[Any]) -> Markup:
    """The Changes page's body: one <tr> a field of a change (views/changes.Entry).

    Not a grid (no editing, no keys): each row links to its row's history.
    """
    out: list[str] = []
    for entry in entries:
        change = entry.change
        at = entry.when
        table = escape(change.table_name)
        history = ""
        if change.table_name in TABLES:
            history = url_for(
                "changes.history", name=change.table_name, row_id=change.row_id
            )
        row = (
            f'<a href="{escape(history)}">{change.row_id}</a>'
            if history
            else str(change.row_id)
        )
        out.append(
            f'<tr class="change" data-change="{change.id}">'
            f'<td><time datetime="{at.isoformat()}">'
            f"{at:%Y-%m-%d %H:%M:%S} UTC</time></td>"
            f"<td>{escape(change.who)}</td>"
            f'<td>{table}</td><td class="num">{row}</td>'
            f"<td>{escape(entry.op)}</td>"
            f"<td>{escape(entry.field)}</td>"
            f"<td>{_value(entry.old)}</td><td>{_value(entry.new)}</td>"
            "</tr>"
        )
    return Markup("\n".join(out))


def _value(text: str | None) -> str:
    """A logged value as its cell shows it; the none mark when it had none."""
    return _NONE if text is None or text == "" else str(escape(text))
