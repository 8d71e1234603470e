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

Faults (issue 11):

- **Seats converge.** Every presence beat the node reconciles what it hosts into
  Redis: each room's seats (the tokens its players redeemed), lock and
  metadata, with a compare-and-set that loses to any later write of its own
  (:meth:`RedisDirectory.reconcile`); rooms Redis lost are listed again, rooms
  it keeps for this node that the node no longer hosts are dropped, and the
  node's load is recounted. A release that failed is retried that way.
- **Redis down.** Calls are bounded (``REDIS_TIMEOUT``) and fail as
  ``directory_unavailable`` (503); ``/readyz`` answers 503 until a call succeeds
  again; one warning when the outage is noticed, one when it ends.
- **The cluster token survives a data loss**: each presence beat re-asserts the
  token the node knows (``SET NX``) and adopts whatever Redis holds then, so
  after a ``FLUSHALL`` or an empty restart every node ends on one token within
  a presence beat.
- **Unreachable nodes.** A node that fails a placement, or does not answer
  a short probe before players are sent to it, is skipped for placement and
  its rooms are hidden from this node's listings until it beats again.
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
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gameserver.cluster.redis_directory import RedisDirectory
from gameserver.config import ConfigError, Settings
from gameserver.core.directory import RoomListing
from gameserver.host.matchmaker import DirectoryUnavailable, MatchmakingError, RoomManager
from gameserver.host.room_host import RoomHost
from gameserver.web import health
from gameserver.web.edge import HttpError, error_response, parse_json, read_body
from gameserver.web.keys import MANAGER, SETTINGS

log = logging.getLogger("gameserver.cluster")

# Seconds: short, so that a frozen Redis costs a request about this long, not minutes.
# A node's own calls are quick scripts; anything slower means Redis is in trouble.
REDIS_TIMEOUT = 0.8
CREATE_TIMEOUT = 1.0  # seconds another node has to create a room for us
PROBE_TIMEOUT = 0.5  # seconds a node has to answer /healthz before players go there
PROBE_FRESH = 1.0  # seconds a successful probe stands for
RETRY_INTERVAL = 0.5  # seconds between presence beats while Redis is unreachable
FLAP_QUIET = 10.0  # seconds after a recovery in which a new failure is not logged again
MAX_BODY = 4096


def connect_redis(url: str) -> Redis:
    """A Redis client whose every call is bounded: short timeouts, no silent retries."""
    return Redis.from_url(url, socket_timeout=REDIS_TIMEOUT,
                          socket_connect_timeout=REDIS_TIMEOUT, retry=Retry(NoBackoff(), 0))


