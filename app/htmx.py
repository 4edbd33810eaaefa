"""Full page or fragment: the one place that reads htmx's request headers."""

from __future__ import annotations

from flask import Flask, Request, Response


def is_htmx(request: Request) -> bool:
    """True when htmx sent the request (any kind)."""
    return request.headers.get("HX-Request") == "true"


def is_partial(request: Request) -> bool:
    """True when the response should be the region's fragment, not the full page.

    Boosted requests and history restores (a cache miss after back/forward) need
    the whole page, so they get it.
    """
    return (
        is_htmx(request)
        and request.headers.get("HX-Boosted") != "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def _vary(response: Response) -> Response:
    """Tell caches that the same URL answers a page or a fragment by HX-Request."""
    response.vary.add("HX-Request")
    return response


def init_app(app: Flask) -> None:
    """Register the Vary hook on every response."""
    app.after_request(_vary)
