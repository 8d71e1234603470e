"""gameserver.client against real servers on loopback: matchmaking, the replica,
inputs, callbacks, reconnection and leaving (docs/PROTOCOL.md is what it speaks)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest

from gameserver import Entity, InvalidInput, Room, message
from gameserver.auth import sign
from gameserver.client import (
    Client,
    ClientError,
    ConnectError,
    MatchmakeError,
    RoomClosed,
    ServerError,
    SpectatorError,
    should_reconnect,
)
from gameserver.client import Room as ClientRoom
from gameserver.core import codec
from gameserver.games.arena import Arena
from gameserver.web.keys import MANAGER

from .client import url

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
FAST = (0.05, 0.1, 0.2, 0.4, 0.8)  # reconnection back-off for tests


@pytest.fixture
async def client(start_server: Callable[..., Any]) -> AsyncIterator[Client]:
    server = await start_server(games=(Arena, Board))
    async with Client(url(server), name="bot", reconnect_delays=FAST) as c:
        yield c


def avatar(room: ClientRoom) -> dict[str, Any] | None:
    return next((e.values for e in room.entities("Avatar")
                 if e.values["pid"] == room.player_id), None)


class Dot(Entity):
    x: int = 0
    label: str = ""


class Board(Room):
    """A test game driven by messages: dots to add, move and remove; kicks; refusals."""

    game = "board"
    max_players = 4
    entity_types = (Dot,)

    def on_create(self, options: dict[str, Any]) -> None:
        self.dots: dict[str, Dot] = {}

    def on_join(self, player: Any) -> None:
        self.send(player, "hello", player.id)

    def validate_input(self, raw: Any) -> int:
        if type(raw) is not int:
            raise InvalidInput("an input is an integer")
        return raw

    def on_input(self, player: Any, data: int) -> None:
        self.broadcast("input", [player.id, data])

    @message("add", str)
    def on_add(self, player: Any, label: str) -> None:
        self.dots[label] = self.world.spawn(Dot(label=label))

    @message("move", str)
    def on_move(self, player: Any, label: str) -> None:
        self.dots[label].x += 5

    @message("remove", str)
    def on_remove(self, player: Any, label: str) -> None:
        self.world.remove(self.dots.pop(label))

    @message("kick", str)
    def on_kick(self, player: Any, reason: str) -> None:
        self.kick(player, reason)


async def test_join_or_create_seats_and_follows_the_room(client: Client) -> None:
    room = await client.join_or_create("arena")
    assert room.game == "arena" and room.player_id >= 1 and room.name == "bot"
    assert isinstance(room.reconnect_token, str)
    await room.wait_for(lambda: avatar(room) is not None)
    first = room.tick
    assert await room.next_update() > first
    # The welcome's schema names the fields: entities have their values by name.
    assert set(avatar(room) or {}) >= {"pid", "x", "y"}
    assert any(e.kind == "joined" and e.body[0] == room.player_id for e in room.events)
    again = await client.join_or_create("arena")  # the same room: it has free seats
    assert again.room_id == room.room_id and again.player_id != room.player_id
    assert room.rtt is None or room.rtt >= 0
    await room.wait_for(lambda: room.rtt is not None, timeout=3)  # pings every second
    assert 0 < room.rtt < 1  # type: ignore[operator]


async def test_create_private_join_by_id_and_list_rooms_paging(client: Client) -> None:
    public = [await client.create("arena") for _ in range(3)]
    secret = await client.create("arena", private=True)
    assert len({r.room_id for r in [*public, secret]}) == 4
    ids = [r.room_id for r in public]

    async def listed() -> list[str]:
        return [r["room_id"] for r in await client.list_rooms("arena", limit=2)]

    for _ in range(40):  # the listing is rebuilt at most every 0.5 s
        if await listed() == ids:
            break
        await asyncio.sleep(0.1)
    assert await listed() == ids  # every page, oldest first; never the private room
    page = await client.rooms_page("arena", limit=2)
    assert [r["room_id"] for r in page["rooms"]] == ids[:2] and page["next"]
    rest = await client.rooms_page("arena", limit=2, after=page["next"])
    assert [r["room_id"] for r in rest["rooms"]] == ids[2:] and rest["next"] is None
    assert await client.list_rooms("board") == []
    # By id, public or private; with or without the game's name.
    joined = await client.join(secret.room_id)
    assert (joined.room_id, joined.game) == (secret.room_id, "arena")
    assert joined.player_id != secret.player_id
    by_game = await client.join(public[1].room_id, game="arena")
    assert by_game.room_id == public[1].room_id
    assert (await client.join(game="arena")).room_id == ids[0]  # any public room, oldest


async def test_matchmaking_errors_are_matchmake_errors(client: Client) -> None:
    with pytest.raises(MatchmakeError) as info:
        await client.join_or_create("no-such-game")
    assert (info.value.code, info.value.status) == ("unknown_game", 404)
    with pytest.raises(MatchmakeError) as info:
        await client.join("nope1234")
    assert (info.value.code, info.value.status) == ("no_such_room", 404)
    with pytest.raises(MatchmakeError) as info:
        await client.create("arena", {"seed": [1]})
    assert (info.value.code, info.value.status) == ("invalid_option", 400)
    with pytest.raises(MatchmakeError) as info:
        await client.reconnect("not-a-token")
    assert (info.value.code, info.value.status) == ("bad_request", 400)
    with pytest.raises(ValueError):
        await client.join()
    down = Client("http://127.0.0.1:9")  # nothing listens on the discard port
    try:
        with pytest.raises(MatchmakeError) as info:
            await down.join_or_create("arena")
        assert (info.value.code, info.value.status) == ("network", 0)
    finally:
        await down.close()


async def test_a_bad_reservation_is_a_connect_error_with_4001(client: Client) -> None:
    ws_base = "ws" + client.base_url.removeprefix("http")
    with pytest.raises(ConnectError) as info:
        await client.open_socket(f"{ws_base}/ws?token=not-a-reservation")
    assert info.value.code == codec.CLOSE_BAD_RESERVATION
    assert info.value.error is not None and info.value.error.code == "bad_reservation"


async def test_two_clients_replicas_are_equal_at_the_same_tick(client: Client) -> None:
    ann = await client.create("arena", {"seed": 7})
    bob = await client.join(ann.room_id)
    views: dict[str, dict[int, Any]] = {"ann": {}, "bob": {}}
    ann.on_update(lambda r: views["ann"].__setitem__(r.tick, r.state.view()))
    bob.on_update(lambda r: views["bob"].__setitem__(r.tick, r.state.view()))
    for i in range(12):  # both move, so deltas carry changes of both avatars
        await ann.send_input([100, 40])
        await bob.send_input([-30 * (i % 2), 100])
        await ann.next_update()
    await bob.wait_for(lambda: bob.ack == 12 and ann.ack == 12)
    common = sorted(set(views["ann"]) & set(views["bob"]))
    assert len(common) >= 10
    for tick in common:
        assert views["ann"][tick] == views["bob"][tick], tick
    last = views["ann"][common[-1]]
    assert sum(1 for kind, _ in last.values() if kind == "Avatar") == 2
    assert sum(1 for kind, _ in last.values() if kind == "Orb") > 0


async def test_inputs_are_acknowledged_in_order(client: Client) -> None:
    room = await client.create("arena")
    await room.wait_for(lambda: avatar(room) is not None)
    start = dict(avatar(room) or {})
    acks: list[int] = []
    room.on_update(lambda r: acks.append(r.ack))
    dx = 100 if start["x"] < room.config["width"] / 2 else -100  # away from the wall
    seqs = [await room.send_input([dx, 0]) for _ in range(6)]
    assert seqs == [1, 2, 3, 4, 5, 6]
    assert [s for s, _ in room.pending_inputs] == [s for s in seqs if s > room.ack]
    await room.wait_for(lambda: room.ack == 6)
    assert acks == sorted(acks) and acks[-1] == 6 and len(set(acks)) > 2  # rising by steps
    assert room.pending_inputs == []
    step = room.config["step"] * (1 if dx > 0 else -1)
    assert avatar(room)["x"] == start["x"] + 6 * step  # type: ignore[index]
    assert list(room.errors) == []


async def test_a_refused_input_is_an_error_with_its_seq(client: Client) -> None:
    room = await client.create("arena")
    seen: list[ServerError] = []
    room.on_error(seen.append)
    good = await room.send_input([100, 0])
    bad = await room.send_input("north")
    after = await room.send_input([0, 100])
    await room.wait_for(lambda: room.ack == after)
    assert [(e.code, e.seq) for e in room.errors] == [("invalid_input", bad)]
    assert seen == list(room.errors)
    assert good < bad < after and room.pending_inputs == []


async def test_entity_event_and_message_callbacks(client: Client) -> None:
    room = await client.create("board")
    log: list[Any] = []
    room.on_message("hello", lambda body: log.append(("hello", body)))
    room.on_add("Dot", lambda e: log.append(("add", e.values["label"])))
    room.on_change("Dot", lambda e, old: log.append(("change", e.values["x"], old)))
    room.on_remove("Dot", lambda e: log.append(("remove", e.values["label"])))
    room.on_event("input", lambda body: log.append(("input", body)))
    room.on_event("*", lambda kind, body: log.append(("any", kind)))
    await room.next_update()
    assert log == [("hello", room.player_id)]  # sent from on_join, before the snapshot
    await room.send("add", "a")
    await room.wait_for(lambda: ("add", "a") in log)
    await room.send("move", "a")
    await room.wait_for(lambda: any(item[0] == "change" for item in log))
    await room.send("remove", "a")
    await room.wait_for(lambda: ("remove", "a") in log)
    seq = await room.send_input(3)
    await room.wait_for(lambda: ("input", [room.player_id, 3]) in log)
    assert room.ack == seq
    assert log[1:] == [("add", "a"), ("change", 5, {"x": 0}), ("remove", "a"),
                       ("input", [room.player_id, 3]), ("any", "input")]
    assert list(room.messages) == [("hello", room.player_id)]


async def drop(room: ClientRoom) -> None:
    """Lose the connection without a close handshake, as a network failure does."""
    room.ws._response.connection.transport.abort()  # type: ignore[union-attr]
    await asyncio.sleep(0)


async def test_reconnection_restores_the_seat_and_resends_unacknowledged_inputs(
        start_server: Callable[..., Any]) -> None:
    server = await start_server(reconnect_grace=5)
    async with Client(url(server), reconnect_delays=FAST) as client:
        room = await client.create("arena")
        watcher = await client.join(room.room_id)
        await room.wait_for(lambda: avatar(room) is not None)
        for _ in range(3):
            await room.send_input([100, 0])
        await room.wait_for(lambda: room.ack == 3)
        where = dict(avatar(room) or {})
        entity = next(e.id for e in room.entities("Avatar")
                      if e.values["pid"] == room.player_id)
        token, player = room.reconnect_token, room.player_id
        resumed: list[bool] = []
        room.on_reconnect(lambda: resumed.append(True))
        added: list[int] = []
        room.on_add("Avatar", lambda e: added.append(e.id))
        await drop(room)
        # Sent while the connection is gone: kept, and sent after the new snapshot.
        dy = 100 if where["y"] < room.config["height"] / 2 else -100  # away from the wall
        lost = [await room.send_input([0, dy]) for _ in range(2)]
        assert lost == [4, 5]
        await room.wait_for(lambda: room.reconnects == 1, timeout=10)
        # Welcomed again; sent before or after the snapshot, this one follows the others.
        assert await room.send_input([0, dy]) == 6
        await room.wait_for(lambda: room.ack == 6, timeout=5)
        assert resumed == [True] and room.connected and not room.closed
        assert room.player_id == player and room.reconnect_token not in (None, token)
        mine = [e for e in room.entities("Avatar") if e.values["pid"] == player]
        assert [e.id for e in mine] == [entity]  # the same entity, not a new one
        assert added == []  # the snapshot restored the world: nothing new appeared
        step = room.config["step"] * (1 if dy > 0 else -1)
        now = avatar(room) or {}
        assert (now["x"], now["y"]) == (where["x"], where["y"] + 3 * step)
        assert list(room.errors) == []  # no stale_seq: numbering continued after the ack
        # The others never saw the player leave.
        assert not any(e.kind == "left" for e in watcher.events)
        manager = server.app[MANAGER]
        assert player not in manager.room_hosts[room.room_id].dropped


async def test_reconnect_by_token_from_another_client(start_server: Callable[..., Any]) -> None:
    server = await start_server(reconnect_grace=5)
    async with Client(url(server)) as first, Client(url(server)) as second:
        room = await first.create("arena")
        await room.next_update()
        token = room.reconnect_token
        assert isinstance(token, str)
        room.auto_reconnect = False  # this client does not resume the seat itself
        await drop(room)
        assert await room.wait_closed(timeout=5) == 1006  # a cut, not a close
        assert room.reconnect_token == token
        again = await second.reconnect(token)
        assert (again.room_id, again.player_id) == (room.room_id, room.player_id)
        await again.wait_for(lambda: avatar(again) is not None)


async def test_leave_frees_the_seat(client: Client) -> None:
    room = await client.create("arena", {"max_players": 1})
    ended: list[tuple[int, str]] = []
    room.on_leave(lambda code, reason: ended.append((code, reason)))
    with pytest.raises(MatchmakeError) as info:
        await client.join(room.room_id)
    assert (info.value.code, info.value.status) == ("room_full", 409)
    assert await room.leave() == codec.CLOSE_NORMAL
    assert room.closed and [code for code, _ in ended] == [codec.CLOSE_NORMAL]
    assert room not in client.rooms
    with pytest.raises(RoomClosed):
        await room.send_input([1, 0])
    with pytest.raises(RoomClosed):
        await room.next_update()
    again = await client.join(room.room_id)  # the seat is free
    assert again.room_id == room.room_id


async def test_a_kick_ends_the_room_without_reconnecting(client: Client) -> None:
    room = await client.create("board")
    await room.next_update()
    await room.send("kick", "go away")
    assert await room.wait_closed(timeout=5) == codec.CLOSE_KICKED
    assert room.close_reason == "go away" and room.reconnects == 0


def test_which_close_codes_reconnect() -> None:
    for code in (1006, 1013, 4090, 1012):
        assert should_reconnect(code), code
    for code in (1000, 1001, 1002, 1007, 1009, 1011, 4001, 4002, 4003, 4004, 4005, 4007):
        assert not should_reconnect(code), code



async def test_the_readme_bot_runs(client: Client, capsys: pytest.CaptureFixture[str]) -> None:
    section = README.split("\n## Python client\n", 1)[1].split("\n## ", 1)[0]
    source = re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    assert source.rstrip().endswith("asyncio.run(main())")
    source = source.replace("http://127.0.0.1:8000", client.base_url)
    namespace: dict[str, Any] = {}
    exec(compile(source.rstrip().removesuffix("asyncio.run(main())"), "README.md:bot", "exec"),
         namespace)
    watcher = await client.join_or_create("arena")
    await namespace["main"]()
    out = capsys.readouterr().out
    assert re.search(r"chat: \[\d+, 'bot', 'hello from a bot'\]", out), out
    assert re.search(r"rtt \d+\.\d ms", out), out
    # The others saw the bot come, move 20 steps right, chat and go.
    await watcher.wait_for(lambda: any(e.kind == "left" for e in watcher.events))
    x = int(re.search(r"at \{.*'x': (\d+)", out).group(1))  # type: ignore[union-attr]
    joined = next(e.body[0] for e in watcher.events if e.kind == "joined"
                  and e.body[0] != watcher.player_id)
    assert ("chat", [joined, "bot", "hello from a bot"]) in [(e.kind, e.body)
                                                             for e in watcher.events]
    assert 0 < x <= watcher.config["width"] - watcher.config["player_radius"]


async def test_a_seat_gone_by_the_time_of_the_reconnection_ends_the_room(
        start_server: Callable[..., Any]) -> None:
    server = await start_server(reconnect_grace=0.2)
    async with Client(url(server), reconnect_delays=(1.0, 0.1)) as client:
        room = await client.create("arena")
        await room.next_update()
        ended: list[int] = []
        room.on_leave(lambda code, reason: ended.append(code))
        await drop(room)
        await room.wait_for(lambda: not room.connected)
        with pytest.raises(TimeoutError):  # waiting for the reconnection (~1 s): nothing
            await room.next_update(timeout=0.3)
        assert await room.wait_closed(timeout=5) == codec.CLOSE_BAD_RESERVATION
        assert ended == [codec.CLOSE_BAD_RESERVATION] and room.reconnects == 0
        assert [e.code for e in room.errors] == ["reconnect_refused"]
        with pytest.raises(RoomClosed) as info:
            await room.next_update()
        assert info.value.code == codec.CLOSE_BAD_RESERVATION


async def test_without_reconnection_tokens_a_cut_ends_the_room(
        start_server: Callable[..., Any]) -> None:
    server = await start_server(reconnect_grace=0)
    async with Client(url(server), reconnect_delays=FAST) as client:
        room = await client.create("arena")
        assert room.reconnect_token is None
        await room.next_update()
        await drop(room)
        assert await room.wait_closed(timeout=5) == 1006
        assert room.reconnects == 0 and "no reconnection token" in room.close_reason


async def test_an_update_that_does_not_fit_resyncs_from_a_snapshot(client: Client) -> None:
    room = await client.create("arena")
    await room.next_update()
    room.state.tick -= 1  # the next delta's base_tick no longer matches the replica
    await room.wait_for(lambda: room.reconnects == 1, timeout=5)
    ticks: list[int] = []
    room.on_update(lambda r: ticks.append(r.tick))
    await room.wait_for(lambda: len(ticks) >= 3)
    assert not room.closed and room.player_id and avatar(room) is not None


async def test_rate_limits_and_auth_come_as_matchmake_errors(
        start_server: Callable[..., Any]) -> None:
    server = await start_server(ip_limit_exempt=(), room_creations_per_minute=2,
                                auth_secret="s3cret")
    async with Client(url(server)) as anonymous:
        with pytest.raises(MatchmakeError) as info:
            await anonymous.join_or_create("arena")
        assert (info.value.code, info.value.status) == ("auth_required", 401)
    token = sign({"sub": "bot-1", "name": "signed", "exp": int(time.time()) + 60}, "s3cret")
    async with Client(url(server), name="ignored", auth=token) as client:
        rooms = [await client.create("arena") for _ in range(2)]
        assert [r.name for r in rooms] == ["signed", "signed"]  # the token's name wins
        with pytest.raises(MatchmakeError) as info:
            await client.create("arena")
        error = info.value
        assert (error.code, error.status) == ("rate_limited", 429)
        assert error.retry_after is not None and error.retry_after >= 1


# -- spectators -------------------------------------------------------------------------


class Stage(Board):
    """Board with a game's own, lower cap on spectators."""

    game = "stage"
    max_spectators = 1


