"""Who may write, which requests are refused, and what every response carries.

Every unsafe request (anything but GET, HEAD, OPTIONS) passes one gate before any
view runs: cross-site requests, writes in READ_ONLY mode and writes by anonymous
visitors once accounts exist get 403; then Flask-WTF checks the CSRF token. Every
response carries the security headers and an X-Request-ID that the logs share.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, Response, abort, current_app, g, has_request_context, request
from flask.logging import default_handler
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from app.accounts import accounts_enabled

csrf = CSRFProtect()

# No inline script or style, nothing from another origin: htmx is configured (see
# the htmx-config meta tag in base.html) so it needs neither eval nor inline styles.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ]
)
# What every response carries, the app's and gunicorn's own error pages alike
# (app/gunicorn_conf.py adds them to the responses gunicorn sends before the app
# runs). Strict-Transport-Security is added only over HTTPS, see _headers().
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Signing in and out only touch the session; they are open even when writes are not.
OPEN_ENDPOINTS = frozenset({"auth.sign_in", "auth.logout"})
# An incoming X-Request-ID is kept only if it is short and plain (it goes into logs).
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")
LOG_FORMAT = "[%(asctime)s] %(levelname)s [%(request_id)s] in %(module)s: %(message)s"

CROSS_SITE = "Cross-site request refused: changes can only be made from this site."
READ_ONLY = "This catalogue is read-only: changes are turned off."
SIGN_IN = "Sign in to make changes."

View = TypeVar("View", bound=Callable[..., Any])


# ---------------------------------------------------------------- request id


def request_id() -> str:
    """Return this request's id ("-" outside a request)."""
    if not has_request_context():
        return "-"
    if "request_id" not in g:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
    return str(g.request_id)


class RequestIdFilter(logging.Filter):
    """Stamp every log record with the current request id."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add record.request_id; never drops a record."""
        record.request_id = request_id()
        return True


# ---------------------------------------------------------------- who may write


def can_write() -> bool:
    """May the current visitor create, edit, delete or import?"""
    if current_app.config["READ_ONLY"]:
        return False
    return not accounts_enabled() or current_user.is_authenticated


def _template_flags() -> dict[str, bool]:
    """can_write, accounts_on and read_only for templates (no writes, no accounts
    if the database is down).

    Error pages render these too, and must render even when the database cannot.
    """
    read_only = bool(current_app.config["READ_ONLY"])
    try:
        return {
            "can_write": can_write(),
            "accounts_on": accounts_enabled(),
            "read_only": read_only,
        }
    except SQLAlchemyError:
        return {"can_write": False, "accounts_on": False, "read_only": read_only}


