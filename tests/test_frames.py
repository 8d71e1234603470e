"""The C frame splitter (``gameserver.web._frames``) against aiohttp's parser.

The seam splits the frames an honest client sends in C and hands a socket to
aiohttp's parser for good at the first frame of any other kind. These tests hold a
reader on that path to one that parses everything with aiohttp, byte for byte:
for any stream of frames (plain, and every kind the splitter leaves to aiohttp),
cut into reads at any points, both deliver the same messages, answer the same
pings, charge the same budget and fail with the same error. One reader is fed as
the event loop feeds it, the other reads a real socket at each tick.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gameserver.core import codec
from gameserver.core.limits import FrameAllowance
from gameserver.web import aiohttp_seam
from gameserver.web.keys import MANAGER

from .client import Player, matchmake, url

frames_c = aiohttp_seam._frames
MAX = 200  # the readers' message size limit: payloads of 200 bytes or more are refused
MASK = b"\x37\xfa\x21\x3d"


def test_the_extension_is_built_where_ci_runs() -> None:
    """CI installs a compiler: there the tests must run the C splitter, not skip it."""
    if os.environ.get("CI"):
        assert frames_c is not None, "gameserver.web._frames is not built (pip install -e .)"
        assert aiohttp_seam.split_in_c
    elif frames_c is None:
        pytest.skip("the C frame splitter is not built here (no compiler?)")


def test_the_built_extension_is_the_current_source() -> None:
    """An in-place build (pip install -e .) is not redone when frames.c changes."""
    if frames_c is None:
        pytest.skip("the C frame splitter is not built here")
    source = Path(aiohttp_seam.__file__).with_name("frames.c").read_bytes()
    assert frames_c.source_sha256 == hashlib.sha256(source).hexdigest(), (
        "gameserver.web._frames was built from another frames.c: pip install -e . again")


needs_c = pytest.mark.skipif(frames_c is None and not os.environ.get("CI"),
                             reason="the C frame splitter is not built")


def frame(first: int, payload: bytes, *, masked: bool = True, width: int = 0) -> bytes:
    """One frame: ``first`` is its first byte (FIN, RSV, opcode); ``width`` forces the
    length into 2 or 8 extra bytes even when it would fit in fewer (allowed by aiohttp)."""
    n = len(payload)
    if width == 0 and n < 126:
        head = bytes((first, n))
    elif width <= 2 and n < 65536:
        head = bytes((first, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((first, 127)) + n.to_bytes(8, "big")
    if not masked:
        return head + payload
    body = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return bytes((head[0], head[1] | 0x80)) + head[2:] + MASK + body


# -- the C functions themselves ------------------------------------------------------

@needs_c
def test_split_takes_plain_frames_and_stops_at_any_other() -> None:
    stream = (frame(0x82, b"input") + frame(0x89, b"ping") + frame(0x82, b"")
              + frame(0x8A, b"pong") + frame(0x82, b"x" * 150, width=2) + frame(0x81, b"text")
              + frame(0x82, b"after"))
    frames, end, general = frames_c.split(stream, 0, MAX, 1 << 16)
    assert frames == [b"input", (0x9, b"ping"), b"", (0xA, b"pong"), b"x" * 150]
    assert general and stream[end:].startswith(frame(0x81, b"text"))
    # From a start, in any buffer, and stopping at the first frame past a limit.
    assert frames_c.split(bytearray(stream), 11, MAX, 1) == ([(0x9, b"ping")], 21, False)
    assert frames_c.split(memoryview(stream), 0, MAX, 12)[0] == [b"input", (0x9, b"ping")]


@needs_c
@pytest.mark.parametrize("stream", [
    frame(0x02, b"not final"), frame(0x00, b"continuation"), frame(0x88, b"\x03\xe8"),
    frame(0x81, b"text"), frame(0xC2, b"rsv1"), frame(0x83, b"opcode 3"),
    frame(0x82, b"unmasked", masked=False), frame(0x82, b"x" * MAX),
    frame(0x89, b"p" * 126), frame(0x82, b"", width=8)[:2] + (1 << 63).to_bytes(8, "big"),
])
def test_split_leaves_every_other_frame_to_aiohttp(stream: bytes) -> None:
    assert frames_c.split(stream, 0, MAX, 1 << 16) == ([], 0, True)


@needs_c
def test_split_waits_for_a_whole_frame() -> None:
    whole = frame(0x82, b"y" * 130, width=8)
    for cut in range(len(whole)):
        assert frames_c.split(whole[:cut], 0, MAX, 1 << 16) == ([], 0, False)
    assert frames_c.split(whole, 0, MAX, 1 << 16) == ([b"y" * 130], len(whole), False)


@needs_c
def test_split_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError):
        frames_c.split(b"", 1, MAX, 10)
    with pytest.raises(ValueError):
        frames_c.split(b"", 0, 0, 10)
    with pytest.raises(TypeError):
        frames_c.split("text", 0, MAX, 10)
    with pytest.raises(TypeError):
        frames_c.read_split(0, "tail", MAX, 10)


@needs_c
def test_read_split_reads_after_the_tail_and_reports_the_end() -> None:
    a, b = socket.socketpair()
    fd = a.fileno()
    with a, b:
        a.setblocking(False)
        with pytest.raises(BlockingIOError):
            frames_c.read_split(a.fileno(), b"", MAX, 1 << 16)
        two = frame(0x82, b"one") + frame(0x82, b"two")
        b.send(two[5:])
        assert frames_c.read_split(a.fileno(), two[:5], MAX, 1 << 16) == (
            [b"one", b"two"], b"", False)
        b.send(two[:12])  # one and a half
        assert frames_c.read_split(a.fileno(), b"", MAX, 1 << 16) == (
            [b"one"], two[9:12], False)
        b.close()
        assert frames_c.read_split(a.fileno(), b"", MAX, 1 << 16) is None
    with pytest.raises(OSError):
        frames_c.read_split(fd, b"", MAX, 1 << 16)  # closed descriptor
    with pytest.raises(ValueError):
        frames_c.read_split(-1, b"", MAX, 1 << 16)


# -- a reader on each path, fed the same stream --------------------------------------

class FakeConn:
    def __init__(self, events: list[Any]) -> None:
        self.events = events
        self.last_seen = 0.0

    def detach(self) -> None:
        self.events.append("detach")


class FakeInbound:
    """What the reader calls on a socket's inbound side, recorded."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.conn = FakeConn(self.events)
        self.control = FrameAllowance(1e6, time.monotonic())
        self.delivered = 0
        self.refused = self.flooded = False
        self.queue: Any = None

    def frame(self, data: bytes, binary: bool = True) -> None:
        self.delivered += 1
        self.events.append(("binary" if binary else "text", bytes(data)))

    def control_verdict(self, verdict: Any) -> None:
        self.events.append(("verdict", verdict))


