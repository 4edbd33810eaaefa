"""Search plans (issue 5): counts and pages stay exact whichever way they are read.

A common word is read by walking the sort index, a rare one by sorting its few
matches, and a search alone is counted on the full-text index; the rows and
counts must be the same as a plain scan would give.
"""

from __future__ import annotations

import random

import pytest
from flask import Flask

from app.crud import CrudService
from app.db import db
from app.resources import MOVIES, RATINGS

WORDS = ["Star", "Moon", "Sun", "Rain", "Road", "Night", "Wolf", "Glass"]


@pytest.fixture
def movies(app: Flask):
    """The movie service over 400 movies: many with "star", three with "zzq"."""
    rng = random.Random(5)
    rows = []
    for i in range(400):
        word = WORDS[i % len(WORDS)] if i % 3 else "star"
        name = f"{rng.choice(WORDS)} {word} {rng.randint(1, 60)}"
        if i in (17, 230, 399):
            name = f"Zzq {name}"
        rating = None if i % 11 == 0 else rng.randint(0, 100) / 10
        rows.append({"name": name, "director": rng.choice(WORDS), "rating": rating})
    with app.app_context():
        svc = CrudService(MOVIES, db.session)
        svc.bulk_insert(rows)
        yield svc


def expected(svc: CrudService, q: str, sort: str, min_rating: float | None):
    """The matching ids in view order, computed in Python from every row."""
    rows = [
        (m.id, m.name, m.director, m.rating)
        for m in svc.session.scalars(db.select(MOVIES.model))
    ]
    found = [
        r
        for r in rows
        if (q.lower() in r[1].lower() or q.lower() in r[2].lower())
        and (min_rating is None or (r[3] is not None and r[3] >= min_rating))
    ]
    # Ties go by id in the direction of the last sort key.
    found.sort(key=lambda r: r[0], reverse=sort.split(",")[-1].startswith("-"))
    for key in reversed(sort.split(",")):
        name = key.removeprefix("-")
        desc = key.startswith("-")
        column = {"name": 1, "director": 2, "rating": 3}[name]
        present = [r for r in found if r[column] is not None]
        missing = [r for r in found if r[column] is None]

        def value(r, column=column):
            v = r[column]
            return v.lower() if isinstance(v, str) else v

        found = sorted(present, key=value, reverse=desc) + missing  # NULLS LAST
    return [r[0] for r in found]


@pytest.mark.parametrize("q", ["star", "STAR", "zzq", "oon", "road 1"])
@pytest.mark.parametrize("sort", ["-rating", "rating", "name", "-director,name"])
def test_pages_and_counts_match_a_plain_scan(movies: CrudService, q, sort) -> None:
    want = expected(movies, q, sort, None)
    seen: list[int] = []
    for page in range(1, 6):
        got = movies.list(
            movies.parse_query({"q": q, "sort": sort, "page": page, "per_page": 25})
        )
        assert got.total == len(want)
        assert got.grand_total == 400
        seen += [m.id for m in got.items]
    assert seen == want[:125]


def test_filters_with_a_search_stay_exact(movies: CrudService) -> None:
    want = expected(movies, "star", "-rating", 5.0)
    got = movies.list(
        movies.parse_query({"q": "star", "sort": "-rating", "min_rating": "5"})
    )
    assert got.total == len(want)
    assert [m.id for m in got.items] == want[:50]
    assert movies.count(movies.parse_query({"q": "star", "min_rating": "5"})) == len(
        want
    )


