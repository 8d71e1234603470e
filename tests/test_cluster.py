"""Several server processes sharing one Redis: one cluster (cluster.py, workers.py)."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from redis.asyncio import Redis

import gameserver.__main__
from gameserver.cluster import workers
from gameserver.config import ConfigError, load
from gameserver.core import codec

from .client import Player, matchmake
from .conftest import need_redis_server

TTL = 2.0  # --node-ttl of the test nodes


@dataclass
class Node:
    proc: Any
    base: str  # http://127.0.0.1:PORT

    @property
    def netloc(self) -> str:
        return urlsplit(self.base).netloc


async def start_node(redis_url: str, prefix: str, log: Path, *args: str,
                     env: dict[str, str] | None = None) -> Node:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gameserver", "--port", "0", "--redis", redis_url,
        "--cluster-prefix", prefix, "--node-ttl", str(TTL), "--log-level", "warning", *args,
        stdout=subprocess.PIPE, stderr=log.open("ab"), env={**os.environ, **(env or {})})
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
    assert line.startswith("gameserver: serving on http://127.0.0.1:"), line
    return Node(proc, line.split(" on ")[1].split("/ ")[0])


async def stop(proc: Any) -> None:
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


@pytest.fixture
def prefix() -> str:
    return f"c{secrets.token_hex(4)}"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def start_cluster(redis_url: str, prefix: str, logs: Path, *args: str,
                        env: dict[str, str] | None = None) -> list[Node]:
    """Three nodes on one Redis (logs in ``logs``)."""
    return list(await asyncio.gather(*(
        start_node(redis_url, prefix, logs / f"node{i}.log", *args, env=env)
        for i in range(3))))


@pytest.fixture
async def cluster(redis_url: str, prefix: str, tmp_path: Path) -> AsyncIterator[list[Node]]:
    nodes = await start_cluster(redis_url, prefix, tmp_path)
    yield nodes
    for n in nodes:
        await stop(n.proc)


def netloc(reservation: dict[str, Any]) -> str:
    return urlsplit(reservation["ws_url"]).netloc


async def get(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as resp:
        return await resp.json()


async def test_join_or_create_from_every_node_never_overfills(
        cluster: list[Node], redis: Redis, prefix: str) -> None:
    async with aiohttp.ClientSession() as session:
        reservations = await asyncio.gather(*(
            matchmake(session, cluster[i % 3].base, name=f"p{i}") for i in range(40)))
        by_room: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in reservations:
            by_room[r["room_id"]].append(r)
        assert sum(len(v) for v in by_room.values()) == 40
        assert all(len(v) <= 16 for v in by_room.values()), {k: len(v) for k, v in
                                                             by_room.items()}
        assert len(by_room) >= 3
        for room_id, seats in by_room.items():
            assert len({netloc(r) for r in seats}) == 1  # every seat points at one node
            assert await redis.zcard(f"{prefix}:res:{room_id}") == len(seats)
        # The seats are real: one player per room lands in it, on its node.
        players = [await Player.connect(session, seats[0]["ws_url"])
                   for seats in by_room.values()]
        assert [p.room_id for p in players] == list(by_room)
        for p in players:
            await p.ws.close()


async def test_a_room_on_a_is_listed_and_joined_through_b(cluster: list[Node]) -> None:
    a, b, _ = cluster
    async with aiohttp.ClientSession() as session:
        made = await matchmake(session, a.base, mode="create", name="ann")
        assert netloc(made) == a.netloc  # all nodes equally loaded: the asked one hosts it
        ann = await Player.connect(session, made["ws_url"])
        listed = (await get(session, f"{b.base}/rooms"))["rooms"]
        assert [(r["room_id"], r["players"]) for r in listed] == [(ann.room_id, 1)]
        joined = await matchmake(session, b.base, mode="join", room_id=ann.room_id,
                                 name="bob")
        assert netloc(joined) == a.netloc  # straight to A: no hop through B
        bob = await Player.connect(session, joined["ws_url"])
        assert bob.room_id == ann.room_id
        await bob.until(lambda: len(bob.replica.entities) >= 2)
        assert (await get(session, f"{a.base}/stats"))["players"] == 2
        assert (await get(session, f"{b.base}/stats"))["players"] == 0
        # join_or_create through B finds A's room too
        third = await matchmake(session, b.base, name="cy")
        assert third["room_id"] == ann.room_id and netloc(third) == a.netloc


async def test_a_room_on_a_is_watched_through_b(cluster: list[Node]) -> None:
    a, b, _ = cluster
    async with aiohttp.ClientSession() as session:
        made = await matchmake(session, a.base, mode="create", name="ann")
        ann = await Player.connect(session, made["ws_url"])
        watching = await matchmake(session, b.base, mode="spectate", room_id=ann.room_id)
        assert netloc(watching) == a.netloc and watching["spectator"] is True
        eve = await Player.connect(session, watching["ws_url"])
        assert (eve.room_id, eve.player_id) == (ann.room_id, 0)
        await ann.send_input(100, 0)
        await ann.until(lambda: ann.replica.ack == 1)
        await eve.until(lambda: eve.replica.tick >= ann.replica.tick)
        # Redis lists the spectator for every node (updated as it came in).
        for _ in range(20):
            listed = (await get(session, f"{b.base}/rooms"))["rooms"]
            if listed and listed[0]["spectators"] == 1:
                break
            await asyncio.sleep(0.1)
        assert [(r["room_id"], r["players"], r["spectators"]) for r in listed] == \
            [(ann.room_id, 1, 1)]
        # A pass is redeemed only where the room is: B has nothing to show.
        other = await matchmake(session, b.base, mode="spectate", room_id=ann.room_id)
        wrong = other["ws_url"].replace(a.netloc, b.netloc)
        ws = await session.ws_connect(wrong)
        await ws.receive(timeout=5)
        assert (await ws.receive(timeout=5)).type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 4001


async def test_reconnection_is_found_through_any_node(cluster: list[Node]) -> None:
    a, b, _ = cluster
    async with aiohttp.ClientSession() as session:
        made = await matchmake(session, a.base, mode="create", name="ann")
        ann = await Player.connect(session, made["ws_url"])
        await ann.pump()
        ann.ws._response.connection.transport.abort()  # type: ignore[union-attr]
        async with session.post(f"{b.base}/reconnect",
                                json={"token": ann.reconnect_token}) as resp:
            where = await resp.json()
        assert urlsplit(where["ws_url"]).netloc == a.netloc  # B points at A
        back = await Player.connect(session, where["ws_url"])
        assert (back.room_id, back.player_id) == (ann.room_id, ann.player_id)


async def test_new_rooms_go_to_the_node_with_fewest_players(cluster: list[Node]) -> None:
    a, b, c = cluster
    players = []  # keep the sockets open
    async with aiohttp.ClientSession() as session:
        first = await matchmake(session, a.base, mode="create", name="a1")
        assert netloc(first) == a.netloc
        players.append(await Player.connect(session, first["ws_url"]))
        again = await matchmake(session, a.base, mode="join", room_id=first["room_id"],
                                name="a2")
        players.append(await Player.connect(session, again["ws_url"]))
        second = await matchmake(session, b.base, mode="create", name="b1")
        assert netloc(second) == b.netloc  # B and C have none; B was asked
        players.append(await Player.connect(session, second["ws_url"]))
        # A has 2 players, B 1, C 0: a new room asked of A goes to C, then to B.
        third = await matchmake(session, a.base, mode="create", name="x")
        assert netloc(third) == c.netloc
        players.append(await Player.connect(session, third["ws_url"]))
        fourth = await matchmake(session, a.base, mode="create", name="y", private=True)
        assert netloc(fourth) in (b.netloc, c.netloc)
        assert (await get(session, f"{c.base}/stats"))["players"] == 1


async def test_a_killed_nodes_rooms_leave_the_listings_within_the_ttl(
        cluster: list[Node], redis: Redis, prefix: str) -> None:
    a, b, _ = cluster
    async with aiohttp.ClientSession() as session:
        made = await matchmake(session, a.base, mode="create", name="ann")
        assert netloc(made) == a.netloc
        ann = await Player.connect(session, made["ws_url"])
        room_id = made["room_id"]
        assert ann.room_id == room_id
        assert [r["room_id"] for r in (await get(session, f"{b.base}/rooms"))["rooms"]] == [
            room_id]
        a.proc.kill()
        killed = time.monotonic()
        while (await get(session, f"{b.base}/rooms"))["rooms"]:
            assert time.monotonic() - killed < TTL + 1.0, "still listed after the TTL"
            await asyncio.sleep(0.05)
        gone_from_listing = time.monotonic() - killed
        while await redis.exists(f"{prefix}:room:{room_id}"):  # deleted by a sweep
            assert time.monotonic() - killed < TTL * 4 / 3 + 1.5, "not swept"
            await asyncio.sleep(0.05)
        assert gone_from_listing <= TTL + 1.0
        again = await matchmake(session, b.base, name="bob")
        assert again["room_id"] != room_id and netloc(again) != a.netloc


SLOW_GAME = """
import time
from gameserver import Entity, Room