async def spectators(client: Client, room_id: str, count: int) -> dict[str, Any]:
    """The room's ``GET /rooms`` row once it shows ``count`` spectators (the listing is
    rebuilt at most every 0.5 s)."""
    row: dict[str, Any] = {}
    for _ in range(50):
        row = next((r for r in await client.list_rooms() if r["room_id"] == room_id), {})
        if row.get("spectators") == count:
            return row
        await asyncio.sleep(0.1)
    raise AssertionError(f"never {count} spectators: {row}")


async def test_a_spectator_sees_what_a_player_sees(client: Client) -> None:
    ann = await client.create("arena", {"seed": 7})
    bob = await client.join(ann.room_id)
    other = await client.create("arena")  # newer, and with fewer players
    eve = await client.spectate(ann.room_id)  # no game: tried in turn, as join() does
    assert eve.spectator and not ann.spectator and "spectator" in repr(eve)
    assert (eve.room_id, eve.game, eve.player_id, eve.reconnect_token) == (
        ann.room_id, "arena", 0, None)
    assert (eve.config, eve.schema, eve.tick_rate) == (ann.config, ann.schema, ann.tick_rate)
    assert eve in client.rooms
    # Without an id: the live public room of the game with the most players.
    busiest = await client.spectate(game="arena")
    assert busiest.room_id == ann.room_id != other.room_id and busiest.spectator
    views: dict[str, dict[int, Any]] = {"ann": {}, "eve": {}}
    acks: list[int] = []
    ann.on_update(lambda r: views["ann"].__setitem__(r.tick, r.state.view()))
    eve.on_update(lambda r: (views["eve"].__setitem__(r.tick, r.state.view()),
                             acks.append(r.ack)))
    moves: list[int] = []
    eve.on_change("Avatar", lambda e, old: moves.append(e.values["x"])
                  if e.values["pid"] == ann.player_id and "x" in old else None)
    await ann.wait_for(lambda: avatar(ann) is not None)
    start = dict(avatar(ann) or {})
    dx = 100 if start["x"] < ann.config["width"] / 2 else -100  # away from the wall
    for _ in range(10):
        await ann.send_input([dx, 0])
        await bob.send_input([0, 50])
        await ann.next_update()
    await ann.wait_for(lambda: ann.ack == 10 and bob.ack == 10)
    await eve.wait_for(lambda: eve.tick >= ann.tick)
    common = sorted(set(views["ann"]) & set(views["eve"]))
    assert len(common) >= 8
    for tick in common:
        assert views["ann"][tick] == views["eve"][tick], tick
    # The spectator saw the player move, step by step, to where the player is.
    step = ann.config["step"] * (1 if dx > 0 else -1)
    assert moves and moves[-1] == start["x"] + 10 * step == (avatar(ann) or {})["x"]
    assert set(acks) == {0} and eve.ack == 0 and eve.pending_inputs == []
    # And its events: a chat, with whom it came from.
    await ann.send("chat", "hello, watchers")
    await eve.wait_for(lambda: any(e.kind == "chat" for e in eve.events))
    chat = [e.body for e in eve.events if e.kind == "chat"]
    assert chat == [[ann.player_id, "bot", "hello, watchers"]]
    # Watching is not joining: the players saw no one arrive.
    assert sorted(e.body[0] for e in ann.events if e.kind == "joined") == sorted(
        [ann.player_id, bob.player_id])


