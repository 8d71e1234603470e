"""``python -m loadtest.spectators``: what a spectator costs the server (issue 17).

One interleaved series of three cases, each run against a fresh server pinned
to CPU 0 (the bots on the other CPUs), as :mod:`loadtest.bench` does:

- ``base``: one arena room of 8 players, each sending 20 inputs/s;
- ``spec``: the same 8 players plus ``--spectators`` spectators of that room;
- ``idle``: the same 8 players plus as many extra players that send no inputs.

Server CPU comes from ``/proc`` over the measurement window and is taken per
second of window, so runs compare whatever their exact window:

- µs per spectator-update   = (CPU/s(spec) - CPU/s(base)) / spectator-updates/s
- µs per idle-player-update = (CPU/s(idle) - CPU/s(base)) / idle-player-updates/s

Each repeat runs the three cases in a rotated order. The result is derived from
the medians of each case, and also per repeat (each with its own ``base``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import stats
from .bench import TICK_RATE, Server, conditions, cpu_plan, machine_stalls
from .options import Options
from .runner import run

PLAYERS = 8
CASES = ("base", "spec", "idle")


def case_options(case: str, url: str, extra: int, duration: float, seed: int,
                 cpus: tuple[int, ...]) -> Options:
    """The load test of one case: 8 players in one room, plus ``extra`` watchers or idlers."""
    players = PLAYERS + (extra if case == "idle" else 0)
    return Options(url=url, players=players, one_room=True, ramp=200.0, duration=duration,
                   warmup=1.0, input_rate=TICK_RATE, workers=1, seed=seed, sample=1,
                   idle_players=extra if case == "idle" else 0,
                   spectators=extra if case == "spec" else 0, worker_cpus=cpus, quiet=True)


def run_row(case: str, report: dict[str, Any]) -> dict[str, Any]:
    """One run's numbers, per second of its window."""
    window = report["duration_s"]
    spec = report["spectators"]
    cpu_s = report["server"]["cpu_s"]
    return {
        "case": case,
        "cpu_per_s": cpu_s / window if cpu_s is not None else None,
        "player_ups": (report["updates_total"] - report["idle_updates_total"]) / window,
        "idle_ups": report["idle_updates_total"] / window,
        "spec_ups": spec["updates_total"] / window,
        "clients_ok": report["failed"] == 0 and report["disconnected"] == 0
        and report["connected"] == report["players"]
        and spec["connected"] == spec["requested"],
        "min_ups": min((v for v in (report["updates_per_s"]["min"],
                                    spec["updates_per_s"]["min"]) if v is not None),
                       default=None),
        "tick_p50": report["server_tick_ms"]["p50"],
        "stalls": machine_stalls(report),
    }


