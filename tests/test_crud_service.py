"""The generic CRUD service (CrudService[M]) on both real tables, and its whole
contract on a third, test-only table: no new service code.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.crud import (
    Conflict,
    CrudService,
    Field,
    Filter,
    Integer,
    ListQuery,
    NotFound,
    Number,
    QueryError,
    Resource,
    SortKey,
    Text,
    ValidationError,
)
from app.db import db
from app.models import Movie, Rating
from app.resources import MOVIES, RATINGS


@pytest.fixture
def movies(app: Flask):
    """The movie service inside an app context."""
    with app.app_context():
        yield CrudService(MOVIES, db.session)


@pytest.fixture
def ratings(app: Flask):
    """The rating service inside an app context."""
    with app.app_context():
        yield CrudService(RATINGS, db.session)


def stored(model: type, row_id: int) -> dict | None:
    """Read a row straight from the database, bypassing the session's cache."""
    table = model.__table__
    with db.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.id == row_id)).mappings()
        found = row.first()
    return dict(found) if found else None


def count(model: type) -> int:
    """Count rows straight from the database."""
    with db.engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(model.__table__))


# ------------------------------------------------------------------ create


def test_create_movie_trims_and_stores(movies: CrudService) -> None:
    movie = movies.create(
        {"name": "  Heat ", "director": "Michael Mann", "rating": "8.3"}
    )
    row = stored(Movie, movie.id)
    assert row["name"] == "Heat"
    assert row["director"] == "Michael Mann"
    assert row["rating"] == 8.3
    assert row["version"] == 1
    assert row["created_at"] is not None


def test_create_movie_without_rating(movies: CrudService) -> None:
    movie = movies.create({"name": "Heat", "director": "Michael Mann", "rating": ""})
    assert stored(Movie, movie.id)["rating"] is None


def test_create_rating_copies_movie_name(
    movies: CrudService, ratings: CrudService
) -> None:
    movie = movies.create({"name": "Heat", "director": "Michael Mann"})
    rating = ratings.create({"rating": "9", "author": "Ana", "movie_id": str(movie.id)})
    assert stored(Rating, rating.id)["movie_name"] == "Heat"


def test_create_rating_for_missing_movie_is_invalid(ratings: CrudService) -> None:
    with pytest.raises(ValidationError) as err:
        ratings.create({"rating": "9", "author": "Ana", "movie_id": "999"})
    assert err.value.errors == {"movie_id": "There is no movie with id 999."}
    assert count(Rating) == 0


def test_create_rating_cannot_set_movie_name(
    movies: CrudService, ratings: CrudService
) -> None:
    movie = movies.create({"name": "Heat", "director": "Michael Mann"})
    with pytest.raises(ValidationError) as err:
        ratings.create(
            {"rating": 5, "author": "Ana", "movie_id": movie.id, "movie_name": "X"}
        )
    assert "movie_name" in err.value.errors
    assert count(Rating) == 0


# ------------------------------------------------------------------ validation

BAD_MOVIES = [
    ("name", "", "Name is required."),
    ("name", "   \t ", "Name is required."),
    ("name", "x" * 201, "Name must be at most 200 characters."),
    ("name", "bad\x00byte", "Name contains characters that are not allowed."),
    ("name", 42, "Name must be text."),
    ("director", "", "Director is required."),
    ("director", "d" * 121, "Director must be at most 120 characters."),
    ("director", "d" * 500, "Director must be at most 120 characters."),
    ("rating", "11", "Rating must be between 0 and 10."),
    ("rating", "-0.1", "Rating must be between 0 and 10."),
    ("rating", "abc", "Rating must be a number."),
    ("rating", "nan", "Rating must be a number."),
    ("rating", "inf", "Rating must be a number."),
    ("rating", "7.25", "Rating can have at most 1 decimal place."),
    ("rating", True, "Rating must be a number."),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_MOVIES)
def test_movie_validation_on_create(
    movies: CrudService, field: str, value: object, message: str
) -> None:
    data = {"name": "Heat", "director": "Michael Mann", "rating": "8", field: value}
    with pytest.raises(ValidationError) as err:
        movies.create(data)
    assert err.value.errors == {field: message}
    assert count(Movie) == 0


