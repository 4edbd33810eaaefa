"""W1-W7 as the issues list them: what each tool is asked, and how it is timed."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

from bench import client as http
from bench.client import Client, Req, run_in_processes
from bench.dataset import Reader
from bench.servers import RssSampler, Server
from bench.stats import summarize

# What Chrome sends: W2-W6 ask for compression as a browser would (W1 does not,
# so rows can be counted as they stream).
BROWSER_ENCODINGS = (("Accept-Encoding", "gzip, deflate, br, zstd"),)
HX = (("HX-Request", "true"), *BROWSER_ENCODINGS)
FORM_IDENTITY = (("Content-Type", "application/x-www-form-urlencoded"),)
FORM = (*FORM_IDENTITY, *BROWSER_ENCODINGS)
NOT_THERE = (404, 405, 501)


@dataclass
class Result:
    """One line of the report: a tool (variant) on one workload."""

    workload: str
    tool: str
    variant: str
    backend: str
    size: str
    request: str
    ours: bool
    status: str = "ok"  # ok | n/a | error
    note: str = ""
    metrics: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Tool and variant as one name, e.g. "Datasette (JSON)"."""
        return f"{self.tool} ({self.variant})" if self.variant else self.tool


@dataclass
class Variant:
    """One way a tool serves a workload: its server and the requests to send."""

    tool: str
    variant: str
    server: Server | None
    reqs: Sequence[Req]
    ours: bool = False
    check: Callable[[http.Resp], str | None] | None = None  # returns a problem
    unsupported: str = ""  # why this tool cannot do the workload

    def describe(self) -> str:
        """The first request, for the report."""
        if not self.reqs:
            return ""
        req = self.reqs[0]
        extra = " + HX-Request" if ("HX-Request", "true") in req.headers else ""
        more = f" (and {len(self.reqs) - 1} more like it)" if len(self.reqs) > 1 else ""
        return f"{req.method} {req.path}{extra}{more}"


def loadavg() -> float:
    """The 1-minute load average, to flag a busy machine in the report."""
    return os.getloadavg()[0]


def _probe(variant: Variant, result: Result) -> bool:
    """Send the first request once; mark n/a or error if it fails. True if usable."""
    assert variant.server is not None
    try:
        resp = Client(variant.server.port).send(variant.reqs[0])
    except OSError as exc:
        result.status, result.note = "error", f"request failed: {exc}"
        return False
    if resp.status in NOT_THERE:
        result.status = "n/a"
        result.note = f"n/a (endpoint not available: HTTP {resp.status})"
        return False
    if resp.status >= 500:
        result.status, result.note = "error", f"HTTP {resp.status}"
        return False
    if variant.check is not None:
        problem = variant.check(resp)
        if problem:
            result.note = f"check: {problem}"
    return True


def _results_for(
    name: str, variants: Sequence[Variant], backend: str, size: str
) -> list[tuple[Variant, Result]]:
    """Pair each variant with an empty result; unsupported ones are n/a."""
    out = []
    for v in variants:
        r = Result(name, v.tool, v.variant, backend, size, v.describe(), v.ours)
        if v.unsupported:
            r.status, r.note = "n/a", v.unsupported
        out.append((v, r))
    return out