class Thing(Entity):
    n: int = 0

class Slow(Room):
    game = "slow"
    entity_types = (Thing,)

    def on_dispose(self):
        time.sleep(1.5)  # holds the node in its drain, so that we can look at it
"""


async def test_a_draining_node_gets_no_new_rooms(redis_url: str, redis: Redis, prefix: str,
                                                 tmp_path: Path) -> None:
    (tmp_path / "slow_game.py").write_text(SLOW_GAME)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path),
                                                       os.environ.get("PYTHONPATH")]))}
    # A TTL well over the 1.5 s drain, so that A stays present (and draining) through it.
    a, b, c = cluster = await start_cluster(redis_url, prefix, tmp_path, "--games",
                                            "slow_game:Slow", "--node-ttl", "6", env=env)
    try:
        async with aiohttp.ClientSession() as session:
            made = await matchmake(session, a.base, game="slow", mode="create", name="ann")
            assert netloc(made) == a.netloc
            ann = await Player.connect(session, made["ws_url"])
            players = []  # keep the sockets open
            for n in (b, c):  # two players on each of B and C: A is the least loaded
                r = await matchmake(session, n.base, mode="create", name="x")
                assert netloc(r) == n.netloc
                players.append(await Player.connect(session, r["ws_url"]))
                r2 = await matchmake(session, n.base, mode="join", room_id=r["room_id"],
                                     name="y")
                players.append(await Player.connect(session, r2["ws_url"]))
            urls = {k: await redis.hget(k, "url") for k in await redis.keys(f"{prefix}:node:*")}
            (a_key,) = (k for k, url in urls.items() if url == a.base)
            a.proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            while await redis.hget(a_key, "draining") != "1":
                assert time.monotonic() - signalled < 1.0, "not marked draining at once"
                await asyncio.sleep(0.005)
            listed = {r["room_id"]: r
                      for r in (await get(session, f"{b.base}/rooms?game=slow"))["rooms"]}
            assert listed[ann.room_id]["locked"]
            for n in (b, c, b):
                r = await matchmake(session, n.base, mode="create", name="z")
                assert netloc(r) != a.netloc
                j = await matchmake(session, n.base, game="slow", name="w")
                assert j["room_id"] != ann.room_id and netloc(j) != a.netloc
            assert await redis.hget(a_key, "draining") == "1"  # all while A was draining
            code, _ = await ann.close_event()
            assert code == codec.CLOSE_GOING_AWAY
            assert await asyncio.wait_for(a.proc.wait(), 10) == 0
            assert time.monotonic() - signalled < 5
            assert not await redis.exists(a_key, f"{prefix}:room:{ann.room_id}")
    finally:
        for n in cluster:
            await stop(n.proc)


async def test_workers_share_one_directory(redis_url: str, prefix: str,
                                           tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gameserver", "--workers", "2", "--port", "0", "--redis",
        redis_url, "--cluster-prefix", prefix, "--node-ttl", str(TTL), "--log-level",
        "warning", stdout=subprocess.PIPE, stderr=(tmp_path / "workers.log").open("ab"))
    try:
        assert proc.stdout is not None
        urls: list[str] = []
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line, (tmp_path / "workers.log").read_text()
            if "workers serving" in line:
                break
            urls.append(line.split(" on ")[1].split("/ ")[0])
        assert len(set(urls)) == 2
        async with aiohttp.ClientSession() as session:
            for url in urls:
                async with session.get(f"{url}/healthz") as resp:
                    assert resp.status == 200
            made = [await matchmake(session, urls[0], mode="create", name=f"p{i}")
                    for i in range(2)]
            assert {netloc(r) for r in made} == {urlsplit(u).netloc for u in urls}
            players = [await Player.connect(session, r["ws_url"]) for r in made]
            assert [p.room_id for p in players] == [r["room_id"] for r in made]
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 15) == 0
            for url in urls:
                with pytest.raises(aiohttp.ClientConnectionError):
                    await session.get(f"{url}/healthz")
    finally:
        await stop(proc)


@dataclass
class PrivateWorkers:
    """``gameserver --workers 2`` without --redis: the supervisor's own redis-server."""

    proc: Any
    urls: list[str]  # each worker's http://127.0.0.1:PORT
    pids: list[int]  # the workers'
    redis_url: str  # unix:///.../redis.sock
    redis_pid: int
    log: Path

    @property
    def socket_dir(self) -> Path:
        return Path(urlsplit(self.redis_url).path).parent