@pytest.mark.parametrize(("field", "value", "message"), BAD_MOVIES)
def test_movie_validation_on_update(
    movies: CrudService, field: str, value: object, message: str
) -> None:
    movie = movies.create({"name": "Heat", "director": "Michael Mann", "rating": "8"})
    before = stored(Movie, movie.id)
    with pytest.raises(ValidationError) as err:
        movies.update(movie.id, {field: value}, version=1)
    assert err.value.errors == {field: message}
    assert stored(Movie, movie.id) == before


BAD_RATINGS = [
    ("rating", "", "Rating is required."),
    ("rating", "0", "Rating must be between 1 and 10."),
    ("rating", "11", "Rating must be between 1 and 10."),
    ("rating", "7.5", "Rating must be a whole number."),
    ("rating", "seven", "Rating must be a whole number."),
    ("rating", " ", "Rating is required."),
    ("author", "", "Author is required."),
    ("author", "   ", "Author is required."),
    ("author", "a" * 81, "Author must be at most 80 characters."),
    ("movie_id", "", "Movie id is required."),
    ("movie_id", "x", "Movie id must be a whole number."),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_RATINGS)
def test_rating_validation(
    movies: CrudService, ratings: CrudService, field: str, value: str, message: str
) -> None:
    movie = movies.create({"name": "Heat", "director": "Michael Mann"})
    data = {"rating": "5", "author": "Ana", "movie_id": str(movie.id), field: value}
    with pytest.raises(ValidationError) as err:
        ratings.create(data)
    assert err.value.errors == {field: message}
    assert count(Rating) == 0


def test_all_errors_reported_at_once(movies: CrudService) -> None:
    with pytest.raises(ValidationError) as err:
        movies.create({"name": "", "director": "", "rating": "11"})
    assert set(err.value.errors) == {"name", "director", "rating"}


def test_database_constraints_back_up_validation(app: Flask) -> None:
    # Bad data must not enter even by a path that skips the service.
    with app.app_context(), db.engine.connect() as conn:
        for values in (
            {"name": " ", "director": "x"},
            {"name": "x", "director": "x", "rating": 10.5},
            {"name": "x", "director": "x", "rating": 7.25},
            {"name": "x" * 201, "director": "x"},
        ):
            # PostgreSQL reports an overlong VARCHAR as DataError, SQLite's CHECK
            # as IntegrityError: either way the row is refused.
            with pytest.raises((sa.exc.IntegrityError, sa.exc.DataError)):
                conn.execute(sa.insert(Movie.__table__), values)
            conn.rollback()
        with pytest.raises(sa.exc.IntegrityError):
            conn.execute(
                sa.insert(Rating.__table__),
                {"rating": 3, "author": "a", "movie_id": 12345, "movie_name": "n"},
            )
        conn.rollback()


# ------------------------------------------------------------------ get / update


def test_get_missing_raises_not_found(movies: CrudService) -> None:
    with pytest.raises(NotFound, match="No movie with id 5"):
        movies.get(5)


def test_update_changes_only_given_fields_and_bumps_version(
    movies: CrudService,
) -> None:
    movie = movies.create({"name": "Heat", "director": "Mann", "rating": "8"})
    movies.update(movie.id, {"director": "Michael Mann"}, version=1)
    row = stored(Movie, movie.id)
    assert (row["name"], row["director"], row["rating"]) == ("Heat", "Michael Mann", 8)
    assert row["version"] == 2


def test_update_with_stale_version_conflicts_and_writes_nothing(
    movies: CrudService,
) -> None:
    movie = movies.create({"name": "Heat", "director": "Mann"})
    movies.update(movie.id, {"director": "Michael Mann"}, version=1)
    with pytest.raises(Conflict) as err:
        movies.update(movie.id, {"director": "Someone Else"}, version=1)
    assert err.value.current.director == "Michael Mann"
    assert stored(Movie, movie.id)["director"] == "Michael Mann"
    assert stored(Movie, movie.id)["version"] == 2


def test_update_missing_row(movies: CrudService) -> None:
    with pytest.raises(NotFound):
        movies.update(99, {"name": "x"}, version=1)


