"""Initial schema: movies and ratings, their constraints and indexes.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NOW = sa.text("CURRENT_TIMESTAMP")


def _stamps():
    """The version and timestamp columns every table carries."""
    return [
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False
        ),
    ]


def upgrade():
    op.create_table(
        "movies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("director", sa.String(length=120), nullable=False),
        sa.Column("rating", sa.Float(), nullable=True),
        *_stamps(),
        sa.CheckConstraint(
            "length(name) <= 200 AND trim(name) <> ''",
            name=op.f("ck_movies_name_nonblank"),
        ),
        sa.CheckConstraint(
            "length(director) <= 120 AND trim(director) <> ''",
            name=op.f("ck_movies_director_nonblank"),
        ),
        sa.CheckConstraint(
            "rating IS NULL OR (rating >= 0 AND rating <= 10"
            " AND rating * 10 = round(rating * 10))",
            name=op.f("ck_movies_rating_range"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_movies")),
    )
    op.create_index("ix_movies_name_id", "movies", [sa.text("lower(name)"), "id"])
    op.create_index(
        "ix_movies_director_id", "movies", [sa.text("lower(director)"), "id"]
    )
    op.create_index("ix_movies_rating_id", "movies", ["rating", "id"])

    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=80), nullable=False),
        sa.Column("movie_id", sa.Integer(), nullable=False),
        sa.Column("movie_name", sa.String(length=200), nullable=False),
        *_stamps(),
        sa.CheckConstraint(
            "rating >= 1 AND rating <= 10", name=op.f("ck_ratings_rating_range")
        ),
        sa.CheckConstraint(
            "length(author) <= 80 AND trim(author) <> ''",
            name=op.f("ck_ratings_author_nonblank"),
        ),
        sa.CheckConstraint(
            "length(movie_name) <= 200 AND trim(movie_name) <> ''",
            name=op.f("ck_ratings_movie_name_nonblank"),
        ),
        sa.ForeignKeyConstraint(
            ["movie_id"],
            ["movies.id"],
            name=op.f("fk_ratings_movie_id_movies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ratings")),
    )
    op.create_index("ix_ratings_movie_id_id", "ratings", ["movie_id", "id"])
    op.create_index("ix_ratings_rating_id", "ratings", ["rating", "id"])
    op.create_index("ix_ratings_author_id", "ratings", [sa.text("lower(author)"), "id"])
    op.create_index(
        "ix_ratings_movie_name_id", "ratings", [sa.text("lower(movie_name)"), "id"]
    )

    if op.get_bind().dialect.name == "postgresql":
        # Trigram indexes serve the case-insensitive "contains" search (ILIKE '%x%').
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for table, column in (
            ("movies", "name"),
            ("movies", "director"),
            ("ratings", "author"),
            ("ratings", "movie_name"),
        ):
            op.execute(
                f"CREATE INDEX ix_{table}_{column}_trgm ON {table}"
                f" USING gin ({column} gin_trgm_ops)"
            )


def downgrade():
    op.drop_table("ratings")
    op.drop_table("movies")
