"""The one raw WebSocket client of the load tests and the tests (RFC 6455, client side).

Why not aiohttp's client: the load test needs a client whose receive path costs
one callback per read, and the tests need one that misbehaves on purpose (stops
reading, never answers pings, stops mid-frame or mid-handshake, has a tiny
receive buffer), which a well-behaved library cannot be made to do.

- Handshake: :func:`upgrade_request`, :func:`upgrade_refusal`.
- Frames out (masked, as a client must): :func:`mask_frame` for the bot's small
  final frames (the hot path), :func:`frame` for anything else (any size,
  fragments, control frames; cut it for a partial frame).
- Frames in (unmasked, from the server): :func:`frame_at`, :func:`close_code`.
- msgpack without a call into msgpack: :func:`pack_uint`, :func:`read_uint`.
- :class:`WsProtocol`: an asyncio Protocol that upgrades, then walks every frame
  of a read in place; the load-test bot (:mod:`loadtest.bot`) is one.
- :class:`RawSocket`: asyncio streams, read only when asked to; for the tests
  and :mod:`loadtest.stalled`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
from collections.abc import Mapping
from typing import Any

import msgpack

OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# One masking key per process for mask_frame. RFC 6455 wants a fresh key per
# frame so that a browser's frames cannot poison intermediary caches; between
# a bot and a server on loopback there is no intermediary, and the server
# cannot tell. Precomputed as ints: masking is then one XOR of two ints.
MASK_KEY = os.urandom(4)
_MASK_INTS = [int.from_bytes((MASK_KEY * 32)[:n], "big") for n in range(126)]


# -- handshake ---------------------------------------------------------------------

def upgrade_request(authority: str, path: str,
                    headers: Mapping[str, str] | None = None) -> tuple[bytes, bytes]:
    """The GET asking ``authority`` (``host:port``) to upgrade ``path``, and its key.

    The key is what :func:`upgrade_refusal` checks the server's accept against.
    """
    key = base64.b64encode(os.urandom(16))
    lines = [f"GET {path} HTTP/1.1", f"Host: {authority}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key.decode()}",
             "Sec-WebSocket-Version: 13", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), key


def upgrade_refusal(head: bytes, key: bytes) -> str | None:
    """Why the response ``head`` (up to its blank line) is not an upgrade; None if it is."""
    text = head.decode("latin-1")
    status = text.split("\r\n", 1)[0]
    accept = base64.b64encode(hashlib.sha1(key + _WS_GUID).digest()).decode()
    if " 101 " not in status + " " or accept not in text:
        return f"upgrade refused: {status}"
    return None


# -- frames out --------------------------------------------------------------------

def mask_frame(opcode: int, payload: bytes) -> bytes:
    """A final client frame masked with :data:`MASK_KEY`; payloads under 126 bytes only.

    The bot's hot path: every input it sends goes through here.
    """
    n = len(payload)
    if n >= 126:
        raise ValueError("mask_frame is for small frames; use frame()")
    masked = (int.from_bytes(payload, "big") ^ _MASK_INTS[n]).to_bytes(n, "big") if n else b""
    return bytes((0x80 | opcode, 0x80 | n)) + MASK_KEY + masked


def frame(payload: bytes, opcode: int = OP_BINARY, *, fin: bool = True,
          mask: bytes | None = None) -> bytes:
    """A masked client frame of any size; ``fin=False`` for all but a message's last fragment.

    ``mask`` defaults to a fresh random key; four zero bytes leave the payload as is.
    """
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    if n < 126:
        head = bytes((b0, 0x80 | n))
    elif n < 65536:
        head = bytes((b0, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, 0x80 | 127)) + n.to_bytes(8, "big")
    key = os.urandom(4) if mask is None else mask
    if not n:
        return head + key
    stream = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return head + key + (int.from_bytes(payload, "big") ^ stream).to_bytes(n, "big")


# -- frames in ---------------------------------------------------------------------

def frame_at(buf: bytes | bytearray, pos: int = 0) -> tuple[int, int, int]:
    """``(opcode, start, end)`` of the server frame at ``buf[pos]``, payload ``buf[start:end]``.

    The frame is complete when ``end <= len(buf)``; otherwise ``end - len(buf)``
    bytes are missing, the next read's bound. While the header itself is
    incomplete, ``opcode`` is -1 and ``start == end`` is where the header ends.
    """
    have = len(buf) - pos
    if have < 2:
        return -1, pos + 2, pos + 2
    length = buf[pos + 1] & 0x7F  # server frames are never masked
    head = 2
    if length == 126:
        head = 4
    elif length == 127:
        head = 10
    if have < head:
        return -1, pos + head, pos + head
    if head > 2:
        length = int.from_bytes(buf[pos + 2:pos + head], "big")
    return buf[pos] & 0x0F, pos + head, pos + head + length


def close_code(payload: bytes | bytearray) -> int:
    """The status code of a close frame's payload (1005, "none", if it has none)."""
    return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005


