"""What can go wrong for a client: a refused matchmaking, a refused socket, a server ERROR."""

from __future__ import annotations

from typing import NamedTuple


class ClientError(Exception):
    """The base of every exception this package raises."""


class MatchmakeError(ClientError):
    """An HTTP call (``POST /matchmake``, ``POST /reconnect``, ``GET /rooms``) was refused.

    ``code`` is the stable error code of docs/PROTOCOL.md §5 (``room_full``,
    ``no_such_room``, ``rate_limited``, ...), or ``"network"`` when the server
    could not be reached and ``"bad_response"`` when it did not answer JSON.
    ``status`` is the HTTP status (0 for ``network``); ``retry_after`` the
    seconds to wait that a 429/503 answer gave (``Retry-After``), else None.
    """

    def __init__(self, code: str, message: str, status: int = 0,
                 retry_after: float | None = None) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after


class ConnectError(ClientError):
    """The game socket ended before its WELCOME (e.g. 4001 for a bad reservation).

    ``code`` is the close code (1006 when the connection failed or ended without
    a close frame), ``reason`` the close reason, ``error`` the server's ERROR
    that came before the close, if any (``bad_reservation``, ``join_refused``...).
    """

    def __init__(self, code: int, reason: str = "", error: ServerError | None = None) -> None:
        why = error.message if error is not None else reason
        super().__init__(f"closed with {code}" + (f": {why}" if why else ""))
        self.code = code
        self.reason = reason
        self.error = error


class SpectatorError(ClientError):
    """A spectator's room was asked to send an INPUT or a room MESSAGE: spectators
    only watch (docs/PROTOCOL.md, *Spectators*), so nothing is sent."""


class RoomClosed(ClientError):
    """The room ended for good (left, kicked, closed, or reconnection gave up) while
    something was waiting on it. ``code`` is the final close code."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"the room ended with close code {code}" + (f": {reason}"
                                                                       if reason else ""))
        self.code = code
        self.reason = reason


class ServerError(NamedTuple):
    """An ERROR message from the server: ``[15, code, message]`` or with the refused
    INPUT's ``seq`` (docs/PROTOCOL.md §2, *Inputs*)."""

    code: str
    message: str
    seq: int | None = None
