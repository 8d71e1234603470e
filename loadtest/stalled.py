"""``python -m loadtest.stalled``: what a client that stops reading costs the server.

Starts a server in this process, fills one arena room with players that read
every update and send 20 inputs/s, adds one client that completes the
handshake and then never reads again, and prints every few seconds: the bytes
queued for the stalled client in the server's transport (process memory) and
in the kernel (the server socket's unsent bytes, the client socket's unread
bytes), the process's resident memory, and the slowest reader's update rate.
``--stall-timeout`` and ``--heartbeat`` are raised past the run so the
stalled client is measured, not cut (with the defaults it would be cut after
about 22 s by the heartbeat, or 10 s after it first falls behind).
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import random
import socket
import struct
import termios
import time

import aiohttp
import msgpack
from aiohttp import web

from gameserver import Settings, create_app
from gameserver.web.keys import MANAGER

from .wsclient import RawSocket


def kernel_queued(sock: socket.socket, request: int) -> int:
    """Bytes in a socket's kernel queue: TIOCOUTQ (unsent) or FIONREAD (unread)."""
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), request, b"\0" * 4))[0]
    except OSError:
        return -1


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def reader(session: aiohttp.ClientSession, base: str, room_id: str, counts: list[int],
                 i: int, stop: asyncio.Event) -> None:
    async with session.post(f"{base}/matchmake", json={
            "game": "arena", "mode": "join", "room_id": room_id, "name": f"r{i}"}) as resp:
        ws_url = (await resp.json())["ws_url"]
    rng = random.Random(i)
    try:
        await _play(session, ws_url, rng, counts, i, stop)
    except (aiohttp.ClientError, ConnectionError):
        pass  # the server went away at the end of the run


async def _play(session: aiohttp.ClientSession, ws_url: str, rng: random.Random,
                counts: list[int], i: int, stop: asyncio.Event) -> None:
    async with session.ws_connect(ws_url) as ws:
        seq, direction, next_input = 0, [100, 0], time.monotonic()
        while not stop.is_set():
            try:
                msg = await ws.receive(timeout=0.05)
            except TimeoutError:
                msg = None
            if msg is not None and msg.type is aiohttp.WSMsgType.BINARY and msg.data[1] in (11, 12):
                counts[i] += 1
            if time.monotonic() >= next_input:
                next_input += 0.05
                seq += 1
                if rng.random() < 0.05:
                    direction = [rng.randint(-100, 100), rng.randint(-100, 100)]
                await ws.send_bytes(msgpack.packb([1, seq, direction]))


async def stalled_socket(host: str, port: int, ws_url: str) -> RawSocket:
    """Handshake, then never read again (the kernel still buffers what it can)."""
    raw = await RawSocket.open(host, port, ws_url.split(str(port), 1)[1])
    raw.stop_reading()
    return raw


async def main(players: int, seconds: float, every: float) -> None:
    # Neither the stall timeout nor the heartbeat (a client that does not read does not
    # answer pings either) may cut the stalled client before the run ends.
    settings = Settings(port=0, max_players=players + 1, stall_timeout=seconds * 10,
                        heartbeat=seconds * 10, log_level="WARNING")
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    base = f"http://{host}:{port}"
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/matchmake", json={
                "game": "arena", "mode": "create", "name": "stalled",
                "options": {"max_players": players + 1}}) as resp:
            first = await resp.json()
        stalled = await stalled_socket(host, port, first["ws_url"])
        counts = [0] * (players - 1)
        tasks = [asyncio.create_task(reader(session, base, first["room_id"], counts, i, stop))
                 for i in range(players - 1)]
        await asyncio.sleep(2)
        room_host = app[MANAGER].room_hosts[first["room_id"]]
        conn = next(c for c in room_host.connections.values() if c.player.name == "stalled")
        print(f"{players} players in one arena room at 20 Hz; one of them stopped reading.")
        server_sock = conn.transport.get_extra_info("socket")
        client_sock = stalled.transport.get_extra_info("socket")
        print(f"{'t (s)':>6} {'server buffer (B)':>18} {'behind':>7} {'kernel, server (B)':>19} "
              f"{'kernel, client (B)':>19} {'RSS (MiB)':>10} {'slowest reader (upd/s)':>23}")
        began = time.monotonic()
        last = list(counts)
        while (t := time.monotonic() - began) < seconds:
            await asyncio.sleep(every)
            slowest = min(c - p for c, p in zip(counts, last, strict=True)) / every
            last = list(counts)
            print(f"{t + every:6.0f} {conn.transport.get_write_buffer_size():18,} "
                  f"{'yes' if conn.behind_since is not None else 'no':>7} "
                  f"{kernel_queued(server_sock, termios.TIOCOUTQ):19,} "
                  f"{kernel_queued(client_sock, termios.FIONREAD):19,} {rss_mib():10.1f} "
                  f"{slowest:23.1f}", flush=True)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        stalled.abort()
    await runner.cleanup()


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.stalled", description=__doc__)
    parser.add_argument("--players", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--every", type=float, default=5)
    args = parser.parse_args()
    try:
        import uvloop
        uvloop.run(main(args.players, args.seconds, args.every))
    except ImportError:
        asyncio.run(main(args.players, args.seconds, args.every))


if __name__ == "__main__":
    cli()
