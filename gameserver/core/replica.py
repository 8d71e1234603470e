"""A client's copy of a room's world, rebuilt from snapshots and deltas. Pure.

This is the reference decoder for the update messages in docs/PROTOCOL.md:
tests use it to check that deltas reproduce the server's state, and the load
test's sampled bots use it to follow the game. The JavaScript SDK's ``Replica``
(``static/sdk/gameserver.js``) is the same algorithm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gameserver.core.codec import S_DELTA, S_SNAPSHOT


class ReplicaError(Exception):
    """An update that does not fit the replica (a protocol violation by the server)."""


def _parts(rest: list[Any]) -> list[Any]:
    """The optional last element of an update: the player's view parts."""
    if not rest:
        return []
    if len(rest) != 1 or not isinstance(rest[0], list) \
            or not all(isinstance(p, list) and len(p) == 3 for p in rest[0]):
        raise ReplicaError("an update's parts are a list of [created, changed, removed]")
    return rest[0]


@dataclass(slots=True)
class ReplicaEntity:
    id: int
    type: str
    values: dict[str, Any]
    type_index: int


@dataclass
class Replica:
    """Entities by id, with their field values, as of ``tick``."""

    schema: list[Any]
    tick: int = -1
    ack: int = 0
    entities: dict[int, ReplicaEntity] = field(default_factory=dict)
    events: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._types = [(name, [f for f, _ in fields], [k for _, k in fields])
                       for name, fields in self.schema]

    def apply(self, message: list[Any]) -> None:
        """Apply one decoded snapshot or delta message."""
        kind = message[0]
        if kind == S_SNAPSHOT:
            _, self.ack, self.tick, records, events, *rest = message
            parts = _parts(rest)
            self.entities = {}
            self._create(records)
            for created, _, _ in parts:
                self._create(created)
            for _, changed, _ in parts:
                self._change(changed)
        elif kind == S_DELTA:
            _, self.ack, tick, base, created, changed, removed, events, *rest = message
            if base != self.tick:
                raise ReplicaError(f"delta from tick {base} applied to tick {self.tick}")
            parts = [(created, changed, removed), *_parts(rest)]
            self.tick = tick
            # Every removal, then every creation, then every change: an entity moving
            # between two parts the player sees is removed from one, created in the other.
            gone: dict[int, ReplicaEntity] = {}
            for _, _, removed in parts:
                for eid in removed:
                    entity = self.entities.pop(eid, None)
                    if entity is None:
                        raise ReplicaError(f"removed unknown entity {eid}")
                    gone[eid] = entity
            for created, _, _ in parts:
                self._create(created, gone)
            for _, changed, _ in parts:
                self._change(changed)
        else:
            raise ReplicaError(f"not an update message: kind {kind}")
        self.events = events

    def _create(self, records: list[Any], gone: dict[int, ReplicaEntity] | None = None
                ) -> None:
        i, n = 0, len(records)
        while i < n:
            eid, type_index = records[i], records[i + 1]
            name, fields, _ = self._types[type_index]
            end = i + 2 + len(fields)
            values = dict(zip(fields, records[i + 2:end], strict=True))
            old = gone.get(eid) if gone else None
            if old is not None and old.type_index == type_index:
                old.values = values  # moved between two parts this player sees: the same one
                self.entities[eid] = old
            else:
                self.entities[eid] = ReplicaEntity(eid, name, values, type_index)
            i = end

    def _change(self, records: list[Any]) -> None:
        i, n = 0, len(records)
        while i < n:
            eid, mask = records[i], records[i + 1]
            i += 2
            entity = self.entities.get(eid)
            if entity is None:
                raise ReplicaError(f"changed unknown entity {eid}")
            _, fields, kinds = self._types[entity.type_index]
            bit = 0
            while mask:
                if mask & 1:
                    name = fields[bit]
                    value = records[i]
                    i += 1
                    entity.values[name] = (entity.values[name] + value
                                           if kinds[bit] == "i" else value)
                mask >>= 1
                bit += 1

    def view(self) -> dict[int, tuple[str, dict[str, Any]]]:
        """A plain comparable picture: ``{id: (type, {field: value})}``."""
        return {e.id: (e.type, dict(e.values)) for e in self.entities.values()}
