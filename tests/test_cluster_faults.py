"""A cluster through Redis faults (issue 11): a frozen Redis (SIGSTOP), a cut
connection, lost data (FLUSHALL), and dead or frozen nodes.

Each test runs its own redis-server (so that freezing it disturbs no other
test) and real node processes; a cuttable TCP proxy sits between the nodes and
Redis where a test cuts the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from .client import MatchmakeFailed, Player, matchmake
from .conftest import RedisServer, free_port
from .test_cluster import Node, netloc, start_node, stop

FOUR = {"max_players": 4}


# -- a private Redis, and a proxy that can cut it off -------------------------------------


class Proxy:
    """TCP between the nodes and Redis. ``mute()`` keeps requests flowing but drops
    the answers (a command runs, its caller never hears); ``cut()`` closes every
    connection and refuses new ones until ``restore()``."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self.muted = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port,
                                                  reuse_address=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                     ) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                       answers: bool) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    if not (answers and self.muted):
                        dst.write(data)
            dst.close()

        await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))
        self._writers -= {writer, up_writer}

    def mute(self) -> None:
        self.muted = True

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()
        self.muted = False

    async def restore(self) -> None:
        await self.start()


@pytest.fixture
async def proxy(redis_server: RedisServer) -> AsyncIterator[Proxy]:
    p = Proxy(redis_server.port)
    await p.start()
    yield p
    await p.cut()


@pytest.fixture
def prefix() -> str:
    return f"f{secrets.token_hex(4)}"


@pytest.fixture
async def nodes() -> AsyncIterator[list[Node]]:
    """Started by the test (their Redis URL and flags differ); killed afterwards."""
    started: list[Node] = []
    yield started
    for n in started:
        with contextlib.suppress(ProcessLookupError):
            n.proc.send_signal(signal.SIGCONT)
        await stop(n.proc)


async def start(nodes: list[Node], url: str, prefix: str, log: Path, *args: str) -> Node:
    node = await start_node(url, prefix, log, "--empty-room-grace", "1", *args)
    nodes.append(node)
    return node


# -- helpers -------------------------------------------------------------------------------


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with session.get(url) as resp:
        return resp.status, await resp.json(content_type=None)


async def listed(session: aiohttp.ClientSession, base: str, room_id: str) -> dict[str, Any]:
    """The room as ``GET /rooms`` shows it ({} if not listed)."""
    _, body = await get(session, f"{base}/rooms")
    return next((r for r in body["rooms"] if r["room_id"] == room_id), {})


async def players_on(session: aiohttp.ClientSession, node: Node) -> int:
    return int((await get(session, f"{node.base}/stats"))[1]["players"])


async def fill(session: aiohttp.ClientSession, via: list[Node], room_id: str,
               players: list[Player]) -> None:
    """Join ``room_id`` through the nodes in turn until it answers room_full."""
    for i in range(8):
        try:
            r = await matchmake(session, via[i % len(via)].base, mode="join",
                                room_id=room_id, name=f"late{i}")
        except MatchmakeFailed as exc:
            assert exc.body["error"] == "room_full", exc.body
            return
        with contextlib.suppress(ConnectionError):  # a refused seat is no over-fill
            players.append(await Player.connect(session, r["ws_url"]))
    raise AssertionError("the room took 8 more players")


async def eventually(check: Callable[[], Awaitable[bool]], within: float, what: str) -> float:
    """Poll ``check`` until it holds; the seconds it took."""
    began = time.monotonic()
    while not await check():
        assert time.monotonic() - began < within, f"{what}: not within {within} s"
        await asyncio.sleep(0.1)
    return time.monotonic() - began


async def timed(coro: Awaitable[Any]) -> tuple[float, Any]:
    began = time.monotonic()
    try:
        result = await asyncio.wait_for(coro, 5.0)  # no hang, whatever the fault
    except MatchmakeFailed as exc:
        result = exc
    return time.monotonic() - began, result


async def leave_all(players: list[Player]) -> None:
    for p in players:
        with contextlib.suppress(Exception):
            await p.ws.close()
    players.clear()


