"""CSV import at scale (issue 11): fast paths that agree with the exact ones.

The import reads a file in blocks, parses plain rows on a quick path, checks and
writes it batch by batch in one pass, and on SQLite may rebuild the indexes once
instead of updating them row by row. Each of these must give exactly what the
slow, simple way gives: these tests compare them, at batch and block boundaries.
Speed itself is measured by `python -m bench.imports`, not here.
"""

from __future__ import annotations

import io
import random
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from app import crud, csvfile
from app.crud import CrudService, Integer, largest_id
from app.csvfile import RowError, importer, reader, sets
from app.db import db
from app.models import Movie, Rating
from app.resources import MOVIES, RATINGS
from tests.test_csv_import import HEADER, preview
from tests.test_csv_import_edges import RATINGS_HEADER, import_file, stored_movies

# ------------------------------------------------------------------ the quick path

# Cells that sit on either side of some rule: blanks, signs, formulas, bounds,
# lengths, non-ASCII digits and spaces, controls, decimals.
AWKWARD = [
    "",
    " ",
    "0",
    "1",
    "007",
    "10",
    "11",
    "+5",
    "-0",
    "-3",
    " 7",
    "7 ",
    "1e3",
    "1_0",
    "\uff18",
    "\u0663",
    "8.5",
    "8.55",
    "8.",
    ".5",
    "10.0",
    "10.1",
    "0.0",
    "9.99",
    "123456789",
    "1" * 45,
    "Alien",
    "alien",
    " Alien",
    "Alien ",
    "Alien\t",
    "\tAlien",
    "\u00a0Alien",
    "Al\u00a0ien",
    "Al\u200bien",
    "Caf\u00e9",
    "=1+1",
    "'=1+1",
    "''=1+1",
    " =1",
    "\uff1dx",
    "@me",
    "-dash",
    "'quoted",
    "it's",
    "a\nb",
    "a\rb",
    "a\x0bb",
    "a\x7fb",
    "x\x85",
    "N" * 80,
    "N" * 81,
    "N" * 120,
    "N" * 121,
    "N" * 200,
    "N" * 201,
    "2147483647",
    "2147483648",
]


def exact(svc: CrudService, names: list[str], cells: list[str]) -> csvfile.ParsedRow:
    """The row as the general path reads it."""
    settable = {f.name: f for f in svc.resource.fields if f.creatable}
    id_kind = Integer(1, largest_id(svc.model), required=False)
    return reader._parse_row(svc, settable, names, cells, 7, id_kind)


def typed(row: csvfile.ParsedRow) -> tuple:
    """A row with each value's type, so 10 and 10.0 differ."""
    values = {k: (type(v).__name__, v) for k, v in row.values.items()}
    return (row.line, row.id, values, list(row.errors))


@pytest.mark.parametrize("resource", [MOVIES, RATINGS], ids=["movies", "ratings"])
def test_the_quick_path_reads_every_row_as_the_exact_one(
    app: Flask, resource: crud.Resource
) -> None:
    rng = random.Random(11)
    names = list(resource.exported)
    plain = {
        "id": ["", "12", "2147483647"],
        "name": ["Alien", "Blade Runner 2049"],
        "director": ["Ridley Scott"],
        "rating": ["8.5", "", "7", "10"] if resource is MOVIES else ["3", "10"],
        "author": ["Ana", "Tom\u00e1s O'Brien"],
        "movie_id": ["1", "42"],
        "movie_name": ["anything at all", "=ignored"],
    }
    with app.app_context():
        svc = CrudService(resource, db.session)
        parse = reader._RowParser(svc, names)
        quick = 0
        for _ in range(4000):
            # Mostly plain cells, one or two awkward ones, sometimes a short row.
            cells = [rng.choice(plain[n]) for n in names]
            for _ in range(rng.choice([0, 1, 1, 2])):
                cells[rng.randrange(len(cells))] = rng.choice(AWKWARD)
            if rng.random() < 0.02:
                cells = cells[:-1]
            got, want = parse(cells, 7), exact(svc, names, cells)
            assert typed(got) == typed(want), cells
            quick += not got.errors
        assert quick > 1000  # the quick path did take rows


