"""``GET /rooms``: the public room listing, encoded once per period, served in pages.

Lobbies poll the listing every few seconds and anyone may ask for it, so it is
rebuilt at most every :data:`LISTING_TTL` seconds per game: each room's public
view is encoded to JSON once per rebuild, a page is those bytes joined, and the
default page (the one lobbies poll) is kept whole. Pages are in creation order
(oldest first) and the ``next`` cursor names the last room's place in that
order, so paging stays complete while rooms come and go: a room created
meanwhile appears on a later page, and one that closed is simply not there.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from bisect import bisect_right
from collections.abc import Callable, Mapping
from typing import Any

from gameserver.core.directory import Directory, RoomListing

LISTING_TTL = 0.5  # seconds a built listing is served before it is rebuilt
PAGE_SIZE = 100  # rooms per page by default
MAX_PAGE_SIZE = 500

_Key = tuple[float, str]  # (created_at, room_id): a room's place in the listing


def _key(listing: RoomListing) -> _Key:
    return (listing.created_at, listing.room_id)


def cursor(key: _Key) -> str:
    return f"{key[0]!r}~{key[1]}"


def parse_page(query: Mapping[str, str]) -> tuple[int, _Key | None]:
    """``limit`` and ``after`` from a query string; ValueError if malformed."""
    raw = query.get("limit", "")
    if raw and not (len(raw) <= 3 and raw.isascii() and raw.isdigit()):
        raise ValueError(f"'limit' must be 1-{MAX_PAGE_SIZE}")
    limit = int(raw) if raw else PAGE_SIZE
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"'limit' must be 1-{MAX_PAGE_SIZE}")
    after = query.get("after", "")
    if not after:
        return limit, None
    stamp, sep, room_id = after.partition("~")
    created_at = float(stamp) if sep and len(after) <= 100 and room_id else math.nan
    if not math.isfinite(created_at):
        raise ValueError("'after' must be the 'next' of a previous page")
    return limit, (created_at, room_id)


class Pages:
    """One game's listing (or every game's), as JSON pieces ready to be joined."""

    __slots__ = ("built_at", "first", "items", "keys")

    def __init__(self, rooms: list[RoomListing], built_at: float) -> None:
        rooms = sorted(rooms, key=_key)
        self.built_at = built_at
        self.keys = [_key(r) for r in rooms]
        self.items = [json.dumps(r.public_view(), separators=(",", ":")).encode()
                      for r in rooms]
        self.first = self.page(None, PAGE_SIZE)

    def page(self, after: _Key | None, limit: int) -> bytes:
        start = 0 if after is None else bisect_right(self.keys, after)
        end = start + limit
        more = cursor(self.keys[end - 1]) if end < len(self.items) else None
        return (b'{"rooms":[' + b",".join(self.items[start:end]) + b'],"next":'
                + json.dumps(more).encode() + b"}")


class ListingCache:
    """The built listing per game, for at most ``ttl`` seconds each."""

    def __init__(self, directory: Callable[[], Directory], ttl: float = LISTING_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._directory = directory  # a getter: a cluster node swaps its directory at start
        self.ttl = ttl
        self._clock = clock
        self._pages: dict[str | None, Pages] = {}  # keys: known game names and None
        self._locks: dict[str | None, asyncio.Lock] = {}

    async def pages(self, game: str | None) -> Pages:
        """The listing of ``game`` (a registered game, or None for all)."""
        pages = self._pages.get(game)
        if pages is not None and self._clock() - pages.built_at < self.ttl:
            return pages
        async with self._locks.setdefault(game, asyncio.Lock()):  # one rebuild at a time
            pages = self._pages.get(game)
            if pages is None or self._clock() - pages.built_at >= self.ttl:
                rooms = await self._directory().rooms(game)
                pages = self._pages[game] = Pages(rooms, self._clock())
        return pages


def empty_page() -> dict[str, Any]:
    return {"rooms": [], "next": None}
