"""Settings come from flags, then GAMESERVER_* variables, then defaults."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gameserver.config import ConfigError, load
from gameserver.web.app import create_app, load_game
from gameserver.web.keys import MANAGER


def test_flags_beat_the_environment_which_beats_defaults() -> None:
    env = {"GAMESERVER_PORT": "9001", "GAMESERVER_TICK_RATE": "30",
           "GAMESERVER_GAMES": "a:B, c:D"}
    settings = load(["--port", "9002"], env)
    assert settings.port == 9002
    assert settings.tick_rate == 30.0
    assert settings.games == ("a:B", "c:D")
    assert settings.max_players == 64


def test_a_bad_value_names_its_source() -> None:
    with pytest.raises(ConfigError, match="GAMESERVER_HEARTBEAT='soon'"):
        load([], {"GAMESERVER_HEARTBEAT": "soon"})


def test_a_game_module_is_served_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    (tmp_path / "mygame.py").write_text(
        "from gameserver import Entity, Room\n"
        "class Coin(Entity):\n    value: int = 1\n"
        "class Coins(Room):\n    game = 'coins'\n    entity_types = (Coin,)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    app = create_app(load(["--games", "mygame:Coins"], {}))
    assert set(app[MANAGER].games) == {"arena", "coins"}
    sys.modules.pop("mygame", None)


@pytest.mark.parametrize(("spec", "message"), [
    ("nomodule", "expected module:Class"),
    ("no_such_module_xyz:Room", "No module named"),
    ("gameserver.config:Settings", "not a gameserver.Room subclass"),
])
def test_bad_game_specs_are_clear(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_game(spec)
