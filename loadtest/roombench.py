"""``python -m loadtest.roombench``: the Python work of one room per player-update, by stage.

One room of ``--game`` with ``--players`` seated players runs in this process, with no
sockets, event loop or kernel: each tick, every player's INPUT goes through the
server's own receive chain (``Inbound.frame``: counters, rate check, decode, the
engine's input checks and the game's ``validate_input``), then the room ticks
(``RoomEngine.tick``: ``on_input`` and ``update``), collects its delta
(``RoomEngine.collect``: the world's diff, encoded once) and sends it
(``Broadcaster.send`` to null transports, which keep nothing), as ``RoomHost.step``
does after its socket reads. A world with views (``--options '{"world": "large"}'``)
also shows ``parts``: every viewer's parts (``Views.all_delta_parts``), which the send
then reuses.

Each stage is timed with ``perf_counter`` over ``--ticks`` ticks after ``--warmup``
ones, ``--repeats`` times; the figures are the medians, in µs of CPU per
player-update, with the bytes a player is sent per update. It isolates the
interpreter's share (docs/BENCHMARKS.md quotes it as "the room microbenchmark"):
in place, on cold caches and with the kernel's reads and writes, the same work
costs about twice as much. Inputs are arena's ``[dx, dy]``, each player turning
every 2 s, so the games it takes are ``arena``, ``movement``
(``loadtest.movement:Movement``) or a ``module:Class`` with the same inputs.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from typing import Any

from gameserver.config import ConfigError, Settings
from gameserver.core import codec
from gameserver.core.limits import Limits
from gameserver.core.room import Room
from gameserver.games.arena import Arena
from gameserver.host.room_host import Inbound, RoomHost
from gameserver.web.app import load_game
from loadtest.cli import json_object
from loadtest.movement import Movement

GAMES: dict[str, type[Room]] = {"arena": Arena, "movement": Movement}
STAGES = ("receive", "tick", "collect", "parts", "send")
TURN_EVERY = 40  # ticks between a player's turns (2 s at 20 Hz)


class NullTransport:
    """A socket that takes every write at once and keeps nothing (counts them)."""

    __slots__ = ("bytes", "writes")

    def __init__(self) -> None:
        self.writes = 0
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.bytes += len(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def abort(self) -> None:
        pass


def _no_close(code: int, reason: str) -> None:
    raise RuntimeError(f"the room closed a player's socket ({code} {reason})")


class Bench:
    """A room of ``game`` with ``players`` players on null transports."""

    def __init__(self, game: type[Room], players: int, options: dict[str, Any]) -> None:
        limits = Limits.from_settings(Settings())
        room = game("bench", 20.0, {"seed": 1, "max_players": players, **options})
        room.on_create(room.options)
        self.host = host = RoomHost(room, limits)
        self.transports = [NullTransport() for _ in range(players)]
        # Budgets no benchmark reaches: the rate check does its arithmetic, never refuses.
        self.inbound = [Inbound(host, host.connect(t, f"p{i}", {}, _no_close),
                                1e9, 1e12, _no_close, 1e6).frame
                        for i, t in enumerate(self.transports)]
        self.seq = 0
        # 16 headings, as [dx, dy] at full stick: player i turns to heading (i + k) % 16.
        self.headings = [[round(100 * math.cos(a)), round(100 * math.sin(a))]
                         for a in (2 * math.pi * k / 16 for k in range(16))]

    def run(self, ticks: int) -> dict[str, float]:
        """``ticks`` ticks; seconds spent in each stage, and the bytes sent."""
        host = self.host
        engine, room = host.engine, host.room
        send, views = host.broadcaster.send, room.world.views
        inbound, headings, n = self.inbound, self.headings, len(self.inbound)
        spent = dict.fromkeys(STAGES, 0.0)
        clock, monotonic = time.perf_counter, time.monotonic
        sent = sum(t.bytes for t in self.transports)
        for _ in range(ticks):
            self.seq += 1
            seq, turn = self.seq, self.seq // TURN_EVERY
            frames = [codec.encode(codec.C_INPUT, seq, headings[(i + turn) % 16])
                      for i in range(n)]  # what clients send: not the server's work
            t0 = clock()
            for frame, data in zip(inbound, frames, strict=True):
                frame(data)
            t1 = clock()
            host._tick(1)  # the engine's tick, then what it decided
            t2 = clock()
            tail = engine.collect()
            t3 = clock()
            if views is not None:
                views.all_delta_parts()
                t4 = clock()
            else:
                t4 = t3
            send(host.connections.values(), tail, engine.snapshot_tail, monotonic(), views)
            t5 = clock()
            spent["receive"] += t1 - t0
            spent["tick"] += t2 - t1
            spent["collect"] += t3 - t2
            spent["parts"] += t4 - t3
            spent["send"] += t5 - t4
        if engine.crashed is not None:
            raise RuntimeError(f"the room crashed: {engine.crashed!r}")
        spent["bytes"] = float(sum(t.bytes for t in self.transports) - sent)
        return spent


def measure(game: type[Room], players: int, options: dict[str, Any], ticks: int,
            warmup: int, repeats: int) -> dict[str, Any]:
    """Medians over ``repeats`` of µs per player-update by stage, and bytes per update."""
    bench = Bench(game, players, options)
    bench.run(warmup)
    runs = [bench.run(ticks) for _ in range(repeats)]
    updates = ticks * players
    result: dict[str, Any] = {"game": game.game, "players": players, "options": options,
                              "ticks": ticks, "repeats": repeats}
    for stage in STAGES:
        result[stage] = statistics.median(r[stage] for r in runs) / updates * 1e6
    result["total"] = statistics.median(sum(r[s] for s in STAGES) for r in runs) / updates * 1e6
    result["bytes_per_update"] = statistics.median(r["bytes"] for r in runs) / updates
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m loadtest.roombench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--game", default="arena",
                        help="arena, movement, or module:Class taking arena's inputs "
                             "(default arena)")
    parser.add_argument("--players", type=int, default=200, help="in the room (default 200)")
    parser.add_argument("--options", type=json_object, default={},
                        help='the room\'s creation options, JSON (e.g. \'{"world": "large"}\')')
    parser.add_argument("--ticks", type=int, default=1000, help="measured, per repeat")
    parser.add_argument("--warmup", type=int, default=300, help="ticks before measuring")
    parser.add_argument("--repeats", type=int, default=3, help="the median is printed")
    parser.add_argument("--json", action="store_true", help="print one JSON row instead")
    args = parser.parse_args(argv)
    if not (1 <= args.players <= 5000 and 1 <= args.ticks <= 100_000
            and 0 <= args.warmup <= 100_000 and 1 <= args.repeats <= 50):
        parser.error("--players is 1..5000, --ticks 1..100000, --warmup 0..100000 and "
                     "--repeats 1..50")
    options = args.options
    try:
        game = GAMES.get(args.game) or load_game(args.game)
    except ConfigError as exc:
        parser.error(f"--game is arena, movement or module:Class ({exc})")
    result = measure(game, args.players, options, args.ticks, args.warmup, args.repeats)
    if args.json:
        print(json.dumps(result))
    else:
        stages = " ".join(f"{s} {result[s]:.2f}" for s in STAGES)
        print(f"{args.game} {json.dumps(options)}, {args.players} players: {stages}, "
              f"total {result['total']:.2f} µs per player-update; "
              f"{result['bytes_per_update']:.0f} B per update")
    return result


if __name__ == "__main__":
    main()
