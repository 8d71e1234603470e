"""Prometheus metrics at ``GET /metrics``, read from the server's own counters at scrape time.

Nothing here runs on the hot path. Rooms already keep their tick statistics
(:class:`~gameserver.core.ticker.TickStats`, including a fixed-bucket duration
histogram) and send statistics (:class:`~gameserver.host.counters.SendStats`);
process-wide figures are plain ints on the manager's
:class:`~gameserver.host.counters.Counters`. A custom collector sums them by game
when Prometheus scrapes, adding the totals of rooms that have closed, so
counters only ever go up.

Every app has its own :class:`~prometheus_client.CollectorRegistry` (several
servers can live in one process, e.g. in tests), kept under ``keys.METRICS``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from gameserver.core.ticker import TICK_BUCKETS
from gameserver.host.counters import Counters, RoomTotals
from gameserver.host.matchmaker import RoomManager
from gameserver.web.keys import MANAGER, METRICS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Label values that exist from the start (value 0), so that rate() and alerts work
# before the first occurrence. Others appear when they first happen.
KNOWN_OUTCOMES = ("ok", "bad_request", "unknown_game", "no_such_room", "room_full",
                  "room_locked", "too_many_rooms", "too_many_reservations", "server_draining",
                  "create_failed", "rate_limited")
KNOWN_REJECTIONS = ("bad_msgpack", "bad_message", "unknown_kind", "bad_seq", "stale_seq",
                    "input_overflow", "invalid_input", "message_too_big", "text_frame",
                    "rate_limited", "message_rate_limited")
_CODE = re.compile(r"[a-z][a-z0-9_]{0,39}")
_BOUNDS = [repr(b) for b in TICK_BUCKETS] + ["+Inf"]
# Request key: this request became a WebSocket (a typed key where aiohttp has them).
_UPGRADED: Any = (web.RequestKey("gameserver_upgraded", bool) if hasattr(web, "RequestKey")
                  else "gameserver.web.metrics.upgraded")


class GameserverCollector(Collector):
    """Every ``gameserver_*`` metric, computed from the manager's rooms and counters."""

    def __init__(self, manager: RoomManager) -> None:
        self.manager = manager

    def describe(self) -> Iterator[Metric]:
        return self.collect()

    def collect(self) -> Iterator[Metric]:
        manager = self.manager
        counters: Counters = manager.counters
        games = sorted(set(manager.games) | set(counters.closed))
        totals = {g: counters.closed[g].copy() if g in counters.closed else RoomTotals()
                  for g in games}
        rooms = dict.fromkeys(games, 0)
        players = dict.fromkeys(games, 0)
        dropped = dict.fromkeys(games, 0)
        for room_host in manager.room_hosts.values():
            game = room_host.room.game
            totals.setdefault(game, RoomTotals()).add(room_host)
            rooms[game] = rooms.get(game, 0) + 1
            players[game] = players.get(game, 0) + len(room_host.connections)
            dropped[game] = dropped.get(game, 0) + len(room_host.dropped)
        games = sorted(totals)

        yield _gauge("gameserver_connections", "Open WebSocket connections.",
                     counters.connections)
        yield _counter("gameserver_connections_opened_total",
                       "WebSocket connections accepted (upgraded), including refused seats.",
                       counters.connections_opened)
        yield _gauge("gameserver_accepting_players",
                     "1 while the server accepts new players, 0 once it is draining.",
                     1 if manager.accepting else 0)
        yield _by("game", GaugeMetricFamily, "gameserver_rooms", "Rooms open.", rooms)
        yield _by("game", GaugeMetricFamily, "gameserver_players",
                  "Players connected to a room.", players)
        yield _by("game", GaugeMetricFamily, "gameserver_players_reconnecting",
                  "Players who dropped and whose seat waits for a reconnection.", dropped)
        yield _by("game", CounterMetricFamily, "gameserver_rooms_created_total",
                  "Rooms created.",
                  {g: totals[g].rooms_closed + rooms[g] for g in games})
        yield _by("game", CounterMetricFamily, "gameserver_room_crashes_total",
                  "Rooms closed because game code raised.",
                  {g: totals[g].crashes for g in games})
        yield _by("outcome", CounterMetricFamily, "gameserver_matchmake_requests_total",
                  "POST /matchmake requests, by outcome: ok or the error code.",
                  {**dict.fromkeys(KNOWN_OUTCOMES, 0), **counters.matchmake})

        hist = HistogramMetricFamily("gameserver_tick_duration_seconds",
                                     "Time a room's tick took: reading its sockets (a "
                                     "real-time room), inputs, update, encoding and sending.",
                                     labels=["game"])
        for g in games:
            t = totals[g]
            running, buckets = 0, []
            for bound, n in zip(_BOUNDS, t.ticks.buckets, strict=True):
                running += n
                buckets.append((bound, running))
            hist.add_metric([g], buckets, t.ticks.total)
        yield hist
        yield _by("game", CounterMetricFamily, "gameserver_tick_overruns_total",
                  "Ticks whose work took longer than the tick interval.",
                  {g: totals[g].ticks.overruns for g in games})
        yield _by("game", CounterMetricFamily, "gameserver_ticks_dropped_total",
                  "Ticks skipped after a stall (beyond --max-catch-up).",
                  {g: totals[g].dropped_ticks for g in games})

        sent = CounterMetricFamily("gameserver_updates_sent",
                                   "State updates written to players, by kind.",
                                   labels=["game", "kind"])
        for g in games:
            sent.add_metric([g, "delta"], totals[g].sent.deltas)
            sent.add_metric([g, "snapshot"], totals[g].sent.snapshots)
        yield sent
        yield _by("game", CounterMetricFamily, "gameserver_updates_skipped_total",
                  "Updates not sent to a player whose socket was behind (slow client).",
                  {g: totals[g].sent.skipped for g in games})
        yield _by("game", CounterMetricFamily, "gameserver_stalled_disconnects_total",
                  "Players disconnected for staying behind longer than --stall-timeout.",
                  {g: totals[g].sent.closed_stalled for g in games})
        yield _counter("gameserver_sent_bytes_total",
                       "Bytes of state updates written to WebSockets (frames included).",
                       sum(t.sent.bytes_sent for t in totals.values()))
        yield _counter("gameserver_received_bytes_total",
                       "Bytes of WebSocket data frames received from players.",
                       counters.received_bytes)
        yield _counter("gameserver_received_messages_total",
                       "WebSocket data frames received from players.",
                       counters.received_messages)
        yield _by("reason", CounterMetricFamily, "gameserver_rejected_inputs_total",
                  "Client messages refused with an ERROR, by its code.",
                  {**dict.fromkeys(KNOWN_REJECTIONS, 0), **counters.rejected})
        yield _counter("gameserver_reconnections_total",
                       "Dropped players who came back to their seat.", counters.reconnections)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _by(label: str, kind: type[GaugeMetricFamily] | type[CounterMetricFamily], name: str,
        doc: str, values: dict[str, int]) -> Metric:
    family = kind(name, doc, labels=[label])
    for key in sorted(values):
        family.add_metric([key], values[key])
    return family