async def test_a_spectator_holds_no_seat(start_server: Callable[..., Any]) -> None:
    server = await start_server(games=(Arena, Board), max_spectators=2)
    async with Client(url(server), name="bot", reconnect_delays=FAST) as client:
        room = await client.create("arena", {"max_players": 1})
        eve = await client.spectate(room.room_id, game="arena")  # the room is full
        await eve.wait_for(lambda: avatar(room) is not None and eve.tick >= room.tick)
        with pytest.raises(MatchmakeError) as info:  # and stays full for players
            await client.join(room.room_id)
        assert (info.value.code, info.value.status) == ("room_full", 409)
        host = server.app[MANAGER].room_hosts[room.room_id]
        assert list(host.room.players) == [room.player_id]
        row = await spectators(client, room.room_id, 1)
        assert (row["players"], row["max_players"], row["joinable"]) == (1, 1, False)
        # The spectator cap (--max-spectators 2): a third is refused.
        second = await client.spectate(room.room_id, game="arena")
        with pytest.raises(MatchmakeError) as info:
            await client.spectate(room.room_id, game="arena")
        assert (info.value.code, info.value.status) == ("spectators_full", 409)
        await spectators(client, room.room_id, 2)
        # Leaving frees the spectator's place, and ends its room client-side as a player's.
        ended: list[int] = []
        eve.on_leave(lambda code, reason: ended.append(code))
        assert await eve.leave() == codec.CLOSE_NORMAL
        assert eve.closed and ended == [codec.CLOSE_NORMAL] and eve not in client.rooms
        with pytest.raises(RoomClosed):
            await eve.next_update()
        await spectators(client, room.room_id, 1)
        third = await client.spectate(room.room_id, game="arena")
        assert third.player_id == 0 and second in client.rooms
        assert list(host.room.players) == [room.player_id]


