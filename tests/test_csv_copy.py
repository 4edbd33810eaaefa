"""CSV export through the database's COPY (PostgreSQL): the same bytes as the lines.

On PostgreSQL export_chunks lets `COPY (SELECT ...) TO STDOUT (FORMAT csv)` quote
the cells (app/csvfile/cells.py copy_cells); on SQLite it formats whole lines in
SQL (line_expression). Every file must be byte for byte what line_expression and
format_text write, whatever the text, the filters and the order.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from app import csvfile
from app.crud import CrudService
from app.crud.dialect import PostgreSQL
from app.csvfile.export import _crlf
from app.db import db
from app.models import Movie, Rating
from app.resources import MOVIES, RATINGS

ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
FULL_WIDTH = ["\uff1d", "\uff0b", "\uff0d", "\uff20"]


def awkward_texts() -> list[str]:
    """Every way a cell can start, and every character COPY or we might quote."""
    apostrophes = ["", "'", "''"]
    blanks = ["", " ", "\t", "\r", "\n", "\u00a0", "\u3000", " \u2060", *ZERO_WIDTH]
    firsts = ["=", "+", "-", "@", *FULL_WIDTH, "a", "'", "\u6771", "1", '"', ","]
    starts = [
        a + b + f + "x" for a, b, f in itertools.product(apostrophes, blanks, firsts)
    ]
    return starts + [
        "\\.",
        "\\",
        "\\N",
        "NULL",
        'Say "Hi", Bob',
        '""',
        '"',
        "a,b",
        "Two\nlines",
        "CR\r\nLF",
        "lone\rCR",
        "ends with LF\n",
        "\n",
        "100%",
        "%(name)s",
        "%%",
        "Zoë Ünïcode 東京 🎬",
        "tab\tinside",
    ]


def line_path(svc: CrudService, args: dict[str, str]) -> bytes:
    """The export as line_expression writes it (the path SQLite takes)."""
    query = svc.parse_query(args)
    line = csvfile.line_expression(svc)
    body = b"".join(
        row[0] if isinstance(row[0], bytes) else row[0].encode()
        for rows in svc.reader.fetch_batches(query, line)
        for row in rows
    )
    return csvfile.header_line(svc.resource).encode() + body


def exported(svc: CrudService, args: dict[str, str], batch: int = 4096) -> bytes:
    """The export as export_chunks streams it."""
    chunks = csvfile.export_chunks(svc, svc.parse_query(args), batch=batch)
    return b"".join(chunks)


@pytest.fixture
def copies(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The COPY statements run (PostgreSQL only: elsewhere export has no COPY)."""
    seen: list[str] = []
    real = PostgreSQL.copy_csv

    def spy(self: PostgreSQL, conn: Any, sql: str, params: Any, batch: int) -> Any:
        seen.append(sql)
        return real(self, conn, sql, params, batch)

    monkeypatch.setattr(PostgreSQL, "copy_csv", spy)
    yield seen


@pytest.fixture
def awkward(app: Flask) -> list[str]:
    """Movies and ratings holding every awkward text, and ratings or NULLs."""
    texts = awkward_texts()
    with app.app_context():
        movies = [
            Movie(
                name=t,
                director=texts[-1 - i],
                rating=None if i % 7 == 0 else i % 101 / 10,
            )
            for i, t in enumerate(texts)
        ]
        db.session.add_all(movies)
        db.session.flush()
        db.session.add_all(
            Rating(rating=i % 10 + 1, author=t, movie_id=movies[i % 5].id)
            for i, t in enumerate(texts)
        )
        db.session.commit()
    return texts


QUERIES = [
    {},
    {"sort": "rating"},
    {"sort": "-name"},
    {"q": "x"},
    {"q": "100%"},
    {"q": "'"},
    {"q": '"'},
    {"min_rating": "2.5", "sort": "director"},
]


@pytest.mark.parametrize("args", QUERIES)
def test_movies_export_is_byte_identical_to_the_lines(
    app: Flask, awkward: list[str], copies: list[str], args: dict[str, str]
) -> None:
    with app.app_context():
        svc = CrudService(MOVIES, db.session)
        expected = line_path(svc, args)
        got = exported(svc, args)
        assert got == expected
        assert got.count(b"\r\n") >= 2  # a header and rows, at least
        assert bool(copies) == svc.backend.copies_csv


@pytest.mark.parametrize(
    "args",
    [{}, {"sort": "author"}, {"author": "%"}, {"author": "'"}, {"min_rating": "5"}],
)
def test_ratings_export_is_byte_identical_to_the_lines(
    app: Flask, awkward: list[str], copies: list[str], args: dict[str, str]
) -> None:
    with app.app_context():
        svc = CrudService(RATINGS, db.session)
        assert exported(svc, args) == line_path(svc, args)
        assert bool(copies) == svc.backend.copies_csv


def test_every_cell_is_what_format_text_writes(app: Flask, awkward: list[str]) -> None:
    with app.app_context():
        svc = CrudService(MOVIES, db.session)
        got = exported(svc, {}, batch=7)
        stored = db.session.execute(
            sa.select(Movie.id, Movie.name, Movie.director, Movie.rating)
        ).all()
    rows = {i: (n, d, r) for i, n, d, r in stored}
    read = list(csv.reader(io.StringIO(got.decode(), newline="")))
    order = [int(r[0]) for r in read[1:]]
    assert sorted(order) == sorted(rows)
    cell = csvfile.format_text
    expected = "id,name,director,rating\r\n" + "".join(
        f"{i},{cell(rows[i][0])},{cell(rows[i][1])},"
        f"{'' if rows[i][2] is None else f'{rows[i][2]:.1f}'}\r\n"
        for i in order
    )
    assert got == expected.encode()
    assert b',"",' not in got  # an empty text is an empty cell, as ours


def test_batches_are_whole_lines_whatever_the_cells_hold(
    app: Flask, awkward: list[str]
) -> None:
    with app.app_context():
        svc = CrudService(MOVIES, db.session)
        counted: list[int] = []
        chunks = list(
            csvfile.export_chunks(
                svc, svc.parse_query({}), batch=3, on_rows=counted.append
            )
        )
    assert counted == [3] * (len(awkward) // 3) + (
        [len(awkward) % 3] if len(awkward) % 3 else []
    )
    assert len(chunks) == len(counted)
    for chunk in chunks:
        assert chunk.endswith(b"\r\n")
        assert chunk.count(b'"') % 2 == 0  # no quoted cell is cut in two


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([b"1,a\n", b"2,b\n"], b"1,a\r\n2,b\r\n"),
        ([b'1,"a\nb"\n'], b'1,"a\nb"\r\n'),
        (
            [b'1,"a\r\nb",""""\n', b'2,"x""\n""y"\n'],
            b'1,"a\r\nb",""""\r\n2,"x""\n""y"\r\n',
        ),
        ([b'1,"\n",\n', b"2,,\n"], b'1,"\n",\r\n2,,\r\n'),
    ],
)
def test_crlf_ends_lines_and_keeps_line_feeds_inside_quotes(
    lines: list[bytes], expected: bytes
) -> None:
    assert _crlf(lines) == expected
