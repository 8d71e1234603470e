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
metered one level down, in the frame parser itself (:class:`_MeteredReader`),
against a small budget of their own: a ping within it is answered there and
then, without waking the handler; over it, pings and pongs are dropped, and a
client still over it after a second is closed (4005). Over either budget the
socket goes unread for a moment, so a flood costs a slice of parsing per
pause, not a Python call per frame for as long as it lasts.

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

from gameserver.core import codec
from gameserver.core.limits import FrameAllowance, RateLimiter, Verdict
from gameserver.host.broadcast import Connection
from gameserver.host.room_host import RoomHost

log = logging.getLogger("gameserver.ws")

try:  # aiohttp >= 3.11 keeps these here; older versions fall back to the slow path
    from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
except ImportError:  # pragma: no cover - depends on the installed aiohttp
    WebSocketDataQueue = WebSocketReader = None  # type: ignore[assignment,misc]

_BINARY = WSMsgType.BINARY
_TEXT = WSMsgType.TEXT
_PING = WSMsgType.PING
_PONG = WSMsgType.PONG
THROTTLE_S = 0.25  # how long a socket over a budget goes unread
SLICE = 4096  # bytes of a read parsed between two looks at the budgets
_NOTHING = (False, b"")  # what the parser's feed_data returns when all is well


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


