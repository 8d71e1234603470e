"""A recording read as a room: the same replica a live spectator keeps, moved by time.

::

    from gameserver.client import open_recording

    replay = open_recording(Path("arena-20261129T230000-k3J9xQ_a.gsrec").read_bytes())
    replay.seek(replay.duration / 2)          # the last keyframe before, then the updates
    print(replay.tick, [e.values for e in replay.entities("Avatar")])
    async for ms in replay.play(speed=4):     # in (scaled) real time, update by update
        ...

The file is the one ``--record`` writes (docs/PROTOCOL.md §8); a gzipped part
opens too. Every update is applied to a :class:`~gameserver.core.replica.Replica`,
the reference decoder a live client uses, so code written against a room's
``state`` reads a replay unchanged.
"""

from __future__ import annotations

import asyncio
import bisect
import gzip
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

from gameserver.core import recording
from gameserver.core.replica import Replica, ReplicaEntity


class TimelineEvent(NamedTuple):
    ms: int
    tick: int
    kind: str
    body: Any


def open_recording(data: bytes) -> Replay:
    """A :class:`Replay` of a recording's bytes (gzipped or not). Raises
    ``gameserver.core.recording.RecordingError`` for anything else."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return Replay(*recording.read(data))


class Replay:
    """One recording, at one moment of it: ``state`` as of ``time`` (ms)."""

    def __init__(self, header: dict[str, Any], frames: list[tuple[str, int, bytes]]) -> None:
        if not frames or frames[0][0] != recording.KEYFRAME:
            raise recording.RecordingError("a recording starts with a keyframe")
        self.header = header
        self.game: str = header["game"]
        self.room_id: str = header["room_id"]
        self.config: dict[str, Any] = header["config"]
        self._frames = frames
        self._times = [ms for _, ms, _ in frames]
        self.duration: int = frames[-1][1]
        # SNAPSHOT and DELTA both carry the tick third and the events last.
        self.events = [TimelineEvent(ms, message[2], kind, body)
                       for ms, message in recording.updates(frames)
                       for kind, body in message[-1]]
        self.state = Replica(header["schema"])
        self._next = 0  # the index of the next frame to apply
        self.time = 0
        self.seek(0)

    @property
    def tick(self) -> int:
        return self.state.tick

    def entities(self, type_name: str | None = None) -> list[ReplicaEntity]:
        """The entities at :attr:`time`, of one type if given, in id order."""
        return [e for _, e in sorted(self.state.entities.items())
                if type_name is None or e.type == type_name]

    def seek(self, ms: float) -> None:
        """Jump to ``ms``: the last keyframe at or before it, then the updates up to it."""
        last = bisect.bisect_right(self._times, ms) - 1
        keyframe = max((i for i in range(max(last, 0), -1, -1)
                        if self._frames[i][0] == recording.KEYFRAME), default=0)
        self.state = Replica(self.header["schema"])
        self.state.apply(recording.message(recording.KEYFRAME, self._frames[keyframe][2]))
        self._next = keyframe + 1
        self._apply_until(ms)
        self.time = int(min(max(ms, 0), self.duration))

    def advance(self, ms: float) -> None:
        """Play on to ``time + ms`` (forward only; :meth:`seek` goes anywhere)."""
        self.time = int(min(self.time + ms, self.duration))
        self._apply_until(self.time)

    def _apply_until(self, ms: float) -> None:
        frames, i = self._frames, self._next
        while i < len(frames) and frames[i][1] <= ms:
            kind, _, tail = frames[i]
            if kind == recording.DELTA:  # later keyframes hold the state the deltas built
                self.state.apply(recording.message(kind, tail))
            i += 1
        self._next = i

    async def play(self, speed: float = 1.0) -> AsyncIterator[int]:
        """Apply the updates from :attr:`time` on in (scaled) real time; yields each
        update's time. ``speed`` 2 plays twice as fast."""
        loop = asyncio.get_running_loop()
        start, origin = loop.time(), self.time
        while self._next < len(self._frames):
            due = self._frames[self._next][1]
            wait = start + (due - origin) / (1000 * speed) - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self.time = due
            self._apply_until(due)
            yield due
