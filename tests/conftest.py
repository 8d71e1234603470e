from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gameserver import Settings, create_app
from gameserver.web import aiohttp_seam

from .browsing import CHROMIUM, CHROMIUM_ARGS, check_chromium, missing


@pytest.fixture
async def start_server(aiohttp_server: Any) -> Callable[..., Any]:
    """Start a real gameserver on 127.0.0.1; keyword arguments are Settings fields."""

    async def start(games: tuple[Any, ...] | None = None, **settings: Any) -> TestServer:
        app = create_app(Settings(**settings), games)
        return await aiohttp_server(app, host="127.0.0.1")

    return start


@pytest.fixture
async def server(start_server: Callable[..., Any]) -> TestServer:
    return await start_server()


@pytest.fixture
def base(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@dataclass
class ReceivePath:
    """The receive path a test runs on, and what each game socket actually got."""

    direct: bool  # the seam's direct path; False: forced off, the handler loop reads
    split_in_c: bool  # on the direct path: frames split by the C extension first
    # Per game socket, as it was set up: install_direct's answer, whether the socket's
    # parser is then the seam's metered one (aiohttp drops the parser at close), and
    # whether it splits frames in C.
    sockets: list[tuple[bool, bool, bool]]

    def check(self) -> None:
        """Every game socket so far is on the path under test."""
        assert self.sockets
        expected = (self.direct, self.direct, self.direct and self.split_in_c)
        assert self.sockets == [expected] * len(self.sockets)


@pytest.fixture(params=["direct", "direct-without-c", "fallback"])
def receive_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
                 ) -> ReceivePath:
    """Run a test on each receive path: the direct one (with the C frame splitter where
    it is built, and without it), and the fallback a server uses when the seam finds
    aiohttp's internals unavailable (forced here)."""
    direct = request.param != "fallback"
    if request.param == "direct-without-c":
        monkeypatch.setattr(aiohttp_seam, "split_in_c", False)
    path = ReceivePath(direct=direct, split_in_c=aiohttp_seam.split_in_c, sockets=[])
    if not path.direct:
        monkeypatch.setattr(aiohttp_seam, "fast_path_reason", lambda: "forced off by a test")
        monkeypatch.setattr(aiohttp_seam, "_logged", False)  # so that this test sees the log
    install = aiohttp_seam.install_direct

    def recording(ws: web.WebSocketResponse, *args: Any) -> bool:
        installed = install(ws, *args)
        native = bool(getattr(getattr(ws, "_parser", None), "native", False))
        path.sockets.append((installed, aiohttp_seam.direct_path_installed(ws), native))
        return installed

    monkeypatch.setattr(aiohttp_seam, "install_direct", recording)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisServer:
    """A private ``redis-server`` process; the fault tests freeze and thaw it."""

    proc: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def freeze(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.proc.send_signal(signal.SIGCONT)


def need_redis_server() -> str:
    """The redis-server program; without it the test skips, and fails when ``CI`` is set."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed (Debian: apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


@contextlib.contextmanager
def running_redis() -> Iterator[RedisServer]:
    """A private ``redis-server`` on a free loopback port (no disk), stopped afterwards.

    Without redis-server the test skips, and fails when ``CI`` is set.
    """
    binary = need_redis_server()
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--protected-mode", "yes"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not start on port {port}")
                time.sleep(0.05)
        yield RedisServer(proc, port)
    finally:
        proc.send_signal(signal.SIGCONT)  # a frozen server would not hear the terminate
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """One Redis for the whole session; tests isolate themselves with their own key prefix."""
    with running_redis() as server:
        yield server.url


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A Redis of this test's own, for tests that freeze, cut or flush it."""
    with running_redis() as server:
        yield server


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Headless Debian Chromium under Playwright (no browser download)."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        missing("the playwright package is not installed (pip install playwright)")
    check_chromium()
    async with async_playwright() as p:
        instance = await p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                           args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            await instance.close()


@pytest.fixture
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("GAMESERVER_ARTIFACTS")
    if folder:
        path = Path(folder) / "browser"
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("browser-screenshots")
