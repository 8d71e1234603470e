"""The Room API and the arena's rules, without sockets."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from gameserver.core import codec
from gameserver.core.room import InvalidInput, JoinRefused, Player, Room
from gameserver.core.world import Entity
from gameserver.games.arena import RULES, Arena, Avatar, move


def arena(**options: Any) -> Arena:
    room = Arena("r1", 20.0, options)
    room.on_create(options)
    return room


def test_inputs_apply_in_order_one_per_tick_and_are_acknowledged() -> None:
    room = arena(seed=1)
    p = room._add_player("ann", {})
    start = (p.data["avatar"].x, p.data["avatar"].y)
    for seq in (1, 2, 3):
        room._queue_input(p, seq, [100, 0])
    room._step()
    # A player earns one input credit per tick: one input is applied.
    assert p.ack == 1
    assert p.data["avatar"].x == min(start[0] + room.step, RULES["width"] - 20)
    room._step()
    room._step()
    assert p.ack == 3
    room._step()
    assert p.ack == 3  # nothing left to apply


def test_banked_credits_let_late_inputs_catch_up_but_not_speed_up() -> None:
    room = arena()
    p = room._add_player("ann", {})
    for _ in range(10):  # ten idle ticks bank at most input_burst credits
        room._step()
    for seq in range(1, 11):
        room._queue_input(p, seq, [0, 100])
    room._step()
    assert p.ack == Arena.input_burst


def test_stale_and_overflowing_inputs_are_refused() -> None:
    room = arena()
    p = room._add_player("ann", {})
    room._queue_input(p, 5, [1, 1])
    with pytest.raises(codec.ProtocolError) as stale:
        room._queue_input(p, 5, [1, 1])
    assert stale.value.code == "stale_seq"
    for seq in range(6, 6 + Arena.max_pending_inputs - 1):
        room._queue_input(p, seq, [1, 1])
    with pytest.raises(codec.ProtocolError) as overflow:
        room._queue_input(p, 1000, [1, 1])
    assert overflow.value.code == "input_overflow"


@pytest.mark.parametrize("raw", [None, [1], [1, 2, 3], ["a", 1], [1.5, 0], {"dx": 1}])
def test_arena_refuses_malformed_inputs(raw: Any) -> None:
    with pytest.raises(InvalidInput):
        arena().validate_input(raw)


def test_arena_clamps_oversized_inputs_so_nobody_teleports() -> None:
    room = arena()
    assert room.validate_input([10**9, -(10**9)]) == (100, -100)
    x, y = move(800, 450, 100, -100, room.step, RULES)
    assert (x - 800) ** 2 + (y - 450) ** 2 <= room.step ** 2 + 1


def test_movement_is_normalised_rounded_and_bounded() -> None:
    assert move(100, 100, 100, 0, 10, RULES) == (110, 100)
    assert move(100, 100, 100, 100, 10, RULES) == (107, 107)  # diagonal: 10/sqrt(2)
    assert move(100, 100, 50, 0, 10, RULES) == (105, 100)  # half a stick, half the speed
    assert move(100, 100, 0, 0, 10, RULES) == (100, 100)
    assert move(25, 25, -100, -100, 10, RULES) == (20, 20)  # the wall stops you
    assert move(1575, 100, 100, 0, 10, RULES) == (1580, 100)


def test_orbs_spawn_and_are_collected_for_score() -> None:
    room = arena(seed=3)
    p = room._add_player("ann", {})
    for _ in range(40):
        room._step()
    orbs = [e for e in room.world.entities.values() if type(e).__name__ == "Orb"]
    assert len(orbs) == 8  # one every 250 ms (5 ticks), from tick 0
    avatar: Avatar = p.data["avatar"]
    target = orbs[0]
    avatar.x, avatar.y = target.x - 15, target.y
    room._queue_input(p, 1, [100, 0])
    room._step()
    assert avatar.score == 1
    assert target.id == 0  # removed from the world


def test_chat_is_validated_and_broadcast() -> None:
    room = arena()
    p = room._add_player("ann", {})
    room.on_message(p, "chat", "  hello\x00 ")
    assert room._events[-1] == ["chat", [p.id, "ann", "hello"]]
    with pytest.raises(InvalidInput):
        room.on_message(p, "chat", "x" * 201)
    with pytest.raises(InvalidInput):
        room.on_message(p, "chat", 42)
    with pytest.raises(InvalidInput):
        room.on_message(p, "shout", "hi")


class Door(Entity):
    open: int = 0


class Guarded(Room):
    game = "guarded"
    entity_types = (Door,)

    def on_join_request(self, player: Player) -> None:
        if player.options.get("password") != "sesame":
            raise JoinRefused("wrong password")


def test_join_requests_may_be_refused_with_a_reason() -> None:
    room = Guarded("g", 20.0)
    with pytest.raises(JoinRefused, match="wrong password"):
        room._add_player("eve", {"password": "guess"})
    assert room.players == {}
    assert room._add_player("ann", {"password": "sesame"}).id == 1


def test_room_sends_typed_messages_to_one_player() -> None:
    room = Guarded("g", 20.0)
    p = room._add_player("ann", {"password": "sesame"})
    sent: list[bytes] = []
    p._send = sent.append
    room.send(p, "hint", {"door": 3})
    assert msgpack.unpackb(sent[0]) == [codec.S_MESSAGE, "hint", {"door": 3}]


def test_a_room_needs_a_game_name() -> None:
    class Nameless(Room):
        entity_types = (Door,)

    with pytest.raises(TypeError, match="must set the class attribute 'game'"):
        Nameless("x", 20.0)
