"""connect_four, the turn-based demo game: its rules played through ``gameserver.testing``
(what the players receive is what is asserted), and one match through a real server."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest

from gameserver import InvalidOption
from gameserver.core import codec
from gameserver.games.connect_four import EMPTY, ConnectFour, winning_cells
from gameserver.testing import HarnessPlayer, JoinRefused, RoomHarness

from .client import Player, matchmake
from .doctables import DOC, table_after

# A whole game that fills the board with no four in a row (found by a seeded search).
DRAW = [5, 4, 5, 0, 6, 2, 4, 5, 5, 0, 4, 1, 1, 0, 4, 5, 6, 5, 3, 1, 1,
        2, 2, 6, 2, 6, 6, 3, 6, 2, 0, 3, 0, 3, 3, 4, 3, 1, 4, 2, 1, 0]


def board(player: HarnessPlayer) -> dict[str, Any]:
    return player.entity("Board").values


def seat(player: HarnessPlayer, of: HarnessPlayer | None = None) -> dict[str, Any]:
    return player.entity("Seat", pid=(of or player).id).values


def match(**options: Any) -> tuple[RoomHarness, HarnessPlayer, HarnessPlayer]:
    """A room with ann (disc 1, to move) and bob seated, and their first update."""
    room = RoomHarness(ConnectFour, options)
    ann = room.join("ann")
    bob = room.join("bob")
    room.tick()
    return room, ann, bob


def play(room: RoomHarness, players: tuple[HarnessPlayer, ...], cols: list[int]) -> None:
    """Drop in ``cols`` in turn, each by the player the board says is to move."""
    by_id = {p.id: p for p in players}
    for col in cols:
        mover = by_id[board(players[0])["turn"]]
        refused = len(mover.errors)
        mover.send("drop", col)
        assert mover.errors[refused:] == []
        room.tick()


def test_two_players_start_a_round_and_lock_the_room() -> None:
    room = RoomHarness(ConnectFour)
    ann = room.join("ann")
    room.tick()
    assert ann.config == {"cols": 7, "rows": 6, "connect": 4, "turn_seconds": 30}
    assert ann.welcome[5] == 4.0  # the slow tick: 4 updates a second, not 20
    assert board(ann)["state"] == "waiting" and board(ann)["turn"] == 0
    assert room.listing == {"locked": False, "metadata": {"state": "waiting"}}
    ann.send("drop", 3)
    assert ann.errors == [["invalid_input", "waiting for an opponent"]]
    bob = room.join("bob")
    assert room.listing == {"locked": True, "metadata": {"state": "playing"}}
    room.tick()
    for player in (ann, bob):
        assert board(player) == {
            "cells": EMPTY, "state": "playing", "turn": ann.id, "winner": 0, "reason": "",
            "line": [], "last": -1, "moves": 0, "round": 1,
            "turn_ends": 1 + 30 * 4, "seconds_left": 30}
        assert (seat(player, ann)["disc"], seat(player, bob)["disc"]) == (1, 2)
        assert player.events_of("start") == [{"round": 1, "starter": ann.id}]
    assert bob.events_of("joined") == [{"player": bob.id, "name": "bob", "disc": 2}]
    with pytest.raises(JoinRefused):
        room.join("cat")
    assert [s.values["name"] for s in ann.entities("Seat")] == ["ann", "bob"]


def test_turns_are_enforced_and_moves_are_seen_by_both() -> None:
    room, ann, bob = match()
    bob.send("drop", 3)
    assert bob.errors == [["invalid_input", "it is not your turn"]]
    ann.send("drop", 3)
    ann.send("drop", 4)
    assert ann.errors == [["invalid_input", "it is not your turn"]]
    bob.send("drop", 3)  # on top of ann's disc
    room.tick()
    for player in (ann, bob):
        assert board(player)["cells"] == "0001000" + "0001000".replace("1", "2") + "0" * 28
        assert board(player)["turn"] == ann.id
        assert board(player)["moves"] == 2 and board(player)["last"] == 10
        assert player.events_of("move") == [
            {"player": ann.id, "disc": 1, "col": 3, "row": 0, "cell": 3},
            {"player": bob.id, "disc": 2, "col": 3, "row": 1, "cell": 10}]


@pytest.mark.parametrize(("body", "error"), [
    (-1, "the column must be 0-6"),
    (7, "the column must be 0-6"),
    ("3", "a 'drop' message takes a int body"),
    (True, "a 'drop' message takes a int body"),
    (None, "a 'drop' message takes a int body"),
])
def test_bad_columns_are_refused(body: Any, error: str) -> None:
    room, ann, _ = match()
    ann.send("drop", body)
    room.tick()
    assert ann.errors == [["invalid_input", error]]
    assert board(ann)["moves"] == 0 and board(ann)["turn"] == ann.id


def test_a_full_column_is_refused_and_the_turn_stays() -> None:
    room, ann, bob = match()
    play(room, (ann, bob), [0] * 6)  # alternate discs: no four
    assert board(ann)["turn"] == ann.id
    ann.send("drop", 0)
    assert ann.errors == [["invalid_input", "column 0 is full"]]
    ann.send("drop", 1)
    room.tick()
    assert len(ann.errors) == 1 and board(bob)["cells"][1] == "1"


@pytest.mark.parametrize(("moves", "line"), [
    ([0, 1, 0, 1, 0, 1, 0], [0, 7, 14, 21]),                      # up column 0
    ([0, 0, 1, 1, 2, 2, 3], [0, 1, 2, 3]),                        # across the bottom row
    ([0, 1, 1, 2, 3, 2, 2, 3, 4, 3, 3], [0, 8, 16, 24]),          # diagonal, rising right
    ([6, 5, 5, 4, 3, 4, 4, 3, 2, 3, 3], [6, 12, 18, 24]),         # diagonal, rising left
    ([0, 0, 1, 1, 2, 2, 4, 4, 3], [0, 1, 2, 3, 4]),               # five in a row: all five
])
def test_four_in_a_row_wins_the_round(moves: list[int], line: list[int]) -> None:
    room, ann, bob = match()
    play(room, (ann, bob), moves)
    for player in (ann, bob):
        assert {k: board(player)[k] for k in ("state", "winner", "reason", "line", "turn")} == {
            "state": "over", "winner": ann.id, "reason": "four", "line": line, "turn": 0}
        assert player.events_of("over") == [
            {"round": 1, "winner": ann.id, "reason": "four", "line": line}]
        assert (seat(player, ann)["wins"], seat(player, bob)["wins"]) == (1, 0)
    assert room.listing["metadata"] == {"state": "over"}
    bob.send("drop", 6)
    assert bob.errors == [["invalid_input", "the round is over: send 'rematch' to play again"]]


def test_winning_cells_sees_every_line_through_the_new_disc() -> None:
    grid = [0] * 42
    for cell in (0, 1, 2, 10, 17, 24):  # bottom row 0-2, and up the diagonal from cell 3
        grid[cell] = 1
    assert winning_cells(grid, 3) == []  # cell 3 is still empty: nothing through it
    grid[3] = 1
    assert winning_cells(grid, 3) == [0, 1, 2, 3, 10, 17, 24]  # two lines cross at 3
    assert winning_cells(grid, 1) == [0, 1, 2, 3]  # only the row passes through 1


def test_a_full_board_without_four_is_a_draw() -> None:
    room, ann, bob = match()
    play(room, (ann, bob), DRAW)
    assert board(ann)["cells"].count("0") == 0
    assert {k: board(bob)[k] for k in ("state", "winner", "reason", "moves")} == {
        "state": "over", "winner": -1, "reason": "draw", "moves": 42}
    assert seat(ann)["wins"] == seat(bob)["wins"] == 0


def test_rematch_needs_both_players_and_alternates_the_starter() -> None:
    room, ann, bob = match()
    ann.send("rematch", None)
    assert ann.errors == [["invalid_input", "the round is still being played"]]
    play(room, (ann, bob), [0, 1, 0, 1, 0, 1, 0])  # ann wins round 1
    ann.send("rematch", None)
    ann.send("rematch", None)  # twice: changes nothing
    room.tick()
    assert ann.errors == [["invalid_input", "the round is still being played"]]
    assert bob.events_of("rematch") == [{"player": ann.id}]
    assert seat(bob, ann)["rematch"] and not seat(bob)["rematch"]
    assert board(bob)["state"] == "over"
    bob.send("rematch", None)
    room.tick()
    for player in (ann, bob):
        assert {k: board(player)[k] for k in ("state", "round", "turn", "cells", "winner",
                                              "line", "moves")} == {
            "state": "playing", "round": 2, "turn": bob.id, "cells": EMPTY, "winner": 0,
            "line": [], "moves": 0}
        assert not seat(player, ann)["rematch"] and not seat(player, bob)["rematch"]
        assert seat(player, ann)["wins"] == 1  # a match keeps its score
    assert ann.events_of("start")[-1] == {"round": 2, "starter": bob.id}
    ann.send("drop", 0)
    assert ann.errors[-1] == ["invalid_input", "it is not your turn"]
    play(room, (ann, bob), [0, 1, 0, 1, 0, 1, 0])  # bob wins round 2
    assert board(ann)["winner"] == bob.id and seat(ann, bob)["wins"] == 1
    bob.send("rematch", None)
    ann.send("rematch", None)
    room.tick()
    assert board(ann)["round"] == 3 and board(ann)["turn"] == ann.id  # and back to ann


def test_the_turn_timer_counts_down_and_the_player_to_move_forfeits() -> None:
    room, ann, bob = match(turn_seconds=5)  # 20 ticks at 4 Hz
    assert ann.config["turn_seconds"] == 5
    start = ann.replica.tick  # type: ignore[union-attr]
    assert board(ann)["turn_ends"] == start + 19  # the turn began one tick before
    room.tick(4)
    assert board(ann)["seconds_left"] == 4  # 15 ticks left: 3.75 s, shown as 4
    ann.send("drop", 3)  # a move gives bob a whole turn
    room.tick()
    tick = ann.replica.tick  # type: ignore[union-attr]
    assert board(bob)["turn"] == bob.id and board(bob)["turn_ends"] == tick - 1 + 20
    assert board(bob)["seconds_left"] == 5
    room.tick(18)
    assert board(bob)["state"] == "playing" and board(bob)["seconds_left"] == 1
    room.tick()
    for player in (ann, bob):
        assert {k: board(player)[k] for k in ("state", "winner", "reason", "turn",
                                              "seconds_left", "turn_ends")} == {
            "state": "over", "winner": ann.id, "reason": "timeout", "turn": 0,
            "seconds_left": 0, "turn_ends": 0}
        assert player.events_of("over") == [
            {"round": 1, "winner": ann.id, "reason": "timeout", "line": []}]
    assert seat(bob, ann)["wins"] == 1
    room.tick(100)  # no clock runs while the round is over
    assert board(ann)["state"] == "over" and len(ann.events_of("over")) == 1


@pytest.mark.parametrize("seconds", [4, 121, "30", 30.0, True, None])
def test_turn_seconds_outside_its_bounds_is_refused(seconds: Any) -> None:
    with pytest.raises(InvalidOption, match="'turn_seconds' must be an integer from 5 to 120"):
        RoomHarness(ConnectFour, {"turn_seconds": seconds})
    for fine in (5, 120):
        assert RoomHarness(ConnectFour, {"turn_seconds": fine}).join().config[
            "turn_seconds"] == fine


def test_inputs_are_refused_moves_are_messages() -> None:
    room, ann, _ = match()
    seq = ann.input(3)
    assert ann.errors == [["invalid_input", "connect_four takes no inputs: send a 'drop' "
                                            "message with a column", seq]]
    room.tick()
    assert ann.ack == 0 and board(ann)["moves"] == 0


def test_resigning_gives_the_round_to_the_opponent() -> None:
    room, ann, bob = match()
    bob.send("resign", None)  # any time in the round, not only on one's turn
    room.tick()
    assert {k: board(ann)[k] for k in ("state", "winner", "reason")} == {
        "state": "over", "winner": ann.id, "reason": "resign"}
    bob.send("resign", None)
    assert bob.errors == [["invalid_input", "the round is over: send 'rematch' to play again"]]


def test_leaving_mid_round_forfeits_and_the_room_waits_for_a_new_opponent() -> None:
    room, ann, bob = match()
    play(room, (ann, bob), [3, 3])
    ann.leave()
    room.tick()
    assert bob.events_of("left") == [{"player": ann.id, "name": "ann"}]
    assert bob.events_of("over") == [
        {"round": 1, "winner": bob.id, "reason": "forfeit", "line": []}]
    assert {k: board(bob)[k] for k in ("state", "winner", "reason", "turn")} == {
        "state": "waiting", "winner": bob.id, "reason": "forfeit", "turn": 0}
    assert [s.values["name"] for s in bob.entities("Seat")] == ["bob"]
    assert seat(bob)["wins"] == 1
    assert room.listing == {"locked": False, "metadata": {"state": "waiting"}}
    bob.send("rematch", None)
    bob.send("drop", 0)
    assert bob.errors == [["invalid_input", "waiting for an opponent"]] * 2
    cat = room.join("cat")  # the free seat, disc 1: a new match, and cat starts it
    room.tick()
    assert room.listing["locked"] is True
    assert seat(bob, cat)["disc"] == 1 and seat(bob)["wins"] == 0
    assert {k: board(cat)[k] for k in ("state", "round", "turn", "cells", "winner")} == {
        "state": "playing", "round": 1, "turn": cat.id, "cells": EMPTY, "winner": 0}


def test_a_player_alone_may_leave_and_a_dropped_one_keeps_the_seat() -> None:
    room = RoomHarness(ConnectFour)
    ann = room.join("ann")
    ann.leave()
    bob = room.join("bob")
    cat = room.join("cat")
    room.tick()
    assert board(bob)["state"] == "playing" and seat(cat)["disc"] == 2
    bob.drop()  # bob is to move: the clock does not wait for him
    room.tick()
    assert seat(cat, bob)["connected"] is False and room.listing["locked"] is True
    room.tick(10)
    bob.reconnect()
    room.tick()
    assert seat(bob)["connected"] is True and board(bob)["seconds_left"] == 27
    bob.send("drop", 2)
    room.tick()
    assert bob.errors == [] and board(cat)["turn"] == cat.id


def test_a_dropped_player_who_never_returns_forfeits() -> None:
    room, ann, bob = match()
    bob.drop()
    room.advance(room.limits.reconnect_grace)  # shorter than the turn: the grace ends it
    room.tick()
    assert {k: board(ann)[k] for k in ("state", "winner", "reason")} == {
        "state": "waiting", "winner": ann.id, "reason": "forfeit"}
    assert room.listing["locked"] is False


def test_the_protocol_document_lists_the_config_and_options() -> None:
    keys = {key for row in table_after(DOC, "| connect_four key | meaning |")
            for key in re.findall(r"`([a-z_]+)`", row[0])}
    room = RoomHarness(ConnectFour)
    assert keys == set(room.join().config)
    assert "`connect_four` reads `turn_seconds`" in DOC


async def test_matchmaking_pairs_two_players_and_both_see_a_move(
        session: aiohttp.ClientSession, base: str) -> None:
    async with session.get(f"{base}/games") as resp:
        assert "connect_four" in (await resp.json())["games"]
    ann = await Player.join(session, base, game="connect_four", name="ann")
    bob = await Player.join(session, base, game="connect_four", name="bob")
    assert ann.room_id == bob.room_id and ann.game == "connect_four"
    assert ann.tick_rate == 4.0 and ann.config["cols"] == 7

    def board_of(player: Player) -> dict[str, Any]:
        boards = [e.values for e in player.replica.entities.values() if e.type == "Board"]
        return boards[0] if boards else {}

    await ann.until(lambda: board_of(ann).get("state") == "playing")
    assert board_of(ann)["turn"] == ann.player_id
    # Seated and locked: a third player gets a room of their own.
    third = await matchmake(session, base, game="connect_four", name="cat")
    assert third["room_id"] != ann.room_id
    async with session.post(f"{base}/matchmake", json={
            "game": "connect_four", "mode": "create", "options": {"turn_seconds": 1}}) as resp:
        assert resp.status == 400 and (await resp.json())["error"] == "invalid_option"
    await ann.send(codec.C_MESSAGE, "drop", 3)
    await bob.until(lambda: board_of(bob).get("turn") == bob.player_id)  # bob sees ann's move
    await bob.send(codec.C_MESSAGE, "drop", 3)
    for player in (ann, bob):
        await player.until(lambda p=player: board_of(p).get("moves") == 2)  # type: ignore[misc]
        assert board_of(player)["cells"][3] == "1" and board_of(player)["cells"][10] == "2"
        events = [e for _, update in player.updates for e in update[-1]]
        assert [e[1] for e in events if e[0] == "move"] == [
            {"player": ann.player_id, "disc": 1, "col": 3, "row": 0, "cell": 3},
            {"player": bob.player_id, "disc": 2, "col": 3, "row": 1, "cell": 10}]
