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
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any, ClassVar, Final, TypeVar

INT: Final = "i"  # integer, sent as the difference from the last sent value
VALUE: Final = "v"  # any msgpack value, sent as is


class _EntityMeta(type):
    """Turns annotated class attributes into slotted, synced fields."""

    def __new__(mcs, name: str, bases: tuple[type, ...], ns: dict[str, Any]) -> _EntityMeta:
        annotations = ns.get("__annotations__", {})
        slots = [f for f, t in annotations.items() if not _is_classvar(t)]
        own = [f for f in slots if f != "id"]  # the id is the world's, not a synced field
        defaults = {f: ns.pop(f) for f in own if f in ns}
        ns["__slots__"] = tuple(slots)
        cls = super().__new__(mcs, name, bases, ns)
        inherited: tuple[str, ...] = getattr(cls, "_fields", ())
        kinds: tuple[str, ...] = getattr(cls, "_kinds", ())
        cls._fields = inherited + tuple(own)
        cls._kinds = kinds + tuple(INT if annotations[f] in (int, "int") else VALUE for f in own)
        cls._defaults = {**getattr(cls, "_defaults", {}), **defaults}
        cls._getter = attrgetter(*cls._fields) if len(cls._fields) > 1 else _tuple_getter(cls)
        return cls


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
    _fields: ClassVar[tuple[str, ...]]
    _kinds: ClassVar[tuple[str, ...]]
    _defaults: ClassVar[dict[str, Any]]
    _getter: ClassVar[Any]

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
        self._sent: dict[int, tuple[Any, ...]] = {}
        self._removed: list[int] = []
        self._free_ids: list[int] = []
        self._next_id = 1

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
        return entity

    def remove(self, entity: Entity) -> None:
        """Remove an entity; it is sent as removed with the next update."""
        eid = entity.id
        if self.entities.get(eid) is not entity:
            raise KeyError(f"{entity!r} is not in this world")
        del self.entities[eid]
        if self._sent.pop(eid, None) is not None:
            self._removed.append(eid)
        else:  # never sent: nobody needs to hear of it, and its id is free now
            self._free_ids.append(eid)
        entity.id = 0

    def of_type(self, cls: type[E]) -> list[E]:
        return [e for e in self.entities.values() if type(e) is cls]  # type: ignore[misc]

    # -- framework API ------------------------------------------------------

    def schema(self) -> list[Any]:
        """``[[type_name, [[field, kind], ...]], ...]``, in type-index order."""
        return [[t.__name__, [[f, k] for f, k in zip(t._fields, t._kinds, strict=True)]]
                for t in self.types]

    def collect(self) -> tuple[list[Any], list[Any], list[int]]:
        """Diff the world against what was last sent; mark it sent.

        Returns ``(created, changed, removed)`` in wire format.
        """
        sent = self._sent
        type_index = self._type_index
        created: list[Any] = []
        changed: list[Any] = []
        for eid, entity in self.entities.items():
            cls = type(entity)
            current = cls._getter(entity)
            previous = sent.get(eid)
            if previous is None:
                created.append(eid)
                created.append(type_index[cls])
                created.extend(current)
            elif current != previous:
                mask = 0
                values = []
                kinds = cls._kinds
                for i, new in enumerate(current):
                    old = previous[i]
                    if new != old:
                        mask |= 1 << i
                        if kinds[i] is INT:
                            if type(new) is not int:
                                raise TypeError(
                                    f"{cls.__name__}.{cls._fields[i]} is an int field, "
                                    f"got {new!r}")
                            values.append(new - old)
                        else:
                            values.append(new)
                changed.append(eid)
                changed.append(mask)
                changed.extend(values)
            else:
                continue
            sent[eid] = current
        removed = self._removed
        self._removed = []
        # Ids removed in this delta may be reused from the next one on.
        self._free_ids.extend(removed)
        return created, changed, removed

    def snapshot(self) -> list[Any]:
        """Every entity as last collected, in wire format (for joiners and resyncs)."""
        out: list[Any] = []
        type_index = self._type_index
        for eid, values in self._sent.items():
            out.append(eid)
            out.append(type_index[type(self.entities[eid])])
            out.extend(values)
        return out
