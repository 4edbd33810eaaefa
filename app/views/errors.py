"""Map the service's typed errors and HTTP errors to pages or fragments."""

from __future__ import annotations

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.datastructures import Headers
from werkzeug.exceptions import (
    HTTPException,
    InternalServerError,
    RequestEntityTooLarge,
    SecurityError,
)

from app.crud import NotFound, QueryError
from app.htmx import is_htmx
from app.security import SIGN_IN, request_id, too_large_message

# Headers an HTTP error carries that the client needs (405 Allow, 429 Retry-After).
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def _render(
    status: int,
    title: str,
    message: str,
    headers: Headers | None = None,
    reason: str = "",
) -> tuple[str, int, Headers]:
    """Render an error as a full page, or as a message fragment for htmx.

    `reason` names a refusal app.js can act on ("csrf": fetch a fresh token and
    retry; "sign-in": offer to sign in and retry), in the fragment's data-reason.
    """
    template = "partials/error_message.html" if is_htmx(request) else "error.html"
    body = render_template(
        template, status=status, title=title, message=message, reason=reason
    )
    return body, status, headers or Headers()


def _kept(exc: HTTPException) -> Headers:
    """The headers of an HTTP error worth passing on."""
    kept = Headers()
    for name, value in exc.get_headers():
        if name in KEPT_HEADERS:
            kept.add(name, value)
    return kept


def init_app(app: Flask) -> None:
    """Register the error handlers."""

    @app.errorhandler(QueryError)
    def bad_query(exc: QueryError) -> tuple[str, int, Headers]:
        """A bad sort key or number in the URL: 400 with the reason."""
        return _render(400, "Bad request", exc.message)

    @app.errorhandler(NotFound)
    def not_found(exc: NotFound) -> tuple[str, int, Headers]:
        """A row that does not exist: 404."""
        return _render(404, "Not found", str(exc))

    @app.errorhandler(SecurityError)
    def untrusted_host(exc: SecurityError) -> tuple[str, int, dict[str, str]]:
        """A Host this server does not serve (TRUSTED_HOSTS): 400, and nothing else.

        Plain text: with no trusted host there are no URLs to build, so no page.
        """
        message = "Bad request: this server does not answer to that host name.\n"
        return message, 400, {"Content-Type": "text/plain; charset=utf-8"}

    @app.errorhandler(CSRFError)
    def csrf_failed(exc: CSRFError) -> tuple[str, int, Headers]:
        """A missing, wrong or expired CSRF token: 400, nothing written."""
        return _render(
            400,
            "Request refused",
            f"{exc.description} Reload the page and try again.",
            reason="csrf",
        )

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge) -> tuple[str, int, Headers]:
        """A body over the size limit: 413."""
        limit = request.max_content_length
        message = too_large_message(limit) if limit else str(exc.description)
        return _render(413, "Request too large", message)

    @app.errorhandler(InternalServerError)
    def server_error(exc: InternalServerError) -> tuple[str, int, Headers]:
        """An unexpected failure: a generic message and the request id, no details.

        Flask has already logged the traceback (with the same request id).
        """
        return _render(
            500,
            "Something went wrong",
            "The server could not complete this request. It has been logged; "
            f"if it keeps happening, quote request id {request_id()}.",
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[str, int, Headers]:
        """Any other HTTP error, rendered for people rather than as bare text."""
        reason = "sign-in" if exc.description == SIGN_IN else ""
        return _render(
            exc.code or 500,
            exc.name,
            exc.description or exc.name,
            _kept(exc),
            reason,
        )