def test_update_non_editable_field_refused(
    movies: CrudService, ratings: CrudService
) -> None:
    movie = movies.create({"name": "Heat", "director": "Mann"})
    other = movies.create({"name": "Ran", "director": "Kurosawa"})
    rating = ratings.create({"rating": 5, "author": "Ana", "movie_id": movie.id})
    with pytest.raises(ValidationError) as err:
        ratings.update(rating.id, {"movie_id": other.id}, version=1)
    assert err.value.errors == {"movie_id": "Movie id cannot be set here."}
    assert stored(Rating, rating.id)["movie_id"] == movie.id


def test_update_with_nothing_to_change(movies: CrudService) -> None:
    movie = movies.create({"name": "Heat", "director": "Mann"})
    with pytest.raises(ValidationError):
        movies.update(movie.id, {}, version=1)


def test_rename_updates_ratings_movie_name_in_same_transaction(
    movies: CrudService, ratings: CrudService
) -> None:
    movie = movies.create({"name": "Heat", "director": "Mann"})
    first = ratings.create({"rating": 5, "author": "Ana", "movie_id": movie.id})
    second = ratings.create({"rating": 7, "author": "Bo", "movie_id": movie.id})
    movies.update(movie.id, {"name": "Heat (1995)"}, version=1)
    assert stored(Rating, first.id)["movie_name"] == "Heat (1995)"
    assert stored(Rating, second.id)["movie_name"] == "Heat (1995)"
    # The rename does not invalidate an open rating editor.
    assert stored(Rating, first.id)["version"] == 1


def test_failed_rename_leaves_ratings_alone(
    movies: CrudService, ratings: CrudService
) -> None:
    movie = movies.create({"name": "Heat", "director": "Mann"})
    rating = ratings.create({"rating": 5, "author": "Ana", "movie_id": movie.id})
    movies.update(movie.id, {"director": "Michael Mann"}, version=1)
    with pytest.raises(Conflict):
        movies.update(movie.id, {"name": "Other"}, version=1)
    assert stored(Rating, rating.id)["movie_name"] == "Heat"


# ------------------------------------------------------------------ delete / restore


def test_delete_cascades_to_ratings(
    app: Flask, movies: CrudService, ratings: CrudService
) -> None:
    movie = movies.create({"name": "Heat", "director": "Mann"})
    keep = movies.create({"name": "Ran", "director": "Kurosawa"})
    ratings.create({"rating": 5, "author": "Ana", "movie_id": movie.id})
    ratings.create({"rating": 6, "author": "Bo", "movie_id": movie.id})
    kept = ratings.create({"rating": 7, "author": "Cy", "movie_id": keep.id})
    _, snapshot = movies.trash(movie.id)
    assert stored(Movie, movie.id) is None
    assert count(Rating) == 1
    assert stored(Rating, kept.id) is not None
    assert len(snapshot["children"]["ratings"]) == 2


def test_delete_missing_row(movies: CrudService) -> None:
    with pytest.raises(NotFound):
        movies.trash(1)


def test_delete_with_stale_version_conflicts(movies: CrudService) -> None:
    movie = movies.create({"name": "Heat", "director": "Mann"})
    movies.update(movie.id, {"name": "Heat!"}, version=1)
    with pytest.raises(Conflict):
        movies.trash(movie.id, version=1)
    assert stored(Movie, movie.id) is not None


def test_restore_brings_back_row_and_children_with_ids(
    movies: CrudService, ratings: CrudService
) -> None:
    movie = movies.create({"name": "Heat", "director": "Mann", "rating": "8.3"})
    r1 = ratings.create({"rating": 5, "author": "Ana", "movie_id": movie.id})
    r2 = ratings.create({"rating": 9, "author": "Bo", "movie_id": movie.id})
    before = stored(Movie, movie.id)
    token, snapshot = movies.trash(movie.id)
    movies.undo(token)
    assert stored(Movie, movie.id) == before
    assert stored(Rating, r1.id)["author"] == "Ana"
    assert stored(Rating, r2.id)["rating"] == 9
    with pytest.raises(Conflict), movies.transaction():
        movies.snapshots.put_back(snapshot)


# ------------------------------------------------------------------ list


def names(page) -> list[str]:
    """Names of the movies on a page."""
    return [m.name for m in page.items]


