"""Per-player views (issue 14), adversarially: whatever a game does with views, every
connected player's replica is the server's world *as that player may see it*.

The expected picture is computed here from the server's entities and this file's own
record of what the game asked for (show_to_*, reveal, groups, follows), by the spec's
rules (``/work/spec14.md``), never from the implementation's bookkeeping. The room runs
on the real engine and send path (``gameserver.testing.RoomHarness``): each player
decodes its own bytes with the reference replica.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gameserver import Entity, Room
from gameserver.core import codec
from gameserver.core.world import Private, World
from gameserver.testing import HarnessPlayer, RoomHarness

CELL = 10  # by default, interest cells of 10 x 10 units on a 60 x 60 plane centred on 0
REACH = 1  # a player's area: the 3 x 3 cells around the entity it follows
PLANE = 60
GRIDS = ((CELL, REACH), (10, 0), (7, 2))  # (cell, reach): the property draws one
GROUPS = ("red", "blue")
MAX_PLAYERS = 8
PRIVATE = ("secret", "note")


class Unit(Entity):
    """Every view feature: an owner, a position, public and private fields."""

    owner_field = "owner"
    owner: int = 0
    x: int = 0
    y: int = 0
    hp: int = 0
    tag: str = ""
    secret: Private[int] = 0
    note: Private[str] = ""


class Orb(Entity):
    """No owner and no private fields: shown to everyone, a group or nearby."""

    x: int = 0
    y: int = 0
    value: int = 0


class Wall(Entity, frozen=True):
    """Frozen: its fields never change once spawned, only who sees it (its records in
    a unit are encoded once and kept, gameserver.core.views)."""

    x: int = 0
    y: int = 0
    kind: str = ""


class Pawn(Entity):
    """An owner and a position, no private field: only its fields decide its view."""

    owner_field = "owner"
    owner: int = 0
    x: int = 0
    y: int = 0


class Views(Room):
    game = "views"
    max_players = MAX_PLAYERS
    entity_types = (Unit, Orb, Pawn, Wall)

    def on_create(self, options: dict[str, Any]) -> None:
        if not options.get("late"):
            self.world.interest(cell=options.get("cell", CELL),
                                reach=options.get("reach", REACH))
        self.hooked: list[Callable[[], None]] = []  # what the next update does to the world

    def update(self, dt: float) -> None:
        hooked, self.hooked = self.hooked, []
        for change in hooked:
            change()


class MapViews(Views):
    """Spectators see the map too: every nearby entity (Room.spectator_view)."""

    game = "map-views"
    spectator_view = "nearby"


class LateViews(Views):
    """No Private fields, and no view feature until the game first asks for one: the
    world starts without views (``world.views is None``) and gets them mid-game."""

    game = "late-views"
    entity_types = (Orb, Pawn, Wall)


View = dict[int, tuple[str, dict[str, Any]]]


@dataclass
class Model:
    """What the game asked of the world's views, as this test recorded it."""

    shown: dict[int, tuple[str, str | None]] = field(default_factory=dict)  # id -> (how, group)
    revealed: set[int] = field(default_factory=set)
    groups: dict[int, set[str]] = field(default_factory=dict)  # player id -> groups
    follows: dict[int, Entity] = field(default_factory=dict)  # player id -> entity
    cell: int = CELL
    reach: int = REACH
    spectators_see_map: bool = False  # spectator_view "nearby"


def cell(entity: Entity, size: int) -> tuple[int, int]:
    return entity.x // size, entity.y // size  # type: ignore[attr-defined]


def sees(model: Model, pid: int, entity: Entity) -> bool:
    """The spec: everyone-entities; owner-only ones to their owner; a group's to its
    members; nearby ones to players whose area holds their cell. Spectators (id 0) see
    only everyone-entities, plus, with ``spectator_view = "nearby"``, every nearby one."""
    how, group = model.shown[entity.id]
    if how == "everyone":
        return True
    if pid == 0:
        return how == "nearby" and model.spectators_see_map
    if how == "owner":
        return entity.owner == pid  # type: ignore[attr-defined,no-any-return]
    if how == "group":
        return group in model.groups.get(pid, set())
    followed = model.follows.get(pid)
    if followed is None:
        return False
    (ex, ey), (fx, fy) = cell(entity, model.cell), cell(followed, model.cell)
    return abs(ex - fx) <= model.reach and abs(ey - fy) <= model.reach


