"""The parent of a load test: start workers, drive the phases, aggregate, build the report.

Phases: *ramp* (workers join their bots at the ramp rate), *warm-up* (everyone
is in; let queues settle), *window* (``duration`` seconds; every number in the
report's top-level keys comes from here), then *stop* (bots leave). The
timeline covers all of it, one point per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import aiohttp

from . import stats
from .options import Group, Options, game_line, plan_groups, sampled_indices, split_groups
from .procstat import tree_cpu_seconds
from .worker import WorkerPlan, worker_main


class LoadTestError(Exception):
    pass


class Runner:
    def __init__(self, opts: Options, *, server_pid: int | None = None,
                 on_point: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.opts = opts
        self.server_pid = server_pid  # read its CPU from /proc instead of /stats
        self.on_point = on_point
        self.timeline: list[dict[str, Any]] = []
        self.phase = "ramp"
        self.points: dict[int, list[dict[str, Any]]] = {}
        self.finals: list[dict[str, Any]] = []
        self.latest: dict[int, dict[str, Any]] = {}  # each worker's last progress
        self.all_in = asyncio.Event()
        self.finals_in = asyncio.Event()
        self.dead_workers = 0
        self.last_stats: dict[str, Any] | None = None
        self._conns: list[Connection] = []
        self._session: aiohttp.ClientSession | None = None

    # -- entry -------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        opts = self.opts
        async with aiohttp.ClientSession() as session:
            self._session = session
            if await self._get_stats() is None:
                raise LoadTestError(f"no gameserver answers GET {opts.url}/stats")
            groups = plan_groups(opts)
            if opts.one_room and groups:
                groups = [await self._create_room(groups[0])]
            workers = max(1, min(opts.workers, len(groups[0].bots) if opts.one_room
                                 else len(groups)))
            plans = split_groups(groups, workers)
            sampled = sampled_indices(opts.players, opts.sample)
            procs = self._start_workers(plans, sampled)
            try:
                return await self._drive(procs)
            finally:
                for conn in self._conns:
                    with contextlib.suppress(OSError, ValueError):
                        asyncio.get_running_loop().remove_reader(conn.fileno())
                for p in procs:
                    p.join(timeout=5)
                    if p.is_alive():
                        p.kill()

    async def _create_room(self, group: Group) -> Group:
        assert self._session is not None
        body = {"game": self.opts.game, "mode": "create", "name": f"bot{group.bots[0]}",
                "options": self.opts.create_options(len(group.bots))}
        async with self._session.post(f"{self.opts.url}/matchmake", json=body) as resp:
            data = await resp.json(content_type=None)
            if resp.status != 200:
                raise LoadTestError(f"could not create the room: {resp.status} {data}")
        return Group(group.bots, data["room_id"], data["ws_url"], group.spectators)

    def _start_workers(self, plans: list[list[Group]], sampled: frozenset[int]
                       ) -> list[Any]:
        # spawn, not fork: the parent holds a running event loop and open sockets
        ctx = mp.get_context("spawn")
        loop = asyncio.get_running_loop()
        procs = []
        for w, groups in enumerate(plans):
            if not groups:
                continue
            parent, child = ctx.Pipe()
            plan = WorkerPlan(len(procs), self.opts, groups, sampled)
            proc = ctx.Process(target=worker_main, args=(child, plan), daemon=True,
                               name=f"loadtest-worker-{w}")
            proc.start()
            child.close()
            self._conns.append(parent)
            loop.add_reader(parent.fileno(), self._receive, parent)
            # uvloop's add_reader sets O_NONBLOCK; Connection.send/recv need a blocking fd
            # (a progress report is larger than the socket buffer)
            os.set_blocking(parent.fileno(), True)
            procs.append(proc)
        return procs

    # -- phases ------------------------------------------------------------------

    async def _drive(self, procs: list[Any]) -> dict[str, Any]:
        opts = self.opts
        n = len(self._conns)
        self.ready = 0
        deadline = time.monotonic() + 60
        while self.ready < n:
            if time.monotonic() > deadline or self.dead_workers:
                raise LoadTestError("workers did not start")
            await asyncio.sleep(0.02)
        self.t0 = time.monotonic() + 0.1
        self._broadcast(("go", self.t0))
        ramp_time = opts.players / opts.ramp if opts.ramp > 0 else 0.0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.all_in.wait(), ramp_time + opts.connect_timeout + 10)
        self.phase = "warmup"
        await asyncio.sleep(opts.warmup)
        cpu0 = await self._server_cpu()
        self._broadcast(("mark",))
        t_mark = time.monotonic()
        self.phase = "window"
        await asyncio.sleep(opts.duration)
        cpu1 = await self._server_cpu()
        end_stats = await self._get_stats()
        self._broadcast(("stop",))
        window = time.monotonic() - t_mark
        self.phase = "stop"
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.finals_in.wait(), 30)
        return self._report(window, cpu0, cpu1, end_stats)

    def _broadcast(self, msg: tuple[Any, ...]) -> None:
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.send(msg)

    def _receive(self, conn: Connection) -> None:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(conn.fileno())
            self.dead_workers += 1
            if len(self.finals) + self.dead_workers >= len(self._conns):
                self.finals_in.set()
            return
        kind = msg[0]
        if kind == "ready":
            self.ready += 1
        elif kind == "progress":
            report = msg[1]
            self.latest[report["worker"]] = report
            batch = self.points.setdefault(report["k"], [])
            batch.append(report)
            if len(batch) == len(self._conns) - self.dead_workers:
                self._point(self.points.pop(report["k"]))
        elif kind == "final":
            self.finals.append(msg[1])
            if len(self.finals) + self.dead_workers >= len(self._conns):
                self.finals_in.set()

    # -- one point a second --------------------------------------------------------

    def _point(self, reports: list[dict[str, Any]]) -> None:
        k = reports[0]["k"]
        lat = array("f")
        for r in reports:
            lat.frombytes(r["latencies"])
        summary = stats.latency_summary(lat)
        connected = sum(r["connected"] for r in reports)
        joined = sum(r["joined"] for r in reports)
        failed = sum(r["failed"] for r in reports)
        updates = sum(r["updates"] for r in reports)
        spectators = sum(r["spectators_connected"] for r in reports)
        spec_updates = sum(r["spectator_updates"] for r in reports)
        tick = _tick_summary(self.last_stats)
        point = {
            "t": k, "phase": self.phase, "connected": connected, "failed": failed,
            "disconnected": sum(r["disconnected"] for r in reports),
            "updates_per_s": updates,
            "updates_per_client_s": round(updates / connected, 2) if connected else 0.0,
            "spectators_connected": spectators,
            "spectator_updates_per_s": spec_updates,
            "spectator_bytes_in_per_s": sum(r["spectator_bytes_in"] for r in reports),
            "bytes_in_per_s": sum(r["bytes_in"] for r in reports),
            "bytes_out_per_s": sum(r["bytes_out"] for r in reports),
            "latency_p50": summary["p50"], "latency_p90": summary["p90"],
            "latency_p99": summary["p99"],
            "latency_max": max((r["max_latency_ms"] for r in reports), default=0.0) or None,
            "tick_p50": tick["p50"], "tick_p99": tick["p99"],
            "loadgen_cpu_percent": round(max(r["cpu_percent"] for r in reports), 1),
            "send_lag_ms": round(max(r["send_lag_ms"] for r in reports), 2),
        }
        self.timeline.append(point)
        if joined + failed >= self.opts.players + self.opts.spectators:
            self.all_in.set()
        if not self.opts.quiet:
            print(progress_line(point, self.opts.players, self.opts.spectators), flush=True)
        if self.on_point is not None:
            self.on_point(point)
        asyncio.get_running_loop().create_task(self._refresh_stats())

    async def _refresh_stats(self) -> None:
        data = await self._get_stats()
        if data is not None:
            self.last_stats = data

    async def _get_stats(self) -> dict[str, Any] | None:
        assert self._session is not None
        try:
            async with self._session.get(f"{self.opts.url}/stats",
                                         timeout=aiohttp.ClientTimeout(total=5)) as resp:
                if resp.status != 200:
                    return None
                return await resp.json()
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
            return None

    async def _server_cpu(self) -> float | None:
        if self.server_pid is not None:
            try:
                return tree_cpu_seconds(self.server_pid)  # with --workers: all of them
            except OSError:
                return None
        data = await self._get_stats()
        if data is None or "process" not in data:
            return None
        return data["process"]["cpu_user_s"] + data["process"]["cpu_system_s"]

    # -- the report ----------------------------------------------------------------

    def _report(self, window: float, cpu0: float | None, cpu1: float | None,
                end_stats: dict[str, Any] | None) -> dict[str, Any]:
        opts = self.opts
        finals = self.finals
        lat = array("f")
        rates: list[float] = []
        sample_rates: list[float] = []
        bytes_in: list[float] = []
        bytes_out: list[float] = []
        updates_total = idle_updates = spec_updates = 0
        spec_rates: list[float] = []
        spec_bytes_in: list[float] = []
        for f in finals:
            lat.frombytes(f["latencies"])
            w = f["window_s"] or window
            for _index, sampled, updates, b_in, b_out, kind in f["clients"]:
                if kind == "spectator":  # apart: every top-level number is the players'
                    spec_rates.append(updates / w)
                    spec_bytes_in.append(b_in / w)
                    spec_updates += updates
                    continue
                if kind == "idle":
                    idle_updates += updates
                rates.append(updates / w)
                if sampled:
                    sample_rates.append(updates / w)
                bytes_in.append(b_in / w)
                bytes_out.append(b_out / w)
                updates_total += updates
        failures: Counter[str] = Counter()
        disconnects: Counter[str] = Counter()
        sample: Counter[str] = Counter()
        for f in finals:
            failures.update(f["failures"])
            disconnects.update(f["disconnects"])
            sample.update(f["sample"])
        server_cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
        tick = _tick_summary(end_stats)
        rooms = end_stats["rooms"] if end_stats else []
        rates_achieved = [r["achieved_rate"] for r in rooms if r.get("achieved_rate")]
        in_window = [p for p in self.timeline if p["phase"] == "window"]
        return {
            "connected": sum(f["joined"] for f in finals),
            "failed": sum(failures.values()),
            "disconnected": sum(disconnects.values()),
            "latency_ms": stats.latency_summary(lat),
            "updates_per_s": stats.rate_summary(rates),
            "bytes_in_per_client_s": _r(stats.mean(bytes_in)),
            "bytes_out_per_client_s": _r(stats.mean(bytes_out)),
            "server_tick_ms": tick,
            "duration_s": round(window, 3),
            "options": opts.to_dict(),
            "players": opts.players,
            "clients_in_window": len(rates),
            "updates_total": updates_total,
            "idle_players": opts.idle_players,
            "idle_updates_total": idle_updates,  # of updates_total: players sending no inputs
            "spectators": {
                "requested": opts.spectators,
                "connected": sum(f.get("spectators_joined", 0) for f in finals),
                "clients_in_window": len(spec_rates),
                "updates_total": spec_updates,
                "updates_per_s": stats.rate_summary(spec_rates),
                "bytes_in_per_client_s": _r(stats.mean(spec_bytes_in)),
                "failed": sum(v for k, v in failures.items() if k.startswith("spectator:")),
                "disconnected": sum(v for k, v in disconnects.items()
                                    if k.startswith("spectator:")),
            },
            "failures": dict(failures),
            "disconnects": dict(disconnects),
            "server_errors": sum(f["server_errors"] for f in finals),
            "server": {
                "cpu_s": _r(server_cpu, 4),
                "cpu_source": "/proc" if self.server_pid is not None else "/stats",
                "cpu_percent": _r(100 * server_cpu / window if server_cpu is not None else None),
                "cpu_us_per_player_update": _r(cpu_us_per_update(server_cpu, updates_total)),
                "rooms": len(rooms),
                "achieved_rate_min": min(rates_achieved) if rates_achieved else None,
                "dropped_ticks": sum(r.get("dropped_ticks", 0) for r in rooms),
                "tick_overruns": sum(r.get("ticks", {}).get("overruns", 0) for r in rooms),
            },
            "sample": {
                "bots": sample["bots"],
                "updates_per_s": stats.rate_summary(sample_rates),
                "replica_errors": sample["replica_errors"],
                "avatar_checks": sample["checked"],
                "avatar_mismatches": sample["mismatches"],
                "bytes_per_moving_entity": _r(sample["delta_bytes"] / sample["moved"]
                                              if sample["moved"] else None),
            },
            "loadgen": {
                "workers": len(self._conns),
                "dead_workers": self.dead_workers,
                "cpu_percent_max": max((p["loadgen_cpu_percent"] for p in in_window),
                                       default=None),
                "send_lag_ms_max": max((p["send_lag_ms"] for p in in_window), default=None),
            },
            "timeline": self.timeline,
        }


def cpu_us_per_update(cpu_s: float | None, updates: int) -> float | None:
    """Server CPU microseconds per update delivered to one player."""
    if cpu_s is None or updates <= 0:
        return None
    return cpu_s * 1e6 / updates


def _tick_summary(data: dict[str, Any] | None) -> dict[str, float | None]:
    """Across rooms: the median of their tick p50s and the worst of their p99s."""
    rooms = data.get("rooms", []) if data else []
    p50s = [r["ticks"]["p50_ms"] for r in rooms if r.get("ticks", {}).get("count")]
    p99s = [r["ticks"]["p99_ms"] for r in rooms if r.get("ticks", {}).get("count")]
    return {"p50": _r(stats.median(p50s)), "p99": _r(max(p99s) if p99s else None)}


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def human_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


def progress_line(p: dict[str, Any], players: int, spectators: int = 0) -> str:
    watching = (f" spectators {p['spectators_connected']}/{spectators}"
                f" ({p['spectator_updates_per_s']} updates/s)" if spectators else "")
    return (f"[{p['t']:>4}s {p['phase']:<6}] connected {p['connected']}/{players}{watching}"
            f" failed {p['failed']}  updates {p['updates_per_s']}/s"
            f" ({p['updates_per_client_s']:.1f}/client)"
            f"  latency p50 {_fmt(p['latency_p50'])} p99 {_fmt(p['latency_p99'])} ms"
            f"  in {human_bytes(p['bytes_in_per_s'])}/s out {human_bytes(p['bytes_out_per_s'])}/s"
            f"  tick p99 {_fmt(p['tick_p99'], '.2f')} ms  gen cpu {p['loadgen_cpu_percent']:.0f}%")


def summary_table(r: dict[str, Any]) -> str:
    lat, ups, srv, smp = r["latency_ms"], r["updates_per_s"], r["server"], r["sample"]
    opts = r.get("options", {})
    rows = [
        ("game", game_line(opts.get("game", "-"), opts.get("game_options"))),
        ("clients", f"{r['connected']} connected, {r['failed']} failed, "
                    f"{r['disconnected']} disconnected ({r['clients_in_window']} in window)"),
        ("window", f"{r['duration_s']:.1f} s"),
        ("latency ms", f"p50 {_fmt(lat['p50'])}  p90 {_fmt(lat['p90'])}  "
                       f"p99 {_fmt(lat['p99'])}  max {_fmt(lat['max'])}  (n={lat['samples']})"),
        ("updates/s per client", f"median {_fmt(ups['median'], '.2f')}  "
                                 f"p1 {_fmt(ups['p1'], '.2f')}  min {_fmt(ups['min'], '.2f')}"),
        ("sampled bots", f"{smp['bots']}, median {_fmt(smp['updates_per_s']['median'], '.2f')}"
                         f" updates/s, {smp['replica_errors']} replica errors, "
                         f"{smp['avatar_mismatches']}/{smp['avatar_checks']} avatar mismatches"),
        ("bytes/s per client", f"in {human_bytes(r['bytes_in_per_client_s'])}  "
                               f"out {human_bytes(r['bytes_out_per_client_s'])}"),
        ("bytes per moving entity", _fmt(smp["bytes_per_moving_entity"], ".2f")),
        ("server tick ms", f"p50 {_fmt(r['server_tick_ms']['p50'], '.3f')}  "
                           f"p99 {_fmt(r['server_tick_ms']['p99'], '.3f')}"),
        ("server cpu", f"{_fmt(srv['cpu_percent'])}% of a core, "
                       f"{_fmt(srv['cpu_us_per_player_update'], '.2f')} us per player-update"),
        ("load generator", f"{r['loadgen']['workers']} workers, cpu max "
                           f"{_fmt(r['loadgen']['cpu_percent_max'], '.0f')}%, send lag max "
                           f"{_fmt(r['loadgen']['send_lag_ms_max'])} ms"),
    ]
    spec = r.get("spectators")
    if spec and spec["requested"]:
        sups = spec["updates_per_s"]
        rows.insert(4, ("spectators", f"{spec['connected']}/{spec['requested']} connected, "
                        f"{spec['updates_total']} updates in window, median "
                        f"{_fmt(sups['median'], '.2f')} min {_fmt(sups['min'], '.2f')}/s, "
                        f"in {human_bytes(spec['bytes_in_per_client_s'])}/s each"))
    if r["failures"]:
        rows.append(("failures", ", ".join(f"{k}: {v}" for k, v in r["failures"].items())))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def run(opts: Options, *, server_pid: int | None = None) -> dict[str, Any]:
    """Run one load test to completion on a fresh event loop; the report."""
    runner = Runner(opts, server_pid=server_pid)
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(runner.run())
    if sys.platform == "win32":  # pragma: no cover
        return asyncio.run(runner.run())
    return uvloop.run(runner.run())
