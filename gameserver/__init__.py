"""gameserver: an authoritative real-time multiplayer game-state server.

The public API for game authors is small: subclass :class:`Room`, declare
:class:`Entity` types, and serve with :func:`create_app` or the
``gameserver`` command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gameserver.core.room import InvalidInput, InvalidOption, JoinRefused, Player, Room, message
from gameserver.core.world import Entity, Private

if TYPE_CHECKING:
    from gameserver.config import Settings
    from gameserver.web.app import create_app

__all__ = ["Entity", "InvalidInput", "InvalidOption", "JoinRefused", "Player", "Private", "Room",
           "Settings", "create_app", "message"]
__version__ = "0.1.0"

# Imported on first use: a game module (``from gameserver import Room``) must not
# pay for aiohttp, prometheus_client and the web layer (tests/test_layers.py).
_LAZY = {"Settings": "gameserver.config", "create_app": "gameserver.web.app"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gameserver' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
