"""`python -m bench.profile_edit`: where one single-cell edit (W5) spends its time.

Runs the app in this process through Flask's test client (no gunicorn, no HTTP):
first times `--n` edits of a director without the profiler, then profiles as many
more with cProfile and prints the functions by cumulative and by own time.

    python -m bench.profile_edit --db bench/data/run/x.sqlite3
    python -m bench.profile_edit --db postgresql+psycopg://user@host/db
    bench/.venv-peers/bin/python -m bench.profile_edit --tool flask-admin --db ...

reeltable: PATCH /movies/<id> with the version and CSRF token, as W5 sends it.
flask-admin (bench/peers, run from the peers' venv): its ajax update, as W5 sends
it (no version check, no change log, no row in the answer).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import secrets
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Values no earlier run wrote: writing the value a row holds changes nothing, so
# its version stays put and the next edit, sent with the old version + 1, is a 409.
RUN = secrets.token_hex(3)


def _versions(db: str, ids: list[int]) -> dict[int, int]:
    """Each movie's version, from the SQLite file or PostgreSQL URL db."""
    marks = ",".join(["%s" if _is_postgres(db) else "?"] * len(ids))
    sql = f"SELECT id, version FROM movies WHERE id IN ({marks})"
    if _is_postgres(db):
        import psycopg

        from bench.dataset import libpq_url

        with psycopg.connect(libpq_url(db)) as pg:
            return dict(pg.execute(sql, ids).fetchall())  # type: ignore[arg-type]
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute(sql, ids).fetchall())
    finally:
        conn.close()


def _is_postgres(db: str) -> bool:
    return db.startswith("postgresql")


def reeltable_edit(db: str, ids: list[int]) -> Callable[[int], int]:
    """An edit function for reeltable: PATCH a director; returns the status."""
    os.environ["DATABASE_URL"] = db if _is_postgres(db) else "sqlite:///" + db
    os.environ.setdefault("SECRET_KEY", "bench-only")
    from app import create_app

    app = create_app(instance_path=str(ROOT / "bench" / "data" / "instance"))
    client = app.test_client()
    page = client.get("/movies")
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    headers = {"HX-Request": "true", "X-CSRFToken": token.group(1) if token else ""}
    versions = _versions(db, ids)

    def edit(i: int) -> int:
        movie = ids[i % len(ids)]
        resp = client.patch(
            f"/movies/{movie}",
            data={"director": f"Profiled {RUN}-{i}", "version": versions[movie]},
            headers=headers,
        )
        if resp.status_code == 200:
            versions[movie] += 1
        return resp.status_code

    return edit


def flask_admin_edit(db: str, ids: list[int]) -> Callable[[int], int]:
    """An edit function for the Flask-Admin peer: its ajax update."""
    os.environ["BENCH_DATABASE"] = db
    sys.path.insert(0, str(ROOT / "bench" / "peers"))
    from flask_admin_app import create_app  # type: ignore[import-not-found]

    client = create_app().test_client()

    def edit(i: int) -> int:
        movie = ids[i % len(ids)]
        resp = client.post(
            "/admin/movie/ajax/update/",
            data={"list_form_pk": movie, "director": f"Profiled {RUN}-{i}"},
        )
        return resp.status_code

    return edit


def _in_psycopg(func: tuple[str, int, str]) -> bool:
    """A function of psycopg's (its Python files, or its compiled parts)."""
    return "psycopg" in func[0] or (func[0] == "~" and "psycopg" in func[2])


def main(argv: Sequence[str] | None = None) -> int:
    """Time, then profile, n edits; print the figures and the top functions."""
    p = argparse.ArgumentParser(prog="python -m bench.profile_edit")
    p.add_argument(
        "--db",
        required=True,
        help="a SQLite bench database to edit, or a PostgreSQL URL"
        " (postgresql+psycopg://...)",
    )
    p.add_argument("--tool", choices=("reeltable", "flask-admin"), default="reeltable")
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--top", type=int, default=30)
    args = p.parse_args(argv)
    db = args.db if _is_postgres(args.db) else str(Path(args.db).resolve())
    ids = sorted(_versions(db, list(range(1, 201))))
    make = reeltable_edit if args.tool == "reeltable" else flask_admin_edit
    edit = make(db, ids)
    for i in range(20):  # warm up: imports, first statements, caches
        edit(i)
    times = []
    cpu_started = time.process_time()
    for i in range(args.n):
        started = time.perf_counter()
        status = edit(1000 + i)
        times.append(time.perf_counter() - started)
        if status != 200:
            raise SystemExit(f"edit {i} answered {status}")
    # CPU time of this process alone (the app's Python and the driver's; not the
    # database server's): steadier than the clock on a machine doing other work.
    cpu = (time.process_time() - cpu_started) / args.n
    times.sort()
    p50, mean = times[len(times) // 2], sum(times) / len(times)
    print(
        f"{args.tool}: {args.n} edits in-process,"
        f" p50 {1000 * p50:.2f} ms, mean {1000 * mean:.2f} ms,"
        f" CPU {1000 * cpu:.2f} ms an edit in this process"
    )
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(args.n):
        edit(100_000 + i)
    profiler.disable()
    stats = pstats.Stats(profiler)
    # Time inside the database driver (statements and commits; on PostgreSQL
    # psycopg's own Python and its wait for the server) against everything else,
    # which is Python: the framework, the ORM and the app (profiled, so inflated
    # alike).
    driver = "psycopg" if _is_postgres(db) else "sqlite3"
    in_db = sum(
        row[2]
        for func, row in stats.stats.items()  # type: ignore[attr-defined]
        if (func[0] == "~" and "sqlite3" in func[2])
        or (driver == "psycopg" and _in_psycopg(func))
    )
    total = stats.total_tt  # type: ignore[attr-defined]
    calls = stats.total_calls  # type: ignore[attr-defined]
    print(
        f"profiled: {1000 * total / args.n:.2f} ms an edit, of which {driver}"
        f" {1000 * in_db / args.n:.2f} ms; {calls // args.n:,} Python function"
        " calls an edit"
    )
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.strip_dirs().sort_stats(order).print_stats(args.top)
        print(f"--- by {order} (cProfile, {args.n} edits) ---")
        print(out.getvalue().split("\n\n", 1)[-1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