async def no_ghosts(session: aiohttp.ClientSession, a: Node, b: Node, room_id: str,
                    within: float) -> None:
    """Everyone has left: the room soon shows 0 players, takes a fresh player (no
    room_full for an empty room), and is disposed once that one leaves."""

    async def empty() -> bool:
        return (await listed(session, b.base, room_id)).get("players", 0) == 0

    await eventually(empty, within, "the emptied room still counts players")
    fresh = await Player.join(session, b.base, mode="join", room_id=room_id, name="fresh")
    assert fresh.room_id == room_id
    await fresh.ws.close()

    async def disposed() -> bool:
        return not await listed(session, b.base, room_id) and await players_on(session, a) == 0

    await eventually(disposed, within + 1.0, "the emptied room was not disposed")


# -- 6. seat counts converge after Redis faults ----------------------------------------------


async def test_a_frozen_redis_neither_overfills_nor_leaves_ghost_seats(
        redis_server: RedisServer, nodes: list[Node], prefix: str, tmp_path: Path) -> None:
    a = await start(nodes, redis_server.url, prefix, tmp_path / "a.log")
    b = await start(nodes, redis_server.url, prefix, tmp_path / "b.log")
    async with aiohttp.ClientSession() as session:
        made = await matchmake(session, a.base, mode="create", name="p0", options=FOUR)
        room_id = made["room_id"]
        assert netloc(made) == a.netloc
        players = [await Player.connect(session, made["ws_url"])]
        players.append(await Player.join(session, b.base, mode="join", room_id=room_id,
                                         name="p1"))
        players.append(await Player.join(session, b.base, mode="join", room_id=room_id,
                                         name="p2"))
        held = await matchmake(session, b.base, mode="join", room_id=room_id, name="p3")
        redis_server.freeze()
        try:
            # While frozen (over the nodes' --node-ttl of 2 s): one leaves at once, two
            # late, when the node's idle Redis connections are all taken by stuck calls;
            # and a held reservation tries to take its seat.
            await players.pop(0).ws.close()
            await asyncio.sleep(3.5)
            await players.pop(0).ws.close()
            await players.pop(0).ws.close()
            late = asyncio.ensure_future(Player.connect(session, held["ws_url"]))
            await asyncio.sleep(1.5)
        finally:
            redis_server.thaw()
        try:
            players.append(await late)
        except (ConnectionError, TimeoutError):  # refused during the freeze (1013): retry
            with contextlib.suppress(ConnectionError):  # used up by the redeem that failed
                players.append(await Player.connect(session, held["ws_url"]))
        await asyncio.sleep(1.5)  # a heartbeat or two after the thaw
        await fill(session, [a, b], room_id, players)
        assert await players_on(session, a) <= 4  # never over-filled
        assert await players_on(session, a) == len(players)

        async def counted() -> bool:
            return (await listed(session, b.base, room_id)).get("players") == len(players)

        await eventually(counted, 3.0, "Redis does not count the seated players")
        await leave_all(players)
        await no_ghosts(session, a, b, room_id, within=3.0)


