"""Percentiles, summaries and ratios: the arithmetic the report rests on."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(values: Sequence[float], p: float) -> float:
    """Return the p-th percentile (0-100) with linear interpolation, like numpy."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError("p must be within 0..100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * p / 100
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return float(ordered[low])
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def summarize(seconds: Sequence[float]) -> dict[str, float | int]:
    """Summarise latencies given in seconds as n, p50, p95, mean, min, max in ms."""
    if not seconds:
        return {"n": 0}
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "mean_ms": sum(ms) / len(ms),
        "min_ms": min(ms),
        "max_ms": max(ms),
    }


def best(values: Iterable[tuple[str, float | None]], lower_is_better: bool):
    """Return (name, value) of the best non-missing value, or None if none."""
    present = [(n, v) for n, v in values if v is not None and v > 0]
    if not present:
        return None
    pick = min if lower_is_better else max
    return pick(present, key=lambda item: item[1])


def advantage(ours: float | None, theirs: float | None, lower_is_better: bool):
    """How many times better ours is than theirs (>1 means we win), or None."""
    if ours is None or theirs is None or ours <= 0 or theirs <= 0:
        return None
    return theirs / ours if lower_is_better else ours / theirs


def format_advantage(factor: float | None, peer: str | None = None) -> str:
    """Render an advantage factor as "3.2× faster than X" or "1.4× slower than X"."""
    if factor is None:
        return "–"
    who = f" than {peer}" if peer else ""
    if factor >= 1:
        return f"{factor:.1f}× better{who}"
    return f"{1 / factor:.1f}× worse{who}"


def growth(small: float | None, large: float | None) -> float | None:
    """Return large/small (how much a figure grew), or None if either is missing."""
    if small is None or large is None or small <= 0:
        return None
    return large / small
