"""The Room API and the arena's rules, played through ``gameserver.testing``: what the
players receive is what is asserted."""

from __future__ import annotations

from typing import Any

import pytest

from gameserver.core import codec
from gameserver.core.room import JoinRefused, Player, Room, message
from gameserver.core.world import Entity
from gameserver.games.arena import RULES, Arena, move
from gameserver.testing import HarnessPlayer, RoomHarness


def arena(**options: Any) -> Arena:
    """A bare arena room, for its pure rules."""
    room = Arena("r1", 20.0, options)
    room.on_create(options)
    return room


def avatar(player: HarnessPlayer, of: HarnessPlayer | None = None) -> dict[str, Any]:
    """The fields of ``of``'s avatar (default: the player's own) as ``player`` sees them."""
    return player.entity("Avatar", pid=(of or player).id).values


def test_inputs_apply_in_order_one_per_tick_and_are_acknowledged() -> None:
    room = RoomHarness(Arena, {"seed": 1})
    ann = room.join("ann")
    step = ann.config["step"]
    spawned = room.room.players[ann.id].data["avatar"]
    where = {"x": spawned.x, "y": spawned.y}
    moves = ([100, 0], [0, 100], [-100, 0])
    for dx_dy in moves:
        ann.input(dx_dy)
    ann.input(None)  # let go: the stream ends
    assert ann.errors == []
    for seq, (dx, dy) in enumerate(moves, start=1):
        room.tick()
        # One input per tick, in seq order, each acknowledged.
        assert ann.ack == seq
        x, y = move(where["x"], where["y"], dx, dy, step, RULES)
        assert (avatar(ann)["x"], avatar(ann)["y"]) == (x, y)
        where = dict(avatar(ann))
    room.tick(3)
    assert ann.ack == 4 and avatar(ann) == where  # the None: acknowledged, nothing moved


def test_a_late_input_is_stood_in_for_by_the_last_one_then_dropped() -> None:
    room = RoomHarness(Arena, {"seed": 1})
    ann = room.join("ann")
    ann.input(None)  # this client ends its streams with None: a missing input is late
    room.tick()
    start = dict(avatar(ann))
    ann.input([100, 0])
    ann.input([100, 0])
    room.tick(2)
    assert ann.ack == 3
    x = avatar(ann)["x"]
    assert room.engine.seats[ann.id].inputs.stood_in == 0
    room.tick()  # seq 4 is late: the held direction is repeated, as seq 4
    assert ann.ack == 4 and avatar(ann)["x"] == x + ann.config["step"]
    assert room.engine.seats[ann.id].inputs.stood_in == room.engine.inputs_stood_in == 1
    ann.input([0, 100], seq=4)  # seq 4 arrives after all: dropped, no error
    ann.input([100, 0], seq=5)
    room.tick()
    assert ann.errors == [] and ann.ack == 5
    # It was late, not lost: the buffer learns to hold one more, and asks the client to
    # send that much further ahead (a client that ignores it gets stand-ins instead).
    assert ann.received[-2] == [codec.S_INPUT_LEAD, 1]
    assert room.engine.seats[ann.id].inputs.target == 2
    assert avatar(ann)["x"] == x + 2 * ann.config["step"] and avatar(ann)["y"] == start["y"]
    # Standing in stops after Room.input_repeat ticks; then the ticks are owed.
    room.tick(Arena.input_repeat + 3)
    assert ann.ack == 5 + Arena.input_repeat
    assert room.engine.inputs_stood_in == 1 + Arena.input_repeat  # then owed, not stood in
    assert avatar(ann)["x"] == x + (2 + Arena.input_repeat) * ann.config["step"]


