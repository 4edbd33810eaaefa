"""Map the service's typed errors and HTTP errors to pages or fragments."""

from __future__ import annotations

from flask import Flask, Response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.datastructures import Headers
from werkzeug.exceptions import (
    HTTPException,
    InternalServerError,
    RequestEntityTooLarge,
    SecurityError,
)

from app.crud import NotFound, QueryError, WriteBusy
from app.db import ReadTimeout, StorageFull, db, limit_reads
from app.htmx import is_htmx
from app.security import SIGN_IN, request_id, too_large_message

# Headers an HTTP error carries that the client needs (405 Allow, 429 Retry-After).
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")

TOO_SLOW = "This view took too long to compute; narrow the search or try again."
NO_ROOM = "The server has no room left to save this change; nothing was written."
# Blueprints whose GETs are not bounded by READ_TIMEOUT_MS: a CSV download streams
# a whole table, and the import pages check every row of a file.
UNBOUNDED_BLUEPRINTS = frozenset({"csv_io"})


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


def _bound_reads(app: Flask) -> None:
    """Bound the database reads of a page or fragment by READ_TIMEOUT_MS (issue 11).

    Only GET and HEAD: a write must not stop half way, and the body of a streamed
    download is sent after after_request, by which time no bound is left.
    """

    @app.before_request
    def bound() -> None:
        """Arm the read limit for this request, or clear one a thread kept."""
        reading = request.method in ("GET", "HEAD")
        bounded = reading and request.blueprint not in UNBOUNDED_BLUEPRINTS
        limit_reads(app.config.get("READ_TIMEOUT_MS") if bounded else None)

    @app.after_request
    def unbound(response: Response) -> Response:
        """Disarm it once the view has answered."""
        limit_reads(None)
        return response

    @app.teardown_request
    def unbound_always(_exc: BaseException | None) -> None:
        """Disarm it even when no response was made."""
        limit_reads(None)


def init_app(app: Flask) -> None:
    """Register the error handlers (and the read limit whose 503 they give)."""
    _bound_reads(app)

    @app.errorhandler(QueryError)
    def bad_query(exc: QueryError) -> tuple[str, int, Headers]:
        """A bad sort key or number in the URL: 400 with the reason."""
        return _render(400, "Bad request", exc.message)

    @app.errorhandler(NotFound)
    def not_found(exc: NotFound) -> tuple[str, int, Headers]:
        """A row that does not exist: 404."""
        return _render(404, "Not found", str(exc))

    @app.errorhandler(WriteBusy)
    def write_busy(exc: WriteBusy) -> tuple[str, int, Headers]:
        """An import holds the database: 503 and when to retry, nothing written."""
        headers = Headers({"Retry-After": str(exc.retry_after)})
        return _render(503, "Busy", exc.message, headers)

    @app.errorhandler(ReadTimeout)
    def too_slow(_exc: ReadTimeout) -> tuple[str, int, Headers]:
        """A read stopped at READ_TIMEOUT_MS: 503, the worker free for the next."""
        limit_reads(None)  # the time is up; the error page may still read
        db.session.rollback()  # PostgreSQL refuses more in a cancelled transaction
        return _render(503, "Too slow", TOO_SLOW, Headers({"Retry-After": "5"}))

    @app.errorhandler(StorageFull)
    def no_room(_exc: StorageFull) -> tuple[str, int, Headers]:
        """A write with no room left on disk: 507, rolled back, nothing written."""
        db.session.rollback()
        return _render(507, "Not saved", NO_ROOM)

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