def derive(base: float, case: float, ups: float) -> float | None:
    """Server CPU µs per extra update: the CPU/s the case adds over the base, per update/s."""
    return (case - base) * 1e6 / ups if ups > 0 else None


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Medians per case, the two costs from them and per repeat, and their ratio."""
    by: dict[str, list[dict[str, Any]]] = {c: [r for r in rows if r["case"] == c] for c in CASES}
    med = {c: {k: stats.median([r[k] for r in by[c] if r[k] is not None])
               for k in ("cpu_per_s", "player_ups", "idle_ups", "spec_ups")} for c in CASES}
    spec_us = derive(med["base"]["cpu_per_s"], med["spec"]["cpu_per_s"], med["spec"]["spec_ups"])
    idle_us = derive(med["base"]["cpu_per_s"], med["idle"]["cpu_per_s"], med["idle"]["idle_ups"])
    per_repeat = []
    for b, s, i in zip(by["base"], by["spec"], by["idle"], strict=False):
        per_repeat.append({"spec_us": derive(b["cpu_per_s"], s["cpu_per_s"], s["spec_ups"]),
                           "idle_us": derive(b["cpu_per_s"], i["cpu_per_s"], i["idle_ups"])})
    player_us = (med["base"]["cpu_per_s"] * 1e6 / med["base"]["player_ups"]
                 if med["base"]["player_ups"] else None)
    return {
        "medians": med, "spec_us": spec_us, "idle_us": idle_us,
        "ratio": spec_us / idle_us if spec_us is not None and idle_us else None,
        "per_repeat": per_repeat,
        "spec_us_median_of_repeats": stats.median(
            [p["spec_us"] for p in per_repeat if p["spec_us"] is not None]),
        "idle_us_median_of_repeats": stats.median(
            [p["idle_us"] for p in per_repeat if p["idle_us"] is not None]),
        "base_player_us": player_us,
    }


def _f(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def markdown(rows: Sequence[dict[str, Any]], s: dict[str, Any]) -> str:
    lines = ["| Repeat | Case | Server CPU % | Player updates/s | Idle-player updates/s "
             "| Spectator updates/s | Min updates/s | Tick p50 ms | Stalled s | Clients OK |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|:---:|"]
    for r in rows:
        lines.append(f"| {r['repeat']} | {r['case']} | {_f(r['cpu_per_s'] * 100)} "
                     f"| {r['player_ups']:.0f} | {r['idle_ups']:.0f} | {r['spec_ups']:.0f} "
                     f"| {_f(r['min_ups'])} | {_f(r['tick_p50'], '.3f')} | {r['stalls']} "
                     f"| {'yes' if r['clients_ok'] else 'NO'} |")
    m = s["medians"]
    lines += ["", "| Case | median Server CPU % | median spectator updates/s "
              "| median idle-player updates/s |", "|---|---:|---:|---:|"]
    for c in CASES:
        lines.append(f"| {c} | {_f(m[c]['cpu_per_s'] * 100)} | {m[c]['spec_ups']:.0f} "
                     f"| {m[c]['idle_ups']:.0f} |")
    lines += ["", "| Repeat | µs per spectator-update | µs per idle-player-update | ratio |",
              "|---:|---:|---:|---:|"]
    for k, p in enumerate(s["per_repeat"], 1):
        ratio = p["spec_us"] / p["idle_us"] if p["spec_us"] is not None and p["idle_us"] else None
        lines.append(f"| {k} | {_f(p['spec_us'])} | {_f(p['idle_us'])} | {_f(ratio)} |")
    lines += ["", f"From the medians: {_f(s['spec_us'])} µs per spectator-update, "
              f"{_f(s['idle_us'])} µs per idle-player-update, ratio {_f(s['ratio'])}; "
              f"medians of the per-repeat values: {_f(s['spec_us_median_of_repeats'])} and "
              f"{_f(s['idle_us_median_of_repeats'])} µs. For scale, the base case costs "
              f"{_f(s['base_player_us'], '.1f')} µs per player-update (inputs included)."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest.spectators", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3, help="runs per case (default 3)")
    p.add_argument("--duration", type=float, default=10.0,
                   help="measurement window per run, seconds (default 10)")
    p.add_argument("--extra", type=int, default=200,
                   help="spectators, and idle players, added to the 8 (default 200)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", dest="json_path", default="",
                   help="write every run's row and full report here")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.duration <= 0 or not 1 <= args.extra <= 1000:
        p.error("--repeats >= 1, --duration > 0, --extra from 1 to 1000")
    server_cpu, bot_cpus = cpu_plan()
    if bot_cpus:
        os.sched_setaffinity(0, bot_cpus)  # the runner and its worker stay off the server's CPU
    server_args = ("--max-players", str(PLAYERS + args.extra + 10),
                   "--max-spectators", str(args.extra))
    rows: list[dict[str, Any]] = []
    raw: list[dict[str, Any]] = []
    for rep in range(args.repeats):
        order = CASES[rep % 3:] + CASES[:rep % 3]  # rotated: no case always runs first
        for case in order:
            server = Server(server_cpu, server_args)
            try:
                report = run(case_options(case, server.url, args.extra, args.duration,
                                          args.seed + rep, bot_cpus), server_pid=server.pid)
            finally:
                server.stop()
            row = {"repeat": rep + 1, **run_row(case, report)}
            rows.append(row)
            raw.append({"row": row, "report": report})
            print(f"repeat {rep + 1} {case}: cpu {_f(row['cpu_per_s'] * 100, '.1f')}%, "
                  f"player {row['player_ups']:.0f}/s, idle {row['idle_ups']:.0f}/s, "
                  f"spectator {row['spec_ups']:.0f}/s, min {_f(row['min_ups'])}/s, "
                  f"stalls {row['stalls']}, ok {row['clients_ok']}", flush=True)
    rows.sort(key=lambda r: (r["repeat"], CASES.index(r["case"])))
    summary = summarise(rows)
    cond = conditions()
    print(f"\n{cond['date']}, {cond['cpu']}, commit {cond['commit']}; server on CPU "
          f"{server_cpu}, bots on {','.join(map(str, bot_cpus)) or '-'}\n")
    print(markdown(rows, summary))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(
            {"conditions": cond, "summary": summary, "runs": raw}, indent=1))
        print(f"wrote {args.json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
