"""``python -m loadtest``: run bots against a server; print progress, a summary; write reports."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .options import Options
from .runner import LoadTestError, run, summary_table


def build_parser() -> argparse.ArgumentParser:
    d = Options()
    p = argparse.ArgumentParser(
        prog="python -m loadtest",
        description="Headless bots that play on a gameserver (HTTP matchmaking, then a "
                    "WebSocket), measuring what the server does: updates per client, "
                    "input-to-ack latency, bytes, the server's tick time and CPU.")
    p.add_argument("--url", default=d.url, help=f"server base URL (default {d.url})")
    p.add_argument("--players", type=int, default=d.players, help="bots in total")
    rooms = p.add_mutually_exclusive_group()
    rooms.add_argument("--per-room", type=int, default=d.per_room,
                       help=f"players per room (default {d.per_room})")
    rooms.add_argument("--one-room", action="store_true", help="put every bot in one room")
    p.add_argument("--game", default=d.game, help=f"game to play (default {d.game})")
    p.add_argument("--options", dest="game_options", type=json_object, default={},
                   metavar="JSON",
                   help="options sent in every bot's matchmaking request, a JSON object, "
                        "e.g. '{\"world\": \"large\"}' (the room's creator adds its "
                        "max_players)")
    p.add_argument("--ramp", type=float, default=d.ramp,
                   help=f"players joining per second (default {d.ramp:g})")
    p.add_argument("--duration", type=float, default=d.duration,
                   help=f"seconds of measurement once everyone is in (default {d.duration:g})")
    p.add_argument("--warmup", type=float, default=d.warmup,
                   help=f"seconds between the last join and the measurement (default {d.warmup:g})")
    p.add_argument("--input-rate", type=float, default=d.input_rate,
                   help="inputs per second per bot; more than the tick rate queues up and "
                        f"adds latency; 0 sends none (default {d.input_rate:g})")
    p.add_argument("--idle-players", type=int, default=d.idle_players,
                   help="the last N of the players send no inputs, only receive (default 0)")
    p.add_argument("--spectators", type=int, default=d.spectators,
                   help="bots that watch (matchmake mode 'spectate'), dealt round-robin "
                        "over the players' rooms (with --one-room: all on it); they send "
                        "nothing and are reported apart (default 0)")
    p.add_argument("--workers", type=int, default=d.workers,
                   help=f"bot processes, each with its own event loop (default {d.workers})")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (directions)")
    p.add_argument("--sample", type=float, default=d.sample,
                   help="bots that decode every update and check the state: a fraction "
                        f"below 1, else a count (default {d.sample:g}, at least one bot)")
    p.add_argument("--worker-cpus", default="",
                   help="pin workers to these CPUs, e.g. 1 or 1,2 (Linux)")
    p.add_argument("--json", dest="json_path", default="report.json",
                   help="write the JSON report here (default report.json; '' for none)")
    p.add_argument("--html", dest="html_path", default=None,
                   help="write the HTML report here (default: the JSON path with .html)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def json_object(text: str) -> dict[str, Any]:
    """``--options``: a JSON object, or a usage error that says what is wrong."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"must be a JSON object such as '{{\"world\": \"large\"}}', not {text!r}")
    return value


def options_from(args: argparse.Namespace) -> Options:
    cpus = tuple(int(c) for c in args.worker_cpus.split(",") if c.strip())
    return Options(url=args.url.rstrip("/"), players=args.players, per_room=args.per_room,
                   one_room=args.one_room, game=args.game, game_options=args.game_options,
                   ramp=args.ramp, duration=args.duration, warmup=args.warmup,
                   input_rate=args.input_rate, idle_players=args.idle_players,
                   spectators=args.spectators, workers=args.workers, seed=args.seed,
                   sample=args.sample, worker_cpus=cpus, quiet=args.quiet)


def write_reports(report: dict[str, Any], json_path: str | None, html_path: str | None
                  ) -> list[str]:
    from .report_html import render

    written = []
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=2) + "\n")
        written.append(json_path)
    if html_path:
        Path(html_path).write_text(render(report))
        written.append(html_path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.players < 1 or args.per_room < 1 or args.workers < 1 or args.duration <= 0:
        print("loadtest: --players, --per-room, --workers and --duration must be positive",
              file=sys.stderr)
        return 2
    if args.spectators < 0 or not 0 <= args.idle_players <= args.players:
        print("loadtest: --spectators must be >= 0, --idle-players from 0 to --players",
              file=sys.stderr)
        return 2
    opts = options_from(args)
    html_path = args.html_path
    if html_path is None and args.json_path:
        html_path = os.path.splitext(args.json_path)[0] + ".html"
    print(f"loadtest: {opts.players} bots playing {opts.game_line()} "
          f"({'one room' if opts.one_room else f'{opts.per_room} per room'})"
          + (f" of which {opts.idle_players} idle" if opts.idle_players else "")
          + (f", {opts.spectators} spectators" if opts.spectators else "")
          + f" on {opts.url}, "
          f"{opts.workers} worker(s), ramp {opts.ramp:g}/s, {opts.duration:g} s window",
          flush=True)
    try:
        report = run(opts)
    except LoadTestError as exc:
        print(f"loadtest: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print("\nsummary (measurement window)")
    print(summary_table(report))
    for path in write_reports(report, args.json_path, html_path):
        print(f"wrote {path}")
    return 0 if report["failed"] == 0 and report["disconnected"] == 0 else 3
