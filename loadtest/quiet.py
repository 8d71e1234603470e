"""``python -m loadtest.quiet``: what idle turn-based rooms cost the server (issue 16).

Starts a server process (or uses ``--url``, with ``--pid`` to read its CPU), creates
``--rooms`` rooms of ``--game`` (default ``connect_four``, a quiet room) through
matchmaking, two raw WebSocket players each (create, then join by room id, in gentle
batches), who then send nothing at all: no inputs, no messages, no pings (they answer
the server's WebSocket pings, as any client library does). Once every player is seated
it waits ``--settle`` seconds, then measures for ``--seconds``: the server process's CPU
(``/proc``), and the frames and bytes the players received, by message kind. Prints a
progress line or two and, last, one JSON row.

``--game connect_four_loud`` is the same game with ``quiet = False`` (served from this
module with ``--games``): the comparison with a room that updates every tick.

Bounded: every wait has a deadline, every loop a count; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from typing import Any

import aiohttp

from gameserver.games.connect_four import ConnectFour

from .bench import Server, cpu_plan
from .procstat import process_cpu_seconds
from .wsclient import WsProtocol

KINDS = {10: "welcome", 11: "snapshot", 12: "delta", 13: "pong", 14: "message", 15: "error",
         16: "input_lead", 17: "quiet"}


class LoudConnectFour(ConnectFour):
    """connect_four as it was before quiet rooms: an update every tick (the comparison)."""

    game = "connect_four_loud"
    quiet = False


class IdlePlayer(WsProtocol):
    """Upgrades, then only counts what arrives (by kind); never sends a message."""

    def __init__(self, authority: str, path: str) -> None:
        super().__init__(authority, path)
        self.frames: Counter[int] = Counter()
        self.bytes_binary = 0
        self.welcomed = asyncio.get_running_loop().create_future()
        self.closed = False

    def on_binary(self, buf: bytes, start: int, end: int) -> None:
        kind = buf[start + 1] if end - start > 1 else -1
        self.frames[kind] += 1
        self.bytes_binary += end - start
        if kind == 10 and not self.welcomed.done():
            self.welcomed.set_result(None)

    def on_refused(self, reason: str) -> None:
        if not self.welcomed.done():
            self.welcomed.set_exception(ConnectionError(reason))

    def on_close(self, code: int) -> None:
        self.closed = True
        super().on_close(code)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.welcomed.done():
            self.welcomed.set_exception(ConnectionError(f"lost before the welcome: {exc}"))


async def _matchmake(session: aiohttp.ClientSession, base: str, body: dict[str, Any]
                     ) -> dict[str, Any]:
    for attempt in range(5):  # bounded retries of a refused request (429: slow down)
        async with session.post(f"{base}/matchmake", json=body) as resp:
            data = await resp.json()
            if resp.status == 200:
                return data  # type: ignore[no-any-return]
            if resp.status != 429:
                raise RuntimeError(f"matchmake {body['mode']}: {resp.status} {data}")
        await asyncio.sleep(0.2 * (attempt + 1))
    raise RuntimeError(f"matchmake {body['mode']}: still refused: {data}")


async def _connect(host: str, port: int, ws_url: str) -> IdlePlayer:
    path = ws_url.split(f"{host}:{port}", 1)[1]
    loop = asyncio.get_running_loop()
    _, player = await loop.create_connection(
        lambda: IdlePlayer(f"{host}:{port}", path), host, port)
    async with asyncio.timeout(10):
        await player.welcomed
    return player


async def _room(session: aiohttp.ClientSession, base: str, host: str, port: int, game: str,
                options: dict[str, Any], i: int) -> list[IdlePlayer]:
    first = await _matchmake(session, base, {"game": game, "mode": "create",
                                             "name": f"a{i}", "options": options})
    a = await _connect(host, port, first["ws_url"])
    second = await _matchmake(session, base, {"game": game, "mode": "join",
                                              "room_id": first["room_id"], "name": f"b{i}"})
    b = await _connect(host, port, second["ws_url"])
    return [a, b]


def _totals(players: list[IdlePlayer]) -> tuple[Counter[int], int]:
    frames: Counter[int] = Counter()
    size = 0
    for p in players:
        frames.update(p.frames)
        size += p.bytes_in
    return frames, size


async def measure(base: str, pid: int | None, rooms: int, seconds: float, settle: float,
                  game: str, turn_seconds: int, batch: int) -> dict[str, Any]:
    host, port_s = base.split("//", 1)[1].rstrip("/").rsplit(":", 1)
    port = int(port_s)
    players: list[IdlePlayer] = []
    began = time.monotonic()
    connector = aiohttp.TCPConnector(limit=batch)
    async with aiohttp.ClientSession(connector=connector) as session:
        for start in range(0, rooms, batch):  # gentle: one batch of rooms at a time
            if time.monotonic() - began > 600:
                raise RuntimeError(f"only {len(players) // 2} rooms after 600 s")
            made = await asyncio.gather(*(
                _room(session, base, host, port, game, {"turn_seconds": turn_seconds}, i)
                for i in range(start, min(rooms, start + batch))))
            players.extend(p for pair in made for p in pair)
            if (start // batch) % 5 == 4:
                print(f"  {len(players) // 2} rooms seated ({time.monotonic() - began:.0f} s)",
                      file=sys.stderr, flush=True)
    seated = time.monotonic() - began
    await asyncio.sleep(settle)  # the joins' snapshots are out; quiet rooms go dormant
    frames0, bytes0 = _totals(players)
    cpu0 = process_cpu_seconds(pid) if pid else None
    own0 = time.process_time()
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    window = time.monotonic() - t0
    cpu1 = process_cpu_seconds(pid) if pid else None
    own1 = time.process_time()
    frames1, bytes1 = _totals(players)
    frames = frames1 - frames0
    closed = sum(p.closed for p in players)
    for p in players:
        if p.transport is not None:
            p.transport.close()
    n = len(players)
    return {
        "game": game,
        "rooms": rooms,
        "players": n,
        "turn_seconds": turn_seconds,
        "seconds": round(window, 2),
        "seated_in_s": round(seated, 1),
        "server_cpu_pct": (round(100 * (cpu1 - cpu0) / window, 2)
                           if cpu0 is not None and cpu1 is not None else None),
        "client_cpu_pct": round(100 * (own1 - own0) / window, 2),
        "frames_per_s": round(sum(frames.values()) / window, 1),
        "frames_per_player_s": round(sum(frames.values()) / window / max(1, n), 3),
        "bytes_per_s": round((bytes1 - bytes0) / window),
        "frames_by_kind": {KINDS.get(k, str(k)): v for k, v in sorted(frames.items())},
        "closed": closed,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    server: Server | None = None
    base, pid = args.url, args.pid
    if base is None:
        cpu, _ = cpu_plan()
        extra = ["--max-rooms", str(args.rooms + 10), "--games", "loadtest.quiet:LoudConnectFour",
                 "--room-creations-per-minute", "1000000", "--matchmake-rate", "100000",
                 "--max-connections-per-ip", "100000"]
        server = await asyncio.to_thread(Server, cpu, extra)
        base, pid = server.url, server.pid
        if cpu is not None:  # the server on one CPU, these players on the others
            os.sched_setaffinity(0, set(os.sched_getaffinity(0)) - {cpu})
    try:
        return await measure(base, pid, args.rooms, args.seconds, args.settle, args.game,
                             args.turn_seconds, args.batch)
    finally:
        if server is not None:
            server.stop()


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.quiet", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0, help="the measured window")
    parser.add_argument("--settle", type=float, default=5.0,
                        help="seconds between the last seat and the window")
    parser.add_argument("--game", default="connect_four",
                        help="connect_four (quiet) or connect_four_loud (an update every tick)")
    parser.add_argument("--turn-seconds", type=int, default=120,
                        help="connect_four's turn clock: 120 (its most) keeps every round "
                             "running through the window, its countdown shown each second")
    parser.add_argument("--batch", type=int, default=50, help="rooms set up at a time")
    parser.add_argument("--url", help="an already running server (loopback)")
    parser.add_argument("--pid", type=int, help="with --url: the server's pid, for its CPU")
    args = parser.parse_args(argv)
    if not 1 <= args.rooms <= 5000 or not 0 < args.seconds <= 600:
        parser.error("--rooms 1-5000, --seconds up to 600")
    try:
        import uvloop
        row = uvloop.run(main(args))
    except ImportError:
        row = asyncio.run(main(args))
    print(json.dumps(row))


if __name__ == "__main__":
    cli()