@pytest.fixture
def short_tmpdir() -> Any:
    """$TMPDIR for the supervisor: short enough for a Unix socket path, checked empty."""
    path = Path(tempfile.mkdtemp(prefix="gs-t-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def text(path: Path) -> str:
    return path.read_text()


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def cleaned_up(w: PrivateWorkers, pids: list[int], tmpdir: Path) -> bool:
    """These processes are gone, and so is the private directory (nothing else in $TMPDIR)."""
    return all(gone(pid) for pid in pids) and not w.socket_dir.exists() and \
        not any(tmpdir.iterdir())


async def start_private_workers(tmpdir: Path, log: Path) -> PrivateWorkers:
    need_redis_server()  # CI: fail, not skip, without it
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gameserver", "--workers", "2", "--port", "0", "--node-ttl",
        str(TTL), "--log-level", "warning", stdout=subprocess.PIPE, stderr=log.open("ab"),
        env={**os.environ, "GAMESERVER_REDIS": "", "TMPDIR": str(tmpdir)})
    assert proc.stdout is not None
    urls: list[str] = []
    redis_url = ""
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line, text(log)
        if "workers serving" in line:
            pids = [int(p) for p in line.split("pids ")[1].split(" (")[0].split()]
            break
        if "private Redis at " in line:
            assert "--redis URL shares rooms with other machines" in line
            redis_url = line.split("private Redis at ")[1].split()[0]
        elif "serving on " in line:
            urls.append(line.split(" on ")[1].split("/ ")[0])
    assert redis_url.startswith(f"unix://{tmpdir}/") and redis_url.endswith("/redis.sock")
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        redis_pid = int((await client.info("server"))["process_id"])
        assert await client.config_get("port") == {"port": "0"}  # no TCP at all
        assert await client.config_get("save") == {"save": ""}
        assert await client.config_get("appendonly") == {"appendonly": "no"}
    finally:
        await client.aclose()
    assert parent_of(redis_pid) == proc.pid  # the supervisor's own child
    return PrivateWorkers(proc, urls, pids, redis_url, redis_pid, log)


async def test_workers_without_redis_share_rooms_through_a_private_one(
        short_tmpdir: Path, tmp_path: Path) -> None:
    w = await start_private_workers(short_tmpdir, tmp_path / "workers.log")
    try:
        assert len(set(w.urls)) == 2
        assert w.socket_dir.parent == short_tmpdir
        assert w.socket_dir.stat().st_mode & 0o777 == 0o700
        a, b = w.urls
        async with aiohttp.ClientSession() as session:
            for url in w.urls:
                async with session.get(f"{url}/healthz") as resp:
                    assert resp.status == 200
            made = await matchmake(session, b, mode="create", name="ann")
            assert netloc(made) == urlsplit(b).netloc
            ann = await Player.connect(session, made["ws_url"])
            found = await matchmake(session, a, name="bob")  # join_or_create through A
            assert found["room_id"] == ann.room_id and netloc(found) == urlsplit(b).netloc
            bob = await Player.connect(session, found["ws_url"])
            assert bob.room_id == ann.room_id
            w.proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(w.proc.wait(), 20) == 0, text(w.log)
            for url in w.urls:
                with pytest.raises(aiohttp.ClientConnectionError):
                    await session.get(f"{url}/healthz")
        assert cleaned_up(w, [*w.pids, w.redis_pid], short_tmpdir)
    finally:
        await stop(w.proc)


async def test_a_killed_worker_stops_the_rest_and_the_private_redis(
        short_tmpdir: Path, tmp_path: Path) -> None:
    w = await start_private_workers(short_tmpdir, tmp_path / "workers.log")
    try:
        os.kill(w.pids[0], signal.SIGKILL)
        assert await asyncio.wait_for(w.proc.wait(), 20) == 1
        assert "a worker exited; stopping the others" in text(w.log)
        assert cleaned_up(w, [w.pids[1], w.redis_pid], short_tmpdir)
    finally:
        await stop(w.proc)


async def test_a_dead_private_redis_stops_the_workers(short_tmpdir: Path,
                                                     tmp_path: Path) -> None:
    w = await start_private_workers(short_tmpdir, tmp_path / "workers.log")
    try:
        os.kill(w.redis_pid, signal.SIGKILL)
        assert await asyncio.wait_for(w.proc.wait(), 20) == 1
        assert "the private redis-server exited; stopping the workers" in text(w.log)
        assert cleaned_up(w, w.pids, short_tmpdir)
    finally:
        await stop(w.proc)


def test_workers_without_redis_server_say_how_to_install_it(short_tmpdir: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "gameserver", "--workers", "2", "--port", "0"],
        capture_output=True, text=True, timeout=30,
        env={**os.environ, "GAMESERVER_REDIS": "", "TMPDIR": str(short_tmpdir),
             "GAMESERVER_REDIS_SERVER": str(short_tmpdir / "no-redis-server")})
    assert result.returncode == 2, result.stderr
    assert time.monotonic() - started < 15  # at once: no worker was started
    assert "apt-get install redis-server" in result.stderr
    assert "brew install redis" in result.stderr
    assert "--redis URL" in result.stderr
    assert "serving" not in result.stdout
    assert list(short_tmpdir.iterdir()) == []  # no private directory left behind


