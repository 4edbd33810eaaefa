"""CSV export: exact bodies, headers, the table's filters and order, escaping, BOM."""

from __future__ import annotations

import csv
import io
import tracemalloc
from datetime import date

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app import csvfile
from app.crud import CrudService
from app.crud.plan import Reader
from app.db import db
from app.models import Movie, Rating
from app.resources import MOVIES, RATINGS, RESOURCES

MOVIES_CSV = (
    b"id,name,director,rating\r\n"
    b"1,Alien,Ridley Scott,8.5\r\n"
    b"2,Blade Runner,Ridley Scott,8.1\r\n"
    b"3,Cure,Kiyoshi Kurosawa,\r\n"
)

RATINGS_CSV = (
    b"id,rating,author,movie_id,movie_name\r\n"
    b"4,6,Di,3,Cure\r\n"
    b"3,8,Cy,2,Blade Runner\r\n"
    b"2,7,Bo,1,Alien\r\n"
    b"1,9,Ana,1,Alien\r\n"
)

# Every awkward value, stored as is (some could not be typed in: the form trims).
# Ratings ascend with the id, so ?sort=rating lists them in id order.
AWKWARD = [
    # (name, director, rating)
    ('Say "Hi", Bob', "Quote, Comma", 0.0),
    ("Two\nlines", "Carriage\r\nreturn", 1.0),
    ("=SUM(A1:A9)", "+Plus", 2.5),
    ("-minus", "@at", 3.0),
    ("\tTab first", "\rCR first", 4.2),
    ("'=Already quoted", "''+Twice", 5.0),
    ("'Apostrophe only", "Zoë Ünïcode 東京", 10.0),
    ('"=Quoted formula"', "=a,b", None),
]

AWKWARD_CSV = (
    "id,name,director,rating\r\n"
    '1,"Say ""Hi"", Bob","Quote, Comma",0.0\r\n'
    '2,"Two\nlines","Carriage\r\nreturn",1.0\r\n'
    "3,'=SUM(A1:A9),'+Plus,2.5\r\n"
    "4,'-minus,'@at,3.0\r\n"
    "5,'\tTab first,\"'\rCR first\",4.2\r\n"
    "6,''=Already quoted,'''+Twice,5.0\r\n"
    "7,'Apostrophe only,Zoë Ünïcode 東京,10.0\r\n"
    '8,"""=Quoted formula""","\'=a,b",\r\n'
).encode()

AWKWARD_RATINGS_CSV = (
    "id,rating,author,movie_id,movie_name\r\n"
    '1,1,\'=Eve,1,"Say ""Hi"", Bob"\r\n'
    '2,2,"Ann, Jr.",2,"Two\nlines"\r\n'
    '3,3,"Bo ""B""",3,\'=SUM(A1:A9)\r\n'
    "4,4,'-Dee,4,'-minus\r\n"
    "5,5,'@Cy,5,'\tTab first\r\n"
    "6,6,''+Al,6,''=Already quoted\r\n"
    "7,7,Émile,7,'Apostrophe only\r\n"
    '8,8,Kai,8,"""=Quoted formula"""\r\n'
).encode()

TODAY = date.today().isoformat()


def body(response) -> bytes:
    """The whole (streamed) body of a response."""
    return b"".join(response.response)


def test_movies_csv_exact(client: FlaskClient, sample: dict) -> None:
    assert sample == {"alien": 1, "blade": 2, "cure": 3}
    response = client.get("/movies.csv")
    assert response.status_code == 200
    assert response.is_streamed
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="movies-{TODAY}.csv"'
    )
    assert "Content-Length" not in response.headers
    assert body(response) == MOVIES_CSV


def test_ratings_csv_exact(client: FlaskClient, sample: dict) -> None:
    response = client.get("/ratings.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="ratings-{TODAY}.csv"'
    )
    assert body(response) == RATINGS_CSV


def test_bom_for_excel(client: FlaskClient, sample: dict) -> None:
    response = client.get("/movies.csv?bom=1")
    assert body(response) == b"\xef\xbb\xbf" + MOVIES_CSV


def test_empty_result_is_the_header_alone(client: FlaskClient, sample: dict) -> None:
    assert body(client.get("/movies.csv?q=nothing-like-this")) == (
        b"id,name,director,rating\r\n"
    )
    assert body(client.get("/ratings.csv?q=zz")) == (
        b"id,rating,author,movie_id,movie_name\r\n"
    )


def test_empty_table(client: FlaskClient) -> None:
    assert body(client.get("/movies.csv")) == b"id,name,director,rating\r\n"


