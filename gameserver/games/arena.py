"""``arena``: the demo game. Players steer around a bounded field and collect orbs.

Written only against the Room API. The movement rule (:func:`move`) is the
one the browser client predicts with (``static/js/arena-rules.js``); the
constants both use are sent in the welcome message (``client_config``), so
there is one table of numbers: :data:`RULES`.
"""

from __future__ import annotations

import math
import random
from typing import Any

from gameserver.core.room import InvalidInput, InvalidOption, Player, Room, message
from gameserver.core.world import Entity

RULES: dict[str, int] = {
    "width": 1600,
    "height": 900,
    "speed": 200,  # units per second
    "player_radius": 20,
    "orb_radius": 8,
    "input_max": 100,  # an input is [dx, dy], each an int in -input_max..input_max
    "max_orbs": 40,
    "chat_max_len": 200,
}
CELL = 64  # orb grid cell, in units: at least a player's reach across (2 x (20 + 8))
# options {"world": "large"}: the same rules on a field many screens wide, where each
# player sees only what is near them (an interest grid: cells of INTEREST_CELL units,
# a player sees the 3 x 3 cells around their own), and orbs as dense as in the small one.
LARGE = {"width": 8000, "height": 8000, "max_orbs": 1600}
INTEREST_CELL = 800
INTEREST_REACH = 1


class Avatar(Entity):
    pid: int = 0  # the Player.id that owns it
    x: int = 0
    y: int = 0
    score: int = 0
    name: str = ""
    away: bool = False  # dropped, its seat kept for a reconnection: pages mark it


class Orb(Entity, frozen=True):  # never changes: updates skip it once sent
    x: int = 0
    y: int = 0


_sqrt, _floor = math.sqrt, math.floor  # looked up once: move() runs for every input


def parse_input(raw: Any, limit: int) -> tuple[int, int]:
    """An arena input, ``[dx, dy]``, checked and clamped to ``limit``."""
    if type(raw) is not list or len(raw) != 2:
        raise InvalidInput("arena input is [dx, dy], two integers")
    dx, dy = raw
    if type(dx) is not int or type(dy) is not int:
        raise InvalidInput("arena input is [dx, dy], two integers")
    # Clamp, don't refuse: a too-long vector is a stick pushed past its rim. (Written
    # out rather than with min and max: every input of every player comes here.)
    dx = dx if dx > -limit else -limit
    dy = dy if dy > -limit else -limit
    return (dx if dx < limit else limit, dy if dy < limit else limit)


def move(x: int, y: int, dx: int, dy: int, step: int, rules: dict[str, int]) -> tuple[int, int]:
    """Apply one input to a position. Integer in, integer out; identical in JS.

    A stick pushed less than ``input_max`` moves proportionally slower;
    diagonals are normalised. Rounding is floor(v + 0.5) on both sides
    (Python's round() and JS's Math.round() disagree on halves).
    """
    length = _sqrt(dx * dx + dy * dy)
    if length == 0:
        return x, y
    limit = rules["input_max"]
    scale = step / (length if length > limit else limit)
    r = rules["player_radius"]
    nx = x + _floor(dx * scale + 0.5)
    ny = y + _floor(dy * scale + 0.5)
    # Kept inside the field: min(max(v, r), side - r), written out (half the time).
    nx = nx if nx > r else r
    ny = ny if ny > r else r
    right, bottom = rules["width"] - r, rules["height"] - r
    return (nx if nx < right else right, ny if ny < bottom else bottom)


