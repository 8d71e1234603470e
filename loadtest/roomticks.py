"""``python -m loadtest.roomticks``: what a room's tick costs when nothing is in it.

Starts ``--rooms`` empty real-time rooms (``loadtest.movement:Movement``) in this
process, on uvloop, through the same ``RoomHost`` the server uses, lets them tick
for ``--seconds`` and prints the process's CPU time per room-tick: the fixed cost
a room pays at each tick whatever happens in it (waking, stepping, collecting,
sending to nobody). Run it pinned to one CPU (``taskset -c 0``) on a quiet
machine; docs/BENCHMARKS.md quotes it. With one room it is mostly the cost of
waking an idle process once per tick.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import uvloop

from gameserver.config import Settings
from gameserver.core.limits import Limits
from gameserver.host.room_host import RoomHost
from loadtest.movement import Movement


async def measure(rooms: int, seconds: float, warmup: float = 1.0) -> dict[str, float]:
    """CPU µs per room-tick of ``rooms`` empty rooms over ``seconds`` (after ``warmup``)."""
    limits = Limits.from_settings(Settings())
    hosts = []
    for i in range(rooms):
        room = Movement(f"empty-{i}", 20.0, {})
        room.on_create(room.options)
        host = RoomHost(room, limits)
        host.start()
        hosts.append(host)
    try:
        await asyncio.sleep(warmup)
        cpu, wall = time.process_time(), time.perf_counter()
        ticks = sum(h.room.tick for h in hosts)
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        ticks = sum(h.room.tick for h in hosts) - ticks
    finally:
        for host in hosts:
            host.close()
        for host in hosts:
            await host.wait_closed()
    return {"rooms": rooms, "room_ticks": ticks, "rate_hz": ticks / wall / rooms,
            "cpu_us_per_room_tick": cpu / max(1, ticks) * 1e6}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.roomticks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, default=25, help="empty rooms (default 25)")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured (default 8)")
    args = parser.parse_args(argv)
    if not 1 <= args.rooms <= 10_000 or not 0 < args.seconds <= 600:
        parser.error("--rooms is 1..10000 and --seconds is in (0, 600]")
    result = uvloop.run(measure(args.rooms, args.seconds))
    print(f"{result['rooms']} rooms: {result['cpu_us_per_room_tick']:.1f} µs of CPU per "
          f"room-tick ({result['room_ticks']} room-ticks at {result['rate_hz']:.2f} Hz)")


if __name__ == "__main__":
    main()
