"""A TCP proxy on 127.0.0.1 in front of a test server, for network-condition tests.

- a one-way delay per direction with uniform jitter (``delay`` +- ``jitter`` seconds, from a
  seeded RNG), order-preserving like a real TCP path: a chunk is delivered at
  ``max(arrival + random delay, the previous chunk's delivery)``;
- ``stall(direction, seconds)``: hold everything in one direction ("up" = client to server,
  "down" = server to client) for that long, then release it in order;
- ``cut()``: abort every connection (both sides) once; ``down()``/``up()`` or
  ``outage(seconds)``: cut, and refuse new connections (accepted and aborted at once) until
  restored; ``restored_at`` is (loop time, wall time) of the last ``up()``;
- ``describe()``: what it did (connections, chunks and bytes per direction, stalls, cuts).

The server builds WebSocket URLs from the Host header, so a page loaded through the proxy
also plays through it. ``LatencyProxy`` (the name tests/test_browser.py uses) is this class.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field

DIRECTIONS = ("up", "down")  # up: client -> server; down: server -> client


@dataclass
class Traffic:
    """What went one way: chunks read and delivered, bytes delivered."""

    chunks: int = 0
    bytes: int = 0
    delivered: int = 0
    # Largest hold a chunk got beyond its random delay (a stall, or order kept behind one).
    max_extra: float = 0.0


@dataclass
class Events:
    connections: int = 0
    refused: int = 0
    cuts: int = 0
    aborted: int = 0  # sockets aborted by cuts
    stalls: list[tuple[str, float, float]] = field(default_factory=list)  # (dir, start, end)


class NetProxy:
    """See the module's docstring. ``seed`` makes the jitter repeatable: each connection's
    direction draws from its own RNG (see :meth:`_key`)."""

    def __init__(self, host: str, port: int, delay: float = 0.0, jitter: float = 0.0,
                 seed: int = 0) -> None:
        if jitter < 0 or jitter > delay:
            raise ValueError("0 <= jitter <= delay")
        self.host, self.port = host, port
        self.delay, self.jitter, self.seed = delay, jitter, seed
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.traffic = {d: Traffic() for d in DIRECTIONS}
        self.events = Events()
        self.held_until = dict.fromkeys(DIRECTIONS, 0.0)  # loop time a stall lasts until
        # None: connections pass; a number: new ones are aborted after that many seconds
        # without reaching the server (0: at once; more: a network that hangs).
        self.refusing: float | None = None
        self._opened: dict[str, int] = {}  # connections per first request line (see _key)
        self.down_at: tuple[float, float] | None = None  # (loop time, wall time)
        self.restored_at: tuple[float, float] | None = None  # (loop time, wall time)
        self.url = ""

    # -- control ------------------------------------------------------------------------

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    @property
    def refused(self) -> int:
        """Connections refused so far."""
        return self.events.refused

    def cut(self) -> None:
        """Abort every connection through the proxy, both sides (a dropped network)."""
        self.events.cuts += 1
        self.events.aborted += len(self.writers)
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    def down(self) -> None:
        """Cut every connection and refuse new ones until :meth:`up`."""
        loop = asyncio.get_running_loop()
        self.refusing = 0.0
        self.down_at = (loop.time(), time.time())
        self.cut()

    def up(self) -> None:
        loop = asyncio.get_running_loop()
        self.refusing = None
        self.restored_at = (loop.time(), time.time())

    async def outage(self, seconds: float) -> None:
        self.down()
        try:
            await asyncio.sleep(seconds)
        finally:
            self.up()

    def stall(self, direction: str, seconds: float) -> float:
        """Hold everything going `direction` for `seconds` from now, then release it in
        order. Returns the loop time the stall ends."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction is one of {DIRECTIONS}")
        now = asyncio.get_running_loop().time()
        end = max(self.held_until[direction], now + seconds)
        self.held_until[direction] = end
        self.events.stalls.append((direction, now, end))
        return end

    def describe(self) -> str:
        t = self.traffic
        e = self.events
        parts = [f"proxy {self.url} delay {self.delay * 1000:.0f}+-{self.jitter * 1000:.0f} ms "
                 f"seed {self.seed}: {e.connections} connections, {e.refused} refused, "
                 f"{e.cuts} cuts ({e.aborted} sockets aborted)"]
        for d in DIRECTIONS:
            parts.append(f"{d}: {t[d].chunks} chunks read, {t[d].delivered} delivered, "
                         f"{t[d].bytes} bytes, max extra hold {t[d].max_extra * 1000:.0f} ms")
        for d, start, end in e.stalls:
            parts.append(f"stall {d} {(end - start) * 1000:.0f} ms")
        return "; ".join(parts)

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    # -- the path -----------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing is not None:
            self.events.refused += 1
            if self.refusing:
                await asyncio.sleep(self.refusing)
            writer.transport.abort()
            return
        self.events.connections += 1
        self.writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            self.writers.discard(writer)
            writer.transport.abort()
            return
        if writer not in self.writers:  # cut while connecting upstream
            up_writer.transport.abort()
            writer.transport.abort()
            return
        self.writers.add(up_writer)
        key: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        pumps = [asyncio.create_task(self._pump(reader, up_writer, "up", key)),
                 asyncio.create_task(self._pump(up_reader, writer, "down", key))]
        self.tasks.update(pumps)
        try:
            await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            self.tasks.difference_update(pumps)
            for w in (writer, up_writer):
                self.writers.discard(w)
                w.transport.abort()

    def _key(self, first: bytes) -> str:
        """What a connection's RNGs are seeded with: the proxy's seed, the first line of
        what the client sent without its query string (``GET /ws``: the tokens differ from
        run to run), and how many connections began that way before. So a game socket gets
        the same jitter in every run, whatever the page fetched before it."""
        line = first.split(b"\r\n", 1)[0].split(b"?", 1)[0].split(b" HTTP/", 1)[0]
        name = line.decode("latin-1")
        n = self._opened[name] = self._opened.get(name, 0) + 1
        return f"{self.seed}/{name}/{n}"

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                    direction: str, key: asyncio.Future[str]) -> None:
        loop = asyncio.get_running_loop()
        rng: random.Random | None = None
        traffic = self.traffic[direction]
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    return
                # A stall holds this chunk (and, the queue being in order, all after it).
                while True:
                    at = max(due, self.held_until[direction])
                    wait = at - loop.time()
                    if wait <= 0:
                        break
                    await asyncio.sleep(wait)
                traffic.max_extra = max(traffic.max_extra, at - due)
                dst.write(data)
                traffic.delivered += 1
                traffic.bytes += len(data)
                await dst.drain()

        sender = asyncio.create_task(deliver())
        last = 0.0
        try:
            while True:
                data = await src.read(65536)
                if direction == "up" and not key.done():
                    key.set_result(self._key(data))
                if rng is None:
                    # The client speaks first; the server's answer comes after that.
                    name = await key if data or key.done() else "none"
                    rng = random.Random(f"{name}/{direction}")
                delay = self.delay
                if self.jitter:
                    delay += rng.uniform(-self.jitter, self.jitter)
                due = last = max(loop.time() + delay, last)
                if data:
                    traffic.chunks += 1
                queue.put_nowait((due, data))
                if not data:
                    break
            await sender
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if not key.done():  # the other direction must not wait for it
                key.set_result("none")
            sender.cancel()
            with contextlib.suppress(BaseException):
                await sender
            dst.transport.abort()


LatencyProxy = NetProxy
