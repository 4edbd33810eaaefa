"""Full page or fragment: the one place that reads htmx's request headers."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from flask import Flask, Request, Response
from werkzeug.datastructures import MultiDict


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


def trigger(request: Request) -> str:
    """Return the id of the element whose htmx request this is ("" if none)."""
    return request.headers.get("HX-Trigger", "") if is_htmx(request) else ""


def current_url(request: Request) -> tuple[str, MultiDict[str, str]]:
    """Return the path and query arguments of the page htmx sent this request from.

    ("", {}) when unknown, e.g. for a request that did not come from htmx.
    """
    if not is_htmx(request):
        return "", MultiDict()
    parts = urlsplit(request.headers.get("HX-Current-URL", ""))
    return parts.path, MultiDict(parse_qsl(parts.query, keep_blank_values=True))


def push_url(response: Response, url: str) -> Response:
    """Have htmx push `url` to the address bar (and history) after the swap."""
    response.headers["HX-Push-Url"] = url
    return response


def retarget(response: Response, selector: str, swap: str) -> Response:
    """Have htmx swap this response into `selector` instead of the asked target."""
    response.headers["HX-Retarget"] = selector
    response.headers["HX-Reswap"] = swap
    return response


def _vary(response: Response) -> Response:
    """Tell caches that the same URL answers a page or a fragment by HX-Request."""
    response.vary.add("HX-Request")
    return response


def init_app(app: Flask) -> None:
    """Register the Vary hook on every response."""
    app.after_request(_vary)
