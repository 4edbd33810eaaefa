"""CSV import: the preview, bad files, and all valid rows in one transaction."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from app import crud, csvfile
from app.accounts import create_user
from app.crud import CrudService
from app.crud.bulk import Bulk
from app.csvfile import RowError, importer
from app.db import db
from app.models import Import, Movie, Rating
from app.resources import MOVIES, RATINGS
from tests.conftest import Hx, dispose, make_app

HEADER = b"id,name,director,rating\r\n"


def preview(app: Flask, tmp_path: Path, name: str, data: bytes) -> csvfile.Preview:
    """Preview a file's import without the web layer."""
    path = tmp_path / "upload.csv"
    path.write_bytes(data)
    with app.app_context():
        svc = CrudService(MOVIES if name == "movies" else RATINGS, db.session)
        return csvfile.preview_file(svc, path)


def upload(client: FlaskClient, name: str, data: bytes, **fields: str):  # noqa: ANN201
    """Post a file to the import page."""
    # Encoded here: the test client spools a big body to a file it never closes.
    boundary, body = encode_multipart(
        {
            "resource": name,
            "file": FileStorage(io.BytesIO(data), filename="upload.csv"),
            **fields,
        }
    )
    return client.post(
        "/import",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )


@pytest.fixture
def app_with(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build apps with extra config on the test database; dispose of them after."""
    apps: list[Flask] = []

    def build(**extra: object) -> Flask:
        apps.append(make_app(database_url, tmp_path / f"instance-{len(apps)}", **extra))
        return apps[-1]

    yield build
    for built in apps:
        dispose(built)


def rows(model: type) -> list[tuple]:
    """Every stored row's exported columns, by id, read straight from the database."""
    table = model.__table__
    names = MOVIES.exported if model is Movie else RATINGS.exported
    with db.engine.connect() as conn:
        stmt = sa.select(*(table.c[n] for n in names)).order_by(table.c.id)
        return [tuple(r) for r in conn.execute(stmt)]


def versions(model: type) -> dict[int, int]:
    """{id: version} of every stored row."""
    table = model.__table__
    with db.engine.connect() as conn:
        return dict(conn.execute(sa.select(table.c.id, table.c.version)).all())


# ------------------------------------------------------------------ the preview

MIXED_MOVIES = (
    HEADER
    + b"1,Alien,Ridley Scott,8.5\r\n"  # 2 unchanged
    + b"2,Blade Runner 2049,Ridley Scott,8.1\r\n"  # 3 changed (name)
    + b",Heat,Michael Mann,8.3\r\n"  # 4 new
    + b",Cure,Kiyoshi Kurosawa,\r\n"  # 5 unchanged, matched by name + director
    + b",Cure,Kiyoshi Kurosawa,7.0\r\n"  # 6 the same movie again
    + b"9,Ran,Akira Kurosawa,8.2\r\n"  # 7 no movie 9 (issue 11: not created)
    + b"1,Alien,Ridley Scott,8.5\r\n"  # 8 the id of line 2 again
    + b",=HYPERLINK(x),Someone,1.0\r\n"  # 9 an unprotected formula
    + b",'=Protected,Someone,1.0\r\n"  # 10 new, stored as "=Protected"
    + b",Bad,Someone,11\r\n"  # 11 out of range
    + b"abc,X,Y,1\r\n"  # 12 not an id
    + b",Only,Three\r\n"  # 13 a field missing
    + b"\r\n"  # 14 blank: skipped
    + b',"Two\r\nlines",Someone,\r\n'  # 15-16 new, a quoted line break
    + b",  ,Someone,1\r\n"  # 17 blank name
    + b",Heat,Michael Mann,8.3\r\n"  # 18 repeats line 4
)


def test_preview_counts_and_every_reason(
    app: Flask, sample: dict, tmp_path: Path
) -> None:
    result = preview(app, tmp_path, "movies", MIXED_MOVIES)
    assert result.counts == {"new": 3, "changed": 1, "unchanged": 2, "invalid": 9}
    assert result.errors == [
        RowError(
            6, "name,director", "matches the same movie (id 3) as an earlier line."
        ),
        RowError(
            7,
            "id",
            "There is no movie with id 9; leave the id empty to add it as a new movie.",
        ),
        RowError(8, "id", "id 1 appears more than once in the file."),
        RowError(
            9,
            "name",
            "starts with '=', so a spreadsheet would run it as a formula;"
            " write '=… to keep it as text.",
        ),
        RowError(11, "rating", "Rating must be between 0 and 10."),
        RowError(12, "id", "id must be a whole number."),
        RowError(13, "", "has 3 fields; the header has 4."),
        RowError(17, "name", "Name is required."),
        RowError(18, "name,director", "repeats an earlier line of the file."),
    ]


def test_preview_writes_nothing(app: Flask, sample: dict, tmp_path: Path) -> None:
    with app.app_context():
        before = rows(Movie)
    preview(app, tmp_path, "movies", MIXED_MOVIES)
    with app.app_context():
        assert rows(Movie) == before


def test_import_writes_the_valid_rows(app: Flask, sample: dict, tmp_path: Path) -> None:
    path = tmp_path / "movies.csv"
    path.write_bytes(MIXED_MOVIES)
    with app.app_context():
        before = versions(Movie)
        result = csvfile.import_file(CrudService(MOVIES, db.session), path)
        assert result.counts == {"new": 3, "changed": 1, "unchanged": 2, "invalid": 9}
        stored = rows(Movie)
        after = versions(Movie)
        renamed = rows(Rating)
    assert stored == [
        (1, "Alien", "Ridley Scott", 8.5),
        (2, "Blade Runner 2049", "Ridley Scott", 8.1),
        (3, "Cure", "Kiyoshi Kurosawa", None),
        (4, "Heat", "Michael Mann", 8.3),
        (5, "=Protected", "Someone", 1.0),
        (6, "Two\r\nlines", "Someone", None),
    ]
    # The changed movie is a new version; its ratings carry the new name.
    assert after[2] == before[2] + 1
    assert after[1] == before[1]
    assert (3, 8, "Cy", 2, "Blade Runner 2049") in renamed


def test_ratings_preview(app: Flask, sample: dict, tmp_path: Path) -> None:
    data = (
        b"id,rating,author,movie_id,movie_name\r\n"
        b"1,9,Ana,1,Alien\r\n"  # 2 unchanged
        b"2,5,Bo,1,Alien\r\n"  # 3 changed (rating)
        b",7,Ed,2,whatever\r\n"  # 4 new; movie_name comes from the movie
        b",7,Ed,99,Nope\r\n"  # 5 no such movie
        b"3,8,Cy,1,Alien\r\n"  # 6 moving a rating to another movie
        b",0,Fay,1,Alien\r\n"  # 7 out of range
        b",7,@Fay,1,Alien\r\n"  # 8 formula-looking author
    )
    result = preview(app, tmp_path, "ratings", data)
    assert result.counts == {"new": 1, "changed": 1, "unchanged": 1, "invalid": 4}
    assert result.errors == [
        RowError(5, "movie_id", "There is no movie with id 99."),
        RowError(6, "movie_id", "Movie id cannot be changed (it is 2)."),
        RowError(7, "rating", "Rating must be between 1 and 10."),
        RowError(
            8,
            "author",
            "starts with '@', so a spreadsheet would run it as a formula;"
            " write '@… to keep it as text.",
        ),
    ]
    path = tmp_path / "ratings.csv"
    path.write_bytes(data)
    with app.app_context():
        csvfile.import_file(CrudService(RATINGS, db.session), path)
        assert rows(Rating) == [
            (1, 9, "Ana", 1, "Alien"),
            (2, 5, "Bo", 1, "Alien"),
            (3, 8, "Cy", 2, "Blade Runner"),
            (4, 6, "Di", 3, "Cure"),
            (5, 7, "Ed", 2, "Blade Runner"),
        ]


def test_ambiguous_match_needs_an_id(app: Flask, tmp_path: Path) -> None:
    with app.app_context():
        db.session.add_all(
            [Movie(name="Twin", director="Same"), Movie(name="Twin", director="Same")]
        )
        db.session.commit()
    result = preview(app, tmp_path, "movies", HEADER + b",Twin,Same,5\r\n")
    assert result.errors == [
        RowError(
            2, "name,director", "matches 2 existing movies; add the id to choose one."
        )
    ]


def test_errors_listed_are_capped_but_all_counted(app: Flask, tmp_path: Path) -> None:
    data = HEADER + b",Bad,Someone,99\r\n" * 600
    result = preview(app, tmp_path, "movies", data)
    assert result.invalid == 600
    assert len(result.errors) == importer.MAX_ERRORS == 500


def test_header_may_omit_id_and_reorder(app: Flask, tmp_path: Path) -> None:
    data = b"\r\nRating, Director ,NAME\r\n7.5,Someone,Film\r\n,,\r\n=,x,y\r\n"
    result = preview(app, tmp_path, "movies", data)
    assert result.counts == {"new": 1, "changed": 0, "unchanged": 0, "invalid": 1}
    assert result.errors == [RowError(5, "rating", "Rating must be a number.")]


# ------------------------------------------------------------------ bad files

LATIN1 = HEADER + b"1,Am\xe9lie,Jeunet,8.3\r\n"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty. Its first line must be: id,name,director,rating"),
        (
            b"\xef\xbb\xbf",
            "The file is empty. Its first line must be: id,name,director,rating",
        ),
        (
            b"\r\n \r\n",
            "The file is empty. Its first line must be: id,name,director,rating",
        ),
        (
            b"Alien,Ridley Scott,8.5\r\n",
            "The first line must be the header: id,name,director,rating"
            " (found 'Alien,Ridley Scott,8.5').",
        ),
        (
            b"name,director\r\nAlien,Ridley Scott\r\n",
            "The header lacks 'rating'; the columns are id,name,director,rating.",
        ),
        (
            b"id,name,director,rating,budget\r\n",
            "Unknown column 'budget' in the header; the columns are"
            " id,name,director,rating.",
        ),
        (b"id,name,NAME,director,rating\r\n", "The header names 'name' twice."),
        (
            LATIN1,
            "Line 2 is not UTF-8 text (byte 0xE9 at position 5). Save the file as"
            ' "CSV UTF-8" and upload it again.',
        ),
        (
            "id,name,director,rating\r\n".encode("utf-16"),
            'This file is UTF-16 text. Save it as "CSV UTF-8" and upload that.',
        ),
        (
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
            "This is not a CSV file: it holds binary data.",
        ),
        (
            b"PK\x03\x04\x14\x00\x06\x00",
            "This is a spreadsheet workbook, not a CSV file. Save it as"
            ' "CSV UTF-8 (comma delimited)" and upload that.',
        ),
        (
            HEADER + b'1,"Ali"en,Ridley Scott,8.5\r\n',
            "Line 2 is not valid CSV: ',' expected after '\"'. A double quote"
            " inside a field must be doubled, and the field quoted.",
        ),
        (
            HEADER + b'1,"Alien,Ridley Scott,8.5\r\n',
            "Line 2 is not valid CSV: unexpected end of data. A double quote"
            " inside a field must be doubled, and the field quoted.",
        ),
        (
            HEADER + b"x" * 70_000,
            "Line 2 is longer than 64 KB; this is not a CSV file of this table.",
        ),
    ],
)
def test_bad_files_are_refused_with_a_reason(
    app: Flask, client: FlaskClient, tmp_path: Path, data: bytes, message: str
) -> None:
    with pytest.raises(csvfile.CsvFileError) as caught:
        preview(app, tmp_path, "movies", data)
    assert caught.value.message == message
    response = upload(client, "movies", data)
    assert response.status_code == 422
    assert "This file cannot be imported." in response.text
    escaped = message.replace("'", "&#39;").replace('"', "&#34;")
    assert escaped in response.text
    with app.app_context():  # nothing stored: no upload, no state
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Import)) == 0


