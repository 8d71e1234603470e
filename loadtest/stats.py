"""Small, dependency-free statistics used by the runner and the bench. Pure."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], p: float, *, presorted: bool = False) -> float | None:
    """The p-th percentile (0-100), nearest-rank; ``None`` for no values."""
    if not values:
        return None
    ordered = values if presorted else sorted(values)
    k = min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))
    return float(ordered[k])


def median(values: Sequence[float]) -> float | None:
    """The true median (mean of the two middle values for even counts)."""
    if not values:
        return None
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return float(ordered[mid]) if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def latency_summary(samples_ms: Sequence[float]) -> dict[str, float | None]:
    ordered = sorted(samples_ms)
    return {
        "p50": _round(percentile(ordered, 50, presorted=True)),
        "p90": _round(percentile(ordered, 90, presorted=True)),
        "p99": _round(percentile(ordered, 99, presorted=True)),
        "max": _round(ordered[-1] if ordered else None),
        "samples": len(ordered),
    }


def rate_summary(rates: Sequence[float]) -> dict[str, float | None]:
    """Per-client rates: the median, the 1st percentile (the slow tail) and the minimum."""
    ordered = sorted(rates)
    return {
        "median": _round(median(ordered)),
        "p1": _round(percentile(ordered, 1, presorted=True)),
        "min": _round(ordered[0] if ordered else None),
        "clients": len(ordered),
    }


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
