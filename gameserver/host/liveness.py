"""Liveness: one sweep a second over every socket, instead of a timer per message.

aiohttp's own heartbeat resets a timer on every received chunk, which for game
sockets (an input per tick per player) costs more than it is worth. Here the
receive path only stamps ``Connection.last_seen``; this sweep pings a socket
that has been silent for ``interval`` seconds and cuts one that then stays
silent for half as long again (the same rule as aiohttp's ``heartbeat``).
"""

from __future__ import annotations

import asyncio
import time

from gameserver.host.matchmaker import RoomManager

PING = b"\x89\x00"  # a final ping frame with no payload


def ping_or_cut(manager: RoomManager, interval: float, now: float) -> int:
    """Ping the quiet, cut the silent; returns how many were cut."""
    cut = 0
    for room_host in list(manager.room_hosts.values()):
        for conn in [*room_host.connections.values(), *room_host.spectators]:
            quiet = now - conn.last_seen
            if quiet < interval:
                continue
            t = conn.transport
            if t.is_closing():
                continue
            if conn.pinged_at is None or conn.pinged_at < conn.last_seen:
                conn.pinged_at = now
                t.write(PING)
            elif now - conn.pinged_at > interval / 2:
                t.abort()  # its socket handler sees the loss and drops the player
                cut += 1
    return cut


async def keep_alive(manager: RoomManager, interval: float) -> None:
    every = min(1.0, interval / 4)
    while True:
        await asyncio.sleep(every)
        ping_or_cut(manager, interval, time.monotonic())