class FakeTransport:
    def __init__(self, events: list[Any]) -> None:
        self.events = events
        self.closing = False

    def is_closing(self) -> bool:
        return self.closing

    def write(self, data: bytes) -> None:
        self.events.append(("sent", bytes(data)))

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        self.events.append("eof")
        self.closing = True

    abort = close


class FakeProtocol:
    def __init__(self, events: list[Any]) -> None:
        self.events = events

    def close(self) -> None:
        self.events.append("protocol closed")


def reader(loop: asyncio.AbstractEventLoop, native: bool, fd: int = -1) -> Any:
    """A metered reader as install_direct builds it, with recording fakes around it."""
    inbound = FakeInbound()
    transport = FakeTransport(inbound.events)
    queue = aiohttp_seam._DirectQueue(FakeProtocol(inbound.events), 1 << 16, loop=loop)
    queue.on_frame, queue.inbound, queue.transport = inbound.frame, inbound, transport
    inbound.queue = queue  # (the C parser keeps its own out of Python's reach)
    parser = aiohttp_seam._MeteredReader(queue, MAX, compress=False, decode_text=True)
    parser.inbound, parser.control = inbound, inbound.control
    parser.transport, parser.loop, parser.protocol = transport, loop, queue._protocol
    parser.throttled = parser.stopped = False
    parser.stash = parser.tail = b""
    parser.ticked = fd >= 0
    parser.fd, parser.max_size, parser.native = fd, MAX, native
    return parser


