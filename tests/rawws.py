"""A deliberately bare WebSocket client over a plain socket, for misbehaving on purpose:
not reading, not answering pings, stopping mid-frame or mid-handshake."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from typing import Any

import msgpack


class RawSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int, path: str, *, rcvbuf: int | None = None,
                   headers: dict[str, str] | None = None, handshake: bool = True) -> RawSocket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connect, so the window is small from the start
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        # A small limit: the stream pauses reading past 64 KiB buffered, as a stuck client.
        reader, writer = await asyncio.open_connection(sock=sock, limit=2**15)
        raw = cls(reader, writer)
        if handshake:
            status = await raw.handshake(host, port, path, headers or {})
            if status != 101:
                raise ConnectionError(f"upgrade refused: {status}")
        return raw

    def request(self, host: str, port: int, path: str, headers: dict[str, str]) -> bytes:
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13", *(f"{k}: {v}" for k, v in headers.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def handshake(self, host: str, port: int, path: str, headers: dict[str, str]) -> int:
        self.writer.write(self.request(host, port, path, headers))
        head = await self.reader.readuntil(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1])

    def send_frame(self, payload: bytes, opcode: int = 0x2, cut: int | None = None) -> None:
        """A masked client frame; ``cut`` sends only that many bytes of it."""
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        data = header + mask + masked
        self.writer.write(data if cut is None else data[:cut])

    def send(self, *items: Any) -> None:
        self.send_frame(msgpack.packb(list(items)))

    async def read_frame(self) -> tuple[int, bytes]:
        """One server frame: (opcode, payload)."""
        b0, b1 = await self.reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        return b0 & 0x0F, await self.reader.readexactly(n)

    async def read_message(self) -> Any:
        """The next binary message, decoded (control frames are skipped, pings unanswered)."""
        while True:
            opcode, payload = await self.read_frame()
            if opcode == 0x2:
                return msgpack.unpackb(payload)
            if opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                raise ConnectionResetError(f"closed by server: {code}", code)

    def abort(self) -> None:
        self.writer.transport.abort()
