"""Command-line tools: `flask --app app seed` and friends."""

from __future__ import annotations

import csv
import json
import os
import random
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from app import csvfile
from app.crud import Conflict, CrudService, QueryError, ValidationError, WriteBusy
from app.crud.changes import prune
from app.db import db
from app.resources import MOVIES, RATINGS, RESOURCES

# Invalid rows listed by `flask import` (all are counted).
CLI_ERRORS = 50


class ImportBusy(click.ClickException):
    """`flask import --commit` found another import writing the database.

    Exit status 75, EX_TEMPFAIL (sysexits.h): try again later, unlike 1 (a file
    to fix).
    """

    exit_code = 75


def _services() -> tuple[CrudService, CrudService]:
    """Return the movie and rating services bound to the app's session."""
    return CrudService(MOVIES, db.session), CrudService(RATINGS, db.session)


def demo_movies() -> list[dict[str, Any]]:
    """Read the demo catalogue (real films) from app/data/demo_movies.csv."""
    text = resources.files("app.data").joinpath("demo_movies.csv").read_text("utf-8")
    rows = []
    for record in csv.DictReader(text.splitlines()):
        rating = record["rating"].strip()
        rows.append(
            {
                "name": record["name"],
                "director": record["director"],
                "rating": float(rating) if rating else None,
            }
        )
    return rows