async def test_an_answer_lost_then_a_cut_neither_overfills_nor_leaves_ghost_seats(
        proxy: Proxy, nodes: list[Node], prefix: str, tmp_path: Path) -> None:
    a = await start(nodes, proxy.url, prefix, tmp_path / "a.log")
    b = await start(nodes, proxy.url, prefix, tmp_path / "b.log")
    async with aiohttp.ClientSession() as session:
        made = await matchmake(session, a.base, mode="create", name="p0", options=FOUR)
        room_id = made["room_id"]
        players = [await Player.connect(session, made["ws_url"])]
        for i in range(1, 4):
            players.append(await Player.join(session, b.base, mode="join", room_id=room_id,
                                             name=f"p{i}"))
        lines_before = len((tmp_path / "a.log").read_text().splitlines())
        # Concurrent listings: A keeps idle Redis connections, so that a release goes
        # out at once on one of them.
        await asyncio.gather(*(get(session, f"{a.base}/rooms") for _ in range(8)))
        # The release of a leave reaches Redis, but its answer is lost; then Redis is
        # unreachable for 2 s (data kept) while two more leave.
        proxy.mute()
        await players[0].ws.close()
        await asyncio.sleep(0.3)
        await proxy.cut()
        await players[1].ws.close()
        await players[2].ws.close()
        del players[:3]
        await asyncio.sleep(2.0)
        await proxy.restore()
        await asyncio.sleep(1.5)  # a heartbeat or two
        await fill(session, [a, b], room_id, players)
        assert await players_on(session, a) == len(players) <= 4  # never over-filled
        assert len(players) == 4  # and no seat lost to a ghost

        async def counted() -> bool:
            return (await listed(session, b.base, room_id)).get("players") == 4

        await eventually(counted, 3.0, "Redis does not count the seated players")
        await leave_all(players)
        await no_ghosts(session, a, b, room_id, within=3.0)
        # The outage was logged, briefly: no tracebacks, no flood.
        lines = (tmp_path / "a.log").read_text().splitlines()[lines_before:]
        assert not any("Traceback" in line for line in lines), "\n".join(lines)
        assert len(lines) <= 6, "\n".join(lines)


# -- 7. Redis outages answer quickly and clearly ---------------------------------------------


async def test_a_frozen_redis_answers_503_fast_and_readiness_follows(
        redis_server: RedisServer, nodes: list[Node], prefix: str, tmp_path: Path) -> None:
    a = await start(nodes, redis_server.url, prefix, tmp_path / "a.log")
    b = await start(nodes, redis_server.url, prefix, tmp_path / "b.log")
    async with aiohttp.ClientSession() as session:
        ann = await Player.join(session, a.base, mode="create", name="ann")
        assert (await get(session, f"{a.base}/readyz"))[0] == 200
        redis_server.freeze()
        froze = time.monotonic()
        try:
            took = []
            for mode in ("join_or_create", "create"):
                t, answer = await timed(matchmake(session, a.base, mode=mode, name="x"))
                assert isinstance(answer, MatchmakeFailed), answer
                assert (answer.status, answer.body["error"]) == (503, "directory_unavailable")
                took.append(t)
            t, (status, body) = await timed(get(session, f"{a.base}/rooms"))
            assert (status, body["error"]) == (503, "directory_unavailable")
            took.append(t)
            assert max(took) < 1.5, took
            assert (await get(session, f"{a.base}/readyz")) == (
                503, {"status": "directory_unavailable"})

            async def b_unready() -> bool:  # B was asked nothing: its heartbeat notices
                return (await get(session, f"{b.base}/readyz"))[0] == 503

            await eventually(b_unready, 3.0, "B's /readyz")
            assert await ann.updates_for(0.5) > 0  # the running room keeps playing
            await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - froze)))
        finally:
            redis_server.thaw()

        async def ready() -> bool:
            return all([(await get(session, f"{n.base}/readyz"))[0] == 200 for n in (a, b)])

        await eventually(ready, 3.0, "readiness after the thaw")
        again = await matchmake(session, b.base, name="back")
        assert again["room_id"] == ann.room_id
        log = (tmp_path / "a.log").read_text()
        assert "Traceback" not in log, log
        assert log.count("Redis is unreachable") == 1, log
        assert log.count("Redis is reachable again") == 1, log
        assert len(log.splitlines()) <= 5, log


async def test_placement_survives_redis_losing_its_data(
        redis_server: RedisServer, nodes: list[Node], prefix: str, tmp_path: Path) -> None:
    a = await start(nodes, redis_server.url, prefix, tmp_path / "a.log")
    async with aiohttp.ClientSession() as session:
        ann = await Player.join(session, a.base, mode="create", name="ann",
                                options={"world": "large"})
        client = Redis.from_url(redis_server.url)
        try:
            await client.flushall()
        finally:
            await client.aclose()
        # A new node on the empty Redis brings a new cluster token; A knows the old one.
        b = await start(nodes, redis_server.url, prefix, tmp_path / "b.log")

        async def relisted() -> bool:  # by A's next heartbeat, with its seated player
            room = await listed(session, b.base, ann.room_id)  # and what it is matched by
            return (room.get("players"), room.get("match")) == (1, {"world": "large"})

        await eventually(relisted, 2.0, "A's room after the FLUSHALL")
        await asyncio.sleep(2.0 / 3 + 0.2)  # one more heartbeat of A: both know one token
        placed = await matchmake(session, a.base, mode="create", name="bob")
        assert netloc(placed) == b.netloc  # A asked B, the least loaded, with the token
        back = await matchmake(session, b.base, mode="join", room_id=ann.room_id, name="cy")
        assert netloc(back) == a.netloc


