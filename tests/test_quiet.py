"""Quiet rooms (issue 16): updates only when something changed, dormant rooms, timers
(wake_at), the QUIET keep-alive, through the harness (the server's own engine and
send path, decoded by the reference replica)."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

from gameserver import Entity, Player, Room, message
from gameserver.core import codec
from gameserver.core.ticker import Ticker
from gameserver.games.arena import Arena
from gameserver.games.connect_four import ConnectFour
from gameserver.testing import RoomHarness, run_ticks


class Counter(Entity):
    value: int = 0


class Dot(Entity):
    pid: int = 0
    x: int = 0


class Tally(Room):
    """A quiet room: a shared counter, a dot per player moved by inputs, an alarm."""

    game = "tally"
    quiet = True
    keepalive = 1.0
    tick_rate = 4
    entity_types = (Counter, Dot)

    def on_create(self, options: dict[str, Any]) -> None:
        self.counter = self.world.spawn(Counter())
        self.updates_run: list[int] = []  # the ticks update() ran for
        self.alarms: list[int] = []

    def on_join(self, player: Player) -> None:
        player.data["dot"] = self.world.spawn(Dot(pid=player.id))

    def on_input(self, player: Player, data: Any) -> None:
        player.data["dot"].x += int(data)

    @message("add", int)
    def add(self, player: Player, n: int) -> None:
        self.counter.value += n

    @message("alarm", int)
    def alarm(self, player: Player, ticks: int) -> None:
        self.alarms.append(self.tick + ticks)
        self.wake_at(self.tick + ticks)

    @message("noop")
    def noop(self, player: Player, _body: Any) -> None:
        pass

    def update(self, dt: float) -> None:
        self.updates_run.append(self.tick)
        if self.tick in self.alarms:
            self.broadcast("alarm", self.tick)


class Loud(Tally):
    game = "tally_loud"
    quiet = False


def updates(player: Any) -> list[list[Any]]:
    return [m for m in player.received if m[0] in (codec.S_SNAPSHOT, codec.S_DELTA)]


def test_a_quiet_room_sends_nothing_on_idle_ticks_and_goes_dormant() -> None:
    h = RoomHarness(Tally)
    ann = h.join("ann")
    assert ann.welcome[9] == 1.0, "the welcome's keep-alive interval"
    h.tick()
    assert [m[0] for m in updates(ann)] == [codec.S_SNAPSHOT]
    h.tick(3)
    assert len(updates(ann)) == 1, "nothing changed: nothing sent"
    assert h.dormant and h.slept >= 2
    assert h.room.tick == 4, "the tick follows the schedule while dormant"
    assert h.room.updates_run == [0, 1], "no update() for the ticks slept through"


def test_a_change_is_sent_with_the_last_sent_tick_as_its_base() -> None:
    h = RoomHarness(Tally)
    ann = h.join("ann")
    h.tick()
    snapshot_tick = updates(ann)[-1][2]
    h.tick(10)
    ann.send("add", 5)
    h.tick()
    delta = updates(ann)[-1]
    assert delta[0] == codec.S_DELTA
    assert delta[3] == snapshot_tick, "base_tick: the last update sent"
    assert delta[2] == h.room.tick > snapshot_tick + 1, "the tick jumped"
    assert ann.entity("Counter").values == {"value": 5}
    # Inputs: the ack moves, the dot moves, the replica follows across the gaps.
    for _ in range(3):
        ann.input(2)
        h.tick(5)
    assert ann.ack == 3
    assert ann.entity("Dot").values["x"] == 6
    assert ann.replica is not None and ann.replica.tick == updates(ann)[-1][2]
    bases = [(m[2], m[3]) for m in updates(ann) if m[0] == codec.S_DELTA]
    for (tick, _), (_, base) in pairwise(bases):
        assert base == tick, "every delta applies to the one before it"


def test_a_message_that_changes_nothing_sends_nothing() -> None:
    h = RoomHarness(Tally)
    ann = h.join("ann")
    h.tick(3)
    before = len(updates(ann))
    ann.send("noop", None)
    h.tick(3)
    assert len(updates(ann)) == before
    assert h.dormant


def test_a_joiner_gets_its_snapshot_and_everyone_a_delta() -> None:
    h = RoomHarness(Tally)
    ann = h.join("ann")
    h.tick(5)
    assert h.dormant
    bob = h.join("bob")
    h.tick()
    assert updates(bob)[0][0] == codec.S_SNAPSHOT
    assert updates(ann)[-1][0] == codec.S_DELTA
    assert len(bob.entities("Dot")) == len(ann.entities("Dot")) == 2
    watcher = h.watch()
    h.tick(5)
    assert updates(watcher)[0][0] == codec.S_SNAPSHOT
    assert watcher.entity("Counter").values == {"value": 0}


def test_keepalive_every_interval_without_an_update() -> None:
    h = RoomHarness(Tally)  # 4 Hz, keepalive 1 s
    ann = h.join("ann")
    h.tick()
    last = updates(ann)[-1][2]
    h.tick(12)
    assert ann.quiet == [last, last, last], "one QUIET a second, carrying the last tick"
    ann.send("add", 1)
    h.tick(4)  # the update resets the keep-alive's clock
    assert len(ann.quiet) == 3
    h.tick(1)
    assert len(ann.quiet) == 4 and ann.quiet[-1] == updates(ann)[-1][2]


def test_a_ping_does_not_wake_the_room() -> None:
    h = RoomHarness(Tally)
    ann = h.join("ann")
    h.tick(3)
    ran = len(h.room.updates_run)
    ann.send_raw(codec.encode(codec.C_PING, 1.5))
    h.tick(2)
    assert ann.messages == [] and any(m[0] == codec.S_PONG for m in ann.received)
    assert len(h.room.updates_run) == ran


def test_wake_at_runs_that_tick_while_dormant() -> None:
    h = RoomHarness(Tally)
    ann = h.join("ann")
    h.tick(2)
    ann.send("alarm", 20)
    due = h.room.alarms[0]
    h.tick(40)
    assert due in h.room.updates_run
    assert ("alarm", due) in ann.events
    assert len(h.room.updates_run) < 10, "only the ticks something happened at ran"


def test_wake_in_rounds_up_to_a_tick() -> None:
    h = RoomHarness(Tally)
    h.room.tick = 10
    h.room.wake_in(0.6)  # 2.4 ticks at 4 Hz: the third
    assert h.engine.next_wake() == 13
    h.room.wake_at(5)  # already run: ignored
    assert h.engine.next_wake() == 13


def test_a_room_that_is_not_quiet_sends_every_tick() -> None:
    h = RoomHarness(Loud)
    ann = h.join("ann")
    assert ann.welcome[9] == 0.0
    h.tick(10)
    assert len(updates(ann)) == 10 and ann.quiet == [] and h.slept == 0
    assert h.room.updates_run == list(range(10))
    arena = RoomHarness(Arena)
    bob = arena.join("bob")
    arena.tick(5)
    assert len(updates(bob)) == 5 and bob.welcome[9] == 0.0


def _play_until_timeout(game: type[ConnectFour]) -> tuple[RoomHarness, Any, list[Any]]:
    h = RoomHarness(game, {"turn_seconds": 5})
    ann, bob = h.join("ann"), h.join("bob")
    h.tick()
    seen: list[tuple[int, int, str]] = []  # (update tick, seconds_left, state)

    def over() -> bool:
        board = ann.entity("Board")
        update = updates(ann)[-1]
        if not seen or seen[-1][0] != update[2]:
            seen.append((update[2], board.values["seconds_left"], board.values["state"]))
        return bool(board.values["state"] == "over")

    run_ticks(h, over, limit=200)
    return h, (ann, bob), seen


class LoudConnectFour(ConnectFour):
    game = "connect_four_loud"
    quiet = False


def test_connect_four_times_out_at_the_same_tick_quiet_or_not() -> None:
    quiet, (ann, _), seen = _play_until_timeout(ConnectFour)
    loud, (ann2, _), seen2 = _play_until_timeout(LoudConnectFour)
    assert ann.entity("Board").values == ann2.entity("Board").values
    assert ann.entity("Board").values["reason"] == "timeout"
    assert seen[-1][0] == seen2[-1][0], "the timeout's update has the same tick"
    # Quiet: one update per second of the countdown (and the last), nothing between.
    assert [s for _, s, _ in seen] == [5, 4, 3, 2, 1, 0]
    # Each countdown update has the tick of the first loud update showing that second.
    first_of = {}
    for t, s, _ in seen2:
        first_of.setdefault(s, t)
    assert [t for t, _, _ in seen][1:] == [first_of[s] for _, s, _ in seen][1:]
    assert quiet.slept >= 8 and loud.slept == 0
    assert len(updates(ann)) < len(updates(ann2)) / 3


def test_connect_four_is_dormant_between_moves_and_a_move_wakes_it() -> None:
    h = RoomHarness(ConnectFour, {"turn_seconds": 30})
    ann, bob = h.join("ann"), h.join("bob")
    h.tick(2)
    assert h.dormant
    mover = ann if ann.entity("Board").values["turn"] == ann.id else bob
    n = len(updates(ann))
    mover.send("drop", 3)
    h.tick()
    assert len(updates(ann)) == n + 1
    assert ann.entity("Board").values["moves"] == 1
    assert ann.events_of("move")


def test_ticker_skip_to() -> None:
    t = Ticker(4, 100.0)
    assert t.due(100.0) == 1 and t.index == 1
    assert t.skip_to(102.1) == 8  # deadlines 100.25 .. 102.0 slept; the next is 102.25
    assert t.index == 9 and t.next_deadline == pytest.approx(102.25)
    assert t.skip_to(102.25) == 0, "exactly on a deadline: that tick runs"
    assert t.skip_to(110.0, limit=12) == 3 and t.index == 12
    assert t.slept == 11 and t.dropped == 0
