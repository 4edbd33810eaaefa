"""Responses are compressed for browsers that accept it (issue 5: W6 < 60 KB)."""

from __future__ import annotations

import gzip

import brotli
import pytest
from backports import zstd
from flask.testing import FlaskClient

BROWSER = "gzip, deflate, br, zstd"


def test_page_is_compressed_when_accepted(client: FlaskClient, sample: dict) -> None:
    plain = client.get("/movies")
    packed = client.get("/movies", headers={"Accept-Encoding": BROWSER})
    assert plain.status_code == packed.status_code == 200
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "zstd"
    assert "Accept-Encoding" in packed.headers["Vary"]
    assert "HX-Request" in packed.headers["Vary"]
    body = zstd.decompress(packed.data)
    # The CSRF token differs per session; everything else is the same page.
    assert b"Alien" in body
    assert len(packed.data) < len(body) / 3


def test_gzip_for_clients_that_only_take_gzip(
    client: FlaskClient, sample: dict
) -> None:
    response = client.get(
        "/movies", headers={"Accept-Encoding": "gzip", "HX-Request": "true"}
    )
    assert response.headers["Content-Encoding"] == "gzip"
    assert b'id="movie-table"' in gzip.decompress(response.data)


@pytest.mark.parametrize(
    "path", ["/static/vendor/htmx-2.0.11.min.js", "/static/css/app.css"]
)
def test_static_files_are_compressed_once_at_the_strongest_level(
    client: FlaskClient, path: str
) -> None:
    plain = client.get(path)
    packed = client.get(path, headers={"Accept-Encoding": BROWSER})
    again = client.get(path, headers={"Accept-Encoding": BROWSER})
    only_gzip = client.get(path, headers={"Accept-Encoding": "gzip"})
    try:
        assert packed.headers["Content-Encoding"] == "br"
        assert brotli.decompress(packed.data) == plain.data
        # Brotli's strongest: smaller than the zstd that fragments get.
        assert len(packed.data) < len(zstd.compress(plain.data, level=3))
        assert int(packed.headers["Content-Length"]) == len(packed.data)
        assert "Accept-Encoding" in packed.headers["Vary"]
        assert again.data == packed.data
        assert only_gzip.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(only_gzip.data) == plain.data
        assert len(only_gzip.data) <= len(gzip.compress(plain.data, compresslevel=9))
        # One ETag per encoding, so a cache never mixes them.
        tags = {r.headers["ETag"] for r in (plain, packed, only_gzip)}
        assert len(tags) == 3
    finally:
        for response in (plain, packed, again, only_gzip):
            response.close()


def test_csv_export_is_not_compressed(client: FlaskClient, sample: dict) -> None:
    response = client.get("/ratings.csv", headers={"Accept-Encoding": BROWSER})
    assert response.status_code == 200
    assert "Content-Encoding" not in response.headers
    assert response.data.startswith(b"id,")


def test_compressed_static_files_revalidate(client: FlaskClient) -> None:
    path = "/static/css/app.css"
    first = client.get(path, headers={"Accept-Encoding": BROWSER})
    etag = first.headers["ETag"]
    again = client.get(
        path, headers={"Accept-Encoding": BROWSER, "If-None-Match": etag}
    )
    assert again.status_code == 304
    assert again.data == b""
    first.close()
    again.close()
