"""An honest player in its own process: ``python -m tests.honest_player BASE SECONDS``.

Joins an arena room, prints ``ready``, then counts the updates it receives for
SECONDS and prints that count: a measurement the server's event loop cannot skew
by also running the measuring code.
"""

from __future__ import annotations

import asyncio
import sys

import aiohttp

from .client import Player


async def main(base: str, seconds: float) -> None:
    async with aiohttp.ClientSession() as session:
        player = await Player.join(session, base, name="honest", mode="create")
        await player.updates_for(0.5)  # settled in
        print("ready", flush=True)
        print(await player.updates_for(seconds), flush=True)
        await player.ws.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