def outcome(parser: Any) -> tuple[Any, ...]:
    """Everything a reader did that a client or the room could tell."""
    inbound = parser.inbound
    queue = inbound.queue
    closes = [(m.type, m.data, m.extra) for m, _ in queue._buffer]
    error = queue.exception()
    error = (type(error).__name__, getattr(error, "code", None)) if error else None
    return (inbound.events, closes, error, inbound.delivered, inbound.control.allowance)


# Sizes across the whole range, around the limit too, and bytes other than zeros.
payloads = st.one_of(
    st.binary(max_size=MAX + 20),
    st.builds(lambda n, seed: bytes((seed + 7 * i) % 256 for i in range(n)),
              st.one_of(st.integers(min_value=0, max_value=MAX + 20),
                        st.integers(min_value=MAX - 2, max_value=MAX + 2)),
              st.integers(0, 255)),
)
plain = st.one_of(
    st.builds(lambda p, w: frame(0x82, p[:MAX - 1], width=w), payloads, st.sampled_from([0, 2, 8])),
    st.builds(lambda p, op: frame(op, p[:125]), st.binary(max_size=125),
              st.sampled_from([0x89, 0x8A])),
)
other = st.one_of(
    st.builds(lambda p: frame(0x82, p), payloads),  # maybe too big
    st.builds(lambda t: frame(0x81, t.encode()), st.text(max_size=40)),
    st.builds(lambda p: frame(0x81, p), st.binary(max_size=40)),  # maybe invalid UTF-8
    st.builds(lambda c, r: frame(0x88, c.to_bytes(2, "big") + r.encode()),
              st.sampled_from([1000, 1001, 1002, 1005, 3000, 4000]), st.text(max_size=20)),
    st.just(frame(0x88, b"")),
    st.builds(lambda a, b: frame(0x02, a) + frame(0x89, b"mid") + frame(0x80, b), payloads,
              payloads),  # a fragmented message, a ping between its fragments
    st.builds(lambda p: frame(0x80, p), payloads),  # a continuation with nothing to continue
    st.builds(lambda p: frame(0xC2, p), payloads),  # RSV1
    st.builds(lambda p: frame(0x83, p), payloads),  # a reserved opcode
    st.builds(lambda p: frame(0x82, p[:50], masked=False), payloads),
    st.builds(lambda p: frame(0x89, p), st.binary(min_size=126, max_size=130)),
)
streams = st.lists(st.one_of(plain, plain, plain, other), max_size=12).map(b"".join)


def cuts(stream: bytes, points: list[int]) -> list[bytes]:
    marks = sorted({p % (len(stream) + 1) for p in points} | {0, len(stream)})
    return [stream[a:b] for a, b in itertools.pairwise(marks) if b > a]


_loop = asyncio.new_event_loop()


@needs_c
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams, st.lists(st.integers(min_value=0, max_value=4000), max_size=8))
def test_the_c_splitter_delivers_what_aiohttp_alone_delivers(stream: bytes,
                                                             points: list[int]) -> None:
    reads = cuts(stream, points)
    failed = False
    alone, split = reader(_loop, native=False), reader(_loop, native=True)
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        ticked = reader(_loop, native=True, fd=a.fileno())
        for data in reads:
            failed = alone.feed_data(data)[0]
            assert split.feed_data(data)[0] == failed
            b.send(data)
            ticked.pull()
            if failed:
                break
    if failed:  # (on the event loop's path, aiohttp's protocol closes the socket)
        assert ticked.inbound.events.pop() == "protocol closed"
    assert outcome(split) == outcome(alone)
    assert outcome(ticked) == outcome(alone)
    assert not split.native or not ticked.native or split.tail == ticked.tail


