"""Export, import into an empty database, export again: the same bytes; and the CLI."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from app.crud import CrudService
from app.crud.plan import Reader
from app.db import db
from app.models import Movie, Rating
from app.resources import MOVIES, RATINGS

# What people type, after the form trims it: names and directors lose leading and
# trailing spaces, so those cannot round-trip and are left out on purpose.
AWKWARD_MOVIES = [
    ('Say "Hi", Bob', "O'Brien, Pat"),
    ("Two\nlines\r\nand three", "Zoë Ünïcode"),
    ("=SUM(A1:A9)", "+Plus"),
    ("-minus", "@at"),
    ("'=Already protected", "''+Twice"),
    ("'Apostrophe only", "東京 Studio"),
    ('"=Quoted formula"', "=a,b"),
    ("Tab\tinside", "Emoji 🎬"),
    ("a,b,c", '"'),
]
AWKWARD_AUTHORS = [
    "=Eve",
    "Ann, Jr.",
    'Bo "B"',
    "-Dee",
    "@Cy",
    "'+Al",
    "Émile",
    "K\nai",
]


def export(client: FlaskClient, table: str, **args: str) -> bytes:
    """Download a table's CSV."""
    response = client.get(f"/{table}.csv", query_string=args)
    assert response.status_code == 200
    return b"".join(response.response)


def clear(app: Flask) -> None:
    """Empty both tables."""
    with app.app_context():
        db.session.execute(sa.delete(Rating))
        db.session.execute(sa.delete(Movie))
        db.session.commit()