def expected_view(world: World, model: Model, pid: int) -> View:
    """The server's world as player ``pid`` may see it: private fields are None unless
    the player owns the entity or it is revealed."""
    out: View = {}
    for eid, entity in world.entities.items():
        if not sees(model, pid, entity):
            continue
        values = {f: getattr(entity, f) for f in entity._fields}
        if isinstance(entity, Unit) and eid not in model.revealed and \
                (pid == 0 or entity.owner != pid):
            for name in PRIVATE:
                values[name] = None
        out[eid] = (type(entity).__name__, values)
    return out


# -- the steps -------------------------------------------------------------------------

coord = st.integers(-PLANE // 2, PLANE // 2 - 1)  # cells on both sides of 0 (floor division)
owner_id = st.integers(0, MAX_PLAYERS - 2)  # 0 is nobody; ids of players in and out
pick = st.integers(0, 63)  # an entity or a player, by index modulo how many there are
hows = st.sampled_from(["everyone", "owner", "group", "nearby"])
group_name = st.sampled_from(GROUPS)
short_text = st.text(alphabet="abc", max_size=3)
value = st.integers(-1000, 1000)

spawn = st.one_of(
    st.tuples(st.just("spawn_unit"), owner_id, coord, coord, value, short_text, value,
              short_text, hows, group_name),
    st.tuples(st.just("spawn_orb"), coord, coord, value, hows, group_name),
    st.tuples(st.just("spawn_pawn"), owner_id, coord, coord, hows, group_name),
    st.tuples(st.just("spawn_wall"), coord, coord, short_text, hows, group_name),
)
change = st.one_of(
    st.tuples(st.just("set"), pick, st.integers(0, 3), value, short_text),
    st.tuples(st.just("move"), pick, coord, coord),
)
step = st.one_of(
    spawn,
    change,
    change,
    st.tuples(st.just("remove"), pick),
    st.tuples(st.just("show"), pick, hows, group_name),
    st.tuples(st.just("owner"), pick, owner_id),
    st.tuples(st.just("reveal"), pick, st.booleans()),
    st.tuples(st.just("group"), pick, group_name, st.booleans()),
    st.tuples(st.just("follow"), pick, pick, st.booleans()),
    st.tuples(st.just("join")),
    st.tuples(st.just("leave"), pick),
    st.tuples(st.just("drop"), pick),
    st.tuples(st.just("reconnect"), pick),
    st.tuples(st.just("slow"), pick, st.booleans()),
    st.tuples(st.just("watch")),
    st.tuples(st.just("unwatch"), pick),
)
PLAYER_STEPS = ("join", "leave", "drop", "reconnect", "slow", "watch", "unwatch")


class Game:
    """The room, its players and spectator, and the test's record of its views."""

    def __init__(self, grid: tuple[int, int] = (CELL, REACH), late: bool = False,
                 spectators_see_map: bool = False) -> None:
        game = LateViews if late else MapViews if spectators_see_map else Views
        self.harness = RoomHarness(game, {"cell": grid[0], "reach": grid[1], "late": late})
        self.late = late
        self.views_on = not late  # a late world has no views until a step needs them
        room = self.harness.room
        assert isinstance(room, Views)
        self.room = room
        self.world = room.world
        self.model = Model(cell=grid[0], reach=grid[1], spectators_see_map=spectators_see_map)
        for name in ("ann", "bob", "cat"):
            self.harness.join(name)
        self.harness.watch()

    def entity(self, index: int) -> Entity | None:
        ids = sorted(self.world.entities)
        return self.world.entities[ids[index % len(ids)]] if ids else None

    def player(self, index: int) -> HarnessPlayer:
        players = self.harness.players
        return players[index % len(players)]

    def seated(self, index: int) -> int | None:
        """A seated player's id (connected or dropped), by index."""
        seated = sorted(self.harness.room.players)
        return seated[index % len(seated)] if seated else None

    def viewing(self) -> World:
        """The world, with views on (a late world: the grid is set now)."""
        if not self.views_on:
            assert self.world.views is None
            self.world.interest(cell=self.model.cell, reach=self.model.reach)
            self.views_on = True
        return self.world

    def show(self, entity: Entity, how: str, group: str) -> None:
        world = self.viewing()
        if how == "owner" and isinstance(entity, Orb | Wall):
            how = "nearby"  # no owner field
        if how == "everyone":
            world.show_to_everyone(entity)
        elif how == "owner":
            world.show_to_owner(entity)
        elif how == "group":
            world.show_to_group(entity, group)
        else:
            world.show_nearby(entity)
        self.model.shown[entity.id] = (how, group if how == "group" else None)

    def spawn(self, entity: Entity, how: str, group: str) -> None:
        self.world.spawn(entity)
        self.model.shown[entity.id] = ("everyone", None)  # the default
        if how != "everyone":
            self.show(entity, how, group)

    def step(self, op: tuple[Any, ...], in_hook: bool) -> None:
        """One step: a player's, at once; the game's, at once or in the next update."""
        if in_hook and op[0] not in PLAYER_STEPS:
            self.room.hooked.append(lambda: self.apply(op))
        else:
            self.apply(op)

    def apply(self, op: tuple[Any, ...]) -> None:
        kind, world, model = op[0], self.world, self.model
        if kind == "spawn_unit" and self.late:  # no Units here: an Orb instead
            self.apply(("spawn_orb", op[2], op[3], op[4], op[8], op[9]))
        elif kind == "spawn_unit":
            _, owner, x, y, hp, tag, secret, note, how, group = op
            self.spawn(Unit(owner=owner, x=x, y=y, hp=hp, tag=tag, secret=secret, note=note),
                       how, group)
        elif kind == "spawn_orb":
            _, x, y, v, how, group = op
            self.spawn(Orb(x=x, y=y, value=v), how, group)
        elif kind == "spawn_pawn":
            _, owner, x, y, how, group = op
            self.spawn(Pawn(owner=owner, x=x, y=y), how, group)
        elif kind == "spawn_wall":
            _, x, y, text, how, group = op
            self.spawn(Wall(x=x, y=y, kind=text), how, group)
        elif kind == "join":
            if len(self.harness.room.players) < MAX_PLAYERS and not self.harness.room.locked:
                self.harness.join(f"p{len(self.harness.players)}")
        elif kind == "watch":
            if len(self.harness.spectators) < 3:
                self.harness.watch()
        elif kind == "unwatch":
            watchers = self.harness.spectators
            if watchers[op[1] % len(watchers)].connected:
                watchers[op[1] % len(watchers)].drop()
        elif kind in ("leave", "drop", "reconnect", "slow"):
            player = self.player(op[1])
            if kind == "reconnect":
                if not player.connected and player.seat is not None and player.closed is None:
                    player.reconnect()
            elif player.connected:
                if kind == "leave":
                    player.leave()
                elif kind == "drop":
                    player.drop()
                else:
                    player.slow = op[2]
        elif kind == "group":
            pid = self.seated(op[1])
            if pid is not None:
                world = self.viewing()
                mine = model.groups.setdefault(pid, set())
                if op[3]:
                    world.join_group(pid, op[2])
                    mine.add(op[2])
                else:
                    world.leave_group(pid, op[2])
                    mine.discard(op[2])
                assert world.groups_of(pid) == mine
        elif kind == "follow":
            pid, target = self.seated(op[1]), self.entity(op[2])
            if pid is not None:
                world = self.viewing()
                if op[3] and target is not None:
                    world.follow(pid, target)
                    model.follows[pid] = target
                else:
                    world.follow(pid, None)
                    model.follows.pop(pid, None)
        else:
            self.change(op)

    def change(self, op: tuple[Any, ...]) -> None:
        kind, world, model = op[0], self.world, self.model
        entity = self.entity(op[1])
        if entity is None:
            return
        if kind == "remove":
            for pid, followed in list(model.follows.items()):
                if followed is entity:  # the spec says nothing of following a removed entity
                    self.viewing().follow(pid, None)
                    del model.follows[pid]
            del model.shown[entity.id]
            model.revealed.discard(entity.id)
            world.remove(entity)
        elif kind == "set":
            _, _, which, number, text = op
            if isinstance(entity, Unit):
                name = ("hp", "tag", "secret", "note")[which]
                setattr(entity, name, text if name in ("tag", "note") else number)
            elif isinstance(entity, Orb):
                entity.value = number
        elif kind == "move" and not isinstance(entity, Wall):
            entity.x, entity.y = op[2], op[3]  # type: ignore[attr-defined]
        elif kind == "show":
            self.show(entity, op[2], op[3])
        elif kind == "owner" and isinstance(entity, Unit | Pawn):
            entity.owner = op[2]
        elif kind == "reveal" and isinstance(entity, Unit):
            world = self.viewing()
            if op[2]:
                world.reveal(entity)
                model.revealed.add(entity.id)
            else:
                world.conceal(entity)
                model.revealed.discard(entity.id)

    def check(self) -> None:
        """Every connected, up-to-date player (and the spectator) holds exactly its view."""
        tick = self.harness.room.tick
        for player in [*self.harness.players, *self.harness.spectators]:
            if not player.connected or player.slow:
                continue
            assert player.replica is not None and player.replica.tick == tick, player
            last = player.received[-1]
            assert last[0] in (codec.S_SNAPSHOT, codec.S_DELTA) and last[2] == tick
            classic = 5 if last[0] == codec.S_SNAPSHOT else 8
            if player.spectator and not self.model.spectators_see_map:
                assert len(last) == classic, last  # only the public view: the classic layout
            elif len(last) > classic:  # parts: a non-empty list of [created, changed, removed]
                assert len(last) == classic + 1 and last[-1], last
                assert all(len(part) == 3 for part in last[-1]), last
            if not self.views_on:  # no view asked for yet: the wire of a game without views
                assert self.world.views is None and len(last) == classic, last
            expected = expected_view(self.world, self.model, player.id)
            assert player.replica.view() == expected, (player, self.model)
            self.check_secrets(player.id, last)

    def check_secrets(self, pid: int, message: list[Any]) -> None:
        """No byte of the update leaks a concealed Private value to anyone but its owner:
        entity records always carry None in those slots, and only the player's own part,
        the last, carries the values, in change records of entities they own."""
        world, revealed = self.world, self.model.revealed
        if message[0] == codec.S_SNAPSHOT:
            sections = [(message[3], [])]
            parts = message[5] if len(message) > 5 else []
        else:
            sections = [(message[4], message[5])]
            parts = message[8] if len(message) > 8 else []
        sections += [(created, changed) for created, changed, _ in parts]
        for n, (created, changed) in enumerate(sections):
            own_part = n == len(sections) - 1 and n > 0
            i = 0
            while i < len(created):
                eid, cls = created[i], world.types[created[i + 1]]
                values = created[i + 2:i + 2 + len(cls._fields)]
                for slot in private_slots(cls):
                    assert values[slot] is None or eid in revealed, ("leak", pid, message)
                i += 2 + len(cls._fields)
            i = 0
            while i < len(changed):
                eid, mask = changed[i], changed[i + 1]
                entity = world.entities[eid]
                i += 2
                slots = private_slots(type(entity))
                for bit in range(len(entity._fields)):
                    if mask >> bit & 1:
                        if bit in slots and changed[i] is not None and eid not in revealed:
                            assert own_part and entity.owner == pid, (  # type: ignore[attr-defined]
                                "leak", pid, message)
                        i += 1


def private_slots(cls: type[Entity]) -> list[int]:
    return [i for i, f in enumerate(cls._fields) if f in PRIVATE]


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(GRIDS), st.lists(spawn, max_size=20),
       st.lists(st.tuples(st.lists(step, max_size=12), st.booleans()), min_size=1, max_size=40))