def test_binary_after_the_first_block(app: Flask, tmp_path: Path) -> None:
    data = HEADER + b",Fine,Someone,1\r\n" * 1000 + b"\x00\x01\x02\r\n"
    with pytest.raises(csvfile.CsvFileError) as caught:
        preview(app, tmp_path, "movies", data)
    assert (
        caught.value.message == "This is not a CSV file: line 1002 holds binary data."
    )


def test_missing_form_fields(client: FlaskClient) -> None:
    response = client.post("/import", data={"resource": "movies"})
    assert response.status_code == 422
    assert "Choose a CSV file to upload." in response.text
    response = upload(client, "users", HEADER)
    assert response.status_code == 422
    assert "Choose the table to import into." in response.text


# Runs in a fresh interpreter, so its peak RSS is the upload's and nobody else's.
UPLOAD_SCRIPT = """
import resource, sys
from pathlib import Path
from werkzeug.test import EnvironBuilder, run_wsgi_app
from tests.conftest import make_app

app = make_app(sys.argv[1], Path(sys.argv[2]))
with open(sys.argv[3], "rb") as upload:
    builder = EnvironBuilder(
        path="/import",
        method="POST",
        data={"resource": "movies", "file": (upload, "big.csv")},
    )
    environ = builder.get_environ()  # the body is spooled to a temporary file
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
_, status, headers = run_wsgi_app(app, environ, buffered=True)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
builder.close()
print(status, (after - before) * 1024)
print(headers.get("Set-Cookie", "").split(";")[0])  # the uploader's session
"""


