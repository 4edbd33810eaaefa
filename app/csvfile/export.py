"""CSV export: the header, the file name, and the streamed lines of a query."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from operator import itemgetter
from typing import Any

from app.crud import CrudService, ListQuery, Resource
from app.csvfile.cells import copy_cells, format_text, line_expression


def header_line(resource: Resource) -> str:
    """Return the header row: the exported column names."""
    return ",".join(format_text(name) for name in resource.exported) + "\r\n"


def export_filename(stem: str, today: date) -> str:
    """Return the download's file name, e.g. movies-2026-11-26.csv."""
    return f"{stem}-{today.isoformat()}.csv"


def export_chunks(
    svc: CrudService,
    query: ListQuery,
    *,
    bom: bool = False,
    batch: int = 4096,
    on_rows: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """Yield the CSV of every row matching `query`, in ~256 KB UTF-8 chunks.

    The rows, order and filters are exactly the table's (CrudService.select);
    the database formats each line, Python only joins a batch and encodes it.
    Where it can (PostgreSQL) the database writes the CSV with COPY, the fastest
    way out of it, from copy_cells; `batch` is then `batch` lines of its own.
    `on_rows` hears how many rows each chunk holds.
    """
    head = (("\ufeff" if bom else "") + header_line(svc.resource)).encode()
    # COPY quotes a lone column's "\." (its end-of-data mark): one column is rare.
    copied = svc.backend.copies_csv and len(svc.resource.exported) > 1
    if copied:
        cells = copy_cells(svc)
        batches = svc.reader.fetch_batches(query, *cells, batch=batch, csv=True)
    else:
        batches = svc.reader.fetch_batches(query, line_expression(svc), batch=batch)
    first = itemgetter(0)
    for rows in batches:
        if copied:
            chunk = _crlf(rows)
        else:
            lines = map(first, rows)
            data = b"".join(lines) if isinstance(rows[0][0], bytes) else "".join(lines)
            chunk = data if isinstance(data, bytes) else data.encode()
        if head:
            chunk, head = head + chunk, b""
        if on_rows is not None:
            on_rows(len(rows))
        yield chunk
    if head:
        yield head


def _crlf(lines: list[Any]) -> bytes:
    """Join COPY's lines, ending each with CRLF instead of its LF (RFC 4180).

    An LF inside a cell is inside quotes and stays as it is. Split at the quotes,
    the even pieces are outside quoted cells (a doubled quote inside one leaves an
    empty piece between, so the alternation holds): only their LFs end lines.
    """
    data = b"".join(lines)
    if b'"' not in data:
        return data.replace(b"\n", b"\r\n")
    pieces = data.split(b'"')
    pieces[::2] = [piece.replace(b"\n", b"\r\n") for piece in pieces[::2]]
    return b'"'.join(pieces)


def primed(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Run a stream up to its first chunk now, so early failures are plain errors.

    Once the first chunk is sent the status is fixed at 200; a later failure
    propagates out of the response iterator, so the server aborts the connection
    before the chunked body's last (empty) chunk: clients see a truncated
    transfer, never a short file that looks complete.
    """
    head = next(chunks)

    def stream() -> Iterator[bytes]:
        yield head
        yield from chunks

    return stream()