def test_every_player_holds_the_world_as_its_view_shows_it(
        grid: tuple[int, int], population: list[Any], ticks: list[tuple[list[Any], bool]]
) -> None:
    """Each tick: some steps (the game's made from outside, or from the room's update
    hook), then an update, then every connected player's replica is checked."""
    play(Game(grid), population, ticks)


@settings(max_examples=700, deadline=None)
@given(st.sampled_from(GRIDS), st.lists(spawn, max_size=20),
       st.lists(st.tuples(st.lists(step, max_size=12), st.booleans()), min_size=1, max_size=40))
def test_spectators_who_may_see_the_map_hold_every_nearby_entity(
        grid: tuple[int, int], population: list[Any], ticks: list[tuple[list[Any], bool]]
) -> None:
    """``Room.spectator_view = "nearby"``: spectators also see every nearby entity,
    never a group's or an owner's, nor a concealed Private field; players as before."""
    play(Game(grid, spectators_see_map=True), population, ticks)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(GRIDS), st.lists(st.tuples(st.lists(step, max_size=12), st.booleans()),
                                        min_size=1, max_size=40))
def test_views_made_mid_game_take_over_from_the_plain_wire(
        grid: tuple[int, int], ticks: list[tuple[list[Any], bool]]) -> None:
    """A world without Private fields has no views until the game first asks for one
    (the first show_*, group or follow): before, the plain wire; after, every view."""
    play(Game(grid, late=True), [], ticks)


