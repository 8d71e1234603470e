"""gameserver: an authoritative real-time multiplayer game-state server.

The public API for game authors is small: subclass :class:`Room`, declare
:class:`Entity` types, and serve with :func:`create_app` or the
``gameserver`` command.
"""

from gameserver.config import Settings
from gameserver.core.room import InvalidInput, InvalidOption, JoinRefused, Player, Room, message
from gameserver.core.world import Entity
from gameserver.web.app import create_app

__all__ = ["Entity", "InvalidInput", "InvalidOption", "JoinRefused", "Player", "Room",
           "Settings", "create_app", "message"]
__version__ = "0.1.0"
