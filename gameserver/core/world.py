"""World state: entities with synced fields, change tracking, snapshots and deltas. Pure.

A game declares its entity types as classes with annotated fields::

    class Orb(Entity):
        x: int = 0
        y: int = 0
        value: int = 1

Game code just assigns attributes (``orb.x += 3``). Once per broadcast the
world compares every entity with what it last sent and produces a delta:
entities created (all fields), fields changed, entities removed. Fields
annotated ``int`` travel as differences from the last sent value, so a small
move costs one byte; every other field travels as its value. Entities are
flat lists on the wire (no per-field names), described once by the schema in
the welcome message.

By default everyone sees everything. A game narrows that per entity and per
field (``Private[...]`` fields, ``show_to_owner``, groups, interest areas); the
bookkeeping of who sees what lives in :mod:`gameserver.core.views`, and a world
that never asks for it pays nothing for it.
"""

from __future__ import annotations

from itertools import chain
from operator import attrgetter
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Final, TypeVar, get_args, get_origin

if TYPE_CHECKING:
    from gameserver.core.views import Views

INT: Final = "i"  # integer, sent as the difference from the last sent value
VALUE: Final = "v"  # any msgpack value, sent as is

T = TypeVar("T")


class _PrivateMark:
    """The marker inside ``Private[...]``."""


# ``ammo: Private[int] = 0``: a field only the entity's owner sees (others get None).
# To a type checker it is just ``int``.
Private = Annotated[T, _PrivateMark]


def append_change(record: list[Any], eid: int, cls: type[Entity], current: tuple[Any, ...],
                  previous: tuple[Any, ...]) -> int:
    """Append the change record ``eid, mask, values...`` of an entity whose fields went
    from ``previous`` to ``current`` (int fields as differences); returns the mask."""
    record.append(eid)
    at = len(record)
    record.append(0)
    mask = 0
    kinds = cls._kinds
    for i, new in enumerate(current):
        old = previous[i]
        if new != old:
            mask |= 1 << i
            if kinds[i] is INT:
                if type(new) is not int:
                    raise TypeError(f"{cls.__name__}.{cls._fields[i]} is an int field, "
                                    f"got {new!r}")
                record.append(new - old)
            else:
                record.append(new)
    record[at] = mask
    return mask


class _EntityMeta(type):
    """Turns annotated class attributes into slotted, synced fields."""

    def __new__(mcs, name: str, bases: tuple[type, ...], ns: dict[str, Any],
                frozen: bool | None = None) -> _EntityMeta:
        annotations = ns.get("__annotations__", {})
        slots = [f for f, t in annotations.items() if not _is_classvar(t)]
        own = [f for f in slots if f != "id"]  # the id is the world's, not a synced field
        defaults = {f: ns.pop(f) for f in own if f in ns}
        ns["__slots__"] = tuple(slots)
        cls = super().__new__(mcs, name, bases, ns)
        inherited: tuple[str, ...] = getattr(cls, "_fields", ())
        kinds: tuple[str, ...] = getattr(cls, "_kinds", ())
        private = [_is_private(annotations[f]) for f in own]
        cls._fields = inherited + tuple(own)
        # Private fields travel as values: their holder changes, so a difference has no base.
        cls._kinds = kinds + tuple(INT if annotations[f] in (int, "int") and not p else VALUE
                                   for f, p in zip(own, private, strict=True))
        cls._private = getattr(cls, "_private", ()) + tuple(
            len(inherited) + i for i, p in enumerate(private) if p)
        cls._private_mask = sum(1 << i for i in cls._private)
        cls._defaults = {**getattr(cls, "_defaults", {}), **defaults}
        cls._getter = attrgetter(*cls._fields) if len(cls._fields) > 1 else _tuple_getter(cls)
        owner = getattr(cls, "owner_field", None)
        if cls._private and owner not in cls._fields:
            raise TypeError(f"{name} has Private fields: set owner_field to the name of the "
                            "int field holding the owning player's id")
        cls._owner_getter = attrgetter(owner) if owner in cls._fields else None
        cls._frozen = getattr(cls, "_frozen", False) if frozen is None else frozen
        if cls._frozen:
            if cls._private:
                raise TypeError(f"{name} is frozen: it cannot have Private fields")
            cls.__setattr__ = _frozen_setattr  # type: ignore[assignment]
        return cls

    def __init__(cls, name: str, bases: tuple[type, ...], ns: dict[str, Any],
                 frozen: bool | None = None) -> None:
        super().__init__(name, bases, ns)


def _frozen_setattr(self: Entity, name: str, value: Any) -> None:
    """A frozen entity's fields are set once, before it is spawned."""
    if name != "id" and getattr(self, "id", 0):
        raise AttributeError(f"{type(self).__name__} is frozen: its fields cannot change once "
                             "it is spawned (remove it and spawn another)")
    object.__setattr__(self, name, value)


