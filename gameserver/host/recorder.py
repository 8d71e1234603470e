"""Recording rooms to disk, off the tick path (the format: ``gameserver.core.recording``).

The tick loop only appends the update it already encoded to an in-memory buffer
(one msgpack header around the same bytes every client got). A writer flushes the
buffer to the room's file from a worker thread twice a second, so a slow disk never
stalls a tick. The buffer is bounded: if the disk falls so far behind that it holds
more than :attr:`RecordOptions.buffer_limit` bytes, that room's recording stops with
a logged warning and the game carries on. A file past ``max_bytes`` is closed and
the recording goes on in a new part (``-2``, ``-3``, ...), which starts with a header
and a keyframe of its own. With ``compress``, each part is gzipped once it is
complete, never while the room plays.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from gameserver.core import recording
from gameserver.core.engine import RoomEngine

log = logging.getLogger("gameserver.recorder")

SUFFIX = ".gsrec"


@dataclass(frozen=True)
class RecordOptions:
    directory: Path
    max_bytes: int = 64 * 1024 * 1024  # per file, before the next part starts
    keyframe_every: float = 10.0  # seconds between keyframes (seek points)
    buffer_limit: int = 4 * 1024 * 1024  # bytes waiting for the disk before giving up
    compress: bool = False  # gzip each part once it is complete
    flush_every: float = 0.5


class Recorder:
    """One room's recording: :meth:`update` per tick (never blocks), :meth:`close` at the end."""

    def __init__(self, engine: RoomEngine, options: RecordOptions) -> None:
        room = engine.room
        self.engine = engine
        self.options = options
        self.started = time.time()
        self._t0 = time.monotonic()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(self.started))
        self.stem = f"{room.game}-{stamp}-{room.room_id}"
        self.part = 0
        self.path: Path | None = None
        self.bytes_written = 0  # to the current part
        self.stopped = False  # gave up (disk too slow, or an I/O error): see the log
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._next_keyframe = 0.0
        self._file: IO[bytes] | None = None
        self._flushing: asyncio.Task[None] | None = None  # the flush loop's last write
        self._task: asyncio.Task[None] | None = None
        self._closed_parts: list[Path] = []

    def start(self) -> None:
        self._new_part()
        self._task = asyncio.get_running_loop().create_task(
            self._flush_loop(), name=f"recorder:{self.engine.room.room_id}")

    # -- the tick path ---------------------------------------------------------------

    def update(self, tail: bytes) -> None:
        """This tick's shared delta bytes (after ``engine.collect``): buffered, not written."""
        if self.stopped:
            return
        ms = int((time.monotonic() - self._t0) * 1000)
        self._add(recording.delta(ms, tail))
        if ms >= self._next_keyframe:
            self._keyframe(ms)

    def _keyframe(self, ms: int) -> None:
        self._add(recording.keyframe(ms, self.engine.snapshot_tail()))
        self._next_keyframe = ms + self.options.keyframe_every * 1000

    def _add(self, frame: bytes) -> None:
        self._buffer.append(frame)
        self._buffered += len(frame)
        if self._buffered > self.options.buffer_limit:
            self._stop(f"the disk is {self._buffered} bytes behind")

    # -- the writer ----------------------------------------------------------------------

    def _new_part(self) -> None:
        room = self.engine.room
        self.part += 1
        name = self.stem + (f"-{self.part}" if self.part > 1 else "") + SUFFIX
        self.path = self.options.directory / name
        self.bytes_written = 0
        head = recording.header(room.room_id, room.game, room.rate, room.world.schema(),
                                room.client_config(), self.started, self.part)
        # A part starts with the header and a keyframe: it plays on its own. Updates
        # buffered since the last write are in the keyframe's state already.
        self._buffer, self._buffered = [head], len(head)
        self._keyframe(int((time.monotonic() - self._t0) * 1000))

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.options.flush_every)
            # Shielded: closing stops this loop, never a write it has begun (the bytes
            # it took from the buffer would be lost); close() waits for that write.
            self._flushing = loop.create_task(self.flush())
            await asyncio.shield(self._flushing)

    async def flush(self) -> None:
        """Write what is buffered (in a worker thread); rotate a full part."""
        if self.stopped or not self._buffer or self.path is None:
            return
        data, self._buffer, self._buffered = b"".join(self._buffer), [], 0
        path = self.path
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._write, path, data)
        except OSError as exc:
            self._stop(f"writing {path} failed: {exc}")
            return
        self.bytes_written += len(data)
        if self.bytes_written >= self.options.max_bytes:
            # What arrived meanwhile still belongs to this part; then a new one.
            rest, self._buffer, self._buffered = b"".join(self._buffer), [], 0
            if rest:
                with contextlib.suppress(OSError):
                    await asyncio.get_running_loop().run_in_executor(None, self._write,
                                                                     path, rest)
            await self._finish_part()
            self._new_part()

    def _write(self, path: Path, data: bytes) -> None:
        if self._file is None or self._file.name != str(path):
            self._file = open(path, "ab")
        self._file.write(data)
        self._file.flush()

    async def _finish_part(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()
        if self.path is not None and self.path.exists():
            self._closed_parts.append(self.path)
            if self.options.compress:
                await asyncio.get_running_loop().run_in_executor(None, _gzip, self.path)

    def _stop(self, why: str) -> None:
        if not self.stopped:
            self.stopped = True
            self._buffer, self._buffered = [], 0
            log.warning("room %s: recording stopped (%s); the game goes on",
                        self.engine.room.room_id, why,
                        extra={"room_id": self.engine.room.room_id})

    async def close(self) -> None:
        """The room closed: write the rest, close the file (and gzip it)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._flushing is not None:
            await self._flushing  # a write the loop had begun comes first
        await self.flush()
        await self._finish_part()


def _gzip(path: Path) -> None:
    with open(path, "rb") as src, gzip.open(str(path) + ".gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.unlink(path)


def list_recordings(directory: Path) -> list[dict[str, Any]]:
    """The recordings in ``directory``, newest first: name, bytes, modified (Unix time)."""
    found = []
    for path in directory.glob(f"*{SUFFIX}*"):
        if path.is_file() and path.name.endswith((SUFFIX, SUFFIX + ".gz")):
            stat = path.stat()
            found.append({"name": path.name, "bytes": stat.st_size,
                          "modified": round(stat.st_mtime, 3)})
    return sorted(found, key=lambda r: (-r["modified"], r["name"]))
