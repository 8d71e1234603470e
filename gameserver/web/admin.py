"""The live monitor (``/monitor``) and the admin JSON API under ``/admin/``.

Both exist only when ``--admin-token`` is set; without one every path here
is a 404. Every admin call needs ``Authorization: Bearer <token>`` (401
otherwise). The token is compared in constant time and never logged.

- ``GET /admin/rooms``: every room, private ones included, with live figures
- ``GET /admin/rooms/{id}``: one room, its players and its state
- ``POST /admin/rooms/{id}/kick`` ``{"player_id": N, "reason": "..."}``: close 4003
- ``POST /admin/rooms/{id}/dispose``: close the room, players get 4002
- ``POST /admin/drain``: stop taking players (``/readyz`` 503) but let games finish
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web

from gameserver.core import codec
from gameserver.host import recorder
from gameserver.host.room_host import RoomHost
from gameserver.web import health
from gameserver.web.edge import error_response, parse_json, read_body
from gameserver.web.keys import MANAGER, SETTINGS

log = logging.getLogger("gameserver.admin")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_ENTITIES = 2000  # entities shown in one room's state; more are counted, not listed
RATE_WINDOW = 0.5  # seconds: the shortest interval a rate is measured over
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
_API_HEADERS = {"Cache-Control": "no-store"}
# Outside the static directory: served only at /monitor, with the headers above.
PAGE = Path(__file__).with_name("monitor.html")


class _Sample:
    """The last reading of a room's counters, for rates measured between polls."""

    __slots__ = ("bytes", "bytes_rate", "created_at", "tick_rate", "ticks", "when")

    def __init__(self, when: float, ticks: int, sent: int, created_at: float) -> None:
        self.when = when
        self.ticks = ticks
        self.bytes = sent
        self.tick_rate: float | None = None
        self.bytes_rate: float | None = None
        self.created_at = created_at


class Throttle:
    """Wrong admin tokens per address: after ``failures`` within ``window`` seconds, that
    address is refused (429) for ``block`` seconds, the right token included."""

    def __init__(self, failures: int = 20, window: float = 60.0, block: float = 60.0,
                 max_addresses: int = 10_000) -> None:
        self.failures, self.window, self.block = failures, window, block
        self.max_addresses = max_addresses
        self._seen: dict[str, list[float]] = {}  # address: [failures, since, blocked until]

    def retry_after(self, address: str, now: float) -> float:
        """Seconds ``address`` must still wait; 0 when it may try."""
        entry = self._seen.get(address)
        return max(0.0, entry[2] - now) if entry else 0.0

    def failed(self, address: str, now: float) -> None:
        entry = self._seen.get(address)
        if entry is None or now - entry[1] > self.window:
            if len(self._seen) >= self.max_addresses:  # bounded: forget the oldest address
                del self._seen[next(iter(self._seen))]
            entry = self._seen[address] = [0, now, 0.0]
        entry[0] += 1
        if entry[0] >= self.failures:
            log.warning("%d wrong admin tokens from %s: refused for %.0f s",
                        entry[0], address, self.block)
            entry[:] = [0, now, now + self.block]


class Monitor:
    """The admin API's state: the token, and per-room samples for live rates."""

    def __init__(self, token: str, page: Path) -> None:
        self._token = token.encode()
        self.page = page
        self.samples: dict[str, _Sample] = {}
        self.throttle = Throttle()

    def __repr__(self) -> str:  # never show the token
        return "Monitor(token=<hidden>)"

    def authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        given = given.strip()
        if scheme.lower() != "bearer" or not given.isascii():  # header bytes may be anything
            return False
        return hmac.compare_digest(given.encode(), self._token)


MONITOR = web.AppKey("monitor", Monitor)


def setup(app: web.Application, token: str) -> None:
    """Add ``/monitor`` and ``/admin/...`` if ``token`` is set; otherwise add nothing."""
    if not token:
        return
    app[MONITOR] = Monitor(token, PAGE)
    app.on_startup.append(_announce)
    app.router.add_get("/monitor", monitor_page)
    app.router.add_get("/admin/rooms", _guard(list_rooms))
    app.router.add_get("/admin/rooms/{room_id}", _guard(room_detail))
    app.router.add_post("/admin/rooms/{room_id}/kick", _guard(kick))
    app.router.add_post("/admin/rooms/{room_id}/dispose", _guard(dispose))
    app.router.add_post("/admin/drain", _guard(drain))
    app.router.add_get("/admin/recordings", _guard(list_recordings))
    app.router.add_get("/admin/recordings/{name}", _guard(download_recording))


