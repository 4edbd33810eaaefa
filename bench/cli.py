"""`python -m bench`: set up the peers and data, serve, measure W1-W7, report."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import workloads as W
from bench.client import Req
from bench.dataset import (
    DATA,
    ROOT,
    Reader,
    Size,
    ensure_postgres,
    ensure_sqlite,
    working_copy,
)
from bench.report import evaluate, markdown
from bench.servers import Server, free_port

BENCH = ROOT / "bench"
PEERS_VENV = BENCH / ".venv-peers"
PEERS_REQUIREMENTS = BENCH / "peers" / "requirements.txt"
RESULTS = BENCH / "results"
INSTANCE = DATA / "instance"
EXPORT_COLUMNS = ("id", "rating", "author", "movie_id", "movie_name")
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
# `make serve` runs gunicorn from this file; --gunicorn-conf measures another.
GUNICORN_CONF = ROOT / "app" / "gunicorn_conf.py"
ALL_WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8")
# What PostgreSQL and the growth size are measured on (W1 against `psql \copy`).
PG_WORKLOADS = ("W1", "W2", "W3", "W4", "W5")


@dataclass(frozen=True)
class Settings:
    """How hard to measure: counts, rounds and durations."""

    n: int = 200  # sequential requests per tool and workload
    rounds: int = 4  # interleaved rounds the n requests are split into
    warmup: int = 20
    clients: int = 8  # W2 throughput
    writers: int = 4  # W5 throughput
    duration: float = 4.0  # seconds per throughput round
    load_rounds: int = 2
    export_rounds: int = 3
    export_warmup: int = 1
    first_load_samples: int = 20
    tabs: int = 50  # W8 idle tabs polling for changes
    live_duration: float = 15.0  # seconds per W8 phase (writers alone, with tabs)
    live_rounds: int = 2


FULL = Settings()
QUICK = Settings(
    n=40,
    rounds=2,
    warmup=5,
    duration=1.0,
    load_rounds=1,
    export_rounds=1,
    export_warmup=0,
    first_load_samples=3,
    live_duration=4.0,
    live_rounds=1,
)


def log(message: str) -> None:
    """Progress on stderr, so stdout carries only the final table."""
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- environments


def ensure_peers() -> Path:
    """Create bench/.venv-peers with the pinned peers, unless already current."""
    digest = hashlib.sha256(PEERS_REQUIREMENTS.read_bytes()).hexdigest()
    stamp = PEERS_VENV / ".installed"
    if stamp.exists() and stamp.read_text() == digest:
        return PEERS_VENV / "bin"
    log("Installing the peers into bench/.venv-peers ...")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--clear", str(PEERS_VENV)], check=True)
    pip = [str(PEERS_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    done = subprocess.run(
        [*pip, "-r", str(PEERS_REQUIREMENTS)], capture_output=True, text=True
    )
    if done.returncode:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit("Could not install the peers (see pip's output above).")
    stamp.write_text(digest)
    return PEERS_VENV / "bin"


def versions(python: Path, names: Sequence[str]) -> dict[str, str]:
    """Installed versions of packages in the environment of `python`."""
    code = (
        "import json, sys\nfrom importlib import metadata\nout = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = metadata.version(n)\n"
        "    except metadata.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    done = subprocess.run(
        [str(python), "-c", code, *names], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def machine() -> str:
    """CPU model, cores, memory and OS, in one line."""
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    return (
        f"{cpu}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}"
    )


def git_commit() -> str:
    """The commit measured, with "+changes" when the tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "app",
                "templates",
                "static",
                "migrations",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+uncommitted changes" if dirty else "")


# ---------------------------------------------------------------- servers


def reeltable_server(
    name: str,
    database_url: str,
    logs: Path,
    conf: Path = GUNICORN_CONF,
    root: Path = ROOT,
    instance: Path = INSTANCE,
) -> Server:
    """reeltable under gunicorn, from `make serve`'s config file unless told.

    `root`: the tree whose app is served (another revision, for bench.ab).
    """
    port = free_port()
    app_bin = Path(sys.executable).parent
    return Server(
        name=name,
        argv=[
            str(app_bin / "gunicorn"),
            "--config",
            str(conf),
            "--bind",
            f"127.0.0.1:{port}",
            "--no-control-socket",
            "--timeout",
            "600",
            f'app:create_app(instance_path="{instance}")',
        ],
        port=port,
        cwd=root,
        log=logs / f"{name}.log",
        env={"DATABASE_URL": database_url, "SECRET_KEY": "bench-only"},
        ready_path="/movies",
        forks_workers=True,
    )