if WebSocketDataQueue is not None:
    class _DirectQueue(WebSocketDataQueue):  # type: ignore[misc,valid-type]
        """aiohttp's message queue, but data messages go to the room at once, and pings
        and pongs are metered and answered here: only close frames wake the handler."""

        on_frame: Callable[[bytes, bool], None]
        inbound: Inbound
        transport: Any

        def feed_data(self, msg: Any, size: int) -> None:
            kind = msg[0]
            if kind is _BINARY:
                self.on_frame(msg[1], True)
            elif kind is _TEXT:  # refused, but in order with the binary ones
                data = msg[1]
                self.on_frame(data.encode() if isinstance(data, str) else data, False)
            elif kind is _PING or kind is _PONG:
                inbound = self.inbound
                inbound.delivered += 1
                control = inbound.control
                _spend(control)
                if control.allowance >= 0:  # else dropped: no pong, no wake-up
                    self.inbound.conn.last_seen = time.monotonic()
                    if kind is _PING and not self.transport.is_closing():
                        payload = msg[1]  # a control frame's payload is at most 125 bytes
                        self.transport.write(bytes((0x8A, len(payload))) + payload)
            else:
                WebSocketDataQueue.feed_data(self, msg, size)

    _feed_data = WebSocketReader.feed_data

    def _spend(control: FrameAllowance) -> None:
        """One unit of the control budget. Refills are skipped while it is full, so the
        first unit spent from full restarts its clock."""
        if control.allowance >= control.burst:
            control.stamp = time.monotonic()
        control.allowance -= 1

    class _MeteredReader(WebSocketReader):  # type: ignore[misc,valid-type]
        """aiohttp's frame parser (the C one when built), metered, and paused when over.

        aiohttp calls :meth:`feed_data` once per read from the socket. Pings and pongs
        are charged to the control budget by the queue; a read that completes no
        message at all (the fragments of a message, or a flood of empty ones) is
        charged one unit of it here, so a fragment flood cannot go uncounted while
        no frame is looked at in Python. An honest read (one input, one message)
        costs two attribute reads on top of aiohttp's own parse.

        A read longer than :data:`SLICE` bytes is parsed a slice at a time. Once a
        slice has gone over either budget, the rest of the read is kept unparsed and
        the socket goes unread for :data:`THROTTLE_S`: a flood costs a slice's worth
        of frames per pause, and the flooder's own kernel buffers hold the rest.
        """

        __slots__ = ("control", "inbound", "loop", "stash", "stopped", "throttled", "transport")
        control: FrameAllowance  # the inbound's control budget, one lookup closer
        inbound: Inbound
        transport: Any
        loop: Any
        throttled: bool
        stopped: bool  # closed for flooding: nothing more is read
        stash: bytes  # read while throttled, or left unparsed by it

        def feed_data(self, data: Any) -> tuple[bool, bytes]:
            if self.throttled or self.stopped:
                if not self.stopped:
                    self.stash += data
                return _NOTHING
            control = self.control
            if control.allowance < control.burst:  # spent lately: earn back what time allows
                control.refill(time.monotonic())
            if len(data) > SLICE:
                return self._feed_slices(data)
            inbound = self.inbound  # the common case: one short read, often one input
            before = inbound.delivered
            result = _feed_data(self, data)
            if result[0]:  # a protocol error: the parser is done
                return result  # type: ignore[no-any-return]
            if inbound.delivered == before:  # fragments only, or nothing at all
                _spend(control)
            if control.allowance < 0 or control.over_since is not None or inbound.refused:
                self._settle(data, len(data))
            return _NOTHING

        def _feed_slices(self, data: Any) -> tuple[bool, bytes]:
            """A long read, a slice at a time, stopping at the first slice over a budget."""
            control, inbound = self.control, self.inbound
            size, start = len(data), 0
            while start < size:
                before = inbound.delivered
                result = _feed_data(self, data[start:start + SLICE])
                start += SLICE
                if result[0]:
                    return result  # type: ignore[no-any-return]
                if inbound.delivered == before:
                    _spend(control)
                if control.allowance < 0 or inbound.refused:
                    break
            if control.allowance < 0 or control.over_since is not None or inbound.refused:
                self._settle(data, min(start, size))
            return _NOTHING

        def _settle(self, data: Any, parsed: int) -> None:
            """After a read over a budget (or recovering from one): tell, close, or
            throttle, keeping what was not parsed for later."""
            inbound = self.inbound
            control = inbound.control
            verdict = Verdict.OK
            if control.allowance < 0 or control.over_since is not None:
                verdict = control.settle(time.monotonic())
                inbound.control_verdict(verdict)
            if verdict is Verdict.CLOSE or inbound.flooded:
                self._stop()
            elif control.allowance < 0 or inbound.refused:
                inbound.refused = False
                self.stash = data[parsed:]
                self._throttle()

        def _throttle(self) -> None:
            if not self.transport.is_closing():
                self.transport.pause_reading()
            self.throttled = True
            self.loop.call_later(THROTTLE_S, self._resume)

        def _stop(self) -> None:
            """Closed for flooding: read nothing more (the close frame goes out anyway)."""
            self.stopped = True
            self.stash = b""
            if not self.transport.is_closing():
                self.transport.pause_reading()

        def _resume(self) -> None:
            self.throttled = False
            transport = self.transport
            if self.stopped or transport.is_closing():
                return
            stash, self.stash = self.stash, b""
            if stash:
                self.feed_data(stash)
            if not (self.throttled or self.stopped or self._queue_paused()):
                transport.resume_reading()

        def _queue_paused(self) -> bool:
            """aiohttp's own flow control has paused reading (its queue is full)."""
            return bool(getattr(self.transport.get_protocol(), "_reading_paused", False))


def install(ws: web.WebSocketResponse, request: web.Request, inbound: Inbound) -> bool:
    """Route this prepared socket's binary messages to ``inbound`` directly."""
    if WebSocketDataQueue is None:
        return False
    try:
        old = ws._reader
        old_parser = ws._parser
        queue = _DirectQueue(request.protocol, old._limit, loop=ws._loop)
        queue.on_frame = inbound.frame
        queue.inbound = inbound
        queue.transport = request.transport
        try:
            parser = _MeteredReader(queue, ws._max_msg_size, compress=False,
                                    decode_text=True)
        except TypeError:  # before aiohttp 3.13 there was no decode_text
            parser = _MeteredReader(queue, ws._max_msg_size, compress=False)
        parser.inbound = inbound
        parser.control = inbound.control
        parser.transport = request.transport
        parser.loop = ws._loop
        parser.throttled = parser.stopped = False
        parser.stash = b""
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
