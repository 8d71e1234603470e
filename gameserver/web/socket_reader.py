"""The receive path: client frames to the room, synchronously, under the rate limit.

aiohttp parses WebSocket frames in C inside its protocol's ``data_received``
and queues each message for the handler task, which must then be woken to
read it: a future, a task step and a coroutine resume per input. For game
sockets, where every player sends an input each tick, that wake-up is most of
the cost of an input. :func:`install` swaps the socket's message queue for one
that hands data messages straight to :meth:`Inbound.frame` from the parser,
and queues only close frames and errors for the handler's usual ``receive()``
loop, so aiohttp still does the close handshake and the size limit.

Frames that carry no game data (pings, pongs, and the fragments of a
fragmented message, which aiohttp assembles before any queue sees them) are
metered one level down, in the frame parser itself (``aiohttp_seam._MeteredReader``),
against a small budget of their own: a ping within it is answered there and
then, without waking the handler; over it, pings and pongs are dropped, and a
client still over it after a second is closed (4005). Over either budget the
socket goes unread for a moment, so a flood costs a slice of parsing per
pause, not a Python call per frame for as long as it lasts.

The queue and the parser are aiohttp's own, subclassed: they live, with every
other use of aiohttp internals, in :mod:`gameserver.web.aiohttp_seam`. When
the seam reports them unavailable, :func:`install` returns False and
:func:`control_loop` feeds every message through :meth:`Inbound.frame`
itself: slower, the same behaviour.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import WSMsgType, web

from gameserver.core import codec
from gameserver.core.limits import FrameAllowance, RateLimiter, Verdict
from gameserver.host.broadcast import Connection
from gameserver.host.room_host import RoomHost
from gameserver.web import aiohttp_seam


class Inbound:
    """One connection's inbound side: count, rate-limit, dispatch."""

    __slots__ = ("_check", "_clock", "_close", "_counters", "_receive", "conn", "control",
                 "delivered", "flooded", "refused")

    def __init__(self, runtime: RoomHost, conn: Connection, messages_per_s: float,
                 bytes_per_s: float, close: Callable[[int, str], None],
                 control_per_s: float) -> None:
        self.conn = conn
        self._clock = time.monotonic
        self._check = RateLimiter(messages_per_s, bytes_per_s, self._clock(),
                                  max_message=runtime.max_message_size).check
        # Pings, pongs and message fragments: a budget of their own (see the module doc).
        self.control = FrameAllowance(control_per_s, self._clock())
        self.refused = False  # a message was refused since the reader last looked
        self.delivered = 0  # messages seen: a read that completes none is charged (reader)
        self.flooded = False  # closed for flooding
        self._receive = runtime.receive
        self._counters = runtime.counters  # metrics: plain ints, read at scrape time
        self._close = close

    def frame(self, data: bytes, binary: bool = True) -> None:
        self.delivered += 1
        conn = self.conn
        if conn.detached:  # a frame still in flight after a disconnect or a replacement
            return
        counters = self._counters
        counters.received_messages += 1
        counters.received_bytes += len(data)
        now = self._clock()
        conn.last_seen = now
        verdict = self._check(len(data), now)
        if verdict is Verdict.OK:
            if binary:
                self._receive(conn, data)
            else:
                counters.reject("text_frame")
                conn.send_now(codec.encode_error(
                    "text_frame", "send binary msgpack frames, not text"))
            return
        self.refused = True
        if verdict is Verdict.LIMITED:
            counters.reject("rate_limited")
            conn.send_now(codec.encode_error(
                "rate_limited", "too many messages: slow down or be disconnected"))
        elif verdict is Verdict.CLOSE:
            conn.detached = True
            self.flooded = True
            self._close(codec.CLOSE_RATE_LIMITED, "rate limit exceeded")

    def control_verdict(self, verdict: Verdict) -> None:
        """Act on the control budget's verdict after a read: tell once, or close."""
        conn = self.conn
        if conn.detached or verdict is Verdict.OK:
            return
        control = self.control
        if verdict is Verdict.CLOSE:
            conn.detached = True
            self.flooded = True
            self._close(codec.CLOSE_RATE_LIMITED, "rate limit exceeded")
        elif control.over_since == control.refused_at:  # just went over: tell, once
            self._counters.reject("rate_limited")
            conn.send_now(codec.encode_error(
                "rate_limited", "too many control frames: slow down or be disconnected"))

    def control_frame(self) -> bool:
        """One ping or pong on the handler path (no direct path): within the budget?"""
        control = self.control
        now = self._clock()
        control.refill(now)
        control.allowance -= 1
        self.control_verdict(control.settle(now))
        if control.allowance < 0:
            return False
        self.conn.last_seen = now
        return True


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
