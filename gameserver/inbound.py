"""The receive path: client frames to the room, synchronously, under the rate limit.

aiohttp parses WebSocket frames in C inside its protocol's ``data_received``
and queues each message for the handler task, which must then be woken to
read it: a future, a task step and a coroutine resume per input. For game
sockets, where every player sends an input each tick, that wake-up is most of
the cost of an input. :func:`install` swaps the socket's message queue for one
that hands data messages straight to :meth:`Inbound.frame` from the parser,
and queues only control frames (close, ping, pong) and errors for the
handler's usual ``receive()`` loop, so aiohttp still does the close handshake,
the heartbeat and the size limit.

The swap uses aiohttp internals (the queue and parser attributes of a
prepared ``WebSocketResponse``). If they are not as expected, :func:`install`
returns False and the handler feeds every message through
:meth:`Inbound.frame` itself: slower, the same behaviour.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from . import protocol
from .broadcast import Connection
from .limits import RateLimiter, Verdict
from .runtime import RoomRuntime

log = logging.getLogger("gameserver.ws")

try:  # aiohttp >= 3.11 keeps these here; older versions fall back to the slow path
    from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
except ImportError:  # pragma: no cover - depends on the installed aiohttp
    WebSocketDataQueue = WebSocketReader = None  # type: ignore[assignment,misc]

_BINARY = WSMsgType.BINARY
_TEXT = WSMsgType.TEXT


class Inbound:
    """One connection's inbound side: count, rate-limit, dispatch."""

    __slots__ = ("_check", "_clock", "_close", "_counters", "_receive", "conn")

    def __init__(self, runtime: RoomRuntime, conn: Connection, messages_per_s: float,
                 bytes_per_s: float, close: Callable[[int, str], None]) -> None:
        self.conn = conn
        self._clock = time.monotonic
        self._check = RateLimiter(messages_per_s, bytes_per_s, self._clock()).check
        self._receive = runtime.receive
        self._counters = runtime.counters  # metrics: plain ints, read at scrape time
        self._close = close

    def frame(self, data: bytes, binary: bool = True) -> None:
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
                conn.send_now(protocol.encode_error(
                    "text_frame", "send binary msgpack frames, not text"))
        elif verdict is Verdict.LIMITED:
            counters.reject("rate_limited")
            conn.send_now(protocol.encode_error(
                "rate_limited", "too many messages: slow down or be disconnected"))
        elif verdict is Verdict.CLOSE:
            conn.detached = True
            self._close(protocol.CLOSE_RATE_LIMITED, "rate limit exceeded")


if WebSocketDataQueue is not None:
    class _DirectQueue(WebSocketDataQueue):  # type: ignore[misc,valid-type]
        """aiohttp's message queue, but binary messages go to the room at once."""

        on_frame: Callable[[bytes, bool], None]

        def feed_data(self, msg: Any, size: int) -> None:
            kind = msg[0]
            if kind is _BINARY:
                self.on_frame(msg[1], True)
            elif kind is _TEXT:  # refused, but in order with the binary ones
                data = msg[1]
                self.on_frame(data.encode() if isinstance(data, str) else data, False)
            else:
                WebSocketDataQueue.feed_data(self, msg, size)


def install(ws: web.WebSocketResponse, request: web.Request, inbound: Inbound) -> bool:
    """Route this prepared socket's binary messages to ``inbound`` directly."""
    if WebSocketDataQueue is None:
        return False
    try:
        old = ws._reader
        old_parser = ws._parser
        queue = _DirectQueue(request.protocol, old._limit, loop=ws._loop)
        queue.on_frame = inbound.frame
        try:
            parser = WebSocketReader(queue, ws._max_msg_size, compress=False,
                                     decode_text=True)
        except TypeError:  # before aiohttp 3.13 there was no decode_text
            parser = WebSocketReader(queue, ws._max_msg_size, compress=False)
        if request.protocol._payload_parser is not old_parser:
            return False
        request.protocol._payload_parser = parser
        ws._parser = parser
        ws._reader = queue
        # Anything that arrived while the handshake was being written.
        while old._buffer:
            msg, size = old._buffer.popleft()
            queue.feed_data(msg, size)
        return True
    except (AttributeError, TypeError) as exc:
        log.warning("direct receive path unavailable (%s); using the handler loop", exc)
        return False


async def control_loop(ws: web.WebSocketResponse, inbound: Inbound) -> bool:
    """Read what reaches the handler until the socket ends; True if the client closed
    it with 1000. (aiohttp reports a connection that simply vanished as 1000 or 1006
    depending on how it ended, so the client's own close frame is the only proof.)"""
    frame = inbound.frame
    conn = inbound.conn
    while True:
        msg = await ws.receive()
        if msg.type is WSMsgType.PING:  # autoping is off: heartbeat.py does liveness
            conn.last_seen = time.monotonic()
            await ws.pong(msg.data)
        elif msg.type is WSMsgType.PONG:
            conn.last_seen = time.monotonic()
        elif msg.type is WSMsgType.BINARY:  # only when install() was not possible
            frame(msg.data)
        elif msg.type is WSMsgType.TEXT:
            frame(msg.data.encode(), binary=False)
        elif msg.type is WSMsgType.CLOSE:
            return msg.data == protocol.CLOSE_NORMAL
        elif msg.type in (WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            return False
