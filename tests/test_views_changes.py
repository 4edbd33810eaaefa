"""A row's history and the Changes page (issue 14: History)."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.accounts import create_user
from app.db import db
from app.models import Change, Movie
from tests.conftest import Hx
from tests.live_html import parse

PASSWORD = "a long enough password"


@pytest.fixture
def people(app: Flask, sample: dict) -> dict[str, Hx]:
    """Ana and Ben, each signed in in a browser of their own."""
    signed_in = {}
    with app.app_context():
        for name in ("ana", "ben"):
            create_user(name, PASSWORD)
    for name in ("ana", "ben"):
        browser = app.test_client()
        answer = browser.post("/login", data={"name": name, "password": PASSWORD})
        assert answer.status_code == 303
        signed_in[name] = Hx(browser)
    return signed_in


def edit(
    people: dict[str, Hx], app: Flask, movie: int, who: str, **values: str
) -> None:
    """Save cells of a movie as `who` (the row's current version)."""
    with app.app_context():
        version = db.session.get(Movie, movie).version
    response = people[who].patch(
        f"/movies/{movie}", data={**values, "version": version}
    )
    assert response.status_code == 200, response.text


def texts(html: str, css_class: str) -> list[str]:
    """The text of every element of a class, in order."""
    return [e.text for e in parse(html).find_all(class_=css_class)]


def test_history_lists_old_to_new_who_and_newest_first(
    app: Flask, people: dict[str, Hx], sample: dict
) -> None:
    alien = sample["alien"]
    edit(people, app, alien, "ana", rating="8.6")
    edit(people, app, alien, "ben", director="R. Scott")
    response = people["ana"].get(f"/movies/{alien}/history")
    assert response.status_code == 200
    assert not response.text.lstrip().startswith("<!doctype")
    assert "History of Alien" in response.text
    assert texts(response.text, "history-change") == [
        "Director : Ridley Scott → to R. Scott",
        "Rating : 8.5 → to 8.6",
    ]
    assert texts(response.text, "history-who") == ["ben", "ana"]
    assert "HX-Request" in response.headers["Vary"]


def test_history_shows_values_as_cells_do(
    app: Flask, people: dict[str, Hx], sample: dict
) -> None:
    blade = sample["blade"]
    edit(people, app, blade, "ana", rating="9")
    # A Number(places=1) cell shows 9.0, so its history does too.
    assert texts(
        people["ana"].get(f"/movies/{blade}/history").text, "history-change"
    ) == ["Rating : 8.1 → to 9.0"]


def test_history_as_a_page_without_javascript(
    client: FlaskClient, app: Flask, people: dict[str, Hx], sample: dict
) -> None:
    alien = sample["alien"]
    edit(people, app, alien, "ana", rating="8.6")
    for headers in ({}, {"HX-Request": "true", "HX-History-Restore-Request": "true"}):
        page = client.get(f"/movies/{alien}/history", headers=headers)
        assert page.status_code == 200
        assert page.text.startswith("<!doctype html>")
        assert "Rating : 8.5 → to 8.6" in texts(page.text, "history-change")
    # The row's button is a GET form to this page.
    table = people["ana"].client.get("/movies").text
    form = parse(table).find("form", class_="history-form")
    assert form is not None and form["method"] == "get"
    assert form["action"].endswith("/history")


def test_every_row_offers_its_history(client: FlaskClient, sample: dict) -> None:
    tree = parse(client.get("/movies").text)
    names = [b.text for b in tree.find_all(class_="history-button")]
    assert names == ["History of Alien", "History of Blade Runner", "History of Cure"]


def test_history_of_unknown_row_is_404(client: FlaskClient, hx: Hx) -> None:
    assert client.get("/movies/999999/history").status_code == 404
    assert hx.get("/movies/999999999999999999999/history").status_code == 404


def restore_form(html: str, field: str) -> dict[str, str]:
    """The inputs of the Restore form for `field` (the newest entry that has one)."""
    for form in parse(html).find_all("form", class_="history-restore"):
        params = form["hx-params"].split(",")
        if field in params:
            inputs = {i["name"]: i.get("value", "") for i in form.find_all("input")}
            return {k: v for k, v in inputs.items() if k in params}
    raise AssertionError(f"no restore form for {field}")


def test_restore_this_value_is_a_version_checked_edit(
    app: Flask, people: dict[str, Hx], sample: dict
) -> None:
    alien = sample["alien"]
    edit(people, app, alien, "ana", rating="8.6")
    panel = people["ana"].get(f"/movies/{alien}/history").text
    data = restore_form(panel, "rating")
    assert data["rating"] == "8.5"
    response = people["ana"].patch(f"/movies/{alien}", data=data)
    assert response.status_code == 200
    assert f'<tr id="movie-{alien}"' in response.text
    with app.app_context():
        assert db.session.get(Movie, alien).rating == 8.5
    panel = people["ana"].get(f"/movies/{alien}/history").text
    assert texts(panel, "history-change")[0] == "Rating : 8.6 → to 8.5"
    # The stored value is 8.5 again: the first edit's old value offers no restore.
    assert texts(panel, "history-change")[1] == "Rating : 8.5 → to 8.6"


def test_restore_with_a_stale_version_is_a_409(
    app: Flask, people: dict[str, Hx], sample: dict
) -> None:
    alien = sample["alien"]
    edit(people, app, alien, "ana", rating="8.6")
    data = restore_form(people["ana"].get(f"/movies/{alien}/history").text, "rating")
    edit(people, app, alien, "ben", rating="7.0")  # someone else, meanwhile
    response = people["ana"].patch(f"/movies/{alien}", data=data)
    assert response.status_code == 409
    assert "cell-conflict" in response.text
    with app.app_context():
        assert db.session.get(Movie, alien).rating == 7.0


def test_restore_without_javascript_goes_back_to_the_history(
    client: FlaskClient, app: Flask, people: dict[str, Hx], sample: dict
) -> None:
    alien = sample["alien"]
    edit(people, app, alien, "ana", director="R. Scott")
    form = parse(people["ana"].client.get(f"/movies/{alien}/history").text).find(
        "form", class_="history-restore"
    )
    data = {i["name"]: i.get("value", "") for i in form.find_all("input")}
    response = people["ana"].client.post(form["action"], data=data)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/movies/{alien}/history"
    with app.app_context():
        movie = db.session.get(Movie, alien)
        assert (movie.director, movie.rating) == ("Ridley Scott", 8.5)


# ---------------------------------------------------------------- /changes


@pytest.fixture
def logged(app: Flask, people: dict[str, Hx], sample: dict) -> dict:
    """Three edits by two people, and the ids of what they changed."""
    edit(people, app, sample["alien"], "ana", rating="8.6")
    edit(people, app, sample["blade"], "ben", rating="8.2")
    edit(people, app, sample["alien"], "ben", director="R. Scott")
    return sample


def listed(html: str) -> list[tuple[str, str, str, str]]:
    """(who, table, row, field) of each change listed, in order."""
    out = []
    for tr in parse(html).find_all("tr", class_="change"):
        cells = [td.text for td in tr.find_all("td")]
        out.append((cells[1], cells[2], cells[3], cells[5]))
    return out


def test_changes_page_lists_the_log_newest_first(
    client: FlaskClient, logged: dict
) -> None:
    response = client.get("/changes")
    assert response.status_code == 200
    assert "<h1>Changes</h1>" in response.text
    alien, blade = str(logged["alien"]), str(logged["blade"])
    assert listed(response.text) == [
        ("ben", "movies", alien, "Director"),
        ("ben", "movies", blade, "Rating"),
        ("ana", "movies", alien, "Rating"),
    ]
    nav = parse(response.text).find("nav", aria_label="Tables")
    assert [a.text for a in nav.find_all("a")][-2:] == ["Changes", "Import CSV"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("who=ana", [("ana", "Rating")]),
        ("table=ratings", []),
        ("row={alien}", [("ben", "Director"), ("ana", "Rating")]),
        ("table=movies&row={blade}", [("ben", "Rating")]),
        (
            "since=2000-01-01",
            [("ben", "Director"), ("ben", "Rating"), ("ana", "Rating")],
        ),
        ("until=2000-01-01", []),
        ("since=2999-01-01T10:00", []),
    ],
)
def test_each_filter(
    client: FlaskClient, logged: dict, query: str, expected: list
) -> None:
    url = "/changes?" + query.format(**logged)
    response = client.get(url)
    assert response.status_code == 200
    assert [(who, field) for who, _t, _r, field in listed(response.text)] == expected


