"""Table views: the routes every declared table answers, as one blueprint.

`bp` is registered once per table in app.resources.TABLES, under the table's
name and URL, with the Table as a URL default (see `init_app`). So an endpoint
reads "<table>.<view>": "movies.update" is `def update` below, serving
PATCH /movies/<id>; `url_for` needs no table argument; every view receives its
`table`. Views stay thin: parse the request, call the CRUD service, render a
page or a partial.

The view model of a list is app/views/listing.py; child lists and the figures
a write changes elsewhere are app/views/nested.py; rows and cells are drawn by
app/views/rows.py; submitted forms are read by app/views/forms.py.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.wrappers import Response as FlaskResponse
from werkzeug.routing import BaseConverter
from werkzeug.routing import ValidationError as NoRoute
from werkzeug.wrappers import Response

from app.crud import Conflict, CrudService, NotFound, ValidationError
from app.htmx import is_htmx, is_partial, push_url, retarget, trigger
from app.resources import TABLES
from app.security import local_path
from app.ui import Table
from app.views import forms, listing
from app.views.common import service
from app.views.nested import child_list, figures, parent_id, rows_id
from app.views.owners import current_owner

bp = Blueprint("table", __name__)


class ChildConverter(BaseConverter):
    """A table listed under another's rows, by name (`/movies/7/ratings`).

    Views receive its Table; a name that is no nested table matches no route.
    """

    regex = "[a-z_]+"

    def to_python(self, value: str) -> Table:
        """The nested table called `value`."""
        table = TABLES.get(value)
        if table is None or table.nesting is None:
            raise NoRoute()
        return table

    def to_url(self, value: Table | str) -> str:
        """A table's URL segment: its name."""
        return value.name if isinstance(value, Table) else value


