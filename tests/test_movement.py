"""loadtest.movement, the equal-work benchmark game, and --games replacing a built-in."""

from __future__ import annotations

from gameserver.config import Settings
from gameserver.games.arena import RULES, Arena, move
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
