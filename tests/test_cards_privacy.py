"""cards' privacy on the wire: three players play a whole game over real sockets to a
real server on 127.0.0.1, watched by a spectator, and every message each of them is sent
is decoded on its own (not with the reference Replica) and checked when it arrives: a
card's face (``rank``, ``suit``) travels to a player only for a card in that player's
hand or on the discard pile, and to a spectator only for the discard pile. Every update
is read, snapshots and deltas and each of their view parts (docs/PROTOCOL.md, "Wire").
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import msgpack
import pytest

from gameserver.core import codec
from gameserver.games.cards import Cards
from gameserver.web.keys import MANAGER

from .client import matchmake, url

CARD_FIELDS = ["owner", "place", "order", "rank", "suit"]


class QuickCards(Cards):
    """The same game at 20 updates a second, so that a whole game takes seconds."""

    tick_rate = 20


class Wire:
    """What one socket was sent, decoded independently and checked message by message."""

    def __init__(self, welcome: list[Any]) -> None:
        self.pid: int = welcome[4]  # 0: a spectator
        self.types = [(name, [f for f, _ in fields], [k for _, k in fields])
                      for name, fields in welcome[6]]
        self.card_type = next(i for i, t in enumerate(self.types) if t[0] == "Card")
        assert self.types[self.card_type][1] == CARD_FIELDS
        self.entities: dict[int, tuple[int, dict[str, Any]]] = {}
        self.tick = -1
        self.updates = 0
        self.parts = 0  # view parts received
        self.faces = 0  # faces (rank or suit values) received
        self.events: list[list[Any]] = []
        self.errors: list[list[Any]] = []

    # -- reading ----------------------------------------------------------------------

    def receive(self, data: bytes) -> list[Any]:
        msg: list[Any] = msgpack.unpackb(data, strict_map_key=False)
        if msg[0] == codec.S_SNAPSHOT:
            _, _ack, tick, records, events, *rest = msg
            parts = rest[0] if rest else []
            carried: list[tuple[int, str]] = []
            self.entities = {}
            self._create(records, carried)
            for created, _changed, removed in parts:
                assert removed == [], "a snapshot's part removes nothing"
                self._create(created, carried)
            for part in parts:
                self._change(part[1], carried)
        elif msg[0] == codec.S_DELTA:
            _, _ack, tick, base, created, changed, removed, events, *rest = msg
            assert base == self.tick, f"delta from {base} on {self.tick}"
            parts = rest[0] if rest else []
            carried = []
            for eid in [*removed, *(i for p in parts for i in p[2])]:
                del self.entities[eid]
            for records in [created, *(p[0] for p in parts)]:
                self._create(records, carried)
            for records in [changed, *(p[1] for p in parts)]:
                self._change(records, carried)
        else:
            if msg[0] == codec.S_ERROR:
                self.errors.append(msg)
            assert not mentions_a_face(msg), msg  # welcomes, messages, errors, pongs
            return msg
        self.tick = tick
        self.updates += 1
        self.parts += len(parts)
        self.faces += len(carried)
        self.events.extend(events)
        self.check(carried, events)
        return msg

    def _create(self, records: list[Any], carried: list[tuple[int, str]]) -> None:
        i = 0
        while i < len(records):
            eid, type_index = records[i], records[i + 1]
            fields = self.types[type_index][1]
            values = dict(zip(fields, records[i + 2:i + 2 + len(fields)], strict=True))
            i += 2 + len(fields)
            assert eid not in self.entities, f"created twice: {eid}"
            self.entities[eid] = (type_index, values)
            if type_index == self.card_type:
                carried.extend((eid, f) for f in ("rank", "suit") if values[f] is not None)

    def _change(self, records: list[Any], carried: list[tuple[int, str]]) -> None:
        i = 0
        while i < len(records):
            eid, mask = records[i], records[i + 1]
            i += 2
            type_index, values = self.entities[eid]
            _, fields, kinds = self.types[type_index]
            for bit, (name, kind) in enumerate(zip(fields, kinds, strict=True)):
                if mask >> bit & 1:
                    value = records[i]
                    i += 1
                    values[name] = values[name] + value if kind == "i" else value
                    if type_index == self.card_type and name in ("rank", "suit") \
                            and value is not None:
                        carried.append((eid, name))

    # -- checking -----------------------------------------------------------------------

    def sees(self, card: dict[str, Any]) -> bool:
        """May this socket know the card's face now?"""
        return card["place"] == "discard" or bool(self.pid and card["owner"] == self.pid)

    def check(self, carried: list[tuple[int, str]], events: list[Any]) -> None:
        """After one update: each face it carried is one this socket may see, and the
        picture as a whole has exactly the faces it may see."""
        for eid, field in carried:
            card = self.entities[eid][1]
            assert self.sees(card), f"tick {self.tick}: {field} of {eid} sent to " \
                                    f"{self.pid}: {card}"
        for eid, card in self.cards().items():
            if self.sees(card):
                assert card["rank"] in range(1, 14) and card["suit"] in "CDHS", (eid, card)
            else:
                assert (card["rank"], card["suit"]) == (None, None), (self.pid, eid, card)
        for kind, body in events:
            if kind == "play":  # the one event with a face: the card just discarded
                card = self.entities[body["card"]][1]
                assert card["place"] == "discard"
                if card["order"] == max(c["order"] for c in self.cards().values()):
                    assert (card["rank"], card["suit"]) == (body["rank"], body["suit"])
            else:
                assert not mentions_a_face(body), (kind, body)

    # -- what the player knows ------------------------------------------------------------

    def cards(self) -> dict[int, dict[str, Any]]:
        return {i: v for i, (t, v) in self.entities.items() if t == self.card_type}

    def table(self) -> dict[str, Any]:
        return next((v for t, v in self.entities.values() if self.types[t][0] == "Table"), {})

    def hand(self) -> list[int]:
        mine = [(v["order"], i) for i, v in self.cards().items() if v["owner"] == self.pid]
        return [i for _, i in sorted(mine)]


