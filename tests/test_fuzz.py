"""Random and mutated messages against a live server; afterwards it still serves well.

The server runs as a subprocess; hypothesis drives one fuzzing connection per example
while a bystander in the same room keeps reading on its own thread.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gameserver.core import codec

from .client import Player, matchmake

values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64 - 1) | st.floats()
    | st.text(max_size=40) | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=6),
    max_leaves=20)


def packable(value: Any) -> bytes:
    try:
        return msgpack.packb(value)
    except (OverflowError, ValueError, TypeError):
        return b"\xc0"


valid = st.sampled_from([[1, 1, [100, 0]], [2, "chat", "hello"], [3, 1.5], [1, 7, [-100, 100]],
                         [4]]).map(msgpack.packb)
frames = st.one_of(
    st.binary(max_size=300),  # noise
    values.map(packable),  # well-formed msgpack of any shape
    st.tuples(st.sampled_from([1, 2, 3, 4, 99]), st.lists(values, max_size=3)).map(
        lambda t: packable([t[0], *t[1]])),  # a known kind with any payload
    st.tuples(valid, st.integers(0, 40), st.integers(0, 255)).map(
        lambda t: t[0][:t[1]] + bytes([t[2]]) + t[0][t[1] + 1:]),  # a valid one, one byte off
    st.tuples(valid, st.integers(1, 20)).map(lambda t: t[0][:-t[1]]),  # a valid one, cut
)


@pytest.fixture(scope="module")
def live_server() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "gameserver", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "serving on" in line, line
    yield line.split(" on ")[1].split("/ ")[0]
    proc.terminate()
    proc.wait(10)


class Bystander(threading.Thread):
    """A well-behaved player in the fuzzed room, reading on its own event loop."""

    def __init__(self, base: str, room_id: str) -> None:
        super().__init__(daemon=True)
        self.base, self.room_id = base, room_id
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.player: Player | None = None

    def run(self) -> None:
        asyncio.run(self.main())

    async def main(self) -> None:
        async with aiohttp.ClientSession() as session:
            self.player = await Player.join(session, self.base, mode="join",
                                            room_id=self.room_id, name="bystander")
            await self.player.pump()
            self.ready.set()
            while not self.stop.is_set():
                await self.player.pump()


async def fuzz_once(base: str, room_id: str, batch: list[bytes]) -> None:
    async with aiohttp.ClientSession() as session:
        fuzzer = await Player.join(session, base, mode="join", room_id=room_id, name="fuzz")
        try:
            for frame in batch:
                await fuzzer.ws.send_bytes(frame)
        except ConnectionError:
            pass  # the server closed on us (LEAVE, too big, ...): that is its right
        await asyncio.sleep(0.01)
        await fuzzer.ws.close()


def test_fuzzed_frames_never_hurt_the_server_or_the_room(live_server: str) -> None:
    base = live_server

    async def host() -> str:
        async with aiohttp.ClientSession() as session:
            return (await matchmake(session, base, mode="create", name="host",
                                    options={"max_players": 16}))["room_id"]

    room_id = asyncio.run(host())
    bystander = Bystander(base, room_id)
    bystander.start()
    assert bystander.ready.wait(10)
    deadline = time.monotonic() + 20  # bounds the fuzzing whatever hypothesis wants

    @settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(batch=st.lists(frames, min_size=1, max_size=12))
    def fuzz(batch: list[bytes]) -> None:
        if time.monotonic() < deadline:
            asyncio.run(fuzz_once(base, room_id, batch))

    fuzz()
    bystander.stop.set()
    bystander.join(10)
    watcher = bystander.player
    assert watcher is not None
    assert watcher.gapless() and watcher.errors == []  # saw every tick, and nothing else

    async def good_client() -> None:
        async with aiohttp.ClientSession() as session:
            good = await Player.join(session, base, mode="join", room_id=room_id, name="good")
            await good.pump()
            assert 19 <= await good.rate(2.0) <= 21 and good.gapless()
            seq = await good.send_input(100, 0)
            await good.until(lambda: good.replica.ack == seq)
            assert good.version == codec.PROTOCOL_VERSION

    asyncio.run(good_client())