def play(game: Game, population: list[Any], ticks: list[tuple[list[Any], bool]]) -> None:
    for op in population:
        game.apply(op)
    for ops, in_hook in ticks:
        for op in ops:
            game.step(op, in_hook)
        game.harness.tick()
        game.check()
    # Everyone catches up: the slow get a snapshot of their view, the dropped come back.
    for player in game.harness.players:
        if player.connected:
            player.slow = False
        elif player.seat is not None and player.closed is None:
            player.reconnect()
    game.harness.tick()
    game.check()


# -- the same rules, one at a time (each a minimal example should the property fail) ------


def views_room() -> tuple[RoomHarness, World, HarnessPlayer, HarnessPlayer, HarnessPlayer]:
    harness = RoomHarness(Views)
    ann, bob = harness.join("ann"), harness.join("bob")
    return harness, harness.room.world, ann, bob, harness.watch()


def seen(player: HarnessPlayer, entity: Entity) -> dict[str, Any] | None:
    assert player.replica is not None
    mine = player.replica.entities.get(entity.id)
    return None if mine is None else mine.values


def value_of(player: HarnessPlayer, entity: Entity, name: str) -> Any:
    """A field of an entity the player must see."""
    values = seen(player, entity)
    assert values is not None, f"{player} does not see {entity}"
    return values[name]


