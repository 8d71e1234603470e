"""Processes for the flood tests, so that neither side shares the server's event loop.

``python -m tests.floodproc honest BASE SECONDS``: create a room of one's own, print
``ready``, wait for a line on stdin, count the updates received in SECONDS, print
the count.

``python -m tests.floodproc frames HOST PORT TOKEN KIND SECONDS``: seat a raw socket
with the reservation TOKEN and write KIND frames (``ping``, ``pong`` or
``continuation``) as fast as this process can for at most SECONDS, or until the
server closes it; print ``flooding`` once seated, then ``{"code": close code or
null, "after": seconds}``.

``python -m tests.floodproc matchmake BASE SECONDS WORKERS BODY``: POST BODY (JSON)
to /matchmake from WORKERS concurrent loops for SECONDS; print the count per status.

Every loop here is bounded in time and targets only the loopback address given.
"""

from __future__ import annotations

import asyncio
import json
import select
import socket
import sys
import time

import aiohttp
import msgpack

from gameserver.core import codec
from loadtest import wsclient

_MASK = bytes(4)  # a zero mask: still a masked client frame, payload as is
FRAMES = {
    "ping": wsclient.frame(b"", wsclient.OP_PING, mask=_MASK),
    "pong": wsclient.frame(b"", wsclient.OP_PONG, mask=_MASK),
    # not final, empty: a message never ends
    "continuation": wsclient.frame(b"", wsclient.OP_CONTINUATION, fin=False, mask=_MASK),
    "binary": wsclient.frame(b"", wsclient.OP_BINARY, mask=_MASK),  # empty data messages
}


async def honest(base: str, seconds: float) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/matchmake", json={"game": "arena", "mode": "create",
                                                           "name": "honest"}) as resp:
            reservation = await resp.json()
        ws = await session.ws_connect(reservation["ws_url"], autoping=True)
        await ws.receive(timeout=5)  # the welcome
        arrivals: list[float] = []

        async def read() -> None:  # all along, so nothing queued before the window counts
            async for msg in ws:
                if (msg.type is aiohttp.WSMsgType.BINARY
                        and msgpack.unpackb(msg.data)[0] in (codec.S_SNAPSHOT,
                                                              codec.S_DELTA)):
                    arrivals.append(time.monotonic())

        reading = asyncio.create_task(read())
        print("ready", flush=True)
        await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(
            None, sys.stdin.readline), 30)
        start = time.monotonic()
        await asyncio.sleep(seconds)
        count = sum(1 for t in arrivals if t >= start)
        reading.cancel()
        print(count, flush=True)
        await ws.close()


def _close_code(stream: bytearray) -> int | None:
    """The code of a close frame among the server's (unmasked) frames, if one came."""
    pos = 0
    while (found := wsclient.frame_at(stream, pos))[2] <= len(stream):
        opcode, start, pos = found
        if opcode == wsclient.OP_CLOSE:
            return wsclient.close_code(stream[start:pos])
    return None


def frames(host: str, port: int, token: str, kind: str, seconds: float) -> None:
    sock = socket.create_connection((host, port), timeout=5)
    request, key = wsclient.upgrade_request(f"{host}:{port}", f"/ws?token={token}")
    sock.sendall(request)
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    head, _, rest = head.partition(b"\r\n\r\n")
    assert wsclient.upgrade_refusal(head, key) is None, head
    stream = bytearray(rest)
    print("flooding", flush=True)
    # a message begun, never ended
    opening = wsclient.frame(b"", wsclient.OP_BINARY, fin=False, mask=_MASK)
    buf = (opening if kind == "continuation" else b"") + FRAMES[kind] * 20_000
    later = FRAMES[kind] * 20_000
    view, pos = memoryview(buf), 0
    sock.setblocking(False)
    began = time.monotonic()
    code = None
    while time.monotonic() - began < seconds and code is None:
        readable, writable, _ = select.select([sock], [sock], [], 0.05)
        if readable:
            data = sock.recv(65536)
            if not data:
                break
            stream += data
            code = _close_code(stream)
        if writable and code is None:
            try:
                pos += sock.send(view[pos:])
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                break
            if pos == len(view):
                view, pos = memoryview(later), 0
    print(json.dumps({"code": code, "after": round(time.monotonic() - began, 3)}), flush=True)
    sock.close()


async def matchmake(base: str, seconds: float, workers: int, body: str) -> None:
    counts: dict[int, int] = {}
    deadline = time.monotonic() + seconds
    payload = json.loads(body)
    headers = payload.pop("headers", {})

    async def loop(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            async with session.post(f"{base}/matchmake", json=payload,
                                    headers=headers) as resp:
                await resp.read()
                counts[resp.status] = counts.get(resp.status, 0) + 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=workers)) as session:
        await asyncio.gather(*(loop(session) for _ in range(workers)))
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "honest":
        asyncio.run(honest(args[0], float(args[1])))
    elif mode == "frames":
        frames(args[0], int(args[1]), args[2], args[3], float(args[4]))
    elif mode == "matchmake":
        asyncio.run(matchmake(args[0], float(args[1]), int(args[2]), args[3]))
