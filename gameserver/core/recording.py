"""The recording format: a room's stream, as sent, in one file. Pure: bytes in, bytes out.

A recording is a sequence of msgpack arrays, one after another (no outer container,
so it can be appended to while the room plays and read while it is written):

- ``["gsrec", 1, header]`` first: ``header`` holds ``room_id``, ``game``,
  ``tick_rate``, ``schema`` and ``config`` (what a WELCOME carries), ``protocol``,
  ``started`` (Unix seconds) and ``part`` (1, 2, ... when a recording is rotated);
- ``["k", ms, tail]``: a keyframe, the room's full state: ``tail`` is the bytes of a
  SNAPSHOT after its ack (``tick, entities, events``);
- ``["d", ms, tail]``: one update, the shared bytes of a DELTA after its ack
  (``tick, base_tick, created, changed, removed, events``), exactly as every client got.

``ms`` is milliseconds since ``started``. Every part starts with a header and a
keyframe, and a keyframe is written every few seconds, so a player can seek to
any keyframe and apply the deltas after it. :func:`message` rebuilds the
SNAPSHOT or DELTA a spectator would have received (``ack`` 0), so any client's
replica (``gameserver.core.replica.Replica``, the SDKs') plays it as a live room.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgpack

from gameserver.core import codec

MAGIC = "gsrec"
VERSION = 1
KEYFRAME = "k"
DELTA = "d"
_ACK0 = msgpack.packb(0)
_pack = msgpack.Packer(autoreset=True, use_bin_type=True).pack


def header(room_id: str, game: str, tick_rate: float, schema: list[Any],
           config: dict[str, Any], started: float, part: int = 1) -> bytes:
    return _pack([MAGIC, VERSION, {"room_id": room_id, "game": game, "tick_rate": tick_rate,
                                   "schema": schema, "config": config, "started": started,
                                   "part": part, "protocol": codec.PROTOCOL_VERSION}])


def keyframe(ms: int, snapshot_tail: bytes) -> bytes:
    return _pack([KEYFRAME, ms, snapshot_tail])


def delta(ms: int, delta_tail: bytes) -> bytes:
    return _pack([DELTA, ms, delta_tail])


def message(kind: str, tail: bytes) -> list[Any]:
    """The SNAPSHOT (keyframe) or DELTA a spectator got, decoded (its ack is 0)."""
    head = codec.SNAPSHOT_HEADER if kind == KEYFRAME else codec.DELTA_HEADER
    return msgpack.unpackb(head + _ACK0 + tail, strict_map_key=False)  # type: ignore[no-any-return]


class RecordingError(ValueError):
    """Not a recording, or a damaged one."""


def read(data: bytes) -> tuple[dict[str, Any], list[tuple[str, int, bytes]]]:
    """A recording's header and frames ``(kind, ms, tail)``. A frame cut short at the end
    (a file still being written, or a crash) is left out."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False,
                                max_buffer_size=max(len(data), 1024))
    unpacker.feed(data)
    frames: list[tuple[str, int, bytes]] = []
    head: dict[str, Any] | None = None
    for item in unpacker:
        if not isinstance(item, list) or not item:
            raise RecordingError("not a recording frame")
        if item[0] == MAGIC:
            if item[1] != VERSION:
                raise RecordingError(f"recording version {item[1]} (this reads {VERSION})")
            head = head or item[2]
        elif item[0] in (KEYFRAME, DELTA) and len(item) == 3 and head is not None:
            frames.append((item[0], int(item[1]), bytes(item[2])))
        else:
            raise RecordingError("not a recording (no header, or an unknown frame)")
    if head is None:
        raise RecordingError("not a recording: no header")
    return head, frames


def updates(frames: list[tuple[str, int, bytes]], start: int = 0
            ) -> Iterator[tuple[int, list[Any]]]:
    """``(ms, message)`` from the last keyframe at or before frame ``start`` on: what a
    client applies to play (or seek) from there. Later keyframes are left out: their
    state is the one the deltas already built, and their events repeat an update's."""
    first = max((i for i, (kind, _, _) in enumerate(frames[:start + 1]) if kind == KEYFRAME),
                default=0)
    for i, (kind, ms, tail) in enumerate(frames[first:]):
        if kind == DELTA or i == 0:
            yield ms, message(kind, tail)