class Cluster:
    """This node's membership: presence, placement of new rooms, node URLs."""

    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.settings = settings
        self.manager: RoomManager  # the one built on this node's directory (setup())
        self.redis = redis
        self.node = f"{socket.gethostname()[:24]}-{os.getpid()}-{secrets.token_hex(3)}"
        self.directory = RedisDirectory(redis, settings.cluster_prefix, self.node)
        self.directory.on_status = self._status
        self.available = True  # False from a failed Redis call until one succeeds
        self._down_since = 0.0
        self._up_since = float("-inf")  # loop time: when Redis last became reachable
        self._logged_down = False
        self._beats = 0  # presence beats sent: other nodes' exclusions of this one end with one
        self._skip: dict[str, str] = {}  # unreachable node -> its presence beat count then
        self._probed: dict[str, float] = {}  # node -> when it last answered a probe
        self._probes: dict[str, asyncio.Task[bool]] = {}
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
        self.token = secrets.token_urlsafe(32)
        await self._assert_token()
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=CREATE_TIMEOUT))

    async def _assert_token(self) -> None:
        """Put the token this node knows in Redis unless one is there; adopt the one
        that is. After Redis lost its data, the first node to beat sets the token
        again and the others adopt it, so every node ends on the same one."""
        key = self.key("cluster-token")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(key, self.token, nx=True)
            pipe.get(key)
            token = (await self.directory.call(pipe.execute()))[1]
        self.token = token.decode() if isinstance(token, bytes) else str(token)

    def _status(self, ok: bool, exc: BaseException | None) -> None:
        """Every Redis call's outcome: one warning when an outage starts, one when it ends."""
        if ok == self.available:
            return
        now = asyncio.get_running_loop().time()
        self.available = ok
        if ok:
            self._up_since = now
            if self._logged_down:
                log.warning("Redis is reachable again after %.1f s; matchmaking resumes",
                            now - self._down_since)
            return
        self._down_since = now
        # A Redis that comes and goes is one outage in the log, not one per flap.
        self._logged_down = now - self._up_since >= FLAP_QUIET
        if self._logged_down:
            log.warning("Redis is unreachable (%s): matchmaking answers 503 "
                        "directory_unavailable and /readyz 503 until it is back; running "
                        "rooms keep playing", exc or type(exc).__name__)

    def problem(self) -> str | None:
        """Why this node is not ready (health.py), if Redis is why."""
        return None if self.available else "directory_unavailable"

    async def announce(self, url: str) -> None:
        """Register this node under ``url`` and start the presence beat."""
        self.url = url.rstrip("/")
        self._urls[self.node] = self.url
        await self.beat()
        self._announced.set()
        self._beat = asyncio.get_running_loop().create_task(self._keep_beating(),
                                                            name="cluster:presence beat")
        log.info("node %s joined the cluster as %s", self.node, self.url)

    async def drain(self) -> None:
        """Take no new rooms, cluster-wide, from now on."""
        if self.draining:
            return
        self.draining = True
        with contextlib.suppress(RedisError, OSError, DirectoryUnavailable):
            if await self.redis.exists(self.key("node", self.node)):
                await self.redis.hset(self.key("node", self.node), "draining", "1")
            log.info("node %s is draining: no new rooms are placed here", self.node)

    async def leave(self) -> None:
        """Stop the presence beat and delete this node and whatever is left of its rooms."""
        if self._beat is not None:
            self._beat.cancel()
            await asyncio.wait({self._beat}, timeout=2)  # bounded: see RedisDirectory.call
        await self.directory.settle(REDIS_TIMEOUT)
        with contextlib.suppress(RedisError, OSError, DirectoryUnavailable):
            await self.directory.drop_node(self.node, force=True)
        if self._session is not None:
            await self._session.close()
        with contextlib.suppress(RedisError, OSError):
            await self.redis.aclose()

    # -- presence --------------------------------------------------------------------

    async def beat(self) -> None:
        """Refresh this node's presence and the cluster token; then reconcile its rooms."""
        room_hosts = list(self.manager.room_hosts.values())
        key = self.key("node", self.node)
        ttl_ms = max(1, round(self.settings.node_ttl * 1000))
        self._beats += 1
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.exists(key)
            pipe.hset(key, mapping={
                "url": self.url, "draining": int(self.draining), "rooms": len(room_hosts),
                "players": sum(len(r.connections) for r in room_hosts), "pid": os.getpid(),
                "beat": self._beats})
            pipe.pexpire(key, ttl_ms)
            pipe.sadd(self.key("nodes"), self.node)
            pipe.zadd(self.key("load"), {self.node: 0}, nx=True)
            existed = (await self.directory.call(pipe.execute()))[0]
        await self._assert_token()
        if not existed and self._announced.is_set():
            log.warning("node %s: its presence lapsed (Redis lost it, or a stall over "
                        "--node-ttl); listing its %d rooms again", self.node, len(room_hosts))
        if self._announced.is_set():
            await self.reconcile()

    async def reconcile(self) -> None:
        """Make Redis show what this node hosts: each room's seats, lock and metadata;
        list again the rooms Redis lost; drop the ones it no longer hosts."""
        room_hosts = [r for r in self.manager.room_hosts.values() if not r.closed]
        # One snapshot, taken with no await in between: the node's state and the
        # number of its last write that this state is known to include.
        seq = self.directory.snapshot_seq()
        rooms = [(r.room_id, r.room.locked, dict(r.room.metadata),
                  self.manager.seated(r.room_id)) for r in room_hosts]
        gone = set(await self.directory.reconcile(seq, rooms))
        for r in room_hosts:
            if r.room_id in gone and not r.closed:  # listed again, with its seats
                await self.directory.add(self._listing(r), self.manager.seated(r.room_id))
        await self.directory.prune(seq, [r.room_id for r in room_hosts])

    def _listing(self, r: RoomHost) -> RoomListing:
        return self.manager.listing(r)

    async def prune_dead_nodes(self) -> None:
        """Delete the rooms of nodes whose presence has expired; end exclusions of nodes
        that beat again."""
        await self._recheck_skipped()
        if asyncio.get_running_loop().time() - self._up_since < self.settings.node_ttl:
            return  # just after an outage: the others have not had the time to beat
        nodes = [n.decode() if isinstance(n, bytes) else n
                 for n in await self.directory.call(self.redis.smembers(self.key("nodes")))]
        if not nodes:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for n in nodes:
                pipe.exists(self.key("node", n))
            alive = await self.directory.call(pipe.execute())
        for n, up in zip(nodes, alive, strict=True):
            if not up:
                dropped = await self.directory.drop_node(n)
                if dropped >= 0:
                    self._urls.pop(n, None)
                    self._probed.pop(n, None)
                    log.warning("node %s is gone (no presence beat for %.0f s); dropped its %d "
                                "rooms", n, self.settings.node_ttl, dropped)

    async def _keep_beating(self) -> None:
        interval = self.settings.node_ttl / 3
        while True:
            # While Redis is unreachable, try more often: readiness returns with it.
            await asyncio.sleep(interval if self.available else min(interval, RETRY_INTERVAL))
            try:
                await self.beat()
                await self.prune_dead_nodes()
            except DirectoryUnavailable:
                pass  # reported once per outage by _status
            except Exception:
                log.exception("cluster presence beat failed")

    # -- placement (rooms.Placement) -----------------------------------------------------

    async def pick_node(self) -> str:
        candidates = await self.directory.least_loaded(self._skip)
        if not candidates or self.node in candidates:
            return self.node
        return random.choice(candidates)

    async def _exclude(self, node: str, why: object) -> None:
        """Skip ``node`` for placement and hide its rooms until its next presence beat."""
        if node in self._skip:
            return
        beat = await self.directory.call(self.redis.hget(self.key("node", node), "beat"))
        self._skip[node] = beat.decode() if isinstance(beat, bytes) else str(beat or "")
        self.directory.hidden.add(node)
        self._probed.pop(node, None)
        log.warning("node %s failed a placement or a probe (%s): no rooms or players go "
                    "there from this node until it beats again", node, why)

    async def _recheck_skipped(self, nodes: list[str] | None = None) -> None:
        """End the exclusion of nodes that have beaten since (or are gone)."""
        for node in list(self._skip) if nodes is None else nodes:
            beat = self._skip.get(node)
            if beat is None:
                continue
            now = await self.directory.call(self.redis.hget(self.key("node", node), "beat"))
            if now is None or (now.decode() if isinstance(now, bytes) else str(now)) != beat:
                self._skip.pop(node, None)
                self.directory.hidden.discard(node)
                if now is not None:
                    log.warning("node %s beats again: it takes rooms again", node)

    async def reachable(self, node: str) -> bool:
        """Whether players can be sent to ``node``: it answered ``/healthz`` within
        PROBE_FRESH seconds, or does now within PROBE_TIMEOUT."""
        if node == self.node:
            return True
        if node in self._skip:
            await self._recheck_skipped([node])
            if node in self._skip:
                return False
        loop = asyncio.get_running_loop()
        if loop.time() - self._probed.get(node, -1e9) < PROBE_FRESH:
            return True
        probe = self._probes.get(node)
        if probe is None:  # one probe per node at a time, however many requests wait
            probe = self._probes[node] = loop.create_task(self._probe(node))
            probe.add_done_callback(lambda _: self._probes.pop(node, None))
        return await asyncio.shield(probe)

    async def _probe(self, node: str) -> bool:
        url = await self.node_url(node)
        if not url or self._session is None:
            return False
        try:
            async with self._session.get(f"{url}/healthz",
                                         timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT)):
                pass  # any answer will do: the process serves
        except (TimeoutError, aiohttp.ClientError) as exc:
            await self._exclude(node, exc or type(exc).__name__)
            return False
        self._probed[node] = asyncio.get_running_loop().time()
        return True

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
        try:
            async with self._session.post(
                    f"{url}/cluster/rooms", json={"game": game, "private": private,
                                                  "options": options},
                    headers={"Authorization": f"Bearer {self.token}"}) as resp:
                body = await resp.json(content_type=None)
                if resp.status != 200 or not isinstance(body, dict):
                    raise MatchmakingError(str(body.get("error", "create_failed")
                                               if isinstance(body, dict) else "create_failed"),
                                           f"node {node} answered {resp.status}", resp.status)
                self._probed[node] = asyncio.get_running_loop().time()
                return str(body["room_id"])
        except (TimeoutError, aiohttp.ClientError, ValueError, MatchmakingError) as exc:
            # At once: the next request must not wait for this node again.
            with contextlib.suppress(DirectoryUnavailable):
                await self._exclude(node, exc or type(exc).__name__)
            raise