def mentions_a_face(value: Any) -> bool:
    if isinstance(value, dict):
        return bool({"rank", "suit"} & set(value)) or any(map(mentions_a_face, value.values()))
    if isinstance(value, list):
        return any(map(mentions_a_face, value))
    return False


class Socket:
    """One connection: every binary message goes through its Wire as it arrives."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, name: str) -> None:
        self.ws = ws
        self.name = name
        self.wire: Wire | None = None
        self.room_id = ""

    @classmethod
    async def open(cls, session: aiohttp.ClientSession, base: str, name: str,
                   **body: Any) -> Socket:
        reservation = await matchmake(session, base, game="cards", name=name, **body)
        sock = cls(await session.ws_connect(reservation["ws_url"]), name)
        welcome = msgpack.unpackb((await sock.ws.receive(timeout=5)).data)
        assert welcome[0] == codec.S_WELCOME and welcome[3] == "cards"
        assert not mentions_a_face(welcome)
        sock.room_id = welcome[2]
        sock.wire = Wire(welcome)
        return sock

    async def until(self, predicate: Callable[[Wire], bool], timeout: float = 20.0) -> None:
        wire = self.wire
        assert wire is not None
        deadline = time.monotonic() + timeout
        while not predicate(wire):
            msg = await self.ws.receive(timeout=max(0.01, deadline - time.monotonic()))
            assert msg.type is aiohttp.WSMsgType.BINARY, (self.name, msg)
            wire.receive(msg.data)
            assert wire.errors == [], (self.name, wire.errors)

    async def send(self, kind: str, body: Any) -> None:
        await self.ws.send_bytes(codec.encode(codec.C_MESSAGE, kind, body))

    async def play(self, opening_draws: int) -> int:
        """Take turns until the round is over: draw ``opening_draws`` times first (playing
        what was drawn when it fits, else passing), then play the first card that fits,
        else draw, else pass; decided only from what this socket was sent. Moves made."""
        wire = self.wire
        assert wire is not None
        turns = draws = 0
        while True:
            await self.until(lambda w: w.table().get("state") == "over" or (
                w.table().get("state") == "playing" and w.table()["turn"] == w.pid))
            table = wire.table()
            if table["state"] == "over":
                return turns
            before = key(wire)
            top = wire.cards()[table["top"]]

            def fits(cid: int, top: dict[str, Any] = top, table: dict[str, Any] = table
                     ) -> bool:
                card = wire.cards()[cid]
                return card["rank"] == 8 or card["suit"] == table["suit"] \
                    or card["rank"] == top["rank"]
            playable = [c for c in wire.hand() if fits(c)]
            if table["drawn"] and fits(table["drawn"]):
                await self.play_card(table["drawn"])
            elif table["drawn"]:
                await self.send("pass", None)
            elif draws < opening_draws and table["draw_count"]:
                await self.send("draw", None)
                draws += 1
            elif playable:
                await self.play_card(playable[0])
            elif table["draw_count"]:
                await self.send("draw", None)
            else:
                await self.send("pass", None)
            turns += 1
            await self.until(lambda w, before=before: key(w) != before)

    async def play_card(self, cid: int) -> None:
        assert self.wire is not None
        card = self.wire.cards()[cid]
        assert card["rank"] is not None, "a card in one's own hand has a face"
        await self.send("play", {"card": cid, "suit": card["suit"]} if card["rank"] == 8
                        else {"card": cid})


def key(wire: Wire) -> tuple[Any, ...]:
    t = wire.table()
    return t["state"], t["turn"], t["drawn"], t["top"], t["draw_count"], tuple(wire.hand())


def test_the_checker_catches_a_face_out_of_place() -> None:
    """The check can fail: a face sent for a card in another hand or in the draw pile."""
    schema = [["Table", [["state", "v"]]], ["Card", [[f, "i" if f in ("owner", "order")
                                                       else "v"] for f in CARD_FIELDS]]]
    welcome = [codec.S_WELCOME, 2, "r", "cards", 7, 4.0, schema, {}, "token"]
    fine = [codec.S_SNAPSHOT, 0, 1, [1, 1, 7, "hand", 1, 5, "H", 2, 1, 0, "discard", 2, 9, "S",
                                     3, 1, 8, "hand", 3, None, None], []]
    wire = Wire(welcome)
    wire.receive(msgpack.packb(fine))
    assert wire.faces == 4 and wire.hand() == [1]
    leaks = [
        # another player's card, in the snapshot
        [codec.S_SNAPSHOT, 0, 1, [3, 1, 8, "hand", 3, 4, "D"], []],
        # a draw pile card's face in a private part
        [codec.S_DELTA, 0, 2, 1, [], [], [], [], [[[4, 1, 0, "draw", 0, None, None], [4, 8, 12],
                                                  []]]],
        # a card of ours leaves the hand, and its face stays
        [codec.S_DELTA, 0, 2, 1, [], [1, 3, -7, "draw"], [], []],
        # a face out of place in an event
        [codec.S_DELTA, 0, 2, 1, [], [], [], [["draw", {"player": 8, "card": 3, "rank": 4}]]],
        # or in a direct message
        [codec.S_MESSAGE, "hint", {"card": 3, "suit": "D"}],
    ]
    for leak in leaks:
        wire = Wire(welcome)
        wire.receive(msgpack.packb(fine))
        with pytest.raises(AssertionError):
            wire.receive(msgpack.packb(leak))


async def test_a_whole_game_sends_no_face_out_of_place(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    # The bots move as fast as the updates come: past the default room-message budget.
    server = await start_server(games=(QuickCards,), message_rate=100.0)
    base = url(server)
    ann = await Socket.open(session, base, "ann", options={"players": 3})
    assert ann.wire is not None and ann.wire.pid
    room = server.app[MANAGER].room_hosts[ann.room_id].room
    assert isinstance(room, Cards)
    room.rng = random.Random(11)  # before the deal: the same game each run
    bob = await Socket.open(session, base, "bob", room_id=room.room_id, mode="join")
    vic = await Socket.open(session, base, "vic", room_id=room.room_id, mode="spectate")
    cat = await Socket.open(session, base, "cat", room_id=room.room_id, mode="join")
    players = [ann, bob, cat]
    assert vic.wire is not None and vic.wire.pid == 0

    async def watch() -> None:
        await vic.until(lambda w: w.table().get("state") == "over", timeout=60)

    # 36 cards are left to draw after the deal: drawing 12 times each empties the pile and
    # brings the discard pile back as a face-down draw pile.
    moves = await asyncio.gather(*(p.play(opening_draws=12) for p in players), watch())
    assert sum(moves[:3]) > 36
    for sock in [*players, vic]:
        wire = sock.wire
        assert wire is not None
        table = wire.table()
        assert table["state"] == "over" and table["reason"] == "out"
        assert table["winner"] in {p.wire.pid for p in players if p.wire}
        kinds = [kind for kind, _ in wire.events]
        assert "reshuffle" in kinds and kinds.count("over") == 1
        assert wire.updates > 50
        # The faces it may see were sent (the check can fail the other way), and they
        # are the server's.
        assert wire.faces > 0
        for card in room.cards:
            seen = wire.cards()[card.id]
            assert (seen["owner"], seen["place"]) == (card.owner, card.place)
            if wire.sees(seen):
                assert (seen["rank"], seen["suit"]) == (card.rank, card.suit)
    # Players got private parts (their hands); a spectator only the public view.
    assert all(p.wire and p.wire.parts > 0 for p in players)
    assert vic.wire.parts == 0
    for sock in [*players, vic]:
        await sock.ws.close()
