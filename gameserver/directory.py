"""The room directory: where rooms are listed and seats are counted.

Matchmaking reads and reserves through this small interface only, so a
directory shared across processes and machines can replace the in-memory
one without touching rooms. Capacity lives here: a room's ``seats`` counts
connected players plus unexpired reservations, and :meth:`reserve` checks and
takes a seat in one atomic step, which is what keeps concurrent joins from
over-filling a room.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
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

    @property
    def joinable(self) -> bool:
        return not self.locked and self.seats < self.max_players

    def public_view(self) -> dict[str, Any]:
        return {"room_id": self.room_id, "game": self.game, "players": self.players,
                "max_players": self.max_players, "locked": self.locked,
                "metadata": self.metadata}


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
    async def update(self, room_id: str, *, locked: bool, metadata: dict[str, Any]) -> None: ...
    async def rooms(self, game: str | None = None) -> list[RoomListing]:
        """Public rooms, oldest first."""
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


class MemoryDirectory:
    """The embedded default: one process, in memory, no services."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._rooms: dict[str, RoomListing] = {}
        self._reservations: dict[str, Reservation] = {}
        self._clock = clock

    async def pending(self) -> int:
        return len(self._reservations)

    async def add(self, listing: RoomListing) -> None:
        self._rooms[listing.room_id] = listing

    async def remove(self, room_id: str) -> None:
        self._rooms.pop(room_id, None)
        for token in [t for t, r in self._reservations.items() if r.room_id == room_id]:
            del self._reservations[token]

    async def get(self, room_id: str) -> RoomListing | None:
        listing = self._rooms.get(room_id)
        return None if listing is None else RoomListing(**asdict(listing))

    async def update(self, room_id: str, *, locked: bool, metadata: dict[str, Any]) -> None:
        listing = self._rooms.get(room_id)
        if listing is not None:
            listing.locked = locked
            listing.metadata = dict(metadata)

    async def rooms(self, game: str | None = None) -> list[RoomListing]:
        return [RoomListing(**asdict(r)) for r in self._rooms.values()
                if not r.private and (game is None or r.game == game)]

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
            return None
        listing.players += 1
        return reservation

    async def release(self, room_id: str, seat: str = "") -> None:
        listing = self._rooms.get(room_id)
        if listing is not None:
            listing.players -= 1
            listing.seats -= 1

    async def expire(self) -> list[str]:
        now = self._clock()
        expired = [r for r in self._reservations.values() if r.expires_at < now]
        for r in expired:
            del self._reservations[r.token]
            listing = self._rooms.get(r.room_id)
            if listing is not None:
                listing.seats -= 1
        return sorted({r.room_id for r in expired})