@bp.url_value_preprocessor
def declared_children_only(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """404 a nested table listed under a table it is not nested in.

    Before the write gate and the CSRF check, as when no route matched.
    """
    found = values or {}
    if "child" in found and found["child"].name not in found["table"].children:
        abort(404)


# ---------------------------------------------------------------- the list


@bp.get("")
def index(table: Table) -> Response:
    """Show the table (full page, or the table fragment for htmx)."""
    return list_page(table)


def list_page(
    table: Table,
    status: int = 200,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    duplicate: Mapping[str, str] | None = None,
) -> Response:
    """The table page or its region; the add form refilled if given `values`.

    A page past the end is the last page: a page request is redirected to it,
    a fragment pushes its URL. Values the filter form sends that cannot be
    applied are left out of the view and shown next to their fields.
    """
    partial_only = is_partial(request)
    from_form = partial_only and trigger(request) == f"{table.singular}-filter"
    shown = listing.fetch(table, table_service(table), request.args, from_form)
    if shown.clamped and not partial_only and request.method == "GET":
        return redirect(shown.url(), 302)
    response = render(
        table,
        "partials/table_region.html" if partial_only else "table.html",
        status,
        listing=shown,
        page=shown.page,
        add_form=add_form(table) if table.add_form else None,
        add_values=values or {},
        add_errors=errors or {},
        add_duplicate=duplicate,
        filter_messages=from_form,
    )
    if partial_only:
        # The canonical URL of the view shown (the page it was clamped to,
        # without the values left out), so reload, back and shared links show it.
        push_url(response, shown.url())
    return response


# ---------------------------------------------------------------- one row


@bp.get("/<int:row_id>/row")
def row(table: Table, row_id: int) -> Response:
    """Render one row for display (to cancel an edit or take theirs)."""
    svc = table_service(table)
    return render(
        table,
        "partials/table_row.html",
        **row_context(svc, svc.get(row_id), is_nested(table)),
    )


@bp.patch("/<int:row_id>")
def update(table: Table, row_id: int) -> Response:
    """Save the changed cell: 200 the row, 422 the editor, 409 the conflict."""
    svc = table_service(table)
    nested = is_nested(table)
    version = forms.version(request.form.get("version"))
    data = forms.changes(request.form)
    shown = [name for name in data if table.editable(name)]
    try:
        saved = svc.update(row_id, data, version, forms.originals(request.form))
    except NotFound:
        raise gone(table, data) from None
    except ValidationError as exc:
        return refused_cell(table, svc, row_id, data, shown, exc.errors, nested)
    except Conflict as exc:
        current = exc.current if exc.current is not None else svc.get(row_id)
        if not shown:
            return error_toast(table, str(exc), 409)
        editing = {"field": shown[0], "mode": "conflict", "value": data[shown[0]]}
        return render(
            table,
            "partials/table_row.html",
            409,
            editing=editing,
            **row_context(svc, current, nested),
        )
    return render(
        table,
        "partials/table_row.html",
        derived=figures(table, True, parent_id(table, saved)) if nested else None,
        **row_context(svc, saved, nested),
    )


def refused_cell(
    table: Table,
    svc: CrudService,
    row_id: int,
    data: Mapping[str, str],
    shown: list[str],
    errors: Mapping[str, str],
    nested: bool,
) -> Response:
    """A refused cell save: the row with the editor holding what was typed (422).

    A refusal no shown cell can hold (a field not in the table) is a toast.
    """
    field = next((n for n in shown if n in errors), shown[0] if shown else None)
    if field is None:
        return error_toast(table, " ".join(errors.values()), 422)
    editing = {
        "field": field,
        "mode": "edit",
        "value": data[field],
        "error": errors.get(field) or " ".join(errors.values()),
    }
    return render(
        table,
        "partials/table_row.html",
        422,
        editing=editing,
        **row_context(svc, svc.get(row_id), nested),
    )


# ---------------------------------------------------------------- create


@bp.post("")
def create(table: Table) -> Response:
    """Add a row from the add form (htmx: new row on top; else 303 back).

    An exact copy of a row (by the declaration's match_on) is added only once
    confirmed: the first submit answers 422 asking "add another?".
    """
    svc = table_service(table)
    data = forms.changes(request.form)
    errors: Mapping[str, str] = {}
    duplicate = None
    try:
        confirmed = request.form.get(forms.CONFIRM_DUPLICATE)
        duplicate = forms.duplicate(table, svc, data, confirmed)
        added = None if duplicate else svc.create(data)
    except ValidationError as exc:
        errors, added = exc.errors, None
    refill = {"values": request.form, "errors": errors, "duplicate": duplicate}
    if added is None and not is_htmx(request):
        return list_page(table, 422, **refill)
    if added is None:
        form = add_form(table)
        return render(table, "partials/table_add_form.html", 422, form=form, **refill)
    if not is_htmx(request):
        flash_toast(table, f"Added “{table.title(added)}”.")
        return redirect(back(table), 303)
    return render(
        table,
        "partials/table_created.html",
        form=add_form(table),
        rows_target=f"#{rows_id(table)}",
        derived=figures(table, False, None),
        **row_context(svc, added, False),
    )


# ---------------------------------------------------------------- children


@bp.get("/<int:row_id>/<child:child>")
def children(table: Table, row_id: int, child: Table) -> Response:
    """Render the row listing a parent's children (a movie's ratings).

    A row is no page: opened as one (a copied link, a new tab) it sends the
    reader to the children's own table, filtered to this parent.
    """
    parent = table_service(table).get(row_id)
    listed = child_list(child, parent.id)
    if not is_partial(request):
        return redirect(listed["all_url"], 303)
    return render(
        child,
        "partials/table_children.html",
        parent_table=table,
        parent=parent,
        **listed,
    )


@bp.post("/<int:row_id>/<child:child>")
def create_child(table: Table, row_id: int, child: Table) -> Response:
    """Add a child row under a parent (a rating under a movie)."""
    parent = table_service(table).get(row_id)
    assert child.nesting is not None
    svc = table_service(child)
    listed = child_list(child, parent.id)
    data = {**forms.changes(request.form), child.nesting.foreign_key: str(parent.id)}
    try:
        added = svc.create(data)
    except ValidationError as exc:
        if not is_htmx(request):
            abort(422, description=" ".join(exc.errors.values()))
        return render(
            child,
            "partials/table_add_form.html",
            422,
            form=listed["form"],
            values=request.form,
            errors=exc.errors,
        )
    if not is_htmx(request):
        return redirect(listed["all_url"], 303)
    return render(
        child,
        "partials/table_created.html",
        form=listed["form"],
        rows_target=f"#{listed['rows_id']}",
        derived=figures(child, True, parent.id),
        **row_context(svc, added, True),
    )


# ---------------------------------------------------------------- delete, undo


@bp.delete("/<int:row_id>")
def delete(table: Table, row_id: int) -> Response:
    """Delete a row (htmx): empty body, a toast with Undo, figures updated."""
    try:
        token, snapshot = table_service(table).trash(row_id, owner=current_owner())
    except NotFound:
        raise gone(table) from None
    deleted = SimpleNamespace(**snapshot["row"])
    return render(
        table,
        "partials/table_deleted.html",
        toast=toast(table, f"Deleted “{table.title(deleted)}”.", token),
        derived=figures(table, is_nested(table), parent_id(table, snapshot["row"])),
    )


@bp.post("/<int:row_id>/delete")
def delete_form(table: Table, row_id: int) -> Response:
    """Delete a row from a plain form, then go back (303) with an Undo offer."""
    token, snapshot = table_service(table).trash(row_id, owner=current_owner())
    deleted = SimpleNamespace(**snapshot["row"])
    flash_toast(table, f"Deleted “{table.title(deleted)}”.", token)
    return redirect(back(table), 303)


@bp.post("/undo")
def undo(table: Table) -> Response:
    """Bring a deleted row back with its children and ids (its deleter only)."""
    svc = table_service(table)
    try:
        restored = svc.undo(request.form.get("token", ""), owner=current_owner())
    except (Conflict, ValidationError) as exc:
        # Already back, or what it belonged to has gone meanwhile.
        text = f"Could not undo: {exc}"
        if isinstance(exc, ValidationError):
            text = "Could not undo: " + " ".join(exc.errors.values())
        if not is_htmx(request):
            flash_toast(table, text)
            return redirect(back(table), 303)
        return render(
            table,
            "partials/table_toast.html",
            409,
            toast=toast(table, text),
            error=True,
        )
    text = f"Restored “{table.title(restored)}”."
    if not is_htmx(request):
        flash_toast(table, text)
        return redirect(back(table), 303)
    nested = is_nested(table)
    parent = parent_id(table, restored)
    return render(
        table,
        "partials/table_restored.html",
        toast=toast(table, text),
        rows_target=f"#{rows_id(table, parent if nested else None)}",
        derived=figures(table, nested, parent),
        **row_context(svc, restored, nested),
    )


# ---------------------------------------------------------------- no-JS edit


@bp.get("/<int:row_id>/edit")
def edit(table: Table, row_id: int) -> Response:
    """The per-row edit form, for browsers without JavaScript."""
    shown = table_service(table).get(row_id)
    return edit_page(table, shown, shown.version, forms.values_of(table, shown), {})


@bp.post("/<int:row_id>")
def save(table: Table, row_id: int) -> Response:
    """Save the edit form: 303 back, 422 with messages, 409 with both values."""
    svc = table_service(table)
    version = forms.version(request.form.get("version"))
    data = {f.name: request.form.get(f.name, "") for f in forms.edit_fields(table)}
    try:
        saved = svc.update(row_id, data, version, forms.originals(request.form))
    except ValidationError as exc:
        return edit_page(table, svc.get(row_id), version, data, exc.errors, 422)
    except Conflict as exc:
        current = exc.current if exc.current is not None else svc.get(row_id)
        # The form keeps what was typed; its version is now the stored one,
        # so saving again is a deliberate "keep mine".
        stored = forms.values_of(table, current)
        return edit_page(table, current, current.version, data, {}, 409, stored)
    flash_toast(table, f"Saved “{table.title(saved)}”.")
    return redirect(back(table), 303)


def edit_page(
    table: Table,
    shown: Any,
    version: int,
    values: Mapping[str, str],
    errors: Mapping[str, str],
    status: int = 200,
    stored: Mapping[str, str] | None = None,
) -> Response:
    """Render the edit page (with errors or a conflict notice if any)."""
    return render(
        table,
        "edit.html",
        status,
        row=shown,
        version=version,
        fields=forms.edit_fields(table),
        values=values,
        errors=errors,
        stored=stored,
        back=back(table),
    )


# ---------------------------------------------------------------- helpers


def table_service(table: Table) -> CrudService:
    """The CRUD service of a table, for this request."""
    return service(table.name)


def is_nested(table: Table) -> bool:
    """True when the request concerns a row shown under its parent's row."""
    return table.nesting is not None and request.values.get("nested") == "1"


def render(
    table: Table, template: str, status: int = 200, **context: Any
) -> FlaskResponse:
    """Render a template with the table in its context."""
    body = render_template(template, table=table, resource=table.resource, **context)
    return make_response(body, status)


def row_context(svc: CrudService, shown: Any, nested: bool) -> dict[str, Any]:
    """What a row needs to render: itself, its summaries, where it is shown."""
    return {
        "row": shown,
        "summaries": {} if nested else svc.reader.summaries([shown.id]),
        "nested": nested,
    }


def add_form(table: Table) -> dict[str, Any]:
    """The add form above the table."""
    action = url_for(f"{table.name}.create")
    return forms.add_form(table, f"{table.singular}-add", action)


def back(table: Table) -> str:
    """Where a no-JavaScript form returns to: a local `next`, else the list."""
    return local_path(request.values.get("next")) or url_for(f"{table.name}.index")


def toast(table: Table, text: str, undo_token: str | None = None) -> dict[str, Any]:
    """A toast message, optionally with an Undo button for a delete."""
    message: dict[str, Any] = {"id": secrets.token_hex(4), "text": text}
    if undo_token:
        message["undo"] = {
            "url": url_for(f"{table.name}.undo"),
            "token": undo_token,
            "nested": is_nested(table),
        }
    return message


def flash_toast(table: Table, text: str, undo_token: str | None = None) -> None:
    """Show a toast on the page a no-JavaScript form is sent back to."""
    # flash() is typed for strings; base.html draws a mapping as a toast.
    flash(toast(table, text, undo_token))  # type: ignore[arg-type]


def error_toast(table: Table, message: str, status: int) -> FlaskResponse:
    """A write failed for a reason no cell can show: say so in a toast."""
    response = render(
        table,
        "partials/table_toast.html",
        status,
        toast=toast(table, message),
        error=True,
    )
    return retarget(response, "#toasts", "beforeend")


def gone(table: Table, typed: Mapping[str, str] | None = None) -> NotFound:
    """The error for a row someone else deleted, quoting what was typed."""
    text = f"This {table.singular} was deleted by someone else."
    if typed:
        text += " You typed: " + ", ".join(f"“{v}”" for v in typed.values()) + "."
    return NotFound(text)


def init_app(app: Flask) -> None:
    """Register the table blueprint once per declared table, under its name."""
    app.url_map.converters["child"] = ChildConverter
    for table in TABLES.values():
        app.register_blueprint(
            bp,
            name=table.name,
            url_prefix=f"/{table.name}",
            url_defaults={"table": table},
        )
