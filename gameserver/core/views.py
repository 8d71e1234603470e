"""Who sees what: per-player views of a world, encoded once per view, not once per player.

Every entity is, at each update, in exactly one **unit**: the public one (``None``),
a group's (``("g", name)``), a player's own (``("p", player_id)``, for entities only
their owner sees; ``("p", 0)`` is seen by nobody), or an interest cell
(``("c", cx, cy)``). A player subscribes to the public unit, their own, their
groups' and the cells around the entity they follow. Spectators (viewer 0) see the
public unit, and every cell when the game allows it (``Room.spectator_view``). Each update then has:

- per unit, one part ``[created, changed, removed]``: what changed in it since the
  last update, encoded once and sent to everyone subscribed to it before and now;
- per unit a player starts to see, its *enter* part (every member, as created), and
  per unit a player stops seeing, its *leave* part (the ids it held), each also
  encoded once and shared by everyone crossing the same boundary. The records of a
  unit's frozen members (walls, pickups: ``Entity(frozen=True)``) are encoded once
  and kept until one of them comes or goes, so crossing into a cell of many static
  entities costs a copy of their bytes, not their encoding;
- per player, a *personal* part: their own unit's changes plus the Private fields
  of the entities they own, as change records (absolute values; ``None`` clears).

An entity moving from one unit to another is removed from the first and created in
the second, so a client applies every removal of an update before any creation,
and every creation before any change (docs/PROTOCOL.md, "Views"). The public
unit's changes are the update's own ``created, changed, removed``: a game that
uses no views never reaches this module and sends exactly what it did before.

Private fields are sent to the owner only: in every entity record they are
``None`` (unless the entity is revealed), and the owner gets them in their
personal part whenever they might have been overwritten (the entity arrived,
was re-created, or was concealed again), changed, or changed hands.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from itertools import chain
from typing import TYPE_CHECKING, Any

import msgpack

from gameserver.core.codec import array_header
from gameserver.core.world import append_change

if TYPE_CHECKING:
    from gameserver.core.world import Entity, World  # world.py imports this module lazily

Unit = tuple[Any, ...] | None  # None: the public unit

_packb = msgpack.Packer(autoreset=True, use_bin_type=True).pack
_EMPTY: frozenset[Any] = frozenset()


class _Part:
    """One unit's records for the update being built."""

    __slots__ = ("changed", "created", "entered", "removed")

    def __init__(self) -> None:
        self.created: list[Any] = []
        self.changed: list[Any] = []
        self.removed: list[int] = []
        self.entered: list[int] = []  # ids created in the unit (to recover its old members)


