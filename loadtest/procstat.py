"""A process's CPU time from ``/proc/PID/stat`` (Linux), for the server under test."""

from __future__ import annotations

import os


def parse_proc_stat(text: str, clock_ticks: int) -> tuple[float, float]:
    """``(user_s, system_s)`` from the text of ``/proc/PID/stat``.

    The command name (field 2) is in parentheses and may itself hold spaces or
    parentheses, so fields are counted from the last ``)``: utime and stime are
    fields 14 and 15, the 12th and 13th after it.
    """
    rest = text[text.rindex(")") + 2:].split()
    return int(rest[11]) / clock_ticks, int(rest[12]) / clock_ticks


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of ``pid`` so far (resolution: one clock tick)."""
    with open(f"/proc/{pid}/stat") as f:
        user, system = parse_proc_stat(f.read(), os.sysconf("SC_CLK_TCK"))
    return user + system


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (Linux ``/proc/PID/task/*/children``)."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return out


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its descendants (a ``--workers N`` supervisor and workers)."""
    total = process_cpu_seconds(pid)
    for child in children(pid):
        try:
            total += tree_cpu_seconds(child)
        except OSError:  # exited meanwhile
            pass
    return total
