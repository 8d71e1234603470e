"""The fixed-step clock and its statistics. Pure: the caller supplies the time.

Tick ``n`` is due at ``start + n * interval``: deadlines are absolute, so a
late wake-up or a slow tick never shifts the ones after it (no drift). After a
stall, at most ``max_catch_up`` ticks run back to back; the rest are dropped,
by whole intervals, so the schedule keeps its phase (Fix Your Timestep's
spiral-of-death clamp).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from typing import ClassVar

# Upper bounds (seconds) of the tick-duration histogram buckets; one more counts the rest.
TICK_BUCKETS: tuple[float, ...] = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                   0.025, 0.05, 0.1, 0.25)


class Ticker:
    def __init__(self, rate: float, start: float, max_catch_up: int = 3) -> None:
        if not 0 < rate <= 1000:
            raise ValueError(f"tick rate must be in (0, 1000] Hz, got {rate}")
        if max_catch_up < 1:
            raise ValueError("max_catch_up must be at least 1")
        self.rate = rate
        self.interval = 1.0 / rate
        self.max_catch_up = max_catch_up
        self.start = start
        self._n = 0  # index of the next tick to run
        self.dropped = 0  # ticks skipped by the catch-up cap
        self.slept = 0  # ticks a quiet room slept through (skip_to): not run, not dropped

    @property
    def next_deadline(self) -> float:
        return self.start + self._n / self.rate

    def due(self, now: float) -> int:
        """How many ticks to run now (0 if the next deadline is still ahead).

        Calling it consumes those ticks: the caller must run them.
        """
        # Count in tick indices, not float sums, so rounding never shifts a deadline.
        passed = math.floor((now - self.start) * self.rate + 1e-9) + 1
        n = passed - self._n
        if n <= 0:
            return 0
        if n > self.max_catch_up:
            self.dropped += n - self.max_catch_up
            self._n += n - self.max_catch_up
            n = self.max_catch_up
        self._n += n
        return n


    @property
    def index(self) -> int:
        """The index of the next tick to run (its deadline is :attr:`next_deadline`)."""
        return self._n

    def skip_to(self, now: float, limit: int | None = None) -> int:
        """A quiet room wakes up: skip the ticks whose deadlines passed while it slept, so
        the next tick is the first one due at or after ``now`` (never past the tick
        index ``limit``: a timer's own tick). Returns how many were skipped (slept)."""
        target = math.ceil((now - self.start) * self.rate - 1e-9)
        if limit is not None:
            target = min(target, limit)
        n = max(0, target - self._n)
        self._n += n
        self.slept += n
        return n


class TickStats:
    """Tick work durations over a sliding window, and running counters.

    ``buckets`` and ``total`` are a fixed-bucket histogram of every tick
    (bounds :data:`TICK_BUCKETS`; the last bucket is +Inf), exported as
    ``gameserver_tick_duration_seconds``.
    """

    # The counters that add up across rooms (host/counters.py sums them by these names);
    # the other attributes describe one room's recent ticks.
    TOTALS: ClassVar[tuple[str, ...]] = ("buckets", "count", "overruns", "total")

    def __init__(self, interval: float, window: int = 1200) -> None:
        self.interval = interval
        self.count = 0
        self.overruns = 0  # ticks whose work took longer than one interval
        self.total = 0.0  # seconds of tick work, summed
        self.buckets = [0] * (len(TICK_BUCKETS) + 1)
        self._durations: deque[float] = deque(maxlen=window)

    def record(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        self.buckets[bisect_left(TICK_BUCKETS, seconds)] += 1
        self._durations.append(seconds)
        if seconds > self.interval:
            self.overruns += 1

    def percentile(self, p: float) -> float:
        """The p-th percentile (0-100) of recent durations, in seconds; 0 if none."""
        if not self._durations:
            return 0.0
        ordered = sorted(self._durations)
        k = min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))
        return ordered[k]

    def summary(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "overruns": self.overruns,
            "p50_ms": round(self.percentile(50) * 1000, 3),
            "p99_ms": round(self.percentile(99) * 1000, 3),
        }
