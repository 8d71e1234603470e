"""Logs: text for people, JSON lines for shippers, with room and player ids when known."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import aiohttp
import pytest

from gameserver import logs

from .client import Player

TOKEN = "s3cret-admin-token-" + "x" * 12


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_json_lines_carry_the_context(captured: io.StringIO) -> None:
    logs.setup("INFO", "json", captured)
    log = logging.getLogger("gameserver.test")
    log.info("hello %s", "there", extra={"room_id": "abc", "player_id": 3})
    log.debug("not shown at info")
    try:
        raise ValueError("bad")
    except ValueError:
        log.exception("it failed", extra={"room_id": "abc"})
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert set(first) == {"time", "level", "logger", "message", "room_id", "player_id"}
    assert first["level"] == "INFO" and first["logger"] == "gameserver.test"
    assert first["message"] == "hello there"
    assert (first["room_id"], first["player_id"]) == ("abc", 3)
    assert first["time"].endswith("Z") and "T" in first["time"]
    assert second["level"] == "ERROR" and "player_id" not in second
    assert "ValueError: bad" in second["exc_info"]


def test_text_lines_show_the_context(captured: io.StringIO) -> None:
    logs.setup("DEBUG", "text", captured)
    logging.getLogger("gameserver.test").debug("joined", extra={"room_id": "r1",
                                                                "player_id": 2})
    logging.getLogger("gameserver.test").warning("plain")
    first, second = captured.getvalue().splitlines()
    assert first.endswith("DEBUG gameserver.test: joined [room=r1 player=2]")
    assert second.endswith("WARNING gameserver.test: plain")


async def test_the_server_logs_json_with_room_ids_and_never_the_admin_token() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gameserver", "--port", "0", "--log-level", "debug",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "GAMESERVER_LOG_FORMAT": "json", "GAMESERVER_ADMIN_TOKEN": TOKEN})
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode()
        base = line.split(" on ")[1].split("/ ")[0]
        async with aiohttp.ClientSession() as session:
            ann = await Player.join(session, base, name="ann")
            await ann.pump()
            proc.send_signal(signal.SIGTERM)
            await ann.close_event()
        out, err = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert TOKEN not in (line + out.decode() + err.decode())
    entries = [json.loads(x) for x in err.decode().splitlines() if x.strip()]
    assert entries, "no log lines"
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    created = [e for e in entries if e["message"].startswith("created arena room")]
    assert created and created[0]["room_id"] == ann.room_id
    assert any(e.get("player_id") == ann.player_id and e.get("room_id") == ann.room_id
               for e in entries if e["logger"] == "gameserver.ws")
    # SIGTERM runs the drain hook first.
    draining = [i for i, e in enumerate(entries) if e["logger"] == "gameserver.health"]
    shutting = [i for i, e in enumerate(entries) if e["message"].startswith("shutting down")]
    assert draining and shutting and draining[0] < shutting[0]
