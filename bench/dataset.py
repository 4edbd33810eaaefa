"""The benchmark data: made once by reeltable's own seed command, cached by size.

SQLite: bench/data/cache/<key>.sqlite3 is generated once and never served; each
run serves a fresh copy (the edit workload changes rows). PostgreSQL: database
`reeltable_bench`, one schema per key, marked complete by a schema comment.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
PG_DATABASE = "reeltable_bench"
COMPLETE = "reeltable bench data: complete"


@dataclass(frozen=True)
class Size:
    """How much synthetic data to generate."""

    movies: int
    ratings: int
    seed: int = 42

    @property
    def key(self) -> str:
        """A name that changes whenever the generated data would."""
        return f"m{self.movies}-r{self.ratings}-s{self.seed}"

    @property
    def label(self) -> str:
        """Human-readable size, e.g. "100,000 movies / 1,000,000 ratings"."""
        return f"{self.movies:,} movies / {self.ratings:,} ratings"


def flask(
    args: Iterable[str], database_url: str, instance: Path
) -> subprocess.CompletedProcess[str]:
    """Run `flask --app app ...` from the app's venv on the given database."""
    instance.mkdir(parents=True, exist_ok=True)
    flask_bin = Path(sys.executable).with_name("flask")
    app_spec = f'app:create_app(instance_path="{instance}")'
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "bench-only"}
    return subprocess.run(
        [str(flask_bin), "--app", app_spec, *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )


def seed_args(size: Size) -> list[str]:
    """The `flask seed` arguments that generate a dataset of this size."""
    return [
        "seed",
        "--synthetic",
        "--movies",
        str(size.movies),
        "--ratings",
        str(size.ratings),
        "--random-seed",
        str(size.seed),
    ]


def sqlite_cache_path(size: Size, data: Path = DATA) -> Path:
    """Where the pristine SQLite file for this size lives."""
    return data / "cache" / f"reeltable-{size.key}.sqlite3"


def checkpoint(path: Path) -> None:
    """Fold the WAL into the main file so a plain copy is complete."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def ensure_sqlite(size: Size, log=print, data: Path = DATA) -> Path:
    """Return the cached SQLite file for size, generating it first if missing.

    Generation writes a temporary file and renames it at the end, so an
    interrupted run never leaves a half-filled cache. The cache is migrated to
    the current head on every run (a new index lands without regenerating).
    """
    path = sqlite_cache_path(size, data)
    instance = data / "instance"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".partial")
        for stale in path.parent.glob(tmp.name + "*"):
            stale.unlink()
        url = "sqlite:///" + str(tmp)
        log(f"  generating {size.label} with `flask seed --synthetic` ...")
        flask(["db", "upgrade"], url, instance)
        flask(
            seed_args(size),
            url,
            instance,
        )
        checkpoint(tmp)
        tmp.rename(path)
    flask(["db", "upgrade"], "sqlite:///" + str(path), instance)
    checkpoint(path)
    return path


def working_copy(cache: Path, data: Path = DATA) -> Path:
    """Copy the cached file to bench/data/run/ for this run to serve and change."""
    run = data / "run"
    run.mkdir(parents=True, exist_ok=True)
    target = run / cache.name
    for suffix in ("", "-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    shutil.copyfile(cache, target)
    return target


# ---------------------------------------------------------------- PostgreSQL


def pg_schema(size: Size) -> str:
    """The schema that holds this size's data in the bench database."""
    return "bench_" + size.key.replace("-", "_")


def pg_url(base_url: str, database: str, schema: str | None = None) -> str:
    """Return base_url pointed at another database (and search_path, if given)."""
    parts = urllib.parse.urlsplit(base_url)
    query = urllib.parse.parse_qsl(parts.query)
    if schema:
        query = [(k, v) for k, v in query if k != "options"]
        query.append(("options", f"-csearch_path={schema},public"))
    return urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc, "/" + database, urllib.parse.urlencode(query), "")
    )


def _psycopg_url(url: str) -> str:
    """psycopg takes libpq URLs: drop SQLAlchemy's +driver suffix."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def ensure_postgres(
    size: Size,
    base_url: str,
    log=print,
    data: Path = DATA,
    schema: str | None = None,
) -> str:
    """Return a DATABASE_URL holding this size's data, loading it if missing.

    Only ever touches the database `reeltable_bench` (created if absent) and
    its own schema in it (`schema`, by default the size's); never the database
    named in base_url.
    """
    import psycopg

    with psycopg.connect(_psycopg_url(base_url), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (PG_DATABASE,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    schema = schema or pg_schema(size)
    bench_url = pg_url(base_url, PG_DATABASE)
    with psycopg.connect(_psycopg_url(bench_url), autocommit=True) as conn:
        # In public, so every schema's search_path (schema, public) sees it.
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
        row = conn.execute(
            "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace"
            " WHERE nspname = %s",
            (schema,),
        ).fetchone()
        complete = row is not None and row[0] == COMPLETE
        if not complete:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.execute(f'CREATE SCHEMA "{schema}"')
    url = pg_url(base_url, PG_DATABASE, schema)
    instance = data / "instance"
    flask(["db", "upgrade"], url, instance)
    if not complete:
        log(f"  loading {size.label} into PostgreSQL schema {schema} ...")
        flask(
            seed_args(size),
            url,
            instance,
        )
        with psycopg.connect(_psycopg_url(url), autocommit=True) as conn:
            # What autovacuum does soon after a bulk load; done now so the first
            # measurements do not depend on when it happens to run.
            conn.execute("VACUUM ANALYZE")
            conn.execute(f"COMMENT ON SCHEMA \"{schema}\" IS '{COMPLETE}'")
    return url


# ---------------------------------------------------------------- reading back


class Reader:
    """Read rows straight from the benchmark database (SQLite file or PostgreSQL)."""

    def __init__(self, target: Path | str) -> None:
        self.target = target

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Run a read query; SQLite placeholders are "?", rewritten for psycopg."""
        if isinstance(self.target, Path):
            conn = sqlite3.connect(f"file:{self.target}?mode=ro", uri=True)
            try:
                return conn.execute(sql, params).fetchall()
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(_psycopg_url(self.target)) as conn:
            return conn.execute(
                sql.replace("%", "%%").replace("?", "%s"), params
            ).fetchall()

    def directors(self, ids: list[int]) -> dict[int, tuple[str, int]]:
        """Return {id: (director, version)} for the given movies."""
        out: dict[int, tuple[str, int]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.query(
                f"SELECT id, director, version FROM movies WHERE id IN ({marks})",
                tuple(chunk),
            )
            out.update({r[0]: (r[1], r[2]) for r in rows})
        return out
