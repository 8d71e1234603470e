"""gameserver.testing, through its public API: what a game author's tests can rely on."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import msgpack
import pytest

from gameserver import Entity, JoinRefused, Player, Room, Settings, message
from gameserver.core import codec
from gameserver.core.limits import Limits
from gameserver.testing import HarnessPlayer, RoomCrashed, RoomHarness, run_ticks

PROTOCOL = (Path(__file__).parent.parent / "docs" / "PROTOCOL.md").read_text()


class Dot(Entity):
    pid: int = 0
    x: int = 0
    label: str = ""


def digit(body: Any) -> int:
    """A body validator: converts "7" to 7, raises ValueError for anything else."""
    value = int(body)
    if not 0 <= value <= 9:
        raise ValueError("not a digit")
    return value


class Probe(Room):
    """A small game that records every hook it gets, for the tests to read."""

    game = "probe"
    max_players = 3
    entity_types = (Dot,)

    def on_create(self, options: dict[str, Any]) -> None:
        self.log: list[tuple[Any, ...]] = []
        self.applied: list[Any] = []
        self.set_metadata(mode="test")

    def on_join(self, player: Player) -> None:
        self.log.append(("join", player.id))
        player.data["dot"] = self.world.spawn(Dot(pid=player.id))
        self.send(player, "hello", player.name)
        if player.options.get("kick"):
            self.kick(player, "go away")
        self.set_metadata(players=len(self.players))
        if len(self.players) == 2:
            self.lock()

    def on_input(self, player: Player, data: Any) -> None:
        self.applied.append(data)
        if data == "boom":
            raise KeyError("boom")
        player.data["dot"].x += data

    @message("label", str)
    def on_label(self, player: Player, text: str) -> None:
        player.data["dot"].label = text

    @message("count", int)
    def on_count(self, player: Player, n: int) -> None:
        self.broadcast("count", n)

    @message("digit", digit)
    def on_digit(self, player: Player, n: int) -> None:
        self.broadcast("digit", n)

    @message("kick")
    def on_kick(self, player: Player, target: Any) -> None:
        self.kick(self.players[target], "kicked by a player")

    def on_drop(self, player: Player) -> None:
        self.log.append(("drop", player.id))

    def on_rejoin(self, player: Player) -> None:
        self.log.append(("rejoin", player.id))
        self.send(player, "welcome back", player.name)

    def on_leave(self, player: Player, consented: bool) -> None:
        self.log.append(("leave", player.id, consented))
        self.world.remove(player.data.pop("dot"))

    def on_dispose(self) -> None:
        self.log.append(("dispose",))


class Forgiving(Probe):
    """Keeps the room whatever a hook raises."""

    game = "forgiving"

    def on_error(self, exc: Exception) -> bool:
        self.log.append(("error", exc))
        return True

    @message("fail")
    def on_fail(self, player: Player, body: Any) -> None:
        raise RuntimeError("a bug in a handler")


class Freeform(Probe):
    """Takes the room messages no handler takes in on_message."""

    game = "freeform"

    def on_message(self, player: Player, kind: str, body: Any) -> None:
        if kind != "free":
            super().on_message(player, kind, body)  # the default refusal
        self.broadcast("free", body)


def probe(harness: RoomHarness) -> Probe:
    return cast(Probe, harness.room)


def dot(player: HarnessPlayer, of: HarnessPlayer | None = None) -> dict[str, Any]:
    return player.entity("Dot", pid=(of or player).id).values


# -- joining, inputs, updates -------------------------------------------------------


def test_a_joined_player_is_welcomed_at_once_and_gets_a_snapshot_with_the_first_tick() -> None:
    room = RoomHarness(Probe)
    ann = room.join("ann")
    assert ann.id == 1 and ann.connected
    assert [m[0] for m in ann.received] == [codec.S_WELCOME, codec.S_MESSAGE]
    assert ann.welcome[2:4] == ["test-room", "probe"]
    assert ann.updates == 0 and ann.entities() == []
    room.tick()
    assert ann.received[-1][0] == codec.S_SNAPSHOT
    assert ann.updates == 1 and dot(ann) == {"pid": 1, "x": 0, "label": ""}
    room.tick()
    assert ann.received[-1][0] == codec.S_DELTA and ann.updates == 2


def test_inputs_are_acknowledged_once_applied() -> None:
    room = RoomHarness(Probe)
    ann = room.join("ann")
    seq = ann.input(5)
    assert seq == 1 and ann.ack == 0  # queued, not yet applied
    room.tick()
    assert ann.ack == 1 and dot(ann)["x"] == 5
    assert ann.input(2) == 2
    room.tick()
    assert ann.ack == 2 and dot(ann)["x"] == 7


def test_a_second_player_sees_the_first_ones_moves() -> None:
    room = RoomHarness(Probe)
    ann = room.join("ann")
    bob = room.join("bob")
    room.tick()
    ann.input(3)
    room.tick()
    assert dot(bob, of=ann)["x"] == 3
    assert dot(bob, of=ann) == dot(ann)
    assert bob.ack == 0  # the ack is per player


def test_run_ticks_ticks_until_a_condition_holds() -> None:
    room = RoomHarness(Probe)
    ann = room.join("ann")
    for _ in range(3):
        ann.input(1)
    assert run_ticks(room, lambda: ann.ack == 3) == 3
    with pytest.raises(AssertionError, match="not true after 5 ticks"):
        run_ticks(room, lambda: False, limit=5)


def test_entity_finds_exactly_one() -> None:
    room = RoomHarness(Probe)
    ann = room.join("ann")
    room.join("bob")
    room.tick()
    assert ann.entity("Dot", pid=2).values["pid"] == 2
    with pytest.raises(LookupError, match="2 Dot entities"):
        ann.entity("Dot")
    with pytest.raises(LookupError, match="0 Dot entities"):
        ann.entity("Dot", pid=9)


# -- room messages -------------------------------------------------------------------


def test_typed_handlers_check_the_body_type_and_bool_is_not_an_int() -> None:
    room = RoomHarness(Probe)
    ann = room.join("ann")
    bob = room.join("bob")
    ann.send("count", True)
    ann.send("count", "3")
    assert ann.errors == [["invalid_input", "a 'count' message takes a int body"]] * 2
    ann.send("count", 3)
    ann.send("label", "hi")
    room.tick()
    assert len(ann.errors) == 2
    assert bob.events_of("count") == [3]
    assert dot(bob, of=ann)["label"] == "hi"


def test_a_validator_function_converts_or_refuses_the_body() -> None:
    room = RoomHarness(Probe)
    ann = room.join("ann")
    ann.send("digit", "7")
    ann.send("digit", "x")
    ann.send("digit", 12)
    ann.send("digit", None)  # int(None) is a TypeError: refused too
    room.tick()
    assert ann.events_of("digit") == [7]  # converted
    assert [e[0] for e in ann.errors] == ["invalid_input"] * 3
    assert ann.errors[0][1].startswith("bad 'digit' message: invalid literal")
    assert ann.errors[1] == ["invalid_input", "bad 'digit' message: not a digit"]


def test_an_unknown_kind_is_invalid_input_and_on_message_still_takes_the_rest() -> None:
    room = RoomHarness(Probe)
    ann = room.join("ann")
    ann.send("free", 1)
    assert ann.errors == [["invalid_input", "this room takes no 'free' messages"]]

    room = RoomHarness(Freeform)
    ann = room.join("ann")
    ann.send("free", {"any": "body"})
    ann.send("other", 1)
    ann.send("count", 2)  # the typed handlers still come first
    room.tick()
    assert ann.events_of("free") == [{"any": "body"}]
    assert ann.events_of("count") == [2]
    assert ann.errors == [["invalid_input", "this room takes no 'other' messages"]]


def test_room_messages_are_rate_limited_and_inputs_are_not() -> None:
    room = RoomHarness(Probe)
    ann = room.join("ann")
    burst = int(room.limits.message_rate * 3)  # docs: bursts of three times the rate
    for n in range(burst):
        ann.send("count", n)
    assert ann.errors == []
    ann.send("count", 99)
    assert ann.errors == [["message_rate_limited",
                           "too many room messages: this one was dropped"]]
    ann.input(1)
    room.tick()
    assert ann.ack == 1 and len(ann.errors) == 1  # inputs have their own budget
    assert ann.events_of("count") == list(range(burst))  # the refused one never ran
    room.advance(1.0)  # the budget refills
    ann.send("count", 100)
    room.tick()
    assert ann.events_of("count")[-1] == 100 and len(ann.errors) == 1


# -- helpers from hooks ----------------------------------------------------------------


def test_send_from_on_join_arrives_after_the_welcome() -> None:
    room = RoomHarness(Probe)
    ann = room.join("ann")
    assert ann.received[0][0] == codec.S_WELCOME
    assert ann.received[1] == [codec.S_MESSAGE, "hello", "ann"]
    assert ann.messages == [("hello", "ann")]


def test_kick_from_on_join_closes_with_4003_after_the_welcome_and_frees_the_seat() -> None:
    room = RoomHarness(Probe)
    eve = room.join("eve", {"kick": True})
    assert eve.welcome and eve.messages == [("hello", "eve")]  # what came before the kick
    assert eve.closed == (codec.CLOSE_KICKED, "go away")
    assert not eve.connected
    assert ("leave", eve.id, True) in probe(room).log and room.room.players == {}
    with pytest.raises(RuntimeError, match="not connected"):
        eve.input(1)
    eve.reconnect()  # a kicked player's token is gone
    assert eve.errors[-1][0] == "reconnect_refused"
    assert eve.closed == (codec.CLOSE_BAD_RESERVATION, "reconnect_refused")
    # Three seats, none of them taken by eve.
    for name in ("ann", "bob"):
        room.join(name)
    room.tick()
    assert [d.values["pid"] for d in room.players[1].entities("Dot")] == [2, 3]


def test_a_player_kicked_while_away_cannot_come_back() -> None:
    room = RoomHarness(Probe)
    ann = room.join("ann")
    bob = room.join("bob")
    ann.drop()
    bob.send("kick", ann.id)
    # Back before the seat was freed: welcomed, then closed with the kick; no on_rejoin.
    ann.reconnect()
    assert ann.received[-1][0] == codec.S_WELCOME
    assert [m[0] for m in ann.received].count(codec.S_WELCOME) == 2
    assert ann.closed == (codec.CLOSE_KICKED, "kicked by a player") and not ann.connected
    assert ("rejoin", ann.id) not in probe(room).log
    assert ann.id not in room.room.players
    # Back after: the seat, and its token, are gone.
    room = RoomHarness(Probe)
    ann = room.join("ann")
    bob = room.join("bob")
    ann.drop()
    bob.send("kick", ann.id)
    room.tick()  # time passes: the seat is freed
    assert probe(room).log[-1] == ("leave", ann.id, False)
    ann.reconnect()
    assert ann.errors[-1][0] == "reconnect_refused" and not ann.connected


def test_set_metadata_and_lock_from_hooks_reach_the_listing() -> None:
    room = RoomHarness(Probe)
    assert room.listing == {"locked": False, "metadata": {"mode": "test"}}  # on_create's
    room.join("ann")
    assert room.listing == {"locked": False, "metadata": {"mode": "test", "players": 1}}
    room.join("bob")
    assert room.listing == {"locked": True, "metadata": {"mode": "test", "players": 2}}
    with pytest.raises(JoinRefused, match="no new players"):
        room.join("cat")  # a free seat, but matchmaking places nobody in a locked room


def test_a_full_room_refuses_joins_until_a_seat_is_freed() -> None:
    class Pair(Room):
        game = "pair"
        max_players = 2
        entity_types = (Dot,)

    room = RoomHarness(Pair)
    ann = room.join("ann")
    room.join("bob")
    with pytest.raises(JoinRefused, match="full"):
        room.join("cat")
    ann.leave()
    assert room.join("cat").id == 3


def test_the_server_caps_max_players() -> None:
    room = RoomHarness(Probe, limits=Limits.from_settings(Settings(max_players=1)))
    room.join("ann")
    with pytest.raises(JoinRefused, match="full"):
        room.join("bob")


# -- errors in hooks -------------------------------------------------------------------


def test_on_error_true_keeps_the_room_and_abandons_only_the_failed_call() -> None:
    room = RoomHarness(Forgiving)
    ann = room.join("ann")
    bob = room.join("bob")
    for data in (1, "boom", 2):
        ann.input(data)
    ann.send("fail", None)
    room.tick(3)
    assert ann.ack == 3  # the failed input is acknowledged: it is not applied again
    assert dot(bob, of=ann)["x"] == 3  # the inputs before and after it applied
    assert probe(room).applied == [1, "boom", 2]
    errors = [entry[1] for entry in probe(room).log if entry[0] == "error"]
    assert [type(e) for e in errors] == [RuntimeError, KeyError]
    assert ann.errors == [] and ann.closed is None and bob.closed is None
    assert ann.connected and not room.closed


def test_on_error_true_keeps_ticking_after_a_failed_update() -> None:
    class Stumbling(Forgiving):
        game = "stumbling"

        def update(self, dt: float) -> None:
            if self.tick % 2:
                raise ZeroDivisionError("every other tick")

    room = RoomHarness(Stumbling)
    ann = room.join("ann")
    ann.input(1)
    room.tick(4)
    assert ann.updates == 4 and ann.received[-1][2] == 4  # four updates, to tick 4
    assert ann.ack == 1 and dot(ann)["x"] == 1
    assert [type(e[1]) for e in probe(room).log if e[0] == "error"] == [ZeroDivisionError] * 2


def test_by_default_a_failing_hook_crashes_the_room() -> None:
    room = RoomHarness(Probe)
    ann = room.join("ann")
    bob = room.join("bob")
    room.tick()
    ann.input("boom")
    with pytest.raises(RoomCrashed) as crash:
        room.tick()
    assert isinstance(crash.value.__cause__, KeyError)
    assert crash.value.__cause__.args == ("boom",)
    assert ann.closed == bob.closed == (codec.CLOSE_ROOM_CRASHED, "room crashed")
    assert not ann.connected and not bob.connected
    log = probe(room).log
    assert log[-1] == ("dispose",) and not any(e[0] in ("drop", "leave") for e in log)
    with pytest.raises(RoomCrashed):
        room.tick()
    with pytest.raises(RoomCrashed):
        room.join("cat")


def test_a_crash_in_on_join_is_raised_by_join() -> None:
    class Broken(Probe):
        game = "broken"

        def on_join(self, player: Player) -> None:
            super().on_join(player)
            if player.name == "bad":
                raise ValueError("cannot seat")

    room = RoomHarness(Broken)
    ann = room.join("ann")
    with pytest.raises(RoomCrashed) as crash:
        room.join("bad")
    assert isinstance(crash.value.__cause__, ValueError)
    assert ann.closed == (codec.CLOSE_ROOM_CRASHED, "room crashed")


def test_a_join_refused_by_on_join_seats_nobody() -> None:
    class Picky(Probe):
        game = "picky"

        def on_join(self, player: Player) -> None:
            if player.name == "eve":
                raise JoinRefused("not you")
            super().on_join(player)

    room = RoomHarness(Picky)
    with pytest.raises(JoinRefused, match="not you"):
        room.join("eve")
    assert room.players == [] and room.room.players == {}
    assert room.join("ann").id == 2  # ids are not reused


# -- connections -----------------------------------------------------------------------


def test_drop_keeps_the_seat_and_reconnect_welcomes_again_with_a_snapshot() -> None:
    room = RoomHarness(Probe)
    ann = room.join("ann")
    bob = room.join("bob")
    room.tick()
    ann.input(4)
    ann.drop()
    assert not ann.connected and probe(room).log[-1] == ("drop", ann.id)
    updates = ann.updates
    room.tick(3)
    assert ann.updates == updates  # nothing reaches a dropped player
    assert dot(bob, of=ann)["x"] == 0  # the input in flight was forgotten, not applied
    assert ann.id in room.room.players  # the seat waits
    ann.reconnect()
    assert ann.connected and probe(room).log[-1] == ("rejoin", ann.id)
    welcomes = [m for m in ann.received if m[0] == codec.S_WELCOME]
    assert len(welcomes) == 2 and welcomes[1][4] == ann.id
    assert welcomes[1][8] != welcomes[0][8]  # a fresh reconnection token
    assert ann.received[-1] == [codec.S_MESSAGE, "welcome back", "ann"]  # after the welcome
    room.tick()
    assert ann.received[-1][0] == codec.S_SNAPSHOT
    ann.input(6)
    room.tick()
    assert dot(ann)["x"] == 6 and dot(bob, of=ann)["x"] == 6


def test_a_dropped_player_leaves_when_the_grace_is_over() -> None:
    room = RoomHarness(Probe)
    ann = room.join("ann")
    bob = room.join("bob")
    ann.drop()
    room.advance(room.limits.reconnect_grace - 0.5)
    assert ann.id in room.room.players
    room.advance(0.5)
    assert probe(room).log[-1] == ("leave", ann.id, False)
    assert ann.id not in room.room.players
    room.tick()
    assert bob.entities("Dot") == [bob.entity("Dot", pid=bob.id)]
    ann.reconnect()
    assert ann.errors[-1][0] == "reconnect_refused" and not ann.connected


def test_ticks_count_towards_the_grace_too() -> None:
    room = RoomHarness(Probe, tick_rate=10)
    ann = room.join("ann")
    ann.drop()
    room.tick(int(room.limits.reconnect_grace * 10))
    assert probe(room).log[-1] == ("leave", ann.id, False)


def test_leave_frees_the_seat_at_once() -> None:
    room = RoomHarness(Probe)
    ann = room.join("ann")
    ann.leave()
    assert probe(room).log[-1] == ("leave", ann.id, True)
    assert ann.closed == (codec.CLOSE_NORMAL, "left") and not ann.connected
    assert room.room.players == {}


def test_without_a_grace_a_drop_is_a_leave() -> None:
    room = RoomHarness(Probe, limits=Limits.from_settings(Settings(reconnect_grace=0)))
    ann = room.join("ann")
    assert ann.welcome[8] is None  # no reconnection token to give
    ann.drop()
    assert probe(room).log[-1] == ("leave", ann.id, False)


def test_a_slow_socket_skips_updates_then_gets_a_snapshot() -> None:
    room = RoomHarness(Probe)
    ann = room.join("ann")
    bob = room.join("bob")
    room.tick()
    ann.slow = True
    assert ann.slow and not bob.slow
    bob.input(3)
    room.tick(2)
    assert ann.updates == 1 and ann.replica is not None and ann.replica.tick == 1
    ann.slow = False
    room.tick()
    assert ann.received[-1][0] == codec.S_SNAPSHOT and ann.replica.tick == 4
    assert dot(ann, of=bob)["x"] == 3
    room.tick()
    assert ann.received[-1][0] == codec.S_DELTA
    assert room.broadcaster.stats.skipped == 2


def test_a_socket_slow_for_longer_than_the_stall_timeout_is_cut_and_dropped() -> None:
    limits = Limits.from_settings(Settings(stall_timeout=1.0))
    room = RoomHarness(Probe, tick_rate=10, limits=limits)
    ann = room.join("ann")
    room.tick()
    ann.slow = True
    room.tick(12)
    assert not ann.connected and probe(room).log[-1] == ("drop", ann.id)
    ann.reconnect()
    assert not ann.slow  # a new socket
    room.tick()
    assert ann.received[-1][0] == codec.S_SNAPSHOT and ann.replica is not None
    assert ann.replica.tick == room.room.tick


def test_a_spectator_is_welcomed_as_player_0_and_gets_every_update() -> None:
    room = RoomHarness(Probe)
    ann = room.join("ann")
    eye = room.watch()
    assert eye.spectator and eye.id == 0 and eye.welcome[8] is None
    assert room.players == [ann] and room.spectators == [eye]
    assert ann.id in room.room.players and len(room.room.players) == 1
    ann.input(2)
    room.tick()
    assert eye.received[-1][0] == codec.S_SNAPSHOT and dot(eye, of=ann)["x"] == 2
    ann.input(3)
    room.tick()
    assert eye.received[-1][:2] == [codec.S_DELTA, 0] and dot(eye, of=ann)["x"] == 5
    with pytest.raises(RuntimeError, match="spectator"):
        eye.input(1)
    with pytest.raises(RuntimeError, match="spectator"):
        eye.reconnect()
    eye.drop()
    updates = eye.updates
    room.tick()
    assert not eye.connected and eye.updates == updates
    late = room.watch()
    ann.input("boom")  # a crash closes spectators too
    with pytest.raises(RoomCrashed):
        room.tick()
    assert late.closed == (codec.CLOSE_ROOM_CRASHED, "room crashed") and not late.connected


# -- hostile clients -----------------------------------------------------------------


def _documented_error_codes() -> set[str]:
    section = PROTOCOL.split("WebSocket ERROR messages", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(\w+)` \|", section, re.M))


pack = msgpack.packb
HOSTILE: list[tuple[bytes, str, int | None]] = [
    (b"\xc1", "bad_msgpack", None),  # a byte msgpack never uses
    (b"\x92\x01", "bad_msgpack", None),  # truncated
    (pack([1] * 300), "bad_msgpack", None),  # over the 256-item array limit
    (pack({"a": 1}), "bad_message", None),
    (pack([]), "bad_message", None),
    (pack(["input"]), "bad_message", None),
    (pack([9]), "unknown_kind", None),
    (pack([1, 1]), "bad_message", None),
    (pack([1, 0, 5]), "bad_seq", 0),
    (pack([1, 2**32, 5]), "bad_seq", 2**32),
    (pack([1, "1", 5]), "bad_seq", None),
    (pack([2, 5, "body"]), "bad_message", None),
    (pack([2, "", "body"]), "bad_message", None),
    (pack([2, "k" * 33, "body"]), "bad_message", None),
    (pack([3]), "bad_message", None),
    (pack([3, True]), "bad_message", None),
    (pack([4, 1]), "bad_message", None),
    (pack([1, 1, "x" * 4096]), "message_too_big", None),
]


def test_the_error_codes_these_tests_expect_are_documented() -> None:
    expected = {code for _, code, _ in HOSTILE} | {
        "invalid_input", "message_rate_limited", "reconnect_refused", "stale_seq",
        "input_overflow"}
    assert expected <= _documented_error_codes()


@pytest.mark.parametrize(("data", "code", "seq"), HOSTILE)
def test_hostile_bytes_get_the_documented_error_and_nothing_else(
        data: bytes, code: str, seq: int | None) -> None:
    room = RoomHarness(Probe)
    ann = room.join("ann")
    bob = room.join("bob")
    room.tick()
    seen = (len(ann.received), len(bob.received), list(probe(room).log))
    ann.send_raw(data)
    assert len(ann.errors) == 1
    error = ann.errors[0]
    assert error[0] == code and isinstance(error[1], str)
    assert error[2:] == ([] if seq is None else [seq])
    assert (len(ann.received), len(bob.received), probe(room).log) == \
        (seen[0] + 1, seen[1], seen[2])
    assert ann.connected and ann.closed is None
    ann.input(1)  # and the player plays on
    room.tick()
    assert ann.ack == 1 and len(ann.errors) == 1 and probe(room).applied == [1]
