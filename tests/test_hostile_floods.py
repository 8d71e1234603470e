"""Floods over WebSockets and matchmaking (issue 11): the flooder is refused or closed,
and a player in another room, in another process, does not notice."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import pytest
from aiohttp.test_utils import TestServer

from gameserver.auth import sign
from gameserver.core import codec
from gameserver.web.keys import MANAGER
from loadtest.wsclient import OP_BINARY, OP_PING, OP_PONG, RawSocket

from .client import Player, matchmake, url

ROOT = Path(__file__).resolve().parent.parent
MEASURE_S = 3.0  # the honest player's window, inside the flood
MIN_RATE = 19.0  # updates/s the honest player keeps (the tick rate is 20)


async def spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.floodproc", *args, cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={"PYTHONPATH": str(ROOT), "PATH": ""})


async def line(proc: asyncio.subprocess.Process, timeout: float = 20) -> str:
    assert proc.stdout is not None
    return (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode().strip()


class Honest:
    """A player in a room of their own, counting updates in another process."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, base: str) -> Honest:
        honest = cls(await spawn("honest", base, str(MEASURE_S)))
        assert await line(honest.proc) == "ready"
        return honest

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")

    async def rate(self) -> float:
        count = int(await line(self.proc))
        await asyncio.wait_for(self.proc.wait(), 10)
        return count / MEASURE_S


@pytest.mark.parametrize("kind", ["ping", "pong", "continuation", "binary"])
async def test_a_control_frame_flood_is_closed_and_other_rooms_keep_their_rate(
        start_server: Callable[..., Any], session: aiohttp.ClientSession, kind: str) -> None:
    server = await start_server()
    base = url(server)
    honest = await Honest.start(base)
    reservation = await matchmake(session, base, name="flooder", mode="create")
    attacker = await spawn("frames", server.host, str(server.port), reservation["token"], kind,
                           str(MEASURE_S + 1.5))
    assert await line(attacker) == "flooding"
    honest.go()
    rate = await honest.rate()
    result = json.loads(await line(attacker))
    await asyncio.wait_for(attacker.wait(), 10)
    assert result["code"] == codec.CLOSE_RATE_LIMITED, result
    # Control frames: a second over their budget. Data messages: told, then 3 s.
    assert result["after"] < (2.5 if kind != "binary" else 4.5), result
    assert rate >= MIN_RATE, f"the honest player got {rate:.1f} updates/s during the {kind} flood"


def chats(player: Player) -> list[Any]:
    return [ev for _, update in player.updates for ev in update[-1] if ev[0] == "chat"]


async def test_room_messages_have_their_own_budget(start_server: Callable[..., Any],
                                                   session: aiohttp.ClientSession) -> None:
    server = await start_server(message_rate=2, message_bytes=4096)
    base = url(server)
    ann = await Player.join(session, base, name="ann")
    bob = await Player.join(session, base, name="bob")
    seconds, sent = 2.0, 0
    began = asyncio.get_running_loop().time()
    while (elapsed := asyncio.get_running_loop().time() - began) < seconds:
        sent += 1  # 20 a second: well inside the connection's budget of 60
        await ann.send(codec.C_MESSAGE, "chat", f"spam {sent} " + "x" * 150)
        await ann.send_input(1, 0)  # inputs are not held back by chatting
        await asyncio.sleep(0.05)
    await bob.updates_for(0.5)
    await ann.updates_for(0.2)
    budget = 2 * 3 + 2 * elapsed  # a burst of three seconds' worth, then the rate
    assert 2 * 3 <= len(chats(bob)) <= budget + 1, (len(chats(bob)), sent)
    refused = [e for e in ann.errors if e[1] == "message_rate_limited"]
    assert len(refused) == sent - len(chats(bob))
    assert not [e for e in ann.errors if e[1] != "message_rate_limited"]
    assert ann.replica.ack == ann.seq  # every input was applied
    # The byte budget: three messages of 1.5 KB exceed a 1 KB/s budget's burst of 3 KB.
    server = await start_server(message_rate=100, message_bytes=1024)
    ann = await Player.join(session, url(server), name="ann")
    for i in range(3):
        await ann.send(codec.C_MESSAGE, "chat", f"{i}" + "y" * 1500)
    await ann.until(lambda: len(ann.errors) == 3)
    assert [e[1] for e in ann.errors] == ["invalid_input", "invalid_input",
                                          "message_rate_limited"]


async def test_a_matchmaking_flood_from_one_address_is_refused_and_others_still_play(
        start_server: Callable[..., Any]) -> None:
    # Loopback is exempt by default (local load tests); here it is not.
    server = await start_server(ip_limit_exempt=())
    base = url(server)
    honest = await Honest.start(base)
    body = {"game": "arena", "mode": "create", "private": True, "name": "squatter",
            "headers": {"X-Forwarded-For": "203.0.113.9"}}  # not trusted: no such proxy
    attacker = await spawn("matchmake", base, str(MEASURE_S + 0.5), "8", json.dumps(body))
    honest.go()
    rate = await honest.rate()
    counts = {int(k): v for k, v in json.loads(await line(attacker)).items()}
    await asyncio.wait_for(attacker.wait(), 10)
    assert set(counts) == {200, 429}, counts
    assert counts[200] <= 8, counts  # its unredeemed reservations, at most
    assert counts[429] > 100, counts
    assert len(server.app[MANAGER].room_hosts) <= 1 + 8
    assert rate >= MIN_RATE, f"the honest player got {rate:.1f} updates/s during the flood"
    async with aiohttp.ClientSession() as same:
        async with same.post(f"{base}/matchmake", json={"game": "arena"}) as resp:
            assert resp.status == 429
            assert (await resp.json())["error"] == "rate_limited"
            assert 1 <= int(resp.headers["Retry-After"]) <= 10
    # Another address (all of 127/8 is loopback) creates and joins as if nothing happened.
    other = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=other) as elsewhere:
        player = await Player.join(elsewhere, base, name="friend", mode="create")
        assert await player.updates_for(0.3) > 0