# -- msgpack -----------------------------------------------------------------------

def pack_uint(n: int) -> bytes:
    """msgpack's encoding of a non-negative int, without a call into msgpack."""
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return b"\xcc" + bytes((n,))
    if n < 0x10000:
        return b"\xcd" + n.to_bytes(2, "big")
    return b"\xce" + n.to_bytes(4, "big")


def read_uint(buf: bytes, p: int) -> int:
    """The msgpack uint at ``buf[p]`` (up to 32 bits); -1 if it is not one."""
    a = buf[p]
    if a < 0x80:
        return a
    if a == 0xCC:
        return buf[p + 1]
    if a == 0xCD:
        return int.from_bytes(buf[p + 1:p + 3], "big")
    if a == 0xCE:
        return int.from_bytes(buf[p + 1:p + 5], "big")
    return -1


# -- a client on an asyncio Protocol -----------------------------------------------

class WsProtocol(asyncio.Protocol):
    """A client that sends its upgrade on connect and walks every frame of a read in place.

    Subclasses override :meth:`on_binary` (given the read's buffer and the
    payload's bounds: no copy, no call per frame besides it), and may override
    :meth:`on_refused` and :meth:`on_close`. Pings are answered; a close is
    echoed, then the connection closed. Text, pong and continuation frames are
    ignored (the server sends none of them unasked). ``bytes_in`` counts every
    byte read, ``bytes_out`` every frame written with :meth:`write_frame`.
    """

    def __init__(self, authority: str, path: str,
                 headers: Mapping[str, str] | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self._request, self._key = upgrade_request(authority, path, headers)
        self._upgraded = False
        self._buf = b""
        self.close_code: int | None = None
        self.bytes_in = 0
        self.bytes_out = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self._request)  # type: ignore[union-attr]

    def _upgrade(self, data: bytes) -> bytes | None:
        """What follows the response head once it is complete and accepted."""
        self._buf += data
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head, rest = self._buf[:end], self._buf[end + 4:]
        self._buf = b""
        refusal = upgrade_refusal(head, self._key)
        if refusal is not None:
            self.on_refused(refusal)
            self.transport.close()  # type: ignore[union-attr]
            return None
        self._upgraded = True
        return rest

    def data_received(self, data: bytes) -> None:
        self.bytes_in += len(data)
        if not self._upgraded:
            rest = self._upgrade(data)
            if not rest:
                return
            data = rest
        buf = self._buf + data if self._buf else data
        n = len(buf)
        pos = 0
        # frame_at, inlined: a call per frame would cost as much as the rest of the loop
        while n - pos >= 2:
            length = buf[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if n - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2:pos + 4], "big")
                head = 4
            elif length == 127:
                if n - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2:pos + 10], "big")
                head = 10
            start = pos + head
            end = start + length
            if end > n:
                break
            opcode = buf[pos] & 0x0F
            if opcode == OP_BINARY:
                self.on_binary(buf, start, end)
            elif opcode == OP_PING:
                self.write_frame(mask_frame(OP_PONG, buf[start:end]))
            elif opcode == OP_CLOSE:
                self.on_close(close_code(buf[start:end]))
                return
            pos = end
        self._buf = buf[pos:] if pos < n else b""

    def on_binary(self, buf: bytes, start: int, end: int) -> None:
        """A binary message: ``buf[start:end]`` (the server never fragments them)."""

    def on_refused(self, reason: str) -> None:
        """The server answered the upgrade with something else; the connection closes."""

    def on_close(self, code: int) -> None:
        """The server sent a close frame: echo it and close."""
        self.close_code = code
        self.write_frame(mask_frame(OP_CLOSE, code.to_bytes(2, "big")))
        assert self.transport is not None
        self.transport.close()

    def write_frame(self, data: bytes) -> None:
        """Write a frame built by :func:`mask_frame` or :func:`frame`, unless closing."""
        t = self.transport
        if t is not None and not t.is_closing():
            t.write(data)
            self.bytes_out += len(data)


