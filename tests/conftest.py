from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from gameserver import Settings, create_app


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
