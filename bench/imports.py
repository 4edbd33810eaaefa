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
ids (matched on name and director); with --shortest also 64 MB of the shortest
movies lines (8.4 M rows, the most keys to remember). The preview, then the
import with the preview's counts, each in a fresh interpreter as an import job
runs them: the peak RSS growth of each step over the RSS before it (Linux:
/proc/self/clear_refs resets the peak).

SQLite by default; `--postgres URL` runs both parts on PostgreSQL too (in the
bench database's own schemas for them; each import's changes are undone).

Web (`--only web`, SQLite): the 1,000,000 new ratings uploaded, checked and
imported through the Import CSV page of a server run as `make serve` runs it,
timed as a person waits: upload until the preview shows, Import until "done".
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.dataset import (
    DATA,
    PG_DATABASE,
    ROOT,
    Size,
    checkpoint,
    ensure_postgres,
    ensure_sqlite,
    flask,
    pg_url,
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


# ---------------------------------------------------------------- web


def _csrf(session: Any, url: str) -> str:
    """The CSRF token of a requests session, from the import page's meta tag."""
    page = session.get(url + "/import")
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert found, page.text[:300]
    return found.group(1)


def _job_cpu(jobs: dict[int, float]) -> None:
    """Note the CPU seconds (user + system) of every import job running now."""
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"job_main" not in (entry / "cmdline").read_bytes():
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        jobs[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick


def _settled(
    session: Any, url: str, seen: dict[str, float], jobs: dict[int, float]
) -> Any:
    """Poll an import's page as htmx does until no job runs; note each phase.

    `jobs` gets the CPU time of the job processes, as last seen.
    """
    started = time.perf_counter()
    while True:
        _job_cpu(jobs)
        page = session.get(url, headers={"HX-Request": "true"})
        found = re.search(r'id="import-job-status" role="status">(\w+)', page.text)
        if found is None:
            return page
        seen.setdefault(found.group(1), time.perf_counter() - started)
        time.sleep(0.25)


def web_sqlite(size: Size, database: Path | None) -> None:
    """Upload, preview and import the new-ratings file through the web page.

    Served as `make serve` serves (app/gunicorn_conf.py), on a fresh copy of the
    data: the check (upload, storing it in the database, the job's check) and
    the write (Import to "done") are timed as a person waits for them.
    """
    import requests  # the test tools' client; only this part needs it

    print(f"SQLite, {size.label}, through the web page (upload, preview, Import):")
    cache = (
        database.resolve()
        if database
        else ensure_sqlite(size, log=lambda m: print(m, flush=True))
    )
    instance = WORK / "instance"
    export = export_ratings(
        "sqlite:///" + str(cache), instance, WORK / size.key / "ratings.csv"
    )
    path = make_files(export, size.ratings)[f"{size.ratings:,} new (no id)"]
    target = fresh_copy(cache, WORK / "web.sqlite3")
    url = "sqlite:///" + str(target)
    flask(["db", "upgrade"], url, instance)
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench-only"}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = subprocess.Popen(
        [str(gunicorn), "--config", "python:app.gunicorn_conf", "--no-control-socket"]
        + ["--bind", f"127.0.0.1:{port}", "--timeout", "600"]
        + [f'app:create_app(instance_path="{instance}")'],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        session = requests.Session()
        for _ in range(200):
            try:
                session.get(base + "/healthz", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        seen: dict[str, float] = {}
        started = time.perf_counter()
        with path.open("rb") as upload:
            answer = session.post(
                base + "/import",
                data={"resource": "ratings", "csrf_token": _csrf(session, base)},
                files={"file": (path.name, upload, "text/csv")},
                allow_redirects=False,
            )
        stored = time.perf_counter() - started
        location = base + answer.headers["Location"]
        checking: dict[int, float] = {}
        preview = _settled(session, location, seen, checking)
        checked = time.perf_counter() - started
        new = re.search(r'<th scope="row">New</th><td>([\d,]+)</td>', preview.text)
        started = time.perf_counter()
        session.post(location, data={"csrf_token": _csrf(session, base)})
        importing: dict[int, float] = {}
        done = _settled(session, location, seen, importing)
        written = time.perf_counter() - started
        result = re.search(r"([\d,]+) new and ([\d,]+) changed", done.text)
        print(
            f"  {path.name} ({path.stat().st_size / 2**20:.1f} MB):"
            f" upload stored in {stored:.1f} s, checked in {checked:.1f} s"
            f" ({new.group(1) if new else '?'} new; job CPU"
            f" {sum(checking.values()):.1f} s); written in {written:.1f} s"
            f" ({result.group(0) if result else '?'}; job CPU"
            f" {sum(importing.values()):.1f} s); together {checked + written:.1f} s",
            flush=True,
        )
    finally:
        server.terminate()
        server.wait(timeout=60)


def _free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_data(size: Size, base_url: str) -> str:
    """A URL of this size's data in a schema of its own in the bench database.

    Not the other workloads' schema: the imports change rows (and undo that).
    Loaded once with `flask seed --synthetic`; a schema comment marks it whole.
    """
    schema = "imports_" + size.key.replace("-", "_")
    return ensure_postgres(size, base_url, data=WORK, schema=schema)


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

# One step in a fresh interpreter, the way an import job runs it (app/imports/job.py):
# the app is made, then preview_file, or import_file with the preview's counts as
# the job passes them, with a progress callback. Printed: the RSS before the step,
# the peak RSS during it (Linux: /proc/self/clear_refs resets the peak first), its
# wall time and counts. A fresh process per step, so the import cannot reuse
# memory the preview freed, and the figure is what one job adds to its process.
MEMORY_SCRIPT = """
import json, sys, time
from pathlib import Path
from app import create_app, csvfile
from app.crud import CrudService
from app.db import db
from app.resources import RESOURCES

def status(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024

url, instance, table, path, step, expected = sys.argv[1:7]
app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "x"},
                 instance_path=instance)
heard = []
def progress(phase, done, total):
    heard.append(done)
with app.app_context():
    svc = CrudService(RESOURCES[table], db.session)
    svc.lookups.has_rows()
    Path("/proc/self/clear_refs").write_text("5")
    before = status("VmRSS")
    started = time.perf_counter()
    if step == "preview":
        result = csvfile.preview_file(svc, Path(path), progress=progress)
    else:
        counts = json.loads(expected)
        result = csvfile.import_file(svc, Path(path), counts, progress=progress)
    wall = time.perf_counter() - started
    peak = status("VmHWM")
print(json.dumps({"before": before, "peak": peak, "wall": wall,
                  "counts": result.counts}))
"""


@dataclass
class Step:
    """One measured preview or import: RSS before it, its peak, its wall time."""

    before: int
    peak: int
    wall: float
    counts: dict[str, int]

    @property
    def growth_mb(self) -> float:
        """Peak RSS growth of the step, in MB (2**20 bytes)."""
        return (self.peak - self.before) / 2**20


def memory_step(
    url: str, instance: Path, table: str, path: Path, step: str, expected: str = ""
) -> Step:
    """Run one step of an import in a fresh interpreter; return its figures."""
    if url.startswith("postgresql://"):  # the app's config does this for DATABASE_URL
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, url, str(instance), table, str(path)]
        + [step, expected or "{}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(f"the {step} of {path.name} failed:\n{done.stderr}")
    return Step(**json.loads(done.stdout.splitlines()[-1]))


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


def shortest_movies_file(path: Path) -> Path:
    """64 MB of the shortest movies lines with distinct keys (",0,d,"): 8.4 M rows.

    The most match_on keys a file at the limit can hold, so the most key hashes
    to remember (past csvfile.sets.KEY_HASHES_IN_MEMORY they go to a temporary table).
    """
    if path.exists():
        return path
    digits = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    with path.open("wb") as f:
        header = b"name,director,rating\n"
        f.write(header)
        written = len(header)
        number = 0
        while True:
            name, rest = "", number
            while True:
                rest, digit = divmod(rest, len(digits))
                name = digits[digit] + name
                if not rest:
                    break
            line = f"{name},d,\n".encode()
            if written + len(line) > UPLOAD_LIMIT:
                return path
            f.write(line)
            written += len(line)
            number += 1


def memory_database(dialect: str, base_url: str, table: str, movies: int) -> str:
    """A fresh, migrated database for one memory run; ratings get `movies` movies.

    SQLite: a new file. PostgreSQL: schema imports_memory of the bench database,
    dropped and made again.
    """
    folder = WORK / "memory"
    instance = folder / "instance"
    if dialect == "sqlite":
        database = folder / "memory.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(str(database) + suffix).unlink(missing_ok=True)
        url = "sqlite:///" + str(database)
    else:
        import psycopg

        plain = base_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(plain, autocommit=True) as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (PG_DATABASE,)
            ).fetchone()
            if not found:
                conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
        with psycopg.connect(pg_url(plain, PG_DATABASE), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
            conn.execute("DROP SCHEMA IF EXISTS imports_memory CASCADE")
            conn.execute("CREATE SCHEMA imports_memory")
        url = pg_url(plain, PG_DATABASE, "imports_memory")
    flask(["db", "upgrade"], url, instance)
    if table == "ratings":
        flask(
            ["seed", "--synthetic", "--movies", str(movies), "--ratings", "0"],
            url,
            instance,
        )
    return url


def memory(
    dialects: dict[str, str], movies: int = 1000, shortest: bool = False
) -> None:
    """Peak RSS growth of a preview and an import of 64 MB files, each dialect."""
    print(
        "Memory at the 64 MB upload limit (peak RSS growth of each step, in a"
        " fresh process as an import job runs it):"
    )
    folder = WORK / "memory"
    folder.mkdir(parents=True, exist_ok=True)
    instance = folder / "instance"
    files = {
        "ratings": large_ids_file(folder / "ratings-large-ids.csv", movies),
        "movies": movies_file(folder / "movies-no-ids.csv"),
    }
    if shortest:
        files["movies, shortest lines"] = shortest_movies_file(
            folder / "movies-shortest.csv"
        )
    for dialect, base_url in dialects.items():
        for label, path in files.items():
            table = label.split(",")[0]
            url = memory_database(dialect, base_url, table, movies)
            preview = memory_step(url, instance, table, path, "preview")
            expected = json.dumps(preview.counts)
            done = memory_step(url, instance, table, path, "import", expected)
            if done.counts != preview.counts:
                raise RuntimeError(f"{table}: {done.counts} != {preview.counts}")
            size_mb = path.stat().st_size / 2**20
            rows = sum(preview.counts.values())
            print(
                f"  {dialect:10} {label:7} {size_mb:.0f} MB, {rows:,} rows"
                f" ({preview.counts['invalid']:,} invalid): preview"
                f" +{preview.growth_mb:.1f} MB ({preview.wall:.0f} s), import"
                f" +{done.growth_mb:.1f} MB ({done.wall:.0f} s); RSS before"
                f" {preview.before / 2**20:.0f} MB",
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
    parser.add_argument(
        "--only", choices=["speed", "memory", "web"], help="one part only"
    )
    parser.add_argument(
        "--database",
        type=Path,
        help="web: this SQLite file of the benchmark data (copied), not the cache",
    )
    parser.add_argument(
        "--no-sqlite", action="store_true", help="measure PostgreSQL only"
    )
    parser.add_argument(
        "--shortest",
        action="store_true",
        help="memory: also 64 MB of the shortest movies lines (8.4 M rows, slow)",
    )
    args = parser.parse_args(argv)
    size = Size(args.movies, args.ratings)
    load = os.getloadavg()[0]
    print(f"CSV import, issue 11 ({os.cpu_count()} CPUs, load average {load:.1f})")
    if args.only == "web":
        web_sqlite(size, args.database)
        print(f"(load average now {os.getloadavg()[0]:.1f})")
        return 0
    if args.only != "memory":
        if not args.no_sqlite:
            speed_sqlite(size)
        if args.postgres:
            speed_postgres(size, args.postgres)
    if args.only != "speed":
        dialects = {} if args.no_sqlite else {"sqlite": ""}
        if args.postgres:
            dialects["postgresql"] = args.postgres
        memory(dialects, shortest=args.shortest)
    print(f"(load average now {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
