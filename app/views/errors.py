"""Map the service's typed errors and HTTP errors to pages or fragments."""

from __future__ import annotations

from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException

from app.crud import NotFound, QueryError
from app.htmx import is_htmx


def _render(status: int, title: str, message: str) -> tuple[str, int]:
    """Render an error as a full page, or as a message fragment for htmx."""
    template = "partials/error_message.html" if is_htmx(request) else "error.html"
    return render_template(
        template, status=status, title=title, message=message
    ), status


def init_app(app: Flask) -> None:
    """Register the error handlers."""

    @app.errorhandler(QueryError)
    def bad_query(exc: QueryError) -> tuple[str, int]:
        """A bad sort key or number in the URL: 400 with the reason."""
        return _render(400, "Bad request", exc.message)

    @app.errorhandler(NotFound)
    def not_found(exc: NotFound) -> tuple[str, int]:
        """A row that does not exist: 404."""
        return _render(404, "Not found", str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[str, int]:
        """Any other HTTP error, rendered for people rather than as bare text."""
        return _render(exc.code or 500, exc.name, exc.description or exc.name)