def _is_cross_site() -> bool:
    """True when the browser says the request came from another site."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site and fetch_site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("Origin")
    if origin is None:
        # Old browsers and scripts send no Origin; the CSRF token still guards them.
        return False
    if origin in current_app.config.get("TRUSTED_ORIGINS", ()):
        return False
    # Compare hosts, not schemes: behind a TLS proxy without TRUST_PROXY the app
    # sees http while the browser says https, and that is still this site.
    return urlsplit(origin).netloc.lower() != request.host.lower()


def local_path(target: str | None) -> str | None:
    """`target` if it is a path on this site (a `next` to return to), else None.

    Browsers drop tabs and newlines from URLs ("/\\t/evil.example" is followed
    to //evil.example) and a CR or LF cannot go into a Location header, so any
    whitespace or control character refuses the whole value.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(c.isspace() or not c.isprintable() for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def body_limit(config_key: str) -> Callable[[View], View]:
    """Give a view its own request size limit, read from config (e.g. the import).

    Applied before the CSRF check parses the body, so it works for uploads too.
    """

    def mark(view: View) -> View:
        view.body_limit_config = config_key  # type: ignore[attr-defined]
        return view

    return mark


def _refuse(message: str) -> None:
    """Log and answer 403 with a message the error handlers render."""
    current_app.logger.warning(
        "refused %s %s: %s", request.method, request.path, message
    )
    abort(403, description=message)


def _gate() -> None:
    """Refuse unsafe requests that may not write, before CSRF and before any view."""
    request_id()
    if request.method in SAFE_METHODS or request.endpoint is None:
        return  # reads, and unknown URLs (routing answers 404/405)
    if _is_cross_site():
        _refuse(CROSS_SITE)
    if request.endpoint not in OPEN_ENDPOINTS:
        if current_app.config["READ_ONLY"]:
            _refuse(READ_ONLY)
        if accounts_enabled() and not current_user.is_authenticated:
            _refuse(SIGN_IN)
    # Werkzeug refuses a body over the limit (413) before reading it, when the
    # CSRF check or the view first touches the form.
    view = current_app.view_functions.get(request.endpoint)
    key = getattr(view, "body_limit_config", None)
    if key:
        request.max_content_length = current_app.config[key]


def too_large_message(limit: int) -> str:
    """The message for a request body over the limit."""
    size = f"{limit / 1024 / 1024:g} MB" if limit >= 1024 * 1024 else f"{limit:,} bytes"
    return f"The request is too large: the limit is {size}."


# ---------------------------------------------------------------- responses


def _headers(response: Response) -> Response:
    """Add the security headers and the request id to a response."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        # Only ever sent over HTTPS, so plain-HTTP development is unaffected.
        response.headers.setdefault(
            "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
        )
    response.headers["X-Request-ID"] = request_id()
    return response


class SessionInterface(SecureCookieSessionInterface):
    """Signed-cookie sessions whose cookie is Secure whenever served over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        """Secure if configured so, or if this request came over HTTPS."""
        configured = bool(app.config["SESSION_COOKIE_SECURE"])
        return configured or (has_request_context() and request.is_secure)


# Control characters a log line must not carry as themselves: a CR or LF in a
# logged path would start a forged line (issue 12).
_CONTROLS = {
    **{code: f"\\x{code:02x}" for code in [*range(0x20), 0x7F]},
    **{code: f"\\u{code:04x}" for code in [*range(0x80, 0xA0), 0x2028, 0x2029]},
    ord("\r"): "\\r",
    ord("\n"): "\\n",
    ord("\t"): "\\t",
}


def escape_controls(text: str) -> str:
    """Show control characters as escapes (\\r, \\n, \\x1b...): one record, one line."""
    return text.translate(_CONTROLS)


class EscapingFormatter(logging.Formatter):
    """A formatter whose messages cannot break out of their line.

    Only the message is escaped: a traceback appended after it stays readable.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802
        """Format with the record's message escaped."""
        record.message = escape_controls(record.message)
        return super().formatMessage(record)


def _configure_logging(app: Flask) -> None:
    """Put the request id in every line the app logs; log at INFO and above."""
    # On the logger, so every handler (gunicorn's, pytest's) sees the id; on
    # Flask's handler too, for records that reach it from elsewhere.
    for target in (app.logger, default_handler):
        if not any(isinstance(f, RequestIdFilter) for f in target.filters):
            target.addFilter(RequestIdFilter())
    default_handler.setFormatter(EscapingFormatter(LOG_FORMAT))
    if app.logger.level == logging.NOTSET:
        app.logger.setLevel(logging.INFO)


class AsciiIntConverter(IntegerConverter):
    """`<int:...>` in URLs, ASCII digits only: Werkzeug's \\d also takes "١٢" as 12."""

    regex = r"[0-9]+"


def init_app(app: Flask) -> None:
    """Install the write gate, CSRF checks, session cookie rules and headers."""
    # Before any route is added: rules compile their converters when registered.
    app.url_map.converters["int"] = AsciiIntConverter
    if app.config["TRUST_PROXY"]:
        hops = int(app.config["TRUST_PROXY"])
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )
    app.session_interface = SessionInterface()
    _configure_logging(app)
    # Registered before CSRFProtect's own hook, so refusals do not depend on it.
    app.before_request(_gate)
    csrf.init_app(app)
    app.after_request(_headers)
    # Templates show edit controls only when {{ can_write }} is true.
    app.context_processor(_template_flags)
