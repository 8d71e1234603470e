"""The game socket: reservation token -> seat -> receive loop -> room."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import WSMsgType, web

from . import protocol
from .keys import BACKGROUND, MANAGER, SETTINGS
from .room import JoinRefused

log = logging.getLogger("gameserver.ws")


async def game_socket(request: web.Request) -> web.WebSocketResponse:
    settings = request.app[SETTINGS]
    manager = request.app[MANAGER]
    # compress=False: per-message deflate would make every client's bytes different
    # and cost ~17x the CPU of a plain send (docs/BENCHMARKS.md).
    ws = web.WebSocketResponse(compress=False, max_msg_size=settings.max_message_size,
                               heartbeat=settings.heartbeat)
    await ws.prepare(request)
    token = request.query.get("token", "")
    found = await manager.redeem(token) if 0 < len(token) <= 64 else None
    if found is None:
        return await _refuse(ws, protocol.CLOSE_BAD_RESERVATION, "bad_reservation",
                             "the seat reservation is unknown, used or expired")
    reservation, runtime = found
    transport = request.transport
    if transport is None or transport.is_closing():
        await manager.seat_freed(runtime)
        return ws
    background = request.app[BACKGROUND]

    def close(code: int, reason: str) -> None:
        task = asyncio.get_running_loop().create_task(
            ws.close(code=code, message=reason.encode()[:120]))
        background.add(task)
        task.add_done_callback(background.discard)

    try:
        conn = runtime.connect(transport, reservation.name, reservation.options, close)
    except JoinRefused as exc:
        await manager.seat_freed(runtime)
        return await _refuse(ws, protocol.CLOSE_JOIN_REFUSED, "join_refused", str(exc))
    except Exception as exc:
        await manager.seat_freed(runtime)
        runtime._crash_from_hook(exc)
        return await _refuse(ws, protocol.CLOSE_ROOM_CRASHED, "room_crashed", "room crashed")
    log.debug("player %s joined room %s", conn.player.id, runtime.room_id)
    try:
        async for msg in ws:
            if msg.type is WSMsgType.BINARY:
                runtime.receive(conn, msg.data)
            elif msg.type is WSMsgType.TEXT:
                conn.send_now(protocol.encode_error(
                    "text_frame", "send binary msgpack frames, not text"))
    finally:
        runtime.disconnect(conn, consented=ws.close_code == protocol.CLOSE_NORMAL)
        await manager.seat_freed(runtime)
        log.debug("player %s left room %s (close code %s)", conn.player.id,
                  runtime.room_id, ws.close_code)
    return ws


async def _refuse(ws: web.WebSocketResponse, close_code: int, code: str, message: str
                  ) -> web.WebSocketResponse:
    await ws.send_bytes(protocol.encode_error(code, message))
    await ws.close(code=close_code, message=message.encode()[:120])
    return ws