@pytest.mark.parametrize(
    ("url", "ids"),
    [
        ("/movies.csv?sort=-rating", [1, 2, 3]),
        ("/movies.csv?sort=rating", [2, 1, 3]),  # no rating sorts last
        ("/movies.csv?sort=director,-name", [3, 2, 1]),
        ("/movies.csv?q=ridley", [1, 2]),
        ("/movies.csv?q=ridley&sort=-name", [2, 1]),
        ("/movies.csv?min_rating=8.2", [1]),
        ("/movies.csv?q=KIYOSHI", [3]),
        ("/movies.csv?page=2&per_page=1", [1, 2, 3]),  # paging is ignored
        ("/ratings.csv?sort=rating", [4, 2, 3, 1]),
        ("/ratings.csv?sort=-movie_name,author", [4, 3, 1, 2]),
        ("/ratings.csv?movie=alien", [2, 1]),
        ("/ratings.csv?author=y&min_rating=8", [3]),
        ("/ratings.csv?movie_id=1&sort=author", [1, 2]),
        ("/movies/1/ratings.csv", [2, 1]),
        ("/movies/1/ratings.csv?sort=-rating", [1, 2]),
        ("/movies/1/ratings.csv?movie_id=2", [2, 1]),  # the path wins
    ],
)
def test_filters_and_sort_are_the_tables(
    client: FlaskClient, sample: dict, url: str, ids: list[int]
) -> None:
    response = client.get(url)
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(body(response).decode(), newline="")))
    assert [int(r[0]) for r in rows[1:]] == ids


@pytest.mark.parametrize(
    "args",
    [
        {},
        {"sort": "-rating"},
        {"sort": "director,rating"},
        {"q": "ridley", "sort": "-name"},
        {"min_rating": "8"},
    ],
)
def test_csv_rows_are_the_table_rows(
    app: Flask, client: FlaskClient, sample: dict, args: dict
) -> None:
    # The table and the CSV share CrudService.select, so they cannot drift.
    with app.app_context():
        svc = CrudService(MOVIES, db.session)
        shown = [m.id for m in svc.list(svc.parse_query(args)).items]
    rows = list(
        csv.reader(
            io.StringIO(
                body(client.get("/movies.csv", query_string=args)).decode(), newline=""
            )
        )
    )
    assert [int(r[0]) for r in rows[1:]] == shown


@pytest.mark.parametrize(
    "url",
    [
        "/movies.csv?sort=bogus",
        "/movies.csv?min_rating=eleven",
        "/movies.csv?min_rating=11",
        "/movies.csv?page=0",
        "/ratings.csv?movie_id=x",
        "/ratings.csv?sort=name",
        "/movies/1/ratings.csv?sort=director",
    ],
)
def test_bad_parameters_are_400(client: FlaskClient, sample: dict, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/html")


def test_one_movies_ratings(client: FlaskClient, sample: dict) -> None:
    response = client.get("/movies/1/ratings.csv")
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="movie-1-ratings-{TODAY}.csv"'
    )
    assert body(response) == (
        b"id,rating,author,movie_id,movie_name\r\n2,7,Bo,1,Alien\r\n1,9,Ana,1,Alien\r\n"
    )


def test_ratings_of_missing_movie_is_404(client: FlaskClient, sample: dict) -> None:
    assert client.get("/movies/99/ratings.csv").status_code == 404


def test_unknown_table_is_404(client: FlaskClient) -> None:
    assert client.get("/users.csv").status_code == 404


def add_awkward(app: Flask) -> None:
    """Store the awkward movies (ids 1..8) and a rating for each, bypassing forms."""
    with app.app_context():
        movies = [Movie(name=n, director=d, rating=r) for n, d, r in AWKWARD]
        db.session.add_all(movies)
        db.session.flush()
        authors = ["=Eve", "Ann, Jr.", 'Bo "B"', "-Dee", "@Cy", "'+Al", "Émile", "Kai"]
        db.session.add_all(
            Rating(rating=i + 1, author=a, movie_id=m.id)
            for i, (m, a) in enumerate(zip(movies, authors, strict=True))
        )
        db.session.commit()


def test_escaping_quotes_and_formulas(app: Flask, client: FlaskClient) -> None:
    add_awkward(app)
    assert body(client.get("/movies.csv?sort=rating")) == AWKWARD_CSV
    assert body(client.get("/ratings.csv?sort=rating")) == AWKWARD_RATINGS_CSV


