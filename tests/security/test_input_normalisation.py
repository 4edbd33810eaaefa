"""Numbers are ASCII digits; the formula rule sees past blanks and full-width signs.

Every way in is covered: the service's field kinds (forms, PATCH, CSV import), the
query string (filters, page, per_page), the CSV import's cells, and the CSV export
in both its implementations (Python's format_text and the database's, which must
write the same bytes) on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from app import csvfile
from app.crud import CrudService, Integer, Number
from app.csvfile import RowError
from app.db import db
from app.models import Movie, Rating
from app.resources import MOVIES, RATINGS
from tests.security.conftest import Visitor

# Spelled with escapes: they are invisible or look like their ASCII twins.
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
FULL_WIDTH = ["\uff1d", "\uff0b", "\uff0d", "\uff20"]  # ＝ ＋ － ＠
ARABIC_12345 = "\u0661\u0662\u0663\u0664\u0665"  # ١٢٣٤٥
FULL_WIDTH_10 = "\uff11\uff10"  # １０
NBSP, IDEOGRAPHIC_SPACE = "\u00a0", "\u3000"

# ------------------------------------------------------------------ numbers

# Not numbers, though int(), float() or Decimal() would take most of them.
NOT_WHOLE_NUMBERS = [
    "1_0",
    ARABIC_12345,
    FULL_WIDTH_10,
    "\u0663",  # ٣
    "\u00b2",  # ²
    "1e3",
    "nan",
    "inf",
    "1.0",
    "0x10",
    "+-1",
    "1 0",
    NBSP + "12",
    "12" + IDEOGRAPHIC_SPACE,
    "\u200b12",
]
NOT_NUMBERS = [
    "1_0",
    "1_000.5",
    ARABIC_12345,
    FULL_WIDTH_10,
    "\u0668\u066b\u0665",  # ٨٫٥, with the Arabic decimal separator
    "\u0668.\u0665",  # ٨.٥
    "\u00b2",
    "1e3",
    "1E-1",
    "nan",
    "NaN",
    "inf",
    "-Infinity",
    "8..5",
    "8.5.1",
    "8,5",
    ".",
    "0x1",
    "--1",
    "1 0",
    NBSP + "8",
    "8" + IDEOGRAPHIC_SPACE,
    "\ufeff8",
]


@pytest.mark.parametrize("raw", NOT_WHOLE_NUMBERS)
def test_a_whole_number_is_ascii_digits_only(raw: str) -> None:
    # Issue 12: "١٢٣٤٥" parsed as 12345, full-width digits likewise.
    with pytest.raises(ValueError) as err:
        Integer(-(10**9), 10**9).parse("Movie id", raw)
    assert str(err.value) == "Movie id must be a whole number."


@pytest.mark.parametrize("raw", NOT_NUMBERS)
def test_a_number_is_ascii_digits_and_one_point_only(raw: str) -> None:
    # Issue 12: "1_0" parsed as 10, "1e3" as 1000, "١٢٣" as 123.
    with pytest.raises(ValueError) as err:
        Number(-(10**9), 10**9, places=1).parse("Rating", raw)
    assert str(err.value) == "Rating must be a number."


@pytest.mark.parametrize(
    ("raw", "value"),
    [("7", 7), ("+7", 7), ("-7", -7), ("007", 7), (" 12 ", 12), ("\t12\r\n", 12)],
)
def test_a_whole_number_may_have_a_sign_and_ascii_blanks_around(
    raw: str, value: int
) -> None:
    # Issue 12: what stays accepted (forms have always trimmed plain spaces).
    assert Integer(-100, 100).parse("Rating", raw) == value


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("8", 8.0),
        ("8.5", 8.5),
        ("+8.5", 8.5),
        (" 8.5 ", 8.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("8.50", 8.5),
        ("0", 0.0),
        ("-0", 0.0),
        ("-0.0", 0.0),
    ],
)
def test_a_number_may_have_a_sign_a_point_and_ascii_blanks_around(
    raw: str, value: float
) -> None:
    # Issue 12: what stays accepted; "-0" is stored as 0.0, not -0.0, which SQLite
    # would export as "-0.0" and PostgreSQL as "0.0".
    parsed = Number(0, 10, places=1).parse("Rating", raw)
    assert parsed == value
    assert math.copysign(1, parsed) == 1


def test_forms_and_patch_refuse_non_ascii_digits(
    app: Flask, visitor: Visitor, sample: dict[str, int]
) -> None:
    # Issue 12: a form or PATCH must not store "１０" as 10 or "1_0" as 10.
    with app.app_context():
        before = db.session.execute(
            sa.select(Movie.id, Movie.rating).order_by(Movie.id)
        ).all()
        ratings_before = db.session.scalar(sa.select(sa.func.count(Rating.id)))
    alien = sample["alien"]
    sent = [
        ("POST", "/movies", {"name": "N", "director": "D", "rating": FULL_WIDTH_10}),
        ("POST", "/movies", {"name": "N", "director": "D", "rating": "1_0"}),
        ("PATCH", f"/movies/{alien}", {"rating": "\u0669", "version": "1"}),
        ("PATCH", f"/movies/{alien}", {"rating": "1e1", "version": "1"}),
        ("POST", f"/movies/{alien}/ratings", {"rating": "\u0667", "author": "A"}),
    ]
    messages = [
        "Rating must be a number.",
        "Rating must be a number.",
        "Rating must be a number.",
        "Rating must be a number.",
        "Rating must be a whole number.",
    ]
    for (method, url, data), message in zip(sent, messages, strict=True):
        response = visitor.send(method, url, htmx=True, data=data)
        assert response.status_code == 422, (method, url, data)
        assert message in response.get_data(as_text=True), (method, url, data)
    with app.app_context():
        after = db.session.execute(
            sa.select(Movie.id, Movie.rating).order_by(Movie.id)
        ).all()
        assert after == before
        assert db.session.scalar(sa.select(sa.func.count(Rating.id))) == ratings_before


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/movies?min_rating=1_0", "Minimum rating must be a number."),
        ("/movies?min_rating=1e0", "Minimum rating must be a number."),
        (f"/movies?min_rating={FULL_WIDTH_10}", "Minimum rating must be a number."),
        ("/movies.csv?min_rating=0_5", "Minimum rating must be a number."),
        ("/ratings?min_rating=\u0667", "Minimum rating must be a whole number."),
        (f"/ratings?movie_id={ARABIC_12345}", "Movie id must be a whole number."),
        ("/ratings?movie_id=\uff11", "Movie id must be a whole number."),
        ("/ratings.csv?movie_id=1_0", "Movie id must be a whole number."),
        ("/movies?page=%C2%A01", "page must be a whole number"),
        ("/movies?page=1_0", "page must be a whole number"),
        ("/movies?per_page=1%E3%80%80", "per_page must be a whole number"),
        (f"/ratings?per_page={FULL_WIDTH_10}", "per_page must be a whole number"),
    ],
)
def test_query_parameters_refuse_non_ascii_digits(
    visitor: Visitor, url: str, message: str
) -> None:
    # Issue 12: min_rating=1_0 meant 10; a non-breaking space around page was
    # trimmed away.
    response = visitor.client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def csv_file(tmp_path: Path, rows: list[list[str]]) -> Path:
    """Write rows (the header first) as a CSV file the way a spreadsheet would."""
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    path = tmp_path / "upload.csv"
    path.write_bytes(buffer.getvalue().encode())
    return path


def test_import_refuses_non_ascii_digits(
    app: Flask, sample: dict[str, int], tmp_path: Path
) -> None:
    # Issue 12: an id in Arabic-Indic digits was imported as 12345.
    movies = csv_file(
        tmp_path,
        [
            ["id", "name", "director", "rating"],
            [ARABIC_12345, "Heat", "Michael Mann", "8.3"],
            ["", "Heat", "Michael Mann", "1_0"],
            ["", "Ran", "Akira Kurosawa", FULL_WIDTH_10],
            ["\uff11", "Alien", "Ridley Scott", "9"],
        ],
    )
    with app.app_context():
        result = csvfile.preview_file(CrudService(MOVIES, db.session), movies)
    assert result.counts == {"new": 0, "changed": 0, "unchanged": 0, "invalid": 4}
    assert result.errors == [
        RowError(2, "id", "id must be a whole number."),
        RowError(3, "rating", "Rating must be a number."),
        RowError(4, "rating", "Rating must be a number."),
        RowError(5, "id", "id must be a whole number."),
    ]
    ratings = csv_file(
        tmp_path,
        [
            ["rating", "author", "movie_id"],
            ["\u0667", "Ed", str(sample["alien"])],
            ["7", "Ed", "\u0661"],
        ],
    )
    with app.app_context():
        result = csvfile.preview_file(CrudService(RATINGS, db.session), ratings)
    assert result.errors == [
        RowError(2, "rating", "Rating must be a whole number."),
        RowError(3, "movie_id", "Movie id must be a whole number."),
    ]


# ------------------------------------------------------------------ formulas

HIDDEN_FORMULAS = [
    " =1+1",
    "  -2+3",
    " \t@SUM(A1:A9)",
    *(blank + "=1+1" for blank in ZERO_WIDTH),
    "\u200b\u200b+1",
    NBSP + "=1",
    IDEOGRAPHIC_SPACE + "=1",
    *(sign + "1+1" for sign in FULL_WIDTH),
    " \u200b\uff1d1",
]


@pytest.mark.parametrize("cell", HIDDEN_FORMULAS)
def test_import_refuses_a_formula_behind_blanks_or_in_full_width(
    app: Flask, tmp_path: Path, cell: str
) -> None:
    # Issue 12: " =1+1" passed the refusal and, trimmed, was stored as "=1+1".
    path = csv_file(tmp_path, [["name", "director", "rating"], [cell, "Someone", "1"]])
    with app.app_context():
        svc = CrudService(MOVIES, db.session)
        result = csvfile.import_file(svc, path)
        assert db.session.scalar(sa.select(sa.func.count(Movie.id))) == 0
    assert result.counts == {"new": 0, "changed": 0, "unchanged": 0, "invalid": 1}
    [error] = result.errors
    assert (error.line, error.column) == (2, "name")
    assert "a spreadsheet would run it as a formula" in error.reason


def test_the_refusal_names_the_character_and_the_fix(
    app: Flask, tmp_path: Path
) -> None:
    # Issue 12: the message says what was seen past the blanks.
    path = csv_file(
        tmp_path,
        [
            ["name", "director", "rating"],
            [" =1+1", "Someone", "1"],
            ["\uff20x", "Someone", "1"],
        ],
    )
    with app.app_context():
        result = csvfile.preview_file(CrudService(MOVIES, db.session), path)
    assert result.errors == [
        RowError(
            2,
            "name",
            "starts with '=' after blank or invisible characters, so a spreadsheet"
            " would run it as a formula; write ' in front to keep it as text.",
        ),
        RowError(
            3,
            "name",
            "starts with '\uff20', so a spreadsheet would run it as a formula;"
            " write '\uff20… to keep it as text.",
        ),
    ]


@pytest.mark.parametrize(
    ("cell", "stored"),
    [
        ("' =1+1", "=1+1"),  # names are trimmed: still a formula, still protected
        ("'\u200b=1+1", "\u200b=1+1"),
        ("'\uff1d1+1", "\uff1d1+1"),
        ("''\uff20x", "'\uff20x"),
        ("'-ish", "-ish"),
        ("\u200bplain", "\u200bplain"),
        ("a \uff1d b", "a \uff1d b"),
    ],
)
def test_import_takes_a_protected_formula_and_removes_one_apostrophe(
    app: Flask, tmp_path: Path, cell: str, stored: str
) -> None:
    # Issue 12: the protection that the export adds is the one the import removes.
    path = csv_file(tmp_path, [["name", "director", "rating"], [cell, "Someone", "1"]])
    with app.app_context():
        result = csvfile.import_file(CrudService(MOVIES, db.session), path)
        assert result.counts["new"] == 1, result.errors
        assert db.session.scalars(sa.select(Movie.name)).all() == [stored]


EXPORT_PREFIXED = [
    *(sign + "1+1" for sign in FULL_WIDTH),
    *(blank + "=1+1" for blank in ZERO_WIDTH),
    "\u200b\u2060-1",
    "\ufeff\uff0b1",
    " =1",  # not from a form (it trims), but possible in the database
    NBSP + "=1",
    IDEOGRAPHIC_SPACE + "\uff1d1",
    "'\uff1d1",
    "''\u200b@x",
]


@pytest.mark.parametrize("value", EXPORT_PREFIXED)
def test_export_protects_full_width_and_hidden_formulas(app: Flask, value: str) -> None:
    # Issue 12: "＝1+1" and a formula behind a zero-width character went out bare.
    with app.app_context():
        db.session.add(Movie(name=value, director=value, rating=None))
        db.session.commit()
    client = app.test_client()
    body = b"".join(client.get("/movies.csv").response).decode()
    [row] = list(csv.reader(io.StringIO(body, newline="")))[1:]
    assert row[1:3] == ["'" + value, "'" + value]
    assert csvfile.format_text(value) == "'" + value


def combinations() -> list[str]:
    """Texts that try every way of starting: apostrophes, blanks, a first sign."""
    apostrophes = ["", "'", "''"]
    blanks = ["", " ", "\t", "\r", "\n", NBSP, IDEOGRAPHIC_SPACE, " \u2060"]
    blanks += ZERO_WIDTH
    firsts = ["=", "+", "-", "@", *FULL_WIDTH, "a", "'", "\u6771", "1", '"', ","]
    return [
        a + b + f + "x" for a, b, f in itertools.product(apostrophes, blanks, firsts)
    ]


def test_sql_and_python_write_the_same_cells(app: Flask) -> None:
    # Issue 12: the database formats the cells of an export itself; both rules
    # must see past blanks and full-width signs in the same way.
    values = combinations()
    with app.app_context():
        db.session.add_all(Movie(name=v, director="d", rating=None) for v in values)
        db.session.commit()
        svc = CrudService(MOVIES, db.session)
        line = csvfile.line_expression(svc, ["id", "name"])
        got = [
            row[0] if isinstance(row[0], str) else row[0].decode()
            for batch in svc.reader.fetch_batches(svc.parse_query({}), line)
            for row in batch
        ]
        stored = db.session.execute(sa.select(Movie.id, Movie.name)).all()
    assert sorted(name for _, name in stored) == sorted(values)
    expected = [f"{i},{csvfile.format_text(name)}\r\n" for i, name in stored]
    assert sorted(got) == sorted(expected)


@pytest.mark.parametrize("value", combinations())
def test_the_import_undoes_exactly_what_the_export_adds(value: str) -> None:
    # Issue 12: every cell the export writes reads back as the stored text, and
    # every unprotected formula-looking cell is refused.
    [cell] = next(csv.reader(io.StringIO(csvfile.format_text(value), newline="")))
    assert csvfile.read_text(cell) == value
    if cell != value and not value.startswith("'"):  # the bare text is refused
        with pytest.raises(ValueError, match="formula"):
            csvfile.read_text(value)


def test_hidden_and_full_width_formulas_round_trip(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    # Issue 12: export, import into empty tables, export again: the same bytes.
    names = [
        "\uff1d1+1",
        "\uff0bPlus",
        "\uff0dminus",
        "\uff20at",
        "\u200b=1+1",
        "\ufeff@x",
        "\u2060-x",
        "'\uff1dAlready",
        "-ish",
        "a \uff1d b",
        "Zo\u00eb",
    ]
    with app.app_context():
        movies = CrudService(MOVIES, db.session)
        ratings = CrudService(RATINGS, db.session)
        for i, name in enumerate(names):
            movie = movies.create({"name": name, "director": name, "rating": "5"})
            ratings.create(
                {"rating": str(i % 10 + 1), "author": name, "movie_id": movie.id}
            )
    first = {t: tmp_path / f"{t}-1.csv" for t in ("movies", "ratings")}
    second = {t: tmp_path / f"{t}-2.csv" for t in ("movies", "ratings")}
    for table, path in first.items():
        assert runner.invoke(args=["export", table, "--out", str(path)]).exit_code == 0
    assert ",'\uff1d1+1,".encode() in first["movies"].read_bytes()
    assert ",'\u200b=1+1,".encode() in first["movies"].read_bytes()
    with app.app_context():
        db.session.execute(sa.delete(Rating))
        db.session.execute(sa.delete(Movie))
        db.session.commit()
    for table, path in first.items():
        result = runner.invoke(args=["import", table, str(path), "--commit"])
        assert result.exit_code == 0, result.output
    for table, path in second.items():
        assert runner.invoke(args=["export", table, "--out", str(path)]).exit_code == 0
        assert path.read_bytes() == first[table].read_bytes()
    with app.app_context():
        assert sorted(db.session.scalars(sa.select(Movie.name))) == sorted(names)


@pytest.mark.parametrize("path", ["/movies/١/row", "/movies/１/row", "/movies/1١/row"])
def test_path_ids_are_ascii_digits_only(
    client: FlaskClient, sample: dict, path: str
) -> None:
    # Issue 12: Werkzeug's <int:> took Arabic-Indic and full-width digits.
    assert client.get(path).status_code == 404
    assert client.get("/movies/1/row").status_code == 200