# -- 8. dead and frozen nodes -----------------------------------------------------------------


async def a_busy_and_b_with_a_room(session: aiohttp.ClientSession, a: Node, b: Node
                                   ) -> tuple[list[Player], Player]:
    """A hosts two players in a private room; B one in a public room with free seats:
    B is where new rooms and join_or_create players would go."""
    mine = await matchmake(session, a.base, mode="create", private=True, name="a1")
    assert netloc(mine) == a.netloc
    keep = [await Player.connect(session, mine["ws_url"])]
    keep.append(await Player.join(session, a.base, mode="join", room_id=mine["room_id"],
                                  name="a2"))
    theirs = await matchmake(session, b.base, mode="create", name="b1", options=FOUR)
    assert netloc(theirs) == b.netloc
    bee = await Player.connect(session, theirs["ws_url"])
    await bee.pump()
    return keep, bee


async def test_a_killed_node_gets_no_players_and_no_rooms(
        redis_server: RedisServer, nodes: list[Node], prefix: str, tmp_path: Path) -> None:
    # A long TTL: B stays present in Redis for the whole test after its death.
    a = await start(nodes, redis_server.url, prefix, tmp_path / "a.log", "--node-ttl", "8")
    b = await start(nodes, redis_server.url, prefix, tmp_path / "b.log", "--node-ttl", "8")
    async with aiohttp.ClientSession() as session:
        _keep, bee = await a_busy_and_b_with_a_room(session, a, b)
        b.proc.kill()
        await b.proc.wait()
        t, (status, body) = await timed(_post(session, f"{a.base}/reconnect",
                                              {"token": bee.reconnect_token}))
        assert (status, body["error"]) == (404, "no_such_room")  # not B's dead URL
        assert t < 1.5
        took = []
        for mode in ("join_or_create", "create", "join_or_create", "create"):
            t, r = await timed(matchmake(session, a.base, mode=mode, name="x"))
            assert not isinstance(r, MatchmakeFailed), r
            assert netloc(r) == a.netloc, (mode, r)
            took.append(t)
        assert max(took) < 1.5, took


async def test_a_frozen_node_is_skipped_until_it_beats_again(
        redis_server: RedisServer, nodes: list[Node], prefix: str, tmp_path: Path) -> None:
    a = await start(nodes, redis_server.url, prefix, tmp_path / "a.log", "--node-ttl", "8")
    b = await start(nodes, redis_server.url, prefix, tmp_path / "b.log", "--node-ttl", "8")
    async with aiohttp.ClientSession() as session:
        _keep, _bee = await a_busy_and_b_with_a_room(session, a, b)
        b.proc.send_signal(signal.SIGSTOP)
        try:
            took = []
            for mode in ("create", "join_or_create", "create", "create"):
                t, r = await timed(matchmake(session, a.base, mode=mode, name="x"))
                assert not isinstance(r, MatchmakeFailed), r
                assert netloc(r) == a.netloc, (mode, r)
                took.append(t)
            assert max(took) < 1.5, took
            assert sum(took[1:]) < 1.0, took  # only the first one waited for B
        finally:
            b.proc.send_signal(signal.SIGCONT)

        async def b_takes_rooms_again() -> bool:
            r = await matchmake(session, a.base, mode="create", private=True, name="y")
            return netloc(r) == b.netloc

        await eventually(b_takes_rooms_again, 8 / 3 * 2 + 2, "B after its next heartbeat")


async def _post(session: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any]:
    async with session.post(url, json=body) as resp:
        return resp.status, await resp.json(content_type=None)