def test_paging(client: FlaskClient, hx: Hx, logged: dict) -> None:
    first = client.get("/changes?per_page=2")
    assert len(listed(first.text)) == 2
    older = parse(first.text).find("a", rel="next")
    assert older is not None and "page=2" in older["href"]
    second = hx.get(older["href"])
    assert second.status_code == 200
    assert listed(second.text) == [("ana", "movies", str(logged["alien"]), "Rating")]
    assert parse(second.text).find("a", rel="next") is None
    assert second.headers["HX-Push-Url"] == "/changes?page=2&per_page=2"


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("table=nope", "table", "Table must be one of"),
        ("row=abc", "row", "Row must be"),
        ("row=99999999999999999999999", "row", "Row must be"),
        ("who=" + "x" * 300, "who", "Person must be at most"),
        ("who=a%00b", "who", "not allowed"),
        ("since=yesterday", "since", "Since must be a date"),
        ("until=2026-13-45", "until", "Until must be a date"),
        ("since=2026-05-02&until=2026-05-01", "until", "Until must not be before"),
        ("page=0", None, "page must be"),
    ],
)
def test_invalid_filter_values(
    client: FlaskClient,
    hx: Hx,
    logged: dict,
    query: str,
    field: str | None,
    message: str,
) -> None:
    page = client.get(f"/changes?{query}")
    assert page.status_code == 400
    assert message in page.text
    if field:
        slot = parse(page.text).find(id=f"changes-filter-{field}-error")
        assert message in slot.text
    region = hx.get(f"/changes?{query}")
    assert region.status_code == 422  # htmx swaps it
    assert message in region.text
    assert not region.text.lstrip().startswith("<!doctype")
    download = client.get(f"/changes.csv?{query}")
    assert download.status_code == 400


