"""Room-level limits, and per-connection and per-address budgets.

Pure: the caller supplies the time.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any, Final


@dataclass(frozen=True)
class Limits:
    """What one process allows its rooms; each field is the setting of the same name.

    No defaults here: they are declared once, in :class:`gameserver.config.Settings`
    (``Limits.from_settings(Settings())`` gives them).
    """

    max_rooms: int  # rooms hosted by this process
    max_players: int  # cap on any room's max_players
    max_spectators: int  # cap on any room's spectators
    reservation_ttl: float
    empty_room_grace: float
    max_catch_up: int
    send_high_water: int
    send_low_water: int  # derived: not a setting of its own
    stall_timeout: float
    reconnect_grace: float
    max_reservations: int
    max_message_size: int  # --max-message-size: the decoder's limit too
    message_rate: float  # room messages per second per player
    message_bytes: int  # bytes of room messages per second per player

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        """From a :class:`gameserver.config.Settings` (core does not import the settings)."""
        # Fields named as settings are copied by name, so a new one needs no edit here.
        # A skipped socket resumes once its queue drains to a quarter of the high water.
        derived = {"send_low_water": settings.send_high_water // 4}
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)
                      if f.name not in derived}, **derived)


class TokenBucket:
    """``rate`` tokens per second, holding at most ``burst``."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, amount: float, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= amount:
            self.tokens -= amount
            return True
        return False


class Verdict(Enum):
    OK = "ok"
    LIMITED = "limited"  # drop this message, tell the sender (at most once a second)
    SILENT = "silent"  # drop this message, the sender was told recently
    CLOSE = "close"  # the sender kept flooding: disconnect


# Verdict.OK as a plain name: a member looked up on its enum class costs about 50 ns in
# CPython 3.11 (a sixth of a check), and every inbound message gets a verdict.
VERDICT_OK: Final = Verdict.OK


class RateLimiter:
    """Message and byte budgets for one connection.

    A client over either budget has its messages dropped with an error; one
    that is still over it ``patience`` seconds after the first refusal is closed.
    ``max_message`` is the largest message allowed at all: the byte burst always
    holds one, so no setting makes a message of legal size impossible to send.
    """

    __slots__ = ("_byte_burst", "_byte_rate", "_bytes", "_message_burst", "_message_rate",
                 "_messages", "_refused_at", "_stamp", "_told_at", "limited_since", "patience",
                 "refused")

    def __init__(self, messages_per_s: float, bytes_per_s: float, now: float,
                 burst_s: float = 2.0, patience: float = 3.0, max_message: int = 0) -> None:
        # Two token buckets (messages, bytes) sharing one clock stamp: every inbound
        # message passes here, so they are plain attributes, not TokenBucket objects.
        self._message_rate = messages_per_s
        self._message_burst = self._messages = messages_per_s * burst_s
        self._byte_rate = bytes_per_s
        self._byte_burst = self._bytes = max(bytes_per_s * burst_s, max_message)
        self._stamp = now
        self.patience = patience
        self.limited_since: float | None = None
        self._told_at = -1e9
        self._refused_at = -1e9
        self.refused = 0

    def check(self, size: int, now: float) -> Verdict:
        elapsed = now - self._stamp
        self._stamp = now
        messages = self._messages + elapsed * self._message_rate
        if messages > self._message_burst:
            messages = self._message_burst
        bytes_ = self._bytes + elapsed * self._byte_rate
        if bytes_ > self._byte_burst:
            bytes_ = self._byte_burst
        if messages >= 1 and bytes_ >= size:  # the common case, in as few steps as it takes
            self._messages = messages - 1
            self._bytes = bytes_ - size
            # A full second without a refusal forgives the client. (A flood still lets
            # a message through whenever a token refills: that is not good behaviour.)
            if self.limited_since is not None and now - self._refused_at > 1.0:
                self.limited_since = None
            return VERDICT_OK
        # Refused, yet taken from whichever budget can pay: so that a flood of tiny
        # messages cannot starve the byte check and the other way round.
        self._messages = messages - 1 if messages >= 1 else messages
        self._bytes = bytes_ - size if bytes_ >= size else bytes_
        self.refused += 1
        self._refused_at = now
        if self.limited_since is None:
            self.limited_since = now
        elif now - self.limited_since > self.patience:
            return Verdict.CLOSE
        if now - self._told_at >= 1.0:
            self._told_at = now
            return Verdict.LIMITED
        return Verdict.SILENT


class FrameAllowance:
    """A per-frame budget cheap enough to spend inside the frame parser.

    For frames no game needs many of: pings, pongs and the fragments of a
    fragmented message. Spending is one decrement of :attr:`allowance` per
    frame (the frame is refused while it is below zero); :meth:`refill` and
    :meth:`settle` run once per read from the socket, not per frame.
    """

    __slots__ = ("allowance", "burst", "over_since", "patience", "rate", "refused_at", "stamp")

    def __init__(self, rate: float, now: float, burst_s: float = 2.0,
                 patience: float = 1.0) -> None:
        self.rate = rate
        self.burst = rate * burst_s
        self.allowance = self.burst
        self.stamp = now
        self.patience = patience
        self.over_since: float | None = None
        self.refused_at = -1e9

    def refill(self, now: float) -> None:
        # Below zero only counts the frames refused since the last read: no debt.
        self.allowance = min(self.burst, max(0.0, self.allowance)
                             + (now - self.stamp) * self.rate)
        self.stamp = now

    def settle(self, now: float) -> Verdict:
        """After a read: OK; LIMITED (frames were refused); CLOSE (frames have been refused
        for longer than ``patience``). A ``patience`` without refusals forgives."""
        if self.allowance >= 0:
            if self.over_since is not None and now - self.refused_at > self.patience:
                self.over_since = None
            return VERDICT_OK
        self.refused_at = now
        if self.over_since is None:
            self.over_since = now
        elif now - self.over_since > self.patience:
            return Verdict.CLOSE
        return Verdict.LIMITED


class AddressCounter:
    """Open connections per peer address, with exempt networks (e.g. loopback)."""

    def __init__(self, limit: int, exempt: Iterable[str] = ()) -> None:
        self.limit = limit
        self.exempt = [ipaddress.ip_network(n, strict=False) for n in exempt]
        self.counts: dict[str, int] = {}

    def _is_exempt(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.exempt)

    def acquire(self, address: str) -> bool:
        if self._is_exempt(address):
            return True
        count = self.counts.get(address, 0)
        if count >= self.limit:
            return False
        self.counts[address] = count + 1
        return True

    def release(self, address: str) -> None:
        if self._is_exempt(address):
            return
        count = self.counts.get(address, 0) - 1
        if count > 0:
            self.counts[address] = count
        else:
            self.counts.pop(address, None)