class Views:
    """The view bookkeeping of one :class:`~gameserver.core.world.World`.

    Game code reaches it through the world's methods (``show_to_owner``,
    ``join_group``, ``follow``...); the engine calls :meth:`collect` once per update
    and the host asks :meth:`delta_parts` / :meth:`snapshot_parts` per player.
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self.kind: dict[int, Any] = {}  # entity id -> "owner" | "nearby" | ("g", name)
        self.revealed: set[int] = set()
        self.groups: dict[int, set[str]] = {}  # player id -> groups
        self.focus: dict[int, Entity] = {}  # player id -> the entity their area follows
        self.cell = 0
        self.reach = 0
        # As of the last update:
        self.unit_of: dict[int, Unit] = {}  # entity id -> its unit (absent: public)
        # unit -> ids (ordered) of its entities, not public: the live ones, and the frozen
        # ones apart (their records are encoded once, in _still, until one comes or goes)
        self.members: dict[Unit, dict[int, None]] = {}
        self.still: dict[Unit, dict[int, None]] = {}
        self._still: dict[Unit, tuple[int, bytes]] = {}  # unit -> (values, packed values)
        # player id -> units seen besides the public one and their own: equal views are
        # equal sets, so players who see alike share their encoded parts
        self.subs: dict[int, frozenset[Any]] = {}
        self.prev_subs: dict[int, frozenset[Any]] = {}  # ... as of the update before
        self.overlay: dict[int, tuple[int, tuple[Any, ...]]] = {}  # id -> (holder, values)
        self.encodes = 0  # view parts msgpack-encoded for the last update (tests, metrics)
        self._kind_changed: set[int] = set()
        self._sub_keys: dict[int, tuple[Any, ...]] = {}  # player id -> what subs came from
        self.groups_version = 0  # bumped by every group (or grid) change: areas are redone
        self._parts: defaultdict[Unit, _Part] = defaultdict(_Part)
        self._personal: dict[int, list[Any]] = {}  # player id -> private change records
        self._encoded: dict[Any, bytes] = {}  # this update's encoded enter/leave parts
        self._delta_bytes: dict[Unit, bytes] = {}  # this update's encoded unit changes
        self._composed: dict[Any, tuple[bytes, int, bytes]] = {}
        self._all_parts: dict[int, bytes] | None = None  # all_delta_parts, once per update
        self._own: set[int] = set()  # viewers with a part of their own this update
        self._new_viewers: list[int] = []
        self._interned: dict[frozenset[Any], frozenset[Any]] = {}

    # -- game side (through World) ------------------------------------------------

    def forget(self, eid: int) -> None:
        """An entity left the world: its id may be reused, its view settings may not."""
        self.kind.pop(eid, None)
        self.revealed.discard(eid)
        self._kind_changed.discard(eid)

    def show(self, entity: Entity, kind: Any) -> None:
        if not entity.id:
            raise ValueError(f"spawn {entity!r} before choosing who sees it")
        if kind is None:
            if self.kind.pop(entity.id, None) is not None:
                self._kind_changed.add(entity.id)
        elif self.kind.get(entity.id) != kind:
            self.kind[entity.id] = kind
            self._kind_changed.add(entity.id)

    # -- engine side ----------------------------------------------------------------

    def collect(self, viewers: Iterable[int]) -> tuple[list[Any], list[Any], list[int]]:
        """Diff the world by unit; returns the public unit's ``(created, changed, removed)``
        and keeps the other parts for :meth:`delta_parts` until the next call."""
        world = self.world
        self._parts = parts = defaultdict(_Part)
        self._personal = personal = {}
        self._encoded = {}
        self._delta_bytes = {}
        self._composed = {}
        self._all_parts = None
        self.encodes = 0
        public = parts[None] = _Part()
        sent, unit_of, members, kinds = world._sent, self.unit_of, self.members, self.kind
        type_index, revealed, overlay = world._type_index, self.revealed, self.overlay
        kind_changed, self._kind_changed = self._kind_changed, set()
        cell = self.cell

        for eid in world._removed:  # removed since the last update: from their unit
            unit = unit_of.pop(eid, None)
            part = parts[unit]
            part.removed.append(eid)
            if unit is not None:
                self._drop(unit, eid)
            overlay.pop(eid, None)

        entities = world.entities
        secrets: list[tuple[int, Entity, tuple[Any, ...], Unit, bool]] = []
        again = [(eid, e) for eid in kind_changed  # frozen ones shown differently
                 if (e := entities.get(eid)) is not None and type(e)._frozen]
        for eid, entity in chain(world._live.items(), world.take_fresh(), again):
            cls = type(entity)
            current = cls._getter(entity)
            private = cls._private
            if private and eid not in revealed:
                full = current
                current = tuple(None if i in private else v for i, v in enumerate(full))
            previous = sent.get(eid)
            if previous is not None and current == previous and not private \
                    and eid not in kind_changed:
                continue  # untouched: same fields, same unit (nothing else decides it)
            kind = kinds.get(eid)
            if kind is None:
                unit = None
            elif kind == "nearby":
                cx = entity.x // cell  # type: ignore[attr-defined]
                cy = entity.y // cell  # type: ignore[attr-defined]
                unit = unit_of.get(eid)
                if unit is None or unit[0] != "c" or unit[1] != cx or unit[2] != cy:
                    unit = ("c", cx, cy)  # a new cell: a new key (else the same object)
            elif kind == "owner":
                unit = ("p", cls._owner_getter(entity))
            else:
                unit = kind
            old_unit = unit_of.get(eid)
            touched = False  # did this update send a record that hides Private fields?
            if previous is None or unit != old_unit:
                if previous is not None:  # moved: gone from the old unit, new in this one
                    part = parts[old_unit]
                    part.removed.append(eid)
                    if old_unit is not None:
                        self._drop(old_unit, eid)
                part = parts[unit]
                part.created.append(eid)
                part.created.append(type_index[cls])
                part.created.extend(current)
                part.entered.append(eid)
                if unit is None:
                    unit_of.pop(eid, None)
                else:
                    unit_of[eid] = unit
                    if cls._frozen:
                        self.still.setdefault(unit, {})[eid] = None
                        self._still.pop(unit, None)
                    else:
                        members.setdefault(unit, {})[eid] = None
                touched = True
                sent[eid] = current
            elif current != previous:
                mask = append_change(parts[unit].changed, eid, cls, current, previous)
                touched = bool(mask & cls._private_mask)
                sent[eid] = current
            if private:  # once every viewer's area is known (below)
                secrets.append((eid, entity, full if eid not in revealed else current,
                                unit, touched))
        self._subscribe(viewers)
        for eid, entity, values, unit, touched in secrets:
            self._private(eid, entity, values, unit, touched, personal)

        for eid in world._removed:
            sent.pop(eid, None)
        if 0 in self.subs:  # map spectators: every cell holding an entity now
            cells = frozenset(u for u, held in chain(members.items(), self.still.items())
                              if held and u is not None and u[0] == "c")
            if cells != self.subs[0]:
                self.subs[0] = cells
        # Who has a part of their own this update: private values, their own unit's
        # changes, or (new viewers) their own unit whole.
        own = self._own = set(personal)
        own.update(u[1] for u in parts if u is not None and u[0] == "p")
        own.update(self._new_viewers)
        own.discard(0)  # spectators own nothing: ("p", 0) is what nobody sees
        removed = public.removed
        world._free_ids.extend(world._removed)  # reusable from the next update on
        world._removed = []
        del parts[None]
        return public.created, public.changed, removed

    def _drop(self, unit: Unit, eid: int) -> None:
        """Entity ``eid`` is no longer in ``unit``."""
        for held in (self.members, self.still):
            ids = held.get(unit)
            if ids is not None and eid in ids:
                del ids[eid]
                if not ids:  # (units come and go: players' own, cells)
                    del held[unit]
                if held is self.still:
                    self._still.pop(unit, None)
                return

    def _held(self, unit: Unit) -> Iterable[int]:
        """The ids of the unit's entities, live and frozen."""
        return chain(self.members.get(unit, ()), self.still.get(unit, ()))

    def _private(self, eid: int, entity: Entity, full: tuple[Any, ...], unit: Unit,
                 touched: bool, personal: dict[int, list[Any]]) -> None:
        """Send an owned entity's Private fields to its owner when they need them."""
        cls = type(entity)
        owner = cls._owner_getter(entity)
        values = tuple(full[i] for i in cls._private)
        holder, had = self.overlay.get(eid, (0, ()))
        target = owner if eid not in self.revealed and self._sees(owner, unit) else 0
        if target:
            if touched or target != holder or values != had or self._new_to(target, unit):
                personal.setdefault(target, []).extend((eid, cls._private_mask, *values))
            self.overlay[eid] = (target, values)
        else:
            self.overlay.pop(eid, None)
        if holder and holder != target and eid not in self.revealed \
                and self._sees(holder, unit):  # lost it but still sees it: hide the fields
            personal.setdefault(holder, []).extend(
                (eid, cls._private_mask, *(None for _ in values)))

    def _sees(self, pid: int, unit: Unit) -> bool:
        """Does viewer ``pid`` see the entities of ``unit`` in this update?"""
        subs = self.subs.get(pid)
        if subs is None or not pid:
            return False
        return unit is None or unit in subs or unit == ("p", pid)

    def _new_to(self, pid: int, unit: Unit) -> bool:
        """Has viewer ``pid`` just started to see ``unit`` (so it arrives as created)?"""
        before = self.prev_subs.get(pid)
        if before is None:
            return True
        return unit is not None and unit not in before and unit != ("p", pid)

    def _subscribe(self, viewers: Iterable[int]) -> None:
        """Work out every viewer's units for this update (kept from the last one when
        nothing they depend on moved: the cell they follow, the groups)."""
        old = self.subs
        self.prev_subs = old
        subs: dict[int, frozenset[Any]] = {}
        keys = self._sub_keys
        cell, reach, focus, groups = self.cell, self.reach, self.focus, self.groups
        unit_of = self.unit_of
        version = self.groups_version
        new = self._new_viewers = []
        interned = self._interned
        if len(interned) > 4096:  # views come and go: forget the old ones now and then
            interned.clear()
        for pid in viewers:
            if not pid:  # spectators who may see the map: their cells once entities moved
                subs[0] = old.get(0, _EMPTY)
                continue
            followed = focus.get(pid)
            if followed is None or not followed.id or not cell:
                where: Unit = None
            else:  # the cell it is in: its unit when shown nearby (the same object while
                where = unit_of.get(followed.id)  # it stays in that cell), else its position
                if where is None or where[0] != "c":
                    where = ("c", followed.x // cell, followed.y // cell)  # type: ignore
            key = keys.get(pid)
            if key is not None and key[0] == where and key[1] == version and pid in old:
                subs[pid] = old[pid]
                continue
            if pid not in old:
                new.append(pid)
            keys[pid] = (where, version)
            units: set[Any] = {("g", g) for g in groups.get(pid, ())}  # own unit: implied
            if where is not None:
                _, cx, cy = where
                units.update(("c", x, y) for x in range(cx - reach, cx + reach + 1)
                             for y in range(cy - reach, cy + reach + 1))
            units_now = frozenset(units)
            # One object per distinct view: players who see alike then share their parts
            # by identity (a dict hit without comparing the sets).
            units_now = interned.setdefault(units_now, units_now)
            subs[pid] = units_now
        for pid in [p for p in keys if p not in subs]:  # players gone: forget them
            del keys[pid]
            self.groups.pop(pid, None)
            self.focus.pop(pid, None)
        self.subs = subs

    # -- per player -------------------------------------------------------------------

    def delta_parts(self, pid: int) -> bytes:
        """The parts player ``pid`` gets with this update's delta, as one msgpack array
        (the update's last element), or ``b""`` when they see only the public view.
        Players whose views are equal (same cells, same groups) share the same bytes."""
        now = self.subs.get(pid)
        return b"" if now is None else self._suffix(pid, now)

    def all_delta_parts(self) -> dict[int, bytes]:
        """:meth:`delta_parts` of every viewer who gets any (the host's send loop reads
        them all at once; a quiet room also asks first whether there are any). Worked out
        once per update."""
        if self._all_parts is None:
            suffix = self._suffix
            self._all_parts = {pid: data for pid, now in self.subs.items()
                               if (data := suffix(pid, now))}
        return self._all_parts

    def _suffix(self, pid: int, now: frozenset[Any]) -> bytes:
        before = self.prev_subs.get(pid)
        key = now if now is before else (before, now)
        shared = self._composed.get(key)
        if shared is None:
            shared = self._composed[key] = self._compose(now, before or _EMPTY)
        if pid in self._own:
            own = self._personal_part(pid, before is not None)
            if own:
                return array_header(shared[1] + 1) + shared[2] + own
        return shared[0]

    def _compose(self, now: frozenset[Any], before: frozenset[Any]
                 ) -> tuple[bytes, int, bytes]:
        """``(suffix, count, parts)`` for a view that was ``before`` and is ``now``."""
        if now is before:  # the common case: the same units as last time, their changes
            encoded = self._delta_bytes
            pieces = []
            for unit in now:
                piece = encoded.get(unit)
                if piece is None:
                    piece = self._part(unit)
                if piece:
                    pieces.append(piece)
        else:
            pieces = [p for p in (self._part(u) if u in before else self._enter(u)
                                  for u in now) if p]
            pieces.extend(p for p in (self._leave(u) for u in before - now) if p)
        return _listed(pieces), len(pieces), b"".join(pieces)

    def snapshot_parts(self, pid: int) -> bytes:
        """The parts player ``pid`` gets with a snapshot (everything they see beyond the
        public unit, as of the last update), as :meth:`delta_parts` gives them."""
        now = self.subs.get(pid)
        if now is None:
            return b""
        pieces = [p for p in (self._enter(u) for u in now) if p]
        if not pid:  # spectators own nothing (("p", 0) is what nobody sees)
            return _listed(pieces)
        records = self._records(self._held(("p", pid)))
        secrets: list[Any] = []
        for eid, (holder, values) in self.overlay.items():
            if holder == pid:
                secrets.extend((eid, type(self.world.entities[eid])._private_mask, *values))
        if records or secrets:
            pieces.append(self._encode([records, secrets, []]))
        return _listed(pieces)

    def public_snapshot(self) -> list[Any]:
        """Every public entity as last collected, in wire format."""
        return self._records(k for k in self.world._sent if k not in self.unit_of)

    # -- encoding, once per update per key ---------------------------------------------

    def _part(self, unit: Unit) -> bytes:
        """The unit's changes in this update, encoded (b"": none)."""
        data = self._delta_bytes.get(unit)
        if data is None:
            part = self._parts.get(unit)
            data = b"" if part is None else self._encode(
                [part.created, part.changed, part.removed])
            self._delta_bytes[unit] = data
        return data

    def _enter(self, unit: Unit) -> bytes:
        """Every entity of the unit, as created: ``[records, [], []]``."""
        key = ("e", unit)
        data = self._encoded.get(key)
        if data is None:
            records = self._records(self.members.get(unit, ()))
            kept = self._still.get(unit)
            if kept is None and self.still.get(unit):
                kept = self._pack_still(unit)
            if kept is None or not kept[0]:
                data = self._encode([records, [], []]) if records else b""
            else:  # the live records, then the frozen ones' bytes as kept
                self.encodes += 1
                count, packed = kept
                data = b"".join((b"\x93", array_header(len(records) + count),
                                 _elements(records), packed, b"\x90\x90"))
            self._encoded[key] = data
        return data

    def _pack_still(self, unit: Unit) -> tuple[int, bytes]:
        """The records of the unit's frozen entities (it has some), packed without
        their array's header: kept until one of them comes or goes (``_drop``, and
        ``collect`` for one that comes)."""
        self.encodes += 1
        records = self._records(self.still[unit])
        kept = self._still[unit] = len(records), _elements(records)
        return kept

    def _leave(self, unit: Unit) -> bytes:
        key = ("l", unit)
        data = self._encoded.get(key)
        if data is None:
            held = dict(self.members.get(unit, ()))  # members now ...
            still = self.still.get(unit)
            if still:
                held.update(still)
            part = self._parts.get(unit)
            if part is not None:  # ... back to what they were at the last update
                for eid in part.entered:
                    held.pop(eid, None)
                for eid in part.removed:
                    held[eid] = None
            data = self._encoded[key] = self._encode([[], [], list(held)]) if held else b""
        return data

    def _personal_part(self, pid: int, had_own: bool) -> bytes:
        mine = ("p", pid)
        secrets = self._personal.get(pid)
        if had_own:
            part = self._parts.get(mine)
            if part is None and not secrets:
                return b""
            created, changed, removed = ((part.created, part.changed, part.removed)
                                         if part is not None else ([], [], []))
        else:  # their own unit is new to them (just joined): all of it
            created, changed, removed = self._records(self._held(mine)), [], []
            if not created and not secrets:
                return b""
        if secrets:
            changed = [*changed, *secrets]
        if not (created or changed or removed):
            return b""
        return self._encode([created, changed, removed])

    def _encode(self, value: Any) -> bytes:
        self.encodes += 1
        return _packb(value)

    def _records(self, ids: Iterable[int]) -> list[Any]:
        world = self.world
        sent, entities, type_index = world._sent, world.entities, world._type_index
        out: list[Any] = []
        for eid in ids:
            values = sent.get(eid)
            if values is None:
                continue
            out.append(eid)
            out.append(type_index[type(entities[eid])])
            out.extend(values)
        return out


def _elements(values: list[Any]) -> bytes:
    """``values`` packed as msgpack, without their array's header (to join under another)."""
    return _packb(values)[len(array_header(len(values))):]


def _listed(pieces: list[bytes]) -> bytes:
    """Encoded parts as the msgpack array that ends an update; b"" for none."""
    return array_header(len(pieces)) + b"".join(pieces) if pieces else b""
