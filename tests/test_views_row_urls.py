"""RowUrls (issue 5, render cost) builds exactly the URLs url_for would."""

from __future__ import annotations

import pytest
from flask import Flask, url_for

from app.resources import TABLES
from app.views.rows import RowUrls


@pytest.mark.parametrize("nested", [False, True])
@pytest.mark.parametrize("name", ["movies", "ratings"])
def test_row_urls_equal_url_for(app: Flask, name: str, nested: bool) -> None:
    table = TABLES[name]
    extra = {"nested": 1} if nested else {}
    with app.test_request_context("/"):
        urls = RowUrls(table, nested=nested, back="/movies?q=a&sort=-rating")
        for row_id in (1, 42, 10**12):
            assert urls.row(row_id) == url_for(f"{name}.row", row_id=row_id, **extra)
            assert urls.delete(row_id) == url_for(
                f"{name}.delete", row_id=row_id, **extra
            )
            assert urls.delete_form(row_id) == url_for(
                f"{name}.delete_form", row_id=row_id, **extra
            )
            assert urls.edit(row_id) == url_for(
                f"{name}.edit", row_id=row_id, next="/movies?q=a&sort=-rating"
            )
            assert urls.update(row_id) == url_for(
                f"{name}.update", row_id=row_id, **extra
            )
            if not nested:
                for child in table.children:
                    assert urls.child(row_id, child) == url_for(
                        f"{name}.children", row_id=row_id, child=child
                    )


def test_row_urls_without_back_are_built_once_per_app_and_root(app: Flask) -> None:
    from app.views.rows import _row_urls

    table = TABLES["movies"]
    with app.test_request_context("/"):
        first = _row_urls(table, False, None)
        assert _row_urls(table, False, None) is first
        assert _row_urls(table, True, None) is not first
        assert _row_urls(table, False, "/movies?q=a") is not first
        assert first.row(5) == url_for("movies.row", row_id=5)
    # Mounted elsewhere (SCRIPT_NAME), the same app builds other URLs.
    with app.test_request_context("/", base_url="http://localhost/sub"):
        mounted = _row_urls(table, False, None)
        assert mounted is not first
        assert mounted.row(5) == "/sub/movies/5/row"
