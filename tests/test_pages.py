"""A game's own browser page (``Room.page``), served at /play/<game>/ and listed by GET /games."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gameserver import Entity, Room
from gameserver.config import ConfigError
from gameserver.games.arena import Arena
from gameserver.web.app import BUILTIN_GAMES, game_pages, static_dir

PAGE = Path(__file__).parent / "pages_fixture"


class Token(Entity):
    x: int = 0


class WithPage(Room):
    game = "with_page"
    entity_types = (Token,)
    page = "pages_fixture"  # relative to this module


@pytest.fixture(autouse=True)
def page_files() -> Any:
    PAGE.mkdir(exist_ok=True)
    (PAGE / "index.html").write_text("<!doctype html><title>with page</title>\n")
    (PAGE / "play.js").write_text('import { Client } from "/sdk/gameserver.js";\n')
    yield
    for f in PAGE.iterdir():
        f.unlink()
    PAGE.rmdir()


async def test_a_games_page_is_served_and_listed(start_server: Callable[..., Any],
                                                 session: aiohttp.ClientSession) -> None:
    server = await start_server(games=(*BUILTIN_GAMES, WithPage))
    base = str(server.make_url("")).rstrip("/")
    async with session.get(f"{base}/games") as resp:
        listed = await resp.json()
    assert listed["pages"] == {"connect_four": "/play/connect_four/", "cards": "/play/cards/",
                               "with_page": "/play/with_page/"}
    async with session.get(f"{base}/play/with_page/") as resp:
        assert resp.status == 200
        assert "with page" in await resp.text()
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'self'")
    async with session.get(f"{base}/play/with_page/play.js") as resp:
        assert resp.status == 200 and "/sdk/gameserver.js" in await resp.text()
    async with session.get(f"{base}/play/with_page", allow_redirects=False) as resp:
        assert resp.status == 308 and resp.headers["Location"] == "/play/with_page/"
    for path in ("/play/with_page/../test_pages.py", "/play/with_page/%2e%2e/test_pages.py",
                 "/play/arena/", "/play/with_page/nothing.js"):
        async with session.get(f"{base}{path}") as resp:
            assert resp.status == 404, path


def test_a_page_without_an_index_is_refused_at_start_up(tmp_path: Path) -> None:
    class Broken(WithPage):
        game = "broken"
        page = str(tmp_path)  # absolute, and empty
    with pytest.raises(ConfigError, match=r"no index\.html"):
        game_pages([Broken], static_dir())


def test_games_without_a_page_have_none() -> None:
    assert game_pages([Arena], static_dir()) == {}
