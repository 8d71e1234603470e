"""``python -m loadtest.bench``: the standard scenarios against a server this runner starts.

S1: rooms of 8 players. S2: one arena room of 50, 100, 200 and 400 players.
S3: one arena room of 400 players in the large world (``options: {"world":
"large"}``, 8000 x 8000 units), where each player sees only what is near its
avatar (per-player views, issue 14). ``S2@N`` and ``S3@N`` take any N up to the
server's ``--max-players``. All at the server's default 20 Hz with one input per
tick per player. Each run
gets a fresh server, pinned to CPU 0 with ``taskset`` when the machine has two
or more CPUs, while the bots run on the others. The server's CPU time comes
from ``/proc/PID/stat`` over the measurement window only (after the ramp and
the warm-up). Repeated runs are summarised by their medians.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from . import stats
from .options import Options
from .runner import run

TICK_RATE = 20.0
MAX_PLAYERS = 500  # the server's --max-players: the largest one-room scenario
SERVER_ARGS = ("--port", "0", "--max-players", str(MAX_PLAYERS), "--log-level", "warning")
LARGE_WORLD = {"world": "large"}


@dataclass(frozen=True)
class Scenario:
    name: str
    players: int
    per_room: int | None  # None: one room
    game_options: dict[str, Any] = field(default_factory=dict)  # loadtest --options

    def options(self, url: str, duration: float, warmup: float, seed: int,
                cpus: tuple[int, ...]) -> Options:
        return Options(url=url, players=self.players, per_room=self.per_room or 8,
                       one_room=self.per_room is None, game_options=dict(self.game_options),
                       ramp=200.0, duration=duration, warmup=warmup, input_rate=TICK_RATE,
                       workers=1, seed=seed, sample=0.02, worker_cpus=cpus, quiet=True)


def one_room(kind: str, n: int) -> Scenario:
    """``S2@N`` (the small world) or ``S3@N`` (the large one): one arena room of N."""
    if kind == "S3":
        return Scenario(f"S3 one room of {n}, large world", n, None, dict(LARGE_WORLD))
    return Scenario(f"S2 one room of {n}", n, None)


def scenarios(s1_players: int) -> dict[str, Scenario]:
    """The standard scenarios, by the names ``--scenarios`` takes (see also :func:`lookup`)."""
    out = {"S1": Scenario(f"S1 ({s1_players} in rooms of 8)", s1_players, 8)}
    for n in (50, 100, 200, 400):
        out[f"S2@{n}"] = one_room("S2", n)
    out["S3"] = one_room("S3", 400)
    return out


def lookup(key: str, s1_players: int) -> Scenario | None:
    """A scenario by name: a standard one, or ``S2@N``/``S3@N`` for 1 <= N <= MAX_PLAYERS."""
    found = scenarios(s1_players).get(key)
    m = re.fullmatch(r"(S2|S3)@([1-9][0-9]{0,5})", key)
    if found is None and m and int(m.group(2)) <= MAX_PLAYERS:
        found = one_room(m.group(1), int(m.group(2)))
    return found


# -- pure helpers (tested) --------------------------------------------------------

def row_from_report(report: dict[str, Any], tick_rate: float = TICK_RATE) -> dict[str, Any]:
    """The numbers the table shows, from one load-test report."""
    ups = report["updates_per_s"]
    tick = report["server_tick_ms"]
    return {
        "cpu_us": report["server"]["cpu_us_per_player_update"],
        "cpu_percent": report["server"]["cpu_percent"],
        "tick_p50": tick["p50"],
        "tick_p99": tick["p99"],
        "lat_p50": report["latency_ms"]["p50"],
        "lat_p99": report["latency_ms"]["p99"],
        "bytes_client_s": report["bytes_in_per_client_s"],
        "bytes_entity": report["sample"]["bytes_per_moving_entity"],
        "ups_min": ups["min"],
        "ups_median": ups["median"],
        "gen_cpu": report["loadgen"]["cpu_percent_max"],
        "stalls": machine_stalls(report),
        "held": service_level_held(report, tick_rate),
    }


def machine_stalls(report: dict[str, Any], lag_ms: float = 50.0) -> int:
    """Seconds of the window in which the bots' own input timer woke over ``lag_ms`` late.

    The bots run on their own CPU far below saturation, so a late timer there means
    the machine itself stalled (other work, the hypervisor): the server, on the
    other CPU, is very likely stalled in the same second, and its latency and tick
    numbers for that run are the machine's, not the server's.
    """
    return sum(1 for p in report.get("timeline", [])
               if p["phase"] == "window" and (p.get("send_lag_ms") or 0) > lag_ms)


def service_level_held(report: dict[str, Any], tick_rate: float = TICK_RATE) -> bool:
    """Every client got >= 19 updates/s (at 20 Hz: 95% of the rate), tick p99 under half
    the tick interval, and nobody failed or dropped."""
    ups_min = report["updates_per_s"]["min"]
    p99 = report["server_tick_ms"]["p99"]
    return (report["failed"] == 0 and report["disconnected"] == 0
            and ups_min is not None and ups_min >= 0.95 * tick_rate
            and p99 is not None and p99 < 500.0 / tick_rate)


def median_row(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Field-wise median of repeated runs; ``held`` becomes ``"k/n"`` runs that held."""
    out: dict[str, Any] = {}
    for key in rows[0]:
        if key == "held":
            out[key] = f"{sum(bool(r[key]) for r in rows)}/{len(rows)}"
        else:
            values = [r[key] for r in rows if r[key] is not None]
            out[key] = stats.median(values)
    return out


