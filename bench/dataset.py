"""The benchmark data: made once by reeltable's own seed command, cached by size.

SQLite: bench/data/cache/<key>.sqlite3 is generated once and never served; each
run serves a fresh copy (the edit workload changes rows). PostgreSQL: database
`reeltable_bench`, one schema per key, marked complete by a schema comment.
"""

from __future__ import annotations

import hashlib
import json
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
MIGRATIONS = ROOT / "migrations" / "versions"


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


def migration_files() -> dict[str, str]:
    """{file name: digest} of every migration, as data made now is made under them."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        for path in sorted(MIGRATIONS.glob("*.py"))
    }


def made_under_other_migrations(recorded: str | None) -> bool:
    """True if a migration the data was made under has changed or gone since.

    `flask db upgrade` applies new revisions to cached data, but skips one already
    applied: data generated while a migration was still being written would keep
    its old schema for good. A JSON {file: digest} is recorded with the data (see
    migration_files); anything unreadable counts as changed. BENCH_KEEP_DATA=1
    keeps the data whatever changed.
    """
    if os.environ.get("BENCH_KEEP_DATA"):
        return False
    try:
        then = json.loads(recorded or "")
    except ValueError:
        return True
    now = migration_files()
    return not isinstance(then, dict) or any(
        now.get(name) != digest for name, digest in then.items()
    )


def sqlite_cache_path(size: Size, data: Path = DATA) -> Path:
    """Where the pristine SQLite file for this size lives."""
    return data / "cache" / f"reeltable-{size.key}.sqlite3"


def checkpoint(path: Path) -> None:
    """Fold the WAL into the main file so a plain copy is complete."""
    conn = sqlite3.connect(path)
    try:
        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    finally:
        conn.close()
    if busy:
        raise RuntimeError(f"{path.name}: the WAL could not be folded in (busy)")


def _count_movies(path: Path) -> int:
    """Movies in a SQLite file (a check that generation filled it)."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT count(*) FROM movies").fetchone()[0]
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
    stamp = path.with_suffix(".migrations")
    made_under = json.dumps(migration_files())
    recorded = stamp.read_text() if stamp.exists() else None
    if path.exists() and made_under_other_migrations(recorded):
        log(f"  {path.name} was made under other migrations: generating it again")
        for stale in path.parent.glob(path.name + "*"):
            stale.unlink()
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
        made = _count_movies(tmp)
        if made != size.movies:
            raise RuntimeError(f"{tmp.name} holds {made:,} movies, not {size.movies:,}")
        tmp.rename(path)
        stamp.write_text(made_under)
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