# -- wiring --------------------------------------------------------------------------


def setup(app: web.Application) -> None:
    """A registry for this app, ``GET /metrics``, and the WebSocket upgrade count."""
    registry = CollectorRegistry()
    registry.register(GameserverCollector(app[MANAGER]))
    ProcessCollector(registry=registry)  # process_cpu_seconds_total, memory, open fds
    app[METRICS] = registry
    app.on_response_prepare.append(_count_upgrade)
    app.router.add_get("/metrics", metrics)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST,
                                            "Cache-Control": "no-store"})


async def _count_upgrade(request: web.Request, response: web.StreamResponse) -> None:
    if isinstance(response, web.WebSocketResponse) and not request.get(_UPGRADED):
        request[_UPGRADED] = True
        counters = request.app[MANAGER].counters
        counters.connections += 1
        counters.connections_opened += 1


def count_sockets(handler: Handler) -> Handler:
    """Wrap the ``/ws`` handler: an upgraded socket counts as open until the handler ends."""

    async def game_socket(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        finally:
            if request.get(_UPGRADED):
                request.app[MANAGER].counters.connections -= 1

    return game_socket


def count_matchmaking(handler: Handler) -> Handler:
    """Wrap ``POST /matchmake``: count each answer as ``ok`` or its error code."""

    async def matchmake(request: web.Request) -> web.StreamResponse:
        counters = request.app[MANAGER].counters
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            counters.matchmade(f"http_{exc.status}")
            raise
        except Exception:
            counters.matchmade("internal_error")
            raise
        counters.matchmade(outcome(response))
        return response

    return matchmake


def outcome(response: web.StreamResponse) -> str:
    """``ok`` for a 2xx answer, else the ``error`` code of its JSON body (``http_NNN``)."""
    if 200 <= response.status < 300:
        return "ok"
    if isinstance(response, web.Response) and isinstance(response.body, bytes):
        try:
            code = json.loads(response.body).get("error")
        except (ValueError, AttributeError):
            code = None
        if isinstance(code, str) and _CODE.fullmatch(code):
            return code
    return f"http_{response.status}"
