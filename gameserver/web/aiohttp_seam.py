"""Every use of aiohttp's private names, in one module.

The rest of ``gameserver.web`` uses aiohttp's public API only, plus this
module's small one:

- :func:`fast_path_available` / :func:`fast_path_reason`: whether the direct
  receive path can be used, and why not when it cannot; :func:`receive_path`
  says which path game sockets take, for the startup log;
- :func:`install_direct`: put it on one prepared game socket (False: it is
  not there, and the handler reads every message through ``ws.receive()``,
  see ``game_socket.control_loop``: slower, the same behaviour). On a plain
  TCP socket it also gives the connection a tick reader (the parser's
  ``pull``/``release``): a real-time room reads the socket itself once per
  tick, with one read of its descriptor (in C, or ``os.read``), while the
  event loop's reads of it are paused (``transport.pause_reading``, public
  asyncio API);
- :func:`direct_path_installed`: whether a socket has it (for tests);
- :data:`split_in_c`: whether the direct path splits frames with the optional C
  extension (``frames.c``) before aiohttp's parser sees any (see
  :class:`_MeteredReader`);
- :class:`OwnServerRunner` and :func:`rebuild_server`: serve an app through a
  ``web.Server`` subclass of ours (``connections.CappedServer``).

Supported aiohttp: :data:`SUPPORTED_AIOHTTP`, the very pin of pyproject.toml
(tests/test_layers.py checks they agree). Outside it, or when an internal below
is not as expected, the direct path is off: logged once, and the server
works on through the handler loop (the same rate limits, size limits and
close codes, as the tests of both paths check).

Internals relied on, all of them:

The direct receive path (aiohttp >= 3.11; ``decode_text`` since 3.13):

- ``aiohttp._websocket.reader.WebSocketDataQueue``: a socket's message queue,
  built ``(protocol, limit, *, loop)``; subclassed (:class:`_DirectQueue`), its
  ``feed_data(msg, size)`` is what the parser calls for each whole message;
  ``_limit`` and ``_buffer`` (a deque of ``(msg, size)``) of the socket's own
  queue are read to build ours and to take over what it already holds.
- ``aiohttp._websocket.reader.WebSocketReader``: the frame parser (the C one
  when built), built ``(queue, max_msg_size, compress=, decode_text=)``;
  subclassed (:class:`_MeteredReader`), its ``feed_data(data) -> (error, tail)``
  is called once per read from the socket.
- ``WebSocketResponse._reader``, ``._parser``, ``._loop`` and ``._max_msg_size``
  of a prepared response: replaced (the first two) and read.
- ``RequestHandler._payload_parser``: where the protocol feeds each read; the
  socket's parser is swapped for ours only if it is the one found there.
- ``RequestHandler._reading_paused``: aiohttp's own flow control; read with a
  default, so its absence only loses a check.

Serving through our own ``web.Server`` subclass:

- ``AppRunner._make_server()``: overridden to build the server from the one
  aiohttp made (:class:`OwnServerRunner`).
- ``web.Server._loop`` and ``._kwargs``: its loop and the per-connection
  arguments (``edge.handler_args``), copied into ours (:func:`rebuild_server`).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
from aiohttp import WSMsgType, web

from gameserver.core.limits import FrameAllowance, Verdict

if TYPE_CHECKING:
    from gameserver.host.room_host import Inbound

log = logging.getLogger("gameserver.ws")

# The aiohttp versions this module is written against: pyproject.toml pins exactly this.
SUPPORTED_AIOHTTP = ">=3.10,<3.15"
_LOWEST, _BELOW = ((int(a), int(b)) for a, b in re.findall(r"(\d+)\.(\d+)", SUPPORTED_AIOHTTP))


def _version(text: str) -> tuple[int, int]:
    """Major and minor of a version string ("3.14.5", "3.15.0a1"); (0, 0) if unreadable."""
    found = re.match(r"(\d+)\.(\d+)", text)
    return (int(found[1]), int(found[2])) if found else (0, 0)


AIOHTTP_VERSION = _version(aiohttp.__version__)

try:  # the C frame splitter (frames.c), built when the wheel was built with a C compiler
    from gameserver.web import _frames
except ImportError:  # pragma: no cover - depends on how the package was built
    _frames = None  # type: ignore[assignment]

# Whether a new socket splits its frames in C. Off without the extension, or with
# GAMESERVER_PURE_PYTHON=1 (for comparing, or to rule the extension out).
split_in_c = _frames is not None and os.environ.get("GAMESERVER_PURE_PYTHON", "") in ("", "0")

try:  # aiohttp >= 3.11 keeps these here; older versions fall back to the slow path
    from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
except ImportError:  # pragma: no cover - depends on the installed aiohttp
    WebSocketDataQueue = WebSocketReader = None  # type: ignore[assignment,misc]


def _check() -> str:
    """Why the direct path cannot be used with the installed aiohttp ('' if it can)."""
    if not _LOWEST <= AIOHTTP_VERSION < _BELOW:
        return f"aiohttp {aiohttp.__version__} is outside the supported {SUPPORTED_AIOHTTP}"
    if WebSocketDataQueue is None or WebSocketReader is None:
        return f"aiohttp {aiohttp.__version__} has no aiohttp._websocket.reader (< 3.11)"
    for cls in (WebSocketDataQueue, WebSocketReader):
        if not callable(getattr(cls, "feed_data", None)):
            return f"aiohttp's {cls.__name__} has no feed_data"
    return ""


_UNAVAILABLE = _check()  # fixed by the installed aiohttp
_broken = ""  # set when a socket's internals were not as expected: off from then on
_logged = False  # the fallback is logged once per process


def fast_path_reason() -> str:
    """Why the direct receive path is off; '' when it is available."""
    return _UNAVAILABLE or _broken


def fast_path_available() -> bool:
    """True if :func:`install_direct` can put the direct receive path on a socket."""
    return not fast_path_reason()


def receive_path() -> str:
    """How game sockets will be read, in one line for the startup log."""
    reason = fast_path_reason()
    if reason:
        return f"through the handler loop ({reason})"
    if split_in_c:
        return "direct, frames split in C"
    why = ("GAMESERVER_PURE_PYTHON is set" if _frames is not None else
           "the C frame splitter was not built: install a C compiler and Python's headers,"
           " e.g. gcc and python3-dev, and reinstall")
    return f"direct, frames parsed by aiohttp ({why})"


def _fall_back(reason: str) -> None:
    global _logged
    if not _logged:
        _logged = True
        log.warning("direct receive path unavailable (%s); using the handler loop", reason)


_BINARY = WSMsgType.BINARY
_TEXT = WSMsgType.TEXT
_PING = WSMsgType.PING
_PONG = WSMsgType.PONG
_CLOSE = WSMsgType.CLOSE
THROTTLE_S = 0.25  # how long a socket over a budget goes unread
SLICE = 4096  # bytes of a read parsed between two looks at the budgets
READ_SIZE = 65536  # bytes a tick reads from one socket at most (the rest waits a tick)
_read = os.read
_NOTHING = (False, b"")  # what the parser's feed_data returns when all is well
_OP_PING = 0x9
if _frames is not None:
    _split, _read_split = _frames.split, _frames.read_split


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
                _ping_or_pong(self.inbound, self.transport, kind is _PING, msg[1])
            else:
                if kind is _CLOSE:  # the peer is closing: no more data frames to it, from
                    self.inbound.conn.detach()  # now, not once the handler wakes
                WebSocketDataQueue.feed_data(self, msg, size)

    _feed_data = WebSocketReader.feed_data

    def _ping_or_pong(inbound: Inbound, transport: Any, ping: bool, payload: bytes) -> None:
        """A ping or pong: charged to the control budget; a ping within it is answered."""
        inbound.delivered += 1
        control = inbound.control
        _spend(control)
        if control.allowance >= 0:  # else dropped: no pong, no wake-up
            inbound.conn.last_seen = time.monotonic()
            if ping and not transport.is_closing():
                # A control frame's payload is at most 125 bytes.
                transport.write(bytes((0x8A, len(payload))) + payload)

    def _deliver(inbound: Inbound, transport: Any, frames: list[Any]) -> None:
        """What the C splitter split: a binary frame's payload (bytes) to the inbound, a
        ping or pong (a tuple) to :func:`_ping_or_pong`."""
        on_frame = inbound.frame
        for item in frames:
            if type(item) is bytes:
                on_frame(item, True)
            else:
                _ping_or_pong(inbound, transport, item[0] == _OP_PING, item[1])

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

        When :data:`split_in_c` (the ``_frames`` extension is built), the plain frames
        an honest client sends (final, masked binary frames under the size limit,
        pings and pongs) are split in C instead (:meth:`_take`), and a tick's read is
        made there too. At the first frame of any other kind the socket's bytes go to
        aiohttp's parser from then on, so it parses everything unusual, errors
        included, as it would alone; its parser has seen no byte before that frame.
        """

        __slots__ = ("control", "fd", "inbound", "loop", "max_size", "native", "protocol",
                     "stash", "stopped", "tail", "throttled", "ticked", "transport")
        control: FrameAllowance  # the inbound's control budget, one lookup closer
        inbound: Inbound
        transport: Any
        loop: Any
        throttled: bool
        stopped: bool  # closed for flooding: nothing more is read
        stash: bytes  # read while throttled, or left unparsed by it
        ticked: bool  # read by the room's tick (pull), not by the event loop
        fd: int
        protocol: Any
        native: bool  # frames split in C (until the first frame for aiohttp's parser)
        tail: bytes  # the start of a frame the C splitter waits to see whole
        max_size: int  # aiohttp's limit: a message of this many bytes or more is refused

        def pull(self) -> None:
            """Read what the socket holds now and parse it, from the room's tick.

            The first pull takes the socket off the event loop's read watch: from then
            on the room reads it once per tick, just before the tick that applies what
            was read (Quake's and Source's servers read their sockets this way), so an
            input waits no longer than before and costs no wake-up of its own.
            :meth:`release` gives it back to the event loop."""
            transport = self.transport
            if transport.is_closing():  # its descriptor may be closed, even reused
                return
            if not self.ticked:  # (a throttled or stopped socket is paused already)
                self.ticked = True
                transport.pause_reading()
            if self.throttled or self.stopped:
                return
            native = self.native
            try:
                if native:  # read and split in C (READ_SIZE bytes at most)
                    got = _read_split(self.fd, self.tail, self.max_size, SLICE)
                else:
                    data = _read(self.fd, READ_SIZE)
            except BlockingIOError:
                return
            except OSError:  # reset by the peer: what the event loop would have seen
                transport.abort()
                return
            if not native:
                if not data:  # the peer closed its side
                    transport.close()
                elif self.feed_data(data)[0]:  # a protocol error: aiohttp's handling of it
                    self.protocol.close()
                return
            if got is None:  # the peer closed its side
                transport.close()
                return
            frames, rest, general = got
            self.tail = b""
            control = self.control
            if control.allowance < control.burst:  # as in feed_data
                control.refill(time.monotonic())
            if rest or general or not frames:
                if self._take(rest, 0, frames, general)[0]:  # aiohttp's protocol error
                    self.protocol.close()
                return
            inbound = self.inbound  # the common case: whole frames, each delivers one
            _deliver(inbound, transport, frames)
            if control.allowance < 0 or control.over_since is not None or inbound.refused:
                self._settle(rest, 0)

        def release(self) -> None:
            """Back to the event loop's reads (the socket is leaving its room)."""
            if self.ticked:
                self.ticked = False
                if not (self.throttled or self.stopped or self.transport.is_closing()):
                    self.transport.resume_reading()

        def feed_data(self, data: Any) -> tuple[bool, bytes]:
            if self.throttled or self.stopped:
                if not self.stopped:
                    self.stash += data
                return _NOTHING
            self._earn()
            if self.native:
                if self.tail:
                    data, self.tail = self.tail + data, b""
                elif type(data) is not bytes:
                    data = bytes(data)
                frames, end, general = _split(data, 0, self.max_size, SLICE)
                return self._take(data, end, frames, general)
            return self._feed_parser(data)

        def _earn(self) -> None:
            control = self.control
            if control.allowance < control.burst:  # spent lately: earn back what time allows
                control.refill(time.monotonic())

        def _take(self, data: bytes, end: int, frames: list[Any], general: bool
                  ) -> tuple[bool, bytes]:
            """Deliver ``frames``, the first slice the C splitter split of ``data`` (it
            stopped at ``end``), then split and deliver the rest a slice at a time, as
            :meth:`_feed_parser` does: a slice that delivers nothing is charged one
            control unit, and a slice over a budget stops the read."""
            control, inbound, transport = self.control, self.inbound, self.transport
            size = len(data)
            read_before = inbound.delivered
            while True:
                before = inbound.delivered
                _deliver(inbound, transport, frames)
                if inbound.delivered == before and not general:  # only part of a frame
                    _spend(control)
                if control.allowance < 0 or inbound.refused:
                    break
                if general:  # aiohttp's parser takes over from this frame on, for good
                    self.native = False  # (a read that delivers nothing is charged)
                    return self._feed_parser(data[end:], read_before)
                if end == size:
                    break
                frames, end_of_slice, general = _split(data, end, self.max_size, SLICE)
                if end_of_slice == end and not general:  # a frame not yet whole
                    break
                end = end_of_slice
            if control.allowance < 0 or control.over_since is not None or inbound.refused:
                self._settle(data, end)
                if self.throttled or self.stopped:  # the rest is stashed, or dropped
                    return _NOTHING
            if end < size:
                self.tail = data[end:]
            return _NOTHING

        def _feed_parser(self, data: Any, before: int | None = None) -> tuple[bool, bytes]:
            """``data`` through aiohttp's parser, a slice at a time when it is long.
            ``before``: the count of messages delivered when the read began, if it began
            before ``data`` (the C splitter's part of it)."""
            control = self.control
            if len(data) > SLICE:
                return self._feed_slices(data)
            inbound = self.inbound  # the common case: one short read, often one input
            if before is None:
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
            if not (self.ticked or self.transport.is_closing()):
                self.transport.pause_reading()
            self.throttled = True
            self.loop.call_later(THROTTLE_S, self._resume)

        def _stop(self) -> None:
            """Closed for flooding: read nothing more (the close frame goes out anyway)."""
            self.stopped = True
            self.stash = b""
            if not (self.ticked or self.transport.is_closing()):
                self.transport.pause_reading()

        def _resume(self) -> None:
            self.throttled = False
            transport = self.transport
            if self.stopped or transport.is_closing():
                return
            stash, self.stash = self.stash, b""
            if stash:
                self.feed_data(stash)
            if not (self.ticked or self.throttled or self.stopped or self._queue_paused()):
                transport.resume_reading()

        def _queue_paused(self) -> bool:
            """aiohttp's own flow control has paused reading (its queue is full)."""
            return bool(getattr(self.transport.get_protocol(), "_reading_paused", False))