NOTES_MARKER = "<!-- notes: kept below this line when the runner rewrites the file -->"


def keep_notes(generated: str, previous: str) -> str:
    """The generated document plus the hand-written notes of the previous one, if any."""
    _, found, notes = previous.partition(NOTES_MARKER)
    return generated.rstrip("\n") + "\n\n" + NOTES_MARKER + (notes if found else "\n")


def parse_serving_line(line: str) -> int | None:
    """The port from ``gameserver: serving on http://127.0.0.1:PORT/``."""
    m = re.search(r"serving on https?://[^\s/]*:(\d+)/", line)
    return int(m.group(1)) if m else None


# -- running ----------------------------------------------------------------------

class Server:
    """A gameserver subprocess, pinned to ``cpu`` when possible.

    With ``--workers N`` in ``extra`` it is a supervisor: ``url`` is the first
    worker's, and its CPU is read over the process tree.
    """

    def __init__(self, cpu: int | None, extra: Sequence[str] = (), workers: int = 1) -> None:
        cmd = [sys.executable, "-m", "gameserver", *SERVER_ARGS, *extra]
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu), *cmd]
        self.command = cmd
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)  # a checkout's gameserver/
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 20
        ports: list[int] = []
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            port = parse_serving_line(line)
            if port is not None:
                ports.append(port)
            if len(ports) == workers:
                self.url = f"http://127.0.0.1:{ports[0]}"
                return
        self.stop()
        raise RuntimeError(f"the server did not start: {' '.join(cmd)}")

    @property
    def pid(self) -> int:
        return self.proc.pid  # taskset execs the server: same pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def cpu_plan() -> tuple[int | None, tuple[int, ...]]:
    """(server CPU, bot CPUs): the first CPU for the server, the rest for the bots."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return None, ()
    if len(cpus) < 2 or shutil.which("taskset") is None:
        return None, ()
    return cpus[0], tuple(cpus[1:])


def run_scenario(sc: Scenario, duration: float, warmup: float, seed: int,
                 server_cpu: int | None, bot_cpus: tuple[int, ...],
                 extra: Sequence[str] = (), workers: int = 1) -> dict[str, Any]:
    server = Server(server_cpu, extra, workers)
    try:
        return run(sc.options(server.url, duration, warmup, seed, bot_cpus),
                   server_pid=server.pid)
    finally:
        server.stop()


def conditions() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for pkg in ("aiohttp", "uvloop", "msgpack"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    commit = "unknown"
    try:
        root = Path(__file__).resolve().parent.parent
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "gameserver"],
                               capture_output=True, text=True).stdout.strip()
        commit += " + uncommitted changes in gameserver/" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        pass
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu, "cpus": str(os.cpu_count()),
        "kernel": platform.release(),
        "python": platform.python_version(),
        **versions,
        "commit": commit,
    }


# -- the document -----------------------------------------------------------------

COLUMNS = (
    ("scenario", "Scenario"), ("cpu_us", "Server CPU µs / player-update"),
    ("cpu_percent", "Server CPU %"), ("tick_p50", "Tick p50 ms"), ("tick_p99", "Tick p99 ms"),
    ("lat_p50", "Latency p50 ms"), ("lat_p99", "Latency p99 ms"),
    ("bytes_client_s", "B/s per client"), ("bytes_entity", "B per moving entity"),
    ("ups_min", "Min updates/s"), ("gen_cpu", "Bot CPU %"),
    ("stalls", "Stalled s"), ("held", "Service level held"),
)


def _cell(value: Any, key: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if key in ("bytes_client_s", "cpu_percent", "gen_cpu", "stalls"):
        return f"{value:,.0f}"
    if key in ("tick_p50", "tick_p99"):
        return f"{value:.2f}"
    return f"{value:.1f}"


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |",
             "|" + "|".join("---" if k == "scenario" else "---:" for k, _ in COLUMNS) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r.get(k), k) for k, _ in COLUMNS) + " |")
    return "\n".join(lines)


def render_markdown(rows: Sequence[dict[str, Any]], cond: dict[str, str], command: str,
                    repeats: int, duration: float, pinned: str) -> str:
    by = {r["key"]: r for r in rows}

    def target(key: str, field: str, limit: float) -> str:
        r = by.get(key)
        if r is None or r.get(field) is None:
            return "not run"
        return f"{r[field]:.1f}: {'met' if r[field] <= limit else 'NOT met'}"

    lat_rows = [r for r in rows if r["key"].startswith("S2")]
    worst_p50 = max((r["lat_p50"] for r in lat_rows if r["lat_p50"] is not None), default=None)
    worst_p99 = max((r["lat_p99"] for r in lat_rows if r["lat_p99"] is not None), default=None)
    worst_b = max((r["bytes_entity"] for r in lat_rows if r["bytes_entity"] is not None),
                  default=None)

    def limit(value: float | None, lim: float) -> str:
        if value is None:
            return "not run"
        return f"{value:.1f}: {'met' if value <= lim else 'NOT met'}"

    def views() -> str:
        out = []
        for r in rows:
            if not r["key"].startswith("S3"):
                continue
            small = by.get(f"S2@{r['key'].partition('@')[2] or 400}")  # the same room size
            mine = r.get("bytes_client_s")
            theirs = small.get("bytes_client_s") if small else None
            text = f"{r['scenario']}: {_cell(mine, 'bytes_client_s')} B/s"
            if small and mine is not None and theirs:
                text += f" against {theirs:,.0f} in {small['scenario']} ({mine / theirs:.0%})"
            out.append(text)
        return "; ".join(out) or "not run"

    return f"""# Benchmarks