def test_private_fields_follow_the_owner_and_reveal() -> None:
    harness, world, ann, bob, eye = views_room()
    card = world.spawn(Unit(owner=ann.id, hp=1, secret=7, note="n"))
    harness.tick()
    assert seen(ann, card) == {"owner": ann.id, "x": 0, "y": 0, "hp": 1, "tag": "",
                               "secret": 7, "note": "n"}
    assert seen(bob, card) == seen(eye, card) == {**seen(ann, card), "secret": None,
                                                  "note": None}
    card.secret = 8
    harness.tick()
    assert value_of(ann, card, "secret") == 8 and value_of(bob, card, "secret") is None
    card.owner = bob.id  # bob gets the private fields, ann loses them
    harness.tick()
    assert (value_of(ann, card, "secret"), value_of(bob, card, "secret")) == (None, 8)
    assert value_of(eye, card, "secret") is None
    world.reveal(card)
    harness.tick()
    assert value_of(ann, card, "note") == value_of(eye, card, "note") == "n"
    card.note = "m"
    harness.tick()
    assert [value_of(p, card, "note") for p in (ann, bob, eye)] == ["m"] * 3
    world.conceal(card)
    harness.tick()
    assert value_of(ann, card, "note") is None and value_of(eye, card, "note") is None
    assert value_of(bob, card, "note") == "m"


def test_owner_only_entities_move_with_their_owner() -> None:
    harness, world, ann, bob, eye = views_room()
    card = world.spawn(Unit(owner=ann.id, secret=3))
    world.show_to_owner(card)
    harness.tick()
    assert seen(ann, card) is not None and value_of(ann, card, "secret") == 3
    assert seen(bob, card) is None and seen(eye, card) is None
    card.owner = bob.id
    harness.tick()
    assert seen(ann, card) is None and value_of(bob, card, "secret") == 3
    world.show_to_everyone(card)
    harness.tick()
    assert value_of(ann, card, "secret") is None and seen(eye, card) is not None


