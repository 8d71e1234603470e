"""The README's settings table matches the one declaration of the settings (config.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gameserver.config import OPTIONS, Option, Settings, build_parser, load

README = (Path(__file__).parent.parent / "README.md").read_text()
ROW = re.compile(r"^\| `(--[a-z-]+)` \| `(\w+)` \| ([^|]+) \| .+ \|$", re.M)


def test_the_readme_table_lists_every_setting_once_with_its_flag_variable_and_default(
        ) -> None:
    rows = [(flag, env, default.strip().strip("`")) for flag, env, default in ROW.findall(README)]
    assert rows == [(o.flag, o.env, o.shown) for o in OPTIONS]


@pytest.mark.parametrize("opt", [o for o in OPTIONS if o.default not in ("", ())],
                         ids=lambda o: o.name)
def test_the_shown_default_is_the_default(opt: Option) -> None:
    # What the README and --help show, given back as the variable, is the default.
    assert getattr(load([], {opt.env: opt.shown}), opt.name) == opt.default == \
        getattr(Settings(), opt.name)


def test_help_shows_each_default_and_variable() -> None:
    text = " ".join(build_parser().format_help().split())
    assert "[env GAMESERVER_TICK_RATE] (default: 20)" in text
    assert "[env GAMESERVER_PUBLIC_URL] (default: from the request)" in text
    assert "[env GAMESERVER_IP_LIMIT_EXEMPT] (default: 127.0.0.0/8,::1/128)" in text
