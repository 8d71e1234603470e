"""Hosting settings: a TOML file under the environment and flags; validated, secrets unshown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gameserver.config import ConfigError, load


def test_flag_beats_environment_beats_file_beats_default(tmp_path: Path) -> None:
    path = tmp_path / "gameserver.toml"
    path.write_text('tick_rate = 30\nport = 9100\nmax-rooms = 7\nlog_format = "json"\n'
                    'allowed_origins = ["https://a.example", "https://b.example"]\n'
                    'ip_limit_exempt = "10.0.0.0/8, none"\n')
    settings = load(["--config", str(path), "--port", "9300"], {"GAMESERVER_TICK_RATE": "40"})
    assert settings.port == 9300  # flag
    assert settings.tick_rate == 40.0  # environment
    assert settings.max_rooms == 7  # file (a dashed key works too)
    assert settings.log_format == "json"
    assert settings.allowed_origins == ("https://a.example", "https://b.example")
    assert settings.ip_limit_exempt == ("10.0.0.0/8", "")
    assert settings.max_players == 64  # default
    assert load([], {"GAMESERVER_CONFIG": str(path)}).port == 9100


def test_file_problems_are_reported_with_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('tick_rate = 0\ncolour = "blue"\ngames = {a = 1}\n')
    with pytest.raises(ConfigError) as exc:
        load(["--config", str(path)], {})
    text = str(exc.value)
    assert f"{path}: tick_rate='0': must be between 1 and 240 Hz" in text
    assert f"{path}: unknown setting 'colour'" in text
    assert f"{path}: games must be a single value" in text
    with pytest.raises(ConfigError, match="not valid TOML"):
        path.write_text("tick_rate = = 3")
        load(["--config", str(path)], {})
    with pytest.raises(ConfigError, match="No such file"):
        load(["--config", str(tmp_path / "missing.toml")], {})


def test_log_format_and_admin_token_are_validated() -> None:
    assert load([], {}).log_format == "text" and load([], {}).admin_token == ""
    assert load(["--log-format", "JSON"], {}).log_format == "json"
    with pytest.raises(ConfigError, match="--log-format='xml': must be text or json"):
        load(["--log-format", "xml"], {})
    token = "a-good-long-admin-token"
    settings = load([], {"GAMESERVER_ADMIN_TOKEN": token})
    assert settings.admin_token == token and token not in repr(settings)
    with pytest.raises(ConfigError) as exc:
        load(["--admin-token", "short"], {})
    assert "--admin-token=<hidden>: must be at least 16 characters" in str(exc.value)
    assert "short" not in str(exc.value)


def test_help_lists_the_hosting_options() -> None:
    out = subprocess.run([sys.executable, "-m", "gameserver", "--help"], capture_output=True,
                         text=True, check=True, env={**os.environ, "COLUMNS": "200"}).stdout
    for flag, env in (("--log-format", "GAMESERVER_LOG_FORMAT"),
                      ("--admin-token", "GAMESERVER_ADMIN_TOKEN"),
                      ("--config", "GAMESERVER_CONFIG"), ("--log-level", "GAMESERVER_LOG_LEVEL")):
        assert flag in out and env in out
