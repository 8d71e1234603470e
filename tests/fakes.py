"""Socket-free stand-ins for the send path's transport."""

from __future__ import annotations

from typing import Any

import msgpack


class FakeTransport:
    """Records whole frames; the test sets how backed up it claims to be."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.backlog = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        self.frames.append(bytes(data))

    def get_write_buffer_size(self) -> int:
        return self.backlog

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True

    def messages(self) -> list[Any]:
        return [unframe(f) for f in self.frames]


def unframe(frame: bytes) -> Any:
    """Strip an unmasked server WebSocket frame header and decode the msgpack payload."""
    assert frame[0] == 0x82, "a final binary frame"
    n = frame[1]
    offset = 2 if n < 126 else 4 if n == 126 else 10
    length = n if n < 126 else int.from_bytes(frame[2:offset], "big")
    payload = frame[offset:]
    assert len(payload) == length
    return msgpack.unpackb(payload)
