"""The list views: page or fragment, URL state, sorting, paging and filters."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.db import db
from app.models import Movie, Rating
from tests.conftest import Hx, dispose, make_app
from tests.live_html import assert_fragment, parse


def args_of(url: str) -> dict[str, list[str]]:
    """The query arguments of a URL."""
    return parse_qs(urlsplit(url).query)


def add_movies(app: Flask, count: int, ratings_each: int = 0) -> None:
    """Insert numbered movies (with a few ratings each) straight into the database."""
    with app.app_context():
        movies = [
            Movie(name=f"Film {i:03d}", director=f"Director {i % 7}", rating=i % 11)
            for i in range(count)
        ]
        db.session.add_all(movies)
        db.session.flush()
        for movie in movies:
            for j in range(ratings_each):
                db.session.add(
                    Rating(rating=1 + (j % 10), author=f"A{j}", movie_id=movie.id)
                )
        db.session.commit()


# ------------------------------------------------------------ page or fragment


@pytest.mark.parametrize("url", ["/movies", "/ratings"])
def test_full_page_includes_the_same_region_the_fragment_is(
    client: FlaskClient, hx: Hx, sample: dict, url: str
) -> None:
    page = client.get(url)
    fragment = hx.get(url)
    assert page.status_code == fragment.status_code == 200
    assert page.text.startswith("<!doctype html>")
    tree = assert_fragment(fragment.text)
    (region,) = [el for el in tree.children if not isinstance(el, str)]
    assert region.tag == "section"
    assert region["id"] in ("movie-table", "rating-table")
    # The page includes exactly that region: same rows, same count.
    in_page = parse(page.text).by_id(region["id"])
    assert in_page.text == region.text
    for response in (page, fragment):
        assert "HX-Request" in response.headers["Vary"]
        assert response.content_type.startswith("text/html")


def test_fragment_pushes_its_canonical_url(hx: Hx, sample: dict) -> None:
    response = hx.get("/movies?q=ridley&min_rating=&sort=-rating&page=1&per_page=50")
    assert response.headers["HX-Push-Url"] == "/movies?q=ridley&sort=-rating"


def test_full_page_does_not_push(client: FlaskClient, sample: dict) -> None:
    assert "HX-Push-Url" not in client.get("/movies").headers


@pytest.mark.parametrize(
    "headers",
    [
        {"HX-Request": "true", "HX-History-Restore-Request": "true"},
        {"HX-Request": "true", "HX-Boosted": "true"},
    ],
)
def test_history_restore_and_boost_get_the_full_page(
    client: FlaskClient, sample: dict, headers: dict
) -> None:
    response = client.get("/movies?sort=-rating", headers=headers)
    assert response.text.startswith("<!doctype html>")
    assert "HX-Request" in response.headers["Vary"]


def test_movie_table_columns_caption_and_rows(
    client: FlaskClient, sample: dict
) -> None:
    tree = parse(client.get("/movies").text)
    table = tree.by_id("movie-table").find("table")
    assert table.find("caption").text == "Movies"
    headers = [th.text for th in table.find("thead").find_all("th")]
    assert headers == ["Details", "Name ▲", "Director", "Rating", "Ratings", "Actions"]
    rows = tree.by_id("movie-rows").find_all("tr", class_="data-row")
    assert [r["id"] for r in rows] == [
        f"movie-{sample['alien']}",
        f"movie-{sample['blade']}",
        f"movie-{sample['cure']}",
    ]
    alien = rows[0]
    assert alien.by_id(f"movie-{sample['alien']}-name").text == "Alien"
    assert alien.by_id(f"movie-{sample['alien']}-ratings-summary").text == "8.0 · 2"
    cure = rows[2]
    assert cure.by_id(f"movie-{sample['cure']}-rating").text == "— none"
    assert cure.by_id(f"movie-{sample['cure']}-ratings-summary").text == "6.0 · 1"
    toggle = alien.find("button", class_="toggle-button")
    assert toggle.text == "Show ratings for Alien"
    assert toggle["aria-expanded"] == "false"
    assert alien.find("button", class_="delete-button").text == "Delete Alien"
    assert tree.by_id("movie-count").text == "3 of 3 movies"


def test_rows_carry_the_version_the_page_showed(
    client: FlaskClient, sample: dict
) -> None:
    tree = parse(client.get("/movies").text)
    row = tree.by_id(f"movie-{sample['alien']}")
    assert row["data-version"] == "1"
    assert row["data-update-url"] == f"/movies/{sample['alien']}"
    cell = tree.by_id(f"movie-{sample['alien']}-director")
    assert "editable" in cell.classes
    assert cell["tabindex"] == "-1"


def test_ratings_table_is_built_from_the_same_parts(
    client: FlaskClient, sample: dict
) -> None:
    tree = parse(client.get("/ratings?sort=movie_name,-rating").text)
    table = tree.by_id("rating-table").find("table")
    assert table.find("caption").text == "Ratings"
    headers = [th.text for th in table.find("thead").find_all("th")]
    assert headers == [
        "Movie ▲ 1",
        "Rating ▼ 2 (then by this, descending)",
        "Author",
        "Actions",
    ]
    rows = tree.by_id("rating-rows").find_all("tr", class_="data-row")
    assert [(r.find_all("td")[0].text, r.find_all("td")[1].text) for r in rows] == [
        ("Alien", "9"),
        ("Alien", "7"),
        ("Blade Runner", "8"),
        ("Cure", "6"),
    ]
    # The movie name is derived, so not editable; rating and author are.
    first = rows[0]
    assert "editable" not in first.find("td", data_field="movie_name").classes
    assert "editable" in first.find("td", data_field="author").classes
    assert table.find("template", data_editor="movie_name") is None
    assert table.find("template", data_editor="author") is not None
    assert tree.by_id("rating-count").text == "4 of 4 ratings"


def test_ratings_filters(client: FlaskClient, sample: dict) -> None:
    tree = parse(client.get("/ratings?author=an&movie=ALI").text)
    assert tree.by_id("rating-count").text == "1 of 4 ratings"
    form = tree.by_id("rating-filter")
    assert form.find("input", name="author")["value"] == "an"
    assert form.find("input", name="movie")["value"] == "ALI"
    assert form.find("label", for_="rating-filter-author").text == "Author"


def test_movie_id_filter_is_kept_as_a_hidden_input(
    client: FlaskClient, sample: dict
) -> None:
    tree = parse(client.get(f"/ratings?movie_id={sample['alien']}").text)
    assert tree.by_id("rating-count").text == "2 of 4 ratings"
    hidden = tree.by_id("rating-filter").find("input", name="movie_id")
    assert hidden["type"] == "hidden"
    assert hidden["value"] == str(sample["alien"])


# ------------------------------------------------------------ filtering


def test_search_box_and_minimum_rating(client: FlaskClient, sample: dict) -> None:
    tree = parse(client.get("/movies?q=RIDLEY&min_rating=8.2").text)
    assert tree.by_id("movie-count").text == "1 of 3 movies"
    form = tree.by_id("movie-filter")
    assert form["method"] == "get"
    assert form["hx-trigger"] == "input delay:250ms, submit"
    search = form.find("input", name="q")
    assert search["type"] == "search"
    assert search["aria-label"] == "Search movies"
    assert search["value"] == "RIDLEY"
    minimum = form.find("input", name="min_rating")
    assert minimum["type"] == "number"
    assert minimum["value"] == "8.2"
    assert tree.find("label", for_=minimum["id"]).text == "Minimum rating"


def test_empty_result_says_so(client: FlaskClient, sample: dict) -> None:
    tree = parse(client.get("/movies?q=zzzz").text)
    assert tree.by_id("movie-count").text == "0 of 3 movies"
    assert tree.by_id("movie-rows").find("tr", class_="empty-row").text == (
        "No movies match this view."
    )


# ------------------------------------------------------------ sorting


def header_link(html: str, field: str) -> dict[str, str]:
    """The sort link of a movie column header."""
    return parse(html).by_id(f"movie-sort-{field}").attrs


@pytest.mark.parametrize(
    ("url", "field", "click", "shift_click"),
    [
        # Default order is by name: clicking Name flips it.
        ("/movies", "name", "-name", "-name"),
        ("/movies", "director", "director", "name,director"),
        ("/movies?sort=-name", "name", "name", "name"),
        ("/movies?sort=rating", "rating", "-rating", "-rating"),
        ("/movies?sort=-rating", "rating", "rating", "rating"),
        ("/movies?sort=rating,name", "name", "name", "rating,-name"),
        ("/movies?sort=rating,name", "director", "director", "rating,name,director"),
    ],
)
def test_header_links_sort_and_shift_click_adds_a_key(
    client: FlaskClient, url: str, field: str, click: str, shift_click: str
) -> None:
    link = header_link(client.get(url).text, field)
    assert args_of(link["href"])["sort"] == [click]
    assert link["hx-get"] == link["href"]
    assert args_of(link["data-shift-href"])["sort"] == [shift_click]


def test_sort_links_keep_the_filter_and_reset_the_page(
    app: Flask, client: FlaskClient
) -> None:
    add_movies(app, 120)  # page 3 exists (a page past the end redirects: issue 11)
    url = "/movies?q=film&min_rating=5&page=3&per_page=10"
    link = header_link(client.get(url).text, "rating")
    assert args_of(link["href"]) == {
        "q": ["film"],
        "min_rating": ["5"],
        "sort": ["rating"],
        "per_page": ["10"],
    }


def test_aria_sort_marks_only_the_leading_key(client: FlaskClient) -> None:
    tree = parse(client.get("/movies?sort=-rating,name").text)
    sorted_headers = {
        th.text.split()[0]: th.get("aria-sort") for th in tree.find_all("th")
    }
    assert sorted_headers["Rating"] == "descending"
    assert sorted_headers["Name"] is None
    name = tree.by_id("movie-sort-name")
    assert "▲ 2" in name.text  # visible: second key, ascending
    assert "(then by this, ascending)" in name.text
    # The filter form carries the sort along (form-associated hidden input).
    state = tree.find("input", name="sort")
    assert state["form"] == "movie-filter"
    assert state["value"] == "-rating,name"


def test_rows_come_in_the_order_asked(client: FlaskClient, sample: dict) -> None:
    tree = parse(client.get("/movies?sort=-rating").text)
    names = [
        r.find("td", data_field="name").text
        for r in tree.by_id("movie-rows").find_all("tr", class_="data-row")
    ]
    assert names == ["Alien", "Blade Runner", "Cure"]  # Cure has no rating: last


# ------------------------------------------------------------ paging


def test_paging_links_and_count(app: Flask, client: FlaskClient) -> None:
    add_movies(app, 120)
    tree = parse(client.get("/movies?per_page=50&page=2").text)
    assert tree.by_id("movie-count").text == "120 of 120 movies"
    rows = tree.by_id("movie-rows").find_all("tr", class_="data-row")
    assert len(rows) == 50
    assert rows[0].find("td", data_field="name").text == "Film 050"
    prev, nxt = tree.by_id("movie-page-prev"), tree.by_id("movie-page-next")
    assert prev.text == "Previous" and nxt.text == "Next"
    assert prev["href"] == "/movies"  # page 1 and the default size stay out of URLs
    assert nxt["href"] == "/movies?page=3"
    assert "Page 2 of 3" in tree.find("nav", class_="pager").text


def test_last_page_has_no_next_link(app: Flask, client: FlaskClient) -> None:
    add_movies(app, 5)
    tree = parse(client.get("/movies?per_page=2&page=3").text)
    disabled = tree.find("nav", class_="pager").find_all("a", aria_disabled="true")
    assert [a.text for a in disabled] == ["Next"]
    assert "href" not in disabled[0].attrs
    assert tree.by_id("movie-page-prev")["href"] == "/movies?page=2&per_page=2"
    state = tree.find("input", name="per_page")
    assert state["value"] == "2" and state["form"] == "movie-filter"


def test_per_page_up_to_500(app: Flask, client: FlaskClient) -> None:
    add_movies(app, 3)
    assert client.get("/movies?per_page=500").status_code == 200
    assert client.get("/movies?per_page=501").status_code == 400


def test_a_page_costs_the_same_queries_however_many_rows(app: Flask) -> None:
    """One list query, the counts and one summaries query: never one per row."""
    add_movies(app, 60, ratings_each=3)
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    counts = []
    with app.app_context():
        engine = db.engine
    for per_page in (5, 50):
        statements.clear()
        sa.event.listen(engine, "before_cursor_execute", record)
        try:
            response = app.test_client().get(f"/movies?per_page={per_page}")
        finally:
            sa.event.remove(engine, "before_cursor_execute", record)
        assert response.status_code == 200
        selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        counts.append(len(selects))
    assert counts[0] == counts[1]
    assert counts[1] <= 5


# ------------------------------------------------------------ bad parameters


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/movies?sort=bogus", "Cannot sort by 'bogus'"),
        ("/movies?sort=name,name", "appears twice"),
        ("/movies?sort=id", "Cannot sort by 'id'"),
        ("/movies?page=0", "page must be a whole number"),
        ("/movies?page=abc", "page must be a whole number"),
        ("/movies?per_page=-5", "per_page must be a whole number"),
        ("/movies?min_rating=abc", "Minimum rating must be a number"),
        ("/movies?min_rating=11", "Minimum rating must be between 0 and 10"),
        ("/movies?q=" + "x" * 201, "at most 200 characters"),
        ("/ratings?sort=director", "Cannot sort by 'director'"),
        ("/ratings?min_rating=1.5", "Minimum rating must be a whole number"),
        ("/ratings?movie_id=x", "Movie id must be a whole number"),
    ],
)
def test_bad_parameters_are_400_with_a_message(
    client: FlaskClient, hx: Hx, url: str, message: str
) -> None:
    page = client.get(url)
    assert page.status_code == 400
    assert message in parse(page.text).text
    assert page.text.startswith("<!doctype html>")
    fragment = hx.get(url)
    assert fragment.status_code == 400
    tree = assert_fragment(fragment.text)
    assert message in tree.find(role="alert").text


def test_read_only_visitors_see_no_edit_controls(
    database_url: str, tmp_path, sample: dict
) -> None:
    app = make_app(database_url, tmp_path / "ro", READ_ONLY=True)
    try:
        html = app.test_client().get("/movies").text
    finally:
        dispose(app)
    tree = parse(html)
    assert tree.by_id("movie-rows").find_all("tr", class_="data-row")
    assert "data-editor" not in html
    assert tree.find("td", class_="editable") is None
    assert tree.find(id="movie-add") is None
    assert tree.find("button", class_="delete-button") is None
    assert tree.find("th", class_="actions") is None