async def _announce(_: web.Application) -> None:
    log.info("the monitor is at /monitor and the admin API at /admin/ (admin token set)")


async def monitor_page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(request.app[MONITOR].page, headers=_PAGE_HEADERS)


def _guard(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        monitor, peer, now = request.app[MONITOR], request.remote or "", time.monotonic()
        wait = monitor.throttle.retry_after(peer, now)
        if wait > 0:
            return _error("too_many_attempts", "too many wrong admin tokens from this "
                          "address; try again later", 429,
                          {"Retry-After": str(math.ceil(wait))})
        if not monitor.authorized(request):
            if request.headers.get("Authorization", "")[:7].lower() == "bearer ":
                monitor.throttle.failed(peer, now)  # a guess at the token
            return _error("unauthorized",
                          "this call needs the admin token: Authorization: Bearer <token>", 401,
                          {"WWW-Authenticate": 'Bearer realm="gameserver admin"'})
        return await handler(request)
    guarded.__name__ = handler.__name__
    return guarded


def _error(code: str, message: str, status: int, headers: dict[str, str] | None = None
           ) -> web.Response:
    return error_response(status, code, message, headers={**_API_HEADERS, **(headers or {})})


def _json(data: Any) -> web.Response:
    return web.json_response(data, headers=_API_HEADERS,
                             dumps=partial(json.dumps, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return value.hex()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return repr(value)


# -- reading rooms ---------------------------------------------------------------------


async def _row(request: web.Request, room_host: RoomHost, now: float) -> dict[str, Any]:
    """One room's line in the monitor: identity, load, and rates since the last poll."""
    monitor = request.app[MONITOR]
    room, stats = room_host.room, room_host.stats
    sent = room_host.broadcaster.stats.bytes_sent
    sample = monitor.samples.get(room.room_id)
    if sample is None:
        listing = await request.app[MANAGER].directory.get(room.room_id)
        created = listing.created_at if listing is not None else time.time()
        sample = monitor.samples[room.room_id] = _Sample(now, stats.count, sent, created)
        age = room_host.clock() - room_host.started_at if room_host.started_at else 0.0
        if age > 0.2:  # a first figure: the average over the room's life so far
            sample.tick_rate = stats.count / age
            sample.bytes_rate = sent / age
    elif now - sample.when >= RATE_WINDOW:
        span = now - sample.when
        sample.tick_rate = (stats.count - sample.ticks) / span
        sample.bytes_rate = (sent - sample.bytes) / span
        sample.when, sample.ticks, sample.bytes = now, stats.count, sent
    return {
        "room_id": room.room_id,
        "game": room.game,
        "players": len(room_host.connections),
        "spectators": len(room_host.spectators),
        "reconnecting": len(room_host.dropped),
        "max_players": room.max_players,
        "private": room.private,
        "locked": room.locked,
        "metadata": room.metadata,
        "tick": room.tick,
        "tick_rate": room.rate,
        "achieved_rate": None if sample.tick_rate is None else round(sample.tick_rate, 2),
        "tick_p50_ms": round(stats.percentile(50) * 1000, 3),
        "tick_p99_ms": round(stats.percentile(99) * 1000, 3),
        "tick_overruns": stats.overruns,
        "bytes_per_s": None if sample.bytes_rate is None else round(sample.bytes_rate),
        "bytes_sent": sent,
        "state_bytes": len(room_host.engine.snapshot_tail()),
        "entities": len(room.world.entities),
        "created_at": sample.created_at,
    }


async def list_rooms(request: web.Request) -> web.Response:
    manager, monitor = request.app[MANAGER], request.app[MONITOR]
    now = time.monotonic()
    room_hosts = sorted(manager.room_hosts.values(), key=lambda r: r.started_at)
    for gone in monitor.samples.keys() - manager.room_hosts.keys():
        del monitor.samples[gone]
    rooms = [await _row(request, r, now) for r in room_hosts if not r.closed]
    return _json({"rooms": rooms, "players": sum(r["players"] for r in rooms),
                  "accepting": manager.accepting, "time": time.time()})


def _room_host(request: web.Request) -> RoomHost | None:
    room_host = request.app[MANAGER].room_hosts.get(request.match_info["room_id"])
    return None if room_host is None or room_host.closed else room_host


def _no_room(request: web.Request) -> web.Response:
    return _error("no_such_room", f"no room {request.match_info['room_id']!r}", 404)


async def room_detail(request: web.Request) -> web.Response:
    room_host = _room_host(request)
    if room_host is None:
        return _no_room(request)
    room = room_host.room
    players = []
    for seat in room_host.engine.seats.values():
        player = seat.player
        conn = room_host.connections.get(player.id)
        players.append({"id": player.id, "name": player.name, "connected": conn is not None,
                        "behind": conn is not None and conn.behind_since is not None,
                        "ack": player.ack, "pending_inputs": len(seat.inputs)})
    entities: dict[str, Any] = {}
    for eid, entity in room.world.entities.items():
        if len(entities) >= MAX_ENTITIES:
            break
        entities[str(eid)] = {"type": type(entity).__name__,
                              **{f: getattr(entity, f) for f in entity._fields}}
    return _json({
        **await _row(request, room_host, time.monotonic()),
        "players": players,
        "options": room.options,
        "state": {"tick": room.tick, "entity_count": len(room.world.entities),
                  "truncated": len(room.world.entities) > len(entities),
                  "entities": entities},
    })


async def kick(request: web.Request) -> web.Response:
    room_host = _room_host(request)
    if room_host is None:
        return _no_room(request)
    body = parse_json(await read_body(request), {})
    if not isinstance(body, dict):
        return _error("bad_request", "the body must be a JSON object", 400)
    player_id, reason = body.get("player_id"), body.get("reason", "kicked by an administrator")
    if type(player_id) is not int:
        return _error("bad_request", "'player_id' must be an integer", 400)
    if not isinstance(reason, str) or len(reason) > 120:
        return _error("bad_request", "'reason' must be a string of at most 120 characters", 400)
    player = room_host.room.players.get(player_id)
    if player is None:
        return _error("no_such_player", f"no player {player_id} in this room", 404)
    log.info("admin kicked player %s from room %s: %s", player_id, room_host.room_id, reason,
             extra={"room_id": room_host.room_id, "player_id": player_id})
    room_host.room.kick(player, reason or "kicked")
    return _json({"kicked": player_id, "room_id": room_host.room_id})


async def dispose(request: web.Request) -> web.Response:
    room_host = _room_host(request)
    if room_host is None:
        return _no_room(request)
    log.info("admin disposed room %s", room_host.room_id, extra={"room_id": room_host.room_id})
    room_host.room.locked = True
    room_host.close(codec.CLOSE_ROOM_CLOSED, "room disposed by an administrator")
    return _json({"disposed": room_host.room_id})


async def drain(request: web.Request) -> web.Response:
    """Start draining without stopping: games in progress play on, new players go elsewhere.

    For a graceful scale-down: drain, wait for ``gameserver_players`` to reach 0,
    then send SIGTERM.
    """
    app = request.app
    health.set_draining(app)
    if app[SETTINGS].redis:  # a cluster node (app.py set it up): imported only then
        from gameserver.cluster.node import CLUSTER
        cluster = app.get(CLUSTER)
        if cluster is not None:
            await cluster.drain()
    log.info("admin started a drain")
    room_hosts = app[MANAGER].room_hosts.values()
    return _json({"draining": True, "rooms": len(room_hosts),
                  "players": sum(len(r.room.players) for r in room_hosts)})


# -- recordings (--record) ---------------------------------------------------------------


async def list_recordings(request: web.Request) -> web.Response:
    """``GET /admin/recordings``: the files in ``--record``, newest first."""
    record = request.app[MANAGER].record
    if record is None:
        return _json({"recording": False, "recordings": []})
    found = await asyncio.get_running_loop().run_in_executor(
        None, recorder.list_recordings, record.directory)
    return _json({"recording": True, "recordings": found})


async def download_recording(request: web.Request) -> web.StreamResponse:
    """``GET /admin/recordings/NAME``: one file, as it is on disk (a part still being
    written reads as far as it goes: the format is a stream)."""
    record = request.app[MANAGER].record
    name = request.match_info["name"]
    # A bare file name of ours: never a path.
    if record is None or "/" in name or "\\" in name or name.startswith(".") or \
            not name.endswith((recorder.SUFFIX, recorder.SUFFIX + ".gz")):
        return _error("no_such_recording", "no recording of that name", 404)
    path = record.directory / name
    if not path.is_file():
        return _error("no_such_recording", "no recording of that name", 404)
    return web.FileResponse(path, headers={
        **_API_HEADERS, "Content-Type": "application/octet-stream",
        "Content-Disposition": f'attachment; filename="{name}"'})