def _is_private(annotation: Any) -> bool:
    if isinstance(annotation, str):  # under ``from __future__ import annotations``
        return annotation.replace(" ", "").startswith(("Private[", "world.Private["))
    return get_origin(annotation) is Annotated and _PrivateMark in get_args(annotation)[1:]


def _is_classvar(annotation: Any) -> bool:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar"))


def _tuple_getter(cls: type) -> Any:
    if not cls._fields:  # type: ignore[attr-defined]
        return lambda _e: ()
    one = attrgetter(cls._fields[0])  # type: ignore[attr-defined]
    return lambda e: (one(e),)


class Entity(metaclass=_EntityMeta):
    """Base class of everything in a room's world. Annotated attributes are synced."""

    id: int
    # ``class Wall(Entity, frozen=True)``: fields set once, before spawn, never changed (an
    # AttributeError says so). Updates never look at it again, which makes many static
    # entities (walls, pickups) cost nothing per tick. No Private fields.
    _frozen: ClassVar[bool]
    # The int field holding the owning Player.id (0: nobody), for show_to_owner and
    # Private fields. A class with Private fields must name one.
    owner_field: ClassVar[str | None] = None
    _fields: ClassVar[tuple[str, ...]]
    _kinds: ClassVar[tuple[str, ...]]
    _private: ClassVar[tuple[int, ...]]  # indexes of the Private fields
    _private_mask: ClassVar[int]
    _defaults: ClassVar[dict[str, Any]]
    _getter: ClassVar[Any]
    _owner_getter: ClassVar[Any]

    def __init__(self, **values: Any) -> None:
        for name, value in self._defaults.items():
            setattr(self, name, value)
        for name, value in values.items():
            if name not in self._fields:
                raise TypeError(f"{type(self).__name__} has no synced field {name!r}")
            setattr(self, name, value)
        self.id = 0

    def __repr__(self) -> str:
        fields = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}(id={self.id}, {fields})"


E = TypeVar("E", bound=Entity)