def peer_servers(peers: Path, db: Path, logs: Path) -> dict[str, Server]:
    """Datasette, the Flask-Admin app and sqlite-web, each on its own port."""
    ports = [free_port() for _ in range(3)]
    return {
        "Datasette": Server(
            "Datasette",
            [
                str(peers / "datasette"),
                "serve",
                str(db),
                "-h",
                "127.0.0.1",
                "-p",
                str(ports[0]),
            ],
            ports[0],
            ROOT,
            logs / "datasette.log",
            ready_path="/-/versions.json",
        ),
        "Flask-Admin": Server(
            "Flask-Admin",
            [
                str(peers / "gunicorn"),
                "--workers",
                "2",
                "--bind",
                f"127.0.0.1:{ports[1]}",
                "--no-control-socket",
                "--timeout",
                "600",
                "--chdir",
                str(BENCH / "peers"),
                "flask_admin_app:create_app()",
            ],
            ports[1],
            ROOT,
            logs / "flask-admin.log",
            env={"BENCH_DATABASE": str(db)},
            ready_path="/admin/",
            forks_workers=True,
        ),
        "sqlite-web": Server(
            "sqlite-web",
            [
                str(peers / "sqlite_web"),
                str(db),
                "-H",
                "127.0.0.1",
                "-p",
                str(ports[2]),
                "-x",
                "-q",
                "-Q",
                "50",
            ],
            ports[2],
            ROOT,
            logs / "sqlite-web.log",
        ),
    }


@contextlib.contextmanager
def serving(servers: Sequence[Server]) -> Iterator[None]:
    """Start the servers (in order) and always stop them afterwards."""
    started: list[Server] = []
    try:
        for server in servers:
            log(f"  starting {server.name} on 127.0.0.1:{server.port}")
            server.start()
            started.append(server)
        yield
    finally:
        for server in reversed(started):
            server.stop()


# ---------------------------------------------------------------- the plan


# Which tools take the W5 edit, and the status that acknowledges it.
PLANS = {
    "reeltable": ("reeltable", 200),
    "Flask-Admin": ("flask-admin", 200),
    "sqlite-web": ("sqlite-web", 302),
}


@dataclass
class Facts:
    """What the requests and checks need to know about the data."""

    movies: int
    ratings: int
    star_count: int
    deep_offset: int
    deep_first_id: int  # reeltable's order: lower(name), id
    deep_token: str  # Datasette's keyset token for its order: name, id
    deep_first_id_binary: int
    ratings_ids: list[int]
    edit_pools: list[list[int]]


def tilde_encode(text: str) -> str:
    """Datasette's tilde encoding of a keyset value."""
    safe = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
    out = []
    for byte in text.encode():
        out.append(chr(byte) if byte in safe else "+" if byte == 32 else f"~{byte:02X}")
    return "".join(out)


