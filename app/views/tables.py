"""Generic table views: one set of routes and templates serves every table shown.

A Table says how a declared resource looks in the browser (its columns, how a row
is named, which filters get an input, where its rows also appear). TableViews turns
one into a blueprint: the list page and its fragment, cell editors, row saves,
creates, deletes with undo, and the no-JavaScript forms. Views stay thin: parse the
request, call the CRUD service, render a page or a partial.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
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
from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Response

from app.crud import (
    MAX_SORT_KEYS,
    Conflict,
    CrudService,
    Field,
    Filter,
    ListQuery,
    NotFound,
    Number,
    Page,
    QueryError,
    Resource,
    SortKey,
    Summary,
    ValidationError,
)
from app.htmx import current_url, is_htmx, is_partial, push_url, retarget, trigger
from app.resources import MOVIES, RATINGS
from app.security import local_path
from app.views.common import service
from app.views.owners import current_owner
from app.views.rows import (
    editor_cell,
    editor_templates,
    format_cell,
    input_mode,
    is_numeric,
    summary_value,
    table_rows,
)

# Form keys `original.<field>`: the value an editor started from (field-level merge).
ORIGINAL = "original."

# Form key of the add form's "Add another": the match values it confirms (issue 13).
CONFIRM_DUPLICATE = "confirm_duplicate"

# ---------------------------------------------------------------- declarations


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


MOVIE_TABLE = Table(
    MOVIES,
    columns=("name", "director", "rating"),
    title=lambda movie: movie.name,
    filters=("min_rating",),
    search_label="Search movies",
    add_form=True,
    children=("ratings",),
)

RATING_TABLE = Table(
    RATINGS,
    columns=("movie_name", "rating", "author"),
    title=lambda rating: f"rating {rating.rating} by {rating.author}",
    filters=("author", "movie", "min_rating"),
    nesting=Nesting("movies", "movie_id", hidden=("movie_name",)),
)

TABLES: dict[str, Table] = {t.name: t for t in (MOVIE_TABLE, RATING_TABLE)}


# ---------------------------------------------------------------- list state


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


# ---------------------------------------------------------------- views


class TableViews:
    """The routes of one table; endpoints read "<table>.<action>"."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def blueprint(self) -> Blueprint:
        """Build the table's blueprint with every route."""
        bp = Blueprint(self.table.name, __name__, url_prefix=f"/{self.table.name}")
        rules: list[tuple[str, str, Callable[..., Any], str, dict[str, str]]] = [
            ("", "index", self.index, "GET", {}),
            ("", "create", self.create, "POST", {}),
            ("/undo", "undo", self.undo, "POST", {}),
            ("/<int:row_id>", "update", self.update, "PATCH", {}),
            ("/<int:row_id>", "save", self.save, "POST", {}),
            ("/<int:row_id>", "delete", self.delete, "DELETE", {}),
            ("/<int:row_id>/delete", "delete_form", self.delete_form, "POST", {}),
            ("/<int:row_id>/edit", "edit", self.edit, "GET", {}),
            ("/<int:row_id>/row", "row", self.row, "GET", {}),
        ]
        for child in self.table.children:
            rule = f"/<int:row_id>/{child}"
            create = f"create_{TABLES[child].singular}"
            rules.append((rule, child, self.children, "GET", {"child": child}))
            rules.append((rule, create, self.create_child, "POST", {"child": child}))
        for rule, endpoint, view, method, defaults in rules:
            options: dict[str, Any] = {"defaults": defaults} if defaults else {}
            bp.add_url_rule(rule, endpoint, view, methods=[method], **options)
        return bp

    # ------------------------------------------------------------ helpers

    def service(self) -> CrudService:
        """The CRUD service of this table."""
        return service(self.table.name)

    def nested(self) -> bool:
        """True when the request concerns a row shown under its parent's row."""
        return self.table.nesting is not None and request.values.get("nested") == "1"

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        """Render a template with the table in its context."""
        body = render_template(
            template, table=self.table, resource=self.table.resource, **context
        )
        return make_response(body, status)

    def listing(
        self, svc: CrudService, args: Mapping[str, str], lenient: bool = False
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
        return Listing(self.table, page, svc.page_size, rejected, clamped)

    def back(self) -> str:
        """Where a no-JavaScript form returns to: a local `next`, else the list."""
        return local_path(request.values.get("next")) or url_for(
            f"{self.table.name}.index"
        )

    def row_context(self, svc: CrudService, row: Any, nested: bool) -> dict[str, Any]:
        """What a row needs to render: itself, its summaries, where it is shown."""
        return {
            "row": row,
            "summaries": {} if nested else svc.summaries([row.id]),
            "nested": nested,
        }

    def derived(self, nested: bool, parent_id: int | None) -> dict[str, Any]:
        """Figures a write changes elsewhere on the page, for out-of-band swaps.

        Under a parent row: the parent's summary (a movie's "7.4 · 12"). In the
        table itself: the row count, for the filter the page is showing.
        """
        nesting = self.table.nesting
        if nested and nesting is not None and parent_id is not None:
            parent = TABLES[nesting.parent]
            summary = self.parent_summary(parent, nesting)
            stats = service(parent.name).summaries([parent_id])[summary.name]
            return {
                "summary": {
                    "table": parent,
                    "row_id": parent_id,
                    "name": summary.name,
                    "stats": stats[parent_id],
                }
            }
        svc = self.service()
        query = self.current_query(svc)
        grand_total = svc.count()
        total = svc.count(query) if query != ListQuery() else grand_total
        return {
            "count": {
                "table": self.table,
                "total": total,
                "grand_total": grand_total,
            }
        }

    def parent_summary(self, parent: Table, nesting: Nesting) -> Summary:
        """The parent's summary computed over this table."""
        for summary in parent.resource.summaries:
            if (
                summary.child is self.table.resource.model
                and summary.foreign_key == nesting.foreign_key
            ):
                return summary
        raise LookupError(f"{parent.name} has no summary over {self.table.name}")

    def current_query(self, svc: CrudService) -> ListQuery:
        """The list view of the page the request came from (for its row count)."""
        path, args = current_url(request)
        if path != url_for(f"{self.table.name}.index"):
            return ListQuery()
        try:
            query = svc.parse_query(args)
        except QueryError:
            return ListQuery()
        # Only the filter matters for a count.
        return ListQuery(q=query.q, filters=query.filters)

    def field_or_404(self, name: str) -> Field:
        """The inline-editable column called `name`, or 404."""
        if not self.table.editable(name):
            abort(404, description=f"{self.table.caption} have no editable {name!r}.")
        return self.table.resource.field(name)

    @staticmethod
    def version(raw: str | None) -> int:
        """Parse the row version a form or link carries (400 if missing or bad)."""
        if not raw:
            raise BadRequest("The row version is missing; reload the page.")
        if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
            raise BadRequest("The row version must be a whole number.")
        return int(raw)

    @staticmethod
    def changes(form: Mapping[str, str]) -> dict[str, str]:
        """The submitted field values, without the bookkeeping inputs."""
        skip = {"version", "csrf_token", "next", "nested", CONFIRM_DUPLICATE}
        return {
            k: v
            for k, v in form.items()
            if k not in skip and not k.startswith(ORIGINAL)
        }

    @staticmethod
    def originals(form: Mapping[str, str]) -> dict[str, str] | None:
        """The values the editor started from (`original.<field>`), if sent."""
        found = {
            k.removeprefix(ORIGINAL): v
            for k, v in form.items()
            if k.startswith(ORIGINAL)
        }
        return found or None

    def gone(self, typed: Mapping[str, str] | None = None) -> NotFound:
        """The error for a row someone else deleted, quoting what was typed."""
        text = f"This {self.table.singular} was deleted by someone else."
        if typed:
            text += " You typed: " + ", ".join(f"“{v}”" for v in typed.values())
            text += "."
        return NotFound(text)

    def toast(self, text: str, undo_token: str | None = None) -> dict[str, Any]:
        """A toast message, optionally with an Undo button for a delete."""
        toast: dict[str, Any] = {"id": secrets.token_hex(4), "text": text}
        if undo_token:
            toast["undo"] = {
                "url": url_for(f"{self.table.name}.undo"),
                "token": undo_token,
                "nested": self.nested(),
            }
        return toast

    # ------------------------------------------------------------ the list

    def index(self, status: int = 200, **form: Any) -> Response:
        """Show the table (full page, or the table fragment for htmx).

        A page past the end is the last page: a page request is redirected to it,
        a fragment pushes its URL. Values the filter form sends that cannot be
        applied are left out of the view and shown next to their fields.
        """
        svc = self.service()
        partial_only = is_partial(request)
        from_form = partial_only and trigger(request) == f"{self.table.singular}-filter"
        listing = self.listing(svc, request.args, lenient=from_form)
        if listing.clamped and not partial_only and request.method == "GET":
            return redirect(listing.url(), 302)
        template = (
            f"partials/{self.table.singular}_table.html"
            if partial_only
            else f"{self.table.name}.html"
        )
        response = self.render(
            template,
            status,
            listing=listing,
            page=listing.page,
            add_form=self.add_form(
                f"{self.table.singular}-add", url_for(f"{self.table.name}.create")
            )
            if self.table.add_form
            else None,
            add_values=form.get("values", {}),
            add_errors=form.get("errors", {}),
            add_duplicate=form.get("duplicate"),
            filter_messages=from_form,
        )
        if partial_only:
            # The canonical URL of the view shown (the page it was clamped to,
            # without the values left out), so reload, back and shared links show it.
            push_url(response, listing.url())
        return response

    # ------------------------------------------------------------ one row

    def row(self, row_id: int) -> Response:
        """Render one row for display (to cancel an edit or take theirs)."""
        svc = self.service()
        return self.render(
            "partials/table_row.html",
            **self.row_context(svc, svc.get(row_id), self.nested()),
        )

    def update(self, row_id: int) -> Response:
        """Save the changed cell: 200 the row, 422 the editor, 409 the conflict."""
        svc = self.service()
        nested = self.nested()
        version = self.version(request.form.get("version"))
        data = self.changes(request.form)
        shown = [name for name in data if self.table.editable(name)]
        try:
            row = svc.update(row_id, data, version, self.originals(request.form))
        except NotFound:
            raise self.gone(data) from None
        except ValidationError as exc:
            field = next(
                (n for n in shown if n in exc.errors), shown[0] if shown else None
            )
            if field is None:
                return self.error_toast(" ".join(exc.errors.values()), 422)
            editing = {
                "field": field,
                "mode": "edit",
                "value": data[field],
                "error": exc.errors.get(field) or " ".join(exc.errors.values()),
            }
            return self.render(
                "partials/table_row.html",
                422,
                editing=editing,
                **self.row_context(svc, svc.get(row_id), nested),
            )
        except Conflict as exc:
            current = exc.current if exc.current is not None else svc.get(row_id)
            if not shown:
                return self.error_toast(str(exc), 409)
            editing = {"field": shown[0], "mode": "conflict", "value": data[shown[0]]}
            return self.render(
                "partials/table_row.html",
                409,
                editing=editing,
                **self.row_context(svc, current, nested),
            )
        parent_id = self.parent_id(row)
        return self.render(
            "partials/table_row.html",
            derived=self.derived(True, parent_id) if nested else None,
            **self.row_context(svc, row, nested),
        )

    def parent_id(self, row: Any) -> int | None:
        """The id of the row's parent (a rating's movie), if the table has one."""
        nesting = self.table.nesting
        if nesting is None:
            return None
        if isinstance(row, Mapping):
            return row.get(nesting.foreign_key)
        return getattr(row, nesting.foreign_key)

    def error_toast(self, message: str, status: int) -> Response:
        """A write failed for a reason no cell can show: say so in a toast."""
        response = self.render(
            "partials/table_toast.html", status, toast=self.toast(message), error=True
        )
        return retarget(response, "#toasts", "beforeend")

    # ------------------------------------------------------------ create

    def create(self) -> Response:
        """Add a row from the add form (htmx: new row on top; else 303 back).

        An exact copy of a row (by the declaration's match_on) is added only once
        confirmed: the first submit answers 422 asking "add another?".
        """
        svc = self.service()
        form_id = f"{self.table.singular}-add"
        data = self.changes(request.form)
        errors: dict[str, str] = {}
        duplicate = None
        try:
            duplicate = self.duplicate(svc, data)
            row = None if duplicate else svc.create(data)
        except ValidationError as exc:
            errors, row = exc.errors, None
        if row is None:
            if not is_htmx(request):
                return self.index(
                    422, values=request.form, errors=errors, duplicate=duplicate
                )
            return self.render(
                "partials/table_add_form.html",
                422,
                form=self.add_form(form_id, url_for(f"{self.table.name}.create")),
                values=request.form,
                errors=errors,
                duplicate=duplicate,
            )
        if not is_htmx(request):
            flash(self.toast(f"Added “{self.table.title(row)}”."))
            return redirect(self.back(), 303)
        return self.render(
            "partials/table_created.html",
            form=self.add_form(form_id, url_for(f"{self.table.name}.create")),
            rows_target=f"#{self.table.singular}-rows",
            derived=self.derived(False, None),
            **self.row_context(svc, row, False),
        )

    def duplicate(
        self, svc: CrudService, data: Mapping[str, str]
    ) -> dict[str, str] | None:
        """The question to ask before adding an exact copy of a row, or None.

        Rows are matched on the declaration's match_on fields, as the CSV import
        matches rows without an id. A confirmation names the values it confirms,
        so changing them to another existing row's asks again.
        """
        names = self.table.resource.match_on
        if not names:
            return None
        values = svc.validate(data, creating=True)
        key = tuple(values.get(name) for name in names)
        token = hashlib.sha256(json.dumps(key, default=str).encode()).hexdigest()[:16]
        if request.form.get(CONFIRM_DUPLICATE) == token:
            return None
        if not svc.ids_matching(names, [key]):
            return None
        labels = " and ".join(self.table.resource.field(n).label.lower() for n in names)
        return {
            "message": f"A {self.table.singular} with this {labels} exists: "
            "add another?",
            "token": token,
        }

    def add_form(
        self, form_id: str, action: str, nested: bool = False
    ) -> dict[str, Any]:
        """Describe an add form: its id, where it posts, the fields it has."""
        return {
            "id": form_id,
            "action": action,
            "fields": self.table.create_fields(nested),
            "label": f"Add {self.table.singular}",
        }

    # ------------------------------------------------------------ children

    def children(self, row_id: int, child: str) -> Response:
        """Render the row listing a parent's children (a movie's ratings)."""
        parent = self.service().get(row_id)
        views = TableViews(TABLES[child])
        return views.render(
            f"partials/{self.table.singular}_{child}.html",
            parent_table=self.table,
            parent=parent,
            **views.child_list(parent.id),
        )

    def child_list(self, parent_id: int) -> dict[str, Any]:
        """The newest rows under one parent, how many there are, and the add form."""
        nesting = self.table.nesting
        assert nesting is not None, f"{self.table.name} is not nested"
        svc = self.service()
        param = next(
            f.param
            for f in self.table.resource.filters
            if f.field == nesting.foreign_key and f.op == "eq"
        )
        query = ListQuery(filters={param: parent_id}, per_page=nesting.limit)
        parent_table = TABLES[nesting.parent]
        return {
            "rows": svc.items(query),
            "total": svc.count(query),
            "all_url": url_for(f"{self.table.name}.index", **{param: parent_id}),
            "form": self.add_form(
                f"{parent_table.singular}-{parent_id}-{self.table.singular}-add",
                url_for(
                    f"{parent_table.name}.create_{self.table.singular}",
                    row_id=parent_id,
                ),
                nested=True,
            ),
            "rows_id": f"{parent_table.singular}-{parent_id}-{self.table.name}-rows",
        }

    def create_child(self, row_id: int, child: str) -> Response:
        """Add a child row under a parent (a rating under a movie)."""
        parent = self.service().get(row_id)
        views = TableViews(TABLES[child])
        nesting = views.table.nesting
        assert nesting is not None
        svc = views.service()
        listed = views.child_list(parent.id)
        data = {**views.changes(request.form), nesting.foreign_key: str(parent.id)}
        try:
            row = svc.create(data)
        except ValidationError as exc:
            if not is_htmx(request):
                abort(422, description=" ".join(exc.errors.values()))
            return views.render(
                "partials/table_add_form.html",
                422,
                form=listed["form"],
                values=request.form,
                errors=exc.errors,
            )
        if not is_htmx(request):
            return redirect(listed["all_url"], 303)
        return views.render(
            "partials/table_created.html",
            form=listed["form"],
            rows_target=f"#{listed['rows_id']}",
            derived=views.derived(True, parent.id),
            **views.row_context(svc, row, True),
        )

    # ------------------------------------------------------------ delete, undo

    def delete(self, row_id: int) -> Response:
        """Delete a row (htmx): empty body, a toast with Undo, figures updated."""
        try:
            token, snapshot = self.service().trash(row_id, owner=current_owner())
        except NotFound:
            raise self.gone() from None
        deleted = SimpleNamespace(**snapshot["row"])
        return self.render(
            "partials/table_deleted.html",
            toast=self.toast(f"Deleted “{self.table.title(deleted)}”.", token),
            derived=self.derived(self.nested(), self.parent_id(snapshot["row"])),
        )

    def delete_form(self, row_id: int) -> Response:
        """Delete a row from a plain form, then go back (303) with an Undo offer."""
        token, snapshot = self.service().trash(row_id, owner=current_owner())
        deleted = SimpleNamespace(**snapshot["row"])
        flash(self.toast(f"Deleted “{self.table.title(deleted)}”.", token))
        return redirect(self.back(), 303)

    def undo(self) -> Response:
        """Bring a deleted row back with its children and ids (its deleter only)."""
        svc = self.service()
        try:
            row = svc.undo(request.form.get("token", ""), owner=current_owner())
        except (Conflict, ValidationError) as exc:
            # Already back, or what it belonged to has gone meanwhile.
            text = f"Could not undo: {exc}"
            if isinstance(exc, ValidationError):
                text = "Could not undo: " + " ".join(exc.errors.values())
            if not is_htmx(request):
                flash(self.toast(text))
                return redirect(self.back(), 303)
            return self.render(
                "partials/table_toast.html", 409, toast=self.toast(text), error=True
            )
        text = f"Restored “{self.table.title(row)}”."
        if not is_htmx(request):
            flash(self.toast(text))
            return redirect(self.back(), 303)
        nested = self.nested()
        parent_id = self.parent_id(row)
        if nested and self.table.nesting and parent_id is not None:
            parent = TABLES[self.table.nesting.parent]
            rows_target = f"#{parent.singular}-{parent_id}-{self.table.name}-rows"
        else:
            rows_target = f"#{self.table.singular}-rows"
        return self.render(
            "partials/table_restored.html",
            toast=self.toast(text),
            rows_target=rows_target,
            derived=self.derived(nested, parent_id),
            **self.row_context(svc, row, nested),
        )

    # ------------------------------------------------------------ no-JS edit

    def edit(self, row_id: int) -> Response:
        """The per-row edit form, for browsers without JavaScript."""
        row = self.service().get(row_id)
        return self.edit_page(row, row.version, self.values_of(row), {})

    def values_of(self, row: Any) -> dict[str, str]:
        """The row's editable values as a form shows them."""
        return {
            f.name: format_input(getattr(row, f.name), f)
            for f in self.table.fields()
            if f.editable
        }

    def edit_page(
        self,
        row: Any,
        version: int,
        values: Mapping[str, str],
        errors: Mapping[str, str],
        status: int = 200,
        stored: Mapping[str, str] | None = None,
    ) -> Response:
        """Render the edit page (with errors or a conflict notice if any)."""
        return self.render(
            "edit.html",
            status,
            row=row,
            version=version,
            fields=[f for f in self.table.fields() if f.editable],
            values=values,
            errors=errors,
            stored=stored,
            back=self.back(),
        )

    def save(self, row_id: int) -> Response:
        """Save the edit form: 303 back, 422 with messages, 409 with both values."""
        svc = self.service()
        version = self.version(request.form.get("version"))
        data = {
            f.name: request.form.get(f.name, "")
            for f in self.table.fields()
            if f.editable
        }
        try:
            row = svc.update(row_id, data, version, self.originals(request.form))
        except ValidationError as exc:
            return self.edit_page(
                svc.get(row_id),
                version,
                data,
                exc.errors,
                422,
            )
        except Conflict as exc:
            current = exc.current if exc.current is not None else svc.get(row_id)
            # The form keeps what was typed; its version is now the stored one,
            # so saving again is a deliberate "keep mine".
            return self.edit_page(
                current, current.version, data, {}, 409, self.values_of(current)
            )
        flash(self.toast(f"Saved “{self.table.title(row)}”."))
        return redirect(self.back(), 303)


# ---------------------------------------------------------------- formatting


def format_input(value: Any, field: Field) -> str:
    """Put a stored value into an input as it would be typed."""
    return format_cell(value, field)


def step(field: Field | Filter) -> str:
    """The step of a number input for a field or filter."""
    if isinstance(field.kind, Number):
        return str(10**-field.kind.places)
    return "1"


def thousands(number: int) -> str:
    """1234 -> "1,234"."""
    return f"{number:,}"


def init_app(app: Flask) -> None:
    """Register the table blueprints and the template filters they use."""
    for table in TABLES.values():
        app.register_blueprint(TableViews(table).blueprint())
    app.add_template_filter(format_input, "input_value")
    app.add_template_filter(input_mode, "input_mode")
    app.add_template_filter(thousands, "thousands")
    app.add_template_filter(step, "step")
    app.add_template_test(is_numeric, "numeric")
    app.add_template_global(table_rows, "table_rows")
    app.add_template_global(summary_value, "summary_value")
    app.add_template_global(editor_cell, "editor_cell")
    app.add_template_global(editor_templates, "editor_templates")
