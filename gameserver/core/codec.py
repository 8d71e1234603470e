"""The wire protocol: message kinds, codes, and the codec. Pure, no I/O.

Every WebSocket message is one binary frame holding one msgpack array whose
first element is the message kind. ``docs/PROTOCOL.md`` is the normative
description; this module is its executable form.

Client messages are decoded with hard limits before anything else looks at
them: a frame is hostile until :func:`decode_client` has returned.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Final, NamedTuple

import msgpack

# 2: view parts (Views); 3: nil inputs, the input buffer (Inputs), quiet rooms (QUIET and
# the WELCOME's keep-alive interval)
PROTOCOL_VERSION: Final = 3

# Client -> server.
C_INPUT: Final = 1  # [1, seq, input]
C_MESSAGE: Final = 2  # [2, kind, body]
C_PING: Final = 3  # [3, client_time]
C_LEAVE: Final = 4  # [4]

# Server -> client.
S_WELCOME: Final = 10  # [10, version, room_id, game, player_id, tick_rate, schema, config,
#                           reconnect_token, keepalive]
S_SNAPSHOT: Final = 11  # [11, ack, tick, entities, events] (+ parts, with views)
S_DELTA: Final = 12  # [12, ack, tick, base_tick, created, changed, removed, events] (+ parts)
S_PONG: Final = 13  # [13, client_time, tick]
S_MESSAGE: Final = 14  # [14, kind, body]
S_ERROR: Final = 15  # [15, code, message] or [15, code, message, seq] for a refused INPUT
S_INPUT_LEAD: Final = 16  # [16, ticks]: send your inputs this many ticks further ahead
S_QUIET: Final = 17  # [17, tick]: a quiet room's keep-alive: nothing changed since ``tick``

# WebSocket close codes the server sends (1000-1011 are RFC 6455; 4000-4999 are ours).
# 1002, 1007 and 1009 come from aiohttp's frame parser; the others from gameserver.
CLOSE_NORMAL: Final = 1000
CLOSE_GOING_AWAY: Final = 1001
CLOSE_PROTOCOL_ERROR: Final = 1002  # malformed WebSocket framing
CLOSE_BAD_TEXT: Final = 1007  # a text frame that is not UTF-8
CLOSE_TOO_BIG: Final = 1009
CLOSE_ROOM_CRASHED: Final = 1011
CLOSE_TRY_AGAIN: Final = 1013  # the room directory (Redis) is unreachable; retry shortly
CLOSE_BAD_RESERVATION: Final = 4001
CLOSE_ROOM_CLOSED: Final = 4002
CLOSE_KICKED: Final = 4003
CLOSE_JOIN_REFUSED: Final = 4004
CLOSE_RATE_LIMITED: Final = 4005
CLOSE_REPLACED: Final = 4007  # the player reconnected on another socket

MAX_SEQ: Final = 2**32 - 1
MAX_KIND_LEN: Final = 32
MAX_CLIENT_MESSAGE: Final = 4096  # bytes: the default of --max-message-size


class ProtocolError(Exception):
    """A client message that cannot be accepted. ``code`` is stable and documented."""

    def __init__(self, code: str, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.seq = seq  # the refused INPUT's seq, when there is one


# Named tuples: built in C, which matters on the input path (one per player per tick).
class Input(NamedTuple):
    seq: int
    data: Any


class Message(NamedTuple):
    kind: str
    body: Any


class Ping(NamedTuple):
    client_time: Any


class Leave(NamedTuple):
    pass


ClientMessage = Input | Message | Ping | Leave

MAX_ARRAY_LEN: Final = 256  # elements of any one array in a client message
MAX_MAP_LEN: Final = 64  # pairs of any one map
# Up to this many bytes, msgpack's own limits are the tighter ones: ``unpackb`` bounds
# every string, array and map by the message's length (a map by half of it), and its
# defaults are ours (no raw bytes for strings, string keys only, lists). So a short
# message (every input) is decoded with one keyword instead of eight: about a third
# of the decode (tests/test_protocol.py checks both ways refuse alike).
SHORT_MESSAGE: Final = 2 * MAX_MAP_LEN
_unpackb = msgpack.unpackb
_new_input = tuple.__new__  # Input(seq, data) without the Python-level __new__ it has


@cache  # one dict per distinct limit (in practice one per process)
def _unpack_kwargs(max_size: int) -> dict[str, Any]:
    return {
        "raw": False,
        "strict_map_key": True,
        "use_list": True,
        "max_str_len": max_size,
        "max_bin_len": max_size,
        "max_array_len": MAX_ARRAY_LEN,
        "max_map_len": MAX_MAP_LEN,
        "max_ext_len": 0,
    }


def decode_client(data: bytes, max_size: int = MAX_CLIENT_MESSAGE) -> ClientMessage:
    """Decode and shape-check one client frame. Raises :class:`ProtocolError`.

    ``max_size`` is ``--max-message-size``: a frame of up to that many bytes is
    accepted. This checks the envelope only; the room validates the ``input``
    and ``body`` payloads with the game's own rules.
    """
    size = len(data)
    if size > max_size:
        raise ProtocolError("message_too_big", f"messages are limited to {max_size} B")
    try:
        msg = (_unpackb(data, max_ext_len=0) if size <= SHORT_MESSAGE
               else _unpackb(data, **_unpack_kwargs(max_size)))
    except Exception as exc:  # msgpack raises several unrelated types
        raise ProtocolError("bad_msgpack", f"not a valid msgpack message: {exc}") from None
    if type(msg) is not list or not msg or type(msg[0]) is not int:
        raise ProtocolError("bad_message", "a message is an array starting with its kind")
    kind = msg[0]
    if kind == C_INPUT:
        if len(msg) != 3:
            raise ProtocolError("bad_message", "input is [1, seq, input]")
        seq = msg[1]
        if type(seq) is not int or not 0 < seq <= MAX_SEQ:
            raise ProtocolError("bad_seq", "input seq must be an integer in 1..2^32-1",
                                seq if type(seq) is int else None)
        return _new_input(Input, (seq, msg[2]))  # type: ignore[no-any-return]
    if kind == C_MESSAGE:
        if len(msg) != 3 or type(msg[1]) is not str or not 0 < len(msg[1]) <= MAX_KIND_LEN:
            raise ProtocolError("bad_message", "message is [2, kind, body], kind a short string")
        return Message(msg[1], msg[2])
    if kind == C_PING:
        if len(msg) != 2 or not isinstance(msg[1], int | float) or isinstance(msg[1], bool):
            raise ProtocolError("bad_message", "ping is [3, client_time]")
        return Ping(msg[1])
    if kind == C_LEAVE:
        if len(msg) != 1:
            raise ProtocolError("bad_message", "leave is [4]")
        return Leave()
    raise ProtocolError("unknown_kind", f"unknown message kind {kind!r}")


_packb = msgpack.Packer(autoreset=True, use_bin_type=True).pack


def encode(*items: Any) -> bytes:
    """Encode one server message: ``encode(S_PONG, t, tick)``."""
    return _packb(items)


def encode_error(code: str, message: str, seq: int | None = None) -> bytes:
    """``[15, code, message]``, or with the refused INPUT's ``seq`` as a 4th element."""
    if seq is None:
        return _packb((S_ERROR, code, message))
    return _packb((S_ERROR, code, message, seq))