def _plain_fd(transport: Any) -> int:
    """The descriptor of a plain TCP socket, which a room can read at its tick; -1 when
    there is none to read directly (TLS, or a transport without a socket)."""
    if transport.get_extra_info("sslcontext") is not None:
        return -1
    sock = transport.get_extra_info("socket")
    return sock.fileno() if sock is not None else -1


def install_direct(ws: web.WebSocketResponse, request: web.Request, inbound: Inbound) -> bool:
    """Route this prepared socket's binary messages to ``inbound`` directly.

    False when the direct path is unavailable (logged once): the handler's
    ``receive()`` loop then gets every message.
    """
    global _broken
    reason = fast_path_reason()
    if reason:
        _fall_back(reason)
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
        parser.ticked = False
        parser.protocol = request.protocol
        parser.fd = _plain_fd(request.transport)
        parser.max_size = ws._max_msg_size
        parser.native = split_in_c and parser.max_size > 0
        parser.tail = b""
        if request.protocol._payload_parser is not old_parser:
            # Not the parser this socket was built with (an upgrade still in flight?):
            # this socket only reads through the handler, the next may not.
            return False
        request.protocol._payload_parser = parser
        ws._parser = parser
        ws._reader = queue
        if parser.fd >= 0:
            inbound.conn.reader = parser  # its room may read it at each tick
        # Anything that arrived while the handshake was being written.
        while old._buffer:
            msg, size = old._buffer.popleft()
            queue.feed_data(msg, size)
        return True
    except (AttributeError, TypeError) as exc:  # internals not as expected: off for good
        _broken = f"{type(exc).__name__}: {exc}"
        _fall_back(_broken)
        return False


