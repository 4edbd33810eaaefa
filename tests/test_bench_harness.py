"""The benchmark harness's own logic (bench/): arithmetic, keys, checks, report.

The benchmark itself (`make bench`) is never run by the test suite.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import dataset, report, stats
from bench.cli import tilde_encode
from bench.dataset import Size, pg_schema, pg_url, sqlite_cache_path
from bench.workloads import (
    EditPlan,
    assets_of,
    edit_request,
    live_notice,
    lost_updates,
    pg_floor_commands,
)


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([5.0], 50, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([1.0, 2.0, 3.0, 4.0], 0, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
        (list(range(1, 101)), 95, 95.05),
        ([3.0, 1.0, 2.0], 50, 2.0),
    ],
)
def test_percentile_interpolates_like_numpy(values, p, expected):
    """Percentiles interpolate linearly between the closest ranks."""
    assert stats.percentile(values, p) == pytest.approx(expected)


def test_percentile_rejects_empty_and_out_of_range():
    """No values, or p outside 0..100, is a programming error."""
    with pytest.raises(ValueError):
        stats.percentile([], 50)
    with pytest.raises(ValueError):
        stats.percentile([1.0], 101)


def test_summarize_reports_milliseconds():
    """Latencies come in seconds and are summarised in ms."""
    out = stats.summarize([0.001, 0.002, 0.003])
    assert out["n"] == 3
    assert out["p50_ms"] == pytest.approx(2.0)
    assert out["min_ms"] == pytest.approx(1.0)
    assert out["max_ms"] == pytest.approx(3.0)
    assert stats.summarize([]) == {"n": 0}


def test_best_and_advantage():
    """The best peer is the lowest latency or the highest throughput."""
    values = [("a", 20.0), ("b", 10.0), ("c", None)]
    assert stats.best(values, lower_is_better=True) == ("b", 10.0)
    assert stats.best(values, lower_is_better=False) == ("a", 20.0)
    assert stats.best([("x", None)], lower_is_better=True) is None
    assert stats.advantage(2.0, 10.0, lower_is_better=True) == pytest.approx(5.0)
    assert stats.advantage(600.0, 300.0, lower_is_better=False) == pytest.approx(2.0)
    assert stats.advantage(None, 1.0, lower_is_better=True) is None


@pytest.mark.parametrize(
    ("factor", "text"),
    [(5.0, "5.0× better than X"), (0.5, "2.0× worse than X"), (None, "–")],
)
def test_format_advantage(factor, text):
    """An advantage reads as N× better or worse than the named peer."""
    assert stats.format_advantage(factor, "X") == text


def test_growth():
    """Growth is large over small; missing figures give None."""
    assert stats.growth(2.0, 3.0) == pytest.approx(1.5)
    assert stats.growth(None, 3.0) is None


def test_dataset_cache_is_keyed_by_size_and_seed(tmp_path: Path):
    """Different sizes or seeds never share a cached file; equal ones do."""
    a = sqlite_cache_path(Size(100_000, 1_000_000), tmp_path)
    assert a == tmp_path / "cache" / "reeltable-m100000-r1000000-s42.sqlite3"
    assert sqlite_cache_path(Size(100_000, 1_000_000), tmp_path) == a
    assert sqlite_cache_path(Size(100_000, 2_000_000), tmp_path) != a
    assert sqlite_cache_path(Size(100_000, 1_000_000, seed=7), tmp_path) != a
    assert pg_schema(Size(2_000, 20_000)) == "bench_m2000_r20000_s42"


def test_pg_url_switches_database_and_schema():
    """The bench database and schema replace the given ones; nothing else changes."""
    url = pg_url("postgresql://postgres@127.0.0.1:5432/test", "reeltable_bench", "s1")
    assert url == (
        "postgresql://postgres@127.0.0.1:5432/reeltable_bench"
        "?options=-csearch_path%3Ds1%2Cpublic"
    )
    assert pg_url("postgresql://u@h/test?sslmode=disable", "b").endswith(
        "/b?sslmode=disable"
    )


def test_tilde_encode_matches_datasette():
    """Keyset tokens for Datasette use its tilde encoding."""
    assert tilde_encode("/foo/bar") == "~2Ffoo~2Fbar"
    assert tilde_encode('The "Big" One, #3') == "The+~22Big~22+One~2C+~233"
    assert tilde_encode("é") == "~C3~A9"


def test_assets_of_finds_stylesheets_and_scripts():
    """W6 fetches the page's own CSS and JS, once each, never other origins."""
    html = b"""<link rel="stylesheet" href="/static/a.css">
    <link href="/static/b.css" rel="stylesheet">
    <script src="/static/x.js" defer></script><script src="/static/x.js"></script>
    <script src="https://cdn.example/y.js"></script><link rel="icon" href="/f.ico">"""
    assert assets_of(html) == ["/static/a.css", "/static/x.js", "/static/b.css"]