async def test_a_spectator_sends_no_inputs_nor_messages(client: Client) -> None:
    room = await client.create("board")
    eve = await client.spectate(room.room_id, game="board")
    await eve.next_update()
    real_send = eve.ws.send_bytes
    sent: list[Any] = []

    async def recording(data: bytes, *args: Any, **kwargs: Any) -> None:
        sent.append(msgpack.unpackb(data))
        await real_send(data, *args, **kwargs)

    eve.ws.send_bytes = recording  # type: ignore[method-assign]
    with pytest.raises(SpectatorError, match="spectator cannot send inputs"):
        await eve.send_input(1)
    with pytest.raises(SpectatorError, match="spectator cannot send room messages"):
        await eve.send("add", "a")
    assert isinstance(SpectatorError("x"), ClientError)
    assert [m for m in sent if m[0] != codec.C_PING] == []  # refused here, never sent
    assert eve.pending_inputs == [] and list(eve.errors) == []
    # Past the client's guard, straight on its socket: the server refuses each with
    # ERROR "spectator", and nothing else happens (the socket stays open).
    await real_send(msgpack.packb([codec.C_INPUT, 1, 5]))
    await real_send(msgpack.packb([codec.C_MESSAGE, "add", "x"]))
    await eve.wait_for(lambda: len(eve.errors) == 2)
    assert [(e.code, e.seq) for e in eve.errors] == [("spectator", None)] * 2
    await eve.ping()
    await eve.wait_for(lambda: eve.rtt is not None)  # PING still gets its PONG
    await eve.next_update()
    assert eve.connected and not eve.closed and eve.reconnects == 0
    assert room.entities("Dot") == eve.entities("Dot") == []
    assert not any(e.kind == "input" for e in [*room.events, *eve.events])
    assert list(room.errors) == []


