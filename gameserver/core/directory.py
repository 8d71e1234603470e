"""The room directory: where rooms are listed and seats are counted.

Matchmaking reads and reserves through this small interface only, so a
directory shared across processes and machines can replace the in-memory
one without touching rooms. Capacity lives here: a room's ``seats`` counts
connected players plus unexpired reservations, and :meth:`reserve` checks and
takes a seat in one atomic step, which is what keeps concurrent joins from
over-filling a room.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol


@dataclass
class RoomListing:
    room_id: str
    game: str
    max_players: int
    private: bool = False
    locked: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    players: int = 0  # connected players
    seats: int = 0  # connected players + pending reservations
    node: str = ""  # the node (process) that hosts the room
    created_at: float = field(default_factory=time.time)
    spectators: int = 0  # connected spectators (they hold no seat)

    @property
    def joinable(self) -> bool:
        return not self.locked and self.seats < self.max_players

    def public_view(self) -> dict[str, Any]:
        # Reserved seats are taken too: without them a room would look joinable
        # until matchmaking answered room_full.
        return {"room_id": self.room_id, "game": self.game, "players": self.players,
                "reserved": max(0, self.seats - self.players), "max_players": self.max_players,
                "locked": self.locked, "joinable": self.joinable, "metadata": self.metadata,
                "spectators": self.spectators}


@dataclass
class Reservation:
    token: str
    room_id: str
    name: str
    options: dict[str, Any]
    expires_at: float  # time.monotonic() deadline
    auth: dict[str, Any] | None = None  # claims of the player's signed join token
    node: str = ""  # the node hosting the room, when matchmaking knows it (cluster.py)


class Directory(Protocol):
    async def add(self, listing: RoomListing) -> None: ...
    async def remove(self, room_id: str) -> None: ...
    async def get(self, room_id: str) -> RoomListing | None: ...
    async def update(self, room_id: str, *, locked: bool, metadata: dict[str, Any],
                     spectators: int = 0) -> None: ...
    async def rooms(self, game: str | None = None) -> list[RoomListing]:
        """Public rooms, oldest first."""
        ...
    async def first_joinable(self, game: str, skip: Collection[str] = ()) -> RoomListing | None:
        """The oldest public room of ``game`` with a free seat whose id is not in ``skip``."""
        ...
    async def reserve(self, room_id: str, reservation: Reservation) -> str | None:
        """Take a seat atomically. Returns None on success, else the refusal code
        (``no_such_room``, ``room_full`` or ``room_locked``)."""
        ...
    async def redeem(self, token: str) -> Reservation | None:
        """Turn a reservation into a connected player (single use; None if unknown or expired)."""
        ...
    async def release(self, room_id: str, seat: str = "") -> None:
        """A connected player left: free their seat (``seat``: the token it was taken
        with; a shared directory frees each seat once, however often it is asked)."""
        ...
    async def expire(self) -> list[str]:
        """Drop expired reservations, freeing their seats; returns the affected room ids."""
        ...
    async def pending(self) -> int:
        """Reservations not yet redeemed or expired."""
        ...
    async def add_pass(self, token: str, room_id: str, ttl: float) -> None:
        """A spectator's pass to ``room_id``, redeemable once within ``ttl`` seconds at the
        node hosting the room. It holds no seat."""
        ...
    async def take_pass(self, token: str) -> str | None:
        """The room a spectator's pass is for (single use; None if unknown or expired)."""
        ...


