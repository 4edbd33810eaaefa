"""CSV import speed and memory (issue 11): `python -m bench.imports --help`.

Speed: the benchmark data (100,000 movies / 1,000,000 ratings by default, made
by `flask seed --synthetic` and cached as the other workloads' is) is exported,
and three files are made from the export: every rating again with its id
(1,000,000 unchanged), one in ten of them with another score (100,000 changed),
and every rating without its id (1,000,000 new). Each is previewed, then
imported, with `flask --app app import ratings FILE [--commit]` on a fresh copy
of the data, as a child process: its wall time, CPU time (user + system) and
peak RSS are printed. The web page runs the same two functions (preview on
upload, import on Import).

Memory: a file at the upload limit (64 MB) of ratings with large random ids,
restored into an empty ratings table (1,000 movies), and one of movies without
ids (matched on name and director): in a fresh interpreter, the peak RSS growth
of the preview and of the import, each from the RSS before it (Linux:
/proc/self/clear_refs resets the peak).

SQLite by default; `--postgres URL` runs the speed part on PostgreSQL too (in the
bench database's own schema for it, which each import's changes are undone in).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.dataset import (
    COMPLETE,
    DATA,
    PG_DATABASE,
    ROOT,
    Size,
    checkpoint,
    ensure_sqlite,
    flask,
    pg_url,
    seed_args,
)

WORK = DATA / "imports"
UPLOAD_LIMIT = 64 * 1024 * 1024


@dataclass
class Run:
    """One measured child process."""

    wall: float
    cpu: float
    peak_mb: float
    output: str


def measured(args: list[str], env: dict[str, str]) -> Run:
    """Run a command; return its wall and CPU time and peak RSS (os.wait4)."""
    started = time.perf_counter()
    child = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert child.stdout is not None
    output = child.stdout.read().decode()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if child.returncode not in (0, 1):  # 1: the file has invalid rows
        raise RuntimeError(f"{' '.join(args)} failed:\n{output}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, output)


def flask_import(url: str, instance: Path, path: Path, commit: bool) -> Run:
    """`flask import ratings FILE [--commit]` on the given database, measured."""
    instance.mkdir(parents=True, exist_ok=True)
    flask_bin = Path(sys.executable).with_name("flask")
    args = [
        str(flask_bin),
        "--app",
        f'app:create_app(instance_path="{instance}")',
        "import",
        "ratings",
        str(path),
    ]
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench-only"}
    return measured(args + (["--commit"] if commit else []), env)


# ---------------------------------------------------------------- the files


def make_files(export: Path, ratings: int) -> dict[str, Path]:
    """From an export of every rating, make the three files to import."""
    files = {
        f"{ratings:,} unchanged (by id)": export,
        f"{ratings // 10:,} changed (by id)": export.with_name("ratings-changed.csv"),
        f"{ratings:,} new (no id)": export.with_name("ratings-new.csv"),
    }
    changed, new = list(files.values())[1:]
    if not changed.exists() or not new.exists():
        with (
            export.open(newline="", encoding="utf-8") as source,
            changed.open("w", newline="", encoding="utf-8") as one,
            new.open("w", newline="", encoding="utf-8") as other,
        ):
            reader = csv.reader(source)
            header = next(reader)
            at = header.index("rating")
            writers = (
                csv.writer(one, lineterminator="\r\n"),
                csv.writer(other, lineterminator="\r\n"),
            )
            for writer in writers:
                writer.writerow(header)
            for number, row in enumerate(reader):
                blank = ["", *row[1:]]
                if number % 10 == 3:
                    row[at] = str(int(row[at]) % 10 + 1)
                writers[0].writerow(row)
                writers[1].writerow(blank)
    return files


def export_ratings(url: str, instance: Path, out: Path) -> Path:
    """Export every rating of the database once (the files are made from it)."""
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_suffix(".partial")
        flask(["export", "ratings", "--out", str(partial)], url, instance)
        partial.rename(out)
    return out


# ---------------------------------------------------------------- speed


def report(label: str, preview: Run, done: Run) -> None:
    """Print one file's preview and import figures."""
    print(
        f"  {label:28} preview {preview.wall:6.1f} s (CPU {preview.cpu:5.1f} s,"
        f" peak {preview.peak_mb:4.0f} MB)   import {done.wall:6.1f} s"
        f" (CPU {done.cpu:5.1f} s, peak {done.peak_mb:4.0f} MB)"
        f"   together {preview.wall + done.wall:6.1f} s",
        flush=True,
    )