def test_a_private_redis_that_fails_to_start_is_shown_and_cleaned_up(
        short_tmpdir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "redis-server"
    broken.write_text("#!/bin/sh\necho 'FATAL CONFIG FILE ERROR (Redis 7.0)'\nexit 1\n")
    broken.chmod(0o755)
    result = subprocess.run(
        [sys.executable, "-m", "gameserver", "--workers", "2", "--port", "0"],
        capture_output=True, text=True, timeout=30,
        env={**os.environ, "GAMESERVER_REDIS": "", "TMPDIR": str(short_tmpdir),
             "GAMESERVER_REDIS_SERVER": str(broken)})
    assert result.returncode == 1
    assert "the private redis-server exited with status 1" in result.stderr
    assert "FATAL CONFIG FILE ERROR" in result.stderr  # its output, shown on failure
    assert "serving" not in result.stdout  # no worker was started
    assert list(short_tmpdir.iterdir()) == []


def test_workers_1_never_starts_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load(["--workers", "auto"], {}).workers == (os.cpu_count() or 1)
    assert load([], {"GAMESERVER_WORKERS": "auto"}).workers == (os.cpu_count() or 1)
    assert load(["--workers", "1"], {}).workers == 1
    # One worker is the plain server (__main__.py): supervise(), which starts Redis, is
    # only called for more than one.
    monkeypatch.setattr(workers, "redis_server_program",
                        lambda: pytest.fail("--workers 1 looked for redis-server"))
    monkeypatch.setattr(workers, "supervise",
                        lambda *a: pytest.fail("--workers 1 ran the supervisor"))
    monkeypatch.setattr(gameserver.__main__, "create_app",
                        lambda settings: (_ for _ in ()).throw(ConfigError("stop here")))
    assert gameserver.__main__.main(["--workers", "1"]) == 2


def test_an_unreachable_redis_is_reported_at_start_up() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    result = subprocess.run([sys.executable, "-m", "gameserver", "--port", "0", "--redis",
                             f"redis://:hunter2@127.0.0.1:{port}"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert f"--redis: cannot reach Redis at 127.0.0.1:{port}" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
