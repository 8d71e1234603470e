"""Many processes and machines as one server, through Redis (``--redis URL``).

Each process is a *node*. It keeps its rooms' state in memory as always and
shares the room directory (:class:`RedisDirectory`: rooms, seats,
reservations) with every other node on the same Redis and prefix. On top of
that this module adds:

- **Presence.** ``P:node:ID`` holds the node's public URL, players, rooms and
  draining flag, rewritten every ``node_ttl / 3`` seconds with a TTL of
  ``node_ttl``. A node that dies stops refreshing it; once it expires (at most
  ``node_ttl`` after the death) the node's rooms leave every listing and refuse
  reservations, and the next sweep of any node (every ``node_ttl / 3``) deletes
  them.
- **Placement.** A new room goes to the live, non-draining node with the fewest
  seats (players plus pending reservations, counted atomically by the
  directory's scripts). If that is another node, this one asks it to create
  the room with ``POST /cluster/rooms`` (guarded by a random cluster token kept
  in Redis), then reserves the seat through the directory. The reservation's
  ``ws_url`` points at the hosting node, so game traffic never takes a hop.
- **Draining.** On shutdown the node marks itself draining in Redis before
  anything else: no node sends it new rooms, its rooms are listed as locked,
  and reservations for them are refused. Once its rooms have closed it
  deletes its presence and anything left of its rooms.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import random
import secrets
import socket
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from .config import ConfigError, Settings
from .directory import RoomListing
from .edge import parse_json, read_body
from .keys import MANAGER, SETTINGS
from .redis_directory import RedisDirectory
from .rooms import MatchmakingError, RoomManager

log = logging.getLogger("gameserver.cluster")

CREATE_TIMEOUT = 3.0  # seconds another node has to create a room for us
MAX_BODY = 4096


class Cluster:
    """This node's membership: presence, placement of new rooms, node URLs."""

    def __init__(self, settings: Settings, manager: RoomManager, redis: Redis) -> None:
        self.settings = settings
        self.manager = manager
        self.redis = redis
        self.directory = RedisDirectory(redis, settings.cluster_prefix)
        self.node = f"{socket.gethostname()[:24]}-{os.getpid()}-{secrets.token_hex(3)}"
        self.url = ""  # this node's public base URL, once announced
        self.token = ""  # the cluster token, shared through Redis; never logged
        self.draining = False
        self._urls: dict[str, str] = {}
        self._session: aiohttp.ClientSession | None = None
        self._beat: asyncio.Task[None] | None = None
        self._announced = asyncio.Event()

    def key(self, *parts: str) -> str:
        return self.directory.key(*parts)

    # -- lifecycle -------------------------------------------------------------------

    async def connect(self) -> None:
        try:
            await self.redis.ping()
        except (RedisError, OSError) as exc:
            where = urlsplit(self.settings.redis)
            raise ConfigError(f"--redis: cannot reach Redis at {where.hostname or where.path}"
                              f"{':' + str(where.port) if where.port else ''}: {exc}") from None
        await self.redis.set(self.key("cluster-token"), secrets.token_urlsafe(32), nx=True)
        token = await self.redis.get(self.key("cluster-token"))
        self.token = token.decode() if isinstance(token, bytes) else str(token)
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=CREATE_TIMEOUT))

    async def announce(self, url: str) -> None:
        """Register this node under ``url`` and start the heartbeat."""
        self.url = url.rstrip("/")
        self._urls[self.node] = self.url
        await self.beat()
        self._announced.set()
        self._beat = asyncio.get_running_loop().create_task(self._keep_beating(),
                                                            name="cluster:heartbeat")
        log.info("node %s joined the cluster as %s", self.node, self.url)

    async def drain(self) -> None:
        """Take no new rooms, cluster-wide, from now on."""
        if self.draining:
            return
        self.draining = True
        with contextlib.suppress(RedisError, OSError):
            if await self.redis.exists(self.key("node", self.node)):
                await self.redis.hset(self.key("node", self.node), "draining", "1")
            log.info("node %s is draining: no new rooms are placed here", self.node)

    async def leave(self) -> None:
        """Stop the heartbeat and delete this node and whatever is left of its rooms."""
        if self._beat is not None:
            self._beat.cancel()
            await asyncio.wait({self._beat}, timeout=2)  # bounded: see RedisDirectory._run
        with contextlib.suppress(RedisError, OSError):
            await self.directory.drop_node(self.node, force=True)
        if self._session is not None:
            await self._session.close()
        with contextlib.suppress(RedisError, OSError):
            await self.redis.aclose()

    # -- presence --------------------------------------------------------------------

    async def beat(self) -> None:
        """Refresh this node's presence; re-list its rooms if the presence had lapsed."""
        runtimes = list(self.manager.runtimes.values())
        key = self.key("node", self.node)
        ttl_ms = max(1, round(self.settings.node_ttl * 1000))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.exists(key)
            pipe.hset(key, mapping={
                "url": self.url, "draining": int(self.draining), "rooms": len(runtimes),
                "players": sum(len(r.connections) for r in runtimes), "pid": os.getpid()})
            pipe.pexpire(key, ttl_ms)
            pipe.sadd(self.key("nodes"), self.node)
            pipe.zadd(self.key("load"), {self.node: 0}, nx=True)
            existed = (await pipe.execute())[0]
        if not existed and self._announced.is_set():
            log.error("node %s: its presence lapsed (a stall over --node-ttl?); listing its "
                      "%d rooms again", self.node, len(runtimes))
            for r in runtimes:
                room = r.room
                await self.directory.add(RoomListing(
                    r.room_id, room.game, room.max_players, private=room.private,
                    locked=room.locked, metadata=dict(room.metadata),
                    players=len(room.players), node=self.node))

    async def sweep(self) -> None:
        """Delete the rooms of nodes whose presence has expired."""
        nodes = [n.decode() if isinstance(n, bytes) else n
                 for n in await self.redis.smembers(self.key("nodes"))]
        if not nodes:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for n in nodes:
                pipe.exists(self.key("node", n))
            alive = await pipe.execute()
        for n, up in zip(nodes, alive, strict=True):
            if not up:
                dropped = await self.directory.drop_node(n)
                if dropped >= 0:
                    self._urls.pop(n, None)
                    log.warning("node %s is gone (no heartbeat for %.0f s); dropped its %d "
                                "rooms", n, self.settings.node_ttl, dropped)

    async def _keep_beating(self) -> None:
        interval = self.settings.node_ttl / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self.beat()
                await self.sweep()
            except (RedisError, OSError) as exc:
                log.error("cluster heartbeat failed: %s", exc)
            except Exception:
                log.exception("cluster heartbeat failed")

    # -- placement (rooms.Placement) -----------------------------------------------------

    async def pick_node(self) -> str:
        candidates = await self.directory.least_loaded()
        if not candidates or self.node in candidates:
            return self.node
        return random.choice(candidates)

    async def node_url(self, node: str) -> str:
        url = self._urls.get(node)
        if url is None:
            raw = await self.redis.hget(self.key("node", node), "url")
            url = (raw.decode() if isinstance(raw, bytes) else raw) or ""
            if url:
                self._urls[node] = url
        return url

    async def create_remote(self, node: str, game: str, private: bool,
                            options: dict[str, Any]) -> str:
        url = await self.node_url(node)
        if not url or self._session is None:
            raise MatchmakingError("node_gone", f"node {node} is gone", 503)
        async with self._session.post(
                f"{url}/cluster/rooms", json={"game": game, "private": private,
                                              "options": options},
                headers={"Authorization": f"Bearer {self.token}"}) as resp:
            body = await resp.json(content_type=None)
            if resp.status != 200 or not isinstance(body, dict):
                raise MatchmakingError(str(body.get("error", "create_failed")
                                           if isinstance(body, dict) else "create_failed"),
                                       f"node {node} answered {resp.status}", resp.status)
            return str(body["room_id"])


