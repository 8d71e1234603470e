"""Reconnection tokens: single use, rotated at every (re)connection, per process."""

from __future__ import annotations

import secrets


class ReconnectTokens:
    """Which seat each outstanding reconnection token puts its holder back in.

    A token reads ``room_id.secret``: any node can tell where the room is (POST
    /reconnect), only the room's own node can redeem it. A player holds at most one.
    """

    def __init__(self, reconnect_grace: float) -> None:
        self.enabled = reconnect_grace > 0  # 0: no reconnection, no tokens
        self._seat: dict[str, tuple[str, int]] = {}  # token -> (room id, player id)
        self._token: dict[tuple[str, int], str] = {}

    def issue(self, room_id: str, player_id: int) -> str | None:
        """A fresh token for the seat, replacing the one it had (None: reconnection is off)."""
        if not self.enabled:
            return None
        self.forget(room_id, player_id)
        token = f"{room_id}.{secrets.token_urlsafe(24)}"
        self._seat[token] = (room_id, player_id)
        self._token[(room_id, player_id)] = token
        return token

    def redeem(self, token: str) -> tuple[str, int] | None:
        """The seat ``token`` was issued for (once; None if unknown or used)."""
        seat = self._seat.pop(token, None)
        if seat is not None:
            del self._token[seat]
        return seat

    def forget(self, room_id: str, player_id: int) -> None:
        token = self._token.pop((room_id, player_id), None)
        if token is not None:
            del self._seat[token]

    def __len__(self) -> int:
        return len(self._seat)