def import_on_page(client: FlaskClient, table: str, data: bytes) -> str:
    """Upload a file, import it, and return the result page."""
    boundary, body = encode_multipart(
        {"resource": table, "file": FileStorage(io.BytesIO(data), filename="x.csv")}
    )
    response = client.post(
        "/import", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 303, response.text
    location = response.headers["Location"]
    assert client.post(location).status_code == 303
    return client.get(location).text


def round_trip_on_page(app: Flask, client: FlaskClient, **args: str) -> None:
    """Export both tables, import them into empty tables, and compare bytes."""
    movies, ratings = (
        export(client, "movies", **args),
        export(client, "ratings", **args),
    )
    clear(app)
    assert export(client, "movies") == b"id,name,director,rating\r\n"
    assert "written" in import_on_page(client, "movies", movies)
    assert "written" in import_on_page(client, "ratings", ratings)
    assert export(client, "movies", **args) == movies
    assert export(client, "ratings", **args) == ratings


def test_demo_data_round_trip(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner
) -> None:
    assert runner.invoke(args=["seed"]).exit_code == 0
    round_trip_on_page(app, client)


def test_round_trip_with_bom_and_a_view(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner
) -> None:
    runner.invoke(args=["seed"])
    movies = export(client, "movies", sort="-rating,director", bom="1")
    assert movies.startswith(b"\xef\xbb\xbfid,name,director,rating\r\n")
    clear(app)
    import_on_page(client, "movies", movies)
    assert export(client, "movies", sort="-rating,director", bom="1") == movies


def test_awkward_values_round_trip(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        movies = CrudService(MOVIES, db.session)
        ratings = CrudService(RATINGS, db.session)
        for i, (name, director) in enumerate(AWKWARD_MOVIES):
            movie = movies.create(
                {"name": name, "director": director, "rating": f"{i}.5"}
            )
            for j, author in enumerate(AWKWARD_AUTHORS[: i + 1]):
                ratings.create(
                    {"rating": str(j + 1), "author": author, "movie_id": movie.id}
                )
    before = export(client, "movies")
    assert b"'=SUM(A1:A9)" in before  # protected on the way out...
    round_trip_on_page(app, client)
    with app.app_context():  # ...and stored unprotected after the way back
        assert db.session.scalar(sa.select(Movie.id).where(Movie.name == "=SUM(A1:A9)"))


def test_synthetic_round_trip_on_the_command_line(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    seeded = runner.invoke(
        args=["seed", "--synthetic", "--movies", "300", "--ratings", "3000"]
    )
    assert seeded.exit_code == 0
    first = {t: tmp_path / f"{t}-1.csv" for t in ("movies", "ratings")}
    second = {t: tmp_path / f"{t}-2.csv" for t in ("movies", "ratings")}
    for table, path in first.items():
        result = runner.invoke(args=["export", table, "--out", str(path)])
        assert result.exit_code == 0, result.output
    text = first["movies"].read_bytes()
    assert b"\r\n301," not in text and b'""' in text and b",'=" in text
    clear(app)
    for table, path in first.items():
        result = runner.invoke(args=["import", table, str(path), "--commit"])
        assert result.exit_code == 0, result.output
    for table, path in second.items():
        runner.invoke(args=["export", table, "--out", str(path)])
        assert path.read_bytes() == first[table].read_bytes()


# ------------------------------------------------------------------ the CLI


def test_export_to_stdout_with_filters(runner: FlaskCliRunner, sample: dict) -> None:
    result = runner.invoke(
        args=["export", "movies", "--q", "ridley", "--sort", "-name"]
    )
    assert result.exit_code == 0
    assert result.stdout_bytes == (
        b"id,name,director,rating\r\n"
        b"2,Blade Runner,Ridley Scott,8.1\r\n"
        b"1,Alien,Ridley Scott,8.5\r\n"
    )
    assert result.stderr == "Exported 2 movies to standard output.\n"
    result = runner.invoke(args=["export", "ratings", "--min-rating", "8", "--bom"])
    assert result.stdout_bytes == (
        b"\xef\xbb\xbfid,rating,author,movie_id,movie_name\r\n"
        b"3,8,Cy,2,Blade Runner\r\n"
        b"1,9,Ana,1,Alien\r\n"
    )
    result = runner.invoke(args=["export", "ratings", "--movie-id", "3"])
    assert result.stdout_bytes.endswith(b"\r\n4,6,Di,3,Cure\r\n")
    assert result.stderr == "Exported 1 rating to standard output.\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "movies", "--author", "x"], "movies has no --author filter."),
        (["export", "movies", "--sort", "budget"], "Cannot sort by 'budget'"),
        (["export", "movies", "--min-rating", "high"], "Minimum rating must be a"),
        (["export", "users"], "'users' is not one of 'movies', 'ratings'"),
    ],
)
def test_export_usage_errors(
    runner: FlaskCliRunner, args: list[str], message: str
) -> None:
    result = runner.invoke(args=args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_failed_export_leaves_no_file(
    runner: FlaskCliRunner,
    sample: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        raise sa.exc.OperationalError("SELECT", {}, Exception("disk I/O error"))
        yield  # pragma: no cover

    monkeypatch.setattr(Reader, "fetch_batches", broken)
    folder = tmp_path / "out"
    folder.mkdir()
    result = runner.invoke(args=["export", "movies", "--out", str(folder / "m.csv")])
    assert result.exit_code != 0
    assert list(folder.iterdir()) == []


def test_import_dry_run_then_commit(
    app: Flask, runner: FlaskCliRunner, sample: dict, tmp_path: Path
) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(
        b"id,name,director,rating\r\n"
        b"1,Alien,Ridley Scott,9.0\r\n"
        b",Heat,Michael Mann,8.3\r\n"
    )
    dry = runner.invoke(args=["import", "movies", str(path)])
    assert dry.exit_code == 0
    assert dry.stdout == (
        f"{path} into movies: 1 new, 1 changed, 0 unchanged, 0 invalid.\n"
        "Dry run: nothing written. Add --commit to import the valid rows.\n"
    )
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Movie)) == 3
    done = runner.invoke(args=["import", "movies", str(path), "--commit"])
    assert done.exit_code == 0
    assert done.stdout.endswith("Imported: 2 rows written in one transaction.\n")
    with app.app_context():
        assert db.session.get(Movie, 1).rating == 9.0
        assert db.session.scalar(sa.select(Movie.id).where(Movie.name == "Heat")) == 4


def test_import_invalid_rows_exit_1(runner: FlaskCliRunner, tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(b"name,director,rating\r\nGood,Someone,1\r\n=Bad,Someone,1\r\n")
    result = runner.invoke(args=["import", "movies", str(path)])
    assert result.exit_code == 1
    assert "1 new, 0 changed, 0 unchanged, 1 invalid." in result.stdout
    assert re.search(r"line 3, name: starts with '='", result.stderr)


def test_import_unreadable_file_exit_1(runner: FlaskCliRunner, tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(b"\xff\xfei\x00d\x00")
    result = runner.invoke(args=["import", "movies", str(path), "--commit"])
    assert result.exit_code == 1
    assert result.stderr == (
        f'Error: {path}: This file is UTF-16 text. Save it as "CSV UTF-8" and'
        " upload that.\n"
    )
