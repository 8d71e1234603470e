"""The game socket: token -> seat -> receive loop -> room.

``/ws?token=T`` redeems a seat reservation from ``POST /matchmake``;
``/ws?reconnect=R`` puts a dropped player back in their seat with the
reconnection token from their last welcome. Before the upgrade the origin
and the per-address connection limit are checked; after it, every message
passes the connection's rate limit before the room sees it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from gameserver.core import codec
from gameserver.core.engine import RoomCrashed
from gameserver.core.room import JoinRefused
from gameserver.host.matchmaker import DirectoryUnavailable
from gameserver.host.room_host import Connection, Inbound, RoomHost, SpectatorsFull
from gameserver.web import aiohttp_seam
from gameserver.web.edge import error_response
from gameserver.web.keys import ADDRESSES, BACKGROUND, CLIENT_BUDGETS, MANAGER, SETTINGS
from gameserver.web.origin import origin_allowed, refuse_origin

log = logging.getLogger("gameserver.ws")

CLOSE_TIMEOUT = 3.0  # seconds a closing peer has to answer our close frame


async def game_socket(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    if not origin_allowed(request, settings.allowed_origins):
        return refuse_origin()
    addresses = request.app[ADDRESSES]
    peer = request.remote or ""
    if not addresses.acquire(peer):
        return error_response(
            429, "too_many_connections",
            f"at most {settings.max_connections_per_ip} connections per address")
    try:
        return await _serve(request)
    finally:
        addresses.release(peer)


async def _serve(request: web.Request) -> web.WebSocketResponse:
    settings = request.app[SETTINGS]
    manager = request.app[MANAGER]
    # compress=False: per-message deflate would make every client's bytes different
    # and cost many times the CPU of a plain send (see README, "How it works").
    # heartbeat and autoping are off: heartbeat.py checks every socket once a second
    # instead of resetting a timer per message. aiohttp refuses a message of
    # max_msg_size bytes or more (the seam's parser too): +1 accepts exactly the setting.
    ws = web.WebSocketResponse(compress=False, max_msg_size=settings.max_message_size + 1,
                               autoping=False, timeout=CLOSE_TIMEOUT)
    await ws.prepare(request)
    transport = request.transport
    if transport is None or transport.is_closing():
        return ws
    background = request.app[BACKGROUND]

    def close(code: int, reason: str) -> None:
        task = asyncio.get_running_loop().create_task(
            ws.close(code=code, message=reason.encode()[:120]))
        background.add(task)
        task.add_done_callback(background.discard)

    watch = request.query.get("watch", "")
    if watch:
        return await _watch(request, ws, watch, transport, close)
    reconnect = request.query.get("reconnect", "")
    if reconnect:
        resumed = manager.resume(reconnect) if len(reconnect) <= 64 else None
        if resumed is None:
            return await _refuse(ws, codec.CLOSE_BAD_RESERVATION, "reconnect_refused",
                                 "the reconnection token is unknown or used, or the seat "
                                 "was released")
        room_host, player = resumed
        try:
            conn = room_host.resume(player, transport, close)
        except RoomCrashed:  # on_rejoin raised and the room closed, as for on_join
            return await _refuse(ws, codec.CLOSE_ROOM_CRASHED, "room_crashed",
                                 "room crashed")
        log.info("player reconnected", extra={"room_id": room_host.room_id,
                                              "player_id": player.id})
    else:
        token = request.query.get("token", "")
        try:
            found = await manager.redeem(token) if 0 < len(token) <= 64 else None
        except DirectoryUnavailable:
            return await _refuse(ws, codec.CLOSE_TRY_AGAIN, "directory_unavailable",
                                 "the room directory is unreachable; retry shortly")
        if found is not None:  # no longer held against its requester
            request.app[CLIENT_BUDGETS].pending.redeemed(token)
        if found is None:
            return await _refuse(ws, codec.CLOSE_BAD_RESERVATION, "bad_reservation",
                                 "the seat reservation is unknown, used or expired")
        reservation, room_host = found
        try:
            conn = room_host.connect(transport, reservation.name, reservation.options, close,
                                   reservation.auth)
        except JoinRefused as exc:
            await manager.seat_freed(room_host, token=reservation.token)
            return await _refuse(ws, codec.CLOSE_JOIN_REFUSED, "join_refused", str(exc))
        except RoomCrashed:
            await manager.seat_freed(room_host, token=reservation.token)
            return await _refuse(ws, codec.CLOSE_ROOM_CRASHED, "room_crashed",
                                 "room crashed")
        manager.seat_taken(room_host, conn.player.id, reservation.token)
        log.debug("player joined", extra={"room_id": room_host.room_id,
                                          "player_id": conn.player.id})
    consented = False
    try:
        consented = await _read(ws, request, room_host, conn, close)
    finally:
        if room_host.disconnect(conn, consented=consented):
            await manager.seat_freed(room_host, conn.player.id)
        log.debug("socket closed (code %s)", ws.close_code,
                  extra={"room_id": room_host.room_id, "player_id": conn.player.id})
    return ws


async def _watch(request: web.Request, ws: web.WebSocketResponse, token: str,
                 transport: Any, close: Callable[[int, str], None]) -> web.WebSocketResponse:
    """``/ws?watch=T``: a spectator. The room's updates go out to it; it holds no seat and
    what it sends never reaches the game."""
    try:
        room_host = (await request.app[MANAGER].redeem_pass(token)
                     if 0 < len(token) <= 64 else None)
    except DirectoryUnavailable:
        return await _refuse(ws, codec.CLOSE_TRY_AGAIN, "directory_unavailable",
                             "the room directory is unreachable; retry shortly")
    if room_host is None:
        return await _refuse(ws, codec.CLOSE_BAD_RESERVATION, "bad_reservation",
                             "the spectator pass is unknown, used or expired")
    try:
        conn = room_host.watch(transport, close)
    except SpectatorsFull as exc:
        return await _refuse(ws, codec.CLOSE_JOIN_REFUSED, "spectators_full", str(exc))
    try:
        await _read(ws, request, room_host, conn, close)
    finally:
        room_host.unwatch(conn)
    return ws


async def _read(ws: web.WebSocketResponse, request: web.Request, room_host: RoomHost,
                conn: Connection, close: Callable[[int, str], None]) -> bool:
    """Feed what the socket sends to its room, under the socket's budgets, until it ends;
    True if the client closed it with 1000 (see :func:`control_loop`)."""
    settings = request.app[SETTINGS]
    inbound = Inbound(room_host, conn, settings.rate_limit_messages, settings.rate_limit_bytes,
                      close, control_per_s=settings.rate_limit_control)
    install(ws, request, inbound)
    return await control_loop(ws, inbound)


async def _refuse(ws: web.WebSocketResponse, close_code: int, code: str, message: str
                  ) -> web.WebSocketResponse:
    await ws.send_bytes(codec.encode_error(code, message))
    await ws.close(code=close_code, message=message.encode()[:120])
    return ws


def install(ws: web.WebSocketResponse, request: web.Request, inbound: Inbound) -> bool:
    """Route this prepared socket's binary messages to ``inbound`` directly (the seam's
    direct path); False: :func:`control_loop` reads them instead."""
    return aiohttp_seam.install_direct(ws, request, inbound)


async def control_loop(ws: web.WebSocketResponse, inbound: Inbound) -> bool:
    """Read what reaches the handler until the socket ends; True if the client closed
    it with 1000. (aiohttp reports a connection that simply vanished as 1000 or 1006
    depending on how it ended, so the client's own close frame is the only proof.)"""
    frame = inbound.frame
    while True:
        msg = await ws.receive()
        # Pings and pongs reach this loop only without the direct path.
        if msg.type is WSMsgType.PING:  # autoping is off: heartbeat.py does liveness
            if inbound.control_frame():
                await ws.pong(msg.data)
        elif msg.type is WSMsgType.PONG:
            inbound.control_frame()
        elif msg.type is WSMsgType.BINARY:  # only when install() was not possible
            frame(msg.data)
        elif msg.type is WSMsgType.TEXT:
            frame(msg.data.encode(), binary=False)
        elif msg.type is WSMsgType.CLOSE:
            return msg.data == codec.CLOSE_NORMAL
        elif msg.type in (WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            return False
