"""The README's promises: its example game runs and its test passes (its settings table:
test_settings_doc.py)."""

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

from .client import Player

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_hook_and_input_attribute_is_in_the_tables() -> None:
    hooks = {name for name in vars(Room) if name.startswith("on_") and callable(vars(Room)[name])}
    hooks |= {"validate_input", "update", "client_config"}
    rows = re.findall(r"^\| `(\w+)\(", README, re.M)
    assert hooks <= set(rows), hooks - set(rows)
    for attribute in ("max_pending_inputs", "input_burst"):
        assert re.search(rf"^\| `{attribute}` \| `{getattr(Room, attribute)}` \|", README, re.M)
    assert "`JoinRefused` and `InvalidInput` are all imported from `gameserver`" in README
    assert {"Room", "Entity", "JoinRefused", "InvalidInput"} <= set(gameserver.__all__)


def test_it_starts_with_the_two_commands() -> None:
    commands = re.search(r"```sh\n(.*?)```", README, re.S).group(1)  # type: ignore[union-attr]
    assert commands.splitlines()[0].startswith("pip install . && gameserver")
    assert commands.splitlines()[1].startswith("pip install '.[test]' && python -m pytest")


async def test_the_example_game_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     aiohttp_server: Callable[..., Any]) -> None:
    source = re.search(r"```python\n(.*?)```", README, re.S).group(1)  # type: ignore[union-attr]
    (tmp_path / "coins.py").write_text(source)
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
