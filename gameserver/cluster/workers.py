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

Without ``--redis`` the supervisor starts a private ``redis-server`` as its own
child first (PrivateRedis): on a Unix socket in a private directory (0700, no
TCP port), without persistence, dying with the supervisor; the workers get
``--redis unix://...``, and it is stopped, its directory removed, after they
have exited. It serves this machine only, and its rooms go with it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import IO

from gameserver.config import ConfigError, Settings

GRACE = 5.0  # seconds over --shutdown-timeout before a worker is killed
REDIS_SERVER_ENV = "GAMESERVER_REDIS_SERVER"  # the redis-server program (default: on PATH)
REDIS_START_TIMEOUT = 5.0  # seconds the private Redis has to answer PING
REDIS_GRACE = 5.0  # seconds the private Redis has to exit on SIGTERM before it is killed
SOCKET_PATH_MAX = 100  # bytes; Unix socket paths are limited to 104-108 by the kernel


def check(settings: Settings) -> None:
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
    """Linux: the child gets SIGTERM if the supervisor dies (even by SIGKILL)."""
    with contextlib.suppress(Exception):
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def redis_server_program() -> str:
    """The redis-server to start: $GAMESERVER_REDIS_SERVER, or redis-server on PATH."""
    wanted = os.environ.get(REDIS_SERVER_ENV) or "redis-server"
    found = shutil.which(wanted)
    if found is None:
        where = (f"{REDIS_SERVER_ENV}={wanted} is not an executable program"
                 if os.environ.get(REDIS_SERVER_ENV) else "redis-server is not installed")
        raise ConfigError(
            f"--workers needs Redis, and without --redis URL it starts a private "
            f"redis-server, but {where}: install it (Debian/Ubuntu: "
            f"`sudo apt-get install redis-server`; macOS: `brew install redis`) or pass "
            f"--redis URL of a Redis you run (e.g. redis://127.0.0.1:6379)")
    return found


class RedisStartError(Exception):
    """The private redis-server did not come up; the message carries its output."""


class PrivateRedis:
    """A redis-server child of the supervisor, for its workers only.

    It listens on a Unix socket in a fresh private directory (mode 0700, ``port 0``:
    no TCP), keeps nothing on disk and gets SIGTERM if the supervisor dies. Its
    output goes to a file in that directory, shown only when it fails.
    """

    def __init__(self, program: str) -> None:
        self.program = program
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir = tempfile.mkdtemp(prefix="gameserver-redis-")
        if len(os.fsencode(self.dir)) + len("/redis.sock") > SOCKET_PATH_MAX:
            os.rmdir(self.dir)  # $TMPDIR too deep for a socket path: use /tmp
            self.dir = tempfile.mkdtemp(prefix="gameserver-redis-", dir="/tmp")
        os.chmod(self.dir, 0o700)  # mkdtemp's mode already; said again on purpose
        self.socket = os.path.join(self.dir, "redis.sock")
        self.log = os.path.join(self.dir, "redis.log")

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, cancelled: threading.Event) -> None:
        """Start it and wait (bounded) until it answers PING; RedisStartError if not."""
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [self.program, "--port", "0", "--unixsocket", self.socket,
                 "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
                 "--daemonize", "no", "--dir", self.dir, "--logfile", ""],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
                process_group=0)  # Ctrl-C reaches the workers, not it: they drain first
        deadline = time.monotonic() + REDIS_START_TIMEOUT
        while not self._answers():
            if self.proc.poll() is not None:
                raise RedisStartError(f"the private redis-server exited with status "
                                      f"{self.proc.returncode}{self.output()}")
            if time.monotonic() > deadline:
                raise RedisStartError(f"the private redis-server did not answer within "
                                      f"{REDIS_START_TIMEOUT:.0f} s{self.output()}")
            if cancelled.is_set():
                return
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(0.5)
                s.connect(self.socket)
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def output(self) -> str:
        with contextlib.suppress(OSError), open(self.log, errors="replace") as f:
            text = f.read().strip()
            return f"; its output:\n{text}" if text else ""
        return ""

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM, wait, SIGKILL after a grace; then remove the directory."""
        if self.proc is not None:
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.terminate()
            try:
                self.proc.wait(REDIS_GRACE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def supervise(settings: Settings, argv: Sequence[str]) -> int:
    check(settings)
    program = None if settings.redis else redis_server_program()  # missing: exit 2 at once
    procs: list[subprocess.Popen[str]] = []
    stopping = threading.Event()

    def stop(signum: int = signal.SIGTERM, _frame: FrameType | None = None) -> None:
        stopping.set()
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if program is None:
        return _run(settings, argv, procs, stopping, stop, None)
    private = PrivateRedis(program)
    try:
        try:
            private.start(stopping)
        except RedisStartError as exc:
            print(f"gameserver: {exc}", file=sys.stderr, flush=True)
            return 1
        if stopping.is_set():
            return 0
        print(f"gameserver: the workers share rooms through a private Redis at {private.url} "
              "(this machine only, stopped with them; --redis URL shares rooms with other "
              "machines)", flush=True)
        return _run(settings, [*argv, "--redis", private.url], procs, stopping, stop, private)
    finally:
        stop()  # a failure above: no worker outlives the supervisor's Redis
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(settings.shutdown_timeout + GRACE)
            if p.poll() is None:
                p.kill()
                p.wait()
        private.stop()


def _run(settings: Settings, argv: Sequence[str], procs: list[subprocess.Popen[str]],
         stopping: threading.Event, stop: Callable[..., None],
         private: PrivateRedis | None) -> int:
    out_lock = threading.Lock()
    for cmd in worker_commands(settings, argv):
        if stopping.is_set():
            break
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                                      preexec_fn=_die_with_parent))
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
        elif not stopping.is_set() and private is not None and not private.running():
            failed = True
            print(f"gameserver: the private redis-server exited; stopping the workers"
                  f"{private.output()}", file=sys.stderr, flush=True)
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