def test_changes_region_for_htmx_and_whole_page_on_restore(
    client: FlaskClient, hx: Hx, logged: dict
) -> None:
    region = hx.get("/changes?who=ana")
    assert region.text.lstrip().startswith('<section id="changes-region"')
    assert region.headers["HX-Push-Url"] == "/changes?who=ana&per_page=50"
    restored = client.get(
        "/changes?who=ana",
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert restored.text.startswith("<!doctype html>")


def test_csv_download_columns_and_rows(
    app: Flask, client: FlaskClient, logged: dict
) -> None:
    response = client.get("/changes.csv?who=ben")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith(
        'attachment; filename="changes-'
    )
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == [
        "id", "set_id", "at", "who", "table", "row_id", "op", "old", "new", "version"
    ]  # fmt: skip
    with app.app_context():
        stored = db.session.scalars(
            sa.select(Change).where(Change.who == "ben").order_by(Change.id.desc())
        ).all()
        expected = [
            [str(c.id), str(c.set_id), c.who, c.table_name, str(c.row_id), c.op,
             c.old, c.new, str(c.version)]
            for c in stored
        ]  # fmt: skip
    assert [r[:2] + r[3:] for r in rows[1:]] == expected
    assert len(expected) == 2
    assert rows[1][7:9] == ['{"director":"Ridley Scott"}', '{"director":"R. Scott"}']
    assert rows[1][2].endswith("+00:00")


def test_csv_download_of_a_large_log_is_complete(
    app: Flask, client: FlaskClient, people: dict[str, Hx], sample: dict
) -> None:
    alien = sample["alien"]
    for n in range(12):
        edit(people, app, alien, "ana", rating=f"{n % 10}.{n % 7}")
    with app.app_context():
        total = db.session.scalar(sa.select(sa.func.count()).select_from(Change))
    rows = list(csv.reader(io.StringIO(client.get("/changes.csv").text)))
    assert len(rows) - 1 == total >= 12


def test_the_panel_pages_with_show_older(
    app: Flask, people: dict[str, Hx], sample: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.crud import changelog

    monkeypatch.setattr(changelog, "HISTORY_LIMIT", 2)
    alien = sample["alien"]
    for value in ("1", "2", "3", "4", "5"):
        edit(people, app, alien, "ana", rating=value)
    panel = people["ana"].get(f"/movies/{alien}/history")
    assert panel.status_code == 200
    assert texts(panel.text, "history-new") == ["5.0", "4.0"]
    older = parse(panel.text).find_all(class_="history-older")
    assert len(older) == 1 and older[0].text == "Show older"
    url = older[0]["hx-get"]
    assert older[0]["href"] == url and "before=" in url
    assert older[0]["hx-target"] == "#history-more"

    # The next page alone, to go in place of the link; then the last one.
    second = people["ana"].get(url)
    assert second.status_code == 200
    assert "history-panel" not in second.text  # the panel stays as it is
    assert texts(second.text, "history-new") == ["3.0", "2.0"]
    (more,) = parse(second.text).find_all(class_="history-older")
    third = people["ana"].get(more["hx-get"])
    assert texts(third.text, "history-new") == ["1.0"]
    assert parse(third.text).find_all(class_="history-older") == []
    # Without JavaScript the link is a page with the older entries.
    page = people["ana"].client.get(url)
    assert page.status_code == 200
    assert "History of Alien" in page.text
    assert texts(page.text, "history-new") == ["3.0", "2.0"]

    bad = people["ana"].get(f"/movies/{alien}/history?before=x")
    assert bad.status_code == 400
