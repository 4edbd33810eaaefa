"""One declaration per table: its fields, validation and what the UI may do.

Adding a table is a model (app/models.py), a migration that makes it and calls
app/crud/schema.py for its counters and search index, and a `register` call
here with its Resource (data) and Table (browser). Nothing else names a table.
"""

from __future__ import annotations

from app.accounts import signed_in_name
from app.crud import (
    Child,
    Field,
    Filter,
    Integer,
    Number,
    Reference,
    Resource,
    Summary,
    Text,
    largest_id,
)
from app.crud.copies import declare as declare_copies
from app.models import AUTHOR_MAX, DIRECTOR_MAX, NAME_MAX, Movie, Rating
from app.ui import Nesting, Table

# Declared before movies, whose rows take their ratings with them (Child).
RATINGS = Resource(
    name="ratings",
    model=Rating,
    singular="rating",
    fields=(
        Field("rating", "Rating", Integer(1, 10), sortable=True),
        Field("author", "Author", Text(AUTHOR_MAX), sortable=True, searchable=True),
        Field(
            "movie_id",
            "Movie id",
            Reference(Movie, "movie"),
            editable=False,
        ),
        # Copied from the movie by the model layer; never typed in.
        Field(
            "movie_name",
            "Movie",
            Text(NAME_MAX),
            editable=False,
            creatable=False,
            sortable=True,
            searchable=True,
            copied_from=("movie_id", "name"),
        ),
    ),
    default_sort=("-id",),
    filters=(
        Filter("author", "author", "contains", "Author", Text(AUTHOR_MAX)),
        Filter("movie", "movie_name", "contains", "Movie", Text(NAME_MAX)),
        # Bounded by what movies.id holds, so an id beyond it is a 400, not a
        # database error (PostgreSQL's integer ends at 2**31 - 1).
        Filter("movie_id", "movie_id", "eq", "Movie id", Integer(1, largest_id(Movie))),
        Filter("min_rating", "rating", "ge", "Minimum rating", Integer(1, 10)),
    ),
    # Over author and movie_name, the searchable fields (migration 0015).
    search_index="ratings_search",
    row_count_table="row_counts",
)

MOVIES = Resource(
    name="movies",
    model=Movie,
    singular="movie",
    fields=(
        Field("name", "Name", Text(NAME_MAX), sortable=True, searchable=True),
        Field(
            "director", "Director", Text(DIRECTOR_MAX), sortable=True, searchable=True
        ),
        Field(
            "rating", "Rating", Number(0, 10, places=1, required=False), sortable=True
        ),
    ),
    default_sort=("name",),
    filters=(Filter("min_rating", "rating", "ge", "Minimum rating", Number(0, 10, 1)),),
    summaries=(Summary("ratings", Rating, "movie_id", "rating"),),
    children=(Child(RATINGS, "movie_id"),),
    search_index="movies_search",
    row_count_table="row_counts",
    match_on=("name", "director"),
)

# ---------------------------------------------------------------- in the browser

MOVIE_TABLE = Table(
    MOVIES,
    columns=("name", "director", "rating"),
    title=lambda movie: movie.name,
    filters=("min_rating",),
    search_label="Search movies",
    add_form=True,
    children=("ratings",),
)


def _signed_in_author() -> dict[str, str]:
    """A new rating's author: the signed-in person's name."""
    name = signed_in_name()
    return {"author": name} if name else {}


RATING_TABLE = Table(
    RATINGS,
    columns=("movie_name", "rating", "author"),
    title=lambda rating: f"rating {rating.rating} by {rating.author}",
    filters=("author", "movie", "min_rating"),
    nesting=Nesting("movies", "movie_id", hidden=("movie_name",)),
    form_defaults=_signed_in_author,
)

# ---------------------------------------------------------------- the register

# Every declared table by name, in the order the header's navigation lists them.
RESOURCES: dict[str, Resource] = {}
TABLES: dict[str, Table] = {}


def register(resource: Resource, table: Table | None = None) -> None:
    """Declare a table: its data, its page (if it has one) and its copied fields.

    Call it before create_app(): the app makes each table's routes, the CSV
    download routes and the navigation from what is registered then. A Resource
    without a Table is served to imports, exports and the CLI, but has no page.
    """
    if table is not None and table.resource is not resource:
        raise ValueError(f"the Table for {table.name} declares another resource")
    RESOURCES[resource.name] = resource
    if table is not None:
        TABLES[table.name] = table
    declare_copies(resource)


register(MOVIES, MOVIE_TABLE)
register(RATINGS, RATING_TABLE)
