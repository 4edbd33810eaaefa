"""A floor for W1: Python's csv module over sqlite3, writing to stdout.

`python -m bench.floors DB SQL` — what an export costs with no web framework.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import sys


def main(db: str, sql: str) -> None:
    """Write the query's rows as CSV (with a header) to stdout."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    cursor = conn.execute(sql)
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
    writer = csv.writer(out)
    writer.writerow([d[0] for d in cursor.description])
    while rows := cursor.fetchmany(5000):
        writer.writerows(rows)
    out.flush()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
