"""SIGTERM and SIGINT: refuse new players, tell everyone, dispose rooms, exit in bounded time."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from gameserver.core import codec

from .client import Player

GAME = '''
import os
from gameserver import Entity, Room

class Thing(Entity):
    n: int = 0

class Journal(Room):
    game = "journal"
    entity_types = (Thing,)

    def on_dispose(self):
        with open(os.environ["JOURNAL_FILE"], "a") as f:
            f.write(f"disposed {self.room_id}\\n")
'''


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_shuts_down_gracefully(tmp_path: Path, sig: signal.Signals) -> None:
    (tmp_path / "journal_game.py").write_text(GAME)
    journal = tmp_path / "journal.txt"
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "JOURNAL_FILE": str(journal)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gameserver", "--port", "0", "--games", "journal_game:Journal",
        "--shutdown-timeout", "5", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode()
        base = line.split(" on ")[1].split("/ ")[0]
        async with aiohttp.ClientSession() as session:
            players = [await Player.join(session, base, game="journal", mode="create",
                                         name=f"p{i}") for i in range(3)]
            arena = await Player.join(session, base, name="arena")
            for p in [*players, arena]:
                await p.pump()
            began = time.monotonic()
            proc.send_signal(sig)
            closes = await asyncio.gather(*(p.close_event() for p in [*players, arena]))
            assert {c for c, _ in closes} == {codec.CLOSE_GOING_AWAY}
            assert all("shutting down" in reason for _, reason in closes)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        assert time.monotonic() - began < 5
        disposed = journal.read_text().splitlines()
        assert sorted(disposed) == sorted(f"disposed {p.room_id}" for p in players)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
