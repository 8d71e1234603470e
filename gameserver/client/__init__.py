"""A Python client for gameserver: bots, AI players, headless tests and tools.

::

    from gameserver.client import Client

    async with Client("http://127.0.0.1:8000", name="bot") as client:
        room = await client.join_or_create("arena")
        await room.next_update()
        seq = await room.send_input([100, 0])
        await room.wait_for(lambda: room.ack >= seq)
        watcher = await client.spectate(room.room_id)  # the same room, seatless
        await room.leave()

Built on aiohttp's client and :mod:`gameserver.core` (the codec and the
reference replica); it loads nothing of the server. docs/PROTOCOL.md is the
protocol it speaks.
"""

from __future__ import annotations

from .client import Client
from .errors import (
    ClientError,
    ConnectError,
    MatchmakeError,
    RoomClosed,
    ServerError,
    SpectatorError,
)
from .replay import Replay, TimelineEvent, open_recording
from .room import FINAL_CLOSE_CODES, Event, Message, Room, should_reconnect

__all__ = ["FINAL_CLOSE_CODES", "Client", "ClientError", "ConnectError", "Event",
           "MatchmakeError", "Message", "Replay", "Room", "RoomClosed", "ServerError",
           "SpectatorError", "TimelineEvent", "open_recording", "should_reconnect"]
