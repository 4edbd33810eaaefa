"""`python -m bench.profile_edit`: where one single-cell edit (W5) spends its time.

Runs the app in this process through Flask's test client (no gunicorn, no HTTP):
first times `--n` edits of a director without the profiler, then profiles as many
more with cProfile and prints the functions by cumulative and by own time.

    python -m bench.profile_edit --db bench/data/run/x.sqlite3
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
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def reeltable_edit(db: str, ids: list[int]) -> Callable[[int], int]:
    """An edit function for reeltable: PATCH a director; returns the status."""
    os.environ["DATABASE_URL"] = "sqlite:///" + db
    os.environ.setdefault("SECRET_KEY", "bench-only")
    from app import create_app

    app = create_app(instance_path=str(ROOT / "bench" / "data" / "instance"))
    client = app.test_client()
    page = client.get("/movies")
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    headers = {"HX-Request": "true", "X-CSRFToken": token.group(1) if token else ""}
    conn = sqlite3.connect(db)
    versions = dict(
        conn.execute(
            f"SELECT id, version FROM movies WHERE id IN ({','.join('?' * len(ids))})",
            ids,
        ).fetchall()
    )
    conn.close()

    def edit(i: int) -> int:
        movie = ids[i % len(ids)]
        resp = client.patch(
            f"/movies/{movie}",
            data={"director": f"Profiled {i}", "version": versions[movie]},
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
            data={"list_form_pk": movie, "director": f"Profiled {i}"},
        )
        return resp.status_code

    return edit


def main(argv: Sequence[str] | None = None) -> int:
    """Time, then profile, n edits; print the figures and the top functions."""
    p = argparse.ArgumentParser(prog="python -m bench.profile_edit")
    p.add_argument("--db", required=True, help="a SQLite bench database to edit")
    p.add_argument("--tool", choices=("reeltable", "flask-admin"), default="reeltable")
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--top", type=int, default=30)
    args = p.parse_args(argv)
    conn = sqlite3.connect(args.db)
    ids = [r[0] for r in conn.execute("SELECT id FROM movies ORDER BY id LIMIT 200")]
    conn.close()
    make = reeltable_edit if args.tool == "reeltable" else flask_admin_edit
    edit = make(str(Path(args.db).resolve()), ids)
    for i in range(20):  # warm up: imports, first statements, caches
        edit(i)
    times = []
    for i in range(args.n):
        started = time.perf_counter()
        status = edit(1000 + i)
        times.append(time.perf_counter() - started)
        if status != 200:
            raise SystemExit(f"edit {i} answered {status}")
    times.sort()
    p50, mean = times[len(times) // 2], sum(times) / len(times)
    print(
        f"{args.tool}: {args.n} edits in-process,"
        f" p50 {1000 * p50:.2f} ms, mean {1000 * mean:.2f} ms"
    )
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(args.n):
        edit(100_000 + i)
    profiler.disable()
    stats = pstats.Stats(profiler)
    # Time inside SQLite (statements and commits) against everything else, which
    # is Python: the framework, the ORM and the app (profiled, so inflated alike).
    in_db = sum(
        row[2]
        for func, row in stats.stats.items()  # type: ignore[attr-defined]
        if func[0] == "~" and "sqlite3" in func[2]
    )
    total = stats.total_tt  # type: ignore[attr-defined]
    calls = stats.total_calls  # type: ignore[attr-defined]
    print(
        f"profiled: {1000 * total / args.n:.2f} ms an edit, of which SQLite"
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
