"""Turn results into the targets verdict, a Markdown table and JSON."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bench.stats import advantage, best, format_advantage, growth

# (workload, metric, lower is better, label, unit)
COLUMNS: dict[str, list[tuple[str, str, str]]] = {
    "W1": [
        ("median_s", "median", "s"),
        ("p95_s", "p95", "s"),
        ("rows", "rows", ""),
        ("rss_growth_mb", "server RSS growth", "MB"),
        ("vmhwm_mb", "VmHWM", "MB"),
    ],
    "W2": [("p50_ms", "p50", "ms"), ("p95_ms", "p95", "ms"), ("rps", "req/s", "")],
    "W3": [("p50_ms", "p50", "ms"), ("p95_ms", "p95", "ms")],
    "W4": [("p50_ms", "p50", "ms"), ("p95_ms", "p95", "ms")],
    "W5": [
        ("p50_ms", "p50", "ms"),
        ("p95_ms", "p95", "ms"),
        ("rps", "updates/s", ""),
        ("lost", "lost", ""),
        ("failed", "failed", ""),
        ("http_5xx", "5xx", ""),
    ],
    "W6": [
        ("total_kb", "transferred", "KB"),
        ("ttfb_p50_ms", "TTFB p50", "ms"),
        ("ttfb_p95_ms", "TTFB p95", "ms"),
    ],
    "W7": [("p50_ms", "median", "ms"), ("p95_ms", "p95", "ms"), ("n", "openings", "")],
    "W8": [
        ("delay_p50_ms", "shown after p50", "ms"),
        ("delay_p95_ms", "p95", "ms"),
        ("tabs", "tabs", ""),
        ("polls", "polls", ""),
        ("cpu_s_without_tabs", "server CPU s, writers alone", ""),
        ("cpu_s_with_tabs", "with the tabs", ""),
        ("cpu_ms_per_poll", "CPU ms a poll", ""),
        ("window_s", "over s", ""),
    ],
}
TITLES = {
    "W1": "W1 export all ratings as CSV over HTTP",
    "W2": 'W2 name contains "star", by rating descending, first 50, with the count',
    "W3": "W3 deep page by name: rows 50,001-50,050 (half-way on smaller sets)",
    "W4": "W4 one movie's ratings (the expand-row request)",
    "W5": "W5 single-cell edit (set a director)",
    "W6": "W6 first load of the movies page (HTML + CSS + JS as served)",
    "W7": "W7 editor open: Enter on a cell to its editor holding focus"
    " (Chromium, 100 ms emulated latency)",
    "W8": "W8 live tabs: idle tabs polling GET /changes/since (as static/js/live.js)"
    " while 4 writers each edit a director every 0.5 s",
}
# The figure each workload's "vs best peer" compares, and whether lower wins.
HEADLINE = {
    "W1": ("median_s", True),
    "W2": ("p95_ms", True),
    "W3": ("p95_ms", True),
    "W4": ("p95_ms", True),
    "W5": ("p50_ms", True),
    "W6": ("total_kb", True),
    "W7": ("p95_ms", True),
    "W8": ("delay_p95_ms", True),
}


def fmt(value: Any, unit: str = "") -> str:
    """Format a figure compactly for a table cell."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if unit == "s":
            return f"{value:.2f} s"
        if unit == "ms":
            return f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"
        if unit == "MB":
            return f"{value:.1f} MB"
        if unit == "KB":
            return f"{value:.1f} KB"
        return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
    return str(value)


def label(result: dict) -> str:
    """Tool (variant) name of a result dict."""
    return (
        f"{result['tool']} ({result['variant']})"
        if result["variant"]
        else result["tool"]
    )


def peers_of(results: Iterable[dict], workload: str, backend: str) -> list[dict]:
    """The measured peer results (HTTP tools, not floors) of a workload."""
    return [
        r
        for r in results
        if r["workload"] == workload
        and r["backend"] == backend
        and not r["ours"]
        and r["variant"] != "floor"
        and r["status"] != "n/a"
    ]


def versus_best_peer(ours: dict, results: Sequence[dict]) -> str:
    """Describe how our headline figure compares with the best peer's."""
    metric, lower = HEADLINE[ours["workload"]]
    peers = peers_of(results, ours["workload"], ours["backend"])
    if ours["workload"] == "W1":
        # A peer that did not deliver every row did not do the job.
        full = ours["metrics"].get("rows")
        peers = [p for p in peers if p["metrics"].get("rows") == full]
    pick = best(((label(p), p["metrics"].get(metric)) for p in peers), lower)
    if pick is None:
        return "–"
    factor = advantage(ours["metrics"].get(metric), pick[1], lower)
    return format_advantage(factor, pick[0])