def test_list_default_sort_is_name_case_insensitive(
    movies: CrudService, sample: dict
) -> None:
    movies.create({"name": "amélie", "director": "Jeunet"})
    page = movies.list(ListQuery())
    assert names(page) == ["Alien", "amélie", "Blade Runner", "Cure"]
    assert (page.total, page.grand_total) == (4, 4)


def test_list_sort_descending_nulls_last(movies: CrudService, sample: dict) -> None:
    page = movies.list(movies.parse_query({"sort": "-rating"}))
    assert names(page) == ["Alien", "Blade Runner", "Cure"]
    page = movies.list(movies.parse_query({"sort": "rating"}))
    assert names(page) == ["Blade Runner", "Alien", "Cure"]


def test_list_multi_column_sort_and_stable_ties(movies: CrudService) -> None:
    for name in ["B", "A", "C"]:
        movies.create({"name": name, "director": "Same"})
    movies.create({"name": "D", "director": "Other"})
    page = movies.list(movies.parse_query({"sort": "-director,name"}))
    assert names(page) == ["A", "B", "C", "D"]
    # Ties on every key fall back to id order, so pages never shuffle.
    page = movies.list(movies.parse_query({"sort": "director"}))
    assert names(page) == ["D", "B", "A", "C"]


def test_list_search_is_case_insensitive_substring_over_name_and_director(
    movies: CrudService, sample: dict
) -> None:
    assert names(movies.list(movies.parse_query({"q": "LIEN"}))) == ["Alien"]
    page = movies.list(movies.parse_query({"q": "ridley"}))
    assert names(page) == ["Alien", "Blade Runner"]
    assert (page.total, page.grand_total) == (2, 3)


def test_list_search_treats_wildcards_literally(movies: CrudService) -> None:
    movies.create({"name": "100% Wolf", "director": "Alexs Stadermann"})
    movies.create({"name": "1000 Wolves", "director": "A_B"})
    assert names(movies.list(movies.parse_query({"q": "0%"}))) == ["100% Wolf"]
    assert names(movies.list(movies.parse_query({"q": "_"}))) == ["1000 Wolves"]


def test_list_filter_min_rating(movies: CrudService, sample: dict) -> None:
    page = movies.list(movies.parse_query({"min_rating": "8.2"}))
    assert names(page) == ["Alien"]


def test_list_paging(movies: CrudService) -> None:
    for i in range(7):
        movies.create({"name": f"Film {i}", "director": "D"})
    page = movies.list(movies.parse_query({"per_page": "3", "page": "3"}))
    assert names(page) == ["Film 6"]
    assert (page.pages, page.has_prev, page.has_next, page.first_index) == (
        3,
        True,
        False,
        7,
    )


def test_list_summaries_count_and_average(movies: CrudService, sample: dict) -> None:
    page = movies.list(ListQuery())
    summary = page.summaries["ratings"]
    assert summary[sample["alien"]] == (2, 8.0)
    assert summary[sample["blade"]] == (1, 8.0)
    assert summary[sample["cure"]] == (1, 6.0)


def test_ratings_filters(ratings: CrudService, sample: dict) -> None:
    page = ratings.list(ratings.parse_query({"movie": "ali", "sort": "author"}))
    assert [r.author for r in page.items] == ["Ana", "Bo"]
    page = ratings.list(ratings.parse_query({"author": "d", "min_rating": "5"}))
    assert [r.author for r in page.items] == ["Di"]
    page = ratings.list(ratings.parse_query({"movie_id": str(sample["blade"])}))
    assert [r.author for r in page.items] == ["Cy"]


@pytest.mark.parametrize(
    ("args", "param"),
    [
        ({"sort": "name;drop table movies"}, "sort"),
        ({"sort": "version"}, "sort"),
        ({"sort": "id,name,name"}, "sort"),
        ({"sort": "-"}, "sort"),
        ({"page": "0"}, "page"),
        ({"page": "-1"}, "page"),
        ({"page": "abc"}, "page"),
        ({"page": "1" + "0" * 20}, "page"),
        ({"per_page": "501"}, "per_page"),
        ({"per_page": "-1"}, "per_page"),
        ({"per_page": "٣"}, "per_page"),
        ({"min_rating": "eleven"}, "min_rating"),
        ({"min_rating": "11"}, "min_rating"),
        ({"q": "x" * 201}, "q"),
    ],
)
def test_parse_query_rejects_bad_parameters(
    movies: CrudService, args: dict, param: str
) -> None:
    with pytest.raises(QueryError) as err:
        movies.parse_query(args)
    assert err.value.param == param
    assert err.value.message