def test_edit_request_for_reeltable_sends_version_and_token():
    """reeltable's edit is a PATCH with the version, CSRF token and HX-Request."""
    plan = EditPlan("reeltable", 200, cookie="session=abc", token="tok")
    req = edit_request(plan, 42, "Ann Lee", 7)
    assert req.method == "PATCH"
    assert req.path == "/movies/42"
    assert req.body == b"director=Ann+Lee&version=7"
    headers = dict(req.headers)
    assert headers["X-CSRFToken"] == "tok"
    assert headers["HX-Request"] == "true"
    assert headers["Cookie"] == "session=abc"


def test_edit_request_for_sqlite_web_encodes_the_key():
    """sqlite-web addresses rows by a base64 JSON key."""
    req = edit_request(EditPlan("sqlite-web", 302), 5, "X", 1)
    assert req.path == "/movies/update/WzVd/"


def test_lost_updates():
    """An acknowledged write missing from the database is lost, unless a later
    unacknowledged attempt is what landed."""
    attempts = [
        (1, "a", 200, 0.0),
        (1, "b", 200, 0.0),  # last ack for 1
        (2, "c", 200, 0.0),
        (2, "d", 500, 0.0),  # not acknowledged, but may have landed
        (3, "e", 500, 0.0),  # never acknowledged: nothing to lose
    ]
    final = {1: ("b", 3), 2: ("d", 3), 3: ("old", 1)}
    assert lost_updates(attempts, 200, final) == []
    assert lost_updates(attempts, 200, {**final, 1: ("a", 2)}) == [1]
    assert lost_updates(attempts, 200, {**final, 2: ("old", 1)}) == [2]


def _result(workload, tool, metrics, ours=False, variant="", status="ok", note=""):
    """A result dict as bench.cli writes them."""
    return {
        "workload": workload,
        "tool": tool,
        "variant": variant,
        "backend": "SQLite",
        "size": "m1-r1-s42",
        "request": f"GET /{tool}",
        "ours": ours,
        "status": status,
        "note": note,
        "metrics": metrics,
    }


RESULTS = [
    _result("W2", "reeltable", {"p50_ms": 2.0, "p95_ms": 3.0, "rps": 400.0}, ours=True),
    _result(
        "W2", "Datasette", {"p50_ms": 20.0, "p95_ms": 24.0, "rps": 75.0}, variant="JSON"
    ),
    _result("W2", "Flask-Admin", {"p50_ms": 110.0, "p95_ms": 130.0, "rps": 17.0}),
    _result("W4", "reeltable", {}, ours=True, status="n/a", note="n/a (no endpoint)"),
    _result(
        "W1", "reeltable", {"median_s": 1.0, "rows": 10, "rss_growth_mb": 5.0}, True
    ),
    _result("W1", "sqlite3 -csv", {"median_s": 0.5, "rows": 10}, variant="floor"),
    _result("W1", "Datasette", {"median_s": 0.8, "rows": 4}, variant="truncated"),
    _result("W1", "Flask-Admin", {"median_s": 9.0, "rows": 10}),
]