def direct_path_installed(ws: web.WebSocketResponse) -> bool:
    """Whether :func:`install_direct` put the direct path on this socket."""
    return WebSocketReader is not None and isinstance(getattr(ws, "_parser", None),
                                                      _MeteredReader)


ServerT = TypeVar("ServerT", bound=web.Server)


class OwnServerRunner(web.AppRunner):
    """``web.AppRunner`` whose connection manager :meth:`make_server` may replace."""

    def make_server(self, built: web.Server) -> web.Server:
        """The server to use instead of ``built``, the one aiohttp made for the app."""
        return built

    async def _make_server(self) -> web.Server:
        return self.make_server(await super()._make_server())


def rebuild_server(built: web.Server, cls: type[ServerT], **extra: Any) -> web.Server:
    """``built`` (aiohttp's server for an app) as an instance of ``cls``, with the same
    handler, request factory and per-connection arguments, and ``extra`` for ``cls``.

    ``built`` itself if its internals are not as expected (logged).
    """
    try:
        kwargs, loop = built._kwargs, built._loop
    except AttributeError as exc:
        log.warning("serving without %s (aiohttp's web.Server changed: %s)",
                    cls.__name__, exc)
        return built
    return cls(built.request_handler, request_factory=built.request_factory,
               handler_cancellation=built.handler_cancellation, loop=loop,
               **kwargs, **extra)
