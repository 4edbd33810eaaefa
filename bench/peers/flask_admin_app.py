"""A minimal Flask-Admin app over reeltable's tables, as a peer in the benchmark.

It runs in bench/.venv-peers (Flask-Admin 2.x needs SQLAlchemy 2.0.x), never in the
app's environment. Serve it with gunicorn: `flask_admin_app:create_app()` with
BENCH_DATABASE set to the SQLite file. It maps only the columns reeltable shows,
lists 50 rows a page, edits cells inline and exports every row as CSV.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from flask import Flask, redirect
from flask_admin import Admin
from flask_admin.contrib.sqla import ModelView
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base for the peer's models."""


db = SQLAlchemy(model_class=Base)


class Movie(db.Model):
    """The movies table, as reeltable created it."""

    __tablename__ = "movies"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    director: Mapped[str] = mapped_column(sa.String(120))
    rating: Mapped[float | None] = mapped_column(sa.Float)


class Rating(db.Model):
    """The ratings table, as reeltable created it."""

    __tablename__ = "ratings"
    id: Mapped[int] = mapped_column(primary_key=True)
    rating: Mapped[int] = mapped_column(sa.Integer)
    author: Mapped[str] = mapped_column(sa.String(80))
    movie_id: Mapped[int] = mapped_column(sa.ForeignKey("movies.id"))
    movie_name: Mapped[str] = mapped_column(sa.String(200))


class MovieView(ModelView):
    """Movies: search by name, sort, inline-edit, export."""

    page_size = 50
    column_display_pk = True
    column_list = ("id", "name", "director", "rating")
    column_sortable_list = ("id", "name", "director", "rating")
    column_searchable_list = ("name",)
    column_editable_list = ("name", "director", "rating")
    can_export = True
    export_max_rows = 0


class RatingView(ModelView):
    """Ratings: filter by movie, inline-edit, export."""

    page_size = 50
    column_display_pk = True
    column_list = ("id", "rating", "author", "movie_id", "movie_name")
    column_sortable_list = ("id", "rating", "author", "movie_id", "movie_name")
    column_filters = ("movie_id",)
    column_editable_list = ("rating", "author")
    can_export = True
    export_max_rows = 0


def create_app() -> Flask:
    """Build the peer app over the SQLite file named by BENCH_DATABASE."""
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + os.environ["BENCH_DATABASE"]
    app.config["SECRET_KEY"] = "bench-only"
    db.init_app(app)
    admin = Admin(app, name="bench")
    admin.add_view(MovieView(Movie, db.session, endpoint="movie"))
    admin.add_view(RatingView(Rating, db.session, endpoint="rating"))

    @app.get("/")
    def home():  # noqa: ANN202 - a one-line redirect
        """Send visitors to the admin."""
        return redirect("/admin/")

    return app