class World:
    """The entities of one room and the record of what was last sent about them.

    Wire formats (see docs/PROTOCOL.md):

    - entity record (snapshots, created): ``id, type_index, v0, v1, ...`` flattened
    - change record: ``id, field_mask, v...`` flattened, one value per set bit,
      int fields as differences
    - removed: a list of ids
    """

    def __init__(self, types: tuple[type[Entity], ...], max_entities: int = 65535) -> None:
        if not types:
            raise ValueError("a world needs at least one entity type")
        self.types = types
        self._type_index = {t: i for i, t in enumerate(types)}
        self.max_entities = max_entities
        self.entities: dict[int, Entity] = {}
        # What collect() compares: every entity but the frozen ones, which are only
        # looked at once, as created (``_fresh``), since their fields never change.
        self._live: dict[int, Entity] = {}
        self._fresh: list[Entity] = []
        self._sent: dict[int, tuple[Any, ...]] = {}
        self._removed: list[int] = []
        self._free_ids: list[int] = []
        self._next_id = 1
        # Who sees what: made on first use (or now, for types with Private fields).
        self.views: Views | None = None
        if any(t._private for t in types):
            self._views()

    # -- game API -----------------------------------------------------------

    def spawn(self, entity: E) -> E:
        """Add an entity; it is sent as created with the next update."""
        if type(entity) not in self._type_index:
            raise TypeError(f"{type(entity).__name__} is not one of this room's entity types")
        if entity.id:
            raise ValueError(f"{entity!r} is already in a world")
        if len(self.entities) >= self.max_entities:
            raise OverflowError(f"the world is full ({self.max_entities} entities)")
        if self._free_ids:
            entity.id = self._free_ids.pop()
        else:
            entity.id = self._next_id
            self._next_id += 1
        self.entities[entity.id] = entity
        if type(entity)._frozen:
            self._fresh.append(entity)
        else:
            self._live[entity.id] = entity
        return entity

    def remove(self, entity: Entity) -> None:
        """Remove an entity; it is sent as removed with the next update."""
        eid = entity.id
        if self.entities.get(eid) is not entity:
            raise KeyError(f"{entity!r} is not in this world")
        del self.entities[eid]
        self._live.pop(eid, None)
        if self.views is not None:
            self.views.forget(eid)
        if self._sent.pop(eid, None) is not None:
            self._removed.append(eid)
        else:  # never sent: nobody needs to hear of it, and its id is free now
            self._free_ids.append(eid)
        entity.id = 0

    def of_type(self, cls: type[E]) -> list[E]:
        return [e for e in self.entities.values() if type(e) is cls]  # type: ignore[misc]

    # -- who sees what (gameserver.core.views): each takes effect with the next update --

    def show_to_everyone(self, entity: Entity) -> None:
        """Everyone sees ``entity`` (the default)."""
        self._views().show(entity, None)

    def show_to_owner(self, entity: Entity) -> None:
        """Only the player whose id is in the entity's ``owner_field`` sees it."""
        if type(entity)._owner_getter is None:
            raise TypeError(f"{type(entity).__name__} has no owner_field")
        self._views().show(entity, "owner")

    def show_to_group(self, entity: Entity, group: str) -> None:
        """Only the members of ``group`` see ``entity`` (see :meth:`join_group`)."""
        self._views().show(entity, ("g", group))

    def show_nearby(self, entity: Entity) -> None:
        """Only players whose interest area holds the entity's cell see it (its int
        ``x`` and ``y`` place it on the grid of :meth:`interest`)."""
        views = self._views()
        if not views.cell:
            raise ValueError("call world.interest(cell=..., reach=...) before show_nearby")
        if not all(type(getattr(entity, f, None)) is int for f in ("x", "y")):
            raise TypeError(f"{type(entity).__name__} needs int fields x and y to be shown "
                            "nearby")
        views.show(entity, "nearby")

    def reveal(self, entity: Entity) -> None:
        """The entity's Private fields become visible to everyone who sees it."""
        if not entity.id:
            raise ValueError(f"spawn {entity!r} before revealing it")
        self._views().revealed.add(entity.id)

    def conceal(self, entity: Entity) -> None:
        """The entity's Private fields are its owner's alone again (the default)."""
        self._views().revealed.discard(entity.id)

    def join_group(self, player_id: int, group: str) -> None:
        views = self._views()
        views.groups.setdefault(player_id, set()).add(group)
        views.groups_version += 1

    def leave_group(self, player_id: int, group: str) -> None:
        views = self._views()
        views.groups.get(player_id, set()).discard(group)
        views.groups_version += 1

    def groups_of(self, player_id: int) -> set[str]:
        views = self.views
        return set(views.groups.get(player_id, ())) if views is not None else set()

    def interest(self, cell: int, reach: int = 1) -> None:
        """The interest grid: ``cell`` by ``cell`` squares; a player sees the nearby
        entities of the ``(2 * reach + 1)²`` cells around the entity they follow."""
        if type(cell) is not int or cell <= 0 or type(reach) is not int or reach < 0:
            raise ValueError("interest needs a positive int cell and an int reach >= 0")
        views = self._views()
        views.cell, views.reach = cell, reach
        views.groups_version += 1  # every player's area is worked out again

    def follow(self, player_id: int, entity: Entity | None) -> None:
        """The player's interest area follows ``entity`` (their avatar); None: no area."""
        views = self._views()
        if entity is None:
            views.focus.pop(player_id, None)
        else:
            views.focus[player_id] = entity

    def _views(self) -> Views:
        if self.views is None:
            from gameserver.core.views import Views  # only games that use views load it

            self.views = Views(self)
        return self.views

    # -- framework API ------------------------------------------------------

    def schema(self) -> list[Any]:
        """``[[type_name, [[field, kind], ...]], ...]``, in type-index order."""
        return [[t.__name__, [[f, k] for f, k in zip(t._fields, t._kinds, strict=True)]]
                for t in self.types]

    def collect(self, viewers: Any = ()) -> tuple[list[Any], list[Any], list[int]]:
        """Diff the world against what was last sent; mark it sent.

        Returns ``(created, changed, removed)`` in wire format: what everyone sees.
        With views, ``viewers`` are the player ids to work out views for, and what
        each of them sees beyond that is in ``self.views`` until the next collect.
        """
        if self.views is not None:
            return self.views.collect(viewers)
        sent = self._sent
        type_index = self._type_index
        created: list[Any] = []
        changed: list[Any] = []
        for eid, entity in chain(self._live.items(), self.take_fresh()):
            cls = type(entity)
            current = cls._getter(entity)
            previous = sent.get(eid)
            if previous is None:
                created.append(eid)
                created.append(type_index[cls])
                created.extend(current)
            elif current != previous:
                append_change(changed, eid, cls, current, previous)
            else:
                continue
            sent[eid] = current
        removed = self._removed
        self._removed = []
        # Ids removed in this delta may be reused from the next one on.
        self._free_ids.extend(removed)
        return created, changed, removed

    def take_fresh(self) -> list[tuple[int, Entity]]:
        """The frozen entities spawned since the last collect and still here."""
        fresh, self._fresh = self._fresh, []
        entities = self.entities
        return [(e.id, e) for e in fresh if entities.get(e.id) is e]

    def snapshot(self) -> list[Any]:
        """Every entity everyone sees, as last collected, in wire format (for joiners and
        resyncs; with views, each player's own parts come from ``self.views``)."""
        out: list[Any] = []
        type_index = self._type_index
        if self.views is not None:
            return self.views.public_snapshot()
        for eid, values in self._sent.items():
            out.append(eid)
            out.append(type_index[type(self.entities[eid])])
            out.extend(values)
        return out
