"""``python -m loadtest.tickrate``: does a room hold its tick rate, without drift?

Starts ``gameserver`` as a subprocess (or uses ``--url``), joins one arena room
and counts the ticks of the updates it receives over ``--seconds`` of its own
clock, then reads the room's dropped ticks and overruns from ``/stats``.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time

import aiohttp
import msgpack

from gameserver.core import codec


async def measure(base: str, seconds: float) -> dict[str, float]:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/matchmake", json={"game": "arena", "name": "clock",
                                                           "mode": "create"}) as resp:
            ws_url = (await resp.json())["ws_url"]
        async with session.ws_connect(ws_url) as ws:
            first: tuple[int, float] | None = None
            last = (0, 0.0)
            updates = 0
            began = time.monotonic()
            while time.monotonic() - began < seconds:
                msg = await ws.receive(timeout=5)
                data = msgpack.unpackb(msg.data)
                if data[0] in (codec.S_SNAPSHOT, codec.S_DELTA):
                    last = (data[2], time.monotonic())
                    first = first or last
                    updates += 1
            async with session.get(f"{base}/stats") as resp:
                room = max((await resp.json())["rooms"], key=lambda r: r["tick"])
    assert first is not None
    return {"updates": updates, "ticks": last[0] - first[0], "seconds": last[1] - first[1],
            "rate_hz": (last[0] - first[0]) / (last[1] - first[1]),
            "dropped_ticks": room["dropped_ticks"], "overruns": room["ticks"]["overruns"]}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.tickrate", description=__doc__)
    parser.add_argument("--url", default="", help="a running server (default: start one)")
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    server = None
    base = args.url.rstrip("/")
    if not base:
        server = subprocess.Popen([sys.executable, "-m", "gameserver", "--port", "0",
                                   "--log-level", "warning"], stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None
        base = server.stdout.readline().split(" on ")[1].split("/ ")[0]
    try:
        r = asyncio.run(measure(base, args.seconds))
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
    print(f"{r['ticks']:.0f} ticks in {r['seconds']:.3f} s of the client's clock: "
          f"{r['rate_hz']:.3f} Hz; {r['updates']:.0f} updates received; "
          f"server: {r['dropped_ticks']} ticks dropped, {r['overruns']} overruns")


if __name__ == "__main__":
    main()
