"""A player's input buffer: one input per tick, from a small depth that absorbs jitter.

Inputs that cross the internet arrive unevenly: two in one tick, none in the next.
Applying them as they arrive puts that unevenness into the authoritative state (a
player held steady moves 0, then 2 steps), which every other player then sees. So a
player's inputs wait in a buffer and are taken at one per tick, the way a media
player's jitter buffer plays audio (and Overwatch its command frames):

- A **stream** is a run of inputs a client sends one per tick while a control is
  held. It starts with the first input after idling, and ends with an input of
  ``None`` (the client's "nothing held"), or after a second with nothing arriving.
  Streams are the clients' to declare: only a client that has ever sent a ``None``
  gets what follows for late inputs (the SDK's ``pumpInput`` sends one before its
  first stream); a client of discrete commands (two key taps in a row are not a
  held key) never sends one: nothing is guessed for it and its depth stays 1, but
  a tick it had nothing for is owed to it like any other (below).
- A new stream waits until the buffer holds ``target`` inputs (at most
  ``target - 1`` ticks) before its first is applied: that much jitter is absorbed.
- ``target`` (1 to ``max_depth``) is learned from the player's own arrivals: an
  input that comes after its tick has gone by (the buffer ran dry and then it came)
  deepens it by one; ten seconds without that make it shallower by one. A clean
  connection stays at 1, so it pays no extra latency.
- When the buffer runs dry mid-stream, the game decides what the tick does (its
  ``Room.on_input_missing``): by default the last input is repeated, standing in
  for the one that is late, which is then dropped when it comes; for a tick or
  two after the last input came (so a stall or an outage is not guessed through),
  for as long as late inputs keep coming (their stream is alive, only late).
- A tick that applied nothing in a stream is owed: after a stall the backlog is
  applied two in some ticks, until the debt is paid and the buffer is back at its
  target. Sending faster never moves faster: no debt, no second input.

Pure: the engine calls :meth:`due` once per tick and does what it says.
"""

from __future__ import annotations

from collections import deque
from typing import Any

CALM_SECONDS = 10.0  # this long without a late input makes the buffer one shallower
STREAM_TIMEOUT_SECONDS = 1.0  # a stream with nothing arriving for this long is over
MAX_DEBT_SECONDS = 1.0  # at most this much of a stall is caught up on


class InputBuffer:
    """The queued inputs of one player, and how many to apply at each tick."""

    __slots__ = (
        "calm",
        "calm_ticks",
        "debt",
        "deepened",
        "last",
        "last_seq",
        "max_debt",
        "max_depth",
        "missed",
        "over",
        "queue",
        "stood_in",
        "stream_timeout",
        "streaming",
        "streams",
        "target",
        "waited",
    )

    def __init__(self, tick_rate: float, max_depth: int = 3) -> None:
        self.queue: deque[tuple[int, Any]] = deque()  # (seq, validated input or None)
        self.last_seq = 0  # the last seq queued, or stood in for (see Engine.receive)
        self.max_depth = max(1, max_depth)
        self.target = 1  # inputs to hold before a stream starts: learned, 1..max_depth
        self.streaming = False
        self.streams = False  # the client ends its streams with None: late inputs are late
        self.last: Any = None  # the last input applied (or stood in) in this stream
        self.missed = 0  # ticks of this stream with nothing queued since an input came
        self.waited = 0  # ticks a new stream has waited to fill to its target
        self.debt = 0  # ticks of this stream that applied nothing: may be caught up
        self.over = 0  # consecutive ticks the buffer was deeper than its target
        self.calm = 0  # ticks applied on time since the last late input
        self.deepened = False  # the target grew in this dry spell already
        self.stood_in = 0  # inputs the game stood in for (Room.on_input_missing): late ones
        self.calm_ticks = max(1, round(CALM_SECONDS * tick_rate))
        self.stream_timeout = max(1, round(STREAM_TIMEOUT_SECONDS * tick_rate))
        self.max_debt = max(1, round(MAX_DEBT_SECONDS * tick_rate))

    def __len__(self) -> int:
        return len(self.queue)

    def due(self) -> int:
        """Called once per tick: how many queued inputs to apply now (0, 1 or 2), or -1
        when the stream is missing its input for this tick (the game decides)."""
        n = len(self.queue)
        if not n:
            if not self.streaming:
                return 0
            self.missed += 1
            if self.missed > self.stream_timeout:  # the client stopped without saying so
                self.stop()
                return 0
            if not self.streams:  # nothing says an input is late: owed, if it comes
                self.stood()
                return 0
            return -1
        if not self.streaming:
            if n < self.target and self.waited < self.target - 1:
                self.waited += 1  # a new stream fills to the target first
                return 0
            self.streaming = True
            self.waited = 0
        if self.missed:
            # It ran dry and the input came after all: it was late, not absent. A
            # deeper buffer would have held it (long stalls are not jitter: no change).
            if self.missed <= self.max_depth and self.streams:
                self.late()
            self.missed = 0
            self.deepened = False
        else:
            self.calm += 1
            if self.calm >= self.calm_ticks and self.target > 1:
                self.target -= 1
                self.calm = 0
        if n > self.target:
            self.over += 1
            # Deeper than the target for a while, and owed ticks: catch up one extra
            # input every other tick (every tick when far behind), never more than owed.
            if self.debt and self.over >= 2 and (n - self.target >= 4 or self.over % 2 == 0):
                self.debt -= 1
                return 2
        else:
            self.over = 0
        return 1

    def late(self) -> bool:
        """An input of this stream came after its tick (it ran dry, or the input arrives
        after a stand-in took its place): deepen the buffer, once per dry spell. True
        if it did: the client may then be asked to send further ahead."""
        self.calm = 0
        if self.deepened or self.target >= self.max_depth:
            return False
        self.deepened = True
        self.target += 1
        return True

    def stood(self) -> None:
        """The game let a tick of this stream pass without an input: owed."""
        if self.debt < self.max_debt:
            self.debt += 1

    def stop(self) -> None:
        """The stream is over (a ``None`` input, or nothing came for a while)."""
        self.streaming = False
        self.last = None
        self.missed = self.waited = self.debt = self.over = 0

    def clear(self, ack: int) -> None:
        """Forget what is queued and the declaration (a drop, or a replaced socket: the
        client may be another program); the learned depth stays."""
        self.queue.clear()
        self.last_seq = ack
        self.streams = False
        self.stop()