def latency(
    name: str,
    variants: Sequence[Variant],
    *,
    backend: str,
    size: str,
    n: int,
    rounds: int,
    warmup: int,
    clients: int = 0,
    duration: float = 0.0,
    load_rounds: int = 1,
    log=print,
) -> list[Result]:
    """Time n sequential requests per variant, interleaved A B A B in rounds.

    With clients > 0, also measure throughput: that many concurrent clients for
    `duration` seconds per round, interleaved the same way.
    """
    pairs = _results_for(name, variants, backend, size)
    live = [(v, r) for v, r in pairs if r.status == "ok" and _probe(v, r)]
    samples: dict[int, list[float]] = {id(r): [] for _, r in live}
    statuses: dict[int, dict[int, int]] = {id(r): {} for _, r in live}
    load_before = loadavg()
    for v, _ in live:
        http.sequential(v.server.port, v.reqs, warmup)
    per_round = max(1, n // rounds)
    for _ in range(rounds):
        for v, r in live:
            lat, st = http.sequential(v.server.port, v.reqs, per_round)
            samples[id(r)].extend(lat)
            for code, count in st.items():
                statuses[id(r)][code] = statuses[id(r)].get(code, 0) + count
    for _, r in live:
        r.metrics.update(summarize(samples[id(r)]))
        r.metrics["statuses"] = statuses[id(r)]
        bad = sum(c for s, c in statuses[id(r)].items() if s >= 400)
        if bad:
            r.status, r.note = "error", f"{bad} responses ≥ 400 {statuses[id(r)]}"
    if clients:
        rps: dict[int, list[float]] = {id(r): [] for _, r in live}
        loaded: dict[int, list[float]] = {id(r): [] for _, r in live}
        for _ in range(load_rounds):
            for v, r in live:
                out = http.concurrent(v.server.port, v.reqs, clients, duration)
                rps[id(r)].append(out["rps"])
                loaded[id(r)].extend(out["latencies"])
                fails = sum(c for s, c in out["statuses"].items() if s >= 400)
                if fails or out["errors"]:
                    r.note = (
                        r.note + f" under load: {fails} HTTP errors,"
                        f" {out['errors']} failed connections"
                    ).strip()
        for _, r in live:
            values = sorted(rps[id(r)])
            r.metrics["rps"] = values[len(values) // 2]
            r.metrics["rps_all"] = values
            r.metrics["clients"] = clients
            loaded_summary = summarize(loaded[id(r)])
            r.metrics["loaded_p50_ms"] = loaded_summary.get("p50_ms")
            r.metrics["loaded_p95_ms"] = loaded_summary.get("p95_ms")
    load_after = loadavg()
    for _, r in pairs:
        r.metrics.setdefault("load", [round(load_before, 2), round(load_after, 2)])
    log_results(pairs, log)
    return [r for _, r in pairs]


def log_results(pairs, log) -> None:
    """Print one line per result as a workload finishes."""
    for _, r in pairs:
        m = r.metrics
        if r.status == "n/a":
            log(f"    {r.label:34} {r.note}")
            continue
        bits = []
        if "p50_ms" in m:
            bits.append(f"p50 {m['p50_ms']:.2f} ms  p95 {m['p95_ms']:.2f} ms")
        if "rps" in m:
            bits.append(f"{m['rps']:.0f} req/s ({m['clients']} clients)")
        if "median_s" in m:
            bits.append(f"median {m['median_s']:.2f} s  rows {m.get('rows')}")
        if "total_kb" in m:
            bits.append(f"{m['total_kb']:.1f} KB  TTFB p50 {m['ttfb_p50_ms']:.2f} ms")
        if "lost" in m:
            bits.append(
                f"lost {m['lost']}  5xx {m['http_5xx']}  failed {m.get('failed', 0)}"
            )
        log(f"    {r.label:34} {'  '.join(bits)} {r.note}".rstrip())


# ---------------------------------------------------------------- W1 export


def export(
    variants: Sequence[Variant],
    floors: Sequence[tuple[str, list[str]]],
    *,
    expected_rows: int,
    backend: str,
    size: str,
    rounds: int,
    warmup_rounds: int,
    log=print,
) -> list[Result]:
    """W1: download every rating as CSV per tool; time, rows, server RSS growth.

    Floors (`sqlite3 -csv`, Python's csv module) run as subprocesses writing to
    a pipe the harness drains, interleaved with the servers.
    """
    pairs = _results_for("W1", variants, backend, size)
    live = []
    for v, r in pairs:
        if r.status != "ok":
            continue
        # A cheap probe: the headers and first bytes tell if the endpoint exists.
        try:
            resp = Client(v.server.port).send(v.reqs[0], max_bytes=1, keep_body=False)
        except OSError as exc:
            r.status, r.note = "error", f"request failed: {exc}"
            continue
        if resp.status in NOT_THERE:
            r.status, r.note = (
                "n/a",
                f"n/a (endpoint not available: HTTP {resp.status})",
            )
            continue
        if resp.status >= 400:
            r.status, r.note = "error", f"HTTP {resp.status}"
            continue
        live.append((v, r))
    floor_results = []
    for name, argv in floors:
        # The report names commands relative to the checkout, never this machine.
        shown = " ".join(_relative(arg) for arg in argv)
        r = Result("W1", name, "floor", backend, size, shown, False)
        floor_results.append((argv, r))
    times: dict[int, list[float]] = {}
    load_before = loadavg()
    total_rounds = warmup_rounds + rounds
    for round_no in range(total_rounds):
        measuring = round_no >= warmup_rounds
        for argv, r in floor_results:
            if r.status != "ok":
                continue
            try:
                seconds, lines = _run_floor(argv)
            except (OSError, subprocess.CalledProcessError) as exc:
                r.status, r.note = "n/a", f"n/a ({exc})"
                continue
            if measuring:
                times.setdefault(id(r), []).append(seconds)
                r.metrics["rows"] = lines - 1
        for v, r in live:
            # Settle first: the previous export may have left a worker busy.
            time.sleep(0.5)
            sampler = RssSampler(v.server.worker_pids())
            with sampler:
                resp = Client(v.server.port, timeout=900).send(
                    v.reqs[0], keep_body=False
                )
            if not measuring:
                continue
            times.setdefault(id(r), []).append(resp.elapsed)
            r.metrics["rows"] = max(0, resp.lines - 1)
            r.metrics["bytes"] = resp.size
            r.metrics["status_code"] = resp.status
            r.metrics["rss_growth_mb"] = max(
                r.metrics.get("rss_growth_mb", 0.0), sampler.growth_mb()
            )
            r.metrics["peak_rss_mb"] = max(
                r.metrics.get("peak_rss_mb", 0.0), sampler.peak_mb()
            )
            r.metrics["vmhwm_mb"] = sampler.hwm_mb()
    load_after = loadavg()
    everything = [(None, r) for _, r in floor_results] + pairs
    for _, r in everything:
        values = sorted(times.get(id(r), []))
        if values:
            from bench.stats import percentile

            r.metrics["median_s"] = percentile(values, 50)
            r.metrics["p95_s"] = percentile(values, 95)
            r.metrics["runs_s"] = values
            rows = r.metrics.get("rows", 0)
            if rows < expected_rows:
                r.note = (
                    r.note + f" truncated: {rows:,} of {expected_rows:,} rows"
                ).strip()
        r.metrics.setdefault("load", [round(load_before, 2), round(load_after, 2)])
    log_results(everything, log)
    return [r for _, r in everything]


def _run_floor(argv: Sequence[str]) -> tuple[float, int]:
    """Run a floor command, draining its stdout; return seconds and newlines."""
    start = time.perf_counter()
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = 0
    assert proc.stdout is not None
    while chunk := proc.stdout.read(1 << 16):
        lines += chunk.count(b"\n")
    proc.wait()
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, argv)
    return time.perf_counter() - start, lines


def _relative(arg: str) -> str:
    """`arg` with the checkout's absolute path taken off (for reports)."""
    root = str(Path(__file__).resolve().parent.parent) + "/"
    return arg.replace(root, "")


def floor_commands(db: Path, columns: Sequence[str]) -> list[tuple[str, list[str]]]:
    """The non-HTTP references: the sqlite3 shell and Python's csv module."""
    sql = f"SELECT {', '.join(columns)} FROM ratings"
    out: list[tuple[str, list[str]]] = []
    out.append(("sqlite3 -csv", ["sqlite3", "-csv", "-header", str(db), sql]))
    out.append(
        ("Python csv + sqlite3", [sys.executable, "-m", "bench.floors", str(db), sql])
    )
    return out


def pg_floor_commands(url: str, columns: Sequence[str]) -> list[tuple[str, list[str]]]:
    """PostgreSQL's reference: `psql \\copy` of the same columns, as CSV to stdout."""
    sql = f"SELECT {', '.join(columns)} FROM ratings"
    url = url.replace("postgresql+psycopg://", "postgresql://", 1)
    copy = f"\\copy ({sql}) TO STDOUT WITH (FORMAT csv, HEADER)"
    return [("psql \\copy", ["psql", "-X", "-q", url, "-c", copy])]


# ---------------------------------------------------------------- W5 edits


@dataclass
class EditPlan:
    """How a tool takes a single-cell edit of a movie's director."""

    kind: str  # reeltable | flask-admin | sqlite-web
    ok_status: int
    cookie: str = ""
    token: str = ""


def edit_request(plan: EditPlan, movie_id: int, value: str, version: int) -> Req:
    """Build the request that sets one movie's director."""
    if plan.kind == "reeltable":
        body = urllib.parse.urlencode({"director": value, "version": version})
        headers = (*FORM, *HX, ("X-CSRFToken", plan.token), ("Cookie", plan.cookie))
        return Req("PATCH", f"/movies/{movie_id}", headers, body.encode())
    if plan.kind == "flask-admin":
        body = urllib.parse.urlencode({"list_form_pk": movie_id, "director": value})
        return Req("POST", "/admin/movie/ajax/update/", FORM, body.encode())
    if plan.kind == "sqlite-web":
        key = base64.urlsafe_b64encode(json.dumps([movie_id]).encode()).decode()
        body = urllib.parse.urlencode({"director": value})
        return Req("POST", f"/movies/update/{key}/", FORM, body.encode())
    raise ValueError(plan.kind)


def reeltable_session(port: int) -> tuple[str, str]:
    """GET /movies as a browser would: return (cookie header, CSRF token)."""
    resp = Client(port).send(Req("GET", "/movies"))
    match = re.search(rb'<meta name="csrf-token" content="([^"]+)"', resp.body)
    token = match.group(1).decode() if match else ""
    jar = SimpleCookie()
    for key, value in resp.headers.items():
        if key == "set-cookie":
            jar.load(value)
    cookie = "; ".join(f"{k}={m.value}" for k, m in jar.items())
    return cookie, token


def _edit_worker(args) -> list[tuple[int, str, int, float]]:
    """One writer: edit its own movies in turn; return every attempt made."""
    port, plan, ids, versions, tag, count, start_at, duration = args
    versions = dict(versions)
    c = Client(port)
    attempts: list[tuple[int, str, int, float]] = []
    time.sleep(max(0.0, start_at - time.time()))
    deadline = start_at + duration if duration else None
    i = 0
    while (count and i < count) or (deadline and time.time() < deadline):
        movie_id = ids[i % len(ids)]
        value = f"Bench {tag}-{i}"
        try:
            resp = c.send(edit_request(plan, movie_id, value, versions[movie_id]))
            status, elapsed = resp.status, resp.elapsed
        except OSError:
            c.close()
            status, elapsed = 0, 0.0
        if status == plan.ok_status:
            versions[movie_id] += 1
        attempts.append((movie_id, value, status, elapsed))
        i += 1
    c.close()
    return attempts


def lost_updates(
    attempts: Sequence[tuple[int, str, int, float]], ok_status: int, final: dict
) -> list[int]:
    """Return ids whose last acknowledged value is not what the database holds.

    A later unacknowledged attempt may have landed (the write happened, the
    answer was lost): the row holding that value is not a lost update.
    """
    by_id: dict[int, list[tuple[str, int]]] = {}
    for movie_id, value, status, _ in attempts:
        by_id.setdefault(movie_id, []).append((value, status))
    lost = []
    for movie_id, tries in by_id.items():
        acked = [k for k, (_, s) in enumerate(tries) if s == ok_status]
        if not acked:
            continue
        last = acked[-1]
        allowed = {tries[last][0], *(v for v, _ in tries[last + 1 :])}
        if final.get(movie_id, (None,))[0] not in allowed:
            lost.append(movie_id)
    return lost


def edits(
    variants: Sequence[tuple[Variant, EditPlan | None, list[int]]],
    reader: Reader,
    *,
    backend: str,
    size: str,
    n: int,
    rounds: int,
    warmup: int,
    writers: int,
    duration: float,
    load_rounds: int,
    log=print,
) -> list[Result]:
    """W5: single-cell edits: sequential latency, then `writers` concurrent writers.

    Each tool edits its own movies, each writer its own share of them, so every
    acknowledged write must be in the database at the end: that is checked.
    """
    pairs = _results_for("W5", [v for v, _, _ in variants], backend, size)
    plans = {id(v): (plan, ids) for v, plan, ids in variants}
    # Values unique to this run: the PostgreSQL data outlives a run, and writing
    # the value a movie already holds changes nothing, so its version stays put
    # and the check below (and the writer's next edit, with a 409) would count a
    # write that was correctly a no-op.
    run_id = secrets.token_hex(3)
    live = []
    start_versions: dict[int, dict[int, int]] = {}
    for v, r in pairs:
        if r.status != "ok":
            continue
        plan, ids = plans[id(v)]
        if plan.kind == "reeltable":
            plan.cookie, plan.token = reeltable_session(v.server.port)
        start_versions[id(r)] = {k: val[1] for k, val in reader.directors(ids).items()}
        probe = edit_request(
            plan, ids[0], f"Bench probe {run_id}", start_versions[id(r)][ids[0]]
        )
        resp = Client(v.server.port).send(probe)
        if resp.status in NOT_THERE:
            r.status, r.note = (
                "n/a",
                f"n/a (endpoint not available: HTTP {resp.status})",
            )
            continue
        if resp.status != plan.ok_status:
            r.status, r.note = "error", f"probe edit answered HTTP {resp.status}"
            continue
        live.append((v, r))
    attempts: dict[int, list] = {id(r): [] for _, r in live}
    latencies: dict[int, list[float]] = {id(r): [] for _, r in live}
    rps: dict[int, list[float]] = {id(r): [] for _, r in live}
    load_before = loadavg()

    def run(v: Variant, r: Result, tag: str, count: int, nwriters: int, secs: float):
        plan, ids = plans[id(v)]
        current = reader.directors(ids)
        versions = {k: val[1] for k, val in current.items()}
        shares = [ids[w::nwriters] for w in range(nwriters)]
        start_at = time.time() + (0.5 if nwriters > 1 else 0)
        jobs = [
            (
                v.server.port,
                plan,
                share,
                {k: versions[k] for k in share},
                f"{tag}w{w}",
                count,
                start_at,
                secs,
            )
            for w, share in enumerate(shares)
        ]
        if nwriters == 1:
            parts = [_edit_worker(jobs[0])]
        else:
            parts = run_in_processes(_edit_worker, jobs)
        made = [a for part in parts for a in part]
        attempts[id(r)].extend(made)
        return made, start_at

    for v, r in live:
        run(v, r, f"{run_id}warm", warmup, 1, 0)
    per_round = max(1, n // rounds)
    for k in range(rounds):
        for v, r in live:
            made, _ = run(v, r, f"{run_id}s{k}", per_round, 1, 0)
            latencies[id(r)].extend(
                a[3] for a in made if a[2] == plans[id(v)][0].ok_status
            )
    for k in range(load_rounds):
        for v, r in live:
            made, start_at = run(v, r, f"{run_id}c{k}", 0, writers, duration)
            ok = sum(1 for a in made if a[2] == plans[id(v)][0].ok_status)
            rps[id(r)].append(ok / duration)
    load_after = loadavg()
    for v, r in live:
        plan, ids = plans[id(v)]
        made = attempts[id(r)]
        final = reader.directors(ids)
        lost = lost_updates(made, plan.ok_status, final)
        codes: dict[int, int] = {}
        for a in made:
            codes[a[2]] = codes.get(a[2], 0) + 1
        r.metrics.update(summarize(latencies[id(r)]))
        values = sorted(rps[id(r)])
        if values:
            r.metrics["rps"] = values[len(values) // 2]
            r.metrics["rps_all"] = values
            r.metrics["clients"] = writers
        r.metrics["attempts"] = len(made)
        r.metrics["acknowledged"] = sum(1 for a in made if a[2] == plan.ok_status)
        r.metrics["lost"] = len(lost)
        r.metrics["http_5xx"] = sum(c for s, c in codes.items() if s >= 500)
        r.metrics["conflicts_409"] = codes.get(409, 0)
        r.metrics["failed_connections"] = codes.get(0, 0)
        r.metrics["statuses"] = codes
        r.metrics["version_checked"] = plan.kind == "reeltable"
        r.metrics["failed"] = len(made) - r.metrics["acknowledged"]
        if plan.kind == "reeltable":
            # The version must have moved once per acknowledged write (and the
            # probe), no more and no less: nobody else edits these movies.
            acked = {i: 0 for i in ids}
            acked[ids[0]] += 1
            for a in made:
                if a[2] == plan.ok_status:
                    acked[a[0]] += 1
            start = start_versions[id(r)]
            r.metrics["versions_consistent"] = all(
                final[i][1] == start[i] + acked[i] for i in ids
            )
            if not r.metrics["versions_consistent"]:
                r.note = (r.note + " versions moved by more than the writes").strip()
    for _, r in pairs:
        r.metrics.setdefault("load", [round(load_before, 2), round(load_after, 2)])
    log_results(pairs, log)
    return [r for _, r in pairs]


# ---------------------------------------------------------------- W6 first load

ASSET = re.compile(
    rb"""<(?:link[^>]*rel=["']?stylesheet["']?[^>]*href|script[^>]*src)=["']([^"']+)["']"""
)
ASSET_REVERSED = re.compile(
    rb"""<link[^>]*href=["']([^"']+)["'][^>]*rel=["']?stylesheet"""
)


def assets_of(html: bytes) -> list[str]:
    """Return the stylesheet and script URLs a page loads, in order, once each."""
    found: list[str] = []
    for pattern in (ASSET, ASSET_REVERSED):
        for match in pattern.finditer(html):
            url = match.group(1).decode()
            if url not in found and not url.startswith(("http:", "https:", "//")):
                found.append(url)
    return found


def first_load(
    variants: Sequence[Variant],
    *,
    backend: str,
    size: str,
    samples: int,
    log=print,
) -> list[Result]:
    """W6: the page a browser first loads: bytes as served (HTML+CSS+JS) and TTFB."""
    pairs = _results_for("W6", variants, backend, size)
    live = [(v, r) for v, r in pairs if r.status == "ok" and _probe(v, r)]
    ttfb: dict[int, list[float]] = {id(r): [] for _, r in live}
    load_before = loadavg()
    for _, r in live:
        r.metrics["assets"] = {}
    for k in range(samples + 1):  # the first pass warms up
        for v, r in live:
            c = Client(v.server.port)
            page = c.send(v.reqs[0])
            if k == 0:
                continue
            ttfb[id(r)].append(page.ttfb)
            if k == 1:
                html_bytes = page.size + page.header_bytes
                r.metrics["html_bytes"] = page.size
                r.metrics["html_encoding"] = (
                    page.header("content-encoding") or "identity"
                )
                total = html_bytes
                base = v.reqs[0].path
                for url in assets_of(page.decoded()):
                    path = urllib.parse.urljoin(base, url)
                    asset = c.send(Req("GET", path, BROWSER_ENCODINGS))
                    r.metrics["assets"][url] = {
                        "status": asset.status,
                        "bytes": asset.size,
                        "encoding": asset.header("content-encoding") or "identity",
                    }
                    total += asset.size + asset.header_bytes
                r.metrics["total_kb"] = total / 1024
            c.close()
    load_after = loadavg()
    for _, r in live:
        s = summarize(ttfb[id(r)])
        r.metrics["ttfb_p50_ms"] = s.get("p50_ms")
        r.metrics["ttfb_p95_ms"] = s.get("p95_ms")
    for _, r in pairs:
        r.metrics.setdefault("load", [round(load_before, 2), round(load_after, 2)])
    log_results(pairs, log)
    return [r for _, r in pairs]


# ---------------------------------------------------------------- W7 editor open

# Emulated latency: an editor that waits on the server shows it in full.
EDITOR_LATENCY_MS = 100
EDITABLE_FIELDS = ("name", "director", "rating")
ROWS = "table[data-grid] #movie-rows > tr.data-row"
EDITOR_INPUT = 'form.cell-editor input:not([type="hidden"])'

# Both clocks are read in the page: the Enter that opens an editor, and the moment an
# input inside form.cell-editor takes the focus. Capture phase, so the app's own
# handlers cannot hide either event.
EDITOR_CLOCK = """
window.__editorOpen = { down: null, focus: null };
document.addEventListener("keydown", (event) => {
  if ((event.key === "Enter" || event.key === "F2")
      && event.target.matches && event.target.matches("td.editable")) {
    window.__editorOpen = { down: performance.now(), focus: null };
  }
}, true);
document.addEventListener("focusin", (event) => {
  const clock = window.__editorOpen;
  if (clock.down !== null && clock.focus === null
      && event.target.matches && event.target.matches("form.cell-editor input")) {
    clock.focus = performance.now();
  }
}, true);
"""


def editor_open(
    variants: Sequence[Variant],
    *,
    backend: str,
    size: str,
    n: int,
    warmup: int,
    latency_ms: int = EDITOR_LATENCY_MS,
    log=print,
) -> list[Result]:
    """W7: time from Enter on a grid cell to its editor holding focus, in Chromium."""
    pairs = _results_for("W7", variants, backend, size)
    try:
        from playwright.sync_api import Error as BrowserError
    except ImportError:
        for _, r in pairs:
            r.status, r.note = (
                "n/a",
                "n/a (Playwright not installed: pip install -e '.[test]')",
            )
        log_results(pairs, log)
        return [r for _, r in pairs]
    load_before = loadavg()
    for v, r in pairs:
        if r.status != "ok":
            continue
        assert v.server is not None
        url = f"http://{http.HOST}:{v.server.port}{v.reqs[0].path}"
        r.request = (
            f"Chromium, {latency_ms} ms emulated latency: Enter on a focused cell"
            f" of GET {v.reqs[0].path} until its editor's input has the focus"
        )
        try:
            samples = open_editors(url, n, warmup, latency_ms)
        except (BrowserError, AssertionError) as exc:  # expect() raises the latter
            r.status, r.note = "error", str(exc).splitlines()[0]
            continue
        r.metrics.update(summarize(samples))
        r.metrics["latency_ms"] = latency_ms
    load_after = loadavg()
    for _, r in pairs:
        r.metrics.setdefault("load", [round(load_before, 2), round(load_after, 2)])
    log_results(pairs, log)
    return [r for _, r in pairs]


def open_editors(url: str, n: int, warmup: int, latency_ms: int) -> list[float]:
    """Open and cancel n + warmup editors down the columns; return n times in s."""
    from playwright.sync_api import Error as BrowserError
    from playwright.sync_api import expect, sync_playwright

    from e2e.browser import LAUNCH_ARGS, executable_path, slow_network

    chromium = executable_path()  # starts a Playwright of its own: not inside ours
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
        try:
            context = browser.new_context()
            page = context.new_page()
            page.add_init_script(EDITOR_CLOCK)
            slow_network(page, latency_ms)
            page.goto(url)
            rows = page.locator(ROWS)
            expect(rows.first).to_be_visible()
            count = rows.count()
            samples: list[float] = []
            before = None
            for k in range(warmup + n):
                # Down one column, then to the top of the next: a fresh cell each time.
                at = (k % count, EDITABLE_FIELDS[(k // count) % len(EDITABLE_FIELDS)])
                cell = rows.nth(at[0]).locator(f'td.editable[data-field="{at[1]}"]')
                if before == (at[0] - 1, at[1]):
                    page.keyboard.press("ArrowDown")
                else:
                    cell.focus()
                expect(cell).to_be_focused()
                page.keyboard.press("Enter")
                editor = rows.nth(at[0]).locator(f'td[data-field="{at[1]}"]')
                expect(
                    editor.locator(EDITOR_INPUT), f"no editor took the focus at {at}"
                ).to_be_focused()
                clock = page.evaluate("() => window.__editorOpen")
                if clock["down"] is None or clock["focus"] is None:
                    raise BrowserError(f"editor clock not read at {at}: {clock}")
                if k >= warmup:
                    samples.append((clock["focus"] - clock["down"]) / 1000)
                page.keyboard.press("Escape")
                expect(cell, f"Escape left no focused cell at {at}").to_be_focused()
                before = at
        finally:
            browser.close()
    return samples


# ---------------------------------------------------------------- W8 live tabs


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds the processes have used so far (gone ones: 0)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def live_notice(body: bytes) -> dict[str, str]:
    """The data-live-* attributes of a table page's live notice (live.js reads them)."""
    match = re.search(rb'<div class="live-notice[^>]*>', body)
    if not match:
        return {}
    attrs = re.findall(rb'data-live-([a-z]+)="([^"]*)"', match.group(0))
    return {k.decode(): v.decode().replace("&amp;", "&") for k, v in attrs}


def _tab(port: int, notice: dict[str, str], poll_s: float, stop_at: float, seen, out):
    """One idle tab: poll as static/js/live.js does; note when each set shows.

    `seen` maps a change set id to the monotonic time this tab first learned of
    it; a "refresh" answer (too many changes to list) shows everything before it,
    recorded under key 0. Appends (polls, 200s, refreshes) to `out`.
    """
    c = Client(port, timeout=30)
    after, table = notice["after"], notice["table"]
    snapshot = notice.get("snapshot")  # PostgreSQL's; empty on SQLite
    polls = answers = refreshes = 0
    accept = (("Accept", "application/json"),)
    # Tabs opened at different moments poll out of step.
    next_at = time.monotonic() + poll_s * secrets.randbelow(1000) / 1000
    while True:
        time.sleep(max(0.0, next_at - time.monotonic()))
        if time.monotonic() >= stop_at:
            break
        params = {"after": after, "table": table}
        if snapshot:
            params["snapshot"] = snapshot
        path = notice["url"] + "?" + urllib.parse.urlencode(params)
        try:
            resp = c.send(Req("GET", path, accept))
        except OSError:
            c.close()
            resp = None
        now = time.monotonic()
        polls += 1
        if resp is not None and resp.status == 200:
            answers += 1
            body = json.loads(resp.body)
            after = str(body["last"])
            snapshot = body.get("snapshot")
            if body.get("refresh"):
                refreshes += 1
                seen.setdefault(0, []).append(now)
            for group in ("updated", "deleted", "created"):
                for _row, sets in body.get(group) or []:
                    for set_id in sets:
                        seen.setdefault(set_id, now)
        next_at += poll_s
    c.close()
    out.append((polls, answers, refreshes))


def _paced_writer(port, plan, ids, versions, every_s, stop_at, acked, latencies):
    """One writer: edit a director every `every_s` seconds; note each ack time."""
    c = Client(port)
    versions = dict(versions)
    i = 0
    next_at = time.monotonic()
    while time.monotonic() < stop_at:
        time.sleep(max(0.0, next_at - time.monotonic()))
        movie_id = ids[i % len(ids)]
        try:
            resp = c.send(
                edit_request(
                    plan, movie_id, f"Live {secrets.token_hex(4)}", versions[movie_id]
                )
            )
        except OSError:
            c.close()
            resp = None
        if resp is not None and resp.status == plan.ok_status:
            versions[movie_id] += 1
            token = resp.header("x-change-set")
            set_id = int(token.split(".")[1]) if token.count(".") >= 2 else 0
            acked.append((set_id, time.monotonic()))
            latencies.append(resp.elapsed)
        i += 1
        next_at += every_s
    c.close()


def live_tabs(
    variant: Variant,
    reader: Reader,
    ids: Sequence[int],
    *,
    backend: str,
    size: str,
    tabs: int = 50,
    writers: int = 4,
    edit_every_s: float = 0.5,
    poll_s: float = 1.5,
    duration: float = 15.0,
    rounds: int = 2,
    log=print,
) -> list[Result]:
    """W8: `tabs` idle tabs polling GET /changes/since while `writers` edit.

    Each writer edits a director every edit_every_s seconds (people, not a load
    test); each tab polls every poll_s seconds as static/js/live.js does. The
    delay is from a write's acknowledgement to each tab's first answer naming its
    change set. CPU: user + system seconds of the gunicorn master and workers
    over `duration`, writers alone and writers with the tabs, interleaved.
    """
    import threading

    pairs = _results_for("W8", [variant], backend, size)
    v, r = pairs[0]
    assert v.server is not None
    port = v.server.port
    plan = EditPlan("reeltable", 200)
    plan.cookie, plan.token = reeltable_session(port)
    page = Client(port).send(Req("GET", v.reqs[0].path))
    notice = live_notice(page.body)
    if not notice.get("url"):
        r.status, r.note = "n/a", "n/a (no live notice on the page)"
        return [r]
    pids = [v.server.proc.pid, *v.server.worker_pids()] if v.server.proc else []
    shares = [list(ids[w::writers]) for w in range(writers)]
    delays: list[float] = []
    cpu: dict[bool, list[float]] = {False: [], True: []}
    write_lat: dict[bool, list[float]] = {False: [], True: []}
    polls = answers = refreshes = unseen = 0
    load_before = loadavg()
    for _ in range(rounds):
        for with_tabs in (False, True):
            versions = {k: val[1] for k, val in reader.directors(list(ids)).items()}
            # Each tab starts from a page drawn now, as a person opening it would.
            notice = live_notice(Client(port).send(Req("GET", v.reqs[0].path)).body)
            stop_at = time.monotonic() + duration
            acked: list[tuple[int, float]] = []
            seen_by_tab: list[dict] = [{} for _ in range(tabs if with_tabs else 0)]
            tab_out: list[tuple[int, int, int]] = []
            threads = [
                threading.Thread(
                    target=_paced_writer,
                    args=(
                        port,
                        plan,
                        share,
                        {k: versions[k] for k in share},
                        edit_every_s,
                        stop_at,
                        acked,
                        write_lat[with_tabs],
                    ),
                )
                for share in shares
            ]
            threads += [
                threading.Thread(
                    target=_tab,
                    args=(port, notice, poll_s, stop_at + 2 * poll_s, seen, tab_out),
                )
                for seen in seen_by_tab
            ]
            before = cpu_seconds(pids)
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            cpu[with_tabs].append(cpu_seconds(pids) - before)
            for p, a, f in tab_out:
                polls, answers, refreshes = polls + p, answers + a, refreshes + f
            for seen in seen_by_tab:
                refreshed = sorted(seen.get(0, []))
                for set_id, at in acked:
                    shown = seen.get(set_id)
                    later = [t for t in refreshed if t >= at]
                    if later and (shown is None or later[0] < shown):
                        shown = later[0]
                    if shown is None:
                        unseen += 1
                    else:
                        delays.append(max(0.0, shown - at))
    load_after = loadavg()
    d = summarize(delays)
    without, with_ = sum(cpu[False]), sum(cpu[True])
    window = duration * rounds
    r.metrics.update(
        {
            "tabs": tabs,
            "writers": writers,
            "delay_p50_ms": d.get("p50_ms"),
            "delay_p95_ms": d.get("p95_ms"),
            "delay_max_ms": d.get("max_ms"),
            "shown": d.get("n", 0),
            "unseen": unseen,
            "polls": polls,
            "polls_200": answers,
            "refreshes": refreshes,
            "cpu_s_without_tabs": round(without, 2),
            "cpu_s_with_tabs": round(with_, 2),
            "window_s": window,
            "tabs_cpu_share": round((with_ - without) / window, 3),
            "cpu_ms_per_poll": round(1000 * (with_ - without) / polls, 2)
            if polls
            else None,
            "edit_p50_ms_without_tabs": summarize(write_lat[False]).get("p50_ms"),
            "edit_p50_ms_with_tabs": summarize(write_lat[True]).get("p50_ms"),
            "load": [round(load_before, 2), round(load_after, 2)],
        }
    )
    if unseen:
        r.note = f"{unseen} (tab, change) pairs not shown within 2 polls of the end"
    log(
        f"    {r.label:34} delay p50 {d.get('p50_ms', 0):.0f} ms"
        f"  p95 {d.get('p95_ms', 0):.0f} ms  CPU {without:.2f} s alone,"
        f" {with_:.2f} s with {tabs} tabs over {window:.0f} s  polls {polls}"
    )
    return [r]