def demo_authors() -> list[str]:
    """Read the sample reviewer names."""
    text = resources.files("app.data").joinpath("demo_authors.txt").read_text("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def load_demo(rng: random.Random) -> tuple[int, int]:
    """Insert the demo films and a few hundred sample ratings; return the counts."""
    movies_svc, ratings_svc = _services()
    movies = demo_movies()
    n_movies = movies_svc.bulk.load(movies)
    authors = demo_authors()
    stored = db.session.execute(
        db.select(MOVIES.model.id, MOVIES.model.name, MOVIES.model.rating)
    ).all()
    ratings = []
    for movie_id, name, score in stored:
        # Sample reviews cluster around the film's own score, as real ones do.
        centre = score if score is not None else 6.5
        for author in rng.sample(authors, rng.randint(0, 4)):
            value = round(rng.gauss(centre, 1.3))
            ratings.append(
                {
                    "rating": min(10, max(1, value)),
                    "author": author,
                    "movie_id": movie_id,
                    "movie_name": name,
                }
            )
    n_ratings = ratings_svc.bulk.load(ratings)
    return n_movies, n_ratings


def synthetic_words() -> dict[str, list[str]]:
    """Read the word lists synthetic names are built from."""
    text = resources.files("app.data").joinpath("synthetic_words.json").read_text()
    return json.loads(text)


def synthetic_movies(rng: random.Random, n: int) -> Iterator[dict[str, Any]]:
    """Yield n synthetic movies with awkward names (commas, quotes, =, +, accents)."""
    w = synthetic_words()
    for i in range(n):
        name = f"The {rng.choice(w['adjectives'])} {rng.choice(w['nouns'])}"
        style = i % 20
        if style == 1:
            name += f", Part {rng.randint(2, 9)}"
        elif style == 2:
            name = f'"{name}" in {rng.choice(w["places"])}'
        elif style == 3:
            name = "=" + name.replace(" ", "")
        elif style == 4:
            name = f"+{rng.randint(1, 99)} {name}"
        elif style == 5:
            name = f"{name}: {rng.choice(w['places'])}"
        director = f"{rng.choice(w['first'])} {rng.choice(w['last'])}"
        rating = round(rng.uniform(1, 10), 1) if i % 10 else None
        yield {"name": f"{name} #{i + 1}", "director": director, "rating": rating}


def synthetic_ratings(
    rng: random.Random, n: int, movie_ids: list[int], names: dict[int, str]
) -> Iterator[dict[str, Any]]:
    """Yield n synthetic ratings spread over the given movies."""
    w = synthetic_words()
    authors = [f"{first} {last}" for first in w["first"] for last in w["last"]]
    for _ in range(n):
        movie_id = rng.choice(movie_ids)
        yield {
            "rating": rng.randint(1, 10),
            "author": rng.choice(authors),
            "movie_id": movie_id,
            "movie_name": names[movie_id],
        }


def load_synthetic(
    rng: random.Random, n_movies: int, n_ratings: int
) -> tuple[int, int]:
    """Bulk-load synthetic movies and ratings; return the counts."""
    movies_svc, ratings_svc = _services()
    n_m = movies_svc.bulk.load(synthetic_movies(rng, n_movies))
    pairs = db.session.execute(db.select(MOVIES.model.id, MOVIES.model.name)).all()
    names = dict(pairs)
    ids = list(names)
    n_r = 0
    if ids and n_ratings:
        n_r = ratings_svc.bulk.load(synthetic_ratings(rng, n_ratings, ids, names))
    return n_m, n_r


@click.command("seed")
@with_appcontext
@click.option("--synthetic", is_flag=True, help="Generate synthetic data instead.")
@click.option("--movies", "n_movies", default=100_000, show_default=True)
@click.option("--ratings", "n_ratings", default=1_000_000, show_default=True)
@click.option("--random-seed", default=42, show_default=True)
def seed_command(
    synthetic: bool, n_movies: int, n_ratings: int, random_seed: int
) -> None:
    """Load demo (or synthetic) data into an empty database."""
    movies_svc, _ = _services()
    existing = movies_svc.count()
    if existing:
        click.echo(f"The database already has {existing:,} movies; not seeding.")
        return
    rng = random.Random(random_seed)
    if synthetic:
        m, r = load_synthetic(rng, n_movies, n_ratings)
    else:
        m, r = load_demo(rng)
    click.echo(f"Seeded {m:,} movies and {r:,} ratings.")
    current_app.logger.info("seeded %s movies, %s ratings", m, r)


def _filter_options(command: Any) -> Any:
    """Add one --option per filter any table declares (e.g. --min-rating)."""
    labels: dict[str, str] = {}
    for resource in RESOURCES.values():
        for flt in resource.filters:
            labels.setdefault(flt.param, flt.label)
    for param in sorted(labels, reverse=True):
        option = click.option(
            "--" + param.replace("_", "-"),
            param,
            default=None,
            help=f"{labels[param]} filter, as in the table's URL.",
        )
        command = option(command)
    return command


@click.command("export")
@click.argument("table", type=click.Choice(list(RESOURCES)))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (complete, or not at all) instead of standard output.",
)
@click.option("--q", default=None, help="Search text, as in the table's search box.")
@click.option("--sort", default=None, help='Sort keys, e.g. "-rating,name".')
@click.option("--bom", is_flag=True, help="Start with a byte-order mark, for Excel.")
@_filter_options
@with_appcontext
def export_command(
    table: str,
    out: Path | None,
    q: str | None,
    sort: str | None,
    bom: bool,
    **filters: str | None,
) -> None:
    """Write a table as CSV: the same rows and order as its page with these filters."""
    resource = RESOURCES[table]
    declared = {f.param for f in resource.filters}
    args = {"q": q, "sort": sort}
    for param, value in filters.items():
        if value is None:
            continue
        if param not in declared:
            option = "--" + param.replace("_", "-")
            raise click.UsageError(f"{table} has no {option} filter.")
        args[param] = value
    svc = CrudService(resource, db.session)
    try:
        query = svc.parse_query({k: v for k, v in args.items() if v is not None})
    except QueryError as exc:
        raise click.UsageError(exc.message) from None
    counted: list[int] = []
    chunks = csvfile.export_chunks(svc, query, bom=bom, on_rows=counted.append)
    if out is None:
        stream = sys.stdout.buffer
        for chunk in chunks:
            stream.write(chunk)
        stream.flush()
    else:
        # Written beside the target and renamed at the end: a failed export never
        # leaves a short file under the name asked for.
        part = out.with_name(f".{out.name}.part")
        try:
            with part.open("wb") as f:
                for chunk in chunks:
                    f.write(chunk)
            os.replace(part, out)
        finally:
            part.unlink(missing_ok=True)
    where = "standard output" if out is None else str(out)
    n = sum(counted)
    noun = resource.singular if n == 1 else table
    click.echo(f"Exported {n:,} {noun} to {where}.", err=True)


