"""`python -m bench.ab`: this checkout and another tree, same data, interleaved.

For a before/after: the other tree is another revision's files (read-only git:
`mkdir /tmp/before && git archive 6c6ebc3^ | tar -x -C /tmp/before`, the
revision before the change log) or a copy with one change undone. Both are
served by gunicorn from this venv, each from its own folder, on the same
database; W2-W4 alternate between them request round by request round, W5 edits
disjoint movies in alternating rounds, so both see the same machine load.

    python -m bench.ab --other /tmp/before --labels "log on,before the log" --only W5
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.cli import (
    DEFAULT_PG_URL,
    FULL,
    GUNICORN_CONF,
    RESULTS,
    facts,
    log,
    machine,
    ours,
    reeltable_server,
    run_workloads,
    serving,
)
from bench.dataset import (
    DATA,
    Reader,
    Size,
    ensure_postgres,
    ensure_sqlite,
    working_copy,
)
from bench.report import table


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    p.add_argument("--other", type=Path, required=True, help="the other tree")
    p.add_argument(
        "--labels",
        default="this checkout,other",
        help="names of the two, comma-separated (this checkout first)",
    )
    p.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--movies", type=int, default=100_000)
    p.add_argument("--ratings", type=int, default=1_000_000)
    p.add_argument("--only", default="W5", help="W2, W3, W4 and/or W5")
    p.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", DEFAULT_PG_URL))
    p.add_argument("--rounds", type=int, default=FULL.rounds)
    p.add_argument("--output", default="ab", help="results file stem")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve both trees, run the workloads interleaved, print and save the tables."""
    args = parse_args(argv)
    other = args.other.resolve()
    names = [n.strip() for n in args.labels.split(",")]
    size = Size(args.movies, args.ratings)
    cache = ensure_sqlite(size, log)
    if args.backend == "sqlite":
        target: Path | str = working_copy(cache)
        url = "sqlite:///" + str(target)
        backend = "SQLite"
    else:
        target = url = ensure_postgres(size, args.pg_url, log, source=cache)
        backend = "PostgreSQL"
    reader = Reader(target)
    f = facts(reader)
    logs = DATA / "logs"
    conf = other / "app" / "gunicorn_conf.py"
    servers = [
        reeltable_server("ab-this", url, logs),
        reeltable_server(
            "ab-other",
            url,
            logs,
            conf if conf.exists() else GUNICORN_CONF,
            root=other,
            instance=DATA / "instance-other",
        ),
    ]
    # The edits' load runs interleave in rounds too (make bench runs fewer).
    settings = dataclasses.replace(FULL, rounds=args.rounds, load_rounds=args.rounds)
    which = [w.strip().upper() for w in args.only.split(",") if w.strip()]
    if unknown := [w for w in which if w not in ("W2", "W3", "W4", "W5")]:
        raise SystemExit(f"bench.ab runs W2-W5, not {', '.join(unknown)}")
    with serving(servers):
        variants = {
            w: [
                dataclasses.replace(
                    ours(w, server, f),
                    variant=f"{ours(w, server, f).variant}, {name}".strip(", "),
                )
                for server, name in zip(servers, names, strict=True)
            ]
            for w in which
        }
        # make bench's own dispatch: both trees are reeltable, so W5 gives each
        # its own movies to edit, as it does the peers.
        results = run_workloads(
            which, variants.__getitem__, reader, f, settings, backend, size, None
        )
    data = [dataclasses.asdict(r) for r in results]
    lines = [
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC} on {machine()}.",
        "",
        "Command: `python -m bench.ab "
        + " ".join(sys.argv[1:] if argv is None else argv)
        + "`",
        "",
    ]
    for w in which:
        lines += [f"**{w}, {backend}, {size.label}**", ""]
        lines += table(data, w, backend, size.key) + [""]
    text = "\n".join(lines)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.output}.md").write_text(text)
    (RESULTS / f"{args.output}.json").write_text(
        json.dumps({"results": data}, indent=1, default=str) + "\n"
    )
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