def fresh_copy(cache: Path, target: Path) -> Path:
    """A fresh copy of the pristine SQLite file, without a WAL."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    shutil.copyfile(cache, target)
    return target


def speed_sqlite(size: Size) -> None:
    """Preview and import each file on SQLite, each on a fresh copy."""
    print(f"SQLite, {size.label} (`flask --app app import ratings FILE [--commit]`):")
    cache = ensure_sqlite(size, log=lambda m: print(m, flush=True))
    instance = WORK / "instance"
    export = export_ratings(
        "sqlite:///" + str(cache), instance, WORK / size.key / "ratings.csv"
    )
    checkpoint(cache)
    for label, path in make_files(export, size.ratings).items():
        target = fresh_copy(cache, WORK / "run.sqlite3")
        url = "sqlite:///" + str(target)
        preview = flask_import(url, instance, path, commit=False)
        fresh_copy(cache, target)
        done = flask_import(url, instance, path, commit=True)
        report(label, preview, done)


def postgres_data(size: Size, base_url: str) -> str:
    """A URL of this size's data in a schema of its own in the bench database.

    Not the other workloads' schema: the imports change rows (and undo that).
    Loaded once with `flask seed --synthetic`; a schema comment marks it whole.
    """
    import psycopg

    plain = base_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, autocommit=True) as conn:
        found = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (PG_DATABASE,)
        ).fetchone()
        if not found:
            conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    schema = "imports_" + size.key.replace("-", "_")
    bench = pg_url(plain, PG_DATABASE)
    with psycopg.connect(bench, autocommit=True) as conn:
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
    url = pg_url(plain, PG_DATABASE, schema)
    instance = WORK / "instance"
    flask(["db", "upgrade"], url, instance)
    if not complete:
        print(f"  loading {size.label} into PostgreSQL schema {schema} ...", flush=True)
        flask(seed_args(size), url, instance)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            conn.execute(f"COMMENT ON SCHEMA \"{schema}\" IS '{COMPLETE}'")
    return url


def speed_postgres(size: Size, base_url: str) -> None:
    """Preview and import each file on PostgreSQL, undoing each import after."""
    import psycopg

    print(f"PostgreSQL, {size.label}:")
    url = postgres_data(size, base_url)
    instance = WORK / "instance"
    export = export_ratings(url, instance, WORK / size.key / "pg" / "ratings.csv")
    with psycopg.connect(url, autocommit=True) as conn:
        top = conn.execute("SELECT max(id) FROM ratings").fetchone()[0]
    for label, path in make_files(export, size.ratings).items():
        preview = flask_import(url, instance, path, commit=False)
        done = flask_import(url, instance, path, commit=True)
        report(label, preview, done)
        # Undo it, so the next file meets the data as it was.
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DELETE FROM ratings WHERE id > %s", (top,))
        if path != export:
            flask_import(url, instance, export, commit=True)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE ratings")


# ---------------------------------------------------------------- memory

# Runs in a fresh interpreter: the peak RSS of each step, from the RSS before it.
MEMORY_SCRIPT = """
import json, sys
from pathlib import Path
from app import create_app, csvio
from app.crud import CrudService
from app.db import db
from app.resources import RESOURCES