@needs_c
def test_plain_frames_never_reach_aiohttps_parser() -> None:
    """The point of the splitter: an honest client's socket stays on the C path."""
    split = reader(_loop, native=True)
    stream = b"".join(frame(0x82, bytes([i]) * i) for i in range(100))
    for start in range(0, len(stream), 7):  # every frame cut somewhere
        split.feed_data(stream[start:start + 7])
    assert split.native and split.tail == b""
    assert [e[1] for e in split.inbound.events] == [bytes([i]) * i for i in range(100)]
    split.feed_data(frame(0x81, b"hello"))
    assert not split.native and split.inbound.events[-1] == ("text", b"hello")


@needs_c
def test_a_long_read_is_split_a_slice_at_a_time_and_a_flood_throttled() -> None:
    """Over its budget, a read stops after the slice that went over, and the rest waits
    for the throttle, as on aiohttp's path: nothing is dropped, nothing parsed early."""
    split = reader(_loop, native=True)
    inbound = split.inbound
    inbound.control = split.control = FrameAllowance(10, time.monotonic(), burst_s=1.0)
    pings = frame(0x89, b"") * 2000  # 12 kB of empty pings: each one costs a unit
    split.feed_data(pings)
    assert split.throttled
    assert inbound.delivered <= aiohttp_seam.SLICE // 6 + 1  # one slice, not all 2000
    assert len(split.stash) == len(pings) - inbound.delivered * 6
    split._stop()  # (its throttle timer would resume it; the test stops here)


# -- through a real server ------------------------------------------------------------

async def test_an_honest_socket_stays_on_the_c_path_until_it_sends_something_else(
        start_server: Callable[..., Any], session: aiohttp.ClientSession) -> None:
    """Inputs and WebSocket pings are split in C; the first text frame hands the socket to
    aiohttp's parser (it is refused with an error), and the game goes on."""
    server = await start_server()
    reservation = await matchmake(session, url(server))
    ws = await session.ws_connect(reservation["ws_url"], autoping=False)
    player = Player(ws, msgpack.unpackb((await ws.receive(timeout=5)).data))
    reader = server.app[MANAGER].room_hosts[player.room_id].connections[player.player_id].reader
    assert getattr(reader, "native", None) is aiohttp_seam.split_in_c
    pongs: list[bytes] = []

    async def until(done: Callable[[], bool]) -> None:
        while not done():
            msg = await ws.receive(timeout=5)
            if msg.type is aiohttp.WSMsgType.PONG:
                pongs.append(msg.data)
                continue
            data = msgpack.unpackb(msg.data)
            if data[0] in (codec.S_SNAPSHOT, codec.S_DELTA):
                player.replica.apply(data)
            else:
                player.messages.append(data)

    for seq in (1, 2, 3):  # in one burst: one read or several, as TCP has it
        await ws.send_bytes(msgpack.packb([codec.C_INPUT, seq, [100, 0]]))
        await ws.ping(b"p%d" % seq)
    await until(lambda: player.replica.ack == 3 and len(pongs) == 3)
    assert pongs == [b"p1", b"p2", b"p3"]
    assert getattr(reader, "native", None) is aiohttp_seam.split_in_c  # still
    await ws.send_str("hello")
    await until(lambda: any(m[0] == codec.S_ERROR for m in player.messages))
    assert [m[1] for m in player.messages if m[0] == codec.S_ERROR] == ["text_frame"]
    assert getattr(reader, "native", False) is False
    await ws.send_bytes(msgpack.packb([codec.C_INPUT, 4, [100, 0]]))
    await ws.ping(b"p4")
    await until(lambda: player.replica.ack == 4 and len(pongs) == 4)
    await ws.close()