async def test_spectating_refusals(start_server: Callable[..., Any]) -> None:
    server = await start_server(games=(Arena, Board, Stage))
    async with Client(url(server), name="bot") as client:
        with pytest.raises(ValueError):
            await client.spectate()
        with pytest.raises(MatchmakeError) as info:
            await client.spectate("nope1234")
        assert (info.value.code, info.value.status) == ("no_such_room", 404)
        with pytest.raises(MatchmakeError) as info:  # no room of the game to watch
            await client.spectate(game="board")
        assert (info.value.code, info.value.status) == ("no_such_room", 404)
        room = await client.create("stage")
        with pytest.raises(MatchmakeError) as info:  # a room of another game
            await client.spectate(room.room_id, game="board")
        assert (info.value.code, info.value.status) == ("no_such_room", 404)
        # The game's own cap (Stage.max_spectators = 1) under the server's 64.
        eve = await client.spectate(room.room_id)
        assert eve.game == "stage" and eve.spectator
        with pytest.raises(MatchmakeError) as info:
            await client.spectate(room.room_id, game="stage")
        assert (info.value.code, info.value.status) == ("spectators_full", 409)
        # An unknown (or used, or expired) pass is a bad reservation, as a seat's is.
        ws_base = "ws" + client.base_url.removeprefix("http")
        with pytest.raises(ConnectError) as connect:
            await client.open_socket(f"{ws_base}/ws?watch=not-a-pass")
        assert connect.value.code == codec.CLOSE_BAD_RESERVATION
        assert connect.value.error is not None
        assert connect.value.error.code == "bad_reservation"