def status(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024

app = create_app({"SQLALCHEMY_DATABASE_URI": sys.argv[1], "SECRET_KEY": "x"},
                 instance_path=sys.argv[2])
table, path = sys.argv[3], Path(sys.argv[4])
figures = {}
with app.app_context():
    svc = CrudService(RESOURCES[table], db.session)
    svc.has_rows()
    for step in ("preview", "import"):
        Path("/proc/self/clear_refs").write_text("5")
        before = status("VmRSS")
        run = csvio.preview_file if step == "preview" else csvio.import_file
        result = run(svc, path)
        figures[step] = status("VmHWM") - before
        figures["rows"] = result.new + result.changed + result.unchanged
        figures["invalid"] = result.invalid
print(json.dumps(figures))
"""


def large_ids_file(path: Path, movies: int) -> Path:
    """64 MB of ratings with random ids up to 2**31 - 10**6 (the issue's case)."""
    if path.exists():
        return path
    rng = random.Random(11)
    authors = ["Ana", "Tomás O'Brien", "Emeka Berg", "Rosa Ivanova", "Li Wei"]
    written = 0
    seen: set[int] = set()
    with path.open("wb") as f:
        header = b"id,rating,author,movie_id,movie_name\r\n"
        f.write(header)
        written += len(header)
        while True:
            row_id = rng.randrange(1, 2**31 - 10**6)
            if row_id in seen:
                continue
            seen.add(row_id)
            line = (
                f"{row_id},{rng.randrange(1, 11)},{rng.choice(authors)},"
                f"{rng.randrange(1, movies + 1)},\r\n"
            ).encode()
            if written + len(line) > UPLOAD_LIMIT:
                return path
            f.write(line)
            written += len(line)


def movies_file(path: Path) -> Path:
    """64 MB of movies without ids: each matched by name and director."""
    if path.exists():
        return path
    written = 0
    with path.open("wb") as f:
        header = b"id,name,director,rating\r\n"
        f.write(header)
        written += len(header)
        number = 0
        while True:
            number += 1
            line = f",Film number {number},Director {number % 997},7.5\r\n".encode()
            if written + len(line) > UPLOAD_LIMIT:
                return path
            f.write(line)
            written += len(line)


def memory(movies: int = 1000) -> None:
    """Peak RSS growth of a preview and an import of 64 MB files (SQLite)."""
    print("Memory at the 64 MB upload limit (SQLite; peak RSS growth of each step):")
    folder = WORK / "memory"
    folder.mkdir(parents=True, exist_ok=True)
    instance = folder / "instance"
    files = {
        "ratings": large_ids_file(folder / "ratings-large-ids.csv", movies),
        "movies": movies_file(folder / "movies-no-ids.csv"),
    }
    for table, path in files.items():
        database = folder / "memory.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(str(database) + suffix).unlink(missing_ok=True)
        url = "sqlite:///" + str(database)
        flask(["db", "upgrade"], url, instance)
        if table == "ratings":
            seed = ["seed", "--synthetic", "--movies", str(movies), "--ratings", "0"]
            flask(seed, url, instance)
        done = subprocess.run(
            [sys.executable, "-c", MEMORY_SCRIPT, url, str(instance), table, str(path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(done.stdout.splitlines()[-1])
        size_mb = path.stat().st_size / 2**20
        print(
            f"  {table}: {size_mb:.0f} MB, {figures['rows']:,} rows"
            f" ({figures['invalid']:,} invalid): preview"
            f" +{figures['preview'] / 2**20:.1f} MB, import"
            f" +{figures['import'] / 2**20:.1f} MB",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    """Run the import benchmark and print its figures."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.imports", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--movies", type=int, default=100_000)
    parser.add_argument("--ratings", type=int, default=1_000_000)
    parser.add_argument("--postgres", metavar="URL", help="also measure PostgreSQL")
    parser.add_argument("--only", choices=["speed", "memory"], help="one part only")
    parser.add_argument(
        "--no-sqlite", action="store_true", help="speed on PostgreSQL only"
    )
    args = parser.parse_args(argv)
    size = Size(args.movies, args.ratings)
    load = os.getloadavg()[0]
    print(f"CSV import, issue 11 ({os.cpu_count()} CPUs, load average {load:.1f})")
    if args.only != "memory":
        if not args.no_sqlite:
            speed_sqlite(size)
        if args.postgres:
            speed_postgres(size, args.postgres)
    if args.only != "speed":
        memory()
    print(f"(load average now {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