# -- a client on asyncio streams ---------------------------------------------------

class RawSocket:
    """A bare client that reads only when asked to, for misbehaving on purpose.

    It never answers a ping nor echoes a close; it reads nothing between calls
    to :meth:`read_frame` (past 64 KiB buffered the stream stops reading, the
    kernel buffers fill, and the server sees a stuck client); it writes
    whatever it is given (:meth:`write`), including half a frame or half a
    handshake (``open(..., handshake=False)``, then ``write(raw.request[:n])``).
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 request: bytes, key: bytes) -> None:
        self.reader = reader
        self.writer = writer
        self.request = request  # the upgrade request, sent by handshake()
        self.key = key
        self._pending = bytearray()  # a frame read in part: kept across a cancelled read

    @classmethod
    async def open(cls, host: str, port: int, path: str, *, rcvbuf: int | None = None,
                   headers: Mapping[str, str] | None = None,
                   handshake: bool = True) -> RawSocket:
        """Connect to ``host:port`` and upgrade ``path`` (ConnectionError if refused).

        ``rcvbuf`` shrinks the socket's receive buffer; ``handshake=False``
        sends nothing: the caller writes what it wants of :attr:`request`.
        """
        loop = asyncio.get_running_loop()
        family, kind, proto, _, address = (await loop.getaddrinfo(
            host, port, type=socket.SOCK_STREAM))[0]
        sock = socket.socket(family, kind, proto)
        if rcvbuf is not None:  # before connect, so the window is small from the start
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, address)
        except BaseException:
            sock.close()
            raise
        # A small limit: the stream pauses reading past 64 KiB buffered, as a stuck client.
        reader, writer = await asyncio.open_connection(sock=sock, limit=2**15)
        raw = cls(reader, writer, *upgrade_request(f"{host}:{port}", path, headers))
        if handshake:
            await raw.handshake()
        return raw

    async def handshake(self) -> None:
        """Send :attr:`request` and read the response head (ConnectionError if refused)."""
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        refusal = upgrade_refusal(head[:-4], self.key)
        if refusal is not None:
            raise ConnectionError(refusal)

    @property
    def transport(self) -> asyncio.WriteTransport:
        return self.writer.transport

    def write(self, data: bytes) -> None:
        """Bytes as they are: garbage, a partial request, a frame cut short."""
        self.writer.write(data)

    def send_frame(self, payload: bytes, opcode: int = OP_BINARY, *, fin: bool = True,
                   cut: int | None = None) -> None:
        """A masked frame (see :func:`frame`); ``cut`` sends only that many bytes of it."""
        data = frame(payload, opcode, fin=fin)
        self.writer.write(data if cut is None else data[:cut])

    def send(self, *items: Any) -> None:
        """``items`` as one msgpack array in a binary frame."""
        self.send_frame(msgpack.packb(list(items)))

    async def read_frame(self, timeout: float | None = None) -> tuple[int, bytes]:
        """The next server frame, ``(opcode, payload)``, of any kind.

        Reads no further than that frame. asyncio.IncompleteReadError at the end
        of the stream; TimeoutError after ``timeout`` seconds (the frame read so
        far is kept for the next call).
        """
        if timeout is not None:
            return await asyncio.wait_for(self.read_frame(), timeout)
        buf = self._pending
        while (found := frame_at(buf))[2] > len(buf):
            buf += await self.reader.readexactly(found[2] - len(buf))
        opcode, start, end = found
        payload = bytes(buf[start:end])
        buf.clear()
        return opcode, payload

    async def read_message(self, timeout: float | None = None) -> Any:
        """The next binary message, decoded; pings and pongs are skipped (pings unanswered).

        A close frame raises ``ConnectionResetError(text, code)``.
        """
        if timeout is not None:
            return await asyncio.wait_for(self.read_message(), timeout)
        while True:
            opcode, payload = await self.read_frame()
            if opcode == OP_BINARY:
                return msgpack.unpackb(payload)
            if opcode == OP_CLOSE:
                code = close_code(payload)
                raise ConnectionResetError(f"closed by server: {code}", code)

    def stop_reading(self) -> None:
        """Read nothing from now on: the kernel buffers what it can, then the server's
        writes back up."""
        self.transport.pause_reading()  # type: ignore[attr-defined]

    def abort(self) -> None:
        """Drop the connection without a close frame."""
        self.transport.abort()
