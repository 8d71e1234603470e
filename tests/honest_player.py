"""An honest player in its own process: ``python -m tests.honest_player BASE SECONDS``.

Joins an arena room, prints ``ready``, then counts the updates it receives for
SECONDS and prints that count: a measurement the server's event loop cannot skew
by also running the measuring code. It is a ``gameserver.client`` bot (no pings,
so that it sends nothing while it counts).
"""

from __future__ import annotations

import asyncio
import sys

from gameserver.client import Client


async def main(base: str, seconds: float) -> None:
    async with Client(base, name="honest", ping_interval=None) as client:
        room = await client.create("arena")
        await room.next_update()
        await asyncio.sleep(0.5)  # settled in
        print("ready", flush=True)
        start = room.updates
        await asyncio.sleep(seconds)
        print(room.updates - start, flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
