"""Client messages are decoded with limits and shape checks before anything else."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gameserver.core import codec
from gameserver.core.codec import ProtocolError, decode_client


@pytest.mark.parametrize(("data", "code"), [
    (b"\xc1", "bad_msgpack"),  # a never-used msgpack byte
    (b"\x92\x01", "bad_msgpack"),  # truncated
    (msgpack.packb({"a": 1}), "bad_message"),
    (msgpack.packb([]), "bad_message"),
    (msgpack.packb(["input"]), "bad_message"),
    (msgpack.packb([99]), "unknown_kind"),
    (msgpack.packb([1, 0, [0, 0]]), "bad_seq"),
    (msgpack.packb([1, -1, [0, 0]]), "bad_seq"),
    (msgpack.packb([1, 2**32, [0, 0]]), "bad_seq"),
    (msgpack.packb([1, "1", [0, 0]]), "bad_seq"),
    (msgpack.packb([1, 1]), "bad_message"),
    (msgpack.packb([2, "", "x"]), "bad_message"),
    (msgpack.packb([2, "k" * 33, "x"]), "bad_message"),
    (msgpack.packb([3, "now"]), "bad_message"),
    (msgpack.packb([1, 1, "x" * 5000]), "message_too_big"),
    (b"\xdd\xff\xff\xff\xff", "bad_msgpack"),  # an array claiming 4 billion items
    (msgpack.packb({1: 2}), "bad_msgpack"),  # non-string map keys
])
def test_bad_frames_get_a_stable_code(data: bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as err:
        decode_client(data)
    assert err.value.code == code


@pytest.mark.parametrize(("items", "expected"), [
    ([1, 7, [100, -5]], codec.Input(7, [100, -5])),
    ([2, "chat", "hi"], codec.Message("chat", "hi")),
    ([3, 12.5], codec.Ping(12.5)),
    ([4], codec.Leave()),
])
def test_good_frames_decode(items: list[Any], expected: Any) -> None:
    assert decode_client(msgpack.packb(items)) == expected


def test_update_frames_concatenate_into_valid_msgpack() -> None:
    tail = codec.encode_delta_tail(9, 8, [1, 0, 5], [2, 3, 1, -1], [4], [["chat", "x"]])
    message = msgpack.unpackb(codec.DELTA_HEADER + msgpack.packb(300) + tail)
    assert message == [codec.S_DELTA, 300, 9, 8, [1, 0, 5], [2, 3, 1, -1], [4], [["chat", "x"]]]
    snap = codec.encode_snapshot_tail(9, [1, 0, 5], [])
    assert msgpack.unpackb(codec.SNAPSHOT_HEADER + b"\x00" + snap) == \
        [codec.S_SNAPSHOT, 0, 9, [1, 0, 5], []]


@pytest.mark.parametrize("n", [0, 15, 16, 65535, 65536, 70000])
def test_array_headers_of_every_size_are_msgpacks_own(n: int) -> None:
    """Parts are joined under a header of their count, and a big cell's records under
    one of theirs (views.py): fixarray, array 16 and array 32 alike."""
    items = [i % 300 for i in range(n)]
    packed = msgpack.packb(items)
    assert codec.array_header(n) == packed[:len(codec.array_header(n))]
    assert msgpack.unpackb(codec.array_header(n) + packed[len(codec.array_header(n)):]) == items


def _decoded_with_every_limit(data: bytes) -> Any:
    """What msgpack makes of ``data`` under the eight explicit limits (or the error)."""
    try:
        return msgpack.unpackb(data, **codec._unpack_kwargs(codec.MAX_CLIENT_MESSAGE))
    except Exception as exc:
        return type(exc)


_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False)
    | st.text(max_size=40) | st.binary(max_size=40)
    | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=8)),
    lambda inner: st.lists(inner, max_size=70)
    | st.dictionaries(st.text(max_size=4) | st.integers(0, 9), inner, max_size=70),
    max_leaves=80)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_values.map(lambda v: msgpack.packb([1, 1, v])), st.binary(max_size=140)))
def test_short_messages_are_held_to_the_same_limits(data: bytes) -> None:
    """Up to SHORT_MESSAGE bytes the decoder leaves the limits to msgpack's own, which
    the message's length makes tighter; longer ones get every limit spelled out. Either
    way a message decodes, or is refused, exactly as under all eight limits."""
    expected = _decoded_with_every_limit(data)
    try:
        got = decode_client(data)
    except ProtocolError as err:  # refused by msgpack exactly when the limits refuse it
        assert (err.code == "bad_msgpack") == isinstance(expected, type), (data, err.code)
        return
    assert list(got) == expected[1:]


@pytest.mark.parametrize("data", [
    msgpack.packb([1, 1, msgpack.ExtType(1, b"x")]),  # extension types: never
    msgpack.packb([1, 1, [msgpack.ExtType(1, b"x"), "y" * 200]]),  # ... short or long
    msgpack.packb([1, 1, list(range(257))]),  # an array over 256
    msgpack.packb([1, 1, {str(i): 0 for i in range(65)}]),  # a map over 64
])
def test_extension_types_and_oversized_containers_are_refused(data: bytes) -> None:
    with pytest.raises(ProtocolError) as err:
        decode_client(data)
    assert err.value.code == "bad_msgpack"
