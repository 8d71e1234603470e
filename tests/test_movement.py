"""loadtest.movement, the equal-work benchmark game, and --games replacing a built-in;
arena's movement rule, which both play."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gameserver import InvalidInput
from gameserver.config import Settings
from gameserver.games.arena import CELL, LARGE, RULES, Arena, Avatar, Orb, move, parse_input
from gameserver.host.matchmaker import RoomManager
from gameserver.testing import RoomHarness
from gameserver.web.app import MANAGER, create_app
from loadtest.movement import Movement


def test_it_only_moves_players_by_the_arenas_rule() -> None:
    room = RoomHarness(Movement, {"max_players": 8})
    ann = room.join("ann")
    bob = room.join("bob")
    room.tick()
    mover = room.room.players[ann.id].data["mover"]
    assert ann.entity("Mover", pid=ann.id).values == {"pid": ann.id, "x": mover.x, "y": mover.y}
    x, y = mover.x, mover.y
    ann.input([100, 0])
    ann.input([0, -100])
    room.tick(2)
    step = ann.config["step"]
    x, y = move(*move(x, y, 100, 0, step, RULES), 0, -100, step, RULES)
    assert (mover.x, mover.y) == (x, y)
    # Nothing but the movers: no orbs, no scores, no events.
    assert {e.type for e in bob.replica.entities.values()} == {"Mover"}
    assert len(bob.replica.entities) == 2 and bob.replica.events == []
    assert room.room.max_players == 8
    ann.input("north")
    assert ann.errors[-1][0] == "invalid_input"


def test_games_replaces_a_built_in_game_of_the_same_name() -> None:
    app = create_app(Settings(games=("loadtest.movement:Movement",)))
    games: dict[str, type] = app[MANAGER].games
    assert games["arena"] is Movement and "connect_four" in games
    manager: RoomManager = create_app(Settings())[MANAGER]
    assert manager.games["arena"] is Arena


@settings(max_examples=2000, deadline=None)
@given(st.integers(-100, 9000), st.integers(-100, 9000), st.integers(-500, 500),
       st.integers(-500, 500), st.integers(1, 40), st.sampled_from(["small", "large"]))
def test_arenas_rule_is_the_min_max_formula(x: int, y: int, dx: int, dy: int, step: int,
                                           world: str) -> None:
    """move() and parse_input() are written out for speed; they are still exactly the
    plain formulas (which static/js/arena-rules.js mirrors, test_browser.py checks)."""
    rules = {**RULES, **(LARGE if world == "large" else {})}
    limit, r = rules["input_max"], rules["player_radius"]
    assert parse_input([dx, dy], limit) == (min(max(dx, -limit), limit),
                                            min(max(dy, -limit), limit))
    length = math.sqrt(dx * dx + dy * dy)
    expected = (x, y)
    if length:
        scale = step / max(length, limit)
        expected = (min(max(x + math.floor(dx * scale + 0.5), r), rules["width"] - r),
                    min(max(y + math.floor(dy * scale + 0.5), r), rules["height"] - r))
    assert move(x, y, dx, dy, step, rules) == expected


@pytest.mark.parametrize("raw", [[1], [1, 2, 3], (1, 2), [1.0, 2], [True, 2], [1, "2"], None])
def test_arena_inputs_of_another_shape_are_refused(raw: object) -> None:
    with pytest.raises(InvalidInput):
        parse_input(raw, 100)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from(["small", "large"]),
       st.lists(st.tuples(st.integers(-100, 8100), st.integers(-100, 8100)), max_size=60))
def test_arena_collects_exactly_the_orbs_within_reach(seed: int, world: str,
                                                      places: list[tuple[int, int]]) -> None:
    """_collect_orbs looks only at the grid cell the player is in, and stops at once when
    it holds no orb; it still takes exactly the orbs within reach, as a check of every
    orb would, wherever the player is (off the map included)."""
    room = Arena("r1", 20.0, {"seed": seed, "world": world})
    room.on_create(room.options)
    for tick in range(0, 400, room.spawn_every):
        room.tick = tick
        room.update(room.dt)
    reach = room.rules["player_radius"] + room.rules["orb_radius"]
    avatar = room.world.spawn(Avatar(pid=1, x=0, y=0, score=0, name="a", away=False))
    for a, b in places:
        left = {o.id: o for o in room.world.of_type(Orb)}
        assert {o.id for _, _, o in orbs_of(room)} == left.keys()
        # Anywhere given, or (every other time) near an orb: at up to reach + 2 from it.
        x, y = a, b
        if a % 2 and left:
            orb = left[sorted(left)[b % len(left)]]
            x, y = orb.x + b % (2 * reach + 5) - reach - 2, orb.y + a % (2 * reach + 5) - reach - 2
        near = {i for i, o in left.items() if (o.x - x) ** 2 + (o.y - y) ** 2 <= reach * reach}
        avatar.x, avatar.y, score = x, y, avatar.score
        room._collect_orbs(avatar)
        kept = {o.id for o in room.world.of_type(Orb)}
        assert kept == left.keys() - near
        assert avatar.score == score + len(near) and room.orb_count == len(kept)
    # Every orb left is kept in exactly the cells its reach overlaps (the grid has a cell
    # of margin), and a taken one in none.
    held = sorted((gx, gy, o.id) for gx, gy, o in orbs_of(room))
    assert held == sorted(
        (gx, gy, o.id) for o in room.world.of_type(Orb)
        for gx in range((o.x - reach) // CELL + 1, (o.x + reach) // CELL + 2)
        for gy in range((o.y - reach) // CELL + 1, (o.y + reach) // CELL + 2))


def orbs_of(room: Arena) -> list[tuple[int, int, Any]]:
    """Every orb on arena's grid, with each column and row it is kept in."""
    return [(gx, gy, orb) for gx, column in enumerate(room.orbs)
            for gy, cell in enumerate(column) for orb in cell or ()]