def test_parse_query_round_trips_through_args(movies: CrudService) -> None:
    query = movies.parse_query(
        {"q": "star", "min_rating": "7", "sort": "-rating,name", "page": "2"}
    )
    assert query.sort == (SortKey("rating", True), SortKey("name"))
    assert movies.parse_query(query.args()) == query
    assert query.args(page=None)["sort"] == "-rating,name"


def test_fetch_batches_streams_exported_columns_in_query_order(
    movies: CrudService, ratings: CrudService, sample: dict
) -> None:
    query = movies.parse_query({"sort": "-rating"})
    columns = [getattr(Movie, name) for name in MOVIES.exported]
    rows = [r for b in movies.reader.fetch_batches(query, *columns, batch=1) for r in b]
    assert rows == [
        (sample["alien"], "Alien", "Ridley Scott", 8.5),
        (sample["blade"], "Blade Runner", "Ridley Scott", 8.1),
        (sample["cure"], "Cure", "Kiyoshi Kurosawa", None),
    ]
    query = ratings.parse_query({"movie": "blade"})
    columns = [getattr(Rating, name) for name in RATINGS.exported]
    rows = [r for b in ratings.reader.fetch_batches(query, *columns) for r in b]
    assert rows == [(rows[0][0], 8, "Cy", sample["blade"], "Blade Runner")]


def test_bulk_insert_counts_rows(movies: CrudService) -> None:
    n = movies.bulk.load(
        ({"name": f"M{i}", "director": "D"} for i in range(25)), batch=10
    )
    assert n == 25
    assert count(Movie) == 25


# ------------------------------------------------------------------ search index


def test_search_index_follows_inserts_renames_and_deletes(movies: CrudService) -> None:
    star = movies.create({"name": "Lone Star", "director": "John Sayles"})
    movies.create({"name": "Stardust", "director": "Matthew Vaughn"})
    movies.create({"name": "Heat", "director": "Michael Mann"})
    assert names(movies.list(movies.parse_query({"q": "STAR"}))) == [
        "Lone Star",
        "Stardust",
    ]
    movies.update(star.id, {"name": "Lone Wolf"}, version=1)
    assert names(movies.list(movies.parse_query({"q": "star"}))) == ["Stardust"]
    assert names(movies.list(movies.parse_query({"q": "wolf"}))) == ["Lone Wolf"]
    movies.trash(star.id)
    assert names(movies.list(movies.parse_query({"q": "wolf"}))) == []


def test_search_matches_awkward_text(movies: CrudService) -> None:
    movies.create({"name": 'The "Quoted" Film', "director": "Zoë Ångström"})
    movies.create({"name": "Plain", "director": "Nobody"})
    assert names(movies.list(movies.parse_query({"q": '"quoted"'}))) == [
        'The "Quoted" Film'
    ]
    assert names(movies.list(movies.parse_query({"q": "ångström"}))) == [
        'The "Quoted" Film'
    ]
    assert names(movies.list(movies.parse_query({"q": "OR"}))) == []
    assert names(movies.list(movies.parse_query({"q": "a*"}))) == []


# Issue 3: deep pages of a descending sort must not be slower than the first.
@pytest.mark.parametrize("sort", ["-rating", "-name", "rating,-director"])
def test_descending_sort_reads_the_index_without_sorting(
    movies: CrudService, sort: str
) -> None:
    if movies.dialect != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's; PostgreSQL plans differ")
    query = movies.parse_query({"sort": sort})
    stmt = movies.statements.select(query).limit(50).offset(5000)
    compiled = stmt.compile(db.engine, compile_kwargs={"literal_binds": True})
    with db.engine.connect() as conn:
        plan = " ".join(
            row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")
        )
    if sort == "rating,-director":
        # Mixed directions cannot follow one index; the test documents that.
        assert "TEMP B-TREE" in plan
    else:
        assert "TEMP B-TREE" not in plan, plan


