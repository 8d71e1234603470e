"""A small protocol client for the tests: matchmake over HTTP, then play over WebSocket."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import msgpack
from aiohttp.test_utils import TestServer

from gameserver.core import codec
from gameserver.core.replica import Replica


def url(server: TestServer) -> str:
    """A test server's base URL, without the trailing slash."""
    return str(server.make_url("")).rstrip("/")


class MatchmakeFailed(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


async def matchmake(session: aiohttp.ClientSession, base: str, **body: Any) -> dict[str, Any]:
    body.setdefault("game", "arena")
    body.setdefault("mode", "join_or_create")
    async with session.post(f"{base}/matchmake", json=body) as resp:
        data = await resp.json()
        if resp.status != 200:
            raise MatchmakeFailed(resp.status, data)
        return data


class Player:
    """One connected player that keeps a replica of the room up to date."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, welcome: list[Any]) -> None:
        self.ws = ws
        self.welcome = welcome
        (_, self.version, self.room_id, self.game, self.player_id, self.tick_rate,
         schema, self.config, self.reconnect_token, self.keepalive) = welcome
        self.replica = Replica(schema)
        self.base = ""  # set by join(): the server's http(s) base URL
        self.updates: list[tuple[float, list[Any]]] = []  # (arrival time, message)
        self.messages: list[list[Any]] = []  # everything that is not an update
        self.errors: list[list[Any]] = []
        self.seq = 0

    @classmethod
    async def join(cls, session: aiohttp.ClientSession, base: str, **body: Any) -> Player:
        reservation = await matchmake(session, base, **body)
        return await cls.connect(session, reservation["ws_url"])

    @classmethod
    async def connect(cls, session: aiohttp.ClientSession, ws_url: str) -> Player:
        ws = await session.ws_connect(ws_url, autoping=True)
        msg = await ws.receive(timeout=5)
        if msg.type is not aiohttp.WSMsgType.BINARY:
            raise ConnectionError(f"no welcome: {msg.type} {msg.data!r} {msg.extra!r}")
        welcome = msgpack.unpackb(msg.data)
        if welcome[0] != codec.S_WELCOME:
            await ws.close()
            raise ConnectionError(f"expected a welcome, got {welcome}")
        return cls(ws, welcome)

    @property
    def avatar(self) -> dict[str, Any] | None:
        for e in self.replica.entities.values():
            if e.type == "Avatar" and e.values["pid"] == self.player_id:
                return e.values
        return None

    async def send_input(self, dx: int, dy: int) -> int:
        self.seq = max(self.seq, self.replica.ack) + 1  # a stood-in seq is taken
        await self.ws.send_bytes(msgpack.packb([codec.C_INPUT, self.seq, [dx, dy]]))
        return self.seq

    async def send(self, *items: Any) -> None:
        await self.ws.send_bytes(msgpack.packb(list(items)))

    async def pump(self, timeout: float = 5.0) -> list[Any]:
        """Receive one message; updates are applied to the replica."""
        msg = await self.ws.receive(timeout=timeout)
        if msg.type is not aiohttp.WSMsgType.BINARY:
            raise ConnectionError(f"socket ended: {msg.type} {msg.data!r} {msg.extra!r}")
        data = msgpack.unpackb(msg.data)
        if data[0] in (codec.S_SNAPSHOT, codec.S_DELTA):
            self.replica.apply(data)
            self.updates.append((time.monotonic(), data))
        elif data[0] == codec.S_ERROR:
            self.errors.append(data)
            self.messages.append(data)
        else:
            self.messages.append(data)
        return data

    async def until(self, predicate: Any, timeout: float = 5.0) -> None:
        """Pump messages until ``predicate()`` holds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("condition not met in time")
            await self.pump(left)

    async def drain(self) -> None:
        """Read whatever has already arrived."""
        while True:
            try:
                await self.pump(0.02)
            except TimeoutError:
                return

    def gapless(self) -> bool:
        """No update was missed: each delta builds on the update received just before it.

        (Tick numbers themselves may jump when an overloaded server drops ticks.)
        """
        previous = None
        for _, message in self.updates:
            if message[0] == codec.S_DELTA and previous is not None and message[3] != previous:
                return False
            previous = message[2]
        return True

    async def rate(self, seconds: float = 1.0) -> float:
        """Updates per second arriving now (after draining what was already here)."""
        await self.drain()
        return await self.updates_for(seconds) / seconds

    async def updates_for(self, seconds: float) -> int:
        start = len(self.updates)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                await self.pump(left)
            except TimeoutError:
                break
        return len(self.updates) - start

    async def close_event(self, timeout: float = 5.0) -> tuple[int | None, str]:
        """Read until the server closes; the close code and reason."""
        deadline = time.monotonic() + timeout
        while True:
            msg = await self.ws.receive(timeout=max(0.01, deadline - time.monotonic()))
            if msg.type is aiohttp.WSMsgType.BINARY:
                data = msgpack.unpackb(msg.data)
                if data[0] == codec.S_ERROR:
                    self.errors.append(data)
                continue
            if msg.type is aiohttp.WSMsgType.CLOSE:  # the close frame's own code and reason
                return msg.data, (msg.extra or "")
            if msg.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                return self.ws.close_code, (msg.extra or "")
            raise ConnectionError(f"unexpected {msg.type}")