async def test_a_signed_identity_has_its_own_budgets(start_server: Callable[..., Any],
                                                     session: aiohttp.ClientSession) -> None:
    server = await start_server(auth_secret="s3cret", reservation_ttl=1.0,
                                max_pending_per_client=3, room_creations_per_minute=2)
    base = url(server)

    def bearer(sub: str) -> dict[str, str]:
        token = sign({"sub": sub, "exp": int(time.time()) + 60}, "s3cret")
        return {"Authorization": f"Bearer {token}"}

    async def ask(sub: str, mode: str) -> tuple[int, dict[str, Any]]:
        async with session.post(f"{base}/matchmake", json={"game": "arena", "mode": mode},
                                headers=bearer(sub)) as resp:
            body = await resp.json()
            if resp.status == 429:
                assert int(resp.headers["Retry-After"]) >= 1 and body["retry_after"] >= 1
            return resp.status, body

    held = [(await ask("mallory", "create"))[1] for _ in range(2)]
    assert all("token" in r for r in held)
    status, body = await ask("mallory", "create")  # a third room within the minute
    assert (status, body["error"]) == (429, "rate_limited")
    assert int(body["retry_after"]) >= 20
    assert (await ask("mallory", "join_or_create"))[0] == 200  # joining is not creating
    status, body = await ask("mallory", "join_or_create")  # a fourth unredeemed seat
    assert (status, body["error"]) == (429, "rate_limited")
    assert body["retry_after"] <= 1
    assert (await ask("alice", "create"))[0] == 200  # another identity is not affected
    await Player.connect(session, held[0]["ws_url"])  # redeemed: no longer held against her
    assert (await ask("mallory", "join_or_create"))[0] == 200
    assert (await ask("mallory", "join_or_create"))[0] == 429
    await asyncio.sleep(1.1)  # the unredeemed ones expire
    assert (await ask("mallory", "join_or_create"))[0] == 200


async def test_the_room_listing_is_paged_complete_and_fresh_within_its_period(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    server = await start_server(empty_room_grace=60)
    base = url(server)
    created = [(await matchmake(session, base, mode="create"))["room_id"] for _ in range(25)]
    await matchmake(session, base, mode="create", private=True)

    async def get(query: str) -> tuple[int, dict[str, Any]]:
        async with session.get(f"{base}/rooms?{query}") as resp:
            return resp.status, await resp.json()

    status, whole = await get("game=arena&limit=500")
    assert status == 200 and whole["next"] is None
    assert sorted(r["room_id"] for r in whole["rooms"]) == sorted(created)  # no private one
    seen: list[str] = []
    query = "game=arena&limit=10"
    while True:
        status, page = await get(query)
        assert status == 200 and len(page["rooms"]) <= 10
        seen += [r["room_id"] for r in page["rooms"]]
        if page["next"] is None:
            break
        query = f"game=arena&limit=10&after={page['next']}"
    assert seen == [r["room_id"] for r in whole["rooms"]]  # every room once, in order
    # A room created now is listed within the cache period, after the others.
    newest = (await matchmake(session, base, mode="create"))["room_id"]
    await asyncio.sleep(0.6)
    status, page = await get("game=arena&limit=500")
    assert [r["room_id"] for r in page["rooms"]][-1] == newest
    assert (await get("game=arena"))[1]["rooms"][:25] == page["rooms"][:25]  # default page
    assert (await get("game=nosuchgame")) == (200, {"rooms": [], "next": None})
    for bad in ("limit=0", "limit=501", "limit=ten", "limit=-1", "after=nonsense",
                "after=nan~x", "after=" + "1" * 200):
        status, body = await get(bad)
        assert (status, body["error"]) == (400, "bad_request"), bad


async def test_pings_are_answered_within_their_budget_and_dropped_beyond_it(
        server: TestServer, session: aiohttp.ClientSession) -> None:
    assert server.port is not None
    reservation = await matchmake(session, url(server), name="pinger")
    raw = await RawSocket.open(server.host, server.port, "/ws?token=" + reservation["token"])
    assert (await raw.read_message())[0] == codec.S_WELCOME
    for i in range(100):  # at once: over the burst of 40
        raw.send_frame(b"p%d" % i, OP_PING)
    pongs: list[bytes] = []
    errors: list[Any] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 1.0
    while (left := deadline - loop.time()) > 0:
        try:
            opcode, payload = await raw.read_frame(timeout=left)
        except TimeoutError:
            break
        if opcode == OP_PONG:
            pongs.append(payload)
        elif opcode == OP_BINARY and msgpack.unpackb(payload)[0] == codec.S_ERROR:
            errors.append(msgpack.unpackb(payload))
    assert pongs == [b"p%d" % i for i in range(40)]  # in order, each with its payload
    assert [e[1] for e in errors] == ["rate_limited"]  # told once
    await asyncio.sleep(0.6)  # quiet: the budget refills, a ping is answered again
    raw.send_frame(b"again", OP_PING)
    while (frame := await raw.read_frame(timeout=2))[0] != OP_PONG:
        pass
    assert frame[1] == b"again"
    raw.abort()
