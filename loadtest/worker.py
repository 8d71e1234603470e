"""A worker process: its own event loop (uvloop when installed) driving a share of the bots.

The parent talks to it over a pipe. Parent -> worker: ``("go", t0)`` start the
ramp at monotonic time ``t0``; ``("mark",)`` open the measurement window;
``("stop",)`` close it, report, leave. Worker -> parent: ``("ready", w)``,
``("progress", dict)`` once a second (second ``k`` after ``t0``) and
``("final", dict)``.

Spectators (indices from ``players`` on) matchmake with mode ``spectate`` for
their group's room once it exists, and send nothing (the WebSocket layer
answers the server's pings); idle players join as players but get no input slot.

Inputs are sent by one timer per worker, not one per bot: bots are spread over
``SLOTS`` phases of the input interval, so the server sees a steady stream
rather than a burst per interval, and the worker wakes ``SLOTS`` times per
interval whatever the number of bots.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from array import array
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from .bot import Bot, SampledBot, Shared
from .options import Group, Options, bot_kind

SLOTS = 10  # input phases per input interval
REPORT_EVERY = 1.0


@dataclass(frozen=True)
class WorkerPlan:
    index: int
    options: Options
    groups: list[Group]
    sampled: frozenset[int]


def worker_main(conn: Connection, plan: WorkerPlan) -> None:
    """Process entry point."""
    if plan.options.worker_cpus and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, plan.options.worker_cpus)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop does not build on Windows
        asyncio.run(Worker(conn, plan).run())
    else:
        uvloop.run(Worker(conn, plan).run())



class Worker:
    def __init__(self, conn: Connection, plan: WorkerPlan) -> None:
        self.conn = conn
        self.plan = plan
        self.opts = plan.options
        self.shared = Shared(plan.options.seed * 1000 + plan.index)
        self.shared.on_disconnect = self._disconnected
        self.bots: list[Bot] = []
        self.slots: list[list[Bot]] = [[] for _ in range(SLOTS)]
        self.failures: Counter[str] = Counter()
        self.disconnects: Counter[str] = Counter()
        self.stopping = False
        self.go = asyncio.Event()
        self.stop = asyncio.Event()
        self.t0 = 0.0
        self.send_lag = 0.0
        self.window_lat = array("f")
        self.win_offset = 0
        self.in_window = False
        self.mark: dict[int, tuple[int, int, int]] = {}
        self.mark_at = 0.0
        self._tasks: set[asyncio.Task[Any]] = set()
        self.open = 0  # bots welcomed and not yet closed
        self.all_closed = asyncio.Event()

    # -- parent link -----------------------------------------------------------

    def _command(self) -> None:
        try:
            msg = self.conn.recv()
        except (EOFError, OSError):  # the parent is gone: stop
            asyncio.get_running_loop().remove_reader(self.conn.fileno())
            msg = ("stop",)
        if msg[0] == "go":
            self.t0 = msg[1]
            self.go.set()
        elif msg[0] == "mark":
            self.mark_at = time.monotonic()
            self.mark = {b.index: (b.updates, b.bytes_in, b.bytes_out) for b in self.bots
                         if b.welcome is not None and not b.closed}
            self.win_offset = len(self.shared.latencies)
            self.in_window = True
        elif msg[0] == "stop":
            self.stop.set()

    def _post(self, *msg: Any) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(msg)

    # -- main ------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self.conn.fileno(), self._command)
        os.set_blocking(self.conn.fileno(), True)  # uvloop made it non-blocking: see runner
        self._post("ready", self.plan.index)
        await self.go.wait()
        connector = aiohttp.TCPConnector(limit=32, force_close=False)
        async with aiohttp.ClientSession(connector=connector) as session:
            tasks = [loop.create_task(self._ramp(session)), loop.create_task(self._reporter()),
                     loop.create_task(self._inputs())]
            await self.stop.wait()
            self.stopping = True
            final = self._final()
            for t in tasks:
                t.cancel()
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(*tasks, *self._tasks, return_exceptions=True)
            self._post("final", final)
            await self._leave_all()
        loop.remove_reader(self.conn.fileno())

    async def _ramp(self, session: aiohttp.ClientSession) -> None:
        opts = self.opts
        mine = sum(len(g.bots) + len(g.spectators) for g in self.plan.groups)
        everyone = opts.players + opts.spectators
        rate = opts.ramp * mine / max(1, everyone)  # this worker's share of the ramp
        loop = asyncio.get_running_loop()
        k = 0
        for group in self.plan.groups:
            room: asyncio.Future[str] = loop.create_future()
            if group.room_id is not None:
                room.set_result(group.room_id)
            for j, index in enumerate((*group.bots, *group.spectators)):
                delay = self.t0 + k / rate - time.monotonic() if rate > 0 else 0
                if delay > 0:
                    await asyncio.sleep(delay)
                k += 1
                leader = j == 0 and index < opts.players
                task = loop.create_task(self._join(session, index, group, room, leader))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _join(self, session: aiohttp.ClientSession, index: int, group: Group,
                    room: asyncio.Future[str], leader: bool) -> None:
        opts = self.opts
        kind = bot_kind(opts, index)
        pre = "spectator:" if kind == "spectator" else ""  # failures of spectators apart
        try:
            if kind == "spectator":
                body = {"game": opts.game, "mode": "spectate", "room_id": await room,
                        "options": opts.game_options}
                ws_url = (await _matchmake(session, opts.url, body))["ws_url"]
            elif leader and group.ws_url is not None:
                ws_url = group.ws_url
            elif leader and group.room_id is None:
                body = {"game": opts.game, "mode": "create", "name": f"bot{index}",
                        "options": opts.create_options(len(group.bots))}
                reply = await _matchmake(session, opts.url, body)
                room.set_result(reply["room_id"])
                ws_url = reply["ws_url"]
            else:
                room_id = await room
                body = {"game": opts.game, "mode": "join", "room_id": room_id,
                        "name": f"bot{index}", "options": opts.game_options}
                ws_url = (await _matchmake(session, opts.url, body))["ws_url"]
        except MatchmakeError as exc:
            if leader and not room.done():
                room.set_exception(exc)
            self.failures[f"{pre}matchmake:{exc.code}"] += 1
            return
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            if leader and not room.done():
                room.set_exception(MatchmakeError("no_room"))
            self.failures[f"{pre}matchmake:{type(exc).__name__}"] += 1
            return
        parts = urlsplit(ws_url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        path = f"{parts.path}?{parts.query}"
        cls = SampledBot if index in self.plan.sampled and kind != "spectator" else Bot
        loop = asyncio.get_running_loop()
        try:
            _, bot = await asyncio.wait_for(loop.create_connection(
                lambda: cls(index, self.shared, f"{host}:{port}", path), host, port),
                opts.connect_timeout)
        except (TimeoutError, OSError) as exc:
            self.failures[f"{pre}connect:{type(exc).__name__}"] += 1
            return
        try:
            await bot.welcomed(opts.connect_timeout)
        except (TimeoutError, ConnectionError) as exc:
            reason = "timeout" if isinstance(exc, TimeoutError) else "refused"
            self.failures[f"{pre}handshake:{reason}"] += 1
            bot.abort()
            return
        if self.stopping:
            bot.abort()
            return
        bot.joined = True
        bot.kind = kind
        self.bots.append(bot)
        self.open += 1
        if kind == "player":  # idle players and spectators send no inputs
            self.slots[len(self.bots) % SLOTS].append(bot)

    def _disconnected(self, bot: Bot) -> None:
        if not bot.joined:
            return
        self.open -= 1
        if self.open <= 0:
            self.all_closed.set()
        if not bot.leaving and not self.stopping:
            pre = "spectator:" if bot.kind == "spectator" else ""
            self.disconnects[f"{pre}{bot.close_code or 'lost'}"] += 1

    async def _inputs(self) -> None:
        rate = self.opts.input_rate
        if rate <= 0:
            return
        period = 1.0 / rate / SLOTS
        turn_p = 1.0 / rate  # a new direction about once a second
        rnd = self.shared.random.random
        clock = time.perf_counter
        next_at = clock()
        slot = 0
        while True:
            next_at += period
            delay = next_at - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            t = clock()
            late = t - next_at
            if late > self.send_lag:
                self.send_lag = late
            if late > 4 * period:  # overloaded: don't burst to catch up, shift the phase
                next_at = t
            for bot in self.slots[slot]:
                if rnd() < turn_p:
                    bot.turn()
                bot.send_input(t)
            slot = (slot + 1) % SLOTS

    async def _reporter(self) -> None:
        k = 0
        last = {"updates": 0, "bytes_in": 0, "bytes_out": 0, "sample_updates": 0,
                "spectator_updates": 0, "spectator_bytes_in": 0}
        cpu0 = time.process_time()
        wall0 = time.monotonic()
        while True:
            k += 1
            delay = self.t0 + k * REPORT_EVERY - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            totals = self._totals()
            cpu, wall = time.process_time(), time.monotonic()
            lat = self.shared.latencies
            if self.in_window:
                self.window_lat.extend(lat[self.win_offset:])
                self.win_offset = 0
            report = {
                "k": k, "worker": self.plan.index,
                "connected": sum(1 for b in self.bots
                                 if not b.closed and b.kind != "spectator"),
                "spectators_connected": sum(1 for b in self.bots
                                            if not b.closed and b.kind == "spectator"),
                "joined": len(self.bots),  # players and spectators
                "failed": sum(self.failures.values()),
                "disconnected": sum(self.disconnects.values()),
                **{key: totals[key] - last[key] for key in last},
                "latencies": lat.tobytes(),
                "max_latency_ms": self.shared.max_latency_ms,
                "cpu_percent": 100.0 * (cpu - cpu0) / max(1e-6, wall - wall0),
                "send_lag_ms": self.send_lag * 1000.0,
            }
            del lat[:]
            self.shared.max_latency_ms = 0.0
            self.send_lag = 0.0
            last, cpu0, wall0 = totals, cpu, wall
            self._post("progress", report)

    def _totals(self) -> dict[str, int]:
        updates = bytes_in = bytes_out = sample_updates = spec_updates = spec_bytes_in = 0
        for b in self.bots:
            if b.kind == "spectator":
                spec_updates += b.updates
                spec_bytes_in += b.bytes_in
                continue
            updates += b.updates
            bytes_in += b.bytes_in
            bytes_out += b.bytes_out
            if b.sampled:
                sample_updates += b.updates
        return {"updates": updates, "bytes_in": bytes_in, "bytes_out": bytes_out,
                "sample_updates": sample_updates, "spectator_updates": spec_updates,
                "spectator_bytes_in": spec_bytes_in}

    def _final(self) -> dict[str, Any]:
        window = time.monotonic() - self.mark_at if self.in_window else 0.0
        if self.in_window:
            self.window_lat.extend(self.shared.latencies[self.win_offset:])
        clients = []
        for b in self.bots:
            start = self.mark.get(b.index)
            if start is None:
                continue  # joined after the window opened
            clients.append((b.index, b.sampled, b.updates - start[0], b.bytes_in - start[1],
                            b.bytes_out - start[2], b.kind))
        sampled = [b for b in self.bots if isinstance(b, SampledBot)]
        return {
            "worker": self.plan.index,
            "window_s": window,
            "clients": clients,
            "latencies": self.window_lat.tobytes(),
            "joined": sum(1 for b in self.bots if b.kind != "spectator"),
            "spectators_joined": sum(1 for b in self.bots if b.kind == "spectator"),
            "failures": dict(self.failures),
            "disconnects": dict(self.disconnects),
            "server_errors": sum(b.errors for b in self.bots),
            "sample": {
                "bots": len(sampled),
                "replica_errors": sum(b.replica_errors for b in sampled),
                "mismatches": sum(b.mismatches for b in sampled),
                "checked": sum(b.checked for b in sampled),
                "delta_bytes": sum(b.delta_bytes for b in sampled),
                "moved": sum(b.moved for b in sampled),
            },
        }

    async def _leave_all(self) -> None:
        for b in self.bots:
            if not b.closed:
                b.leave()
        if self.open > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.all_closed.wait(), 2.0)
        for b in self.bots:
            if not b.closed:
                b.abort()
        await asyncio.sleep(0)


class MatchmakeError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


async def _matchmake(session: aiohttp.ClientSession, base: str, body: dict[str, Any]
                     ) -> dict[str, Any]:
    async with session.post(f"{base}/matchmake", json=body,
                            timeout=aiohttp.ClientTimeout(total=10)) as resp:
        try:
            data = await resp.json(content_type=None)
        except ValueError:
            raise MatchmakeError(f"http_{resp.status}") from None
        if resp.status != 200:
            raise MatchmakeError(str(data.get("error", f"http_{resp.status}")))
        return data
