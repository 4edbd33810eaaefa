"""A table is a model, a migration calling app/crud/schema.py, and one declaration.

Proved with a third table, directors, that no app code knows: it gets its list
page, search, filters, inline edits, create, delete and undo, CSV download and
import. It runs in a child process (`prove`), so its model never joins the
metadata the other tests share (test_migrations compares that with the schema).
The migration helpers are checked against what the shipped migrations made for
movies and ratings.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from flask_migrate import upgrade
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from app.crud import schema
from app.db import db
from tests.conftest import (
    Hx,
    dispose,
    make_app,
)

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- the helpers


def extras(conn: sa.Connection) -> set[tuple[Any, ...]]:
    """What the helpers make: counters, search tables, triggers, trigram indexes."""
    if conn.dialect.name == "sqlite":
        made = conn.execute(
            sa.text(
                "SELECT type, name, tbl_name, sql FROM sqlite_master"
                " WHERE name LIKE 'row_counts_%' OR name LIKE 'movies_search%'"
                " OR name LIKE 'ratings_search%'"
            )
        )
        counters = conn.execute(sa.text("SELECT * FROM row_counts"))
        return {tuple(r) for r in made} | {("row", *r) for r in counters}
    made = conn.execute(
        sa.text(
            "SELECT indexname, indexdef FROM pg_indexes"
            " WHERE schemaname = current_schema() AND indexname LIKE '%trgm'"
        )
    )
    return {tuple(r) for r in made}


def test_helpers_make_what_the_shipped_migrations_made(
    empty_database_url: str, tmp_path: Path
) -> None:
    from app.resources import MOVIES, RATINGS

    app = make_app(empty_database_url, tmp_path / "instance")
    try:
        with app.app_context():
            upgrade()
            with db.engine.begin() as conn:
                shipped = extras(conn)
                op = Operations(MigrationContext.configure(conn))
                for resource in (MOVIES, RATINGS):
                    schema.drop_declared(op, resource)
                assert extras(conn) == set()
                for resource in (MOVIES, RATINGS):
                    schema.create_declared(op, resource)
                assert extras(conn) == shipped
    finally:
        dispose(app)
    # Something was compared: both tables' counters and indexes.
    if empty_database_url.startswith("sqlite"):
        names = {str(row[1]) for row in shipped}
        for table in ("movies", "ratings"):
            assert {f"row_counts_{table}_{e}" for e in schema.EVENTS} <= names
            assert {f"{table}_search", f"{table}_search_terms"} <= names
            assert {f"{table}_search_{e}" for e in schema.EVENTS} <= names
        # Folded values (accents off, ASCII lower-cased) in a case-sensitive index.
        sql = {str(row[1]): str(row[3]) for row in shipped if row[0] != "row"}
        assert "tokenize='trigram case_sensitive 1'" in sql["movies_search"]
        assert "lower(CASE WHEN" in sql["ratings_search_update"]
    else:
        assert {str(row[0]) for row in shipped} == {
            "ix_movies_name_trgm",
            "ix_movies_director_trgm",
            "ix_ratings_author_trgm",
            "ix_ratings_movie_name_trgm",
        }
        assert all("WITH (fastupdate=off)" in str(row[1]) for row in shipped)
        # On the folded values (migration 0019's wrapper of unaccent).
        assert all("fold_accents" in str(row[1]) for row in shipped), shipped


# ---------------------------------------------------------------- the third table


def test_a_third_table_needs_only_a_model_a_migration_and_a_declaration(
    empty_database_url: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from tests.test_crud_schema import prove;"
            " prove(*sys.argv[1:])",
            empty_database_url,
            str(tmp_path / "instance"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip().endswith("proved"), done.stdout


def declare_directors() -> Any:
    """The third table: its model and declaration, registered; returns the model.

    A director names a film, a movie, and copies its name as ratings copy
    theirs, but directors are no child of movies: the copy is kept by the
    declaration alone.
    """
    from app.crud import Field, Filter, Reference, Resource, Text
    from app.db import Base
    from app.models import Movie, Timestamped
    from app.resources import register
    from app.ui import Table

    class Director(Timestamped, Base):
        """A film director and one of their films."""

        __tablename__ = "directors"

        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(sa.String(120), nullable=False)
        country: Mapped[str] = mapped_column(sa.String(60), nullable=False)
        film_id: Mapped[int] = mapped_column(sa.ForeignKey("movies.id"))
        film: Mapped[str] = mapped_column(sa.String(200), nullable=False)

    directors = Resource(
        name="directors",
        model=Director,
        singular="director",
        fields=(
            Field("name", "Name", Text(120), sortable=True, searchable=True),
            Field("country", "Country", Text(60), sortable=True, searchable=True),
            Field("film_id", "Film id", Reference(Movie, "movie"), editable=False),
            Field(
                "film",
                "Film",
                Text(200),
                editable=False,
                creatable=False,
                sortable=True,
                copied_from=("film_id", "name"),
            ),
        ),
        default_sort=("name",),
        filters=(Filter("country", "country", "contains", "Country", Text(60)),),
        search_index="directors_search",
        row_count_table="row_counts",
        match_on=("name",),
    )
    register(
        directors,
        Table(
            directors,
            columns=("name", "country", "film"),
            title=lambda director: director.name,
            filters=("country",),
            search_label="Search directors",
            add_form=True,
        ),
    )
    return Director


def migrate_directors(op: Operations) -> None:
    """The third table's migration, as a new revision would write it."""
    op.create_table(
        "directors",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("country", sa.String(60), nullable=False),
        sa.Column("film_id", sa.Integer(), sa.ForeignKey("movies.id"), nullable=False),
        sa.Column("film", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
    )
    schema.create_row_counter(op, "directors")
    schema.create_search_index(
        op, "directors", ("name", "country"), index="directors_search"
    )


def upload(client: Any, resource: str, text: str) -> str:
    """Upload a CSV to /import; return the URL of its preview."""
    boundary, body = encode_multipart(
        {
            "resource": resource,
            "file": FileStorage(io.BytesIO(text.encode()), filename="upload.csv"),
        }
    )
    uploaded = client.post(
        "/import",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert uploaded.status_code == 303, uploaded.text
    location = uploaded.headers["Location"]
    assert re.fullmatch(r"/import/[\w-]{24}", location)
    return str(location)


def prove(database_url: str, instance: str) -> None:
    """In a child process: declare directors, then use every page on them."""
    from app.models import Movie
    from tests.live_html import assert_fragment

    director = declare_directors()
    app = make_app(database_url, Path(instance))
    with app.app_context():
        upgrade()
        with db.engine.begin() as conn:
            migrate_directors(Operations(MigrationContext.configure(conn)))
    client = app.test_client()
    hx = Hx(client)

    def stored() -> dict[int, tuple[str, str, str, int]]:
        """{id: (name, country, film, version)} of every director, from the database."""
        table = director.__table__
        names = ("id", "name", "country", "film", "version")
        with app.app_context(), db.engine.connect() as conn:
            rows = conn.execute(sa.select(*(table.c[n] for n in names)))
            return {r[0]: tuple(r[1:]) for r in rows}

    def movie_ids() -> dict[str, int]:
        """{name: id} of every movie."""
        with app.app_context(), db.engine.connect() as conn:
            rows = conn.execute(sa.select(Movie.name, Movie.id))
            return {name: i for name, i in rows}

    # The list, and the navigation of every page.
    page = client.get("/directors")
    assert page.status_code == 200, page.text
    assert "<h1>Directors</h1>" in page.text
    assert "0 of 0 directors" in page.text
    assert 'aria-current="page">Directors</a>' in page.text
    assert 'href="/directors"' in client.get("/movies").text
    assert 'href="/directors"' in page.text

    films = (
        ("Rashomon", "Akira Kurosawa"),
        ("Cleo from 5 to 7", "Agnès Varda"),
        ("Black Girl", "Ousmane Sembène"),
        ("Pather Panchali", "Satyajit Ray"),
    )
    for film, name in films:
        assert (
            hx.post("/movies", data={"name": film, "director": name}).status_code == 200
        )
    film_ids = movie_ids()

    # Create (the add form posts here), as htmx and without JavaScript; the
    # film's name is copied from the movie.
    for name, country, film in (
        ("Akira Kurosawa", "Japan", "Rashomon"),
        ("Agnès Varda", "France", "Cleo from 5 to 7"),
    ):
        data = {"name": name, "country": country, "film_id": film_ids[film]}
        added = hx.post("/directors", data=data)
        assert added.status_code == 200, added.text
        assert f">{film}</td>" in added.text
    data = {
        "name": "Ousmane Sembène",
        "country": "?",
        "film_id": film_ids["Black Girl"],
    }
    plain = client.post("/directors", data=data)
    assert plain.status_code == 303, plain.text
    refused = hx.post("/directors", data={"name": " ", "country": "X", "film_id": 1})
    assert refused.status_code == 422
    ids = {name: i for i, (name, *_) in stored().items()}
    assert set(ids) == {"Akira Kurosawa", "Agnès Varda", "Ousmane Sembène"}
    kurosawa, sembene = ids["Akira Kurosawa"], ids["Ousmane Sembène"]
    assert stored()[sembene] == ("Ousmane Sembène", "?", "Black Girl", 1)

    # Search (three letters: the index; two: its term list), filter and count.
    for q in ("kuro", "ku"):
        found = hx.get(f"/directors?q={q}")
        assert found.status_code == 200
        assert "Akira Kurosawa" in found.text and "Agnès Varda" not in found.text
        assert "1 of 3 directors" in found.text
    filtered = hx.get("/directors?country=fran").text
    assert "Agnès Varda" in filtered and "Akira Kurosawa" not in filtered

    # Inline edit with the version seen; a stale version is a conflict.
    url = f"/directors/{sembene}"
    edited = hx.patch(url, data={"country": "Senegal", "version": "1"})
    assert edited.status_code == 200, edited.text
    assert stored()[sembene] == ("Ousmane Sembène", "Senegal", "Black Girl", 2)
    stale = hx.patch(url, data={"country": "Mali", "version": "1"})
    assert stale.status_code == 409
    assert "Senegal" in hx.get("/directors?q=sene").text  # the index followed

    # A movie renamed: the director's copy follows, and its version stays.
    rashomon = f"/movies/{film_ids['Rashomon']}"
    assert (
        hx.patch(rashomon, data={"name": "Rashōmon", "version": "1"}).status_code == 200
    )
    assert stored()[kurosawa] == ("Akira Kurosawa", "Japan", "Rashōmon", 1)

    # Delete, then undo (the film renamed meanwhile comes back renamed).
    deleted = hx.delete(f"/directors/{kurosawa}")
    assert deleted.status_code == 200, deleted.text
    assert kurosawa not in stored()
    assert "Akira" not in hx.get("/directors?q=akira").text
    assert (
        hx.patch(rashomon, data={"name": "Rashomon", "version": "2"}).status_code == 200
    )
    token = assert_fragment(deleted.text).find("input", name="token")["value"]
    undone = hx.post("/directors/undo", data={"token": token})
    assert undone.status_code == 200, undone.text
    assert stored()[kurosawa] == ("Akira Kurosawa", "Japan", "Rashomon", 1)
    assert "Akira Kurosawa" in hx.get("/directors?q=akira").text

    # CSV download: the same rows in the list's order.
    csv = client.get("/directors.csv?sort=name")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert csv.text.splitlines() == [
        "id,name,country,film_id,film",
        f"{ids['Agnès Varda']},Agnès Varda,France,2,Cleo from 5 to 7",
        f"{kurosawa},Akira Kurosawa,Japan,1,Rashomon",
        f"{sembene},Ousmane Sembène,Senegal,3,Black Girl",
    ]

    # Import: a preview, then every valid row in one go.
    preview_url = upload(
        client,
        "directors",
        "id,name,country,film_id,film\r\n"
        f"{kurosawa},Akira Kurosawa,Japan,1,Rashomon\r\n"  # unchanged
        f"{sembene},Ousmane Sembène,Sénégal,3,Black Girl\r\n"  # changed
        ",Satyajit Ray,India,4,\r\n"  # new: the film's name is copied
        ",Agnès Varda,Belgium,2,Cleo from 5 to 7\r\n"  # matched by name: changed
        ",,Nowhere,1,\r\n",  # invalid: no name
    )
    preview = client.get(preview_url).text
    for label, count in (("New", 1), ("Changed", 2), ("Unchanged", 1), ("Invalid", 1)):
        assert f'<th scope="row">{label}</th><td>{count}</td>' in preview, preview
    committed = client.post(preview_url)
    assert committed.status_code in (200, 303), committed.text
    after = {name: rest for name, *rest in stored().values()}
    assert after == {
        "Akira Kurosawa": ["Japan", "Rashomon", 1],
        "Ousmane Sembène": ["Sénégal", "Black Girl", 3],
        "Agnès Varda": ["Belgium", "Cleo from 5 to 7", 2],
        "Satyajit Ray": ["India", "Pather Panchali", 1],
    }
    assert "Satyajit Ray" in hx.get("/directors?q=satya").text

    # A movie renamed by an import: the copy follows there too.
    preview_url = upload(
        client,
        "movies",
        "id,name,director,rating\r\n3,La Noire de...,Ousmane Sembène,\r\n",
    )
    assert client.post(preview_url).status_code in (200, 303)
    assert stored()[sembene] == ("Ousmane Sembène", "Sénégal", "La Noire de...", 3)

    # SQLite: the counter the triggers keep is the table's count.
    with app.app_context(), db.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            n = conn.scalar(
                sa.text("SELECT n FROM row_counts WHERE table_name = 'directors'")
            )
            assert n == 4
    dispose(app)
    print("proved")
