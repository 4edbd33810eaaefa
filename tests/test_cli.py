"""`flask seed` (app/cli.py): demo catalogue once, synthetic data on demand."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner

from app.cli import demo_movies
from app.db import db
from app.models import Movie, Rating


def counts(app: Flask) -> tuple[int, int]:
    """Number of movies and ratings stored."""
    with app.app_context():
        m = db.session.scalar(sa.select(sa.func.count()).select_from(Movie))
        r = db.session.scalar(sa.select(sa.func.count()).select_from(Rating))
        return m, r


def test_demo_data_file_is_real_and_large_enough() -> None:
    films = demo_movies()
    assert len(films) >= 150
    names = {(f["name"], f["director"]) for f in films}
    assert len(names) == len(films)
    assert ("Seven Samurai", "Akira Kurosawa") in names


def test_seed_loads_demo_once(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    movies, ratings = counts(app)
    assert movies == len(demo_movies())
    assert 200 <= ratings <= 1000
    assert f"Seeded {movies:,} movies and {ratings:,} ratings." in result.output

    again = runner.invoke(args=["seed"])
    assert again.exit_code == 0
    assert "already has" in again.output
    assert counts(app) == (movies, ratings)


def test_seeded_ratings_mirror_their_movie_names(
    app: Flask, runner: FlaskCliRunner
) -> None:
    runner.invoke(args=["seed"])
    with app.app_context():
        mismatched = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Rating)
            .join(Movie)
            .where(Rating.movie_name != Movie.name)
        )
    assert mismatched == 0


def test_seed_synthetic(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        args=["seed", "--synthetic", "--movies", "400", "--ratings", "1500"]
    )
    assert result.exit_code == 0, result.output
    assert counts(app) == (400, 1500)
    with app.app_context():
        names = db.session.scalars(sa.select(Movie.name)).all()
    assert any("," in n for n in names)
    assert any('"' in n for n in names)
    assert any(n.startswith("=") for n in names)
    assert any(n.startswith("+") for n in names)
    assert any(not n.isascii() for n in names)