def test_after_a_stall_the_backlog_catches_up_but_sending_faster_never_moves_faster() -> None:
    room = RoomHarness(Arena)
    ann = room.join("ann")
    ann.input(None)
    room.tick()
    ann.input([0, 100])
    ann.input([0, 100])
    room.tick(2)  # a stream: a missing input is now late
    room.tick(Arena.input_repeat + 4)  # a stall: 2 ticks stood in, 4 owed
    assert ann.ack == 3 + Arena.input_repeat
    for _ in range(12):  # the backlog arrives at once (the stood-in seqs are dropped)
        ann.input([0, 100])
    acks = []
    for _ in range(8):
        room.tick()
        acks.append(ann.ack)
    steps = [b - a for a, b in zip([3 + Arena.input_repeat, *acks], acks, strict=False)]
    # Two inputs in some ticks, never more, and only the 4 owed extra: 12 in 8 ticks.
    assert set(steps) == {1, 2} and steps.count(2) == 4 and sum(steps) == 12, steps
    # Without owed ticks, a burst is applied one per tick: no faster than the clock. And a
    # client that never sent None (discrete commands) gets no stand-ins.
    bob = room.join("bob")
    for _ in range(10):
        bob.input([0, 100])
    before = bob.ack
    room.tick(5)
    assert bob.ack - before == 5
    room.tick(10)
    assert bob.ack == 10


def test_stale_and_overflowing_inputs_are_refused_with_their_seq() -> None:
    room = RoomHarness(Arena)
    ann = room.join("ann")
    ann.input([1, 1], seq=5)
    ann.input([1, 1], seq=5)
    assert ann.errors == [["stale_seq", "input seq 5 is not after 5", 5]]
    for seq in range(6, 6 + Arena.max_pending_inputs - 1):  # fills the queue exactly
        ann.input([1, 1], seq=seq)
    assert len(ann.errors) == 1
    ann.input([1, 1], seq=1000)
    assert ann.errors[-1] == ["input_overflow", "more than 32 inputs are pending", 1000]
    room.tick(Arena.max_pending_inputs)
    # Every queued input was applied, once, one a tick; the refused ones never were.
    assert ann.ack == 5 + Arena.max_pending_inputs - 1
    assert len(ann.errors) == 2


@pytest.mark.parametrize("raw", [[1], [1, 2, 3], ["a", 1], [1.5, 0], {"dx": 1}])
def test_arena_refuses_malformed_inputs(raw: Any) -> None:
    room = RoomHarness(Arena)
    ann = room.join("ann")
    room.tick()
    seq = ann.input(raw)
    assert ann.errors == [["invalid_input", "arena input is [dx, dy], two integers", seq]]
    room.tick()
    assert ann.ack == 0  # refused, so never applied nor acknowledged


def test_arena_clamps_oversized_inputs_so_nobody_teleports() -> None:
    room = arena()
    assert room.validate_input([10**9, -(10**9)]) == (100, -100)
    x, y = move(800, 450, 100, -100, room.step, RULES)
    assert (x - 800) ** 2 + (y - 450) ** 2 <= room.step ** 2 + 1
    # And end to end: a huge stick moves the avatar one step at most.
    harness = RoomHarness(Arena, {"seed": 2})
    ann = harness.join("ann")
    harness.tick()
    before = dict(avatar(ann))
    ann.input([10**9, -(10**9)])
    harness.tick()
    assert ann.errors == [] and ann.ack == 1
    moved = (avatar(ann)["x"] - before["x"]) ** 2 + (avatar(ann)["y"] - before["y"]) ** 2
    assert 0 < moved <= ann.config["step"] ** 2 + 1


def test_movement_is_normalised_rounded_and_bounded() -> None:
    assert move(100, 100, 100, 0, 10, RULES) == (110, 100)
    assert move(100, 100, 100, 100, 10, RULES) == (107, 107)  # diagonal: 10/sqrt(2)
    assert move(100, 100, 50, 0, 10, RULES) == (105, 100)  # half a stick, half the speed
    assert move(100, 100, 0, 0, 10, RULES) == (100, 100)
    assert move(25, 25, -100, -100, 10, RULES) == (20, 20)  # the wall stops you
    assert move(1575, 100, 100, 0, 10, RULES) == (1580, 100)