def test_common_words_walk_the_sort_index_rare_ones_do_not(movies: CrudService) -> None:
    sqlite = movies.session.get_bind().dialect.name == "sqlite"
    common = movies.parse_query({"q": "star", "sort": "-rating"})
    rare = movies.parse_query({"q": "zzq", "sort": "-rating"})
    deep = movies.parse_query({"q": "star", "sort": "-rating", "page": "4"})
    assert movies._walk_sort_index(common, movies.count(common), 400) is sqlite
    assert movies._walk_sort_index(rare, movies.count(rare), 400) is False
    # Deep pages of a common word: the walk grows with the page, so it stops paying.
    assert movies._walk_sort_index(deep, 10, 400) is False
    # Two-letter searches have no trigram index to walk with.
    short = movies.parse_query({"q": "st", "sort": "-rating"})
    assert movies._walk_sort_index(short, 300, 400) is False


def test_summaries_are_read_from_a_covering_index(movies: CrudService) -> None:
    # Issue 5: a page's rating count and average must not read rating rows.
    summary = MOVIES.summaries[0]
    table = summary.child.__table__
    covering = [
        [c.name for c in index.columns]
        for index in table.indexes
        if [c.name for c in index.columns] == [summary.foreign_key, summary.value]
    ]
    assert covering
    names = {
        r[0]
        for r in db.session.execute(
            db.text(
                "SELECT name FROM sqlite_master WHERE type = 'index'"
                if db.engine.dialect.name == "sqlite"
                else "SELECT indexname FROM pg_indexes"
                " WHERE schemaname = current_schema()"
            )
        )
    }
    assert "ix_ratings_movie_id_rating" in names


# ------------------------------------------------------------------ row counts


def true_count(table: str) -> int:
    """count(*) straight from the database."""
    return db.session.execute(db.text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_table_totals_come_from_the_counter_and_stay_exact(app: Flask) -> None:
    # Issue 5: on SQLite the "of N" total is read from row_counts, kept by triggers
    # through creates, bulk loads, deletes (with cascades) and restores.
    with app.app_context():
        movies = CrudService(MOVIES, db.session)
        ratings = CrudService(RATINGS, db.session)
        assert movies.count() == ratings.count() == 0
        movies.bulk_insert({"name": f"M{i}", "director": "D"} for i in range(30))
        first = movies.create({"name": "Alien", "director": "Ridley Scott"})
        for author in ("Ana", "Bo", "Cy"):
            ratings.create({"rating": 8, "author": author, "movie_id": first.id})
        assert movies.count() == true_count("movies") == 31
        assert ratings.count() == true_count("ratings") == 3
        snapshot = movies.delete(first.id)  # its ratings go with it (cascade)
        assert movies.count() == true_count("movies") == 30
        assert ratings.count() == true_count("ratings") == 0
        movies.restore(snapshot)
        assert movies.count() == true_count("movies") == 31
        assert ratings.count() == true_count("ratings") == 3
        stored = db.session.execute(db.text("SELECT n FROM row_counts"))
        if db.engine.dialect.name == "sqlite":
            assert sorted(stored.scalars()) == [3, 31]
        else:  # PostgreSQL counts with count(*): no counter rows to go stale
            assert list(stored) == []
        # A filtered count still counts the rows that match.
        query = movies.parse_query({"q": "alien"})
        assert movies.count(query) == 1


def test_non_ascii_common_words_walk_with_the_index_match(app: Flask) -> None:
    # LIKE folds only ASCII case; a non-ASCII search keeps the trigram index's
    # folding (CAFÉ finds café) while still reading rows in rating order.
    rows = [
        {
            "name": f"{'CAFÉ' if i % 3 == 0 else 'café' if i % 3 == 1 else 'Tea'} {i}",
            "director": "D",
            "rating": (i * 7 % 100) / 10,
        }
        for i in range(300)
    ]
    with app.app_context():
        svc = CrudService(MOVIES, db.session)
        svc.bulk_insert(rows)
        query = svc.parse_query({"q": "café", "sort": "-rating"})
        page = svc.list(query)
        assert page.total == 200
        want = expected(svc, "café", "-rating", None)
        assert [m.id for m in page.items] == want[:50]
        walks = svc._walk_sort_index(query, page.total, page.grand_total)
        assert walks is (db.engine.dialect.name == "sqlite")
