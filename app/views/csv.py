"""CSV downloads of any table view: a table, or one row's children."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from flask import Blueprint, Response, abort, request, stream_with_context
from werkzeug.datastructures import MultiDict
from werkzeug.routing import BaseConverter
from werkzeug.routing import ValidationError as NoRoute

from app import csvfile
from app.crud import CrudService, ListQuery
from app.resources import RESOURCES, TABLES
from app.ui import Table
from app.views.common import service

# The import pages (app/views/imports.py) add their routes to this blueprint,
# so every CSV endpoint keeps its name: csv_io.export_csv, csv_io.upload...
bp = Blueprint("csv_io", __name__)


def _csv_response(svc: CrudService, query: ListQuery, stem: str) -> Response:
    """Stream the CSV of a query as a download named after `stem` and today."""
    chunks = csvfile.export_chunks(svc, query, bom=request.args.get("bom") == "1")
    return csv_download(chunks, stem)


def csv_download(chunks: Iterator[bytes], stem: str) -> Response:
    """Stream CSV chunks (primed: early failures are plain errors) as a download."""
    filename = csvfile.export_filename(stem, date.today())
    return Response(
        stream_with_context(csvfile.primed(chunks)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


class TableName(BaseConverter):
    """A declared table's name (`/movies.csv`), looked up when a URL is matched.

    So a table declared after this module is imported (app.resources.register)
    has its download too; any other name matches no route.
    """

    regex = "[a-z_]+"

    def to_python(self, value: str) -> str:
        """The name, if a table of that name is declared."""
        if value not in RESOURCES:
            raise NoRoute()
        return value


@bp.get("/<table_name:name>.csv")
def export_csv(name: str) -> Response:
    """Download exactly the rows and order of /<name> with the same query string."""
    svc = service(name)
    return _csv_response(svc, svc.parse_query(request.args), name)


@bp.get("/<table_name:name>/<int:row_id>/<child:child>.csv")
def export_children(name: str, row_id: int, child: Table) -> Response:
    """Download one row's children, e.g. a movie's ratings (404 if no such row)."""
    table = TABLES[name]
    if child.name not in table.children or child.nesting is None:
        abort(404)
    service(name).get(row_id)
    svc = service(child.name)
    args = MultiDict(request.args)
    args[child.nesting.foreign_key] = str(row_id)  # the path wins over the query
    stem = f"{table.singular}-{row_id}-{child.name}"
    return _csv_response(svc, svc.parse_query(args), stem)