class MemoryDirectory:
    """The embedded default: one process, in memory, no services."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._rooms: dict[str, RoomListing] = {}
        self._reservations: dict[str, Reservation] = {}
        self._passes: dict[str, tuple[str, float]] = {}  # spectator token -> (room, expiry)
        self._clock = clock
        # Joinable public rooms per game, oldest first, so that matchmaking does not scan
        # every room: a heap of (creation number, room id), cleaned lazily (a room in it
        # may have filled up or gone since), and the set of room ids it holds.
        self._count = itertools.count()
        self._number: dict[str, int] = {}
        self._open: dict[str, list[tuple[int, str]]] = {}
        self._queued: set[str] = set()

    def _touch(self, listing: RoomListing) -> None:
        """A listing may have become joinable: queue it for matchmaking."""
        room_id = listing.room_id
        if listing.joinable and not listing.private and room_id not in self._queued:
            heap = self._open.setdefault(listing.game, [])
            heapq.heappush(heap, (self._number[room_id], room_id))
            self._queued.add(room_id)

    async def pending(self) -> int:
        return len(self._reservations) + len(self._passes)

    async def add_pass(self, token: str, room_id: str, ttl: float) -> None:
        self._passes[token] = (room_id, self._clock() + ttl)

    async def take_pass(self, token: str) -> str | None:
        room_id, expires_at = self._passes.pop(token, ("", 0.0))
        return room_id if room_id in self._rooms and expires_at >= self._clock() else None

    async def add(self, listing: RoomListing) -> None:
        self._rooms[listing.room_id] = listing
        self._number[listing.room_id] = next(self._count)
        self._touch(listing)

    async def remove(self, room_id: str) -> None:
        listing = self._rooms.pop(room_id, None)
        self._number.pop(room_id, None)
        heap = self._open.get(listing.game, []) if listing is not None else []
        if len(heap) > 2 * len(self._rooms) + 64:  # mostly gone rooms: compact it
            heap[:] = [(n, r) for n, r in heap if r in self._rooms]
            heapq.heapify(heap)
            self._queued.intersection_update(self._rooms)
        for token in [t for t, r in self._reservations.items() if r.room_id == room_id]:
            del self._reservations[token]

    async def get(self, room_id: str) -> RoomListing | None:
        listing = self._rooms.get(room_id)
        return None if listing is None else RoomListing(**asdict(listing))

    async def update(self, room_id: str, *, locked: bool, metadata: dict[str, Any],
                     spectators: int = 0) -> None:
        listing = self._rooms.get(room_id)
        if listing is not None:
            listing.locked = locked
            listing.metadata = dict(metadata)
            listing.spectators = spectators
            self._touch(listing)

    async def rooms(self, game: str | None = None) -> list[RoomListing]:
        # Copies, so that callers cannot change ours; shallow ones, as update() stores them.
        return [replace(r, metadata=dict(r.metadata)) for r in self._rooms.values()
                if not r.private and (game is None or r.game == game)]

    async def first_joinable(self, game: str, skip: Collection[str] = ()) -> RoomListing | None:
        heap = self._open.get(game)
        while heap:
            number, room_id = heap[0]
            listing = self._rooms.get(room_id)
            if listing is not None and listing.joinable and self._number[room_id] == number:
                if room_id not in skip:
                    return RoomListing(**asdict(listing))
                # Rare (reserve here never loses a race): look past it, without the index.
                found = next((r for r in await self.rooms(game)
                              if r.joinable and r.room_id not in skip), None)
                return found
            heapq.heappop(heap)
            self._queued.discard(room_id)
        return None

    async def reserve(self, room_id: str, reservation: Reservation) -> str | None:
        listing = self._rooms.get(room_id)
        if listing is None:
            return "no_such_room"
        if listing.locked:
            return "room_locked"
        if listing.seats >= listing.max_players:
            return "room_full"
        listing.seats += 1
        self._reservations[reservation.token] = reservation
        return None

    async def redeem(self, token: str) -> Reservation | None:
        reservation = self._reservations.pop(token, None)
        if reservation is None:
            return None
        listing = self._rooms.get(reservation.room_id)
        if listing is None:
            return None
        if reservation.expires_at < self._clock():
            listing.seats -= 1
            self._touch(listing)
            return None
        listing.players += 1
        return reservation

    async def release(self, room_id: str, seat: str = "") -> None:
        listing = self._rooms.get(room_id)
        if listing is not None:
            listing.players -= 1
            listing.seats -= 1
            self._touch(listing)

    async def expire(self) -> list[str]:
        now = self._clock()
        for token in [t for t, (_, at) in self._passes.items() if at < now]:
            del self._passes[token]
        expired = [r for r in self._reservations.values() if r.expires_at < now]
        for r in expired:
            del self._reservations[r.token]
            listing = self._rooms.get(r.room_id)
            if listing is not None:
                listing.seats -= 1
                self._touch(listing)
        return sorted({r.room_id for r in expired})