Generated by `python -m loadtest.bench`; rerun it to refresh this file. Numbers are
medians of {repeats} run(s) per scenario, each against a fresh server, with a
{duration:g} s measurement window after the ramp-up and a warm-up second.

## Conditions

- Date: {cond['date']}; code: {cond['commit']}
- CPU: {cond['cpu']}, {cond['cpus']} CPUs; Linux {cond['kernel']}
- Python {cond['python']}, aiohttp {cond['aiohttp']}, uvloop {cond['uvloop']},
  msgpack {cond['msgpack']}
- {pinned}
- Every bot sends one input per tick (20/s) with a sequence number and changes
  direction about once a second; 2% of the bots decode every update and check
  their own avatar against the game's movement rule; the rest read the input ack
  from the first bytes of each frame.
- S3 is S2's room of 400 in arena's large world (`options: {{"world": "large"}}`):
  8000 by 8000 units and up to 1600 orbs, the avatars spawned at random over it.
  Each player sees the entities in the 3 by 3 cells of 800 units around its avatar
  (per-player views, issue 14), so updates carry view `parts`; the sampled bots
  decode and apply them, and count their changes in *B per moving entity*.
- **The machine is shared and noisy**: it is a 2-CPU virtual machine that other
  work runs on at the same time, so expect a few CPU points of run-to-run noise;
  CPU time is read from `/proc/PID/stat` with a 10 ms resolution.

## Command

```
{command}
```

Each run starts `python -m gameserver {' '.join(SERVER_ARGS)}` and the equivalent of
`python -m loadtest --url URL --players N (--per-room 8 | --one-room) --ramp 200
--duration {duration:g} --input-rate 20 --workers 1 --sample 0.02`, with
`--options '{{"world": "large"}}'` for S3.

## Results

{markdown_table(rows)}

- *Server CPU µs / player-update*: server CPU seconds (user + system) in the window
  divided by the updates all clients received in it. It includes handling every
  client's 20 inputs/s, so it is the whole cost of one player for one tick.
- *Tick*: the server's own tick work (simulate, encode, send to all) as `/stats`
  reports it; for S1 the median room's p50 and the worst room's p99.
- *Latency*: input sent to the first update acknowledging it, on the bot's clock.
- *B/s per client*: bytes received per client per second, WebSocket framing included.
- *B per moving entity*: delta payload bytes divided by the entities changed in them
  (sampled bots), events and headers included.
- *Service level held*: every client received >= 19 updates/s, tick p99 under half
  the tick interval (25 ms), no failures or drops; "k/n" runs.
- *Bot CPU %*: the load generator's worst second; near 100% would mean the
  generator, not the server, limited the run.
- *Stalled s*: seconds of the window in which the bots' input timer woke more than
  50 ms late although their CPU was far from busy: the machine stalled (other
  jobs on the shared VM). Runs with stalls show them in latency p99, tick p99 and
  min updates/s; the CPU-per-update column is CPU time and is not affected.

## Against the targets (issue 4)