def table(results: Sequence[dict], workload: str, backend: str, size: str) -> list[str]:
    """Markdown lines for one workload on one backend and size."""
    rows = [
        r
        for r in results
        if r["workload"] == workload and r["backend"] == backend and r["size"] == size
    ]
    if not rows:
        return []
    cols = COLUMNS[workload]
    head = ["tool", *(c[1] for c in cols), "vs best peer", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        m = r["metrics"]
        cells = [f"**{label(r)}**" if r["ours"] else label(r)]
        if r["status"] == "n/a":
            cells += ["–"] * len(cols)
        else:
            cells += [fmt(m.get(key), unit) for key, _, unit in cols]
        cells.append(
            versus_best_peer(r, results) if r["ours"] and r["status"] == "ok" else ""
        )
        cells.append(r["note"].replace("|", "\\|"))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def find(
    results: Iterable[dict],
    workload: str,
    backend: str,
    size: str,
    ours: bool = True,
    tool: str | None = None,
) -> dict | None:
    """The first result matching, or None."""
    for r in results:
        if (
            r["workload"] == workload
            and r["backend"] == backend
            and r["size"] == size
            and r["ours"] == ours
            and (tool is None or r["tool"] == tool)
        ):
            return r
    return None


def _metric(r: dict | None, key: str) -> Any:
    """A metric of a measured result, or None."""
    if r is None or r["status"] != "ok":
        return None
    return r["metrics"].get(key)


def _check(name: str, measured: str, met: bool | None, why: str = "") -> dict:
    """One line of the targets table."""
    return {"target": name, "measured": measured, "met": met, "why": why}


def evaluate(results: Sequence[dict], base: str, large: str | None) -> list[dict]:
    """Check reeltable's figures against the issue's targets."""
    out: list[dict] = []
    r = lambda w: find(results, w, "SQLite", base)  # noqa: E731
    w1 = r("W1")
    floor = _metric(
        find(results, "W1", "SQLite", base, ours=False, tool="sqlite3 -csv"), "median_s"
    )
    t1 = _metric(w1, "median_s")
    if t1 is None or floor is None:
        na = w1["note"] if w1 else "not measured"
        out.append(_check("W1 ≤ 2.5× `sqlite3 -csv`", "–", None, na))
        out.append(_check("W1 faster than every peer", "–", None, na))
        out.append(_check("W1 server RSS growth < 50 MB", "–", None, na))
    else:
        out.append(
            _check(
                "W1 ≤ 2.5× `sqlite3 -csv`",
                f"{t1:.2f} s = {t1 / floor:.2f}× {floor:.2f} s",
                t1 <= 2.5 * floor,
            )
        )
        peers = [p for p in peers_of(results, "W1", "SQLite") if p["size"] == base]
        slowest_ok = [(label(p), _metric(p, "median_s")) for p in peers]
        fastest = best(slowest_ok, True)
        out.append(
            _check(
                "W1 faster than every peer",
                f"best peer {fastest[0]} {fastest[1]:.2f} s" if fastest else "–",
                fastest is None or t1 < fastest[1],
            )
        )
        growth_mb = _metric(w1, "rss_growth_mb")
        out.append(
            _check(
                "W1 server RSS growth < 50 MB",
                fmt(growth_mb, "MB"),
                None if growth_mb is None else growth_mb < 50,
            )
        )
    limits = [
        ("W2", "p95_ms", "<", 5.0, "W2 p95 < 5 ms"),
        ("W2", "rps", "≥", 300.0, "W2 ≥ 300 req/s with 8 clients"),
        ("W3", "p95_ms", "<", 7.5, "W3 p95 < 7.5 ms"),
        ("W4", "p95_ms", "<", 3.0, "W4 p95 < 3 ms"),
        ("W5", "p50_ms", "<", 3.0, "W5 p50 < 3 ms"),
        ("W5", "rps", "≥", 450.0, "W5 ≥ 450 updates/s with 4 writers"),
        ("W5", "lost", "=", 0, "W5 zero lost updates"),
        ("W5", "http_5xx", "=", 0, "W5 zero 5xx"),
        ("W6", "total_kb", "<", 60.0, "W6 < 60 KB first load"),
        ("W7", "p95_ms", "<", 16.0, "W7 editor open p95 < 16 ms (one frame)"),
        ("W8", "delay_p95_ms", "<", 2000.0, "W8 change shown in other tabs p95 < 2 s"),
    ]
    for workload, key, op, limit, name in limits:
        result = r(workload)
        value = _metric(result, key)
        if value is None:
            why = result["note"] if result else "not measured"
            out.append(_check(name, "–", None, why))
            continue
        met = (
            value < limit
            if op == "<"
            else value >= limit
            if op == "≥"
            else value == limit
        )
        unit = {"p95_ms": "ms", "p50_ms": "ms", "total_kb": "KB"}.get(key, "")
        unit = "ms" if key.endswith("_ms") else unit
        out.append(_check(name, fmt(value, unit), met))
    if large:
        for workload, key, lower in (
            ("W2", "p95_ms", True),
            ("W2", "rps", False),
            ("W3", "p95_ms", True),
            ("W4", "p95_ms", True),
            ("W5", "p50_ms", True),
            ("W5", "rps", False),
        ):
            small_v = _metric(r(workload), key)
            large_v = _metric(find(results, workload, "SQLite", large), key)
            factor = growth(small_v, large_v) if lower else growth(large_v, small_v)
            name = f"Growth {workload} {key}: large ≤ 2× base"
            if factor is None:
                out.append(_check(name, "–", None, "not measured at both sizes"))
            else:
                unit = "ms" if key.endswith("ms") else ""
                out.append(
                    _check(
                        name,
                        f"{fmt(small_v, unit)} → {fmt(large_v, unit)} ({factor:.2f}×)",
                        factor <= 2.0,
                    )
                )
    if large:
        out += postgres_targets(results, base, large)
    return out


def postgres_targets(results: Sequence[dict], base: str, large: str) -> list[dict]:
    """Issue 15's PostgreSQL targets at the growth size (where it was measured)."""
    out: list[dict] = []
    pg = lambda w, size: find(results, w, "PostgreSQL", size)  # noqa: E731
    if all(pg(w, large) is None for w in ("W1", "W2", "W3", "W4", "W5")):
        return out
    for workload in ("W2", "W3", "W4"):
        big = _metric(pg(workload, large), "p95_ms")
        lite = _metric(find(results, workload, "SQLite", large), "p95_ms")
        small = _metric(pg(workload, base), "p95_ms")
        for name, ref, limit in (
            (f"PostgreSQL growth {workload} p95 ≤ 2× SQLite growth", lite, 2.0),
            (f"PostgreSQL growth {workload} p95 ≤ 1.5× PostgreSQL base", small, 1.5),
        ):
            if big is None or ref is None:
                out.append(_check(name, "–", None, "not measured"))
            else:
                shown = f"{big:.2f} ms = {big / ref:.2f}× {ref:.2f} ms"
                out.append(_check(name, shown, big <= limit * ref))
    w5 = pg("W5", large)
    rps, lost = _metric(w5, "rps"), _metric(w5, "lost")
    out.append(
        _check(
            "PostgreSQL growth W5 ≥ 300 updates/s with 4 writers",
            fmt(rps),
            None if rps is None else rps >= 300,
        )
    )
    out.append(
        _check(
            "PostgreSQL growth W5 zero lost updates",
            fmt(lost),
            None if lost is None else lost == 0,
        )
    )
    w1 = pg("W1", large)
    t1 = _metric(w1, "median_s")
    floor = _metric(
        find(results, "W1", "PostgreSQL", large, ours=False, tool="psql \\copy"),
        "median_s",
    )
    name = "PostgreSQL growth W1 ≤ 2.5× `psql \\copy`"
    if t1 is None or floor is None:
        out.append(_check(name, "–", None, "not measured"))
    else:
        shown = f"{t1:.2f} s = {t1 / floor:.2f}× {floor:.2f} s"
        out.append(_check(name, shown, t1 <= 2.5 * floor))
    growth_mb = _metric(w1, "rss_growth_mb")
    out.append(
        _check(
            "PostgreSQL growth W1 server RSS growth < 50 MB",
            fmt(growth_mb, "MB"),
            None if growth_mb is None else growth_mb < 50,
        )
    )
    return out


def markdown(report: dict) -> str:
    """Render the whole report (meta, targets, one table per workload) as Markdown."""
    meta = report["meta"]
    results = report["results"]
    lines = [
        f"Measured {meta['date']} on {meta['machine']}"
        f" (load average {meta['load_start']} at start, {meta['load_end']} at end;"
        " the 2 cores are shared with the client and any other work on the machine).",
        "",
        f"Command: `{meta['command']}` · commit `{meta['commit']}` ·"
        f" {meta['versions_line']}",
        "",
    ]
    targets = report.get("targets") or []
    if targets:
        lines += ["| target | measured | met |", "|---|---|---|"]
        for t in targets:
            mark = "n/a" if t["met"] is None else ("yes" if t["met"] else "**no**")
            if t["met"] is None:
                shown = t.get("why") or "not measured"
            else:
                shown = t["measured"] + (f" ({t['why']})" if t.get("why") else "")
            lines.append(f"| {t['target']} | {shown} | {mark} |")
        lines.append("")
    for section in report["sections"]:
        lines += [f"#### {section['title']}", ""]
        for workload in section["workloads"]:
            body = table(results, workload, section["backend"], section["size"])
            if body:
                lines += [f"**{TITLES[workload]}**", "", *body, ""]
    lines += ["Requests (main dataset):", ""]
    seen = set()
    first = report["sections"][0] if report["sections"] else {}
    for r in results:
        key = (r["workload"], label(r))
        if r["request"] and key not in seen and r["size"] == first.get("size"):
            seen.add(key)
            lines.append(f"- {r['workload']} {label(r)}: `{r['request']}`")
    lines += ["", "Servers:", ""]
    for name, command in meta.get("servers", {}).items():
        lines.append(f"- {name}: `{command}`")
    return "\n".join(lines) + "\n"
