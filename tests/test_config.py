"""Settings come from flags, then GAMESERVER_* variables, then defaults."""

from __future__ import annotations

import sys
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

from gameserver.config import ConfigError, Settings, load
from gameserver.core.limits import Limits
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
    assert set(app[MANAGER].games) == {"arena", "cards", "connect_four", "coins"}
    sys.modules.pop("mygame", None)


@pytest.mark.parametrize(("spec", "message"), [
    ("nomodule", "expected module:Class"),
    ("no_such_module_xyz:Room", "No module named"),
    ("gameserver.config:Settings", "not a gameserver.Room subclass"),
])
def test_bad_game_specs_are_clear(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_game(spec)


def test_room_limits_are_the_settings_of_the_same_name() -> None:
    settings = load(["--max-players", "7", "--send-high-water", "4000",
                     "--reconnect-grace", "0", "--message-rate", "0.5"], {})
    app = create_app(settings)
    limits = app[MANAGER].limits
    assert limits == Limits.from_settings(settings)
    assert (limits.max_players, limits.send_high_water, limits.send_low_water) == (7, 4000, 1000)
    assert (limits.reconnect_grace, limits.message_rate) == (0.0, 0.5)
    # No defaults of their own: every one is a setting's (or derived from one).
    names = {f.name for f in fields(Settings)}
    for f in fields(Limits):
        assert f.default is MISSING, f.name
        assert f.name in names or f.name == "send_low_water", f.name


def test_secrets_stay_out_of_the_repr() -> None:
    text = repr(Settings(auth_secret="s3cret-auth", admin_token="t0ken-t0ken-t0ken",
                         redis="redis://:pw@host/0"))
    assert "s3cret" not in text and "t0ken" not in text and "pw@" not in text
    assert "tick_rate=20.0" in text
