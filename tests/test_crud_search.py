"""Search that finds what people mean (issue 15): accents ignored, words in any order.

"amelie" finds "Amélie", "kubrick shining" finds The Shining by Stanley Kubrick,
on movies (name, director) and ratings (author, movie_name), on SQLite and
PostgreSQL. Whatever reads the rows (the full-text or trigram index, a walk of a
sort index, a plain scan), the same rows are found; wildcards and search syntax
stay literal; and a database with rows upgrades into it (migration 0019).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import downgrade, upgrade

from app.crud import CrudService
from app.crud.dialect import ascii_lower, fold_text
from app.crud.query import SearchWord, search_words
from app.db import db
from app.models import Movie, Rating
from app.resources import MOVIES, RATINGS
from tests.conftest import (
    Hx,
    dispose,
    make_app,
)

FILMS = [
    ("Amélie", "Jean-Pierre Jeunet"),
    ("Amelie Ascii", "Plain Person"),
    ("All About My Mother", "Pedro Almodóvar"),
    ("2001: A Space Odyssey", "Stanley Kubrick"),
    ("The Shining", "Stanley Kubrick"),
    ("Shining Through", "David Seltzer"),
    ("Space Is the Place", "John Coney"),
    ("100% Wolf", "Alexs Stadermann"),
    ("50_50", "Jonathan Levine"),
    ("Back\\slash", "Esc Ape"),
    ('The "Quoted" One', "Q. Uote"),
    ("*star* power", "-Minus Man"),
    ("AND OR NOT", "NEAR(a b)"),
    ("name:star", "col: on"),
    ("Straße der Ølfabrik", "Łukasz Żuławski"),
    ("Æon Flux", "Karyn Kusama"),
    ("Œuvre complète", "Ève Müller"),
    ("ЖУК и Жук", "Иван Жуков"),
    ("Été à Paris", "Quiet Summer"),
    ("Road 1", "Star Road"),
    ("Über naïve", "Road Star 15"),
]

# Accents, case, several words, short words, wildcards, FTS5 syntax, quotes.
TRICKY = [
    "amelie",
    "AMÉLIE",
    "Amé",
    "élie",
    "almodovar",
    "ALMODÓVAR",
    "odyssey space",
    "space odyssey 2001",
    "kubrick shining",
    "shining kubrick",
    "a space",
    "road 1",
    "star road",
    "100%",
    "%",
    "_",
    "50_50",
    "\\",
    "back\\s",
    '"quoted"',
    '"',
    "'",
    "*star*",
    "star*",
    "-minus",
    "AND",
    "and or",
    "NOT",
    "NEAR(a",
    "NEAR(a b)",
    "name:star",
    "col:",
    "strasse",
    "straße",
    "olfabrik",
    "lukasz zulawski",
    "ŁUKASZ",
    "aeon",
    "æon",
    "oeuvre complete",
    "eve muller",
    "жук",
    "Жук",
    "ete a paris",
    "Ét",
    "ét",
    "ro",
    "xq",
    "e",
    "é",
    "Ü",
    "uber naive",
    "  spaced   out  ",
    "zzz nothing",
]


@pytest.fixture
def films(app: Flask) -> Iterator[tuple[CrudService, CrudService]]:
    """FILMS, each with a rating by its director; yields (movies, ratings)."""
    with app.app_context():
        movies = CrudService(MOVIES, db.session)
        ratings = CrudService(RATINGS, db.session)
        movies.bulk.load({"name": n, "director": d} for n, d in FILMS)
        ids = dict(db.session.execute(sa.select(Movie.name, Movie.id)).all())
        ratings.bulk.load(
            {"rating": 7, "author": d, "movie_id": ids[n]} for n, d in FILMS
        )
        db.session.remove()
        yield CrudService(MOVIES, db.session), CrudService(RATINGS, db.session)


def names(svc: CrudService, q: str) -> set[str]:
    """The names of the movies a search lists."""
    page = svc.list(svc.parse_query({"q": q, "per_page": "500"}))
    return {m.name for m in page.items}


def reference(q: str, values: list[tuple[int, str, str]], sqlite: bool) -> set[int]:
    """The ids whose values hold every word of q, computed in Python.

    Folded words compare folded, lower-cased values; others the values as typed,
    case ignored (SQLite's LIKE: ASCII case only).
    """
    found = set()
    for row_id, *texts in values:
        if all(_holds(word, texts, sqlite) for word in search_words(q)):
            found.add(row_id)
    return found


def _holds(word: SearchWord, texts: list[str], sqlite: bool) -> bool:
    """One word in one of the texts, as the search compares them."""
    # SQLite ignores the case of ASCII letters only (LIKE, and its index alike).
    low = ascii_lower if sqlite else str.lower
    fold = fold_text if word.folded else str
    return any(low(fold(word.text)) in low(fold(t)) for t in texts)


# ---------------------------------------------------------------- what people type


def test_words_keep_short_ones_with_a_neighbour() -> None:
    words = [w.text for w in search_words("a space odyssey")]
    assert words == ["a space", "odyssey"]
    assert [w.text for w in search_words("road 1")] == ["road 1"]
    assert [w.text for w in search_words("  kubrick   shining ")] == [
        "kubrick",
        "shining",
    ]
    assert [w.text for w in search_words("de la x")] == ["de la x"]
    # Alone, short words keep their class: two ASCII letters are folded (the
    # index's term list serves them), one letter or two others match as typed.
    assert search_words("ro") == (SearchWord("ro", True),)
    assert search_words("Ét") == (SearchWord("Ét", False),)
    assert search_words("a") == (SearchWord("a", False),)
    assert search_words("") == ()


def test_accents_and_case_do_not_matter(films) -> None:
    movies, _ = films
    assert names(movies, "amelie") == {"Amélie", "Amelie Ascii"}
    assert names(movies, "AMÉLIE") == {"Amélie", "Amelie Ascii"}
    assert names(movies, "almodovar") == {"All About My Mother"}
    assert names(movies, "strasse") == {"Straße der Ølfabrik"}
    assert names(movies, "lukasz zulawski") == {"Straße der Ølfabrik"}
    assert names(movies, "oeuvre complete") == {"Œuvre complète"}


def test_words_match_in_any_order_across_name_and_director(films) -> None:
    movies, _ = films
    assert names(movies, "odyssey space") == {"2001: A Space Odyssey"}
    assert names(movies, "kubrick shining") == {"The Shining"}
    assert names(movies, "shining KUBRICK") == {"The Shining"}
    assert names(movies, "shining") == {"The Shining", "Shining Through"}
    # Short words stay with their neighbour: "road 1" as typed, not road and 1.
    assert names(movies, "road 1") == {"Road 1"}
    assert names(movies, "star road") == {"Road 1", "Über naïve"}


def test_the_ratings_search_follows_the_same_rules(films, hx: Hx) -> None:
    _, ratings = films

    def found(q: str) -> set[str]:
        page = ratings.list(ratings.parse_query({"q": q, "per_page": "500"}))
        return {f"{r.author} / {r.movie_name}" for r in page.items}

    assert found("almodovar") == {"Pedro Almodóvar / All About My Mother"}
    assert found("kubrick shining") == {"Stanley Kubrick / The Shining"}
    assert found("shining stanley") == {"Stanley Kubrick / The Shining"}
    assert found("amelie jeunet") == {"Jean-Pierre Jeunet / Amélie"}
    # And on the page a person sees.
    page = hx.get("/ratings?q=amelie+jeunet").text
    assert "1 of 21 ratings" in page
    assert "Amélie" in page


@pytest.mark.parametrize("q", TRICKY)
def test_movies_match_the_python_reference(films, q: str) -> None:
    movies, _ = films
    rows = db.session.execute(sa.select(Movie.id, Movie.name, Movie.director))
    values = [(i, n, d) for i, n, d in rows]
    sqlite = db.engine.dialect.name == "sqlite"
    page = movies.list(movies.parse_query({"q": q, "per_page": "500"}))
    assert {m.id for m in page.items} == reference(q, values, sqlite), q
    assert page.total == len(page.items)


# ---------------------------------------------------------------- index vs scan


def _run(stmt: sa.Select, scan: bool) -> set[int]:
    """The ids a statement finds, PostgreSQL made to use indexes or not."""
    with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            off = ("enable_indexscan", "enable_bitmapscan") if scan else ()
            for setting in off or ("enable_seqscan",):
                conn.exec_driver_sql(f"SET {setting} = off")
        return set(conn.execute(stmt).scalars())


@pytest.mark.parametrize("resource", [MOVIES, RATINGS], ids=["movies", "ratings"])
def test_the_index_and_a_scan_find_the_same_rows(films, resource) -> None:
    svc = CrudService(resource, db.session)
    model = resource.model
    statements = svc.statements
    sort = "-rating" if resource is MOVIES else "movie_name"
    indexed_words = 0
    for q in TRICKY:
        query = svc.parse_query({"q": q, "sort": sort})
        indexed = sa.select(model.id).where(statements.search(query.q))
        scanned = sa.select(model.id).where(statements.search(query.q, indexed=False))
        walked = sa.select(model.id).where(
            statements.search(query.q, walk_sort_index=True)
        )
        folded = sa.select(model.id).where(
            statements.search(query.q, walk_sort_index=True, fold_each_row=True)
        )
        want = _run(scanned, scan=True)
        assert _run(indexed, scan=False) == want, q
        assert _run(walked, scan=False) == want, q
        assert _run(folded, scan=False) == want, q
        # And the count, which reads the index alone where it can.
        assert svc.count(query) == len(want), q
        served = statements.search_match(query.q) is not None
        words = search_words(query.q)
        if db.engine.dialect.name == "sqlite":
            # Every search of folded words went through the FTS5 index: all but
            # one letter or two that are not ASCII ("Ét").
            assert served is bool(words and all(w.folded for w in words)), q
            indexed_words += served
    assert indexed_words == (44 if db.engine.dialect.name == "sqlite" else 0)


# ---------------------------------------------------------------- the migration

BEFORE = "0018_pg_row_counts"


def fresh(resource, q: str) -> set[str]:
    """What a search finds on a session of its own, closed after (no lock kept).

    Movie names, or rating authors.
    """
    db.session.remove()
    svc = CrudService(resource, db.session)
    page = svc.list(svc.parse_query({"q": q, "per_page": "500"}))
    found = {getattr(r, "name", None) or r.author for r in page.items}
    db.session.remove()
    return found


def search_objects(conn: sa.Connection) -> dict[str, str]:
    """{name: definition} of what the search uses: FTS5 objects, indexes, functions."""
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL"
            " AND name NOT LIKE 'sqlite_%'"
        )
        return dict(rows.all())
    rows = conn.exec_driver_sql(
        "SELECT indexname, indexdef FROM pg_indexes"
        " WHERE schemaname = current_schema()"
        " UNION ALL SELECT proname, prosrc FROM pg_proc"
        " WHERE pronamespace = current_schema()::regnamespace"
    )
    return dict(rows.all())


def test_migration_finds_rows_from_before_and_goes_back(
    empty_database_url: str, tmp_path: Path
) -> None:
    app = make_app(empty_database_url, tmp_path / "instance")
    try:
        with app.app_context():
            upgrade(revision=BEFORE)
            with db.engine.begin() as conn:
                conn.execute(
                    sa.insert(Movie),
                    [{"name": n, "director": d} for n, d in FILMS[:5]],
                )
                ids = dict(conn.execute(sa.select(Movie.name, Movie.id)).all())
                conn.execute(
                    sa.insert(Rating),
                    [
                        {
                            "rating": 8,
                            "author": "Zoë Ærøskøbing",
                            "movie_id": ids["All About My Mother"],
                            "movie_name": "All About My Mother",
                        }
                    ],
                )
                before = search_objects(conn)
            upgrade()
            with db.engine.connect() as conn:
                after = search_objects(conn)
            assert after != before  # the indexes were rebuilt
            assert fresh(MOVIES, "amelie") == {"Amélie", "Amelie Ascii"}
            assert fresh(MOVIES, "almodovar mother") == {"All About My Mother"}
            assert fresh(MOVIES, "odyssey space") == {"2001: A Space Odyssey"}
            assert fresh(RATINGS, "zoe aeroskobing") == {"Zoë Ærøskøbing"}
            # Writes after the upgrade are indexed folded too.
            CrudService(MOVIES, db.session).create(
                {"name": "Kieślowski's Dekalog", "director": "K. K."}
            )
            assert fresh(MOVIES, "kieslowski") == {"Kieślowski's Dekalog"}
            downgrade(revision=BEFORE)
            with db.engine.connect() as conn:
                assert search_objects(conn) == before
            upgrade()
            assert fresh(MOVIES, "kieslowski") == {"Kieślowski's Dekalog"}
    finally:
        dispose(app)


def test_fold_accents_folds_alike_on_both_databases(app: Flask) -> None:
    # Queries fold with fold_accents() on both: PostgreSQL's wrapper of unaccent
    # (migration 0019), SQLite's fold_text given to each connection (Folded).
    with app.app_context():
        row = db.session.execute(
            sa.text(
                "SELECT fold_accents('Amélie'), fold_accents('Pedro Almodóvar'),"
                " fold_accents('Œuvre Straße'), fold_accents('plain'),"
                " fold_accents(NULL)"
            )
        ).one()
    assert tuple(row) == ("Amelie", "Pedro Almodovar", "OEuvre Strasse", "plain", None)
    assert fold_text("Œuvre Straße") == "OEuvre Strasse"