# ------------------------------------------------------------------ reading blocks


def reference_lines(data: bytes) -> list[str]:
    """The file's lines as a plain readline() loop reads them."""
    stream = io.BytesIO(data)
    lines = [raw.decode() for raw in iter(stream.readline, b"")]
    if lines:
        lines[0] = lines[0].removeprefix("\ufeff")
    return lines


def read_lines(data: bytes) -> list[str]:
    """The file's lines as the import reads them."""
    return list(reader._lines(io.BytesIO(data)))


@pytest.mark.parametrize("block", [1, 7, 64, 4096])
def test_blocks_give_the_lines_a_line_by_line_read_gives(
    monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(reader, "BLOCK_BYTES", block)
    rng = random.Random(block)
    pieces = ["a,b", "", "\u00e9t\u00e9", '"x\r\ny"', "\r", "\u20ac" * 9, "z" * 300]
    for _ in range(50):
        text = "\n".join(rng.choice(pieces) for _ in range(rng.randrange(1, 30)))
        for data in (text.encode(), ("\ufeff" + text + "\n").encode()):
            assert read_lines(data) == reference_lines(data)


@pytest.mark.parametrize("block", [5, 64, 1 << 20])
def test_a_bad_line_after_the_first_block_is_named(
    monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(reader, "BLOCK_BYTES", block)
    # Past the first 8 KB, which is checked for binary data as a whole.
    good = b"id,name,director,rating\r\n" + b",Heat,Mann,8\r\n" * 700
    cases = {
        b"\xff\r\n": "Line 702 is not UTF-8 text (byte 0xFF at position 1).",
        b"ok,\x00\r\n": "This is not a CSV file: line 702 holds binary data.",
        b"x" * (70 * 1024): "Line 702 is longer than 64 KB;",
    }
    for bad, message in cases.items():
        with pytest.raises(csvfile.CsvFileError) as caught:
            read_lines(good + bad + b",Later,Line,1\r\n")
        assert caught.value.message.startswith(message)
        assert caught.value.line == 702


# ------------------------------------------------------------------ the sets


def test_id_set_and_hash_set_hold_what_a_set_holds() -> None:
    rng = random.Random(5)
    ids, hashes = sets.IdSet(), sets.HashSet()
    ids_ref: set[int] = set()
    hashes_ref: set[int] = set()
    # Small ids (the flat bitmap), a dense run of large ones (a group turns into
    # a bitmap), sparse large ids, group boundaries; hashes of either sign.
    large = sets.IdSet.BITMAP_LIMIT
    dense = sets.IdSet.ARRAY_LIMIT + 9
    values = list(range(1, 3000)) + list(range(large - 5, large + dense))
    values += [rng.randrange(1, 2**31) for _ in range(9000)]
    values += [65535, 65536, 65537, large + 65535, large + 65536, 2**31 - 1]
    for value in values:
        ids.add(value)
        ids_ref.add(value)
        h = hash((value, "x"))
        hashes.add(h)
        hashes_ref.add(h & (2**64 - 1))
    probes = values + [rng.randrange(1, 2**31) for _ in range(9000)] + [0, 3000]
    probes += [large + dense, 2**40]
    for value in probes:
        assert (value in ids) == (value in ids_ref)
        h = hash((value, "x"))
        assert (h in hashes) == ((h & (2**64 - 1)) in hashes_ref)
    assert any(isinstance(g, bytearray) for g in ids.groups.values())


# ------------------------------------------------------------------ batches


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> int:
    """Batches of 4 rows, so a few lines cross several batch boundaries."""
    monkeypatch.setattr(importer, "BATCH", 4)
    return 4


def test_duplicates_across_batches_in_a_single_pass(
    app: Flask, sample: dict, tmp_path: Path, small_batches: int
) -> None:
    # The import checks and writes a batch at a time: a later batch must judge
    # a row against the table as it was, not as the earlier batches left it.
    data = (
        HEADER
        + b",Heat,Michael Mann,8.3\r\n"  # 2 new (batch 1)
        + b"1,Alien,Ridley Scott,9.0\r\n"  # 3 changed
        + b",Cure,Kiyoshi Kurosawa,7.5\r\n"  # 4 changed, matched
        + b",Ran,Akira Kurosawa,8.2\r\n"  # 5 new
        + b",Heat,Michael Mann,8.3\r\n"  # 6 repeats line 2 (batch 2)
        + b"1,Alien,Ridley Scott,9.0\r\n"  # 7 id 1 again
        + b",Cure,Kiyoshi Kurosawa,7.5\r\n"  # 8 the same movie as line 4
        + b",Solaris,Andrei Tarkovsky,\r\n"  # 9 new
        + b",Ran,Akira Kurosawa,1.0\r\n"  # 10 repeats line 5 (batch 3)
    )
    errors = [
        RowError(6, "name,director", "repeats an earlier line of the file."),
        RowError(7, "id", "id 1 appears more than once in the file."),
        RowError(
            8, "name,director", "matches the same movie (id 3) as an earlier line."
        ),
        RowError(10, "name,director", "repeats an earlier line of the file."),
    ]
    counts = {"new": 3, "changed": 2, "unchanged": 0, "invalid": 4}
    checked = preview(app, tmp_path, "movies", data)
    assert (checked.counts, checked.errors) == (counts, errors)
    done = import_file(app, tmp_path, "movies", data)
    assert (done.counts, done.errors) == (counts, errors)
    with app.app_context():
        assert stored_movies() == [
            (1, "Alien", "Ridley Scott", 9.0),
            (2, "Blade Runner", "Ridley Scott", 8.1),
            (3, "Cure", "Kiyoshi Kurosawa", 7.5),
            (4, "Heat", "Michael Mann", 8.3),
            (5, "Ran", "Akira Kurosawa", 8.2),
            (6, "Solaris", "Andrei Tarkovsky", None),
        ]


def test_a_restore_across_batches_keeps_ids_and_refuses_repeats(
    app: Flask, tmp_path: Path, small_batches: int
) -> None:
    # An empty table keeps the file's ids; rows written by an earlier batch
    # must not count as "already in the table" for a later one.
    lines = [f"{i},Film {i},Someone,\r\n".encode() for i in range(1, 10)]
    data = HEADER + b"".join(lines) + b"3,Film 3,Someone,\r\n" + b",Film 5,Someone,\r\n"
    done = import_file(app, tmp_path, "movies", data)
    assert done.counts == {"new": 9, "changed": 0, "unchanged": 0, "invalid": 2}
    assert done.keeps_ids
    assert done.errors == [
        RowError(11, "id", "id 3 appears more than once in the file."),
        RowError(12, "name,director", "repeats an earlier line of the file."),
    ]
    with app.app_context():
        assert [m[0] for m in stored_movies()] == list(range(1, 10))


def test_an_outdated_preview_found_late_writes_nothing(
    app: Flask, sample: dict, tmp_path: Path, small_batches: int
) -> None:
    # Batches are written as they are checked; when the counts stop matching
    # the preview only after some were written, all of it is rolled back.
    data = HEADER + b"".join(f",New {i},Someone,5\r\n".encode() for i in range(10))
    data += b"1,Alien,Ridley Scott,1.0\r\n"  # changed now; unchanged in the preview
    path = tmp_path / "late.csv"
    path.write_bytes(data)
    expected = {"new": 10, "changed": 0, "unchanged": 1, "invalid": 0}
    with app.app_context():
        before = stored_movies()
        svc = CrudService(MOVIES, db.session)
        with pytest.raises(csvfile.PreviewOutdated) as caught:
            csvfile.import_file(svc, path, expected=expected)
        assert caught.value.preview.counts == {
            "new": 10,
            "changed": 1,
            "unchanged": 0,
            "invalid": 0,
        }
        assert stored_movies() == before


def test_progress_is_heard_once_a_batch(
    app: Flask, sample: dict, tmp_path: Path, small_batches: int
) -> None:
    unchanged = b"1,Alien,Ridley Scott,8.5\r\n2,Blade Runner,Ridley Scott,8.1\r\n"
    data = HEADER + unchanged + b",Cure,Kiyoshi Kurosawa,\r\n,Bad,Someone,11\r\n"
    data += b"".join(f",New {i},Someone,5\r\n".encode() for i in range(9))
    path = tmp_path / "progress.csv"
    path.write_bytes(data)
    heard: list[tuple[str, int, int]] = []
    with app.app_context():
        svc = CrudService(MOVIES, db.session)
        checked = csvfile.preview_file(svc, path, progress=lambda *a: heard.append(a))
        assert heard == [
            ("checking", 4, 0),
            ("checking", 8, 0),
            ("checking", 12, 0),
            ("checking", 13, 0),
            ("checking", 13, 0),
        ]
        heard.clear()
        csvfile.import_file(
            svc, path, expected=checked.counts, progress=lambda *a: heard.append(a)
        )
        # Once a batch: rows checked (of 13) while a batch writes nothing, then
        # rows written so far (of the 9 the preview expects to write).
        assert heard == [
            ("checking", 4, 13),
            ("writing", 4, 9),
            ("writing", 8, 9),
            ("writing", 9, 9),
        ]


# ------------------------------------------------------------------ writing


def test_changed_rows_change_as_an_edit_would(
    app: Flask, sample: dict, tmp_path: Path
) -> None:
    # Core UPDATEs instead of the ORM: the version goes up by one, updated_at
    # moves, the movie's new name reaches its ratings, and other rows keep
    # theirs.
    with app.app_context():
        movies, ratings = Movie.__table__, Rating.__table__
        before = {
            r.id: r for r in db.session.execute(sa.select(movies)).mappings().all()
        }
        rating_versions = dict(
            db.session.execute(sa.select(ratings.c.id, ratings.c.version)).all()
        )
        db.session.commit()
    data = (
        HEADER
        + b"2,Blade Runner 2049,Ridley Scott,8.1\r\n"
        + b"1,Alien,Ridley Scott,8.5\r\n"
    )
    done = import_file(app, tmp_path, "movies", data)
    assert done.counts == {"new": 0, "changed": 1, "unchanged": 1, "invalid": 0}
    with app.app_context():
        after = {
            r.id: r
            for r in db.session.execute(sa.select(Movie.__table__)).mappings().all()
        }
        assert after[2]["name"] == "Blade Runner 2049"
        assert after[2]["version"] == before[2]["version"] + 1
        assert after[2]["updated_at"] >= before[2]["updated_at"]
        assert after[1] == before[1]
        names = dict(
            db.session.execute(
                sa.select(Rating.__table__.c.id, Rating.__table__.c.movie_name)
            ).all()
        )
        assert names[3] == "Blade Runner 2049"  # Cy's rating of movie 2
        assert names[1] == names[2] == "Alien"
        versions = dict(
            db.session.execute(
                sa.select(Rating.__table__.c.id, Rating.__table__.c.version)
            ).all()
        )
        assert versions == rating_versions  # a copied field is not an edit


def test_a_big_load_on_sqlite_rebuilds_the_indexes_it_dropped(
    app: Flask, sample: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Dropped for the load and made again from their own SQL, in the same
    # transaction: afterwards the schema is as before, the indexes hold every
    # row, and the counters and the search index saw every row.
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("SQLite only: PostgreSQL keeps its indexes")
    monkeypatch.setattr(crud.bulk, "_REBUILD_MIN", 10)
    schema = "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'ratings' ORDER BY 1"
    with app.app_context():
        before = db.session.execute(sa.text(schema)).all()
        db.session.commit()
    rows = b"".join(
        f",{i % 10 + 1},Author {i},{i % 3 + 1},\r\n".encode() for i in range(300)
    )
    dropped: list[bool] = []
    deferred = crud.bulk.Bulk.deferred_indexes

    @contextmanager
    def watched(self: crud.bulk.Bulk, rows: int) -> Iterator[bool]:
        with deferred(self, rows) as waiting:
            dropped.append(waiting)
            yield waiting

    monkeypatch.setattr(crud.bulk.Bulk, "deferred_indexes", watched)
    done = import_file(app, tmp_path, "ratings", RATINGS_HEADER + rows)
    assert done.counts["new"] == 300
    assert dropped == [True]
    with app.app_context():
        session = db.session
        assert session.execute(sa.text(schema)).all() == before
        assert session.execute(sa.text("PRAGMA integrity_check")).scalar() == "ok"
        plan = session.execute(
            sa.text("EXPLAIN QUERY PLAN SELECT id FROM ratings WHERE movie_id = 2")
        ).all()
        assert "ix_ratings_movie_id" in str(plan)
        counted = session.execute(
            sa.text("SELECT n FROM row_counts WHERE table_name = 'ratings'")
        ).scalar()
        assert counted == 304
        svc = CrudService(RATINGS, session)
        assert svc.count(svc.parse_query({"q": "Author 299"})) == 1
        names = session.execute(
            sa.text(
                "SELECT count(*) FROM ratings r JOIN movies m ON m.id = r.movie_id"
                " WHERE r.movie_name = m.name"
            )
        ).scalar()
        assert names == 304


def test_a_failed_load_leaves_the_indexes_as_they_were(
    app: Flask, sample: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("SQLite only: PostgreSQL keeps its indexes")
    monkeypatch.setattr(crud.bulk, "_REBUILD_MIN", 10)
    schema = "SELECT name, sql FROM sqlite_master ORDER BY name"
    with app.app_context():
        before = db.session.execute(sa.text(schema)).all()
        db.session.commit()
    rows = b"".join(f",Film {i},Someone,\r\n".encode() for i in range(50))
    data = HEADER + rows + b"2,Blade Runner 2049,Ridley Scott,8.1\r\n"

    def refuse(self, changes, batch=1000):  # noqa: ANN001, ANN202
        raise crud.ValidationError({"_": "The database refused this change."})

    monkeypatch.setattr(crud.bulk.Bulk, "update_many", refuse)
    with pytest.raises(crud.ValidationError):
        import_file(app, tmp_path, "movies", data)
    with app.app_context():
        assert db.session.execute(sa.text(schema)).all() == before
        assert len(stored_movies()) == 3


# ------------------------------------------------------------------ memory

# Runs in a fresh interpreter. Its peak RSS is reset (Linux: clear_refs) once the
# app is up, so the peak read after the preview is the preview's own.
MEMORY_SCRIPT = """
import sys
from pathlib import Path
from app import csvfile
from app.crud import CrudService
from app.db import db
from app.resources import RATINGS
from tests.conftest import make_app

def status(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024

app = make_app(sys.argv[1], Path(sys.argv[2]))
with app.app_context():
    svc = CrudService(RATINGS, db.session)
    svc.lookups.has_rows()
    Path("/proc/self/clear_refs").write_text("5")
    before = status("VmRSS")
    result = csvfile.preview_file(svc, Path(sys.argv[3]))
    peak = status("VmHWM")
print(result.new, peak - before)
"""


@pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="needs Linux's clear_refs"
)
def test_remembering_large_ids_takes_little_memory(
    app: Flask, database_url: str, tmp_path: Path
) -> None:
    # Issue 11: 1.5 M rows with large ids raised a worker's peak RSS by 230 MB,
    # mostly a Python set of the ids seen (duplicate detection). 400,000 random
    # ids up to 2**31 took ~30 MB that way; compact sets take a few.
    with app.app_context():
        CrudService(MOVIES, db.session).create({"name": "M", "director": "D"})
    rng = random.Random(10)
    ids = rng.sample(range(1, largest_id(Rating) - 1_000_000), 400_000)
    path = tmp_path / "large-ids.csv"
    with path.open("wb") as f:
        f.write(RATINGS_HEADER)
        f.writelines(f"{i},7,Ed,1,M\r\n".encode() for i in ids)
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, database_url, app.instance_path, path],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    new, growth = (int(n) for n in done.stdout.split())
    print(f"\npreview of 400,000 large ids: peak RSS grew {growth / 1e6:.1f} MB")
    assert new == 400_000
    assert growth < 16_000_000
