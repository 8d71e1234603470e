"""Client messages are decoded with limits and shape checks before anything else."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

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
