"""/healthz and /readyz: alive while serving, ready only while accepting players."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from aiohttp.test_utils import TestServer, make_mocked_request

from gameserver import Settings, create_app
from gameserver.core import codec
from gameserver.web.health import readyz, set_draining

from .client import MatchmakeFailed, Player, matchmake


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, str]]:
    async with session.get(url) as resp:
        return resp.status, await resp.json()


async def test_alive_and_ready_while_serving(session: aiohttp.ClientSession, base: str
                                             ) -> None:
    assert await get(session, f"{base}/healthz") == (200, {"status": "ok"})
    assert await get(session, f"{base}/readyz") == (200, {"status": "ready"})


async def test_not_ready_while_starting() -> None:
    app = create_app(Settings())
    response = await readyz(make_mocked_request("GET", "/readyz", app=app))
    assert response.status == 503
    assert json.loads(response.body) == {"status": "starting"}  # type: ignore[arg-type]


async def test_readiness_flips_to_503_when_shutdown_begins(
        server: TestServer, base: str, session: aiohttp.ClientSession) -> None:
    ann = await Player.join(session, base, name="ann")
    await ann.pump()
    assert (await get(session, f"{base}/readyz"))[0] == 200
    # The app's shutdown path (what SIGTERM runs after closing the listener), while
    # the listener stays open so that we can watch.
    shutdown = asyncio.get_running_loop().create_task(server.runner.shutdown())
    await asyncio.sleep(0)  # the first on_shutdown handler has started
    assert await get(session, f"{base}/readyz") == (503, {"status": "draining"})
    assert await get(session, f"{base}/healthz") == (200, {"status": "ok"})
    with pytest.raises(MatchmakeFailed) as refused:
        await matchmake(session, base, name="bob")
    assert refused.value.body["error"] == "server_draining"
    while (msg := await ann.ws.receive(timeout=5)).type is aiohttp.WSMsgType.BINARY:
        pass
    assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, codec.CLOSE_GOING_AWAY)
    await shutdown
    assert (await get(session, f"{base}/readyz"))[0] == 503


async def test_set_draining_is_the_hook_for_any_shutdown_path(
        server: TestServer, base: str, session: aiohttp.ClientSession) -> None:
    set_draining(server.app)
    set_draining(server.app)  # idempotent
    assert await get(session, f"{base}/readyz") == (503, {"status": "draining"})
    async with session.get(f"{base}/metrics") as resp:
        assert "gameserver_accepting_players 0.0" in await resp.text()
