"""``gameserver --workers N``: N single-process servers on one machine, one per core.

The supervisor starts N ``python -m gameserver`` children with the same
settings, each on its own port (``--port P`` gives P, P+1, ..., P+N-1; port
0 gives each a free one) and all on the same ``--redis``, so they form one
cluster (cluster.py): matchmaking through any worker finds or creates rooms on
all of them, and each reservation's ``ws_url`` points at the worker hosting
the room. The supervisor prints each worker's address, forwards SIGTERM and
SIGINT to them, and exits when they have; if a worker dies on its own, it
stops the others and exits with status 1, so that the service manager
(systemd, Kubernetes, ...) restarts the whole set.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import IO

from gameserver.config import ConfigError, Settings

GRACE = 5.0  # seconds over --shutdown-timeout before a worker is killed


def check(settings: Settings) -> None:
    if not settings.redis:
        raise ConfigError(
            f"--workers {settings.workers} needs --redis URL: the workers share their rooms "
            "through Redis (e.g. run `redis-server --port 6379 --save ''` and pass "
            "--redis redis://127.0.0.1:6379)")
    if settings.public_url and "{port}" not in settings.public_url:
        raise ConfigError("--public-url with --workers > 1 must contain {port}, replaced by "
                          "each worker's port (e.g. http://game.example:{port})")
    if settings.port and settings.port + settings.workers - 1 > 65535:
        raise ConfigError(f"--port {settings.port} + {settings.workers} workers passes 65535")


def worker_commands(settings: Settings, argv: Sequence[str]) -> list[list[str]]:
    """One command per worker: the same arguments, the worker's port, one worker.

    Later flags win with argparse, so the overrides are appended.
    """
    base = [sys.executable, "-m", "gameserver", *argv]
    return [[*base, "--workers", "1", "--port", str(settings.port + i if settings.port else 0)]
            for i in range(settings.workers)]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the worker gets SIGTERM if the supervisor dies (even by SIGKILL)."""
    with contextlib.suppress(Exception):
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def supervise(settings: Settings, argv: Sequence[str]) -> int:
    check(settings)
    out_lock = threading.Lock()
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                              preexec_fn=_die_with_parent)
             for cmd in worker_commands(settings, argv)]
    serving = threading.Semaphore(0)

    def forward(stream: IO[str]) -> None:
        for line in stream:
            with out_lock:
                sys.stdout.write(line)
                sys.stdout.flush()
            if "serving on" in line:
                serving.release()

    readers = [threading.Thread(target=forward, args=(p.stdout,), daemon=True) for p in procs]
    for t in readers:
        t.start()
    stopping = threading.Event()

    def stop(signum: int = signal.SIGTERM, _frame: FrameType | None = None) -> None:
        stopping.set()
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in procs:  # every worker listens, or one died trying
        while not serving.acquire(timeout=0.2):
            if any(p.poll() is not None for p in procs):
                break
        else:
            continue
        break
    else:
        with out_lock:
            print(f"gameserver: {len(procs)} workers serving, pids "
                  f"{' '.join(str(p.pid) for p in procs)} (Ctrl-C to stop)", flush=True)
    failed = False
    while any(p.poll() is None for p in procs):
        if not stopping.is_set() and any(p.poll() is not None for p in procs):
            failed = True
            print("gameserver: a worker exited; stopping the others", file=sys.stderr,
                  flush=True)
            stop()
        time.sleep(0.1)
        if stopping.is_set():
            break
    deadline = time.monotonic() + settings.shutdown_timeout + GRACE
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    for t in readers:
        t.join(1)
    return 1 if failed or any(p.returncode != 0 for p in procs) else 0
