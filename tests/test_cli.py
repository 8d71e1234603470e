"""The ``gameserver`` command as a user runs it: a subprocess on a free port."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from gameserver.core import codec

from .client import Player


async def start(*args: str, env: dict[str, str] | None = None) -> tuple[Any, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gameserver", "--port", "0", *args,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode()
    assert line.startswith("gameserver: serving on http://127.0.0.1:"), line
    return proc, line.split(" on ")[1].split("/ ")[0]


@pytest.fixture
async def cli_server() -> AsyncIterator[tuple[Any, str]]:
    proc, base = await start(env={"GAMESERVER_TICK_RATE": "20"})
    yield proc, base
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


async def test_frames_arrive_at_the_tick_rate_steadily(cli_server: tuple[Any, str]) -> None:
    _, base = cli_server
    async with aiohttp.ClientSession() as session:
        ann = await Player.join(session, base, name="ann")
        await ann.pump()
        began = time.monotonic()
        counts = [await ann.updates_for(1.0) for _ in range(4)]
        elapsed = time.monotonic() - began
    assert all(18 <= c <= 22 for c in counts), counts
    assert abs(sum(counts) / elapsed - 20) < 1.0


async def test_sigterm_tells_players_and_exits(cli_server: tuple[Any, str]) -> None:
    proc, base = cli_server
    async with aiohttp.ClientSession() as session:
        ann = await Player.join(session, base, name="ann")
        await ann.pump()
        proc.send_signal(signal.SIGTERM)
        code, reason = await ann.close_event()
    assert code == codec.CLOSE_GOING_AWAY
    assert "shutting down" in reason
    assert await asyncio.wait_for(proc.wait(), 10) == 0


def test_help_lists_every_option_with_its_variable() -> None:
    out = subprocess.run([sys.executable, "-m", "gameserver", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for flag, env in (("--port", "GAMESERVER_PORT"), ("--tick-rate", "GAMESERVER_TICK_RATE"),
                      ("--max-rooms", "GAMESERVER_MAX_ROOMS"),
                      ("--max-players", "GAMESERVER_MAX_PLAYERS")):
        assert flag in out and env in out


def test_bad_settings_are_reported_all_at_once() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gameserver", "--tick-rate", "0"], capture_output=True,
        text=True, env={**os.environ, "GAMESERVER_MAX_ROOMS": "-3"})
    assert result.returncode == 2
    assert "--tick-rate='0': must be between 1 and 240 Hz" in result.stderr
    assert "GAMESERVER_MAX_ROOMS='-3': must be greater than 0" in result.stderr


@pytest.mark.parametrize("pure", [False, True])
async def test_the_startup_log_says_how_game_sockets_are_read(pure: bool) -> None:
    """An operator can tell from the log whether the C frame splitter is in use."""
    from gameserver.web import aiohttp_seam

    proc, _ = await start(env={"GAMESERVER_PURE_PYTHON": "1" if pure else "0"})
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode()
    finally:
        proc.kill()
        await proc.wait()
    assert "game sockets are read direct, frames " in line, line
    if pure:
        assert "parsed by aiohttp (GAMESERVER_PURE_PYTHON is set)" in line
    else:
        built = aiohttp_seam._frames is not None
        assert ("split in C" in line) is built, line