def test_versus_best_peer_uses_the_headline_figure():
    """W2 compares p95 with the fastest peer (Datasette JSON here: 24 / 3 = 8×)."""
    assert report.versus_best_peer(RESULTS[0], RESULTS) == (
        "8.0× better than Datasette (JSON)"
    )


def test_export_comparison_ignores_peers_that_truncate():
    """A peer that delivered fewer rows is not the one to beat."""
    assert report.versus_best_peer(RESULTS[4], RESULTS) == (
        "9.0× better than Flask-Admin"
    )


def test_targets():
    """Targets read reeltable's figures; an unmeasured one is n/a with its reason."""
    targets = {t["target"]: t for t in report.evaluate(RESULTS, "m1-r1-s42", None)}
    assert targets["W2 p95 < 5 ms"]["met"] is True
    assert targets["W2 ≥ 300 req/s with 8 clients"]["met"] is True
    assert targets["W1 ≤ 2.5× `sqlite3 -csv`"]["met"] is True
    assert targets["W1 faster than every peer"]["met"] is False  # Datasette 0.8 s
    assert targets["W4 p95 < 3 ms"]["met"] is None
    assert targets["W4 p95 < 3 ms"]["why"] == "n/a (no endpoint)"


def test_markdown_table():
    """The report has the targets, one table per workload, n/a rows kept."""
    doc = {
        "meta": {
            "date": "2026-11-26 18:00 UTC",
            "machine": "test box",
            "load_start": 0.1,
            "load_end": 0.2,
            "command": "python -m bench",
            "commit": "abc123",
            "versions_line": "Python 3.11",
            "servers": {"reeltable": "gunicorn ..."},
        },
        "results": RESULTS,
        "sections": [
            {
                "title": "SQLite",
                "backend": "SQLite",
                "size": "m1-r1-s42",
                "workloads": ["W2", "W4"],
            }
        ],
        "targets": report.evaluate(RESULTS, "m1-r1-s42", None),
    }
    text = report.markdown(doc)
    assert "| **reeltable** | 2.00 ms | 3.00 ms | 400 | 8.0× better than" in text
    assert "| Flask-Admin | 110 ms | 130 ms | 17.0 |  |  |" in text
    assert "| **reeltable** | – | – |  | n/a (no endpoint) |" in text
    assert "| W2 p95 < 5 ms | 3.00 ms | yes |" in text
    assert "- reeltable: `gunicorn ...`" in text


def test_editor_open_is_ours_alone_with_a_one_frame_target():
    """W7 has no peers; its p95 is held to one frame (16 ms) and shown per opening."""
    w7 = _result("W7", "reeltable", {"p50_ms": 112.0, "p95_ms": 130.0, "n": 200}, True)
    targets = {t["target"]: t for t in report.evaluate([w7], "m1-r1-s42", None)}
    assert targets["W7 editor open p95 < 16 ms (one frame)"]["met"] is False
    assert report.versus_best_peer(w7, [w7]) == "–"
    lines = report.table([w7], "W7", "SQLite", "m1-r1-s42")
    assert lines[0] == "| tool | median | p95 | openings | vs best peer | note |"
    assert lines[2] == "| **reeltable** | 112 ms | 130 ms | 200 | – |  |"


def _at(result: dict, backend: str, size: str) -> dict:
    """A result dict moved to another backend and size."""
    return {**result, "backend": backend, "size": size}