def test_sql_and_python_formats_agree(app: Flask) -> None:
    # csvfile.format_text is the reference; the database must write the same cells.
    add_awkward(app)
    with app.app_context():
        svc = CrudService(MOVIES, db.session)
        got = b"".join(csvfile.export_chunks(svc, svc.parse_query({"sort": "rating"})))
    expected = "id,name,director,rating\r\n" + "".join(
        f"{i},{csvfile.format_text(n)},{csvfile.format_text(d)},"
        f"{'' if r is None else f'{r:.1f}'}\r\n"
        for i, (n, d, r) in enumerate(AWKWARD, start=1)
    )
    assert got == expected.encode()


def test_csv_reads_back_as_the_stored_values_with_the_prefix(
    app: Flask, client: FlaskClient
) -> None:
    add_awkward(app)
    text = body(client.get("/movies.csv?sort=rating")).decode()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert [r[1] for r in rows[1:]] == [
        'Say "Hi", Bob',
        "Two\nlines",
        "'=SUM(A1:A9)",
        "'-minus",
        "'\tTab first",
        "''=Already quoted",
        "'Apostrophe only",
        '"=Quoted formula"',
    ]


def test_chunks_are_whole_lines_and_header_first(app: Flask, sample: dict) -> None:
    with app.app_context():
        svc = CrudService(RATINGS, db.session)
        chunks = list(csvfile.export_chunks(svc, svc.parse_query({}), batch=2))
    assert chunks == [
        b"id,rating,author,movie_id,movie_name\r\n"
        b"4,6,Di,3,Cure\r\n"
        b"3,8,Cy,2,Blade Runner\r\n",
        b"2,7,Bo,1,Alien\r\n1,9,Ana,1,Alien\r\n",
    ]


def test_header_comes_from_the_declaration() -> None:
    assert {name: csvfile.header_line(r) for name, r in RESOURCES.items()} == {
        "movies": "id,name,director,rating\r\n",
        "ratings": "id,rating,author,movie_id,movie_name\r\n",
    }


# ------------------------------------------------------------------ completeness


def test_failure_before_the_first_byte_is_a_plain_500(
    app: Flask, sample: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self, *args, **kwargs):
        raise sa.exc.OperationalError("SELECT", {}, Exception("database is gone"))
        yield  # pragma: no cover

    monkeypatch.setattr(Reader, "fetch_batches", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = app.test_client().get("/movies.csv")
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("text/html")


def test_failure_mid_stream_does_not_end_the_body(
    app: Flask, sample: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The WSGI iterator raises instead of finishing, so the server drops the
    # connection before the last chunk (see test_csv_completeness for a real one).
    real = Reader.fetch_batches

    def failing(self, *args, **kwargs):
        batches = real(self, *args, **kwargs)
        yield next(batches)
        raise sa.exc.OperationalError("FETCH", {}, Exception("disk I/O error"))

    monkeypatch.setattr(Reader, "fetch_batches", failing)
    response = app.test_client().get("/movies.csv")
    assert response.status_code == 200
    stream = iter(response.response)
    assert next(stream) == MOVIES_CSV  # the first batch went out
    with pytest.raises(sa.exc.OperationalError):
        next(stream)


# ------------------------------------------------------------------ memory


def test_memory_stays_flat_for_a_large_export(app: Flask) -> None:
    n_movies, n_ratings = 1_000, 200_000
    with app.app_context():
        movies = CrudService(MOVIES, db.session)
        movies.bulk.load(
            {"name": f"Film {i}", "director": "Someone", "rating": (i % 100) / 10}
            for i in range(n_movies)
        )
        ids = dict(db.session.execute(sa.select(Movie.id, Movie.name)).all())
        keys = list(ids)
        CrudService(RATINGS, db.session).bulk.load(
            {
                "rating": i % 10 + 1,
                "author": f"Author {i % 997}",
                "movie_id": keys[i % n_movies],
                "movie_name": ids[keys[i % n_movies]],
            }
            for i in range(n_ratings)
        )
    client = app.test_client()
    tracemalloc.start()
    try:
        response = client.get("/ratings.csv")
        size = lines = 0
        for chunk in response.response:
            size += len(chunk)
            lines += chunk.count(b"\r\n")
        response.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lines == n_ratings + 1
    print(
        f"\nexported {n_ratings:,} ratings ({size / 1e6:.1f} MB);"
        f" peak Python memory {peak / 1e6:.1f} MB"
    )
    # A few chunks in flight, never the whole 8 MB file (nor an object per row).
    assert peak < 6_000_000


def test_children_of_a_table_that_has_none_is_404(
    client: FlaskClient, sample: dict
) -> None:
    # Ratings are listed under movies, not under ratings or anything else.
    assert client.get("/ratings/1/ratings.csv").status_code == 404
    assert client.get("/movies/1/movies.csv").status_code == 404
    assert client.get("/movies/1/users.csv").status_code == 404