CLUSTER = web.AppKey("cluster", Cluster)


def setup(app: web.Application) -> None:
    """Make this app a cluster node: the Redis directory, presence, placement, drain."""
    settings, manager = app[SETTINGS], app[MANAGER]
    cluster = Cluster(settings, manager, Redis.from_url(settings.redis))
    app[CLUSTER] = cluster
    manager.directory = cluster.directory
    manager.node = cluster.node
    manager.placement = cluster
    app.router.add_post("/cluster/rooms", create_room)
    # First in, so last out: Redis stays connected until the rooms have left it.
    app.cleanup_ctx.insert(0, _lifecycle)
    # First on shutdown: draining in Redis before players are told and rooms close.
    app.on_shutdown.insert(0, _drain)


async def announce(app: web.Application, host: str, port: int) -> None:
    """Called once the server listens: register the node under its public URL."""
    cluster = app.get(CLUSTER)
    if cluster is None:
        return
    settings = app[SETTINGS]
    if settings.public_url:
        url = settings.public_url.replace("{port}", str(port))
    else:
        url = f"http://{host}:{port}"
        if settings.host in ("0.0.0.0", "::"):
            log.warning("--host %s without --public-url: other nodes send players to %s; "
                        "set --public-url to an address they can reach", settings.host, url)
    await cluster.announce(url)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    cluster = app[CLUSTER]
    await cluster.connect()
    yield
    await cluster.leave()


async def _drain(app: web.Application) -> None:
    await app[CLUSTER].drain()


async def create_room(request: web.Request) -> web.Response:
    """``POST /cluster/rooms``: another node's matchmaker places a room here."""
    cluster = request.app[CLUSTER]
    given = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if (not cluster.token or not given.isascii()  # header bytes may be anything
            or not hmac.compare_digest(given.encode(), cluster.token.encode())):
        return web.json_response({"error": "forbidden", "message": "cluster token required"},
                                 status=403)
    try:
        body = parse_json(await read_body(request, MAX_BODY))  # the whole body (edge.py)
        game, private, options = body["game"], bool(body.get("private")), body.get("options")
        if not isinstance(game, str) or not isinstance(options, dict):
            raise ValueError
    except (ValueError, KeyError, TypeError):  # HttpError (413, 408, bad JSON) is answered as is
        return web.json_response({"error": "bad_request", "message": "bad body"}, status=400)
    if cluster.draining:
        return web.json_response({"error": "server_draining", "message": "draining"},
                                 status=503)
    try:
        room_id = await request.app[MANAGER].create_room(game, private, options)
    except MatchmakingError as exc:
        return web.json_response({"error": exc.code, "message": exc.message},
                                 status=exc.status)
    return web.json_response({"room_id": room_id, "node": cluster.node})
