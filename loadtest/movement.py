"""An equal-work benchmark game: one entity per player, moved by its inputs; nothing else.

The peer benchmark's Colyseus room only moves players (x and y from inputs), while
``arena`` also spawns and collects orbs and keeps scores. To compare the frameworks
doing the same work, serve this game in the arena's place::

    gameserver --games loadtest.movement:Movement

It is named ``arena`` (a ``--games`` class replaces a built-in game of the same name),
so arena's bots and pages play it unchanged: the same inputs, the same input check
(``arena.parse_input``) and movement rule (``arena.move``), the same ``max_players``
option, and no orbs, scores or events.
"""

from __future__ import annotations

import math
from typing import Any

from gameserver import Entity, Player, Room
from gameserver.games.arena import RULES, move, parse_input


class Mover(Entity):
    pid: int = 0
    x: int = 0
    y: int = 0


class Movement(Room):
    game = "arena"
    max_players = 16
    entity_types = (Mover,)

    def on_create(self, options: dict[str, Any]) -> None:
        wanted = options.get("max_players")
        if type(wanted) is int and wanted > 0:
            self.max_players = wanted  # type: ignore[misc]  (the server caps it)
        self.step = math.floor(RULES["speed"] * self.dt + 0.5)
        self.spots = 0

    def client_config(self) -> dict[str, Any]:
        return {**RULES, "step": self.step, "world": "small"}

    def on_join(self, player: Player) -> None:
        self.spots += 1  # spread out, deterministically
        x = 40 + (self.spots * 97) % (RULES["width"] - 80)
        y = 40 + (self.spots * 61) % (RULES["height"] - 80)
        player.data["mover"] = self.world.spawn(Mover(pid=player.id, x=x, y=y))

    def on_leave(self, player: Player, consented: bool) -> None:
        self.world.remove(player.data.pop("mover"))

    def validate_input(self, raw: Any) -> tuple[int, int]:
        return parse_input(raw, RULES["input_max"])

    def on_input(self, player: Player, data: tuple[int, int]) -> None:
        mover: Mover = player.data["mover"]
        mover.x, mover.y = move(mover.x, mover.y, data[0], data[1], self.step, RULES)
