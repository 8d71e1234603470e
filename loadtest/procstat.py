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
