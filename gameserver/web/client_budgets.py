"""Matchmaking budgets per client: requests, room creations, unredeemed reservations.

A client is a peer address (unless in an exempt network, by default loopback)
and, with signed join tokens, an identity (the token's ``sub``); a request is
charged to each of its clients. Pure: the caller supplies the time. Memory is
bounded: an idle client's buckets are full again, which is the same as having
none, so they are evicted; and no more than ``max_clients`` are kept at all.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from collections.abc import Iterable

from gameserver.core.limits import TokenBucket


class KeyedBuckets:
    """A token bucket per client, at most ``max_clients`` of them."""

    def __init__(self, rate: float, burst: float, max_clients: int = 65536) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self._refill_s = burst / rate  # idle this long, a bucket is full: forget it
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()  # least recent first

    def __len__(self) -> int:
        return len(self._buckets)

    def wait(self, key: str, now: float, take: bool = True) -> float:
        """0 if ``key`` has a token (taken when ``take``), else seconds until it will."""
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            self._evict(now)
            bucket = buckets[key] = TokenBucket(self.rate, self.burst, now)
        else:
            buckets.move_to_end(key)
        bucket.take(0, now)  # refill
        if bucket.tokens >= 1:
            if take:
                bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def _evict(self, now: float) -> None:
        buckets = self._buckets
        while buckets:
            key, oldest = next(iter(buckets.items()))
            if now - oldest.stamp < self._refill_s and len(buckets) < self.max_clients:
                return
            del buckets[key]


class PendingReservations:
    """Reservations not yet redeemed, per client, each until its expiry."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._of: dict[str, dict[str, float]] = {}  # client -> token -> expires_at
        self._clients: dict[str, tuple[str, ...]] = {}  # token -> its clients
        self._expiry: deque[tuple[float, str]] = deque()  # in expiry order (one fixed ttl)

    def wait(self, key: str, now: float) -> float:
        """0 if ``key`` may hold another reservation, else seconds until one expires."""
        self._expire(now)
        tokens = self._of.get(key)
        if tokens is None or len(tokens) < self.limit:
            return 0.0
        return max(0.0, min(tokens.values()) - now)

    def add(self, keys: Iterable[str], token: str, expires_at: float) -> None:
        keys = tuple(keys)
        if not keys:
            return
        self._clients[token] = keys
        for key in keys:
            self._of.setdefault(key, {})[token] = expires_at
        self._expiry.append((expires_at, token))

    def redeemed(self, token: str) -> None:
        for key in self._clients.pop(token, ()):
            tokens = self._of.get(key)
            if tokens is not None:
                tokens.pop(token, None)
                if not tokens:
                    del self._of[key]

    def _expire(self, now: float) -> None:
        expiry = self._expiry
        while expiry and expiry[0][0] <= now:
            self.redeemed(expiry.popleft()[1])

    def __len__(self) -> int:
        return len(self._clients)


class ClientBudgets:
    """The three matchmaking budgets, and which clients a request is charged to."""

    def __init__(self, requests_per_s: float, creations_per_minute: float,
                 max_pending: int, exempt: Iterable[str] = ()) -> None:
        self.requests = KeyedBuckets(requests_per_s, requests_per_s * 4)
        self.creations = KeyedBuckets(creations_per_minute / 60, creations_per_minute)
        self.pending = PendingReservations(max_pending)
        self.exempt = [ipaddress.ip_network(n, strict=False) for n in exempt]

    def address_key(self, address: str) -> str | None:
        """The client key of a peer address; None if exempt."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return "ip:" + address[:64]
        if any(ip in net for net in self.exempt):
            return None
        return "ip:" + str(ip)

    @staticmethod
    def identity_key(sub: object) -> str:
        return "sub:" + str(sub)[:128]

    def request(self, keys: Iterable[str], now: float) -> float:
        """Charge a request to each client; seconds to wait if one is over its budget."""
        return max((self.requests.wait(key, now) for key in keys), default=0.0)

    def may_reserve(self, keys: Iterable[str], now: float) -> float:
        return max((self.pending.wait(key, now) for key in keys), default=0.0)

    def create(self, keys: Iterable[str], now: float) -> float:
        """Take a room creation from every client, or none if one has none left."""
        keys = tuple(keys)
        wait = max((self.creations.wait(key, now, take=False) for key in keys), default=0.0)
        if wait == 0:
            for key in keys:
                self.creations.wait(key, now)
        return wait
