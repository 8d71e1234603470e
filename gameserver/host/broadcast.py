"""The send path: one update, framed once, written to every up-to-date socket.

Nothing here awaits. Each tick the room's update tail is encoded once; each
player's frame is a cached WebSocket header, the update's kind, that player's
input ack, and the shared tail, written straight to the transport (the same
whole-frame write aiohttp's own writer does, so frames never interleave).

A socket whose kernel and transport buffers hold more than ``high_water``
bytes is *behind*: it is skipped, not awaited, and marked out of sync. Once its
buffer drains below ``low_water`` it is brought current with a snapshot,
after which it gets deltas again. A socket behind for longer than
``stall_timeout`` is closed. Memory per slow client is therefore bounded by
``high_water`` plus one update.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import msgpack

from gameserver.core.codec import DELTA_HEADER, SNAPSHOT_HEADER
from gameserver.core.engine import Seat

_OP_BINARY = 0x82  # FIN + binary opcode
_pack_len2 = struct.Struct("!BBH").pack
_pack_len8 = struct.Struct("!BBQ").pack
_packb = msgpack.Packer(autoreset=True).pack
# The ack is the one per-player field of an update; small ones are cached.
_ACKS = [_packb(i) for i in range(4096)]


def frame_header(length: int) -> bytes:
    """An unmasked, final, binary WebSocket frame header for a payload of ``length`` bytes."""
    if length < 126:
        return bytes((_OP_BINARY, length))
    if length < 65536:
        return _pack_len2(_OP_BINARY, 126, length)
    return _pack_len8(_OP_BINARY, 127, length)


def frame(payload: bytes) -> bytes:
    return frame_header(len(payload)) + payload


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...
    def get_write_buffer_size(self) -> int: ...
    def is_closing(self) -> bool: ...
    def abort(self) -> None: ...


class Connection:
    """One player's socket as the send path sees it."""

    __slots__ = ("behind_since", "close", "detached", "last_seen", "leaving", "pinged_at",
                 "player", "seat", "synced", "transport")

    def __init__(self, transport: Transport, seat: Seat,
                 close: Callable[[int, str], None]) -> None:
        self.transport = transport
        self.seat = seat  # the engine's seat this socket plays
        self.player = seat.player
        self.close = close  # schedules a WebSocket close with a code and reason
        self.synced = False  # has this socket got a baseline the next delta applies to?
        self.behind_since: float | None = None
        self.leaving = False  # the player asked to leave, or was kicked: no reconnection
        self.detached = False  # no longer the player's socket: ignore what it still sends
        self.last_seen = time.monotonic()  # when the client last sent anything (heartbeat.py)
        self.pinged_at: float | None = None

    def send_now(self, payload: bytes) -> None:
        """Send one message outside the tick (errors, pongs, direct room messages).

        Dropped when the socket is behind: such messages are best effort.
        """
        t = self.transport
        if not t.is_closing() and self.behind_since is None:
            t.write(frame(payload))


class SendStats:
    __slots__ = ("bytes_sent", "closed_stalled", "deltas", "skipped", "snapshots")

    def __init__(self) -> None:
        self.deltas = 0
        self.snapshots = 0
        self.skipped = 0
        self.bytes_sent = 0
        self.closed_stalled = 0


class Broadcaster:
    """Writes each update to a room's connections under the slow-client policy."""

    def __init__(self, high_water: int = 64 * 1024, low_water: int = 16 * 1024,
                 stall_timeout: float = 10.0) -> None:
        self.high_water = high_water
        self.low_water = low_water
        self.stall_timeout = stall_timeout
        self.stats = SendStats()

    def send(self, connections: Iterable[Connection], delta_tail: bytes,
             snapshot_tail: Callable[[], bytes], now: float) -> None:
        stats = self.stats
        high, low = self.high_water, self.low_water
        delta_prefix: dict[int, bytes] = {}  # by length of the ack: at most 5 variants
        snapshot: bytes | None = None
        snapshot_prefix: dict[int, bytes] = {}
        sent = deltas = 0
        for conn in connections:
            t = conn.transport
            if t.is_closing():
                continue
            backlog = t.get_write_buffer_size()
            if conn.behind_since is not None:
                if backlog > low:
                    if now - conn.behind_since > self.stall_timeout:
                        # A close handshake needs the peer to read: just cut the connection.
                        # Its seat waits for a reconnection like any other drop.
                        stats.closed_stalled += 1
                        t.abort()
                    stats.skipped += 1
                    continue
                conn.behind_since = None
            elif backlog > high:
                conn.behind_since = now
                conn.synced = False
                stats.skipped += 1
                continue
            ack = conn.player.ack
            ack = _ACKS[ack] if ack < 4096 else _packb(ack)
            n = len(ack)
            if conn.synced:
                prefix = delta_prefix.get(n)
                if prefix is None:
                    prefix = delta_prefix[n] = (
                        frame_header(2 + n + len(delta_tail)) + DELTA_HEADER)
                data = b"".join((prefix, ack, delta_tail))
                deltas += 1
            else:
                if snapshot is None:
                    snapshot = snapshot_tail()
                prefix = snapshot_prefix.get(n)
                if prefix is None:
                    prefix = snapshot_prefix[n] = (
                        frame_header(2 + n + len(snapshot)) + SNAPSHOT_HEADER)
                data = b"".join((prefix, ack, snapshot))
                conn.synced = True
                stats.snapshots += 1
            t.write(data)
            sent += len(data)
        stats.deltas += deltas
        stats.bytes_sent += sent


def describe(stats: SendStats) -> dict[str, Any]:
    return {s: getattr(stats, s) for s in SendStats.__slots__}