# Updates (snapshots and deltas) carry one per-player field, the input ack, in
# second place. The rest of the message is encoded once per tick and shared:
# a player's frame is ``header + packb(ack) + shared_tail``, a concatenation
# that is itself valid msgpack. See ``host/room_host.py`` (Broadcaster).
SNAPSHOT_HEADER: Final = bytes((0x95, S_SNAPSHOT))  # fixarray(5), kind
DELTA_HEADER: Final = bytes((0x98, S_DELTA))  # fixarray(8), kind
# With views, a player who sees more than the public view gets one more element, the
# list of their parts (core/views.py): ``header + ack + shared_tail + parts``.
SNAPSHOT_PARTS_HEADER: Final = bytes((0x96, S_SNAPSHOT))  # fixarray(6), kind
DELTA_PARTS_HEADER: Final = bytes((0x99, S_DELTA))  # fixarray(9), kind


def array_header(n: int) -> bytes:
    """The msgpack header of an array of ``n`` elements (its elements follow, packed)."""
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return bytes((0xDC, n >> 8, n & 0xFF))
    return b"\xdd" + n.to_bytes(4, "big")  # a big cell's records (msgpack's array 32)


# A tail is the message's elements after the ack: packed as one short array in a
# single call, then stripped of that array's one-byte header.
def encode_snapshot_tail(tick: int, entities: list[Any], events: list[Any]) -> bytes:
    return _packb((tick, entities, events))[1:]


def encode_delta_tail(
    tick: int,
    base_tick: int,
    created: list[Any],
    changed: list[Any],
    removed: list[int],
    events: list[Any],
) -> bytes:
    return _packb((tick, base_tick, created, changed, removed, events))[1:]
