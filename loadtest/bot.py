"""One bot: a raw WebSocket client on an asyncio Protocol (:class:`~.wsclient.WsProtocol`).

Why not aiohttp's client: every received message there goes through a reader,
a queue and a task wake-up before user code sees it. Here ``data_received``
walks the frames of a read in place, so a bot that only counts costs one
callback per read and one call per update in it. Most bots read the
input ack straight from the update's first bytes (updates are
``0x95|0x96|0x98|0x99, 11|12, ack, ...``); a sample decodes everything and keeps a
:class:`~gameserver.core.replica.Replica` to check the state it is sent.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from array import array
from collections import deque
from collections.abc import Callable
from typing import Any

import msgpack

from gameserver.core import codec
from gameserver.core.replica import Replica, ReplicaError

from .wsclient import OP_BINARY, WsProtocol, mask_frame, pack_uint, read_uint

# fixarray(5) snapshot, fixarray(8) delta, and both with a player's view ``parts`` (6, 9)
_UPDATE_HEADS = (0x95, 0x96, 0x98, 0x99)
_UPDATE_KINDS = (codec.S_SNAPSHOT, codec.S_DELTA)

now = time.perf_counter


_INPUT_HEAD = bytes((0x93, codec.C_INPUT))  # [1, seq, [dx, dy]]
_LEAVE = msgpack.packb([codec.C_LEAVE])


class Shared:
    """Per-worker sinks the bots of that worker write into (no per-bot lists)."""

    __slots__ = ("closes", "latencies", "max_latency_ms", "on_disconnect", "random")

    def __init__(self, seed: int) -> None:
        self.latencies = array("f")  # input-to-ack, ms, since the last progress report
        self.max_latency_ms = 0.0
        self.random = random.Random(seed)
        self.closes: dict[str, int] = {}
        self.on_disconnect: Callable[[Bot], None] = lambda _b: None


class Bot(WsProtocol):
    """A bot that counts frames and reads acks. See :class:`SampledBot` for the full decode."""

    sampled = False

    def __init__(self, index: int, shared: Shared, host: str, path: str) -> None:
        super().__init__(host, path)
        self.index = index
        self.shared = shared
        self._handshake: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        # nobody awaits it once a connect has timed out: don't log it as unretrieved
        self._handshake.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.welcome: list[Any] | None = None
        self.closed = False
        self.leaving = False
        self.joined = False  # counted by its worker
        self.kind = "player"  # or "idle", "spectator": set by its worker (options.bot_kind)
        # counters, read by the worker (and bytes_in, bytes_out)
        self.updates = 0
        self.errors = 0  # ERROR messages from the server
        self.ready = False  # an update has arrived: inputs may start
        # inputs in flight: send times of seq acked+1, acked+2, ...
        self.seq = 0
        self.acked = 0
        self._sent_at: deque[float] = deque()
        self._dir = b""
        self.dxdy = (0, 0)
        self.turn()

    # -- handshake -------------------------------------------------------------

    async def welcomed(self, timeout: float) -> list[Any]:
        """Wait for the upgrade and the welcome message."""
        return await asyncio.wait_for(asyncio.shield(self._handshake), timeout)

    def _fail_handshake(self, reason: str) -> None:
        if not self._handshake.done():
            self._handshake.set_exception(ConnectionError(reason))

    def on_refused(self, reason: str) -> None:
        self._fail_handshake(reason)

    # -- receive ---------------------------------------------------------------

    def on_binary(self, buf: bytes, start: int, end: int) -> None:
        if end - start > 3 and buf[start] in _UPDATE_HEADS and buf[start + 1] in _UPDATE_KINDS:
            # an update, inline: the hot path, one call per update
            self.updates += 1
            self.ready = True
            ack = read_uint(buf, start + 2)
            if ack > self.acked:
                self._acked(ack)
        else:
            self.on_message(buf[start:end])

    def _acked(self, ack: int) -> None:
        t = now()
        sent_at = self._sent_at
        shared = self.shared
        worst = 0.0
        while sent_at and self.acked < ack:
            self.acked += 1
            ms = (t - sent_at.popleft()) * 1000.0
            shared.latencies.append(ms)
            if ms > worst:
                worst = ms
        self.acked = ack
        if worst > shared.max_latency_ms:
            shared.max_latency_ms = worst

    def on_message(self, payload: bytes) -> None:
        try:
            msg = msgpack.unpackb(payload)
        except Exception:
            self.errors += 1
            return
        kind = msg[0] if isinstance(msg, list) and msg else None
        if kind == codec.S_WELCOME and self.welcome is None:
            self.welcome = msg
            if not self._handshake.done():
                self._handshake.set_result(msg)
        elif kind == codec.S_ERROR:
            self.errors += 1

    def on_close(self, code: int) -> None:
        super().on_close(code)
        self._fail_handshake(f"closed before the welcome: {code}")

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        self._fail_handshake(f"connection lost: {exc}")
        if self.welcome is not None:
            self.shared.on_disconnect(self)

    # -- send ------------------------------------------------------------------

    def turn(self) -> None:
        """Pick a new stick direction (full push, any angle)."""
        angle = self.shared.random.random() * math.tau
        self.dxdy = (round(100 * math.cos(angle)), round(100 * math.sin(angle)))
        self._dir = msgpack.packb(self.dxdy)

    def send_input(self, t: float) -> None:
        if not self.ready or self.closed or self.leaving:
            return
        self.seq += 1
        self.write_frame(mask_frame(OP_BINARY, _INPUT_HEAD + pack_uint(self.seq) + self._dir))
        self._sent_at.append(t)

    def leave(self) -> None:
        self.leaving = True
        self.write_frame(mask_frame(OP_BINARY, _LEAVE))

    def abort(self) -> None:
        self.leaving = True
        if self.transport is not None:
            self.transport.abort()


class SampledBot(Bot):
    """Decodes every update, applies it to a Replica, and checks its own avatar.

    For ``arena`` the avatar's position after input ``ack`` is fully determined by
    the spawn point and the inputs sent: the bot replays them with the game's own
    rule and counts every disagreement with what the server reports.
    """

    sampled = True

    def __init__(self, index: int, shared: Shared, host: str, path: str) -> None:
        super().__init__(index, shared, host, path)
        self.replica: Replica | None = None
        self.replica_errors = 0
        self.mismatches = 0
        self.checked = 0
        self.delta_bytes = 0  # payload bytes of deltas...
        self.moved = 0  # ...and the entities whose fields changed in them
        self._inputs: dict[int, tuple[int, int]] = {}
        self._predicted: tuple[int, int] | None = None
        self._predicted_ack = 0
        self._avatar: int | None = None
        self._move: Any = None

    def on_message(self, payload: bytes) -> None:
        super().on_message(payload)
        if self.welcome is not None and self.replica is None:
            # [10, version, room_id, game, player_id, tick_rate, schema, config, ...]
            game, schema, config = self.welcome[3], self.welcome[6], self.welcome[7]
            self.replica = Replica(schema)
            if game == "arena":
                from gameserver.games.arena import move
                self._move = lambda x, y, d: move(x, y, d[0], d[1], config["step"], config)

    def send_input(self, t: float) -> None:
        seq = self.seq
        super().send_input(t)
        if self.seq != seq and self._move is not None:
            self._inputs[self.seq] = self.dxdy

    def on_binary(self, buf: bytes, start: int, end: int) -> None:
        updates = self.updates
        super().on_binary(buf, start, end)
        if self.updates == updates or self.replica is None:
            return  # not an update (Bot.on_binary counts them), or nothing to apply it to
        msg = msgpack.unpackb(buf[start:end])
        try:
            self.replica.apply(msg)
        except ReplicaError:
            self.replica_errors += 1
            self.replica = None  # it cannot follow any more; stop checking
            return
        if msg[0] == codec.S_DELTA:
            self.delta_bytes += end - start
            self.moved += _count_changed(msg[5])
            for part in msg[8] if len(msg) > 8 else ():  # what only this player sees
                self.moved += _count_changed(part[1])
        if self._move is not None:
            self._check_avatar(msg[1])

    def _check_avatar(self, ack: int) -> None:
        assert self.replica is not None and self.welcome is not None
        entities = self.replica.entities
        if self._avatar is None or self._avatar not in entities:
            me = self.welcome[4]
            self._avatar = next((e.id for e in entities.values()
                                 if e.type == "Avatar" and e.values.get("pid") == me), None)
            if self._avatar is None:
                return
        values = entities[self._avatar].values
        if self._predicted is None:
            if ack != 0:  # joined mid-way through its inputs: no baseline to replay from
                self._move = None
                return
            self._predicted = (values["x"], values["y"])
        while self._predicted_ack < ack:
            self._predicted_ack += 1
            d = self._inputs.pop(self._predicted_ack, (0, 0))
            self._predicted = self._move(*self._predicted, d)
        self.checked += 1
        if (values["x"], values["y"]) != self._predicted:
            self.mismatches += 1
            self._predicted = (values["x"], values["y"])  # count each divergence once


def _count_changed(records: list[Any]) -> int:
    """Entities in a change record list ``id, mask, v...`` (one value per set bit)."""
    i, n, count = 0, len(records), 0
    while i < n:
        i += 2 + records[i + 1].bit_count()
        count += 1
    return count