- Server CPU per player-update in S2 at 200, <= 10 µs: {target('S2@200', 'cpu_us', 10)}
- Server CPU per player-update in S1, <= 15 µs: {target('S1', 'cpu_us', 15)}
- Latency p50 <= 30 ms up to 400 players in one room (worst S2 median): {limit(worst_p50, 30)}
- Latency p99 <= 60 ms up to 400 players in one room (worst S2 median): {limit(worst_p99, 60)}
- Bytes per moving entity <= 6 in S2 (worst): {limit(worst_b, 6)}
- Bytes per client per second with per-player views (issue 14), S3 against S2 at the
  same size: {views()}
"""


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest.bench", description=__doc__)
    p.add_argument("--quick", action="store_true",
                   help="one short run per scenario (4 s windows): a smoke test, not a result")
    p.add_argument("--repeats", type=int, default=3, help="runs per scenario (default 3)")
    p.add_argument("--duration", type=float, default=15.0,
                   help="measurement window per run, seconds (default 15)")
    p.add_argument("--scenarios", default="S1,S2@50,S2@100,S2@200,S2@400,S3",
                   help="comma-separated scenarios: S1, S2@N (one room of N, e.g. S2@400), "
                        "S3 (one room of 400 in arena's large world) or S3@N "
                        "(default S1,S2@50,S2@100,S2@200,S2@400,S3)")
    p.add_argument("--s1-players", type=int, default=200,
                   help="players in S1, in rooms of 8 (default 200)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="docs/BENCHMARKS.md",
                   help="Markdown file to write ('' for none; default docs/BENCHMARKS.md)")
    p.add_argument("--json", dest="json_path", default="",
                   help="also write every run's full report here")
    p.add_argument("--workers", type=int, default=1,
                   help="serve with gameserver --workers N (N > 1: on --redis, or else the "
                        "supervisor's private Redis; the server is then not pinned, its CPU "
                        "is the sum over its processes, and the tick columns are the first "
                        "worker's)")
    p.add_argument("--redis", default="",
                   help="Redis URL for --workers > 1 (default: the supervisor's private one)")
    args = p.parse_args(argv)
    extra: tuple[str, ...] = ()
    if args.workers > 1:
        extra = ("--workers", str(args.workers), "--cluster-prefix", f"bench{os.getpid()}",
                 *(("--redis", args.redis) if args.redis else ()))
    repeats, duration, warmup = args.repeats, args.duration, 1.0
    if args.quick:
        repeats, duration = 1, 4.0
    keys = [k.strip() for k in args.scenarios.split(",") if k.strip()]
    table = {k: sc for k in keys if (sc := lookup(k, args.s1_players)) is not None}
    unknown = [k for k in keys if k not in table]
    if unknown:
        p.error(f"unknown scenarios: {', '.join(unknown)} (S1, S2@N or S3@N with N from 1 "
                f"to {MAX_PLAYERS}, S3 meaning S3@400)")
    server_cpu, bot_cpus = cpu_plan()
    if args.workers > 1:  # the workers use every CPU, the bots' too
        server_cpu = None
    if bot_cpus and args.workers > 1:
        os.sched_setaffinity(0, bot_cpus)
        pinned = (f"Server: {args.workers} worker processes, not pinned (every CPU); the load "
                  f"generator (one worker process) on CPU {','.join(map(str, bot_cpus))}.")
    elif bot_cpus:
        os.sched_setaffinity(0, bot_cpus)  # the runner and its workers stay off the server's CPU
        pinned = (f"Server pinned to CPU {server_cpu} with `taskset`; the load generator "
                  f"(one worker process) on CPU {','.join(map(str, bot_cpus))}.")
    else:
        pinned = "No CPU pinning (fewer than 2 CPUs or no `taskset`): server and bots share."
    rows = []
    raw: dict[str, list[dict[str, Any]]] = {}
    for key in keys:
        sc = table[key]
        runs = []
        for i in range(repeats):
            report = run_scenario(sc, duration, warmup, args.seed + i, server_cpu, bot_cpus,
                                  extra, args.workers)
            row = row_from_report(report)
            runs.append(row)
            raw.setdefault(key, []).append(report)
            print(f"{key} run {i + 1}/{repeats}: " + ", ".join(
                f"{k} {_cell(v, k)}" for k, v in row.items()), flush=True)
        rows.append({"key": key, "scenario": sc.name, **median_row(runs)})
    print()
    print(markdown_table(rows))
    command = "python -m loadtest.bench " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.out:
        out = Path(args.out)
        text = render_markdown(rows, conditions(), command.strip(), repeats, duration, pinned)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(keep_notes(text, out.read_text() if out.exists() else ""))
        print(f"wrote {args.out}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(raw, indent=1))
        print(f"wrote {args.json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