def test_fifty_megabytes_are_streamed(
    app: Flask, database_url: str, tmp_path: Path
) -> None:
    # 50 MB of long rows and a bad one at the very end: the whole file is read,
    # line by line, and neither the upload nor the parse holds it in memory.
    name, director = "N" * 180, "D" * 100
    line_length = len(f",{name} 000000,{director},5.0\r\n")
    count = 50 * 1024 * 1024 // line_length + 1
    big = tmp_path / "big.csv"
    with big.open("wb") as f:
        f.write(HEADER)
        for i in range(count):
            f.write(f",{name} {i:06},{director},5.0\r\n".encode())
        f.write(b",=bad,Someone,1\r\n")
    assert big.stat().st_size > 50 * 1024 * 1024
    done = subprocess.run(
        [sys.executable, "-c", UPLOAD_SCRIPT, database_url, app.instance_path, big],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    *_, result, cookie = done.stdout.splitlines()
    status, growth = result.split()[0], int(result.split()[-1])
    print(f"\n50 MB upload of {count:,} rows: peak RSS grew {growth / 1e6:.1f} MB")
    assert status == "303"
    assert growth < 40_000_000
    with app.app_context():
        token = db.session.scalar(sa.select(Import.token))
    uploader = app.test_client()  # the same browser: an import is its owner's
    uploader.set_cookie(*cookie.split("=", 1))
    page = uploader.get(f"/import/{token}").text
    assert f'<th scope="row">New</th><td>{count:,}</td>' in page
    assert '<th scope="row">Invalid</th><td>1</td>' in page
    assert f"<tr><td>{count + 2}</td><td>name</td>" in page


def test_upload_over_the_limit_is_413(app_with: Callable[..., Flask]) -> None:
    app = app_with(IMPORT_MAX_BYTES=1000)
    response = upload(app.test_client(), "movies", HEADER + b",x,y,1\r\n" * 100)
    assert response.status_code == 413
    assert "The file is larger than the import limit of 1,000 bytes." in response.text
    small = upload(app.test_client(), "movies", HEADER + b",x,y,1\r\n")
    assert small.status_code == 303


def test_import_limit_is_above_the_app_wide_limit(app: Flask) -> None:
    assert app.config["IMPORT_MAX_BYTES"] == 64 * 1024 * 1024
    data = HEADER + b",A film,Someone,5.0\r\n" * 100_000  # 2 MB
    assert len(data) > app.config["MAX_CONTENT_LENGTH"]
    assert upload(app.test_client(), "movies", data).status_code == 303


def test_read_only_server_offers_no_import(app_with: Callable[..., Flask]) -> None:
    client = app_with(READ_ONLY=True).test_client()
    page = client.get("/import").text
    assert "this server is read-only for everyone." in page
    assert 'id="import-form"' not in page
    assert upload(client, "movies", HEADER + b",x,y,1\r\n").status_code == 403


def test_with_accounts_importing_needs_sign_in(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        create_user("ana", "a long enough password")
    page = client.get("/import").text
    assert 'id="import-form"' not in page
    assert '<a href="/login?next=/import">sign in</a> first.' in page
    assert upload(client, "movies", HEADER + b",x,y,1\r\n").status_code == 403


def test_csrf_is_checked_after_raising_the_limit(
    app_with: Callable[..., Flask],
) -> None:
    app = app_with(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    data = HEADER + b",A film,Someone,5.0\r\n" * 100_000  # over 1 MB
    assert upload(client, "movies", data).status_code == 400
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/import").text)
    assert token
    assert upload(client, "movies", data, csrf_token=token[1]).status_code == 303


# ------------------------------------------------------------------ the page


def test_page_flow_without_javascript(client: FlaskClient, sample: dict) -> None:
    page = client.get("/import")
    assert page.status_code == 200
    assert 'enctype="multipart/form-data"' in page.text
    assert "js/import.js" in page.text
    response = upload(client, "movies", HEADER + b",Heat,Michael Mann,8.3\r\n")
    assert response.status_code == 303
    location = response.headers["Location"]
    assert re.fullmatch(r"/import/[\w-]{24}", location)
    shown = client.get(location)
    assert '<th scope="row">New</th><td>1</td>' in shown.text
    assert f'action="{location}"' in shown.text
    assert ">Import 1 row</button>" in shown.text
    done = client.post(location)
    assert done.status_code == 303
    assert done.headers["Location"] == location
    result = client.get(location).text
    assert "1 new and 0 changed" in result
    with client.application.app_context():
        assert rows(Movie)[-1] == (4, "Heat", "Michael Mann", 8.3)
    # A second click finds the import done and writes nothing more.
    again = client.post(location)
    assert again.status_code == 200
    assert "1 new and 0 changed" in again.text
    with client.application.app_context():
        assert len(rows(Movie)) == 4


def test_page_flow_with_htmx(hx: Hx, sample: dict) -> None:
    response = hx.post(
        "/import",
        data={
            "resource": "ratings",
            "file": (io.BytesIO(b"rating,author,movie_id\r\n7,Eve,3\r\n"), "r.csv"),
        },
    )
    assert response.status_code == 200
    assert not response.text.lstrip().startswith("<!doctype")
    assert 'id="import-preview"' in response.text
    location = response.headers["HX-Push-Url"]
    done = hx.post(location)
    assert done.status_code == 200
    assert 'id="import-done"' in done.text
    assert "1 new and 0 changed" in done.text
    with hx.client.application.app_context():
        assert rows(Rating)[-1] == (5, 7, "Eve", 3, "Cure")


def test_bad_file_fragment_for_htmx(hx: Hx) -> None:
    response = hx.post(
        "/import", data={"resource": "movies", "file": (io.BytesIO(b""), "e.csv")}
    )
    assert response.status_code == 422
    assert response.text.lstrip().startswith('<div class="error-message"')


def test_nothing_to_import_has_no_button(client: FlaskClient, sample: dict) -> None:
    response = upload(client, "movies", HEADER + b"1,Alien,Ridley Scott,8.5\r\n")
    page = client.get(response.headers["Location"]).text
    assert "There is nothing to import." in page
    preview = page.split('id="import-preview"')[1].split('id="toasts"')[0]
    assert "<button" not in preview


def test_outdated_preview_writes_nothing(client: FlaskClient, sample: dict) -> None:
    data = HEADER + "1,Alien³,Ridley Scott,8.5\r\n".encode()
    response = upload(client, "movies", data)
    location = response.headers["Location"]
    with client.application.app_context():
        CrudService(MOVIES, db.session).update(1, {"name": "Alien³"}, version=1)
    result = client.post(location)
    assert result.status_code == 200
    assert "The table changed since this preview" in result.text
    assert '<th scope="row">Unchanged</th><td>1</td>' in result.text
    assert "There is nothing to import." in result.text


def test_a_failed_write_leaves_nothing(
    client: FlaskClient, sample: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = (
        HEADER + b",Heat,Michael Mann,8.3\r\n2,Blade Runner 2049,Ridley Scott,8.1\r\n"
    )
    location = upload(client, "movies", data).headers["Location"]

    def refuse(self, changes, batch=1000):  # noqa: ANN001, ANN202
        raise crud.ValidationError({"_": "The database refused this change."})

    monkeypatch.setattr(Bulk, "update_many", refuse)
    response = client.post(location)
    assert response.status_code == 409
    assert "Nothing was imported: The database refused this change." in response.text
    with client.application.app_context():
        assert [r[1] for r in rows(Movie)] == ["Alien", "Blade Runner", "Cure"]
    monkeypatch.undo()
    assert client.post(location).status_code == 303  # the file is still there


def test_unknown_or_malformed_token_is_404(client: FlaskClient) -> None:
    assert client.get("/import/" + "a" * 24).status_code == 404
    assert client.get("/import/..%2F..%2Fsecret_key").status_code == 404
    assert client.post("/import/" + "b" * 24).status_code == 404


def test_csv_links_partial(app: Flask, sample: dict) -> None:
    with app.test_request_context():
        svc = CrudService(MOVIES, db.session)
        page = svc.list(
            svc.parse_query(
                {"q": "ridley", "sort": "-rating", "page": "1", "per_page": "1"}
            )
        )
        html = app.jinja_env.get_template("partials/csv_links.html").render(
            resource=MOVIES, page=page
        )
    assert 'href="/movies.csv?q=ridley&amp;sort=-rating"' in html
    assert 'href="/movies.csv?bom=1&amp;q=ridley&amp;sort=-rating"' in html
    assert ">Download CSV</a>" in html
    assert ">CSV for Excel</a>" in html
