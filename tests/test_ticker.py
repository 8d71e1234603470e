"""The fixed-step clock keeps its rate and phase under slow ticks, with a fake clock."""

from __future__ import annotations

import pytest

from gameserver.core.ticker import Ticker, TickStats


def run(ticker: Ticker, seconds: float, work: object) -> tuple[int, list[float]]:
    """Drive a ticker like the room loop does; ``work(n)`` is each tick's duration."""
    now = ticker.start
    ran = 0
    starts: list[float] = []
    while ticker.next_deadline < ticker.start + seconds - 1e-9:
        now = max(now, ticker.next_deadline)  # sleep until the deadline
        for _ in range(ticker.due(now)):
            starts.append(now)
            now += work(ran)  # type: ignore[operator]
            ran += 1
    return ran, starts


def test_rate_is_exact_without_drift() -> None:
    ticker = Ticker(20, start=1000.0)
    ran, starts = run(ticker, 60.0, lambda n: 0.004)
    assert ran == 1200  # 20.00 Hz over 60 s
    # Every tick starts on its own deadline: start + n * interval.
    assert all(abs(s - (1000.0 + i * 0.05)) < 1e-9 for i, s in enumerate(starts))


def test_occasional_slow_ticks_are_caught_up_without_losing_any() -> None:
    ticker = Ticker(20, start=0.0, max_catch_up=3)
    # Every 10th tick takes 120 ms (2.4 intervals): the next ones run back to back.
    ran, _ = run(ticker, 10.0, lambda n: 0.12 if n % 10 == 0 else 0.002)
    assert ran == 200
    assert ticker.dropped == 0


def test_a_stall_is_capped_and_the_schedule_keeps_its_phase() -> None:
    ticker = Ticker(20, start=0.0, max_catch_up=3)
    assert ticker.due(0.0) == 1
    # One second of stall: 20 ticks are due, 3 run, 17 are dropped.
    assert ticker.due(1.0) == 3
    assert ticker.dropped == 17
    assert ticker.next_deadline == pytest.approx(1.05)  # still on the 50 ms grid
    assert ticker.due(1.04) == 0
    assert ticker.due(1.05) == 1


def test_a_permanently_slow_tick_runs_as_fast_as_it_can() -> None:
    ticker = Ticker(20, start=0.0, max_catch_up=2)
    ran, _ = run(ticker, 10.0, lambda n: 0.1)  # each tick takes two intervals
    # About one tick per 100 ms of work (the last batch may run past the end)...
    assert 99 <= ran <= 104
    # ...and the rest of the 200 deadlines are dropped rather than piling up.
    assert ran + ticker.dropped >= 199


def test_stats_percentiles_and_overruns() -> None:
    stats = TickStats(interval=0.05)
    for ms in range(1, 101):
        stats.record(ms / 1000)
    stats.record(0.08)
    summary = stats.summary()
    assert summary["count"] == 101
    assert summary["overruns"] == 51  # 51..100 ms and the 80 ms one exceed 50 ms
    assert summary["p50_ms"] == pytest.approx(51.0)
    assert summary["p99_ms"] == pytest.approx(99.0)


def test_bad_rates_are_refused() -> None:
    with pytest.raises(ValueError):
        Ticker(0, start=0.0)
    with pytest.raises(ValueError):
        Ticker(20, start=0.0, max_catch_up=0)