async def test_a_dropped_spectator_watches_again(client: Client) -> None:
    room = await client.create("arena")
    eve = await client.spectate(room.room_id)
    await eve.wait_for(lambda: avatar(room) is not None and eve.tick >= room.tick)
    first_url = eve.ws_url
    back: list[bool] = []
    eve.on_reconnect(lambda: back.append(True))
    added: list[int] = []
    eve.on_add("Avatar", lambda e: added.append(e.id))
    await drop(eve)
    await eve.wait_for(lambda: eve.reconnects == 1, timeout=10)
    assert back == [True] and eve.connected and not eve.closed
    assert eve.ws_url != first_url  # a new pass: spectators have no reconnection token
    assert (eve.room_id, eve.player_id, eve.spectator, eve.reconnect_token) == (
        room.room_id, 0, True, None)
    seq = await room.send_input([0, 100])
    await room.wait_for(lambda: room.ack == seq)
    await eve.wait_for(lambda: eve.tick >= room.tick)
    mine = next(e for e in eve.entities("Avatar") if e.values["pid"] == room.player_id)
    assert mine.values == avatar(room) and added == []  # the snapshot restored the world
    await spectators(client, room.room_id, 1)  # the cut socket's place was given up
    assert list(eve.errors) == []


async def test_a_spectator_whose_place_was_taken_meanwhile_ends(
        start_server: Callable[..., Any]) -> None:
    server = await start_server(max_spectators=1)
    async with Client(url(server), reconnect_delays=(1.5,)) as slow, \
            Client(url(server)) as other:
        room = await other.create("arena")
        eve = await slow.spectate(room.room_id)
        await eve.next_update()
        await drop(eve)
        taker = None
        for _ in range(50):  # once the server noticed the cut, the one place is free
            try:
                taker = await other.spectate(room.room_id, game="arena")
                break
            except MatchmakeError as exc:
                assert exc.code == "spectators_full"
                await asyncio.sleep(0.02)
        assert taker is not None and not eve.closed  # eve is still waiting to go back
        assert await eve.wait_closed(timeout=5) == codec.CLOSE_JOIN_REFUSED
        assert "spectators_full" in eve.close_reason and eve.reconnects == 0


async def test_a_spectator_leaves_with_the_room(start_server: Callable[..., Any]) -> None:
    server = await start_server(empty_room_grace=0.1)
    async with Client(url(server), reconnect_delays=FAST) as client:
        room = await client.create("arena")
        eve = await client.spectate(room.room_id)
        await eve.next_update()
        await room.leave()  # the last player: spectators do not keep a room open
        assert await eve.wait_closed(timeout=5) == codec.CLOSE_ROOM_CLOSED
        assert eve.reconnects == 0