def test_groups_show_and_hide_their_entities() -> None:
    harness, world, ann, bob, eye = views_room()
    flag = world.spawn(Orb(value=1))
    world.show_to_group(flag, "red")
    world.join_group(ann.id, "red")
    harness.tick()
    assert seen(ann, flag) == {"x": 0, "y": 0, "value": 1}
    assert seen(bob, flag) is None and seen(eye, flag) is None
    world.join_group(bob.id, "red")
    world.leave_group(ann.id, "red")
    flag.value = 2
    harness.tick()
    assert seen(ann, flag) is None and seen(bob, flag) == {"x": 0, "y": 0, "value": 2}
    assert world.groups_of(ann.id) == set() and world.groups_of(bob.id) == {"red"}
    world.show_to_group(flag, "blue")
    harness.tick()
    assert seen(bob, flag) is None


def test_nearby_entities_enter_and_leave_the_followed_area() -> None:
    harness, world, ann, bob, eye = views_room()
    avatar = world.spawn(Orb(x=5, y=5))
    orb = world.spawn(Orb(x=25, y=5, value=1))  # two cells right: outside reach 1
    world.show_nearby(orb)
    world.follow(ann.id, avatar)
    harness.tick()
    assert seen(ann, orb) is None and seen(ann, avatar) is not None
    orb.x = 15  # into the next cell: inside
    harness.tick()
    assert seen(ann, orb) == {"x": 15, "y": 5, "value": 1}
    assert seen(bob, orb) is None and seen(eye, orb) is None
    orb.x, orb.value = 5, 2  # from one seen cell to another (removed and created again?)
    harness.tick()
    assert seen(ann, orb) == {"x": 5, "y": 5, "value": 2}
    avatar.x = 45  # the area moves away
    harness.tick()
    assert seen(ann, orb) is None
    avatar.x = 0
    harness.tick()
    assert seen(ann, orb) == {"x": 5, "y": 5, "value": 2}
    world.follow(ann.id, None)
    harness.tick()
    assert seen(ann, orb) is None


def test_a_resync_carries_the_view() -> None:
    harness, world, ann, bob, _ = views_room()
    flag = world.spawn(Orb(value=1))
    world.show_to_group(flag, "red")
    world.join_group(ann.id, "red")
    card = world.spawn(Unit(owner=ann.id, secret=4))
    harness.tick()
    ann.slow = True
    flag.value = 2
    card.secret = 5
    harness.tick()
    ann.slow = False
    harness.tick()
    assert ann.received[-1][0] == codec.S_SNAPSHOT
    assert seen(ann, flag) == {"x": 0, "y": 0, "value": 2} and value_of(ann, card, "secret") == 5
    bob.drop()
    world.join_group(bob.id, "red")
    harness.tick()
    bob.reconnect()
    harness.tick()
    assert seen(bob, flag) == {"x": 0, "y": 0, "value": 2}
    assert value_of(bob, card, "secret") is None


def test_a_map_spectator_sees_an_entity_entering_a_cell_nobody_was_in() -> None:
    """``spectator_view = "nearby"``: every nearby entity, at every update, including one
    spawned in, or moving into, a cell no entity was in before."""
    harness = RoomHarness(MapViews)
    eye = harness.watch()
    world = harness.room.world
    orb = world.spawn(Orb(x=5, y=5))
    world.show_nearby(orb)
    harness.tick()
    assert seen(eye, orb) == {"x": 5, "y": 5, "value": 0}
    orb.x = 45  # into a cell no entity was ever in
    harness.tick()
    assert seen(eye, orb) == {"x": 45, "y": 5, "value": 0}


def test_following_an_entity_that_is_removed_shows_nothing_nearby() -> None:
    """Not in the spec's words: a removed entity has no cell, so the area is empty (the
    spec's "follows nothing") and nothing breaks."""
    harness, world, ann, _, _ = views_room()
    avatar = world.spawn(Orb(x=5, y=5))
    orb = world.spawn(Orb(x=6, y=6))
    world.show_nearby(orb)
    world.follow(ann.id, avatar)
    harness.tick()
    assert seen(ann, orb) is not None
    world.remove(avatar)
    harness.tick()
    assert seen(ann, orb) is None
    world.spawn(Orb(x=50, y=50))  # may take the removed avatar's id: not followed
    harness.tick(2)
    assert seen(ann, orb) is None