class Arena(Room):
    game = "arena"
    match_by = {"world": "small"}  # one asking for a large world never lands in a small one
    spectator_view = "nearby"  # spectators of a large world see the whole map
    max_players = 16
    entity_types = (Avatar, Orb)

    def on_create(self, options: dict[str, Any]) -> None:
        self.rules = dict(RULES)
        self.step = math.floor(self.rules["speed"] * self.dt + 0.5)
        wanted = options.get("max_players")
        if type(wanted) is int and wanted > 0:
            self.max_players = wanted  # type: ignore[misc]  (the server caps it)
        seed = options.get("seed")
        if not (seed is None or type(seed) is int or (isinstance(seed, str) and len(seed) <= 64)):
            raise InvalidOption("'seed' must be an integer or a string of at most 64 characters")
        self.random = random.Random(seed)
        world = options.get("world", "small")
        if world not in ("small", "large"):
            raise InvalidOption("'world' is 'small' or 'large'")
        self.large = world == "large"
        if self.large:
            self.rules.update(LARGE)
            self.world.interest(cell=INTEREST_CELL, reach=INTEREST_REACH)
        # The orb grid, by column then row (None: no orb yet), with a cell of margin all
        # round. An orb is kept in every cell its reach (a square of 2 x reach, within one
        # cell's width) overlaps, one to four: so the orbs a player can take are all in
        # the one cell the player is in, and most cells hold none.
        self._columns = self.rules["width"] // CELL + 2  # (the margin's last index)
        self._rows = self.rules["height"] // CELL + 2
        self.orbs: list[list[list[Orb] | None]] = [
            [None] * (self._rows + 1) for _ in range(self._columns + 1)]
        self.orb_count = 0
        self._reach = self.rules["player_radius"] + self.rules["orb_radius"]
        assert 2 * self._reach <= CELL
        self.spawn_every = max(1, round(0.25 / self.dt))  # orbs every 250 ms ...
        self.spawn_batch = max(1, self.rules["max_orbs"] // 40)  # ... as many as the area needs
        self.set_metadata(mode="ffa", world=world)

    def client_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {**self.rules, "step": self.step}
        if self.large:
            config.update(world="large", interest_cell=INTEREST_CELL,
                          interest_reach=INTEREST_REACH)
        else:
            config["world"] = "small"
        return config

    def on_join(self, player: Player) -> None:
        r = self.rules["player_radius"]
        avatar = Avatar(pid=player.id, name=player.name,
                        x=self.random.randint(r, self.rules["width"] - r),
                        y=self.random.randint(r, self.rules["height"] - r))
        player.data["avatar"] = self.world.spawn(avatar)
        if self.large:  # seen by those near it; the player sees around it
            self.world.show_nearby(avatar)
            self.world.follow(player.id, avatar)
        self.broadcast("joined", [player.id, player.name])

    def on_drop(self, player: Player) -> None:
        player.data["avatar"].away = True

    def on_rejoin(self, player: Player) -> None:
        player.data["avatar"].away = False

    def on_leave(self, player: Player, consented: bool) -> None:
        self.world.remove(player.data.pop("avatar"))
        self.broadcast("left", [player.id, player.name])

    def validate_input(self, raw: Any) -> tuple[int, int]:
        return parse_input(raw, self.rules["input_max"])

    def on_input(self, player: Player, data: tuple[int, int]) -> None:
        avatar: Avatar = player.data["avatar"]
        avatar.x, avatar.y = move(avatar.x, avatar.y, data[0], data[1], self.step, self.rules)
        self._collect_orbs(avatar)

    @message("chat", str)
    def on_chat(self, player: Player, body: str) -> None:
        text = "".join(ch for ch in body if ch.isprintable()).strip()
        if not text:
            raise InvalidInput("a chat message has something to say")
        if len(text) > self.rules["chat_max_len"]:
            raise InvalidInput(f"chat messages are at most {self.rules['chat_max_len']} characters")
        self.broadcast("chat", [player.id, player.name, text])

    def update(self, dt: float) -> None:
        if self.tick % self.spawn_every:
            return
        m = self.rules["orb_radius"] * 2
        for _ in range(min(self.spawn_batch, self.rules["max_orbs"] - self.orb_count)):
            orb = self.world.spawn(Orb(x=self.random.randint(m, self.rules["width"] - m),
                                       y=self.random.randint(m, self.rules["height"] - m)))
            if self.large:
                self.world.show_nearby(orb)
            for column, row in self._orb_cells(orb):
                cell = self.orbs[column][row]
                if cell is None:
                    cell = self.orbs[column][row] = []
                cell.append(orb)
            self.orb_count += 1

    def _orb_cells(self, orb: Orb) -> list[tuple[int, int]]:
        """The grid cells (column, row) an orb is kept in: those its reach overlaps."""
        reach = self._reach
        columns = range((orb.x - reach) // CELL + 1, (orb.x + reach) // CELL + 2)
        rows = range((orb.y - reach) // CELL + 1, (orb.y + reach) // CELL + 2)
        return [(column, row) for column in columns for row in rows]

    def _collect_orbs(self, avatar: Avatar) -> None:
        x, y = avatar.x, avatar.y
        column, row = x // CELL + 1, y // CELL + 1
        if not (0 <= column <= self._columns and 0 <= row <= self._rows):
            return  # off the map: beyond every orb's reach (the margin holds the rims)
        cell = self.orbs[column][row]
        if not cell:
            return  # (every input comes here: most find no orb near)
        reach = self._reach
        hits = [o for o in cell if (o.x - x) ** 2 + (o.y - y) ** 2 <= reach * reach]
        for orb in hits:
            for c, r in self._orb_cells(orb):
                self.orbs[c][r].remove(orb)  # type: ignore[union-attr]
            self.world.remove(orb)
            self.orb_count -= 1
            avatar.score += 1