def test_descending_sort_is_the_exact_reverse(movies: CrudService) -> None:
    for name in ["A", "B", "C", "D"]:
        movies.create({"name": name, "director": "Same", "rating": "7"})
    up = names(movies.list(movies.parse_query({"sort": "rating"})))
    down = names(movies.list(movies.parse_query({"sort": "-rating"})))
    assert down == list(reversed(up)) == ["D", "C", "B", "A"]


def test_sqlite_writers_of_one_process_take_turns(app: Flask) -> None:
    # Issue 5 (W5): threads of one process queue on the app's write lock rather
    # than in SQLite's sleeping busy handler; PostgreSQL needs no such lock.
    entered: list[bool] = []

    class Turn:
        def __enter__(self) -> None:
            entered.append(True)

        def __exit__(self, *exc: object) -> None:
            entered.append(False)

    with app.app_context():
        svc = CrudService(MOVIES, db.session, write_lock=Turn())
        movie = svc.create({"name": "Alien", "director": "Ridley Scott"})
        svc.update(movie.id, {"director": "R. Scott"}, movie.version)
        sqlite = db.engine.dialect.name == "sqlite"
        assert entered == ([True, False, True, False] if sqlite else [])
        assert app.extensions["reeltable.write_lock"] is not None


# ------------------------------------------------------------------ a third table


class ScratchBase(DeclarativeBase):
    """A metadata of its own, so the app's migrations never see this table."""


class Book(ScratchBase):
    """A book: the test-only table."""

    __tablename__ = "test_books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(50))
    pages: Mapped[int] = mapped_column(sa.Integer)
    price: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


BOOKS = Resource(
    name="test_books",
    model=Book,
    singular="book",
    fields=(
        Field("title", "Title", Text(50), sortable=True, searchable=True),
        Field("pages", "Pages", Integer(1, 5000), sortable=True),
        Field("price", "Price", Number(0, 1000, places=2, required=False)),
    ),
    default_sort=("-pages",),
    filters=(Filter("max_pages", "pages", "le", "Max pages", Integer(1, 5000)),),
)


@pytest.fixture
def books(app: Flask) -> Iterator[CrudService]:
    """The service for the test-only table, with its table created."""
    with app.app_context():
        ScratchBase.metadata.create_all(db.engine)
        yield CrudService(BOOKS, db.session)
        db.session.remove()
        ScratchBase.metadata.drop_all(db.engine)


def test_whole_contract_on_a_third_table(books: CrudService) -> None:
    short = books.create({"title": "Short", "pages": "90", "price": "9.99"})
    long = books.create({"title": "Long", "pages": "900"})
    assert books.get(short.id).price == 9.99

    page = books.list(books.parse_query({}))
    assert [b.title for b in page.items] == ["Long", "Short"]
    page = books.list(books.parse_query({"max_pages": "100"}))
    assert [b.title for b in page.items] == ["Short"]
    page = books.list(books.parse_query({"q": "lon", "sort": "title"}))
    assert [b.title for b in page.items] == ["Long"]

    with pytest.raises(ValidationError) as err:
        books.create({"title": "", "pages": "0", "price": "1.005"})
    assert err.value.errors == {
        "title": "Title is required.",
        "pages": "Pages must be between 1 and 5000.",
        "price": "Price can have at most 2 decimal place.",
    }
    with pytest.raises(QueryError):
        books.parse_query({"sort": "price"})  # not declared sortable

    books.update(long.id, {"pages": "901"}, version=1)
    with pytest.raises(Conflict):
        books.update(long.id, {"pages": "902"}, version=1)
    assert books.get(long.id).pages == 901

    columns = [getattr(Book, name) for name in BOOKS.exported]
    query = books.parse_query({"sort": "pages"})
    rows = [r for b in books.reader.fetch_batches(query, *columns) for r in b]
    assert rows == [(short.id, "Short", 90, 9.99), (long.id, "Long", 901, None)]

    token, _ = books.trash(short.id)
    with pytest.raises(NotFound):
        books.get(short.id)
    books.undo(token)
    assert books.get(short.id).title == "Short"
