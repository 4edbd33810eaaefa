"""Compress pages, fragments, CSS and JS for browsers that accept it (Flask-Compress).

The first load of the movie table is about a fifth of its size compressed (issue 5,
W6). zstd, then brotli, then gzip, as the browser accepts. CSV is left alone: the
export streams its own chunks and is usually saved, not read in a browser.
"""

from __future__ import annotations

from flask import Flask, Response
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


def _buffer_small_files(response: Response) -> Response:
    """Read a small file response (a static file) into memory, to compress it whole.

    Compressing the file's stream instead would lose the file's close() and leave
    the descriptor to the garbage collector.
    """
    if (
        response.direct_passthrough
        and response.status_code == 200
        and response.mimetype in MIMETYPES
        and (response.content_length or BUFFER_LIMIT + 1) <= BUFFER_LIMIT
    ):
        response.direct_passthrough = False
        response.make_sequence()  # closes the file when the response is closed
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
    app.after_request(_buffer_small_files)
