"""The world's deltas, through the real send path, rebuild the server's state exactly."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gameserver.core import codec
from gameserver.core.engine import Seat
from gameserver.core.inputs import InputBuffer
from gameserver.core.replica import Replica
from gameserver.core.room import Player
from gameserver.core.world import Entity, World
from gameserver.host.room_host import Broadcaster, Connection

from .fakes import FakeTransport


class Ship(Entity):
    x: int = 0
    y: int = 0
    label: str = ""
    hp: int = 100


class Rock(Entity):
    size: int = 1


def server_view(world: World) -> dict[int, tuple[str, dict[str, Any]]]:
    return {eid: (type(e).__name__, {f: getattr(e, f) for f in e._fields})
            for eid, e in world.entities.items()}


small_ints = st.integers(min_value=-(2**20), max_value=2**20)
op = st.one_of(
    st.tuples(st.just("spawn_ship"), small_ints, small_ints, st.text(max_size=5)),
    st.tuples(st.just("spawn_rock"), small_ints),
    st.tuples(st.just("move"), st.integers(0, 50), small_ints, small_ints),
    st.tuples(st.just("relabel"), st.integers(0, 50), st.text(max_size=5)),
    st.tuples(st.just("remove"), st.integers(0, 50)),
)
# Each tick: some operations, then which of three clients are backed up.
tick = st.tuples(st.lists(op, max_size=8), st.lists(st.booleans(), min_size=3, max_size=3))


def apply_op(world: World, operation: tuple[Any, ...]) -> None:
    kind = operation[0]
    ids = sorted(world.entities)
    if kind == "spawn_ship":
        world.spawn(Ship(x=operation[1], y=operation[2], label=operation[3]))
    elif kind == "spawn_rock":
        world.spawn(Rock(size=operation[1]))
    elif ids:
        entity = world.entities[ids[operation[1] % len(ids)]]
        if kind == "move" and isinstance(entity, Ship):
            entity.x, entity.y = operation[2], operation[3]
        elif kind == "move" and isinstance(entity, Rock):
            entity.size = operation[2]
        elif kind == "relabel" and isinstance(entity, Ship):
            entity.label = operation[2]
        elif kind == "remove":
            world.remove(entity)


@settings(max_examples=150, deadline=None)
@given(st.lists(tick, min_size=1, max_size=30))
def test_deltas_and_resyncs_reproduce_the_world(ticks: list[Any]) -> None:
    world = World((Ship, Rock))
    broadcaster = Broadcaster(high_water=100, low_water=50, stall_timeout=1e9)
    transports = [FakeTransport() for _ in range(3)]
    conns = [Connection(t, Seat(Player(i + 1, f"p{i}"), InputBuffer(20.0)),
                        lambda code, reason: None) for i, t in enumerate(transports)]
    replicas = [Replica(world.schema()) for _ in conns]
    for n, (operations, backed_up) in enumerate(ticks, start=1):
        for operation in operations:
            apply_op(world, operation)
        for t, behind in zip(transports, backed_up, strict=True):
            t.backlog = 10_000 if behind else 0
        created, changed, removed = world.collect()
        tail = codec.encode_delta_tail(n, n - 1, created, changed, removed, [])
        broadcaster.send(conns, tail, lambda n=n: codec.encode_snapshot_tail(
            n, world.snapshot(), []), now=float(n))
        for t, replica, behind in zip(transports, replicas, backed_up, strict=True):
            for message in t.messages():
                replica.apply(message)
            t.frames.clear()
            if not behind:  # an up-to-date client sees exactly the server's world
                assert replica.tick == n
                assert replica.view() == server_view(world)


def test_a_moving_entity_costs_few_bytes() -> None:
    world = World((Ship,))
    ships = [world.spawn(Ship(x=500 + i, y=300, label="s")) for i in range(200)]
    world.collect()
    for s in ships:
        s.x += 7
        s.y -= 3
    created, changed, removed = world.collect()
    tail = codec.encode_delta_tail(2, 1, created, changed, removed, [])
    # id (1-3 B) + mask (1 B) + two one-byte differences, plus a few bytes of envelope.
    assert len(tail) / len(ships) <= 6.1


def test_removed_ids_are_not_reused_in_the_same_delta() -> None:
    world = World((Rock,))
    a = world.spawn(Rock())
    world.collect()
    world.remove(a)
    b = world.spawn(Rock())
    assert b.id != 1
    _, _, removed = world.collect()
    assert removed == [1]
    assert world.spawn(Rock()).id == 1  # free again once the removal went out


def test_int_fields_reject_non_ints_with_a_clear_error() -> None:
    world = World((Ship,))
    ship = world.spawn(Ship())
    world.collect()
    ship.x = 1.5  # type: ignore[assignment]
    with pytest.raises(TypeError, match=r"Ship\.x is an int field"):
        world.collect()


def test_unknown_fields_and_types_are_refused() -> None:
    with pytest.raises(TypeError, match="no synced field"):
        Ship(speed=3)
    with pytest.raises(TypeError, match="not one of this room's entity types"):
        World((Ship,)).spawn(Rock())