def test_postgres_growth_targets():
    """PostgreSQL at the growth size: 2× SQLite there, 1.5× its own base, W5, W1."""
    big, small = "m10-r100-s42", "m1-r1-s42"
    w2 = lambda p95: _result("W2", "reeltable", {"p95_ms": p95}, ours=True)  # noqa: E731
    results = [
        _at(w2(10.0), "SQLite", big),
        _at(w2(19.0), "PostgreSQL", big),  # 1.9× SQLite: met
        _at(w2(12.0), "PostgreSQL", small),  # 19 > 1.5 × 12: missed
        _at(
            _result("W5", "reeltable", {"rps": 310.0, "lost": 0}, ours=True),
            "PostgreSQL",
            big,
        ),
        _at(
            _result("W1", "reeltable", {"median_s": 30.0, "rss_growth_mb": 2.0}, True),
            "PostgreSQL",
            big,
        ),
        _at(
            _result("W1", "psql \\copy", {"median_s": 10.0}, variant="floor"),
            "PostgreSQL",
            big,
        ),
    ]
    targets = {t["target"]: t for t in report.evaluate(results, small, big)}
    assert targets["PostgreSQL growth W2 p95 ≤ 2× SQLite growth"]["met"] is True
    assert targets["PostgreSQL growth W2 p95 ≤ 1.5× PostgreSQL base"]["met"] is False
    assert targets["PostgreSQL growth W3 p95 ≤ 2× SQLite growth"]["met"] is None
    assert targets["PostgreSQL growth W5 ≥ 300 updates/s with 4 writers"]["met"]
    assert targets["PostgreSQL growth W5 zero lost updates"]["met"] is True
    w1 = targets["PostgreSQL growth W1 ≤ 2.5× `psql \\copy`"]
    assert (w1["met"], w1["measured"]) == (False, "30.00 s = 3.00× 10.00 s")
    # Without PostgreSQL figures at the growth size, no PostgreSQL targets at all.
    sqlite_only = report.evaluate(results[:1], small, big)
    assert not [t for t in sqlite_only if t["target"].startswith("PostgreSQL")]


def test_pg_floor_is_psql_copy_of_the_export_columns():
    """W1's PostgreSQL floor: psql \\copy of the same columns, libpq URL."""
    [(name, argv)] = pg_floor_commands(
        "postgresql+psycopg://u@h/db?options=x", ("id", "rating")
    )
    assert name == "psql \\copy"
    assert argv[:4] == ["psql", "-X", "-q", "postgresql://u@h/db?options=x"]
    assert argv[-1] == (
        "\\copy (SELECT id, rating FROM ratings) TO STDOUT WITH (FORMAT csv, HEADER)"
    )


def test_live_notice_reads_what_live_js_reads():
    """W8's tabs poll with the live notice's data-live-* attributes."""
    body = (
        b'<div class="live-notice js-only" role="status" hidden'
        b' data-live-url="/changes/since" data-live-table="movies"\n'
        b'     data-live-after="42" data-singular="movie">'
        b'<div class="other" data-live-after="7">'
    )
    assert live_notice(body) == {
        "url": "/changes/since",
        "table": "movies",
        "after": "42",
    }
    assert live_notice(b"<div class='nothing'>") == {}


def test_data_made_under_changed_migrations_is_stale(tmp_path: Path, monkeypatch):
    """A changed or removed migration makes cached data stale; a new one does not."""
    (tmp_path / "0001_a.py").write_text("one")
    monkeypatch.setattr(dataset, "MIGRATIONS", tmp_path)
    monkeypatch.delenv("BENCH_KEEP_DATA", raising=False)
    made_under = json.dumps(dataset.migration_files())
    assert not dataset.made_under_other_migrations(made_under)
    (tmp_path / "0002_b.py").write_text("")  # `flask db upgrade` applies it
    assert not dataset.made_under_other_migrations(made_under)
    (tmp_path / "0001_a.py").write_text("one, changed")
    assert dataset.made_under_other_migrations(made_under)
    (tmp_path / "0001_a.py").unlink()
    assert dataset.made_under_other_migrations(made_under)
    assert dataset.made_under_other_migrations(None)
    assert dataset.made_under_other_migrations("not json")
    monkeypatch.setenv("BENCH_KEEP_DATA", "1")
    assert not dataset.made_under_other_migrations(None)
