"""The README's promises: its example game runs, its test passes and its page plays in a
browser (its settings table: test_settings_doc.py)."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import gameserver
from gameserver import Room, Settings, create_app
from gameserver.web.app import BUILTIN_GAMES, load_game

from .browsing import Console, shot
from .client import Player
from .readme import README, write_coins


def test_every_hook_and_input_attribute_is_in_the_tables() -> None:
    hooks = {name for name in vars(Room) if name.startswith("on_") and callable(vars(Room)[name])}
    hooks |= {"validate_input", "update", "client_config"}
    rows = re.findall(r"^\| `(\w+)\(", README, re.M)
    assert hooks <= set(rows), hooks - set(rows)
    for attribute in ("max_pending_inputs", "input_buffer", "input_repeat"):
        assert re.search(rf"^\| `{attribute}` \| `{getattr(Room, attribute)}` \|", README, re.M)
    assert "`JoinRefused` and `InvalidInput` are all imported from `gameserver`" in README
    assert {"Room", "Entity", "JoinRefused", "InvalidInput"} <= set(gameserver.__all__)


def test_it_starts_with_the_two_commands() -> None:
    commands = re.search(r"```sh\n(.*?)```", README, re.S).group(1)  # type: ignore[union-attr]
    assert commands.splitlines()[0].startswith("pip install . && gameserver")
    assert commands.splitlines()[1].startswith("pip install -e '.[test]' && python -m pytest")


async def test_the_example_game_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     aiohttp_server: Callable[..., Any]) -> None:
    write_coins(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        coins = load_game("coins:Coins")
        server = await aiohttp_server(create_app(Settings(), (*BUILTIN_GAMES, coins)),
                                      host="127.0.0.1")
        base = str(server.make_url("")).rstrip("/")
        async with aiohttp.ClientSession() as session:
            ann = await Player.join(session, base, game="coins", name="ann")
            assert ann.tick_rate == 10
            await ann.until(lambda: bool(ann.replica.entities))
            (coin,) = ann.replica.entities.values()
            await ann.send(1, 1, "right")
            await ann.send(1, 2, "sideways")
            await ann.until(lambda: ann.replica.ack == 1 and bool(ann.errors))
            assert coin.values == {"x": 51, "y": 50, "owner": "ann"}
            assert ann.errors[0][1:] == ["invalid_input", "input is 'left' or 'right'", 2]
    finally:
        sys.modules.pop("coins", None)


def test_the_example_test_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    game = re.search(r"```python\n(.*?)```", README, re.S).group(1)  # type: ignore[union-attr]
    section = README.split("\n## Testing your game\n", 1)[1].split("\n## ", 1)[0]
    test = re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    coins = types.ModuleType("coins")  # what the snippet imports, from the README's coins.py
    exec(compile(game, "README.md:coins.py", "exec"), coins.__dict__)
    monkeypatch.setitem(sys.modules, "coins", coins)
    namespace: dict[str, Any] = {}
    exec(compile(test, "README.md:test_coins.py", "exec"), namespace)
    tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
    assert tests, "the README's test snippet has no test function"
    for run in tests:
        run()


async def test_the_example_page_plays_in_a_browser(
        start_server: Callable[..., Any], browser: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, artifacts: Path) -> None:
    """coins.py and coins_page/ as the README shows them, served with --games coins:Coins:
    two players at /play/coins/ push the coin with a button and a key."""
    write_coins(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        server = await start_server(games=(*BUILTIN_GAMES, load_game("coins:Coins")))
    finally:
        sys.modules.pop("coins", None)
    base = str(server.make_url("")).rstrip("/")
    async with aiohttp.ClientSession() as http, http.get(f"{base}/games") as resp:
        assert (await resp.json())["pages"]["coins"] == "/play/coins/"
    console = Console()
    console.allow_http_errors("/favicon.ico", 404)  # the page names no icon: harmless
    context = await browser.new_context()
    try:
        ann = await context.new_page()
        console.watch(ann, "ann")
        await ann.goto(f"{base}/play/coins/?name=ann")

        async def shows(page: Any, selector: str, text: str) -> None:
            await page.wait_for_function(  # a function, not eval: the page's CSP forbids it
                f"() => document.querySelector({selector!r})?.textContent.includes({text!r})",
                timeout=10_000)

        await shows(ann, "#coin", "x = 50, owner: nobody")
        await shows(ann, "#log", "ann joined")
        await ann.click("#right")
        await shows(ann, "#coin", "x = 51, owner: ann")
        bob = await context.new_page()
        console.watch(bob, "bob")
        await bob.goto(f"{base}/play/coins/?name=bob")
        await shows(bob, "#coin", "x = 51, owner: ann")
        await shows(ann, "#log", "bob joined")
        await bob.keyboard.press("ArrowLeft")
        await bob.keyboard.press("ArrowLeft")
        await shows(ann, "#coin", "x = 49, owner: bob")
        await shows(bob, "#coin", "x = 49, owner: bob")
        await shot(ann, artifacts, "readme-coins")
        console.check()
    finally:
        await context.close()
