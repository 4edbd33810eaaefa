"""CSRF protection and the security headers every response carries."""

from __future__ import annotations

from flask import Flask, Response
from flask_wtf.csrf import CSRFProtect

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


def _headers(response: Response) -> Response:
    """Add the security headers to a response."""
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def can_write() -> bool:
    """May the current visitor create, edit or delete? (Accounts come later.)"""
    return True


def init_app(app: Flask) -> None:
    """Turn on CSRF checks for unsafe methods and the security headers."""
    csrf.init_app(app)
    app.after_request(_headers)
    # Templates show edit controls only when {{ can_write }} is true.
    app.context_processor(lambda: {"can_write": can_write()})