@click.command("import")
@click.argument("table", type=click.Choice(list(RESOURCES)))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--commit",
    is_flag=True,
    help="Write the valid rows, all in one transaction. Without it: a dry run.",
)
@with_appcontext
def import_command(table: str, file: Path, commit: bool) -> None:
    """Check a CSV file against a table and show what importing would do.

    Exits with status 1 if the file cannot be read or has invalid rows, and 75
    if another import is writing the database (nothing written: try again).
    """
    svc = CrudService(RESOURCES[table], db.session)
    progress = _TerminalProgress() if sys.stderr.isatty() else None
    try:
        if commit:
            result = csvfile.import_file(svc, file, progress=progress)
        else:
            result = csvfile.preview_file(svc, file, progress=progress)
    except csvfile.CsvFileError as exc:
        raise click.ClickException(f"{file}: {exc.message}") from None
    except (ValidationError, Conflict) as exc:
        raise click.ClickException(f"Nothing was imported: {exc}") from None
    except WriteBusy:
        # SQLite: another import holds the write gate (app/write_gate.py).
        raise ImportBusy(
            "Nothing was imported: another import is writing this database."
            " Run this again once it has finished."
        ) from None
    finally:
        if progress is not None:
            progress.end()
    counts = ", ".join(f"{n:,} {name}" for name, n in result.counts.items())
    click.echo(f"{file} into {table}: {counts}.")
    if result.keeps_ids:
        click.echo(f"The {table} table is empty, so the rows keep the ids in the file.")
    for error in result.errors[:CLI_ERRORS]:
        column = error.column or "row"
        click.echo(f"  line {error.line}, {column}: {error.reason}", err=True)
    if result.invalid > CLI_ERRORS:
        click.echo(f"  ... and more: {result.invalid:,} invalid rows in all.", err=True)
    if commit:
        rows = "row" if result.writes == 1 else "rows"
        click.echo(f"Imported: {result.writes:,} {rows} written in one transaction.")
    else:
        click.echo("Dry run: nothing written. Add --commit to import the valid rows.")
    if result.invalid:
        sys.exit(1)


class _TerminalProgress:
    """Shows an import's progress on one line of a terminal (stderr)."""

    def __init__(self) -> None:
        self.shown = False

    def __call__(self, phase: str, done: int, total: int) -> None:
        """Rewrite the line: rows checked or written so far (of how many)."""
        verb = "Written" if phase == "writing" else "Checked"
        of = f" of {total:,}" if total else ""
        click.echo(f"\r{verb} {done:,}{of} rows ", err=True, nl=False)
        self.shown = True

    def end(self) -> None:
        """End the progress line, so what follows starts on a line of its own."""
        if self.shown:
            click.echo(err=True)


# --older-than's units, in seconds: "90d", "12h", "30m", "45s".
_AGE_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_age(text: str) -> float:
    """Seconds in an age such as "90d", "12h", "30m" or "45s"."""
    text = text.strip().lower()
    unit = _AGE_UNITS.get(text[-1:])
    try:
        amount = float(text[:-1])
    except ValueError:
        amount = -1
    if unit is None or amount < 0:
        raise click.BadParameter(f"{text!r}: use a number and d, h, m or s: 90d.")
    return amount * unit


@click.group("changes")
def changes_group() -> None:
    """The change log (issue 14): prune old changes."""


@changes_group.command("prune")
@click.option(
    "--older-than",
    "older_than",
    default=None,
    help="Delete changes older than this (90d, 12h...). Default: CHANGES_KEEP_DAYS.",
)
@with_appcontext
def prune_command(older_than: str | None) -> None:
    """Delete the changes older than an age; they can no longer be undone."""
    if older_than is None:
        days = float(current_app.config["CHANGES_KEEP_DAYS"])
        if days <= 0:
            click.echo("CHANGES_KEEP_DAYS is 0: the change log is kept whole.")
            return
        seconds = days * 86400
    else:
        seconds = parse_age(older_than)
    removed = prune(db.session(), seconds)
    db.session.commit()
    noun = "change" if removed == 1 else "changes"
    click.echo(f"Pruned {removed:,} {noun} from the change log.")


def init_app(app: Flask) -> None:
    """Register the CLI commands."""
    app.cli.add_command(seed_command)
    app.cli.add_command(export_command)
    app.cli.add_command(import_command)
    app.cli.add_command(changes_group)