def test_orbs_spawn_and_are_collected_for_score() -> None:
    room = RoomHarness(Arena, {"seed": 3})
    ann = room.join("ann")
    room.tick(40)
    orbs = ann.entities("Orb")
    assert len(orbs) == 8  # one every 250 ms (5 ticks), from tick 0
    target = orbs[0]
    # Put the avatar just left of the orb (the game's own state), then step onto it.
    server_avatar = room.room.players[ann.id].data["avatar"]
    server_avatar.x, server_avatar.y = target.values["x"] - 15, target.values["y"]
    ann.input([100, 0])
    room.tick()
    assert avatar(ann)["score"] == 1
    assert target.id not in {orb.id for orb in ann.entities("Orb")}  # removed for everyone


def test_players_see_each_other_join_move_and_leave() -> None:
    room = RoomHarness(Arena, {"seed": 4})
    ann = room.join("ann")
    bob = room.join("bob")
    room.tick()
    assert room.listing["metadata"] == {"mode": "ffa", "world": "small"}  # by on_create
    assert ann.events_of("joined") == bob.events_of("joined") == [[ann.id, "ann"],
                                                                  [bob.id, "bob"]]
    ann.input([100, 100])
    room.tick()
    assert avatar(bob, of=ann) == avatar(ann)
    ann.leave()
    room.tick()
    assert bob.events_of("left") == [[ann.id, "ann"]]
    assert [a.values["name"] for a in bob.entities("Avatar")] == ["bob"]


def test_the_max_players_option_lowers_the_seat_count() -> None:
    room = RoomHarness(Arena, {"max_players": 2})
    room.join("ann")
    room.join("bob")
    with pytest.raises(JoinRefused, match="full"):
        room.join("cat")


def test_chat_is_validated_and_broadcast() -> None:
    room = RoomHarness(Arena)
    ann = room.join("ann")
    bob = room.join("bob")
    ann.send("chat", "  hello\x00 ")
    room.tick()
    assert ann.events_of("chat") == bob.events_of("chat") == [[ann.id, "ann", "hello"]]
    assert ann.errors == []
    ann.send("chat", "x" * 201)
    ann.send("chat", 42)
    ann.send("shout", "hi")
    assert ann.errors == [["invalid_input", "chat messages are at most 200 characters"],
                          ["invalid_input", "a 'chat' message takes a str body"],
                          ["invalid_input", "this room takes no 'shout' messages"]]
    room.tick()
    assert len(bob.events_of("chat")) == 1 and bob.errors == []  # nothing else happened


class Door(Entity):
    open: int = 0


class Guarded(Room):
    game = "guarded"
    entity_types = (Door,)

    def on_join_request(self, player: Player) -> None:
        if player.options.get("password") != "sesame":
            raise JoinRefused("wrong password")

    @message("knock", int)
    def on_knock(self, player: Player, door: int) -> None:
        self.send(player, "hint", {"door": door})


def test_join_requests_may_be_refused_with_a_reason() -> None:
    room = RoomHarness(Guarded)
    with pytest.raises(JoinRefused, match="wrong password"):
        room.join("eve", {"password": "guess"})
    assert room.room.players == {} and room.players == []
    ann = room.join("ann", {"password": "sesame"})
    assert ann.id == 1 and ann.welcome[4] == 1


def test_room_sends_typed_messages_to_one_player() -> None:
    room = RoomHarness(Guarded)
    ann = room.join("ann", {"password": "sesame"})
    bob = room.join("bob", {"password": "sesame"})
    ann.send("knock", 3)
    assert ann.messages == [("hint", {"door": 3})]
    assert bob.messages == []


def test_a_room_needs_a_game_name() -> None:
    class Nameless(Room):
        entity_types = (Door,)

    with pytest.raises(TypeError, match="must set the class attribute 'game'"):
        Nameless("x", 20.0)

