"""docs/PROTOCOL.md and the server agree: each promise checked through a real socket or call."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import aiohttp
import msgpack
import pytest
from aiohttp.test_utils import TestServer

from gameserver import Entity, Room
from gameserver import Player as Seat
from gameserver.core import codec
from gameserver.games.arena import RULES, Arena, move
from gameserver.web.keys import MANAGER
from loadtest.wsclient import OP_TEXT, RawSocket

from .client import MatchmakeFailed, Player, matchmake, url
from .doctables import DOC, table_after


async def drop(player: Player) -> None:
    """Lose the connection without a close handshake, as a network failure does."""
    player.ws._response.connection.transport.abort()  # type: ignore[union-attr]
    await asyncio.sleep(0)


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError("condition not met in time")


async def next_error(player: Player, timeout: float = 5.0) -> list[Any]:
    seen = len(player.errors)
    await player.until(lambda: len(player.errors) > seen, timeout)
    return player.errors[seen]


# -- 1. a replaced socket's queued inputs are discarded: the snapshot's ack is final --------

async def test_after_a_replacement_the_snapshot_ack_is_final(
        session: aiohttp.ClientSession, base: str) -> None:
    ann = await Player.join(session, base, name="ann")
    await ann.until(lambda: ann.avatar is not None)
    for _ in range(30):  # applied 3, then 1 per tick: ~1.4 s of queue
        await ann.send_input(10, 0)
    await ann.until(lambda: ann.replica.ack >= 1)
    back = await Player.connect(session, f"{base}/ws?reconnect={ann.reconnect_token}")
    await back.until(lambda: bool(back.updates))
    assert back.updates[0][1][0] == codec.S_SNAPSHOT
    ack = back.replica.ack
    assert 1 <= ack < 30  # inputs were still queued when the socket was replaced
    await back.updates_for(0.4)  # no new input: the ack must not move
    assert {u[1][1] for u in back.updates} == {ack}
    await back.send(codec.C_INPUT, ack + 1, [0, 10])  # numbering continues after it
    await back.until(lambda: back.replica.ack == ack + 1)
    assert back.errors == []


# -- 2. Room.send and Room.kick work from every hook --------------------------------------

class Marker(Entity):
    n: int = 0


class Hooks(Room):
    game = "hooks"
    max_players = 8
    entity_types = (Marker,)

    def on_join(self, player: Seat) -> None:
        self.send(player, "hello", player.name)
        self.send(player, "second", 2)
        if player.name == "kick-on-join":
            self.kick(player, "not today")

    def on_rejoin(self, player: Seat) -> None:
        self.send(player, "welcome back", player.id)
        if player.name == "kick-on-rejoin":
            self.kick(player, "once was enough")

    def on_drop(self, player: Seat) -> None:
        self.send(player, "dropped", player.id)  # to nobody: no crash
        if player.name == "kick-on-drop":
            self.kick(player, "no coming back")

    def on_leave(self, player: Seat, consented: bool) -> None:
        self.send(player, "bye", player.id)  # to nobody: no crash
        self.kick(player, "already gone")


async def hooks_server(start_server: Callable[..., Any]) -> tuple[TestServer, str]:
    server = await start_server(games=(Hooks,), reconnect_grace=5, empty_room_grace=30)
    return server, url(server)


async def frames_until_update(player: Player) -> list[list[Any]]:
    """Everything after the welcome, up to and including the first update."""
    out = []
    while True:
        message = await player.pump()
        out.append(message)
        if message[0] in (codec.S_SNAPSHOT, codec.S_DELTA):
            return out


async def test_send_from_on_join_follows_the_welcome(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    _, base = await hooks_server(start_server)
    ann = await Player.join(session, base, game="hooks", name="ann")
    frames = await frames_until_update(ann)
    assert frames[:2] == [[codec.S_MESSAGE, "hello", "ann"], [codec.S_MESSAGE, "second", 2]]
    assert frames[2][0] == codec.S_SNAPSHOT


async def test_kick_from_on_join_closes_after_the_welcome_and_frees_the_seat(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    server, base = await hooks_server(start_server)
    kicked = await Player.join(session, base, game="hooks", name="kick-on-join")
    frames = []
    while (msg := await kicked.ws.receive(timeout=5)).type is aiohttp.WSMsgType.BINARY:
        frames.append(msgpack.unpackb(msg.data))
    assert msg.type is aiohttp.WSMsgType.CLOSE
    assert (msg.data, msg.extra) == (codec.CLOSE_KICKED, "not today")
    assert frames == [[codec.S_MESSAGE, "hello", "kick-on-join"],
                      [codec.S_MESSAGE, "second", 2]]
    room = server.app[MANAGER].room_hosts[kicked.room_id].room
    await until(lambda: not room.players)
    ws = await session.ws_connect(f"{base}/ws?reconnect={kicked.reconnect_token}")
    assert msgpack.unpackb((await ws.receive()).data)[1] == "reconnect_refused"


async def test_send_and_kick_from_on_rejoin(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    server, base = await hooks_server(start_server)
    manager = server.app[MANAGER]
    for name, kicked in (("ann", False), ("kick-on-rejoin", True)):
        player = await Player.join(session, base, game="hooks", name=name)
        await player.pump()
        await drop(player)
        room_host = manager.room_hosts[player.room_id]
        await until(lambda p=player, r=room_host: p.player_id in r.dropped)  # type: ignore[misc]
        back = await Player.connect(session, f"{base}/ws?reconnect={player.reconnect_token}")
        assert back.player_id == player.player_id
        first = await back.pump()
        assert first == [codec.S_MESSAGE, "welcome back", player.player_id]
        if kicked:
            assert (await back.close_event())[0] == codec.CLOSE_KICKED
        else:
            assert (await back.pump())[0] == codec.S_SNAPSHOT


async def test_send_and_kick_from_on_drop_and_on_leave_do_not_crash_the_room(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    server, base = await hooks_server(start_server)
    watcher = await Player.join(session, base, game="hooks", name="watcher")
    leaver = await Player.join(session, base, game="hooks", mode="join",
                               room_id=watcher.room_id, name="leaver")
    dropper = await Player.join(session, base, game="hooks", mode="join",
                                room_id=watcher.room_id, name="kick-on-drop")
    room_host = server.app[MANAGER].room_hosts[watcher.room_id]
    await leaver.send(codec.C_LEAVE)
    await leaver.close_event()
    await drop(dropper)
    await until(lambda: set(room_host.room.players) == {watcher.player_id})  # kicked while away
    assert room_host.crashed is None and not room_host.closed
    assert await watcher.updates_for(0.3) >= 3
    ws = await session.ws_connect(f"{base}/ws?reconnect={dropper.reconnect_token}")
    assert msgpack.unpackb((await ws.receive()).data)[1] == "reconnect_refused"


# -- 3. --max-message-size is the one limit, inclusive ------------------------------------

def chat_of_size(size: int) -> bytes:
    """A chat MESSAGE of exactly ``size`` bytes (arena refuses it as too long: invalid_input)."""
    overhead = len(msgpack.packb([codec.C_MESSAGE, "chat", "x" * 300])) - 300
    data = msgpack.packb([codec.C_MESSAGE, "chat", "x" * (size - overhead)])
    assert len(data) == size
    return data


@pytest.mark.parametrize("limit", [4096, 16384])
async def test_a_message_of_exactly_the_limit_is_accepted_and_one_more_byte_closes(
        start_server: Callable[..., Any], session: aiohttp.ClientSession, limit: int) -> None:
    # (The room-message byte budget is raised so that two large messages in a row pass it:
    # this test is about the size limit alone.)
    server = await start_server() if limit == 4096 else \
        await start_server(max_message_size=limit, message_bytes=4 * limit)
    base = url(server)
    ann = await Player.join(session, base, name="ann")
    for size in (5000, limit) if limit > 5000 else (limit,):
        await ann.ws.send_bytes(chat_of_size(size))
        error = await next_error(ann)
        assert error[1] == "invalid_input", (size, error)  # the game saw it: no size error
    await ann.ws.send_bytes(chat_of_size(limit + 1))
    code, _ = await ann.close_event()
    assert code == codec.CLOSE_TOO_BIG


# -- 4 and 9. shapes: bad_message vs unknown_kind -----------------------------------------

async def test_shape_errors_follow_the_document(session: aiohttp.ClientSession,
                                                base: str) -> None:
    ann = await Player.join(session, base, name="ann")
    cases: list[tuple[Any, str]] = [
        ([99], "unknown_kind"), ([0], "unknown_kind"),
        (["x"], "bad_message"), ([], "bad_message"), (5, "bad_message"),
        ([True], "bad_message"), ({"k": 1}, "bad_message"),
        ([4, 1], "bad_message"), ([3], "bad_message"), ([3, 1, 2], "bad_message"),
        ([2, "chat"], "bad_message"), ([1, 1, [0, 0], 9], "bad_message"),
    ]
    for message, _ in cases:
        await ann.ws.send_bytes(msgpack.packb(message))
    await ann.send(codec.C_PING, 1.5)  # the socket is still open after [4, 1]
    await ann.until(lambda: any(m[0] == codec.S_PONG for m in ann.messages))
    assert [e[1] for e in ann.errors] == [code for _, code in cases]
    assert all(len(e) == 3 for e in ann.errors)  # none of them is an INPUT's error


# -- 5 and 6. POST /matchmake refuses what it used to ignore -------------------------------

@pytest.mark.parametrize("body", [
    {"name": 5}, {"name": None}, {"name": ["ann"]}, {"name": True}, {"name": {"n": 1}},
    {"mode": "create", "room_id": "abc"},
    {"mode": "join_or_create", "room_id": "abc"},
    {"mode": "join_or_create", "private": True},
])
async def test_matchmake_refuses_wrong_types_and_combinations(
        session: aiohttp.ClientSession, base: str, body: dict[str, Any]) -> None:
    with pytest.raises(MatchmakeFailed) as refused:
        await matchmake(session, base, **body)
    assert (refused.value.status, refused.value.body["error"]) == (400, "bad_request")
    async with session.get(f"{base}/rooms") as resp:
        assert (await resp.json())["rooms"] == []  # nothing was created


async def test_a_missing_name_still_defaults(session: aiohttp.ClientSession,
                                             base: str) -> None:
    async with session.post(f"{base}/matchmake", json={"game": "arena"}) as resp:
        assert resp.status == 200 and (await resp.json())["name"] == "player"


# -- 7. the movement rule: the document's worked examples are the code's answers ----------

def test_the_documented_movement_examples_are_what_arena_move_computes() -> None:
    rows = table_after(DOC, "| x | y | dx | dy | step | x' | y' |")
    assert len(rows) >= 8
    for row in rows:
        x, y, dx, dy, step, nx, ny = (int(v) for v in row[:7])
        assert move(x, y, dx, dy, step, RULES) == (nx, ny), row


def test_every_config_key_the_arena_sends_is_defined() -> None:
    documented = set()
    for row in table_after(DOC, "| key | meaning |"):
        documented |= set(re.findall(r"`([a-z_]+)`", row[0]))
    room = Arena("r", 20.0, {})
    room.on_create({})
    large = Arena("r", 20.0, {"world": "large"})
    large.on_create({"world": "large"})
    assert documented == set(room.client_config()) | set(large.client_config())
    assert room.client_config()["step"] == 10


async def test_the_welcome_config_gives_the_documented_step(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    server = await start_server(tick_rate=30)
    ann = await Player.join(session, url(server), name="ann")
    assert ann.config["step"] == 7  # floor(200 / 30 + 0.5), as the document's examples say


# -- 8. the input buffer, and the refused seq in input errors ---------------------------------

async def test_refused_inputs_name_their_seq(session: aiohttp.ClientSession,
                                             base: str) -> None:
    ann = await Player.join(session, base, name="ann")
    await ann.send(codec.C_INPUT, 5, [0, 0])
    await ann.send(codec.C_INPUT, 5, [0, 0])  # stale
    await ann.send(codec.C_INPUT, 6, "north")  # invalid
    await ann.send(codec.C_INPUT, 0, [0, 0])  # bad seq, an integer
    await ann.send(codec.C_INPUT, "7", [0, 0])  # bad seq, not an integer
    await ann.send(codec.C_MESSAGE, "chat", 12)  # not an input: no seq
    await ann.until(lambda: len(ann.errors) == 5)
    assert [(e[1], e[3:]) for e in ann.errors] == [
        ("stale_seq", [5]), ("invalid_input", [6]), ("bad_seq", [0]), ("bad_seq", []),
        ("invalid_input", [])]
    # An overflowing burst: the refused seqs are named, and later seqs still count.
    for seq in range(10, 10 + Arena.max_pending_inputs + 5):
        await ann.send(codec.C_INPUT, seq, [0, 0])
    await ann.until(lambda: len(ann.errors) >= 6)
    overflow = [e for e in ann.errors if e[1] == "input_overflow"]
    assert overflow and all(len(e) == 4 and e[3] >= 10 + Arena.max_pending_inputs - 3
                            for e in overflow)


async def test_a_burst_is_applied_one_input_per_tick_and_none_ends_the_stream(
        session: aiohttp.ClientSession, base: str) -> None:
    ann = await Player.join(session, base, name="ann")
    await ann.until(lambda: len(ann.updates) >= 4)  # idle ticks owe nothing
    start = len(ann.updates)
    for _ in range(10):
        await ann.send_input(0, 10)
    await ann.send(codec.C_INPUT, 11, None)  # nothing held
    await ann.until(lambda: ann.replica.ack == 11)
    acks = [(m[2], m[1]) for _, m in ann.updates[start - 1:]]  # (tick, ack)
    # In any n consecutive ticks at most n inputs are applied: faster is never further.
    for i in range(len(acks)):
        for j in range(i + 1, len(acks)):
            assert acks[j][1] - acks[i][1] <= acks[j][0] - acks[i][0], acks
    # After the None nothing stands in for a missing input: the avatar stays put.
    where = dict(ann.avatar or {})
    await ann.until(lambda: len(ann.updates) >= len(acks) + start + 4)
    assert ann.replica.ack == 11 and ann.avatar == where


# -- 10. close codes the document lists that the server sends ----------------------------

async def test_a_text_frame_that_is_not_utf8_closes_with_1007(
        server: TestServer, session: aiohttp.ClientSession) -> None:
    reservation = await matchmake(session, url(server), name="raw")
    assert server.port is not None
    raw = await RawSocket.open(server.host, server.port, "/ws?token=" + reservation["token"])
    assert (await raw.read_message())[0] == codec.S_WELCOME
    raw.send_frame(b"\xff\xfe", OP_TEXT)
    with pytest.raises(ConnectionResetError) as closed:
        while True:
            await raw.read_message()
    assert closed.value.args[1] == codec.CLOSE_BAD_TEXT


# -- 11. the room listing counts reserved seats ------------------------------------------

async def test_the_listing_counts_reserved_seats(session: aiohttp.ClientSession,
                                                 base: str) -> None:
    ann = await Player.join(session, base, name="ann", mode="create",
                            options={"max_players": 2})
    await matchmake(session, base, mode="join", room_id=ann.room_id, name="bob")  # not used

    async def listed() -> dict[str, Any]:
        async with session.get(f"{base}/rooms") as resp:
            (room,) = (await resp.json())["rooms"]
            return dict(room)

    room = await listed()
    assert (room["players"], room["reserved"], room["max_players"]) == (1, 1, 2)
    assert room["joinable"] is False
    with pytest.raises(MatchmakeFailed) as full:
        await matchmake(session, base, mode="join", room_id=ann.room_id, name="carl")
    assert full.value.body["error"] == "room_full"
    await ann.send(codec.C_LEAVE)
    await ann.close_event()
    for _ in range(100):
        room = await listed()
        if room["players"] == 0:
            break
        await asyncio.sleep(0.02)
    assert (room["players"], room["reserved"], room["joinable"]) == (0, 1, True)


# -- 12. tick_rate's type, the joiner's own event, what keeps a seat ----------------------

class TenHertz(Room):
    game = "ten"
    entity_types = (Marker,)
    tick_rate = 10  # an int in the class: still a float on the wire


async def test_tick_rate_is_a_float_on_the_wire(start_server: Callable[..., Any],
                                                session: aiohttp.ClientSession) -> None:
    server = await start_server(games=(Arena, TenHertz), tick_rate=20)
    base = url(server)
    for game, rate in (("arena", 20.0), ("ten", 10.0)):
        player = await Player.join(session, base, game=game, name="ann")
        assert type(player.tick_rate) is float and player.tick_rate == rate


async def test_a_joiners_own_snapshot_carries_its_joined_event(
        session: aiohttp.ClientSession, base: str) -> None:
    ann = await Player.join(session, base, name="ann")
    snapshot = await ann.pump()
    assert snapshot[0] == codec.S_SNAPSHOT
    assert ["joined", [ann.player_id, "ann"]] in snapshot[4]


async def test_server_closes_1009_and_4005_are_drops_that_keep_the_seat(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    server = await start_server(reconnect_grace=10, rate_limit_messages=10)
    base = url(server)
    room_hosts = server.app[MANAGER].room_hosts
    big = await Player.join(session, base, name="big")
    await big.ws.send_bytes(chat_of_size(5000))
    assert (await big.close_event())[0] == codec.CLOSE_TOO_BIG
    flood = await Player.join(session, base, name="flood")

    async def flooding() -> None:
        seq = 0
        while not flood.ws.closed:
            seq += 1
            await flood.send(codec.C_PING, seq)
            await asyncio.sleep(0.01)

    task = asyncio.create_task(flooding())
    assert (await flood.close_event(timeout=8))[0] == codec.CLOSE_RATE_LIMITED
    await task
    for player in (big, flood):
        room_host = room_hosts[player.room_id]
        await until(lambda r=room_host, p=player: p.player_id in r.dropped)  # type: ignore[misc]
        back = await Player.connect(session, f"{base}/ws?reconnect={player.reconnect_token}")
        assert (back.room_id, back.player_id) == (player.room_id, player.player_id)


async def test_a_refused_upgrade_leaves_the_reservation_valid(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    server = await start_server(max_connections_per_ip=1, ip_limit_exempt=())
    base = url(server)
    reservation = await matchmake(session, base, name="ann")
    with pytest.raises(aiohttp.WSServerHandshakeError) as foreign:
        await session.ws_connect(reservation["ws_url"], headers={"Origin": "http://evil.example"})
    assert foreign.value.status == 403
    holder = await Player.join(session, base, name="holder")
    with pytest.raises(aiohttp.WSServerHandshakeError) as crowded:
        await session.ws_connect(reservation["ws_url"])
    assert crowded.value.status == 429
    await holder.ws.close()
    await asyncio.sleep(0.1)
    ann = await Player.connect(session, reservation["ws_url"])  # the same token, still good
    assert ann.room_id == reservation["room_id"]