def libpq_url(url: str) -> str:
    """psycopg takes libpq URLs: drop SQLAlchemy's +driver suffix."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def ensure_postgres(
    size: Size,
    base_url: str,
    log=print,
    data: Path = DATA,
    schema: str | None = None,
    source: Path | None = None,
) -> str:
    """Return a DATABASE_URL holding this size's data, loading it if missing.

    Only ever touches the database `reeltable_bench` (created if absent) and
    its own schema in it (`schema`, by default the size's); never the database
    named in base_url. With `source` (the SQLite file of the same size, as
    ensure_sqlite made it) the rows are copied from it with COPY, indexes
    after (copy_from_sqlite); without, `flask seed` generates them again.
    """
    import psycopg

    with psycopg.connect(libpq_url(base_url), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (PG_DATABASE,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    schema = schema or pg_schema(size)
    bench_url = pg_url(base_url, PG_DATABASE)
    # The comment names the migrations the data was loaded under (see ensure_sqlite).
    mark = f"{COMPLETE} under migrations {json.dumps(migration_files())}"
    with psycopg.connect(libpq_url(bench_url), autocommit=True) as conn:
        # In public, so every schema's search_path (schema, public) sees it.
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
        row = conn.execute(
            "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace"
            " WHERE nspname = %s",
            (schema,),
        ).fetchone()
        comment = (row[0] or "") if row is not None else ""
        complete = comment.startswith(COMPLETE) and not made_under_other_migrations(
            comment.removeprefix(COMPLETE).removeprefix(" under migrations ")
        )
        if not complete:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.execute(f'CREATE SCHEMA "{schema}"')
    url = pg_url(base_url, PG_DATABASE, schema)
    instance = data / "instance"
    flask(["db", "upgrade"], url, instance)
    if not complete:
        log(f"  loading {size.label} into PostgreSQL schema {schema} ...")
        if source is not None:
            copy_from_sqlite(source, url, log)
        else:
            flask(
                seed_args(size),
                url,
                instance,
            )
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            # What autovacuum does soon after a bulk load; done now so the first
            # measurements do not depend on when it happens to run.
            conn.execute("VACUUM ANALYZE")
            conn.execute(f"COMMENT ON SCHEMA \"{schema}\" IS '{mark}'")
    return url


# Tables the migrations keep per dialect (SQLite's counter row and FTS5 index,
# PostgreSQL's counter slots) or that name the schema's revision: never copied.
NOT_COPIED = {"alembic_version", "row_counts", "row_count_slots", "row_count_pending"}
COPY_BATCH = 10_000


def copy_from_sqlite(source: Path, url: str, log=print) -> None:
    """Copy every row of the SQLite file into the (migrated, empty) schema at url.

    `flask seed` inserts 10,000,000 ratings through the service, index by index
    and trigger by trigger; this copies the rows the SQLite seed made (the same
    data, ids included) in one transaction: the plain indexes and foreign keys
    are dropped, each table is streamed with COPY with triggers off, and the
    indexes, foreign keys, counter slots (0018) and id sequences are made after.
    """
    import psycopg

    lite = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    with psycopg.connect(libpq_url(url)) as conn:
        schema = conn.execute("SELECT current_schema()").fetchone()[0]
        theirs = {
            r[0]
            for r in lite.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        ours = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
            )
        ]
        tables = [t for t in ours if t in theirs and t not in NOT_COPIED]
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s"
            " AND tablename = ANY(%s) AND indexname NOT IN"
            " (SELECT conname FROM pg_constraint"
            " WHERE connamespace = %s::regnamespace)",
            (schema, tables, schema),
        ).fetchall()
        keys = conn.execute(
            "SELECT conname, conrelid::regclass::text, pg_get_constraintdef(oid)"
            " FROM pg_constraint WHERE contype = 'f'"
            " AND connamespace = %s::regnamespace",
            (schema,),
        ).fetchall()
        for name, table, _ in keys:
            conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        # No trigger fires (the counter slots are set below from count(*)).
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
        for table in tables:
            have = {r[1] for r in lite.execute(f'PRAGMA table_info("{table}")')}
            columns = [
                r[0]
                for r in conn.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass"
                    " AND attnum > 0 AND NOT attisdropped AND attgenerated = ''"
                    " ORDER BY attnum",
                    (f'"{schema}"."{table}"',),
                )
                if r[0] in have
            ]
            names = ", ".join(f'"{c}"' for c in columns)
            rows = lite.execute(f'SELECT {names} FROM "{table}"')
            copied = 0
            with conn.cursor().copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                while batch := rows.fetchmany(COPY_BATCH):
                    for row in batch:
                        copy.write_row(row)
                    copied += len(batch)
            log(f"    {table}: {copied:,} rows copied")
            if "id" in columns:
                conn.execute(
                    "SELECT setval(pg_get_serial_sequence(%s, 'id')::regclass,"
                    f' (SELECT max(id) FROM "{table}")::bigint)'
                    f' WHERE EXISTS (SELECT FROM "{table}")',
                    (f'"{table}"',),
                )
        for _name, definition in indexes:
            conn.execute(definition)
        log(f"    {len(indexes)} indexes built")
        for name, table, definition in keys:
            conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        slotted = {
            r[0]
            for r in conn.execute("SELECT DISTINCT table_name FROM row_count_slots")
        }
        for table in sorted(slotted & set(tables)):
            conn.execute(
                "UPDATE row_count_slots SET n = CASE WHEN slot = 0 THEN"
                f' (SELECT count(*) FROM "{table}") ELSE 0 END,'
                " version = version + 1 WHERE table_name = %s",
                (table,),
            )
    lite.close()


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

        with psycopg.connect(libpq_url(self.target)) as conn:
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
