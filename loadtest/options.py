"""What one load-test run is: its options, and how bots are split into rooms and workers."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Options:
    url: str = "http://127.0.0.1:8000"
    players: int = 100
    per_room: int = 8  # players per room; ignored with one_room
    one_room: bool = False
    game: str = "arena"
    # Sent as ``options`` in every bot's /matchmake (the room's creator adds max_players)
    game_options: dict[str, Any] = field(default_factory=dict)
    ramp: float = 100.0  # new players per second, all workers together
    duration: float = 10.0  # seconds of measurement after the ramp and warm-up
    warmup: float = 1.0  # seconds between the last join and the measurement window
    input_rate: float = 20.0  # inputs per second per player; 0 sends none
    idle_players: int = 0  # the last N of the players send no inputs (they only receive)
    spectators: int = 0  # watchers (mode "spectate"), spread over the players' rooms
    workers: int = 1
    seed: int = 1
    sample: float = 0.02  # < 1: fraction of bots that fully decode; >= 1: a count
    connect_timeout: float = 10.0
    worker_cpus: tuple[int, ...] = field(default_factory=tuple)  # pin workers (bench)
    quiet: bool = False  # no progress lines

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["worker_cpus"] = list(self.worker_cpus)
        return d

    def create_options(self, players: int) -> dict[str, Any]:
        """The options of a room this run creates for ``players``: its size wins over a
        ``max_players`` in ``game_options`` (it is what --per-room/--one-room mean)."""
        return {**self.game_options, "max_players": players}

    def game_line(self) -> str:
        return game_line(self.game, self.game_options)


def game_line(game: str, options: dict[str, Any] | None) -> str:
    """A game and its options, as the header line and the summary show them."""
    return f"{game} {json.dumps(options, separators=(', ', ': '))}" if options else game


@dataclass(frozen=True)
class Group:
    """Bots that share one room. The first one creates it (unless ``room_id`` is given).

    Spectators get the global indices after the players' (``players + i``).
    """

    bots: tuple[int, ...]  # global bot indices
    room_id: str | None = None  # an existing room to join (one-room mode)
    ws_url: str | None = None  # a reservation the first bot redeems instead of matchmaking
    spectators: tuple[int, ...] = ()  # global indices of the spectators watching this room


def sampled_indices(players: int, sample: float) -> frozenset[int]:
    """Which bots decode fully: evenly spread, at least one when there are bots."""
    if players <= 0 or sample <= 0:
        return frozenset()
    count = round(players * sample) if sample < 1 else int(sample)
    count = max(1, min(players, count))
    return frozenset(i * players // count for i in range(count))


def plan_groups(opts: Options) -> list[Group]:
    """Rooms as groups of consecutive bots (one group for one-room mode).

    Spectators are dealt round-robin over the rooms: evenly spread, the first
    rooms get one more when they do not divide.
    """
    size = opts.players if opts.one_room else max(1, opts.per_room)
    groups = [Group(tuple(range(start, min(start + size, opts.players))))
              for start in range(0, opts.players, size)]
    if groups and opts.spectators > 0:
        n = len(groups)
        watchers = range(opts.players, opts.players + opts.spectators)
        groups = [replace(g, spectators=tuple(watchers[i::n])) for i, g in enumerate(groups)]
    return groups


def bot_kind(opts: Options, index: int) -> str:
    """``"player"`` (sends inputs), ``"idle"`` (a player that sends none) or ``"spectator"``."""
    if index >= opts.players:
        return "spectator"
    if index >= opts.players - opts.idle_players:
        return "idle"
    return "player"


def split_groups(groups: list[Group], workers: int) -> list[list[Group]]:
    """Whole rooms go to one worker, balanced by bot count; one big room is cut into parts.

    A part of a room joins by ``room_id`` (the runner creates such rooms up front).
    """
    workers = max(1, workers)
    if len(groups) == 1 and workers > 1:
        g = groups[0]
        parts = [(g.bots[w::workers], g.spectators[w::workers]) for w in range(workers)]
        return [[Group(p, g.room_id, g.ws_url if w == 0 else None, s)] if p or s else []
                for w, (p, s) in enumerate(parts)]
    out: list[list[Group]] = [[] for _ in range(workers)]
    load = [0] * workers
    for g in groups:
        w = load.index(min(load))
        out[w].append(g)
        load[w] += len(g.bots)
    return out