CLUSTER = web.AppKey("cluster", Cluster)


def node_for(settings: Settings) -> Cluster:
    """This process's cluster membership, before the room manager is built on it."""
    return Cluster(settings, connect_redis(settings.redis))


def setup(app: web.Application, cluster: Cluster) -> None:
    """Make this app a cluster node: presence, remote room creation, readiness, drain.

    ``app[MANAGER]`` was built on ``cluster``'s directory, node name and placement."""
    cluster.manager = app[MANAGER]
    app[CLUSTER] = cluster
    app.middlewares.append(_directory_errors)
    app.on_startup.append(_readiness)
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


async def _readiness(app: web.Application) -> None:
    app[health.LIFECYCLE].checks.append(app[CLUSTER].problem)


@web.middleware
async def _directory_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Redis unreachable: a quick 503 ``directory_unavailable`` from any endpoint."""
    try:
        return await handler(request)
    except DirectoryUnavailable as exc:
        return HttpError(exc.code, exc.message, exc.status, {"Retry-After": "1"}).response()


async def create_room(request: web.Request) -> web.Response:
    """``POST /cluster/rooms``: another node's matchmaker places a room here."""
    cluster = request.app[CLUSTER]
    given = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if (not cluster.token or not given.isascii()  # header bytes may be anything
            or not hmac.compare_digest(given.encode(), cluster.token.encode())):
        return error_response(403, "forbidden", "cluster token required")
    try:
        body = parse_json(await read_body(request, MAX_BODY))  # the whole body (edge.py)
        game, private, options = body["game"], bool(body.get("private")), body.get("options")
        if not isinstance(game, str) or not isinstance(options, dict):
            raise ValueError
    except (ValueError, KeyError, TypeError):  # HttpError (413, 408, bad JSON) is answered as is
        return error_response(400, "bad_request", "bad body")
    if cluster.draining:
        return error_response(503, "server_draining", "draining")
    try:
        room_id = await request.app[MANAGER].create_room(game, private, options)
    except MatchmakingError as exc:
        return error_response(exc.status, exc.code, exc.message)
    return web.json_response({"room_id": room_id, "node": cluster.node})
