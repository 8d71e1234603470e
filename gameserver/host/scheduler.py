"""One task ticks every real-time room of a tick rate on an event loop.

A room with a task of its own pays, at every tick, for a timer, a future and a task
step just to be woken: 3-6 µs of CPU per room-tick on the benchmark machine, which
adds up with many small rooms (docs/BENCHMARKS.md, "Against Colyseus 0.16"). Rooms
of one rate share one grid of deadlines (multiples of the interval on the process's
clock: ``RoomHost.start``), so one task can wake once per tick and run every room
due, one after the other. Each room keeps its own ``Ticker`` (its catch-up, its
dropped ticks) and its own failures: a room whose step raises is closed, the
others tick on.

Quiet rooms (``Room.quiet``) are not scheduled here: they sleep while nothing
happens, on a task of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol


class Scheduled(Protocol):
    """What the scheduler needs of a room (``RoomHost``)."""

    @property
    def next_deadline(self) -> float:
        """When the room's next tick is due, on the scheduler's clock."""

    def step(self) -> None:
        """Run the ticks that are due (none if its deadline is still ahead)."""

    def crashed_in_tick(self, exc: Exception) -> None:
        """:meth:`step` raised: close the room (the others go on)."""


class TickScheduler:
    """The rooms of one tick rate on one loop, ticked from one task.

    The task starts with the first room and ends at its next wake after the last one
    left (within one interval).
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.rooms: dict[Scheduled, None] = {}  # in the order they came: ticks run in it
        self.task: asyncio.Task[None] | None = None

    def add(self, room: Scheduled) -> None:
        self.rooms[room] = None
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run(), name="rooms")

    def remove(self, room: Scheduled) -> None:
        """No more ticks for ``room`` (it may be mid-step: its step is its last)."""
        self.rooms.pop(room, None)

    async def _run(self) -> None:
        clock, rooms, sleep = self.clock, self.rooms, asyncio.sleep
        while rooms:
            delay = min(room.next_deadline for room in rooms) - clock()
            # Behind (the last pass overran): still let the loop run its I/O once between
            # two passes, or an overloaded process would stop answering anything else.
            await sleep(delay if delay > 0 else 0)
            for room in list(rooms):  # a step may close rooms, its own or others
                if room in rooms:
                    try:
                        room.step()
                    except Exception as exc:  # the framework's own failure: this room only
                        rooms.pop(room, None)
                        room.crashed_in_tick(exc)


_schedulers: dict[tuple[asyncio.AbstractEventLoop, float, Callable[[], float]],
                  TickScheduler] = {}


def scheduler_for(rate: float, clock: Callable[[], float]) -> TickScheduler:
    """The running loop's scheduler for rooms of ``rate`` Hz on ``clock``."""
    loop = asyncio.get_running_loop()
    key = (loop, rate, clock)
    scheduler = _schedulers.get(key)
    if scheduler is None:
        if len(_schedulers) > 64:  # loops come and go (tests): forget the closed ones
            for old in [k for k in _schedulers if k[0].is_closed()]:
                del _schedulers[old]
        scheduler = _schedulers[key] = TickScheduler(clock)
    return scheduler
