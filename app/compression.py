"""Compress pages, fragments, CSS and JS for browsers that accept it (Flask-Compress).

The first load of the movie table is about a fifth of its size compressed (issue 5,
W6). Pages and fragments: zstd, then brotli, then gzip, as the browser accepts, at
fast levels (each is compressed on its request's time). Static files: brotli, else
gzip, at the strongest levels, compressed once per file, encoding and worker and
kept (a few hundred KB in all): brotli 11 makes the scripts and CSS 18 % smaller
than zstd 3 (39.7 against 48.2 KB), for 110 ms of CPU once instead of 1 ms at every
first load (a browser that takes zstd alone gets Flask-Compress's). CSV is left
alone: the export streams its own chunks and is usually saved, not read in a browser.
"""

from __future__ import annotations

import gzip
import threading

import brotli
from flask import Flask, Response, request
from flask_compress import Compress

compress = Compress()

MIMETYPES = [
    "text/html",
    "text/css",
    "text/javascript",
    "application/javascript",
    "application/json",
    "image/svg+xml",
]


# Static files larger than this are sent as they are, never read into memory.
BUFFER_LIMIT = 1024 * 1024
# How static files are compressed, the browser's choice among them in this order.
STATIC_ENCODINGS = {
    "br": lambda data: brotli.compress(data, quality=11),
    "gzip": lambda data: gzip.compress(data, compresslevel=9, mtime=0),
}
_packed: dict[tuple[str, str], bytes] = {}  # (file's ETag, encoding) -> bytes
_packing = threading.Lock()


def _static_files(response: Response) -> Response:
    """Send a small static file compressed once and kept, or at least whole.

    A file's compressed bytes are kept under its ETag (Werkzeug's, from the file's
    name, size and time), so a changed file is compressed again. Read into memory
    either way: compressing the file's stream instead would lose the file's
    close() and leave the descriptor to the garbage collector.
    """
    if not (
        response.direct_passthrough
        and response.status_code == 200
        and response.mimetype in MIMETYPES
        and (response.content_length or BUFFER_LIMIT + 1) <= BUFFER_LIMIT
    ):
        return response
    response.direct_passthrough = False
    response.make_sequence()  # closes the file when the response is closed
    etag, weak = response.get_etag()
    encoding = request.accept_encodings.best_match(list(STATIC_ENCODINGS))
    if not etag or weak or encoding is None:
        return response  # Flask-Compress's levels, if the browser takes one
    key = (etag, encoding)
    packed = _packed.get(key)
    if packed is None:
        with _packing:  # one thread compresses a file; the others wait for it
            packed = _packed.get(key)
            if packed is None:
                packed = _packed[key] = STATIC_ENCODINGS[encoding](response.get_data())
    response.set_data(packed)
    response.headers["Content-Encoding"] = encoding  # Flask-Compress leaves it
    response.set_etag(f"{etag}:{encoding}")  # as Flask-Compress names its own
    response.make_conditional(request)
    return response


def init_app(app: Flask) -> None:
    """Compress responses; register first so it runs after every other hook."""
    app.config.setdefault("COMPRESS_MIMETYPES", MIMETYPES)
    app.config.setdefault("COMPRESS_ALGORITHM", ["zstd", "br", "gzip"])
    app.config.setdefault("COMPRESS_STREAMS", False)
    # Fast levels: fragments are compressed per request, on the request's time.
    app.config.setdefault("COMPRESS_LEVEL", 5)
    app.config.setdefault("COMPRESS_BR_LEVEL", 4)
    app.config.setdefault("COMPRESS_ZSTD_LEVEL", 3)
    compress.init_app(app)
    # Registered after, so it runs before the compressor (hooks run in reverse).
    app.after_request(_static_files)