def facts(reader: Reader, pool_size: int = 600, tools: int = len(PLANS)) -> Facts:
    """Read the counts and keys the workloads use from the database itself."""
    movies = reader.query("SELECT count(*) FROM movies")[0][0]
    ratings = reader.query("SELECT count(*) FROM ratings")[0][0]
    star = reader.query(
        "SELECT count(*) FROM movies WHERE lower(name) LIKE '%star%'"
        " OR lower(director) LIKE '%star%'"
    )[0][0]
    offset = min(50_000, (movies // 2) // 50 * 50)
    first = reader.query(
        "SELECT id FROM movies ORDER BY lower(name), id LIMIT 1 OFFSET ?", (offset,)
    )
    before = reader.query(
        "SELECT name, id FROM movies ORDER BY name, id LIMIT 2 OFFSET ?", (offset - 1,)
    )
    token = f"{tilde_encode(before[0][0])},{tilde_encode(str(before[0][1]))}"
    ids = [r[0] for r in reader.query("SELECT id FROM movies ORDER BY id")]
    step = max(1, len(ids) // 20)
    ratings_ids = ids[step // 2 :: step][:20]
    size = min(pool_size, len(ids) // (tools + 1))
    stride = max(1, len(ids) // (tools * size))
    pools = [[ids[(tools * k + t) * stride] for k in range(size)] for t in range(tools)]
    return Facts(
        movies,
        ratings,
        star,
        offset,
        first[0][0],
        token,
        before[1][1],
        ratings_ids,
        pools,
    )


def contains(needle: str) -> W.Callable:
    """A response check: the body must contain needle."""

    def check(resp) -> str | None:
        try:
            body = resp.decoded()
        except (ImportError, ValueError, OSError) as exc:
            return f"cannot decode the response: {exc}"
        return None if needle.encode() in body else f"{needle!r} not in the response"

    return check


def q(path: str, **params: object) -> str:
    """Build path?query with params in the order given."""
    from urllib.parse import urlencode

    return f"{path}?{urlencode(params, doseq=True)}" if params else path


def ours(workload: str, server: Server, f: Facts) -> W.Variant:
    """reeltable's request for a workload."""
    if workload == "W1":
        return W.Variant(
            "reeltable", "", server, [Req("GET", "/ratings.csv")], ours=True
        )
    if workload == "W2":
        req = Req("GET", q("/movies", q="star", sort="-rating"), W.HX)
        return W.Variant(
            "reeltable",
            "fragment",
            server,
            [req],
            True,
            contains(f"{f.star_count:,} of"),
        )
    if workload == "W3":
        page = f.deep_offset // 50 + 1
        req = Req("GET", q("/movies", sort="name", page=page), W.HX)
        return W.Variant(
            "reeltable",
            "fragment",
            server,
            [req],
            True,
            contains(f'id="movie-{f.deep_first_id}"'),
        )
    if workload == "W4":
        reqs = [Req("GET", f"/movies/{i}/ratings", W.HX) for i in f.ratings_ids]
        return W.Variant("reeltable", "fragment", server, reqs, True)
    if workload == "W5":
        return W.Variant(
            "reeltable",
            "PATCH + version",
            server,
            [Req("PATCH", "/movies/<id>", W.HX)],
            True,
        )
    if workload == "W6":
        return W.Variant(
            "reeltable", "", server, [Req("GET", "/movies", W.BROWSER_ENCODINGS)], True
        )
    if workload == "W7":
        return W.Variant(
            "reeltable",
            f"Chromium, {W.EDITOR_LATENCY_MS} ms latency",
            server,
            [Req("GET", "/movies")],
            True,
        )
    if workload == "W8":
        # The page a tab holds open; its live notice says what to poll.
        return W.Variant(
            "reeltable",
            "tabs polling /changes/since",
            server,
            [Req("GET", "/movies")],
            True,
        )
    raise ValueError(workload)


def peer_variants(workload: str, s: dict[str, Server], f: Facts) -> list[W.Variant]:
    """What each peer is asked for a workload (or why it cannot do it)."""
    if workload in ("W7", "W8"):
        return []  # the peers have no cell editor to time, nor live updates
    ds, fa, sw = s["Datasette"], s["Flask-Admin"], s["sqlite-web"]
    cols = [c for c in EXPORT_COLUMNS if c != "id"]
    if workload == "W1":
        form = q("", export_format="csv", columns=list(EXPORT_COLUMNS))[1:].encode()
        return [
            W.Variant(
                "Datasette",
                "_stream=on",
                ds,
                [
                    Req(
                        "GET",
                        q("/bench/ratings.csv", _stream="on", _size="max", _col=cols),
                    )
                ],
            ),
            W.Variant("Flask-Admin", "", fa, [Req("GET", "/admin/rating/export/csv/")]),
            W.Variant(
                "sqlite-web",
                "buffered",
                sw,
                [Req("POST", "/ratings/export/", W.FORM_IDENTITY, form)],
            ),
        ]
    if workload == "W2":
        sql = "SELECT * FROM movies WHERE name LIKE '%star%' ORDER BY rating DESC"
        where = dict(name__contains="star", _sort_desc="rating", _size=50)
        return [
            W.Variant(
                "Datasette",
                "JSON",
                ds,
                [
                    Req(
                        "GET",
                        q("/bench/movies.json", **where, _nosuggest=1),
                        W.BROWSER_ENCODINGS,
                    )
                ],
            ),
            W.Variant(
                "Datasette",
                "HTML",
                ds,
                [Req("GET", q("/bench/movies", **where), W.BROWSER_ENCODINGS)],
            ),
            W.Variant(
                "Flask-Admin",
                "",
                fa,
                [
                    Req(
                        "GET",
                        q("/admin/movie/", search="star", sort=3, desc=1),
                        W.BROWSER_ENCODINGS,
                    )
                ],
            ),
            W.Variant(
                "sqlite-web",
                "SQL console",
                sw,
                [
                    Req(
                        "GET",
                        q("/movies/query/", sql=sql, count=1),
                        W.BROWSER_ENCODINGS,
                    )
                ],
            ),
        ]
    if workload == "W3":
        page = f.deep_offset // 50 + 1
        keyset = dict(_sort="name", _size=50, _next=f.deep_token)
        check = contains(str(f.deep_first_id_binary))
        return [
            W.Variant(
                "Datasette",
                "JSON, keyset",
                ds,
                [
                    Req(
                        "GET",
                        q("/bench/movies.json", **keyset, _nosuggest=1),
                        W.BROWSER_ENCODINGS,
                    )
                ],
                check=check,
            ),
            W.Variant(
                "Datasette",
                "HTML, keyset",
                ds,
                [Req("GET", q("/bench/movies", **keyset), W.BROWSER_ENCODINGS)],
                check=check,
            ),
            W.Variant(
                "Flask-Admin",
                "",
                fa,
                [
                    Req(
                        "GET",
                        q("/admin/movie/", sort=1, page=page - 1),
                        W.BROWSER_ENCODINGS,
                    )
                ],
            ),
            W.Variant(
                "sqlite-web",
                "OFFSET",
                sw,
                [
                    Req(
                        "GET",
                        q("/movies/content/", ordering=2, page=page),
                        W.BROWSER_ENCODINGS,
                    )
                ],
            ),
        ]
    if workload == "W4":
        return [
            W.Variant(
                "Datasette",
                "JSON",
                ds,
                [
                    Req(
                        "GET",
                        q("/bench/ratings.json", movie_id=i, _nosuggest=1),
                        W.BROWSER_ENCODINGS,
                    )
                    for i in f.ratings_ids
                ],
            ),
            W.Variant(
                "Flask-Admin",
                "",
                fa,
                [
                    Req("GET", q("/admin/rating/", flt0_0=i), W.BROWSER_ENCODINGS)
                    for i in f.ratings_ids
                ],
            ),
            W.Variant(
                "sqlite-web",
                "SQL console",
                sw,
                [
                    Req(
                        "GET",
                        q(
                            "/ratings/query/",
                            sql=f"SELECT * FROM ratings WHERE movie_id = {i}",
                        ),
                    )
                    for i in f.ratings_ids
                ],
            ),
        ]
    if workload == "W5":
        return [
            W.Variant(
                "Datasette",
                "",
                ds,
                [],
                unsupported="n/a (read-only: no write API without plugins)",
            ),
            W.Variant(
                "Flask-Admin",
                "ajax update, no check",
                fa,
                [Req("POST", "/admin/movie/ajax/update/")],
            ),
            W.Variant(
                "sqlite-web",
                "row form, no check",
                sw,
                [Req("POST", "/movies/update/<key>/")],
            ),
        ]
    if workload == "W6":
        return [
            W.Variant(
                "Datasette",
                "",
                ds,
                [Req("GET", q("/bench/movies", _size=50), W.BROWSER_ENCODINGS)],
            ),
            W.Variant(
                "Flask-Admin",
                "",
                fa,
                [Req("GET", "/admin/movie/", W.BROWSER_ENCODINGS)],
            ),
            W.Variant(
                "sqlite-web",
                "",
                sw,
                [Req("GET", "/movies/content/", W.BROWSER_ENCODINGS)],
            ),
        ]
    raise ValueError(workload)


def run_workloads(
    which: Sequence[str],
    variants_for,
    reader: Reader,
    f: Facts,
    settings: Settings,
    backend: str,
    size: Size,
    floors_db: Path | None,
    pg_floor: str | None = None,
    python_floor: bool = True,
) -> list[W.Result]:
    """Run the chosen workloads in order on one set of running servers.

    W1's floors: `sqlite3 -csv` (and Python's csv module unless python_floor is
    False) over floors_db, or `psql \\copy` over the database at pg_floor.
    """
    out: list[W.Result] = []
    common = dict(backend=backend, size=size.key, log=log)
    for workload in which:
        variants = variants_for(workload)
        if not variants:
            continue
        log(f"  {workload} ...")
        if workload == "W1":
            floors = W.floor_commands(floors_db, EXPORT_COLUMNS) if floors_db else []
            if floors and not python_floor:
                floors = floors[:1]
            if floors and shutil.which("sqlite3") is None:
                floors = floors[1:]
            if pg_floor:
                floors = W.pg_floor_commands(pg_floor, EXPORT_COLUMNS)
            out += W.export(
                variants,
                floors,
                expected_rows=f.ratings,
                rounds=settings.export_rounds,
                warmup_rounds=settings.export_warmup,
                **common,
            )
        elif workload in ("W2", "W3", "W4"):
            load = (
                dict(
                    clients=settings.clients,
                    duration=settings.duration,
                    load_rounds=settings.load_rounds,
                )
                if workload == "W2"
                else {}
            )
            out += W.latency(
                workload,
                variants,
                n=settings.n,
                rounds=settings.rounds,
                warmup=settings.warmup,
                **load,
                **common,
            )
        elif workload == "W5":
            triples = []
            pools = iter(f.edit_pools)  # each tool edits movies no other tool touches
            for v in variants:
                kind, ok = PLANS.get(v.tool, ("", 0))
                if kind and not v.unsupported:
                    triples.append((v, W.EditPlan(kind, ok), next(pools)))
                else:
                    triples.append((v, None, []))
            out += W.edits(
                triples,
                reader,
                n=settings.n,
                rounds=settings.rounds,
                warmup=settings.warmup,
                writers=settings.writers,
                duration=settings.duration,
                load_rounds=settings.load_rounds,
                **common,
            )
        elif workload == "W6":
            out += W.first_load(variants, samples=settings.first_load_samples, **common)
        elif workload == "W7":
            out += W.editor_open(
                variants, n=settings.n, warmup=settings.warmup, **common
            )
        elif workload == "W8":
            out += W.live_tabs(
                variants[0],
                reader,
                f.edit_pools[0],
                tabs=settings.tabs,
                writers=settings.writers,
                duration=settings.live_duration,
                rounds=settings.live_rounds,
                **common,
            )
    return out


# ---------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: small data, few requests (about a minute)",
    )
    p.add_argument("--movies", type=int, help="movies in the main dataset (100,000)")
    p.add_argument(
        "--ratings", type=int, help="ratings in the main dataset (1,000,000)"
    )
    p.add_argument(
        "--growth-movies", type=int, help="movies for the growth run (1,000,000)"
    )
    p.add_argument(
        "--growth-ratings",
        type=int,
        help="ratings for the growth run (10,000,000: 10 a movie, as in the main set)",
    )
    p.add_argument("--no-growth", action="store_true", help="skip the growth run")
    p.add_argument(
        "--growth-only",
        action="store_true",
        help="measure the growth size alone (SQLite and PostgreSQL)",
    )
    p.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    p.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", DEFAULT_PG_URL),
        help="a PostgreSQL server to create the database reeltable_bench on",
    )
    p.add_argument(
        "--only",
        default=",".join(ALL_WORKLOADS),
        help="comma-separated workloads, e.g. W2,W3",
    )
    p.add_argument(
        "--ours-only",
        action="store_true",
        help="measure reeltable alone (no peers): for quick iterations",
    )
    p.add_argument(
        "--gunicorn-conf",
        type=lambda path: Path(path).resolve(),
        default=GUNICORN_CONF,
        help="gunicorn config file to serve reeltable with (default: make serve's)",
    )
    p.add_argument(
        "--output",
        help="results file stem in bench/results/"
        " (default: latest for a full run, partial otherwise)",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite and print the Markdown table."""
    args = parse_args(argv)
    # Stopped from outside: unwind, so every server started is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = QUICK if args.quick else FULL
    base = Size(
        args.movies or (2_000 if args.quick else 100_000),
        args.ratings or (20_000 if args.quick else 1_000_000),
    )
    large = Size(
        args.growth_movies or (20_000 if args.quick else 1_000_000),
        args.growth_ratings or (200_000 if args.quick else 10_000_000),
    )
    which = [w.strip().upper() for w in args.only.split(",") if w.strip()]
    partial = (
        args.quick
        or args.ours_only
        or set(which) != set(ALL_WORKLOADS)
        or args.no_growth
        or args.growth_only
        or args.no_postgres
        or args.movies
        or args.ratings
    )
    stem = args.output or (
        "quick" if args.quick else "partial" if partial else "latest"
    )
    started = time.monotonic()
    load_start = round(os.getloadavg()[0], 2)
    logs = DATA / "logs"
    peers = None if args.ours_only else ensure_peers()

    results: list[W.Result] = []
    sections = []
    commands: dict[str, str] = {}
    # --growth-only: the growth size alone (its PostgreSQL copy needs no base).
    if not args.growth_only:
        log(f"Dataset {base.label} (cached in bench/data/cache) ...")
        cache = ensure_sqlite(base, log)
        db_dir = DATA / "run" / base.key
        db = working_copy(cache, db_dir.parent)
        served = db_dir / "bench.sqlite3"
        db_dir.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(str(served) + suffix).unlink(missing_ok=True)
        db.rename(served)
        reader = Reader(served)
        f = facts(reader)

        ours_server = reeltable_server(
            "reeltable", "sqlite:///" + str(served), logs, args.gunicorn_conf
        )
        servers = [ours_server]
        peer = {} if peers is None else peer_servers(peers, served, logs)
        servers += list(peer.values())
        for server in servers:
            commands[server.name] = server.command

        def variants_for(workload: str) -> list[W.Variant]:
            mine = [ours(workload, ours_server, f)]
            return mine if not peer else mine + peer_variants(workload, peer, f)

        log(f"SQLite, {base.label}: reeltable and the peers")
        with serving(servers):
            results += run_workloads(
                which, variants_for, reader, f, settings, "SQLite", base, served
            )
        sections.append(
            {
                "title": f"SQLite, {base.label}",
                "backend": "SQLite",
                "size": base.key,
                "workloads": which,
            }
        )

    pg_which = [w for w in which if w in (*PG_WORKLOADS, "W8")]
    if pg_which and not args.no_postgres and not args.growth_only:
        try:
            log(f"PostgreSQL, {base.label} (database reeltable_bench) ...")
            url = ensure_postgres(base, args.pg_url, log, source=cache)
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            log(f"  PostgreSQL skipped: {exc}")
        else:
            pg_reader = Reader(url)
            pg_facts = facts(pg_reader)
            server = reeltable_server(
                "reeltable-postgresql", url, logs, args.gunicorn_conf
            )
            commands[server.name] = server.command
            with serving([server]):
                results += run_workloads(
                    pg_which,
                    lambda w: [ours(w, server, pg_facts)],
                    pg_reader,
                    pg_facts,
                    settings,
                    "PostgreSQL",
                    base,
                    None,
                    pg_floor=url,
                )
            sections.append(
                {
                    "title": f"PostgreSQL, {base.label} (reeltable)",
                    "backend": "PostgreSQL",
                    "size": base.key,
                    "workloads": pg_which,
                }
            )

    growth_which = [w for w in which if w in PG_WORKLOADS]
    large_key = None
    if growth_which and not args.no_growth:
        log(f"Growth: SQLite, {large.label} ...")
        big_cache = ensure_sqlite(large, log)
        big = working_copy(big_cache)
        big_reader = Reader(big)
        big_facts = facts(big_reader)
        server = reeltable_server(
            "reeltable-growth", "sqlite:///" + str(big), logs, args.gunicorn_conf
        )
        commands[server.name] = server.command
        growth_servers = [server]
        pg_big = None
        if not args.no_postgres:
            try:
                log(f"Growth: PostgreSQL, {large.label} (database reeltable_bench) ...")
                big_url = ensure_postgres(large, args.pg_url, log, source=big_cache)
            except Exception as exc:  # noqa: BLE001 - reported, not fatal
                log(f"  PostgreSQL skipped: {exc}")
            else:
                pg_server = reeltable_server(
                    "reeltable-growth-postgresql", big_url, logs, args.gunicorn_conf
                )
                commands[pg_server.name] = pg_server.command
                growth_servers.append(pg_server)
                big_pg_reader = Reader(big_url)
                pg_big = (pg_server, big_url, big_pg_reader, facts(big_pg_reader))
        with serving(growth_servers):
            # Workload by workload, SQLite then PostgreSQL: the two sizes' figures
            # are minutes apart at most, whatever else the machine is doing.
            for workload in growth_which:
                results += run_workloads(
                    [workload],
                    lambda w: [ours(w, server, big_facts)],
                    big_reader,
                    big_facts,
                    settings,
                    "SQLite",
                    large,
                    big,
                    python_floor=False,
                )
                if pg_big is not None:
                    results += run_workloads(
                        [workload],
                        lambda w: [ours(w, pg_big[0], pg_big[3])],
                        pg_big[2],
                        pg_big[3],
                        settings,
                        "PostgreSQL",
                        large,
                        None,
                        pg_floor=pg_big[1],
                    )
        sections.append(
            {
                "title": f"Growth: SQLite, {large.label} (reeltable)",
                "backend": "SQLite",
                "size": large.key,
                "workloads": growth_which,
            }
        )
        if pg_big is not None:
            sections.append(
                {
                    "title": f"Growth: PostgreSQL, {large.label} (reeltable)",
                    "backend": "PostgreSQL",
                    "size": large.key,
                    "workloads": growth_which,
                }
            )
        large_key = large.key

    app_versions = versions(
        Path(sys.executable),
        [
            "Flask",
            "Werkzeug",
            "Jinja2",
            "SQLAlchemy",
            "gunicorn",
            "psycopg",
            "Flask-Compress",
        ],
    )
    peer_versions = (
        {}
        if peers is None
        else versions(
            peers / "python",
            ["datasette", "sqlite-web", "Flask-Admin", "SQLAlchemy", "gunicorn"],
        )
    )
    pg_version = ""
    with contextlib.suppress(Exception):
        pg_version = Reader(args.pg_url).query("SHOW server_version")[0][0]
    cli_version = ""
    with contextlib.suppress(Exception):
        cli_version = subprocess.run(
            ["sqlite3", "--version"], capture_output=True, text=True
        ).stdout.split()[0]
    vline = ", ".join(
        [f"Python {platform.python_version()}", f"SQLite {sqlite3.sqlite_version}"]
        + ([f"PostgreSQL {pg_version}"] if pg_version else [])
        + [f"{k} {v}" for k, v in app_versions.items()]
        + [f"peers: {k} {v}" for k, v in peer_versions.items()]
    )
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "command": "python -m bench "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "commit": git_commit(),
        "load_start": load_start,
        "load_end": round(os.getloadavg()[0], 2),
        "duration_s": round(time.monotonic() - started),
        "datasets": {
            "base": asdict(base),
            "growth": asdict(large) if large_key else None,
        },
        "versions": {
            "app": app_versions,
            "peers": peer_versions,
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "sqlite_cli": cli_version,
            "postgresql": pg_version,
        },
        "versions_line": vline,
        "servers": commands,
        "settings": asdict(settings),
    }
    data = [asdict(r) for r in results]
    report = {
        "meta": meta,
        "results": data,
        "sections": sections,
        "targets": evaluate(data, base.key, large_key),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = markdown(report)
    (RESULTS / f"{stem}.md").write_text(text)
    (RESULTS / f"{stem}.json").write_text(
        json.dumps(report, indent=1, default=str) + "\n"
    )
    print(text)
    log(f"Wrote bench/results/{stem}.md and .json in {meta['duration_s']} s.")
    return 0
